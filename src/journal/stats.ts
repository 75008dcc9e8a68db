import type Database from 'better-sqlite3';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { HOUR } from './aggregate.js';
import { BLOCK_SQL } from './schema.js';
import type { JournalFilter, ProfileSummary, StatsBucket, StatsRow } from './types.js';

/** Row ids read per slice of a summary's row reads: a few milliseconds of work each. */
const SLICE_IDS = 20_000;

export interface Part {
  p: number;
  base: number;
  lag: number;
  start: number;
  end: number;
}

export interface Ctx {
  profile: string | null;
  category: string | null;
  policyVersion: number;
  retarget: string | null;
}

/** A filter turned into SQL for one partition; null = cannot match anything. */
export interface Plan {
  where: string;
  params: (number | string)[];
}

/** What statistics need of the reader (reader.ts): its statements, partitions, plans and contexts. */
export interface RowSource {
  stmt(sql: string): Database.Statement;
  parts(filter: JournalFilter): Part[];
  plan(part: Part, filter: JournalFilter): Plan | null;
  ctx(id: number): Ctx;
  /** Every context id, loaded. */
  ctxIds(): Map<number, Ctx>;
  idOf(dict: string, v: string): number | undefined;
  /** Whether the counters (aggregate.ts) may be read: present, and not turned off. */
  aggregated(): boolean;
}

/** What a filter reads: full hours from the counters, the rest (partial hours, other filters) from rows. */
interface Pieces {
  rows: JournalFilter[];
  /** Hours [lo, hi) read from the counters (null bound: open); null: none. */
  hours: { lo: number | null; hi: number | null } | null;
}

function pieces(src: RowSource, f: JournalFilter): Pieces {
  // Counters know the hour, the context and the decision: any other filter reads the rows.
  if (!src.aggregated() || f.client !== undefined || f.user !== undefined || f.host !== undefined) return { rows: [f], hours: null };
  const lo = f.from === undefined ? null : Math.ceil(f.from / HOUR);
  const hi = f.to === undefined ? null : Math.floor(f.to / HOUR);
  if (lo !== null && hi !== null && lo >= hi) return { rows: [f], hours: null };
  const rows: JournalFilter[] = [];
  if (f.from !== undefined && f.from < lo! * HOUR) rows.push({ ...f, to: lo! * HOUR });
  if (f.to !== undefined && hi! * HOUR < f.to) rows.push({ ...f, from: hi! * HOUR });
  return { rows, hours: { lo, hi } };
}

/** The counters' WHERE for an hour range and the filter's profile and category; null: nothing matches. */
function hoursWhere(src: RowSource, hours: { lo: number | null; hi: number | null }, f: JournalFilter): { sql: string; params: number[] } | null {
  const where: string[] = [];
  const params: number[] = [];
  if (hours.lo !== null) where.push('h >= ?'), params.push(hours.lo);
  if (hours.hi !== null) where.push('h < ?'), params.push(hours.hi);
  if (f.profile !== undefined || f.category !== undefined) {
    const ids = [...src.ctxIds()].filter(([, c]) => (f.profile === undefined || c.profile === f.profile) && (f.category === undefined || c.category === f.category)).map(([id]) => id);
    if (!ids.length) return null;
    where.push(`cx IN (${ids.join(',')})`);
  }
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', params };
}

/** Requests and blocks of a counter row under the filter's decision. */
const underDecision = (f: JournalFilter, n: number, b: number): [number, number] => (f.decision === 'block' ? [b, b] : f.decision === 'allow' ? [n - b, 0] : [n, b]);

/** Requests and blocks per hour (ms) and context. */
type HourTally = Map<number, Map<number, [number, number]>>;

function addHour(acc: HourTally, hourMs: number, cx: number, n: number, b: number): void {
  if (!n) return;
  let m = acc.get(hourMs);
  if (!m) acc.set(hourMs, (m = new Map()));
  const v = m.get(cx);
  if (v) (v[0] += n), (v[1] += b);
  else m.set(cx, [n, b]);
}

