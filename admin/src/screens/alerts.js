// Alerts (admin, referent: safeguarding; admin, supervisor: security): the queue, each alert with
// why it fired (rule, matching hosts and times), to acknowledge or dismiss with a reason (audited).
// Its words live here, French first, so the shared dictionary only gains the screen's name.
import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import { currentLang, fmtTime } from '../i18n.js';
import { html, useLoad, ErrorBox, Notice, Select, Table } from '../ui.js';

const FR = {
  title: 'Alertes', status: 'État', open: 'ouvertes', acknowledged: 'prises en compte', dismissed: 'écartées', all: 'toutes',
  when: 'Dernière', kind: 'Type', severity: 'Gravité', profile: 'Profil', subject: 'Poste ou utilisateur', categories: 'Catégories',
  count: 'Nombre', why: 'Pourquoi', requests: 'Requêtes en cause (site, heure)', handle: 'Traitement', reason: 'Motif (journalisé)',
  ack: 'Prendre en compte', dismiss: 'Écarter', done: 'Enregistré.', openCount: (n) => `${n} alerte(s) ouverte(s)`,
  safeguarding: 'protection', security: 'sécurité', by: (w, r) => `${w}${r ? ` : « ${r} »` : ''}`,
  types: { watch: 'blocages répétés', terms: 'terme surveillé', malware: 'malveillant / hameçonnage', 'bundle-refused': 'paquet refusé', 'fail-closed': 'fermeture par défaut', 'unclean-stop': 'arrêt brutal', 'ship-lag': 'retard d’envoi', 'auth-failures': 'échecs d’authentification', 'config-changed': 'configuration modifiée' },
};
const EN = {
  title: 'Alerts', status: 'Status', open: 'open', acknowledged: 'acknowledged', dismissed: 'dismissed', all: 'all',
  when: 'Last', kind: 'Kind', severity: 'Severity', profile: 'Profile', subject: 'Device or user', categories: 'Categories',
  count: 'Count', why: 'Why', requests: 'Matching requests (host, time)', handle: 'Handling', reason: 'Reason (recorded)',
  ack: 'Acknowledge', dismiss: 'Dismiss', done: 'Saved.', openCount: (n) => `${n} open alert(s)`,
  safeguarding: 'safeguarding', security: 'security', by: (w, r) => `${w}${r ? `: “${r}”` : ''}`,
  types: { watch: 'repeated blocks', terms: 'watched term', malware: 'malware / phishing', 'bundle-refused': 'bundle refused', 'fail-closed': 'failing closed', 'unclean-stop': 'unclean stop', 'ship-lag': 'shipping lag', 'auth-failures': 'authentication failures', 'config-changed': 'config changed' },
};
const w = () => (currentLang() === 'en' ? EN : FR);

function Handle({ alert, onDone }) {
  const [error, setError] = useState(null);
  const send = async (e, action) => {
    e.preventDefault();
    const reason = e.currentTarget.form.elements.reason.value.trim();
    setError(null);
    try {
      await api('POST', `/alerts/${encodeURIComponent(alert.id)}`, { action, reason });
      onDone();
    } catch (err) { setError(err); }
  };
  if (alert.status !== 'open') return html`<span>${w()[alert.status]} — ${w().by(alert.by, alert.reason)}</span>`;
  return html`<form class="alert-handle" id=${`handle-${alert.id}`}>
    <label class="field"><span>${w().reason}</span><input name="reason" maxlength="500" /></label>
    <button type="submit" id=${`ack-${alert.id}`} onClick=${(e) => send(e, 'acknowledge')}>${w().ack}</button>
    <button type="button" class="small" id=${`dismiss-${alert.id}`} onClick=${(e) => send(e, 'dismiss')}>${w().dismiss}</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

export function Alerts() {
  const [status, setStatus] = useState('open');
  const [notice, setNotice] = useState('');
  const [data, error, reload] = useLoad(() => api('GET', `/alerts${query({ status: status === 'all' ? '' : status, limit: 200 })}`), [status]);
  const d = w();
  const done = () => { setNotice(d.done); reload(); };
  return html`<section aria-labelledby="alerts-h"><h2 id="alerts-h">${d.title}</h2>
    <form class="inline" onSubmit=${(e) => e.preventDefault()}>
      <${Select} label=${d.status} id="alerts-status" value=${status} onChange=${(e) => setStatus(e.currentTarget.value)}
        options=${['open', 'acknowledged', 'dismissed', 'all'].map((s) => [s, d[s]])} />
    </form>
    <${Notice} text=${notice} />
    <${ErrorBox} error=${error} />
    ${data ? html`<p id="alerts-open">${d.openCount(data.open)}</p>
      <${Table} label=${d.title} head=${[d.when, d.kind, d.severity, d.profile, d.subject, d.categories, d.count, d.why, d.handle]}
        rows=${data.alerts.map((a) => [
          fmtTime(Date.parse(a.updated)), `${d[a.kind]} : ${d.types[a.type] ?? a.type}`, a.severity, a.profile ?? '', a.subject ?? '', a.categories.join(', '), a.count,
          html`<details class="alert-why"><summary>${a.rule}</summary><ul class="evidence">${a.evidence.map((e) => html`<li>${e.host} — ${fmtTime(Date.parse(e.time))}${e.term ? ` (${e.term})` : ''}</li>`)}</ul></details>`,
          html`<${Handle} alert=${a} onDone=${done} />`,
        ])} />` : null}
  </section>`;
}
