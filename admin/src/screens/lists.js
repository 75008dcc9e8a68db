// Academy lists: search, add, remove, bulk paste (each bad line named), and who changed what.
import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { t, fmtTime } from '../i18n.js';
import { html, useLoad, ErrorBox, Notice, Field, Select, Table } from '../ui.js';

const show = (e) => (typeof e === 'string' ? e : `re:${e.expression}`);
/** One pasted line to an API entry: `re:...` is an expression, anything else a domain or URL prefix. */
const parseLine = (line) => (line.startsWith('re:') ? { expression: line.slice(3) } : line);

function ListView({ name, admin }) {
  const [filter, setFilter] = useState('');
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState('');
  const [list, loadError, reload] = useLoad(() => api('GET', `/lists/academy/${encodeURIComponent(name)}`), [name]);
  const [changes, , reloadChanges] = useLoad(() => api('GET', `/audit${query({ action: 'list', limit: 50 })}`), [name]);
  if (loadError) return html`<${ErrorBox} error=${loadError} />`;
  if (!list) return html`<p>${t('loading')}</p>`;
  const edit = (method) => async (e) => {
    e.preventDefault();
    const form = e.currentTarget.form;
    const lines = form.elements.entries.value.split('\n').map((l) => l.trim()).filter(Boolean);
    if (!lines.length) return;
    setError(null);
    setNotice('');
    try {
      const r = await api(method, `/lists/academy/${encodeURIComponent(name)}/entries${query({ reason: form.elements.reason.value })}`, { entries: lines.map(parseLine) });
      setNotice(`${t('done')} ${t('policyVersion')} ${r.policyVersion ?? ''}`);
      form.elements.entries.value = '';
      reload();
      reloadChanges();
    } catch (err) {
      // Problems name `body/entries/<i>`: show the pasted line beside each.
      for (const p of err.problems || []) {
        const m = /^body\/entries\/(\d+)/.exec(p.field);
        if (m && !p.entry) p.entry = lines[Number(m[1])];
      }
      setError(err);
    }
  };
  const shown = list.entries.map(show).filter((e) => e.includes(filter.trim()));
  const mine = ((changes && changes.entries) || []).filter((c) => c.target === name);
  return html`<article id="list-view">
    <p>${t('version')} ${list.version} — ${t('usedBy')} : ${list.usedBy.join(', ') || t('none')}</p>
    <${Field} label=${t('filter')} type="search" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} id="list-filter" />
    <p>${shown.length} / ${list.entries.length}</p>
    <ul class="entries scroll-y" id="list-entries">${shown.slice(0, 500).map((e) => html`<li>${e}</li>`)}</ul>
    ${admin ? html`<form id="list-form" onSubmit=${(e) => e.preventDefault()}>
      <label class="field"><span>${t('bulk')}</span><textarea name="entries" rows="4" placeholder="exemple.fr&#10;exemple.fr/page&#10;re:^pub\\."></textarea></label>
      <${Field} label=${t('reason')} name="reason" />
      <button type="submit" id="list-add" onClick=${edit('POST')}>${t('add')}</button> <button type="button" id="list-remove" onClick=${edit('DELETE')}>${t('remove')}</button>
    </form>` : null}
    <${Notice} text=${notice} />
    <${ErrorBox} error=${error} />
    <h4>${t('changes')}</h4>
    <${Table} label=${t('changes')} head=${[t('time'), t('actor'), t('action'), t('whyCol')]}
      rows=${mine.map((c) => [fmtTime(Date.parse(c.time)), c.actor, c.action, (c.details && c.details.reason) || ''])} />
  </article>`;
}

export function Lists({ me }) {
  const [data, error] = useLoad(() => api('GET', '/lists'));
  const [name, setName] = useState('');
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<p>${t('loading')}</p>`;
  const current = name || data.academy[0]?.name;
  return html`<section aria-labelledby="lists-h"><h2 id="lists-h">${t('lists')}</h2>
    <${Select} label=${t('list')} id="list-select" value=${current} onChange=${(e) => setName(e.currentTarget.value)}
      options=${data.academy.map((l) => [l.name, `${l.name} (${l.counts.domains + l.counts.urls + l.counts.expressions})`])} />
    ${current ? html`<${ListView} name=${current} admin=${me.role === 'admin'} key=${current} />` : null}
  </section>`;
}
