/**
 * The journal's write path as it was before chain format 2 and binary batches (schema 1): rows as
 * tuples, a JSON key per row for the context dictionary, a JSON line per row for the hash chain.
 * Kept for two uses: a test that files written this way still verify and take format-2 links
 * after them, and the baseline that bench:journal measures the current writer against.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { endLine, rowLine, type WireEnd, type WireRow } from '../src/journal/row.js';
import { createPartition, defaultPort, DICTS, encodeIds, ENDED, monthOf, monthRange, packK, type DictName } from '../src/journal/schema.js';
import { GENESIS } from '../src/journal/writer.js';

class Dict {
  private readonly cache = new Map<string, number>();
  private readonly sel: Database.Statement;
  private readonly ins: Database.Statement;
  constructor(db: Database.Database, name: DictName) {
    this.sel = db.prepare(`SELECT id FROM d_${name} WHERE v = ?`).pluck();
    this.ins = db.prepare(`INSERT INTO d_${name} (v) VALUES (?)`);
  }
  id(v: string): number {
    let id = this.cache.get(v);
    if (id !== undefined) return id;
    id = this.sel.get(v) as number | undefined;
    if (id === undefined) id = Number(this.ins.run(v).lastInsertRowid);
    if (this.cache.size >= 100_000) this.cache.clear();
    this.cache.set(v, id);
    return id;
  }
}

interface Part {
  p: number;
  base: number;
  ins: Database.Statement;
  endTunnel: Database.Statement;
}

/** Schema 1 as created then: no link format column. */
function createMetaV1(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS parts (p INTEGER PRIMARY KEY, base INTEGER NOT NULL, lag INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS chain (id INTEGER PRIMARY KEY AUTOINCREMENT, p INTEGER NOT NULL, lo INTEGER, hi INTEGER, n INTEGER NOT NULL, ne INTEGER NOT NULL, wt INTEGER NOT NULL, h BLOB NOT NULL, ends BLOB);
    CREATE INDEX IF NOT EXISTS chain_wt ON chain(wt);
    CREATE TABLE IF NOT EXISTS anchors (id INTEGER PRIMARY KEY, prev BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
  `);
  for (const d of DICTS) db.exec(`CREATE TABLE IF NOT EXISTS d_${d} (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)`);
  db.prepare(`INSERT OR IGNORE INTO meta (k, v) VALUES ('schema', 1)`).run();
  db.prepare(`INSERT OR IGNORE INTO meta (k, v) VALUES ('high', 0)`).run();
}

/** A fresh journal file only (no purge, no reopen): enough to make schema-1 files and to time the old path. */
export class LegacyJournalWriter {
  readonly db: Database.Database;
  private readonly dicts: Record<DictName, Dict>;
  private readonly parts = new Map<number, Part>();
  private prevHash: Buffer = GENESIS;
  private lastChainId = 0;
  private lastWt = 0;
  private high = 0;
  private readonly insChain: Database.Statement;
  private readonly setHigh: Database.Statement;

  constructor(readonly file: string, opts: { synchronous?: 'FULL' | 'NORMAL' | 'OFF' } = {}) {
    mkdirSync(dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('auto_vacuum = INCREMENTAL');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    this.db.pragma('cache_size = -32768');
    createMetaV1(this.db);
    this.dicts = Object.fromEntries(DICTS.map((d) => [d, new Dict(this.db, d)])) as Record<DictName, Dict>;
    this.insChain = this.db.prepare('INSERT INTO chain (id, p, lo, hi, n, ne, wt, h, ends) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.setHigh = this.db.prepare(`UPDATE meta SET v = ? WHERE k = 'high'`);
  }

  nextId(): number {
    return this.high + 1;
  }

  private part(time: number, create: boolean): Part | null {
    const p = monthOf(time);
    let part = this.parts.get(p);
    if (!part) {
      const known = this.db.prepare('SELECT 1 FROM parts WHERE p = ?').get(p);
      if (!known && !create) return null;
      if (!known) createPartition(this.db, p);
      part = {
        p,
        base: monthRange(p).base,
        ins: this.db.prepare(`INSERT INTO c_${p} (id, t, cl, us, cx, ho, po, pa, k, bi, bo, du) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
        endTunnel: this.db.prepare(`UPDATE c_${p} SET bi = ?, bo = ?, du = ?, k = k + ${ENDED} WHERE id = ? AND ((k >> 12) & 1) = 0`),
      };
      this.parts.set(p, part);
    }
    return part;
  }

  write(rows: readonly WireRow[], ends: readonly WireEnd[] = [], now = Date.now()): void {
    this.db.transaction(() => {
      const d = this.dicts;
      let wt = Math.max(now, this.lastWt);
      for (const r of rows) if (r[1] > wt) wt = r[1];
      const groups = new Map<number, { part: Part; lo: number | null; hi: number | null; lines: string[]; ends: { id: number; line: string }[] }>();
      const group = (part: Part) => {
        let g = groups.get(part.p);
        if (!g) groups.set(part.p, (g = { part, lo: null, hi: null, lines: [], ends: [] }));
        return g;
      };
      for (const r of rows) {
        const part = this.part(r[1], true)!;
        const g = group(part);
        g.lo ??= r[0];
        g.hi = r[0];
        const k = packK(r[10], r[6] === 'connect', r[14] === 'block', d.rule.id(r[16]), d.method.id(r[5]));
        part.ins.run(r[0], r[1] - part.base, d.client.id(r[2]), r[3] === null ? null : d.user.id(r[3]), d.ctx.id(JSON.stringify([r[4], r[15], r[17]])), d.host.id(r[7]), r[8] === defaultPort(r[6]) ? null : r[8], r[9] === null ? null : d.path.id(r[9]), k, r[11], r[12], r[13]);
        g.lines.push(rowLine(r));
        if (r[0] > this.high) this.high = r[0];
      }
      for (const e of ends) {
        const part = this.part(e[1], false);
        if (part?.endTunnel.run(e[2], e[3], e[4], e[0]).changes) group(part).ends.push({ id: e[0], line: endLine(e[0], e[2], e[3], e[4]) });
      }
      for (const g of groups.values()) {
        const h = createHash('sha256').update(this.prevHash);
        for (const l of g.lines) h.update(l).update('\n');
        g.ends.sort((a, b) => a.id - b.id);
        for (const e of g.ends) h.update(e.line).update('\n');
        this.prevHash = h.digest();
        this.insChain.run(++this.lastChainId, g.part.p, g.lo, g.hi, g.lines.length, g.ends.length, wt, this.prevHash, g.ends.length ? encodeIds(g.ends.map((e) => e.id)) : null);
      }
      this.setHigh.run(this.high);
      this.lastWt = wt;
    }).immediate();
  }

  close(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}
