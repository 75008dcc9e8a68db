// Dashboard: gateway health, requests and blocks per hour (24 h) and per day (30 days), top blocks.
import { api, query } from '../api.js';
import { t, fmtNum, fmtTime } from '../i18n.js';
import { html, useLoad, ErrorBox, Table } from '../ui.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;

/**
 * Sums stats rows into `count` buckets of `step` from `from`, every bucket present (zeros included).
 * A day bucket starts at the gateway's midnight, which may be a few hours off the browser's: the
 * nearest bucket takes it.
 */
function series(stats, from, step, count) {
  const out = Array.from({ length: count }, (_, i) => ({ start: from + i * step, requests: 0, blocked: 0 }));
  for (const r of stats.rows) {
    const b = out[Math.round((Date.parse(r.bucket) - from) / step)];
    if (!b) continue;
    b.requests += r.requests;
    b.blocked += r.blocked;
  }
  return out;
}

/** A bar chart in SVG (requests, with the blocked part darker), with a text summary for readers. */
function Bars({ data, label, fmt }) {
  const max = Math.max(1, ...data.map((d) => d.requests));
  const w = 100 / data.length;
  const total = data.reduce((s, d) => s + d.requests, 0);
  const blocked = data.reduce((s, d) => s + d.blocked, 0);
  return html`<figure class="chart">
    <svg viewBox="0 0 100 40" preserveAspectRatio="none" role="img" aria-label=${`${label}: ${t('requests')} ${fmtNum(total)}, ${t('blocked')} ${fmtNum(blocked)}`}>
      ${data.map((d, i) => html`<g><title>${fmt(d.start)} — ${t('requests')} ${fmtNum(d.requests)}, ${t('blocked')} ${fmtNum(d.blocked)}</title>
        <rect class="req" x=${i * w + w * 0.1} width=${w * 0.8} y=${40 - (d.requests / max) * 40} height=${(d.requests / max) * 40} />
        <rect class="blk" x=${i * w + w * 0.1} width=${w * 0.8} y=${40 - (d.blocked / max) * 40} height=${(d.blocked / max) * 40} /></g>`)}
    </svg>
    <figcaption>${label} — <span class="key-req">${t('requests')} ${fmtNum(total)}</span>, <span class="key-blk">${t('blocked')} ${fmtNum(blocked)}</span></figcaption>
  </figure>`;
}

function Health() {
  const [d, error] = useLoad(async () => {
    const [health, policy, lists] = await Promise.all([api('GET', '/health'), api('GET', '/policy'), api('GET', '/lists')]);
    return { health, policy, lists };
  });
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!d) return html`<p>${t('loading')}</p>`;
  const { health, policy, lists } = d;
  const j = health.journal;
  const ageMin = policy.time ? Math.round((Date.now() - Date.parse(policy.time)) / 60000) : null;
  return html`<dl class="health" id="health">
    <dt>${t('status')}</dt><dd class=${health.status === 'ok' ? 'good' : 'bad'}>${health.status}</dd>
    <dt>${t('policyVersion')}</dt><dd>${health.policyVersion}${policy.time ? ` (${fmtTime(Date.parse(policy.time))})` : ''}</dd>
    <dt>${t('policyAge')}</dt><dd>${ageMin === null ? '—' : ageMin < 120 ? `${ageMin} min` : `${Math.round(ageMin / 60)} h`}</dd>
    <dt>${t('listsLoaded')}</dt><dd class=${health.listsLoaded ? 'good' : 'bad'}>${health.listsLoaded ? t('yes') : t('no')} (${lists.ut1.categories.length} ${t('categories').toLowerCase()})</dd>
    <dt>${t('listVersion')}</dt><dd>${health.listVersion}</dd>
    <dt>${t('lists')}</dt><dd>${lists.academy.map((l) => `${l.name} v${l.version}`).join(', ') || t('none')}</dd>
    <dt>${t('journalState')}</dt><dd class=${j && j.writable ? 'good' : 'bad'}>${j ? `${j.writable ? t('writable') : t('notWritable')}, ${t('queue')} ${j.queueDepth}, ${t('lost')} ${j.rowsLost}${j.lastError ? `, ${j.lastError}` : ''}` : t('none')}</dd>
  </dl>`;
}

/** Per profile, the most blocked hosts of the last 24 hours (the journal's counters, /stats/top). */
function TopHosts({ to }) {
  const [d, error] = useLoad(() => api('GET', `/stats/top${query({ from: to - DAY, to, top: 5 })}`));
  if (error) return html`<${ErrorBox} error=${error} />`;
  const rows = [];
  for (const p of (d && d.profiles) || []) for (const h of p.topBlockedHosts) rows.push([p.profile || '—', h.host, fmtNum(h.blocked)]);
  return html`<section><h3>${t('topHosts')}</h3>${d ? html`<${Table} label=${t('topHosts')} head=${[t('profile'), t('host'), t('blocked')]} rows=${rows} />` : html`<p>${t('loading')}</p>`}</section>`;
}

export function Dashboard({ me }) {
  // Whole hours (to the end of the current one): the journal answers them from its counters alone.
  const to = Math.ceil((Date.now() + 1) / HOUR) * HOUR;
  const [d, error] = useLoad(async () => {
    const midnight = new Date(to - 1);
    midnight.setHours(0, 0, 0, 0);
    const [hours, days] = await Promise.all([
      api('GET', `/stats${query({ bucket: 'hour', from: to - 24 * HOUR, to })}`),
      api('GET', `/stats${query({ bucket: 'day', from: midnight.getTime() - 29 * DAY, to })}`),
    ]);
    return { hours, days, dayFrom: midnight.getTime() - 29 * DAY };
  });
  const hourFmt = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const dayFmt = (ms) => new Date(ms).toLocaleDateString();
  return html`<section aria-labelledby="dash-h"><h2 id="dash-h">${t('dashboard')}</h2>
    <div class="grid">
      <section><h3>${t('health')}</h3><${Health} /></section>
      ${error ? html`<${ErrorBox} error=${error} />` : !d ? html`<p>${t('loading')}</p>` : html`
        <section><${Bars} data=${series(d.hours, to - 24 * HOUR, HOUR, 24)} label=${t('perHour')} fmt=${hourFmt} /></section>
        <section><${Bars} data=${series(d.days, d.dayFrom, DAY, 30)} label=${t('perDay')} fmt=${dayFmt} /></section>
        <section><h3>${t('topCategories')}</h3><${Table} label=${t('topCategories')} head=${[t('categories'), t('blocked'), t('requests')]}
          rows=${d.days.byCategory.filter((c) => c.blocked > 0).sort((a, b) => b.blocked - a.blocked).slice(0, 10).map((c) => [c.name, fmtNum(c.blocked), fmtNum(c.requests)])} /></section>
        <section><h3>${t('profiles')}</h3><${Table} label=${t('profiles')} head=${[t('profile'), t('requests'), t('blocked')]}
          rows=${d.days.byProfile.map((c) => [c.name, fmtNum(c.requests), fmtNum(c.blocked)])} /></section>`}
      <${TopHosts} to=${to} />
    </div>
  </section>`;
}
