import type Database from 'better-sqlite3';

/**
 * On-disk layout of the journal (one SQLite file, WAL):
 * - one row table `c_YYYYMM` per UTC month of the connection's start time, with one index
 *   (client; the rowid rides along, so "client X between ids a and b" is an index range);
 * - a tunnel's end (bytes, duration) fills its row's zero figures and sets the row's `ended` bit; the
 *   chain link of the batch that wrote the end lists the row ids it ended (`ends`, varint deltas);
 * - interned strings in `d_*` tables (`d_ctx`: profile, category and policy version together);
 *   integers everywhere else; times stored as signed offsets from
 *   the middle of the month, which fit SQLite's 4-byte integers;
 * - `chain`: one SHA-256 link per written batch and partition, `anchors` keep the links of purged
 *   entries, `events` records purges, starts and losses. A link's `f` names the text it hashes
 *   (row.ts): NULL for format 1 (JSON tuples, files of schema 1), 2 for the length-prefixed lines.
 *   A schema-1 file gains the column when a writer opens it; its old links still verify.
 * Purging a month is DROP TABLE, never a large DELETE.
 */

export const SCHEMA_VERSION = 2;

/** `ctx` interns the [profile, category, policyVersion] triple: one column where three would cost a header byte each. */
export const DICTS = ['client', 'user', 'ctx', 'method', 'host', 'path', 'rule'] as const;
export type DictName = (typeof DICTS)[number];

export function createMeta(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS parts (p INTEGER PRIMARY KEY, base INTEGER NOT NULL, lag INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE IF NOT EXISTS chain (id INTEGER PRIMARY KEY AUTOINCREMENT, p INTEGER NOT NULL, lo INTEGER, hi INTEGER, n INTEGER NOT NULL, ne INTEGER NOT NULL, wt INTEGER NOT NULL, h BLOB NOT NULL, ends BLOB, f INTEGER);
    CREATE INDEX IF NOT EXISTS chain_wt ON chain(wt);
    CREATE TABLE IF NOT EXISTS anchors (id INTEGER PRIMARY KEY, prev BLOB NOT NULL);
    CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
  `);
  for (const d of DICTS) db.exec(`CREATE TABLE IF NOT EXISTS d_${d} (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)`);
  if (!hasChainFormat(db)) db.exec('ALTER TABLE chain ADD COLUMN f INTEGER');
  db.prepare(`INSERT OR IGNORE INTO meta (k, v) VALUES ('schema', ?)`).run(SCHEMA_VERSION);
  db.prepare(`UPDATE meta SET v = ? WHERE k = 'schema' AND v < ?`).run(SCHEMA_VERSION, SCHEMA_VERSION);
}

/** Whether the chain table names each link's format (schema 2); schema-1 files have format-1 links only. */
export const hasChainFormat = (db: Database.Database): boolean => (db.pragma('table_info(chain)') as { name: string }[]).some((c) => c.name === 'f');

export function createPartition(db: Database.Database, p: number): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS c_${p} (id INTEGER PRIMARY KEY, t INTEGER NOT NULL, cl INTEGER NOT NULL, us INTEGER, cx INTEGER NOT NULL, ho INTEGER NOT NULL, po INTEGER, pa INTEGER, k INTEGER NOT NULL, bi INTEGER NOT NULL, bo INTEGER NOT NULL, du INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS c_${p}_cl ON c_${p}(cl);
  `);
  db.prepare('INSERT OR IGNORE INTO parts (p, base) VALUES (?, ?)').run(p, monthRange(p).base);
}

/** Partition key (yyyymm, UTC) of a time. */
export function monthOf(ms: number): number {
  const d = new Date(ms);
  return d.getUTCFullYear() * 100 + d.getUTCMonth() + 1;
}

/** [start, end) of a partition month and the base its offsets are taken from. */
export function monthRange(p: number): { start: number; end: number; base: number } {
  const y = Math.floor(p / 100);
  const m = (p % 100) - 1;
  const start = Date.UTC(y, m, 1);
  const end = Date.UTC(y, m + 1, 1);
  return { start, end, base: Math.floor((start + end) / 2) };
}

/**
 * Packs status (10 bits), connect (1), block (1), ended (1), rule (8) and method into one integer:
 * one column, one header byte. Arithmetic, not JS bit operators, so methods beyond 2^10 stay exact.
 */
export const packK = (status: number, connect: boolean, block: boolean, rule: number, method: number): number =>
  Math.min(Math.max(status | 0, 0), 1023) + (connect ? 1024 : 0) + (block ? 2048 : 0) + (rule & 255) * 8192 + method * 2_097_152;

export const ENDED = 4096;

export const unpackK = (k: number): { status: number; connect: boolean; block: boolean; ended: boolean; rule: number; method: number } => ({
  status: k % 1024,
  connect: Math.floor(k / 1024) % 2 === 1,
  block: Math.floor(k / 2048) % 2 === 1,
  ended: Math.floor(k / 4096) % 2 === 1,
  rule: Math.floor(k / 8192) % 256,
  method: Math.floor(k / 2_097_152),
});

/** SQL expressions over k. */
export const BLOCK_SQL = '((c.k >> 11) & 1)';
export const ENDED_SQL = '((c.k >> 12) & 1)';

/** Unsigned LEB128 of the deltas of increasing ids: the `ends` list of a chain link. */
export function encodeIds(ids: readonly number[]): Buffer {
  const out: number[] = [];
  let prev = 0;
  for (const id of ids) {
    let d = id - prev;
    prev = id;
    while (d >= 128) {
      out.push((d % 128) | 128);
      d = Math.floor(d / 128);
    }
    out.push(d);
  }
  return Buffer.from(out);
}

export function decodeIds(buf: Buffer | null): number[] {
  const ids: number[] = [];
  if (!buf) return ids;
  let prev = 0;
  let v = 0;
  let mul = 1;
  for (const b of buf) {
    v += (b & 127) * mul;
    if (b & 128) mul *= 128;
    else {
      prev += v;
      ids.push(prev);
      v = 0;
      mul = 1;
    }
  }
  return ids;
}

export const defaultPort = (scheme: 'http' | 'connect'): number => (scheme === 'http' ? 80 : 443);

export const partitions = (db: Database.Database): { p: number; base: number; lag: number }[] =>
  db.prepare('SELECT p, base, lag FROM parts ORDER BY p').all() as { p: number; base: number; lag: number }[];
