import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { endLine, rowLine, type WireEnd, type WireRow } from './row.js';
import { createMeta, createPartition, defaultPort, DICTS, encodeIds, ENDED, monthOf, monthRange, packK, type DictName } from './schema.js';

export const GENESIS = Buffer.alloc(32);

/** A string interner over one `d_*` table; its cache is bounded (cleared when full). */
class Dict {
  private readonly cache = new Map<string, number>();
  private readonly sel: Database.Statement;
  private readonly ins: Database.Statement;
  constructor(db: Database.Database, name: DictName, private readonly max = 65_536) {
    this.sel = db.prepare(`SELECT id FROM d_${name} WHERE v = ?`).pluck();
    this.ins = db.prepare(`INSERT INTO d_${name} (v) VALUES (?)`);
  }
  id(v: string): number {
    let id = this.cache.get(v);
    if (id !== undefined) return id;
    id = this.sel.get(v) as number | undefined;
    if (id === undefined) id = Number(this.ins.run(v).lastInsertRowid);
    if (this.cache.size >= this.max) this.cache.clear();
    this.cache.set(v, id);
    return id;
  }
  clear(): void {
    this.cache.clear();
  }
}

interface Part {
  p: number;
  start: number;
  end: number;
  base: number;
  lag: number;
  ins: Database.Statement;
  endTunnel: Database.Statement;
}

interface Group {
  part: Part;
  id: number;
  lo: number | null;
  hi: number | null;
  minT: number;
  lines: string[];
  ends: { id: number; line: string }[];
}


export interface PurgeResult {
  time: number;
  retentionDays: number;
  cutoff: number;
  partitions: number[];
  rows: number;
  entries: number;
}

export interface WriteResult {
  rows: number;
  ends: number;
  /** Ends whose row is not in the journal (purged month, or already ended). */
  skippedEnds: number;
}

/**
 * The only code that writes the journal. Synchronous (better-sqlite3): it runs in the journal's
 * worker thread, or directly in a CLI command or a test. One write() = one transaction = one or more
 * chain links (one per month touched).
 */
export class JournalWriter {
  readonly db: Database.Database;
  private readonly dicts: Record<DictName, Dict>;
  private readonly parts = new Map<number, Part>();
  private lastPart: Part | null = null;
  private prevHash: Buffer = GENESIS;
  private lastChainId = 0;
  private lastWt = 0;
  private high = 0;
  private readonly insChain: Database.Statement;
  private readonly setHigh: Database.Statement;
  private readonly setLag: Database.Statement;

