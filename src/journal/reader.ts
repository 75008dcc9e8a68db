import Database from 'better-sqlite3';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { hasAggregates } from './aggregate.js';
import { formatHead, readHead } from './head.js';
import { BLOCK_SQL, monthRange, unpackK } from './schema.js';
import { stats, summary, type Ctx, type Part, type Plan, type RowSource } from './stats.js';
import type { JournalFilter, JournalHealth, JournalReader, JournalRow, ProfileSummary, SearchPage, StatsBucket, StatsRow } from './types.js';

interface RawRow {
  id: number;
  t: number;
  client: string;
  user: string | null;
  cx: number;
  host: string;
  po: number | null;
  path: string | null;
  k: number;
  bi: number;
  bo: number;
  du: number;
}

import { CSV_COLUMNS, csvLine, exportTrailer } from './export-format.js';
export { CSV_COLUMNS, csvLine, exportTrailer };

export interface ReaderOptions {
  /** Time zone of the `day` buckets of stats (hours are the same everywhere that matters). */
  timezone?: string;
  /** Rows per query page of export. */
  pageRows?: number;
  /** Statistics read the counters (aggregate.ts) when the file has them; false reads rows only (tests). */
  aggregates?: boolean;
}

/**
 * Reads the journal through its own read-only connection: search pages, streamed exports, stats.
 * Time ranges map to row-id ranges through the chain (written time, per-month lag), so a day of one
 * client is an index range in one month, whatever the journal's size.
 */
export class JournalQuery implements JournalReader, RowSource {
  readonly db: Database.Database;
  private readonly small = new Map<string, Map<number, string>>();
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly tz: string;
  private readonly pageRows: number;
  private readonly useAggregates: boolean;