/** Requests and blocks per bucket, profile and category. */
export function stats(src: RowSource, filter: JournalFilter, bucket: StatsBucket, dayStart: (ms: number) => number): StatsRow[] {
  const acc: HourTally = new Map();
  const { rows, hours } = pieces(src, filter);
  if (hours && bucket === 'day' && hours.lo !== null && hours.hi !== null) {
    // One query per day, summed by SQLite: a month of hours is tens of thousands of counter rows,
    // which is slow to hand to JavaScript one object each. A day holds the hours that start in it.
    for (let day = dayStart(hours.lo * HOUR); Math.ceil(day / HOUR) < hours.hi; ) {
      const next = dayStart(day + 30 * HOUR);
      const w = hoursWhere(src, { lo: Math.max(hours.lo, Math.ceil(day / HOUR)), hi: Math.min(hours.hi, Math.ceil(next / HOUR)) }, filter);
      if (!w) break;
      for (const g of src.stmt(`SELECT cx, sum(n) AS n, sum(b) AS b FROM agg_hour ${w.sql} GROUP BY cx`).all(...w.params) as { cx: number; n: number; b: number }[]) {
        addHour(acc, day, g.cx, ...underDecision(filter, g.n, g.b));
      }
      day = next;
    }
  } else if (hours) {
    const w = hoursWhere(src, hours, filter);
    if (w) {
      for (const g of src.stmt(`SELECT h, cx, n, b FROM agg_hour ${w.sql}`).all(...w.params) as { h: number; cx: number; n: number; b: number }[]) {
        addHour(acc, g.h * HOUR, g.cx, ...underDecision(filter, g.n, g.b));
      }
    }
  }
  for (const f of rows) {
    for (const part of src.parts(f)) {
      const plan = src.plan(part, f);
      if (!plan) continue;
      const got = src.stmt(
        `SELECT (c.t + ${part.base}) / ${HOUR} AS h, c.cx, count(*) AS n, sum(${BLOCK_SQL}) AS b
         FROM c_${part.p} c ${plan.where ? `WHERE ${plan.where}` : ''} GROUP BY h, c.cx`,
      ).all(...plan.params) as { h: number; cx: number; n: number; b: number }[];
      for (const g of got) addHour(acc, g.h * HOUR, g.cx, g.n, g.b);
    }
  }
  const out = new Map<string, StatsRow>();
  for (const [hour, byCx] of acc) {
    const b = bucket === 'hour' ? hour : dayStart(hour);
    for (const [cx, [n, bl]] of byCx) {
      const { profile, category } = src.ctx(cx);
      const key = `${b}\u0000${profile}\u0000${category}`;
      const s = out.get(key);
      if (s) (s.requests += n), (s.blocked += bl);
      else out.set(key, { bucket: b, profile, category, requests: n, blocked: bl });
    }
  }
  return [...out.values()].sort((a, b) => a.bucket - b.bucket || String(a.profile).localeCompare(String(b.profile)) || String(a.category).localeCompare(String(b.category)));
}

/**
 * Per profile: requests, blocks by category and host, and requests opened by overrides. Full hours
 * come from the counters; rows (partial hours, or filters the counters do not know) are read in
 * slices of SLICE_IDS row ids with a turn of the event loop between slices.
 */
