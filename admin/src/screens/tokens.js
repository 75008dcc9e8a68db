// Tokens (admin): create (the secret is shown once), list, revoke.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t, fmtTime } from '../i18n.js';
import { html, useLoad, ErrorBox, Field, Select, Table, formData } from '../ui.js';

export function Tokens({ me }) {
  const [data, error, reload] = useLoad(() => api('GET', '/tokens'));
  const [created, setCreated] = useState(null);
  const [actionError, setActionError] = useState(null);
  const create = async (e) => {
    e.preventDefault();
    const v = formData(e);
    const form = e.currentTarget;
    setActionError(null);
    try {
      setCreated(await api('POST', '/tokens', { role: v.role, name: v.name.trim() }));
      form.reset();
      reload();
    } catch (err) { setActionError(err); }
  };
  const revoke = async (tk) => {
    if (!confirm(t('confirmRevoke', tk.name))) return;
    try {
      await api('DELETE', `/tokens/${encodeURIComponent(tk.id)}`);
      reload();
    } catch (err) { setActionError(err); }
  };
  return html`<section aria-labelledby="tokens-h"><h2 id="tokens-h">${t('tokens')}</h2>
    <form class="inline" id="token-form" onSubmit=${create}>
      <${Field} label=${t('name')} name="name" required maxlength="100" />
      <${Select} label=${t('role')} name="role" options=${[['supervisor', 'supervisor'], ['teacher', 'teacher'], ['requisition', 'requisition'], ['admin', 'admin']]} />
      <button type="submit">${t('create')}</button>
    </form>
    ${created ? html`<div class="notice" role="status" id="new-token"><p>${t('newToken')}</p><code class="wrap">${created.token}</code></div>` : null}
    <${ErrorBox} error=${error || actionError} />
    ${data ? html`<${Table} label=${t('tokens')} head=${['id', t('name'), t('role'), t('created'), t('revoked'), '']}
      rows=${data.tokens.map((tk) => [tk.id, tk.name, tk.role, fmtTime(Date.parse(tk.created)), tk.revoked ? fmtTime(Date.parse(tk.revoked)) : '',
        !tk.revoked && tk.id !== me.id ? html`<button type="button" class="small" onClick=${() => revoke(tk)} aria-label=${`${t('revoke')} ${tk.name}`}>${t('revoke')}</button>` : ''])} />` : null}
  </section>`;
}
