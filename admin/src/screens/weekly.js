// The head teacher's weekly summary (supervisors and admins): per profile, blocks by category, the
// most blocked sites, teachers' unblocks and reports of one ISO week. Printable (the console's
// print style hides everything but the summary) and downloadable as CSV.
import { useState } from 'preact/hooks';
import { api, apiText, query } from '../api.js';
import { t, addTexts, fmtNum, fmtTime } from '../i18n.js';
import { html, useLoad, ErrorBox, Field, Table, formData } from '../ui.js';

addTexts(
  {
    weekly: 'Synthèse de la semaine', week: 'Semaine', show: 'Afficher', print: 'Imprimer', csv: 'Télécharger en CSV',
    section: 'Rubrique', item: 'Élément', value: 'Valeur', sec_total: 'total', sec_cat: 'blocages par catégorie', sec_host: 'site le plus bloqué',
    sec_opened: 'ouvert par un déblocage', sec_override: 'déblocage', sec_report: 'signalement', weekOf: (w, a, b) => `Semaine ${w}, du ${a} au ${b}`,
  },
  {
    weekly: 'Weekly summary', week: 'Week', show: 'Show', print: 'Print', csv: 'Download as CSV',
    section: 'Section', item: 'Item', value: 'Value', sec_total: 'total', sec_cat: 'blocks by category', sec_host: 'most blocked site',
    sec_opened: 'opened by an unblock', sec_override: 'unblock', sec_report: 'report', weekOf: (w, a, b) => `Week ${w}, ${a} to ${b}`,
  },
);

/** The ISO week (`2026-W49`) holding a date, in the browser's time. */
export function isoWeek(d = new Date()) {
  const x = new Date(Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()));
  const day = x.getUTCDay() || 7;
  x.setUTCDate(x.getUTCDate() + 4 - day);
  const y = x.getUTCFullYear();
  const n = Math.ceil(((x - Date.UTC(y, 0, 1)) / 86_400_000 + 1) / 7);
  return `${y}-W${String(n).padStart(2, '0')}`;
}

/** One line per figure, as the CSV has them. */
function lines(p) {
  const out = [
    [t('sec_total'), t('requests'), fmtNum(p.requests)],
    [t('sec_total'), t('blocked'), fmtNum(p.blocked)],
    ...p.blockedByCategory.map((c) => [t('sec_cat'), c.category || '—', fmtNum(c.blocked)]),
    ...p.topBlockedHosts.map((h) => [t('sec_host'), h.host, fmtNum(h.blocked)]),
    ...p.overridden.map((h) => [t('sec_opened'), h.host, fmtNum(h.requests)]),
    ...p.overrides.map((o) => [t('sec_override'), html`<span class="wrap">${o.host} → ${o.network}, ${o.minutes} min, ${o.reason} (${o.by}, ${fmtTime(Date.parse(o.at))})</span>`, '']),
    ...p.reports.map((r) => [t('sec_report'), `${r.host} (${r.kind === 'allow' ? t('kindAllow') : t('kindBlock')}, ${t(`st_${r.status}`)})`, fmtTime(Date.parse(r.time))]),
  ];
  return out.map((l) => [p.profile || '—', ...l]);
}

export function Weekly() {
  const [week, setWeek] = useState(isoWeek());
  const [data, error] = useLoad(() => api('GET', `/reports/weekly${query({ week })}`), [week]);
  const [csvError, setCsvError] = useState(null);
  const download = async () => {
    setCsvError(null);
    try {
      const { text } = await apiText(`/reports/weekly${query({ week, format: 'csv' })}`);
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
      a.download = `vigie-semaine-${week}.csv`;
      a.click();
    } catch (err) { setCsvError(err); }
  };
  // The week's bounds are midnights in the gateway's time zone: shown there, whatever the browser's.
  const day = (iso) => new Date(Date.parse(iso)).toLocaleDateString(undefined, { timeZone: data.timezone });
  return html`<section aria-labelledby="wk-h" id="weekly"><h2 id="wk-h">${t('weekly')}</h2>
    <form class="inline no-print" onSubmit=${(e) => { e.preventDefault(); setWeek(formData(e).week || isoWeek()); }}>
      <${Field} label=${t('week')} name="week" type="week" defaultValue=${week} />
      <button type="submit">${t('show')}</button>
      <button type="button" class="small" onClick=${() => print()}>${t('print')}</button>
      <button type="button" class="small" onClick=${download}>${t('csv')}</button>
    </form>
    <${ErrorBox} error=${error || csvError} />
    ${data ? html`<p>${t('weekOf', data.week, day(data.from), day(new Date(Date.parse(data.to) - 1).toISOString()))}</p>
      <div id="weekly-table"><${Table} label=${t('weekly')} head=${[t('profile'), t('section'), t('item'), t('value')]} rows=${data.profiles.flatMap(lines)} /></div>`
      : error ? null : html`<p>${t('loading')}</p>`}
  </section>`;
}
