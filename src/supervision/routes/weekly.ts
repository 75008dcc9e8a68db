import type { FastifyInstance } from 'fastify';
import { parseTimeIn } from '../../policy/schedule.js';
import type { ProfileSummary } from '../../journal/types.js';
import { csvCell } from '../../journal/export-format.js';
import { audit, journalOf, problem, type ApiContext } from '../context.js';
import type { Role } from '../tokens.js';

const READERS: readonly Role[] = ['supervisor', 'admin'];
const TOP_HOSTS = 10;

/** Monday 00:00 to the next Monday 00:00 of ISO week `YYYY-Www`, as wall times in `timezone`; null when there is no such week. */
export function isoWeekRange(week: string, timezone: string): { from: number; to: number; days: [string, string] } | null {
  const m = /^(\d{4})-W(\d{2})$/.exec(week);
  if (!m) return null;
  const year = Number(m[1]);
  const n = Number(m[2]);
  // Week 1 holds 4 January; a year has 53 weeks when 1 January (or, leap, 31 December) is a Thursday.
  const jan4 = Date.UTC(year, 0, 4);
  const monday1 = jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * 86_400_000;
  const dec28 = Date.UTC(year, 11, 28);
  const weeks = Math.round((dec28 - ((new Date(dec28).getUTCDay() + 6) % 7) * 86_400_000 - monday1) / (7 * 86_400_000)) + 1;
  if (n < 1 || n > weeks) return null;
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  const start = monday1 + (n - 1) * 7 * 86_400_000;
  const next = start + 7 * 86_400_000;
  return { from: parseTimeIn(day(start), timezone), to: parseTimeIn(day(next), timezone), days: [day(start), day(next - 86_400_000)] };
}

/** The ISO week holding `ms` (UTC calendar), for the default. */
export function isoWeekOf(ms: number): string {
  const d = new Date(ms);
  const thursday = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) + (3 - ((d.getUTCDay() + 6) % 7)) * 86_400_000;
  const year = new Date(thursday).getUTCFullYear();
  const n = Math.floor((thursday - Date.UTC(year, 0, 1)) / (7 * 86_400_000)) + 1;
  return `${year}-W${String(n).padStart(2, '0')}`;
}

interface Weekly {
  week: string;
  from: string;
  to: string;
  timezone: string;
  profiles: (ProfileSummary & { overrides: { host: string; network: string; minutes: unknown; reason: unknown; by: string; at: string }[]; reports: { host: string; kind: string; status: string; time: string }[] })[];
}

/** One line per figure: `section,profile,key,value` (printable in a spreadsheet as it is). */
function toCsv(w: Weekly): string {
  const lines = [['week', 'profile', 'section', 'item', 'value'].join(',')];
  const row = (p: string | null, section: string, item: unknown, value: unknown) => lines.push([w.week, p ?? '(none)', section, item, value].map(csvCell).join(','));
  for (const p of w.profiles) {
    row(p.profile, 'requests', '', p.requests);
    row(p.profile, 'blocked', '', p.blocked);
    for (const c of p.blockedByCategory) row(p.profile, 'blocked by category', c.category ?? '(none)', c.blocked);
    for (const h of p.topBlockedHosts) row(p.profile, 'top blocked host', h.host, h.blocked);
    for (const o of p.overrides) row(p.profile, 'override', `${o.host} for ${o.network} by ${o.by} at ${o.at}: ${String(o.reason)}`, o.minutes);
    for (const h of p.overridden) row(p.profile, 'requests opened by overrides', h.host, h.requests);
    for (const r of p.reports) row(p.profile, `report (${r.kind})`, `${r.host} at ${r.time}`, r.status);
  }
  return lines.join('\r\n') + '\r\n';
}

export function registerWeeklyRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { week?: string; format: 'json' | 'csv' } }>('/api/v1/reports/weekly', {
    config: { roles: READERS },
    schema: {
      tags: ['reports'],
      summary: "The head teacher's week per profile: blocks by category, top blocked hosts, overrides, reports",
      querystring: { type: 'object', additionalProperties: false, properties: { week: { type: 'string', pattern: '^\\d{4}-W\\d{2}$' }, format: { enum: ['json', 'csv'], default: 'json' } } },
    },
  }, async (req, reply) => {
    const tz = ctx.gateway.config.timezone;
    const week = req.query.week ?? isoWeekOf(Date.now());
    const range = isoWeekRange(week, tz);
    if (!range) return problem(reply, 400, `querystring/week "${week}" is not an ISO week of that year`, { problems: [{ field: 'querystring/week', message: 'no such ISO week' }] });
    const journal = journalOf(ctx.gateway);
    const summaries = journal ? await journal.summary({ from: range.from, to: range.to }, TOP_HOSTS) : [];
    const created = await ctx.audit.query({ from: range.from, to: range.to, action: 'override.create', limit: 100_000 });
    const reports = (ctx.gateway.reports?.list() ?? []).filter((r) => r.time >= range.from && r.time < range.to);
    const byProfile = new Map<string | null, Weekly['profiles'][number]>();
    const get = (profile: string | null) => {
      let p = byProfile.get(profile);
      if (!p) byProfile.set(profile, (p = { profile, requests: 0, blocked: 0, blockedByCategory: [], topBlockedHosts: [], overridden: [], overrides: [], reports: [] }));
      return p;
    };
    for (const s of summaries) Object.assign(get(s.profile), s);
    for (const e of created.reverse()) {
      const d = e.details ?? {};
      get(typeof d.profile === 'string' ? d.profile : null).overrides.push({ host: String(d.host), network: String(d.network), minutes: d.minutes, reason: d.reason, by: e.actor, at: e.time });
    }
    for (const r of reports) get(r.profile).reports.push({ host: r.host, kind: r.kind, status: r.status, time: new Date(r.time).toISOString() });
    const out: Weekly = { week, from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString(), timezone: tz, profiles: [...byProfile.values()].sort((a, b) => String(a.profile).localeCompare(String(b.profile))) };
    await audit(ctx, req, 'reports.weekly', week, { week, format: req.query.format });
    if (req.query.format === 'csv') {
      reply.header('content-type', 'text/csv; charset=utf-8');
      reply.header('content-disposition', `attachment; filename="vigie-semaine-${week}.csv"`);
      reply.header('cache-control', 'no-store');
      return reply.send(toCsv(out));
    }
    return out;
  });
}
