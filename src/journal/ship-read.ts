import Database from 'better-sqlite3';
import { isIP } from 'node:net';
import { decodeIds, hasChainFormat, unpackK } from './schema.js';

/** A chain link as shipped: the SQLite row of `chain`. */
export interface ShipLink {
  id: number;
  p: number;
  lo: number | null;
  hi: number | null;
  n: number;
  ne: number;
  wt: number;
  h: Buffer;
  ends: Buffer | null;
  f: number | null;
}

/** What one PostgreSQL transaction carries: column arrays (for `unnest`), never row objects. */
export interface ShipBatch {
  links: ShipLink[];
  /** ROW_COLUMNS order (ship-schema.ts). */
  rows: unknown[][];
  rowCount: number;
  /** Tunnel ends: id, start time, bytes in, bytes out, duration. */
  ends: [number[], number[], number[], number[], number[]];
  /** Hashes before links whose predecessor is gone from the local journal (purged before shipping). */
  anchors: { id: number; prev: Buffer }[];
  months: Set<number>;
}

interface Raw {
  id: number;
  t: number;
  client: string | null;
  user: string | null;
  ctx: string | null;
  method: string | null;
  host: string | null;
  po: number | null;
  path: string | null;
  k: number;
  bi: number;
  bo: number;
  du: number;
  rule: string | null;
  cl: number;
  us: number | null;
  cx: number;
  mi: number;
  ho: number;
  pa: number | null;
  ri: number;
}

/**
 * Reads the journal for the shipper through its own read-only connection: links after a given
 * one, with their rows as the link hashed them (a tunnel's figures are zero in its row; its end
 * comes with the link that recorded it) and their tunnel ends. The local file is the queue: only
 * one batch is in memory at a time.
 */
export class ShipReader {
  readonly db: Database.Database;
  private readonly stmts = new Map<string, Database.Statement>();
  private readonly bases = new Map<number, number>();

  constructor(file: string) {
    this.db = new Database(file, { readonly: true, fileMustExist: true });
    this.db.pragma('busy_timeout = 2000');
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private stmt(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      if (this.stmts.size > 128) this.stmts.clear();
      this.stmts.set(sql, (s = this.db.prepare(sql)));
    }
    return s;
  }

  private base(p: number): number | undefined {
    let b = this.bases.get(p);
    if (b === undefined) {
      b = this.stmt('SELECT base FROM parts WHERE p = ?').pluck().get(p) as number | undefined;
      if (b !== undefined) this.bases.set(p, b);
    }
    return b;
  }

  private hasTable(p: number): boolean {
    return this.stmt(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).pluck().get(`c_${p}`) !== undefined;
  }

  /** The written time of the first link after `link`, or null when there is none (caught up). */
  oldestAfter(link: number): number | null {
    return (this.stmt('SELECT wt FROM chain WHERE id > ? ORDER BY id LIMIT 1').pluck().get(link) as number | undefined) ?? null;
  }

  /** The journal's last link (its head). */
  head(): { id: number; wt: number } | null {
    return (this.stmt('SELECT id, wt FROM chain ORDER BY id DESC LIMIT 1').get() as { id: number; wt: number } | undefined) ?? null;
  }

