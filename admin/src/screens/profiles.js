// Profiles: mode, categories, schedule, networks, and the profile's own allow/deny entries
// (the entry-level routes, so two people editing different entries never overwrite each other).
import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { t } from '../i18n.js';
import { html, useLoad, ErrorBox, Notice, Field, Select, formData } from '../ui.js';

function Entries({ profile, kind, admin, onChange, setError }) {
  const list = profile[kind] || [];
  const remove = async (entry) => {
    try {
      await api('DELETE', `/profiles/${encodeURIComponent(profile.id)}/entries`, { [kind]: [entry] });
      onChange();
    } catch (e) { setError(e); }
  };
  return html`<section><h4>${t(kind === 'allow' ? 'allowEntries' : 'denyEntries')}</h4>
    ${list.length ? html`<ul class="entries" id=${`entries-${kind}`}>${list.map((e) => html`<li><span>${e}</span>
      ${admin ? html` <button type="button" class="small" aria-label=${`${t('remove')} ${e}`} onClick=${() => remove(e)}>${t('remove')}</button>` : null}</li>`)}</ul>`
      : html`<p>${t('none')}</p>`}
  </section>`;
}

function ProfileView({ id, admin }) {
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState('');
  const [p, loadError, reload] = useLoad(() => api('GET', `/profiles/${encodeURIComponent(id)}`), [id]);
  if (loadError) return html`<${ErrorBox} error=${loadError} />`;
  if (!p) return html`<p>${t('loading')}</p>`;
  const add = async (e) => {
    e.preventDefault();
    const f = formData(e);
    const form = e.currentTarget;
    setError(null);
    try {
      const r = await api('POST', `/profiles/${encodeURIComponent(id)}/entries${query({ reason: f.reason })}`, { [f.kind]: [f.entry.trim()] });
      setNotice(`${t('done')} ${t('policyVersion')} ${r.policyVersion ?? ''}`);
      form.reset();
      reload();
    } catch (err) { setError(err); }
  };
  const changed = () => { setNotice(t('done')); reload(); };
  return html`<article id="profile-view">
    <h3>${p.id}</h3>
    <p>${p.description || ''}</p>
    <dl class="facts">
      <dt>${t('mode')}</dt><dd>${p.mode}</dd>
      <dt>${t('categories')}</dt><dd class="wrap">${p.categories.join(', ') || t('none')}</dd>
      <dt>${t('lists')}</dt><dd>${t('allow')} : ${(p.allowLists || []).join(', ') || t('none')} ; ${t('deny')} : ${(p.denyLists || []).join(', ') || t('none')}</dd>
      <dt>${t('schedule')}</dt><dd>${p.schedule ? html`<code class="wrap">${JSON.stringify(p.schedule)}</code>` : t('none')}</dd>
    </dl>
    ${(p.warnings || []).map((w) => html`<p class="warning">${typeof w === 'string' ? w : JSON.stringify(w)}</p>`)}
    <div class="grid">
      <${Entries} profile=${p} kind="allow" admin=${admin} onChange=${changed} setError=${setError} />
      <${Entries} profile=${p} kind="deny" admin=${admin} onChange=${changed} setError=${setError} />
    </div>
    ${admin ? html`<form class="inline" id="profile-entry-form" onSubmit=${add}>
      <${Select} label=${t('kind')} name="kind" options=${[['deny', t('deny')], ['allow', t('allow')]]} />
      <${Field} label=${t('entry')} name="entry" required placeholder="jeux.example" />
      <${Field} label=${t('reason')} name="reason" />
      <button type="submit">${t('add')}</button>
    </form>` : null}
    <${Notice} text=${notice} />
    <${ErrorBox} error=${error} />
  </article>`;
}

export function Profiles({ me }) {
  const [data, error] = useLoad(() => api('GET', '/profiles'));
  const [id, setId] = useState('');
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!data) return html`<p>${t('loading')}</p>`;
  const current = id || data.profiles[0]?.id;
  return html`<section aria-labelledby="profiles-h"><h2 id="profiles-h">${t('profiles')}</h2>
    <div class="scroll" role="region" aria-label=${t('profiles')} tabindex="0"><table><thead><tr>
      <th scope="col">${t('profile')}</th><th scope="col">${t('mode')}</th><th scope="col">${t('clients')}</th><th scope="col">${t('categories')}</th></tr></thead>
      <tbody>${data.profiles.map((p) => html`<tr aria-selected=${p.id === current}>
        <td><button type="button" class="link" onClick=${() => setId(p.id)}>${p.id}</button></td><td>${p.mode}</td>
        <td>${(p.clients || []).map((c) => `${c.network}${c.name ? ` (${c.name})` : ''}`).join(', ')}</td><td>${p.categories.length}</td></tr>`)}</tbody>
    </table></div>
    ${current ? html`<${ProfileView} id=${current} admin=${me.role === 'admin'} key=${current} />` : null}
  </section>`;
}
