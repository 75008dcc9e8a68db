import Database from 'better-sqlite3';
import { isIP } from 'node:net';
import { LRUCache } from 'lru-cache';
import { decodeIds, hasChainFormat, unpackK } from './schema.js';
import type { ChainLinkRow, JournalRawRow } from './verify.js';

/** A chain link as shipped: the SQLite row of `chain`, as verify reads it. */
export type ShipLink = ChainLinkRow;

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

type Raw = JournalRawRow;

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
  private readonly dicts = new Map<string, LRUCache<number, string>>();

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

  /**
   * Strings of dictionary ids, from a bounded cache (ids never change meaning in a journal), the
   * missing ones read in one query per dictionary: a row costs no join.
   */
  private names(dict: 'client' | 'user' | 'ctx' | 'method' | 'host' | 'path' | 'rule', ids: Iterable<number | null>): Map<number, string> {
    let cache = this.dicts.get(dict);
    if (!cache) this.dicts.set(dict, (cache = new LRUCache<number, string>({ max: 50_000 })));
    const out = new Map<number, string>();
    const missing: number[] = [];
    for (const id of ids) {
      if (id === null || out.has(id)) continue;
      const v = cache.get(id);
      if (v === undefined) missing.push(id);
      else out.set(id, v);
    }
    if (missing.length) {
      const got = this.stmt(`SELECT id, v FROM d_${dict} WHERE id IN (SELECT value FROM json_each(?))`).all(JSON.stringify([...new Set(missing)])) as { id: number; v: string }[];
      for (const g of got) {
        cache.set(g.id, g.v);
        out.set(g.id, g.v);
      }
    }
    return out;
  }

  private rows(p: number, base: number, lo: number, hi: number, batch: ShipBatch): void {
    const raw = this.stmt(`SELECT id, t, cl, us, cx, po, ho, pa, k, bi, bo, du FROM c_${p} WHERE id BETWEEN ? AND ? ORDER BY id`).all(lo, hi) as Omit<Raw, 'client' | 'user' | 'ctx' | 'method' | 'host' | 'path' | 'rule' | 'mi' | 'ri'>[];
    const cl = this.names('client', raw.map((r) => r.cl));
    const us = this.names('user', raw.map((r) => r.us));
    const cx = this.names('ctx', raw.map((r) => r.cx));
    const me = this.names('method', raw.map((r) => Math.floor(r.k / 2_097_152)));
    const ho = this.names('host', raw.map((r) => r.ho));
    const pa = this.names('path', raw.map((r) => r.pa));
    const ru = this.names('rule', raw.map((r) => Math.floor(r.k / 8192) % 256));
    const got: Raw[] = raw.map((r) => {
      const mi = Math.floor(r.k / 2_097_152);
      const ri = Math.floor(r.k / 8192) % 256;
      return { ...r, mi, ri, client: cl.get(r.cl) ?? null, user: r.us === null ? null : (us.get(r.us) ?? null), ctx: cx.get(r.cx) ?? null, method: me.get(mi) ?? null, host: ho.get(r.ho) ?? null, path: r.pa === null ? null : (pa.get(r.pa) ?? null), rule: ru.get(ri) ?? null };
    });
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
