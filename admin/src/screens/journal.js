// Journal search (time range, device, user, host, profile, decision; cursor paging) and the
// decision explainer, reachable from any journal row ("why was this blocked?").
import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { t, fmtTime } from '../i18n.js';
import { html, ErrorBox, Field, Select, formData } from '../ui.js';

/** `datetime-local` text (local time) to ms since the epoch; '' stays unset. */
export const localToMs = (v) => (v ? new Date(v).getTime() : undefined);
/** ms since the epoch to `datetime-local` text in local time. */
export const msToLocal = (ms) => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
};
const urlOf = (r) => (r.scheme === 'connect' ? `https://${r.host}:${r.port}/` : `http://${r.host}${r.port === 80 ? '' : `:${r.port}`}${r.path || '/'}`);

function Explanation({ d }) {
  return html`<div class="explain" role="status" id="explanation">
    <p><strong class=${d.action === 'block' ? 'bad' : 'good'}>${d.action}</strong> — ${d.explanation}</p>
    <p class="muted">${t('profile')} ${d.profile || '—'}, rule ${d.rule}${d.category ? `, ${d.category}` : ''}${d.entry ? `, « ${d.entry} »` : ''}</p>
  </div>`;
}

export function Journal() {
  const [filter, setFilter] = useState(null);
  const [page, setPage] = useState(null);
  const [cursors, setCursors] = useState([]);
  const [error, setError] = useState(null);
  const [why, setWhy] = useState(null);
  const load = async (f, cursor) => {
    setError(null);
    try {
      setPage(await api('GET', `/journal${query({ ...f, limit: 50, cursor })}`));
    } catch (e) { setError(e); }
  };
  const submit = (e) => {
    e.preventDefault();
    const v = formData(e);
    const f = { from: localToMs(v.from), to: localToMs(v.to), client: v.client.trim(), user: v.user.trim(), host: v.host.trim(), profile: v.profile.trim(), decision: v.decision };
    setFilter(f);
    setCursors([]);
    setWhy(null);
    load(f);
  };
  const explain = async (r) => {
    try {
      setWhy({ row: r.id, d: await api('GET', `/decision${query({ url: urlOf(r), client: r.client, at: new Date(r.time).toISOString() })}`) });
    } catch (e) { setError(e); }
  };
  const now = Date.now();
  return html`<section aria-labelledby="journal-h"><h2 id="journal-h">${t('journal')}</h2>
    <form class="inline" id="journal-form" onSubmit=${submit}>
      <${Field} label=${t('from')} name="from" type="datetime-local" value=${msToLocal(now - 86_400_000)} />
      <${Field} label=${t('to')} name="to" type="datetime-local" />
      <${Field} label=${t('client')} name="client" placeholder="10.1.2.3" />
      <${Field} label=${t('user')} name="user" />
      <${Field} label=${t('host')} name="host" placeholder="exemple.fr" />
      <${Field} label=${t('profile')} name="profile" />
      <${Select} label=${t('decision')} name="decision" options=${[['', t('any')], ['block', 'block'], ['allow', 'allow']]} />
      <button type="submit">${t('search')}</button>
    </form>
    <${ErrorBox} error=${error} />
    ${page ? html`<p id="journal-count">${t('rows', page.rows.length)}</p>
      <div class="scroll" role="region" aria-label=${t('journal')} tabindex="0"><table id="journal-table"><thead><tr>
        ${[t('time'), t('client'), t('user'), t('profile'), t('method'), t('host'), t('httpStatus'), t('decision'), t('categories'), ''].map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
        <tbody>${page.rows.map((r) => html`<tr>
          <td>${fmtTime(r.time)}</td><td>${r.client}</td><td>${r.user || ''}</td><td>${r.profile || ''}</td><td>${r.method}</td>
          <td class="wrap">${r.host}${r.path ? r.path : ''}</td><td>${r.status}</td><td class=${r.decision === 'block' ? 'bad' : ''}>${r.decision}</td><td>${r.category || ''}</td>
          <td><button type="button" class="small" onClick=${() => explain(r)}>${t('why')}</button></td></tr>
          ${why && why.row === r.id ? html`<tr><td colspan="10"><${Explanation} d=${why.d} /></td></tr>` : null}`)}</tbody>
      </table></div>
      <p class="pager">
        ${cursors.length ? html`<button type="button" onClick=${() => { setCursors([]); load(filter); }}>${t('first')}</button>` : null}
        ${page.nextCursor ? html` <button type="button" id="journal-next" onClick=${() => { setCursors([...cursors, page.nextCursor]); load(filter, page.nextCursor); }}>${t('next')}</button>` : null}
      </p>` : null}
  </section>`;
}

export function Decision() {
  const [d, setD] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    const v = formData(e);
    setError(null);
    try {
      setD(await api('GET', `/decision${query({ url: v.url.trim(), client: v.client.trim(), at: v.at ? new Date(v.at).toISOString() : '' })}`));
    } catch (err) { setD(null); setError(err); }
  };
  return html`<section aria-labelledby="decision-h"><h2 id="decision-h">${t('decision')}</h2>
    <form class="inline" id="decision-form" onSubmit=${submit}>
      <${Field} label=${t('url')} name="url" required placeholder="http://site.exemple/page" />
      <${Field} label=${t('client')} name="client" required placeholder="10.1.2.3" />
      <${Field} label=${t('at')} name="at" type="datetime-local" />
      <button type="submit">${t('explain')}</button>
    </form>
    <${ErrorBox} error=${error} />
    ${d ? html`<${Explanation} d=${d} />` : null}
  </section>`;
}
