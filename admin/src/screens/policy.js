// Policy history: every version, a diff between a version and the one before, and rollback (admin).
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t, fmtTime } from '../i18n.js';
import { html, useLoad, ErrorBox, Notice } from '../ui.js';

/**
 * A version as a set of lines `path: value` (each array item its own line), so a diff is two set
 * differences: linear in the size of the policy, whatever the lists hold.
 */
function lines(value, path = '', out = new Set()) {
  if (Array.isArray(value) && value.every((v) => v === null || typeof v !== 'object')) for (const v of value) out.add(`${path}: ${JSON.stringify(v)}`);
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) lines(v, path ? `${path}.${k}` : k, out);
  else out.add(`${path}: ${JSON.stringify(value)}`);
  return out;
}
/** What changed between two versions (their metadata left out). */
export function diff(a, b) {
  const strip = (v) => { const { meta, version, time, who, why, action, source, ...rest } = v; return rest; };
  const la = lines(strip(a));
  const lb = lines(strip(b));
  return { removed: [...la].filter((l) => !lb.has(l)), added: [...lb].filter((l) => !la.has(l)) };
}

function Diff({ v }) {
  const [d, error] = useLoad(async () => {
    const [a, b] = await Promise.all([api('GET', `/policy/versions/${v - 1}`), api('GET', `/policy/versions/${v}`)]);
    return diff(a, b);
  }, [v]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!d) return html`<p>${t('loading')}</p>`;
  return html`<div class="diff" id="policy-diff" role="region" aria-label=${`${t('diffWith')} ${v}`} tabindex="0">
    <p>v${v - 1} → v${v}</p>
    ${!d.added.length && !d.removed.length ? html`<p>${t('nothingHere')}</p>` : null}
    <ul>${d.removed.slice(0, 500).map((l) => html`<li class="del"><span class="sr">−</span> ${l}</li>`)}${d.added.slice(0, 500).map((l) => html`<li class="ins"><span class="sr">+</span> ${l}</li>`)}</ul>
  </div>`;
}

export function Policy({ me }) {
  const [data, error, reload] = useLoad(() => api('GET', '/policy/history?limit=100'));
  const [open, setOpen] = useState(null);
  const [notice, setNotice] = useState('');
  const [actionError, setActionError] = useState(null);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<p>${t('loading')}</p>`;
  const rollback = async (v) => {
    if (!confirm(t('confirmRollback', v))) return;
    setActionError(null);
    try {
      const r = await api('POST', '/policy/rollback', { version: v, reason: `console: rollback to ${v}` });
      setNotice(t('rolledBack', r.policyVersion));
      reload();
    } catch (e) { setActionError(e); }
  };
  return html`<section aria-labelledby="policy-h"><h2 id="policy-h">${t('policy')}</h2>
    <${Notice} text=${notice} />
    <${ErrorBox} error=${actionError} />
    <div class="scroll" role="region" aria-label=${t('policy')} tabindex="0"><table id="policy-table"><thead><tr>
      ${[t('version'), t('time'), t('who'), t('what'), t('whyCol'), ''].map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
      <tbody>${data.versions.map((v) => html`<tr>
        <td>${v.version}${v.version === data.current ? ' ✓' : ''}</td><td>${fmtTime(Date.parse(v.time))}</td><td>${v.who}</td><td>${v.action}</td><td class="wrap">${v.why || ''}</td>
        <td class="actions">${v.version > 1 ? html`<button type="button" class="small" onClick=${() => setOpen(open === v.version ? null : v.version)} aria-expanded=${open === v.version}>${t('diffWith')}</button>` : null}
          ${me.role === 'admin' && v.version !== data.current ? html` <button type="button" class="small" id=${`rollback-${v.version}`} onClick=${() => rollback(v.version)}>${t('rollback')}</button>` : null}</td></tr>`)}</tbody>
    </table></div>
    ${open ? html`<${Diff} v=${open} key=${open} />` : null}
  </section>`;
}
