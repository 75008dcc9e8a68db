// Minimal console over the supervision API. Everything shown goes through textContent (no HTML
// from the server is ever interpreted); the token stays in this tab's sessionStorage.
'use strict';
const API = '/api/v1';
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('vigie-token') || '';

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const detail = data && data.problems ? data.problems.map((p) => `${p.field}${p.entry ? ` (${p.entry})` : ''}: ${p.message}`).join('\n') : data && data.message;
    throw new Error(`${res.status}: ${detail || res.statusText}`);
  }
  return data;
}

function say(text, error) {
  const s = $('status');
  s.textContent = text;
  s.className = error ? 'error' : 'ok';
}

function row(tbody, cells, extra) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    td.textContent = c == null ? '' : String(c);
    tr.appendChild(td);
  }
  if (extra) {
    const td = document.createElement('td');
    td.appendChild(extra);
    tr.appendChild(td);
  }
  tbody.appendChild(tr);
}

async function loadLists(keep) {
  const data = await api('GET', '/lists');
  const sel = $('list');
  const current = keep || sel.value;
  sel.replaceChildren(...data.academy.map((l) => new Option(`${l.name} (${l.counts.domains + l.counts.urls + l.counts.expressions})`, l.name)));
  if (current) sel.value = current;
  await showList();
}

async function showList() {
  const name = $('list').value;
  if (!name) return;
  const l = await api('GET', `/lists/academy/${encodeURIComponent(name)}`);
  $('list-info').textContent = `version ${l.version}, utilisée par : ${l.usedBy.join(', ') || 'aucun profil'}`;
  $('entries-view').value = l.entries.map((e) => (typeof e === 'string' ? e : `re:${e.expression}`)).join('\n');
}

async function loadHistory() {
  const data = await api('GET', '/policy/history?limit=30');
  const tbody = $('history');
  tbody.replaceChildren();
  for (const v of data.versions) {
    let button = null;
    if (v.version !== data.current) {
      button = document.createElement('button');
      button.textContent = 'Revenir';
      button.addEventListener('click', () => rollback(v.version));
    }
    row(tbody, [v.version, new Date(v.time).toLocaleString(), v.who, v.action, v.why], button);
  }
}

async function loadAudit() {
  const data = await api('GET', '/audit?limit=50');
  const tbody = $('audit');
  tbody.replaceChildren();
  for (const e of data.entries) row(tbody, [new Date(e.time).toLocaleString(), e.actor, e.source, e.action, e.target, `${e.outcome} ${e.status}`]);
}

async function rollback(version) {
  const reason = prompt(`Revenir au contenu de la version ${version} ? Motif :`);
  if (reason === null) return;
  try {
    const r = await api('POST', '/policy/rollback', { version, reason });
    say(`version ${r.policyVersion} en vigueur (contenu de la version ${version})`);
    await refresh();
  } catch (e) {
    say(e.message, true);
  }
}

async function refresh() {
  const health = await api('GET', '/health');
  say(`politique v${health.policyVersion}, listes ${health.listsLoaded ? 'chargées' : 'NON chargées'}, état ${health.status}`);
  // Each panel needs its own role: a refusal only empties that panel.
  await Promise.allSettled([loadLists(), loadHistory(), loadAudit()]);
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = $('token').value.trim();
  sessionStorage.setItem('vigie-token', token);
  $('token').value = '';
  refresh().catch((e) => say(e.message, true));
});

$('list').addEventListener('change', () => showList().catch((e) => say(e.message, true)));

$('entries-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const op = ev.submitter && ev.submitter.dataset.op;
  const entries = $('entries-input').value.split('\n').map((s) => s.trim()).filter(Boolean).map((s) => (s.startsWith('re:') ? { expression: s.slice(3) } : s));
  if (!entries.length) return;
  const name = $('list').value;
  const reason = $('entries-reason').value.trim();
  try {
    const r = await api(op === 'remove' ? 'DELETE' : 'POST', `/lists/academy/${encodeURIComponent(name)}/entries${reason ? `?reason=${encodeURIComponent(reason)}` : ''}`, { entries });
    say(`version ${r.policyVersion} en vigueur : ${op === 'remove' ? `${r.removed} retirée(s)` : `${r.added} ajoutée(s)`}`);
    $('entries-input').value = '';
    await Promise.allSettled([loadLists(name), loadHistory(), loadAudit()]);
  } catch (e) {
    say(e.message, true);
  }
});

$('decision-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams({ url: $('decision-url').value, client: $('decision-client').value });
  try {
    const d = await api('GET', `/decision?${q}`);
    $('decision').textContent = `${d.action === 'allow' ? 'AUTORISÉ' : 'BLOQUÉ'} : ${d.explanation}`;
    $('decision').className = d.action === 'allow' ? 'ok' : 'error';
  } catch (e) {
    $('decision').textContent = e.message;
    $('decision').className = 'error';
  }
});

if (token) refresh().catch((e) => say(e.message, true));