  constructor(readonly file: string, opts: { synchronous?: 'FULL' | 'NORMAL' | 'OFF' } = {}) {
    mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    // Must precede the first table so purged months give their pages back to the file system.
    this.db.pragma('auto_vacuum = INCREMENTAL');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    this.db.pragma('busy_timeout = 1000');
    // The client index takes inserts all over a month's B-tree: keep its pages in memory.
    this.db.pragma('cache_size = -32768');
    createMeta(this.db);
    this.db.prepare(`INSERT OR IGNORE INTO meta (k, v) VALUES ('high', 0)`).run();
    this.dicts = Object.fromEntries(DICTS.map((d) => [d, new Dict(this.db, d, d === 'host' || d === 'path' ? 100_000 : 65_536)])) as Record<DictName, Dict>;
    this.insChain = this.db.prepare('INSERT INTO chain (id, p, lo, hi, n, ne, wt, h, ends) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.setHigh = this.db.prepare(`UPDATE meta SET v = ? WHERE k = 'high'`);
    this.setLag = this.db.prepare('UPDATE parts SET lag = ? WHERE p = ? AND lag < ?');
    this.reload();
  }

  /** Re-reads the chain head and counters (at open, and after a rolled-back write). */
  private reload(): void {
    for (const d of Object.values(this.dicts)) d.clear();
    this.parts.clear();
    this.lastPart = null;
    const last = this.db.prepare('SELECT id, wt, h FROM chain ORDER BY id DESC LIMIT 1').get() as { id: number; wt: number; h: Buffer } | undefined;
    const seq = (this.db.prepare(`SELECT seq FROM sqlite_sequence WHERE name = 'chain'`).pluck().get() as number | undefined) ?? 0;
    this.lastChainId = Math.max(seq, last?.id ?? 0);
    if (last && last.id === this.lastChainId) this.prevHash = last.h;
    else {
      // Everything up to the head was purged: the purge left the head's hash as an anchor.
      const anchor = this.db.prepare('SELECT prev FROM anchors WHERE id = ?').pluck().get(this.lastChainId + 1) as Buffer | undefined;
      this.prevHash = anchor ?? GENESIS;
    }
    this.lastWt = last?.wt ?? 0;
    this.high = Number(this.db.prepare(`SELECT v FROM meta WHERE k = 'high'`).pluck().get() ?? 0);
  }

  /** The next free row id (ids are given by the caller so tunnel ends can refer to their row). */
  nextId(): number {
    return this.high + 1;
  }

  head(): { id: number; hash: string } {
    return { id: this.lastChainId, hash: this.prevHash.toString('hex') };
  }

  private part(time: number, create: boolean): Part | null {
    const lp = this.lastPart;
    if (lp && time >= lp.start && time < lp.end) return lp;
    const p = monthOf(time);
    let part = this.parts.get(p);
    if (!part) {
      const row = this.db.prepare('SELECT base, lag FROM parts WHERE p = ?').get(p) as { base: number; lag: number } | undefined;
      if (!row && !create) return null;
      if (!row) createPartition(this.db, p);
      const r = monthRange(p);
      part = {
        p,
        start: r.start,
        end: r.end,
        base: r.base,
        lag: row?.lag ?? 0,
        ins: this.db.prepare(`INSERT INTO c_${p} (id, t, cl, us, cx, ho, po, pa, k, bi, bo, du) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
        // A row is ended once: the figures of a second end would replace what the chain covers.
        endTunnel: this.db.prepare(`UPDATE c_${p} SET bi = ?, bo = ?, du = ?, k = k + ${ENDED} WHERE id = ? AND ((k >> 12) & 1) = 0`),
      };
      this.parts.set(p, part);
    }
    this.lastPart = part;
    return part;
  }

  /** Writes rows (ids increasing) and tunnel ends in one transaction and extends the hash chain. */
  write(rows: readonly WireRow[], ends: readonly WireEnd[] = [], now = Date.now()): WriteResult {
    if (!rows.length && !ends.length) return { rows: 0, ends: 0, skippedEnds: 0 };
    try {
      // IMMEDIATE: take the write lock up front, so a busy database waits (busy_timeout) instead of failing at once.
      return this.db.transaction(() => this.writeTx(rows, ends, now)).immediate();
    } catch (e) {
      this.reload();
      throw e;
    }
  }

  private writeTx(rows: readonly WireRow[], ends: readonly WireEnd[], now: number): WriteResult {
    const d = this.dicts;
    let wt = Math.max(now, this.lastWt);
    for (const r of rows) if (r[1] > wt) wt = r[1];
    const groups: Group[] = [];
    const byPart = new Map<number, Group>();
    const group = (part: Part): Group => {
      let g = byPart.get(part.p);
      if (!g) {
        g = { part, id: this.lastChainId + groups.length + 1, lo: null, hi: null, minT: Infinity, lines: [], ends: [] };
        byPart.set(part.p, g);
        groups.push(g);
      }
      return g;
    };
    let high = this.high;
    let prevId = 0;
    for (const r of rows) {
      const id = r[0];
      if (!(id > prevId)) throw new Error(`journal rows must have increasing ids (row ${id} after ${prevId})`);
      prevId = id;
      const time = r[1];
      const part = this.part(time, true)!;
      const g = group(part);
      if (g.lo === null) g.lo = id;
      g.hi = id;
      if (time < g.minT) g.minT = time;
      const scheme = r[6];
      const k = packK(r[10], scheme === 'connect', r[14] === 'block', d.rule.id(r[16]), d.method.id(r[5]));
      part.ins.run(
        id,
        time - part.base,
        d.client.id(r[2]),
        r[3] === null ? null : d.user.id(r[3]),
        d.ctx.id(JSON.stringify([r[4], r[15], r[17]])),
        d.host.id(r[7]),
        r[8] === defaultPort(scheme) ? null : r[8],
        r[9] === null ? null : d.path.id(r[9]),
        k,
        r[11],
        r[12],
        r[13],
      );
      g.lines.push(rowLine(r));
      if (id > high) high = id;
    }
    let written = 0;
    let skipped = 0;
    for (const e of ends) {
      const part = this.part(e[1], false);
      if (!part) {
        skipped++;
        continue;
      }
      if (part.endTunnel.run(e[2], e[3], e[4], e[0]).changes) {
        group(part).ends.push({ id: e[0], line: endLine(e[0], e[2], e[3], e[4]) });
        written++;
      } else skipped++;
    }
    let prev = this.prevHash;
    for (const g of groups) {
      const h = createHash('sha256').update(prev);
      for (const l of g.lines) h.update(l).update('\n');
      g.ends.sort((a, b) => a.id - b.id);
      for (const e of g.ends) h.update(e.line).update('\n');
      const digest = h.digest();
      this.insChain.run(g.id, g.part.p, g.lo, g.hi, g.lines.length, g.ends.length, wt, digest, g.ends.length ? encodeIds(g.ends.map((e) => e.id)) : null);
      const lag = g.minT === Infinity ? 0 : wt - g.minT;
      if (lag > g.part.lag) {
        this.setLag.run(lag, g.part.p, lag);
        g.part.lag = lag;
      }
      prev = digest;
    }
    if (high !== this.high) this.setHigh.run(high);
    // Only now, inside the successful transaction, move the in-memory head.
    this.prevHash = prev;
    this.lastChainId += groups.length;
    this.lastWt = wt;
    this.high = high;
    return { rows: rows.length, ends: written, skippedEnds: skipped };
  }

  /** Drops every month that ended more than `retentionDays` ago; records the purge. */
  purge(retentionDays: number, now = Date.now()): PurgeResult {
    const cutoff = now - retentionDays * 86_400_000;
    const old = (this.db.prepare('SELECT p FROM parts ORDER BY p').pluck().all() as number[]).filter((p) => monthRange(p).end <= cutoff);
    const result: PurgeResult = { time: now, retentionDays, cutoff, partitions: old, rows: 0, entries: 0 };
    this.db.transaction(() => {
      for (const p of old) {
        const s = this.db.prepare('SELECT count(*) AS entries, coalesce(sum(n), 0) AS rows FROM chain WHERE p = ?').get(p) as { entries: number; rows: number };
        result.rows += s.rows;
        result.entries += s.entries;
        // Keep the link of each purged entry whose successor stays, so verify can still walk the chain.
        this.db.prepare('DELETE FROM anchors WHERE id IN (SELECT id FROM chain WHERE p = ?)').run(p);
        this.db.prepare('INSERT OR REPLACE INTO anchors (id, prev) SELECT c.id + 1, c.h FROM chain c WHERE c.p = ? AND NOT EXISTS (SELECT 1 FROM chain d WHERE d.id = c.id + 1 AND d.p = ?)').run(p, p);
        this.db.prepare('DELETE FROM chain WHERE p = ?').run(p);
        this.db.exec(`DROP TABLE IF EXISTS c_${p}`);
        this.db.prepare('DELETE FROM parts WHERE p = ?').run(p);
      }
      this.db.prepare(`INSERT INTO events (time, kind, detail) VALUES (?, 'purge', ?)`).run(now, JSON.stringify(result));
    }).immediate();
    for (const p of old) this.parts.delete(p);
    this.lastPart = null;
    if (old.length) this.db.pragma('incremental_vacuum');
    return result;
  }

  /** Appends an event (start, rows lost, ...) to the journal's own log. */
  record(kind: string, detail: unknown, now = Date.now()): void {
    this.db.prepare('INSERT INTO events (time, kind, detail) VALUES (?, ?, ?)').run(now, kind, JSON.stringify(detail));
  }

  close(): void {
    if (!this.db.open) return;
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // a reader may hold the WAL; the next open checkpoints
    }
    this.db.close();
  }
}