  /** Links after `after` (in one read transaction) until about `maxRows` rows; null when caught up. */
  read(after: number, maxRows: number): ShipBatch | null {
    const withFormat = hasChainFormat(this.db);
    const batch: ShipBatch = { links: [], rows: Array.from({ length: 27 }, () => []), rowCount: 0, ends: [[], [], [], [], []], anchors: [], months: new Set() };
    this.db.exec('BEGIN');
    try {
      const links = this.stmt(`SELECT id, p, lo, hi, n, ne, wt, h, ends, ${withFormat ? 'f' : 'NULL AS f'} FROM chain WHERE id > ? ORDER BY id LIMIT 1000`).all(after) as ShipLink[];
      let prev = after;
      for (const l of links) {
        if (batch.links.length && batch.rowCount + l.n > maxRows) break;
        if (l.id !== prev + 1) {
          // Links purged locally before they were shipped: the copy resumes from their anchor.
          const prevHash = this.stmt('SELECT prev FROM anchors WHERE id = ?').pluck().get(l.id) as Buffer | undefined;
          if (prevHash) batch.anchors.push({ id: l.id, prev: prevHash });
        }
        prev = l.id;
        batch.links.push(l);
        batch.months.add(l.p);
        const base = this.base(l.p);
        if (base === undefined || !this.hasTable(l.p)) continue;
        if (l.lo !== null && l.hi !== null) this.rows(l.p, base, l.lo, l.hi, batch);
        for (const id of decodeIds(l.ends)) {
          const r = this.stmt(`SELECT t, bi, bo, du, k FROM c_${l.p} WHERE id = ?`).get(id) as { t: number; bi: number; bo: number; du: number; k: number } | undefined;
          if (!r || !unpackK(r.k).ended) continue;
          batch.ends[0].push(id);
          batch.ends[1].push(r.t + base);
          batch.ends[2].push(r.bi);
          batch.ends[3].push(r.bo);
          batch.ends[4].push(r.du);
        }
      }
    } finally {
      this.db.exec('COMMIT');
    }
    return batch.links.length ? batch : null;
  }

  private rows(p: number, base: number, lo: number, hi: number, batch: ShipBatch): void {
    const got = this.stmt(
      `SELECT c.id, c.t, cl.v AS client, us.v AS user, cx.v AS ctx, me.v AS method, ho.v AS host, c.po, pa.v AS path, c.k, c.bi, c.bo, c.du, ru.v AS rule,
         c.cl, c.us, c.cx, (c.k >> 21) AS mi, c.ho, c.pa, ((c.k >> 13) & 255) AS ri
       FROM c_${p} c LEFT JOIN d_client cl ON cl.id = c.cl LEFT JOIN d_user us ON us.id = c.us LEFT JOIN d_ctx cx ON cx.id = c.cx
       LEFT JOIN d_method me ON me.id = (c.k >> 21) LEFT JOIN d_host ho ON ho.id = c.ho LEFT JOIN d_path pa ON pa.id = c.pa
       LEFT JOIN d_rule ru ON ru.id = ((c.k >> 13) & 255)
       WHERE c.id BETWEEN ? AND ? ORDER BY c.id`,
    ).all(lo, hi) as Raw[];
    const cols = batch.rows;
    for (const r of got) {
      const k = unpackK(r.k);
      let ctx: [string | null, string | null, number] = [null, null, -1];
      try {
        ctx = JSON.parse(r.ctx ?? 'null') ?? ctx;
      } catch {
        // an edited local journal: its own verify says so; the copy gets what is there
      }
      const client = r.client ?? '';
      // IPv4 clients seen on a dual-stack socket are searched for as IPv4 (networks like 10.0.0.0/8).
      const ip = isIP(client) ? (/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(client)?.[1] ?? client) : null;
      // As the link hashed it: a tunnel's figures arrive with its end.
      const values = [
        r.id, r.t + base, client, ip, r.user, ctx[0] ?? null, ctx[1] ?? null, ctx[2] ?? -1, r.method ?? '', k.connect ? 'connect' : 'http',
        r.host ?? '', r.po ?? (k.connect ? 443 : 80), r.path, k.status, k.ended ? 0 : r.bi, k.ended ? 0 : r.bo, k.ended ? 0 : r.du, k.block ? 'block' : 'allow',
        r.rule ?? '', false, r.cl, r.us, r.cx, r.mi, r.ho, r.pa, r.ri,
      ];
      for (let i = 0; i < values.length; i++) cols[i]!.push(values[i]);
      batch.rowCount++;
    }
  }
}