  constructor(file: string, opts: ReaderOptions = {}) {
    this.db = new Database(file, { readonly: true, fileMustExist: true });
    this.db.pragma('busy_timeout = 2000');
    this.tz = opts.timezone ?? 'UTC';
    this.pageRows = opts.pageRows ?? 2000;
    this.useAggregates = opts.aggregates ?? true;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  health(): JournalHealth {
    return { writable: false, queueDepth: 0, rowsWritten: 0, rowsLost: 0, writerBoosts: 0, writerPauses: 0, writerRestarts: 0, uncleanStops: 0, lastError: null };
  }

  stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      if (this.stmts.size > 256) this.stmts.clear();
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  private ctxs = new Map<number, Ctx>();
  /** A row's profile, category and policy version (a small table, reloaded on a miss). */
  ctx(id: number): Ctx {
    let c = this.ctxs.get(id);
    if (!c) {
      this.ctxs = new Map(
        (this.stmt('SELECT id, v FROM d_ctx').all() as { id: number; v: string }[]).map((r) => {
          let ctx: [string | null, string | null, number, string?] = [null, null, -1];
          try {
            ctx = JSON.parse(r.v) as typeof ctx;
          } catch {
            // an edited file: verify reports it; reading goes on
          }
          return [r.id, { profile: ctx[0] ?? null, category: ctx[1] ?? null, policyVersion: ctx[2] ?? -1, retarget: ctx[3] ?? null }];
        }),
      );
      c = this.ctxs.get(id) ?? { profile: null, category: null, policyVersion: -1, retarget: null };
    }
    return c;
  }

  /** Every context, reloaded only when the table has grown (contexts are only ever added). */
  ctxIds(): Map<number, Ctx> {
    const max = (this.stmt('SELECT max(id) FROM d_ctx').pluck().get() as number | null) ?? 0;
    if (max > 0 && !this.ctxs.has(max)) this.ctx(max);
    return this.ctxs;
  }

  aggregated(): boolean {
    return this.useAggregates && hasAggregates(this.db);
  }

  /** Names of a small interned table (methods, rules), reloaded on a miss. */
  private name(dict: 'method' | 'rule', id: number | null): string | null {
    if (id === null) return null;
    let m = this.small.get(dict);
    let v = m?.get(id);
    if (v === undefined) {
      m = new Map((this.stmt(`SELECT id, v FROM d_${dict}`).all() as { id: number; v: string }[]).map((r) => [r.id, r.v]));
      this.small.set(dict, m);
      v = m.get(id);
    }
    return v ?? `#${id}`;
  }

  idOf(dict: string, v: string): number | undefined {
    return this.stmt(`SELECT id FROM d_${dict} WHERE v = ?`).pluck().get(v) as number | undefined;
  }

  parts(filter: JournalFilter): Part[] {
    const all = this.stmt('SELECT p, base, lag FROM parts ORDER BY p').all() as { p: number; base: number; lag: number }[];
    return all
      .map((r) => ({ ...r, ...monthRange(r.p), base: r.base }))
      .filter((r) => (filter.from === undefined || r.end > filter.from) && (filter.to === undefined || r.start < filter.to));
  }

  /** Exclusive lower id bound: rows starting at or after `from` were written at or after it. */
  private idAfter(from: number | undefined): number {
    if (from === undefined) return 0;
    const e = this.stmt('SELECT id FROM chain WHERE wt >= ? ORDER BY wt, id LIMIT 1').pluck().get(from) as number | undefined;
    if (e === undefined) return Number.MAX_SAFE_INTEGER;
    return (this.stmt('SELECT hi FROM chain WHERE id < ? AND hi IS NOT NULL ORDER BY id DESC LIMIT 1').pluck().get(e) as number | undefined) ?? 0;
  }

  /** Inclusive upper id bound: rows starting before `to` were written before `to + lag`. */
  private idBefore(to: number | undefined, lag: number): number {
    if (to === undefined) return Number.MAX_SAFE_INTEGER;
    const f = this.stmt('SELECT id FROM chain WHERE wt >= ? ORDER BY wt, id LIMIT 1').pluck().get(to + lag) as number | undefined;
    if (f === undefined) return Number.MAX_SAFE_INTEGER;
    const lo = this.stmt('SELECT lo FROM chain WHERE id >= ? AND lo IS NOT NULL ORDER BY id LIMIT 1').pluck().get(f) as number | undefined;
    return lo === undefined ? Number.MAX_SAFE_INTEGER : lo - 1;
  }

  /** The filter's conditions for one partition, ids resolved; null when nothing can match. */
  plan(part: Part, f: JournalFilter): Plan | null {
    const where: string[] = [];
    const params: (number | string)[] = [];
    const lo = this.idAfter(f.from);
    const hi = this.idBefore(f.to, part.lag);
    if (lo >= hi) return null;
    if (lo > 0) {
      where.push('c.id > ?');
      params.push(lo);
    }
    if (hi < Number.MAX_SAFE_INTEGER) {
      where.push('c.id <= ?');
      params.push(hi);
    }
    if (f.from !== undefined && f.from > part.start) {
      where.push('c.t >= ?');
      params.push(f.from - part.base);
    }
    if (f.to !== undefined && f.to < part.end) {
      where.push('c.t < ?');
      params.push(f.to - part.base);
    }
    for (const [key, dict, col] of [
      ['client', 'client', 'cl'],
      ['user', 'user', 'us'],
    ] as const) {
      const v = f[key];
      if (v === undefined) continue;
      const id = this.idOf(dict, v);
      if (id === undefined) return null;
      where.push(`c.${col} = ?`);
      params.push(id);
    }
    if (f.profile !== undefined || f.category !== undefined) {
      const ids = [...this.ctxIds()].filter(([, c]) => (f.profile === undefined || c.profile === f.profile) && (f.category === undefined || c.category === f.category)).map(([id]) => id);
      if (!ids.length) return null;
      where.push(`c.cx IN (${ids.join(',')})`);
    }
    if (f.host !== undefined) {
      const h = f.host.toLowerCase().replace(/\.$/, '');
      where.push('c.ho IN (SELECT id FROM d_host WHERE v = ? OR (length(v) > ? AND substr(v, ?) = ?))');
      params.push(h, h.length + 1, -(h.length + 1), `.${h}`);
    }
    if (f.decision !== undefined) {
      where.push(`${BLOCK_SQL} = ?`);
      params.push(f.decision === 'block' ? 1 : 0);
    }
    return { where: where.join(' AND '), params };
  }

  private select(p: number, plan: Plan, extra: string, order: 'ASC' | 'DESC'): Database.Statement {
    const cond = [plan.where, extra].filter(Boolean).join(' AND ');
    return this.stmt(
      `SELECT c.id, c.t, cl.v AS client, us.v AS user, c.cx, ho.v AS host, c.po, pa.v AS path, c.k, c.bi, c.bo, c.du
       FROM c_${p} c LEFT JOIN d_client cl ON cl.id = c.cl LEFT JOIN d_host ho ON ho.id = c.ho LEFT JOIN d_user us ON us.id = c.us
       LEFT JOIN d_path pa ON pa.id = c.pa
       ${cond ? `WHERE ${cond}` : ''} ORDER BY c.id ${order} LIMIT ?`,
    );
  }

  private toRow(r: RawRow, base: number): JournalRow {
    const k = unpackK(r.k);
    const scheme = k.connect ? 'connect' : 'http';
    const cx = this.ctx(r.cx);
    return {
      id: r.id,
      time: r.t + base,
      client: r.client,
      user: r.user,
      profile: cx.profile,
      method: this.name('method', k.method) ?? '',
      scheme,
      host: r.host,
      port: r.po ?? (k.connect ? 443 : 80),
      path: r.path,
      status: k.status,
      bytesIn: r.bi,
      bytesOut: r.bo,
      durationMs: r.du,
      decision: k.block ? 'block' : 'allow',
      category: cx.category,
      rule: this.name('rule', k.rule) ?? '',
      policyVersion: cx.policyVersion,
      retarget: cx.retarget,
    };
  }

  /**
   * One page of rows in recording order (`order: 'desc'` for the newest first). Within a month rows
   * follow their id; months follow each other.
   */
  search(filter: JournalFilter, page: { limit: number; cursor?: string | null; order?: 'asc' | 'desc' }): SearchPage {
    const limit = Math.max(1, Math.min(10_000, Math.floor(page.limit) || 100));
    const desc = page.order === 'desc';
    let cur: { p: number; id: number } | null = null;
    if (page.cursor) {
      const m = /^(\d{6}):(\d+)$/.exec(page.cursor);
      if (!m) throw new RangeError(`invalid cursor "${page.cursor}"`);
      cur = { p: Number(m[1]), id: Number(m[2]) };
    }
    let parts = this.parts(filter);
    if (desc) parts = parts.reverse();
    const rows: JournalRow[] = [];
    let last: { p: number; id: number } | null = null;
    for (const part of parts) {
      if (cur && (desc ? part.p > cur.p : part.p < cur.p)) continue;
      const plan = this.plan(part, filter);
      if (!plan) continue;
      const extra = cur && cur.p === part.p ? (desc ? 'c.id < ?' : 'c.id > ?') : '';
      const params = extra ? [...plan.params, cur!.id] : plan.params;
      const got = this.select(part.p, plan, extra, desc ? 'DESC' : 'ASC').all(...params, limit - rows.length) as RawRow[];
      for (const r of got) rows.push(this.toRow(r, part.base));
      if (got.length) last = { p: part.p, id: got[got.length - 1]!.id };
      if (rows.length >= limit) break;
    }
    return { rows, nextCursor: rows.length >= limit && last ? `${last.p}:${last.id}` : null };
  }

  /**
   * Streams matching rows, oldest month first, in pages so no read transaction stays open. The
   * last line gives the chain head read after the last row (exportTrailer): kept with the export,
   * `vigie journal verify --head` proves later that the journal still holds what it covered.
   */
  async *export(filter: JournalFilter, format: 'csv' | 'jsonl'): AsyncIterable<string> {
    let n = 0;
    if (format === 'csv') yield CSV_COLUMNS.join(',') + '\n';
    for (const part of this.parts(filter)) {
      const plan = this.plan(part, filter);
      if (!plan) continue;
      const stmt = this.select(part.p, plan, 'c.id > ?', 'ASC');
      let after = 0;
      for (;;) {
        const got = stmt.all(...plan.params, after, this.pageRows) as RawRow[];
        if (!got.length) break;
        let out = '';
        for (const r of got) {
          const row = this.toRow(r, part.base);
          out += (format === 'csv' ? csvLine(row) : JSON.stringify(row)) + '\n';
        }
        after = got[got.length - 1]!.id;
        n += got.length;
        yield out;
        if (got.length < this.pageRows) break;
        await yieldToLoop();
      }
    }
    yield exportTrailer(format, formatHead(readHead(this.db).head), n, Date.now());
  }

  /** The chain head now, as `ID:HASH`. */
  head(): string {
    return formatHead(readHead(this.db).head);
  }

  /** Requests and blocks per bucket, profile and category (stats.ts). */
  stats(filter: JournalFilter, bucket: StatsBucket): StatsRow[] {
    return stats(this, filter, bucket, (ms) => this.dayStart(ms));
  }

  /** Per profile over the filter's range (stats.ts). */
  summary(filter: JournalFilter, top: number): Promise<ProfileSummary[]> {
    return summary(this, filter, top);
  }

  private dayFmt: Intl.DateTimeFormat | null = null;
  /** Local midnight (in the reader's time zone) of the day holding `ms`. */
  private dayStart(ms: number): number {
    this.dayFmt ??= new Intl.DateTimeFormat('en-GB', { timeZone: this.tz, hourCycle: 'h23', hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const parts = this.dayFmt.formatToParts(ms);
    const get = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
    return ms - ((get('hour') * 60 + get('minute')) * 60 + get('second')) * 1000;
  }
}