export async function summary(src: RowSource, filter: JournalFilter, top: number): Promise<ProfileSummary[]> {
  // cx → host id → [requests, blocked, overridden]; cx → [requests, blocked]
  const byHost = new Map<number, Map<number, [number, number, number]>>();
  const byCx = new Map<number, [number, number]>();
  const add = (cx: number, ho: number | null, n: number, b: number, o: number) => {
    if (ho !== null) {
      let hosts = byHost.get(cx);
      if (!hosts) byHost.set(cx, (hosts = new Map()));
      const h = hosts.get(ho);
      if (h) (h[0] += n), (h[1] += b), (h[2] += o);
      else hosts.set(ho, [n, b, o]);
      return;
    }
    const c = byCx.get(cx);
    if (c) (c[0] += n), (c[1] += b);
    else byCx.set(cx, [n, b]);
  };
  const { rows, hours } = pieces(src, filter);
  if (hours) {
    const w = hoursWhere(src, hours, filter);
    if (w) {
      for (const g of src.stmt(`SELECT cx, sum(n) AS n, sum(b) AS b FROM agg_hour ${w.sql} GROUP BY cx`).all(...w.params) as { cx: number; n: number; b: number }[]) {
        add(g.cx, null, ...underDecision(filter, g.n, g.b), 0);
      }
      for (const g of src.stmt(`SELECT cx, ho, sum(b) AS b, sum(o) AS o FROM agg_host ${w.sql} GROUP BY cx, ho`).all(...w.params) as { cx: number; ho: number; b: number; o: number }[]) {
        add(g.cx, g.ho, 0, filter.decision === 'allow' ? 0 : g.b, filter.decision === 'block' ? 0 : g.o);
      }
    }
  }
  const override = src.idOf('rule', 'override') ?? -1;
  for (const f of rows) {
    for (const part of src.parts(f)) {
      const plan = src.plan(part, f);
      if (!plan) continue;
      const span = src.stmt(`SELECT min(id) AS lo, max(id) AS hi FROM c_${part.p}`).get() as { lo: number | null; hi: number | null };
      if (span.lo === null || span.hi === null) continue;
      const cond = [plan.where, 'c.id >= ?', 'c.id < ?'].filter(Boolean).join(' AND ');
      const stmt = src.stmt(
        `SELECT c.cx, c.ho, count(*) AS n, sum(${BLOCK_SQL}) AS b, sum(((c.k / 8192) % 256) = ${override} AND ${BLOCK_SQL} = 0) AS o
         FROM c_${part.p} c WHERE ${cond} GROUP BY c.cx, c.ho`,
      );
      for (let from = span.lo; from <= span.hi; from += SLICE_IDS) {
        for (const g of stmt.all(...plan.params, from, from + SLICE_IDS) as { cx: number; ho: number; n: number; b: number; o: number }[]) {
          add(g.cx, g.ho, g.n, g.b, g.o);
          add(g.cx, null, g.n, g.b, 0);
        }
        await yieldToLoop();
      }
    }
  }
  const out = new Map<string | null, { s: ProfileSummary; cats: Map<string | null, number>; hosts: Map<number, [number, number, number]> }>();
  const entry = (profile: string | null) => {
    let e = out.get(profile);
    if (!e) out.set(profile, (e = { s: { profile, requests: 0, blocked: 0, blockedByCategory: [], topBlockedHosts: [], overridden: [] }, cats: new Map(), hosts: new Map() }));
    return e;
  };
  for (const [cx, [n, b]] of byCx) {
    const { profile, category } = src.ctx(cx);
    const e = entry(profile);
    e.s.requests += n;
    e.s.blocked += b;
    if (b) e.cats.set(category, (e.cats.get(category) ?? 0) + b);
  }
  for (const [cx, hosts] of byHost) {
    const e = entry(src.ctx(cx).profile);
    for (const [ho, v] of hosts) {
      const h = e.hosts.get(ho);
      if (h) (h[0] += v[0]), (h[1] += v[1]), (h[2] += v[2]);
      else e.hosts.set(ho, [...v]);
    }
  }
  const hostName = (id: number) => (src.stmt('SELECT v FROM d_host WHERE id = ?').pluck().get(id) as string | undefined) ?? `#${id}`;
  const topOf = (hosts: Map<number, [number, number, number]>, i: 1 | 2) =>
    [...hosts].filter(([, v]) => v[i] > 0).sort((a, b) => b[1][i] - a[1][i] || a[0] - b[0]).slice(0, top).map(([id, v]) => ({ host: hostName(id), n: v[i] }));
  return [...out.values()]
    .map(({ s, cats, hosts }) => ({
      ...s,
      blockedByCategory: [...cats].map(([category, blocked]) => ({ category, blocked })).sort((a, b) => b.blocked - a.blocked),
      topBlockedHosts: topOf(hosts, 1).map(({ host, n }) => ({ host, blocked: n })),
      overridden: topOf(hosts, 2).map(({ host, n }) => ({ host, requests: n })),
    }))
    .sort((a, b) => String(a.profile).localeCompare(String(b.profile)));
}
