// Reports from the block page and /report (supervisors and admins): the queue, newest first, and
// each report's next step with a reason: reject, escalate to the academy (webhooks), or accept
// (admin: the host goes into academy-allow or academy-deny).
import { useEffect, useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { t, addTexts, fmtTime } from '../i18n.js';
import { html, useLoad, ErrorBox, Notice, Select, Table, formData } from '../ui.js';

addTexts(
  {
    reports: 'Signalements', openCount: (n) => `${n} signalement(s) en attente`, kindAllow: 'à autoriser', kindBlock: 'à bloquer',
    comment: 'Commentaire', state: 'Statut', st_open: 'en attente', st_escalated: 'transmis', st_accepted: 'accepté', st_rejected: 'refusé', all: 'tous',
    accept: 'Accepter', reject: 'Refuser', escalate: 'Transmettre à l’académie', stepFor: (a, h) => `${a} : ${h}`, confirmStep: 'Valider',
    stepDone: (a, h) => `${h} : ${a}.`, deliveries: 'Envois', acceptAdds: (l) => `Ajoute le site à la liste ${l} (nouvelle version de la politique).`,
  },
  {
    reports: 'Reports', openCount: (n) => `${n} report(s) waiting`, kindAllow: 'to allow', kindBlock: 'to block',
    comment: 'Comment', state: 'Status', st_open: 'open', st_escalated: 'escalated', st_accepted: 'accepted', st_rejected: 'rejected', all: 'all',
    accept: 'Accept', reject: 'Reject', escalate: 'Escalate to the academy', stepFor: (a, h) => `${a}: ${h}`, confirmStep: 'Confirm',
    stepDone: (a, h) => `${h}: ${a}.`, deliveries: 'Deliveries', acceptAdds: (l) => `Adds the host to the list ${l} (a new policy version).`,
  },
);

const closed = (r) => r.status === 'accepted' || r.status === 'rejected';

export function Reports({ me }) {
  const [filter, setFilter] = useState({ status: 'open', kind: '' });
  const [data, error, reload] = useLoad(() => api('GET', `/reports${query({ ...filter, limit: 500 })}`), [filter.status, filter.kind]);
  const [acting, setActing] = useState(null);
  const [done, setDone] = useState(null);
  const [actionError, setActionError] = useState(null);
  const [busy, setBusy] = useState(false);
  // The step's form takes the keyboard's focus when it opens (its reason field).
  useEffect(() => { if (acting) document.querySelector('#report-step input')?.focus(); }, [acting]);
  const search = (e) => {
    e.preventDefault();
    const v = formData(e);
    setFilter({ status: v.status, kind: v.kind });
  };
  const step = async (e) => {
    e.preventDefault();
    const reason = formData(e).reason.trim();
    setBusy(true);
    setActionError(null);
    try {
      const out = await api('POST', `/reports/${encodeURIComponent(acting.report.id)}`, { action: acting.action, reason });
      setDone({ ...out, action: acting.action });
      setActing(null);
      reload();
    } catch (err) { setActionError(err); } finally { setBusy(false); }
  };
  const label = (a) => t(a);
  const buttons = (r) => closed(r) ? '' : html`<span class="actions">${['reject', 'escalate', ...(me.role === 'admin' ? ['accept'] : [])]
    .filter((a) => !(a === 'escalate' && r.status === 'escalated'))
    .map((a) => html`<button type="button" class="small" onClick=${() => { setActing({ report: r, action: a }); setDone(null); setActionError(null); }} aria-label=${`${label(a)} ${r.host}`}>${label(a)}</button> `)}</span>`;
  return html`<section aria-labelledby="rp-h"><h2 id="rp-h">${t('reports')}</h2>
    <form class="inline" id="reports-filter" onSubmit=${search}>
      <${Select} label=${t('state')} name="status" value=${filter.status} options=${[['open', t('st_open')], ['escalated', t('st_escalated')], ['accepted', t('st_accepted')], ['rejected', t('st_rejected')], ['', t('all')]]} />
      <${Select} label=${t('kind')} name="kind" value=${filter.kind} options=${[['', t('all')], ['allow', t('kindAllow')], ['block', t('kindBlock')]]} />
      <button type="submit">${t('filter')}</button>
    </form>
    ${data ? html`<p id="reports-open" role="status">${t('openCount', data.open)}</p>` : null}
    ${acting ? html`<form class="inline" id="report-step" onSubmit=${step} aria-labelledby="step-h">
      <h3 id="step-h" class="wrap">${t('stepFor', label(acting.action), acting.report.host)}</h3>
      ${acting.action === 'accept' ? html`<p class="muted">${t('acceptAdds', acting.report.kind === 'allow' ? 'academy-allow' : 'academy-deny')}</p>` : null}
      <label class="field"><span>${t('reason')}</span><input name="reason" maxlength="500" required=${acting.action !== 'reject'} /></label>
      <button type="submit" disabled=${busy}>${t('confirmStep')}</button>
      <button type="button" class="small" onClick=${() => setActing(null)}>${t('close')}</button>
    </form>` : null}
    ${done ? html`<div id="report-done"><${Notice} text=${t('stepDone', t(`st_${done.report.status}`), done.report.host)} />
      ${done.deliveries ? html`<p class="muted">${t('deliveries')} : ${done.deliveries.map((d) => `${d.url} ${d.status || d.error || ''}`).join(', ')}</p>` : null}</div>` : null}
    <${ErrorBox} error=${error || actionError} />
    ${data ? html`<${Table} label=${t('reports')} head=${[t('time'), t('kind'), t('host'), t('profile'), t('comment'), t('state'), '']}
      rows=${data.reports.map((r) => [fmtTime(Date.parse(r.time)), r.kind === 'allow' ? t('kindAllow') : t('kindBlock'), r.host, r.profile || '—',
        html`<span class="wrap">${r.comment || ''}</span>`, t(`st_${r.status}`), buttons(r)])} />` : html`<p>${t('loading')}</p>`}
  </section>`;
}
