import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type pg from 'pg';
import { CSV_COLUMNS, csvLine } from '../journal/reader.js';
import '../journal/ship-schema.js';
import type { JournalFilter, JournalRow, StatsBucket } from '../journal/types.js';
import { parseNetwork } from '../net/address.js';

/** The journal filters, plus where: a gateway, an establishment (UAI) or a client network. */
export interface AcademyFilter extends JournalFilter {
  gateway?: string;
  uai?: string;
  /** CIDR range (or one address) of client addresses. */
  network?: string;
}

export type AcademyRow = JournalRow & { gateway: string };

export interface AcademyPage {
  rows: AcademyRow[];
  nextCursor: string | null;
}

export interface AcademyStatsRow {
  bucket: number;
  gateway: string;
  profile: string | null;
  category: string | null;
  requests: number;
  blocked: number;
}

/** A filter value that cannot be used (an invalid network or cursor): a 400 naming the field. */
export class FilterError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

interface Where {
  sql: string;
  params: unknown[];
}

const SELECT = `SELECT gateway, id, t, client, usr, profile, category, policy_version, method, scheme, host, port, path, status, bytes_in, bytes_out, duration_ms, decision, rule FROM vigie_rows`;

const toRow = (r: Record<string, any>): AcademyRow => ({
  gateway: r.gateway,
  id: r.id,
  time: r.t,
  client: r.client,
  user: r.usr,
  profile: r.profile,
  method: r.method,
  scheme: r.scheme,
  host: r.host,
  port: r.port,
  path: r.path,
  status: r.status,
  bytesIn: r.bytes_in,
  bytesOut: r.bytes_out,
  durationMs: r.duration_ms,
  decision: r.decision,
  category: r.category,
  rule: r.rule,
  policyVersion: r.policy_version,
  // SafeSearch retargets are not shipped yet (docs/academy.md): the academy copy does not know them.
  retarget: null,
});

export const ACADEMY_CSV_COLUMNS = ['gateway', ...CSV_COLUMNS] as const;
/** The gateway's CSV line with the gateway first (names are [A-Za-z0-9_.-]; one starting with - or . is quoted). */
const academyCsvLine = (r: AcademyRow): string => `${/^[-.]/.test(r.gateway) ? `"${r.gateway}"` : r.gateway},${csvLine(r)}`;

/** Escapes LIKE's wildcards. */
const likeEscape = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);
const reverse = (s: string): string => [...s].reverse().join('');

/**
 * Reads the academy's PostgreSQL copy: search pages (keyset on time, gateway, id), streamed
 * exports and stats across every gateway. Each filter maps to an index of the month partitions:
 * client or network → (client_ip, t), user → (usr, t), host or parent domain → (reverse(host), t).
 */
export class AcademyJournal {
  constructor(
    private readonly pool: pg.Pool,
    private readonly timezone: string,
  ) {}

  private where(f: AcademyFilter): Where {
    const conds: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (f.from !== undefined) conds.push(`t >= ${p(f.from)}`);
    if (f.to !== undefined) conds.push(`t < ${p(f.to)}`);
    if (f.gateway !== undefined) conds.push(`gateway = ${p(f.gateway)}`);
    if (f.uai !== undefined) conds.push(`gateway IN (SELECT gateway FROM vigie_gateways WHERE uai = ${p(f.uai)})`);
    if (f.network !== undefined) {
      let net: string;
      try {
        const [addr, bits] = parseNetwork(f.network);
        net = `${addr.toString()}/${bits}`;
      } catch (e) {
        throw new FilterError('querystring/network', `not an address or CIDR range: ${(e as Error).message}`);
      }
      conds.push(`client_ip <<= ${p(net)}::inet`);
    }
    if (f.client !== undefined) {
      let ip: string | null = null;
      try {
        ip = parseNetwork(f.client)[0].toString();
      } catch {
        ip = null;
      }
      conds.push(ip && !f.client.includes('/') ? `client_ip = ${p(ip)}::inet` : `client = ${p(f.client)}`);
    }
    if (f.user !== undefined) conds.push(`usr = ${p(f.user)}`);
    if (f.host !== undefined) {
      const h = reverse(f.host.toLowerCase().replace(/\.$/, ''));
      conds.push(`(reverse(host) = ${p(h)} OR reverse(host) LIKE ${p(`${likeEscape(h)}.%`)})`);
    }
    if (f.decision !== undefined) conds.push(`decision = ${p(f.decision)}`);
    if (f.profile !== undefined) conds.push(`profile = ${p(f.profile)}`);
    if (f.category !== undefined) conds.push(`category = ${p(f.category)}`);
    return { sql: conds.join(' AND '), params };
  }

