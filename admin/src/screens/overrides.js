// Teachers' temporary unblocks: open a blocked site for a class's network for a few minutes, see
// those in force (a teacher: its own) and end one early. The block page links staff here with
// `#overrides/new?host=…&network=…`, which prefills the form.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { t, addTexts, fmtTime } from '../i18n.js';
import { html, useLoad, ErrorBox, Field, Notice, Table, formData } from '../ui.js';

addTexts(
  {
    overrides: 'Déblocages temporaires', unblock: 'Débloquer', unblockTitle: 'Débloquer un site pour une classe',
    classNetwork: 'Réseau de la classe (CIDR)', minutes: (max) => `Durée en minutes (au plus ${max})`, inForce: 'Déblocages en cours',
    expires: 'Fin', endNow: 'Terminer', confirmEnd: (h) => `Terminer le déblocage de ${h} ?`, byWhom: 'Par',
    unblocked: (h, n, at) => `${h} est débloqué pour ${n} jusqu’à ${at}.`, notBlocked: 'Ce site n’était pas bloqué pour cette classe ; le déblocage est gardé (un horaire peut le bloquer plus tard).',
    neverOpened: (c) => `Jamais débloquées : ${c}.`, networksHint: 'Réseaux de l’établissement',
  },
  {
    overrides: 'Temporary unblocks', unblock: 'Unblock', unblockTitle: 'Unblock a site for a class',
    classNetwork: 'Class network (CIDR)', minutes: (max) => `Duration in minutes (at most ${max})`, inForce: 'Unblocks in force',
    expires: 'Ends', endNow: 'End', confirmEnd: (h) => `End the unblock of ${h}?`, byWhom: 'By',
    unblocked: (h, n, at) => `${h} is unblocked for ${n} until ${at}.`, notBlocked: 'This site was not blocked for this class; the unblock is kept (a schedule may block it later).',
    neverOpened: (c) => `Never unblocked: ${c}.`, networksHint: 'The school’s networks',
  },
);

/** `#overrides/new?host=a&network=b` → { host, network }. */
function prefill() {
  const q = location.hash.indexOf('?');
  const p = new URLSearchParams(q === -1 ? '' : location.hash.slice(q + 1));
  return { host: p.get('host') || '', network: p.get('network') || '' };
}

export function Overrides({ me }) {
  const [data, error, reload] = useLoad(() => api('GET', '/overrides'));
  const [made, setMade] = useState(null);
  const [actionError, setActionError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [init] = useState(prefill);
  const max = data ? data.maxMinutes : 120;
  const create = async (e) => {
    e.preventDefault();
    const v = formData(e);
    setActionError(null);
    setMade(null);
    setBusy(true);
    try {
      setMade(await api('POST', '/overrides', { host: v.host.trim(), network: v.network.trim(), minutes: Number(v.minutes), reason: v.reason.trim() }));
      reload();
    } catch (err) { setActionError(err); } finally { setBusy(false); }
  };
  const end = async (o) => {
    if (!confirm(t('confirmEnd', o.host))) return;
    setActionError(null);
    try {
      await api('DELETE', `/overrides/${encodeURIComponent(o.id)}`);
      setMade(null);
      reload();
    } catch (err) { setActionError(err); }
  };
  const mine = me.role === 'teacher';
  return html`<section aria-labelledby="ov-h"><h2 id="ov-h">${t('overrides')}</h2>
    <h3>${t('unblockTitle')}</h3>
    <form class="inline" id="override-form" onSubmit=${create}>
      <${Field} label=${t('host')} name="host" required maxlength="255" defaultValue=${init.host} autocomplete="off" />
      <${Field} label=${t('classNetwork')} name="network" required maxlength="64" defaultValue=${init.network} list="ov-networks" autocomplete="off" />
      <datalist id="ov-networks">${(data ? data.networks || [] : []).map((n) => html`<option value=${n.network}>${n.profile}</option>`)}</datalist>
      <${Field} label=${t('minutes', max)} name="minutes" type="number" min="1" max=${max} required defaultValue=${Math.min(45, max)} />
      <${Field} label=${t('reason')} name="reason" required maxlength="500" />
      <button type="submit" disabled=${busy}>${t('unblock')}</button>
    </form>
    ${data ? html`<p class="muted">${t('neverOpened', data.nonOverridable.join(', '))}</p>` : null}
    ${made ? html`<div id="override-made"><${Notice} text=${t('unblocked', made.host, made.network, fmtTime(Date.parse(made.expires)))} />${made.wasBlocked ? null : html`<p class="warning">${t('notBlocked')}</p>`}</div>` : null}
    <${ErrorBox} error=${error || actionError} />
    <h3>${t('inForce')}</h3>
    ${data ? html`<${Table} label=${t('inForce')} head=${[t('host'), t('classNetwork').replace(/ \(CIDR\)$/, ''), t('whyCol'), ...(mine ? [] : [t('byWhom')]), t('expires'), '']}
      rows=${data.overrides.map((o) => [o.host, o.network, html`<span class="wrap">${o.reason}</span>`, ...(mine ? [] : [o.createdBy]), fmtTime(Date.parse(o.expires)),
        html`<button type="button" class="small" onClick=${() => end(o)} aria-label=${`${t('endNow')} ${o.host}`}>${t('endNow')}</button>`])} />` : html`<p>${t('loading')}</p>`}
  </section>`;
}