  /** One page, oldest first (`desc`: newest first); the cursor is the last row's (time, gateway, id). */
  async search(filter: AcademyFilter, page: { limit: number; cursor?: string | null; order?: 'asc' | 'desc' }): Promise<AcademyPage> {
    const limit = Math.max(1, Math.min(10_000, Math.floor(page.limit) || 100));
    const desc = page.order === 'desc';
    const w = this.where(filter);
    const conds = w.sql ? [w.sql] : [];
    const params = [...w.params];
    if (page.cursor) {
      const m = /^(\d+)~([A-Za-z0-9_.-]{1,64})~(\d+)$/.exec(Buffer.from(page.cursor, 'base64url').toString('utf8'));
      if (!m) throw new FilterError('querystring/cursor', `invalid cursor "${page.cursor}"`);
      params.push(Number(m[1]), m[2], Number(m[3]));
      const n = params.length;
      conds.push(`(t, gateway, id) ${desc ? '<' : '>'} ($${n - 2}, $${n - 1}, $${n})`);
    }
    params.push(limit);
    const dir = desc ? 'DESC' : 'ASC';
    const r = await this.pool.query(`${SELECT} ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''} ORDER BY t ${dir}, gateway ${dir}, id ${dir} LIMIT $${params.length}`, params);
    const rows = r.rows.map(toRow);
    const last = rows[rows.length - 1];
    return { rows, nextCursor: rows.length >= limit && last ? Buffer.from(`${last.time}~${last.gateway}~${last.id}`).toString('base64url') : null };
  }

  /** Streams matching rows oldest first, page by page (no transaction or cursor held between pages). */
  async *export(filter: AcademyFilter, format: 'csv' | 'jsonl', pageRows = 2000): AsyncIterable<string> {
    if (format === 'csv') yield ACADEMY_CSV_COLUMNS.join(',') + '\n';
    let cursor: string | null = null;
    for (;;) {
      const page: AcademyPage = await this.search(filter, { limit: pageRows, cursor });
      if (page.rows.length) yield page.rows.map((r) => (format === 'csv' ? academyCsvLine(r) : JSON.stringify(r)) + '\n').join('');
      if (!page.nextCursor) return;
      cursor = page.nextCursor;
      await yieldToLoop();
    }
  }

  /** Requests and blocks per bucket (hours, or days in the academy's time zone), gateway, profile and category. */
  async stats(filter: AcademyFilter, bucket: StatsBucket): Promise<AcademyStatsRow[]> {
    const w = this.where(filter);
    const params = [...w.params, this.timezone];
    const tz = `$${params.length}`;
    const b = bucket === 'hour' ? '(t / 3600000) * 3600000' : `(extract(epoch FROM date_trunc('day', to_timestamp(t / 1000.0) AT TIME ZONE ${tz}) AT TIME ZONE ${tz}) * 1000)::bigint`;
    const r = await this.pool.query(
      `SELECT ${b} AS bucket, gateway, profile, category, count(*) AS n, count(*) FILTER (WHERE decision = 'block') AS blocked
       FROM vigie_rows ${w.sql ? `WHERE ${w.sql}` : ''} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4`,
      params,
    );
    return r.rows.map((x) => ({ bucket: Number(x.bucket), gateway: x.gateway, profile: x.profile, category: x.category, requests: Number(x.n), blocked: Number(x.blocked) }));
  }
}
