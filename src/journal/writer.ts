import Database from 'better-sqlite3';
import { dirname } from 'node:path';
import { BatchDecoder, BatchEncoder, BYTES_IN, BYTES_OUT, CLIENT, CLIENT_S, ctxText, DEC, DEC_S, DURATION, HOST, HOST_S, ID, K_CONNECT, K_END, METHOD, METHOD_S, PATH, PATH_S, PORT, SLOTS, STATUS, TIME, USER, USER_S, type DecodedBatch, type WireTables } from './batch.js';
import { CHAIN_FORMAT, DICT_LETTERS as LETTERS, dictEntry, END_NUMBERS, hashLink2, ROW_NUMBERS, type WireEnd, type WireRow } from './row.js';
import { OWNER_ONLY, prepareDbFile, prepareDir, type FileAccess } from './files.js';
import { GENESIS, readHead } from './head.js';
import type { Pacer } from './pacer.js';
import { createMeta, createPartition, DICTS, encodeIds, ENDED, monthOf, monthRange, packK, type DictName } from './schema.js';
import { AggregateTally, backfillAggregates } from './aggregate.js';
import { Dict } from './dict.js';
import { purgeMonths, type PurgeResult } from './purge.js';

export { GENESIS, type PurgeResult };

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
  n: number;
  /** The link's number block (row.ts, format 2), filled as rows come. */
  nums: Float64Array;
  /** Marks the batch tables' entries already listed in this link (WireTables.seen). */
  stamp: number;
  /** Dictionary ids listed in section 5 so far, per DICT_LETTERS position. */
  listed: Set<number>[];
  /** Section 5 (row.ts), joined as strings first appear: hashed in one call. */
  text: string;
  /** Tunnel ends written with the link: id, bytesIn, bytesOut, duration, flat (row.ts section 4 once sorted). */
  ends: number[];
}

/** Tunnel ends (flat quadruples) by id: they mostly come in order already, so check before sorting. */
function sortedEnds(flat: number[]): Float64Array {
  const out = new Float64Array(flat);
  let ordered = true;
  for (let i = END_NUMBERS; i < flat.length && ordered; i += END_NUMBERS) ordered = flat[i]! > flat[i - END_NUMBERS]!;
  if (ordered) return out;
  const order = Array.from({ length: flat.length / END_NUMBERS }, (_, i) => i * END_NUMBERS).sort((a, b) => flat[a]! - flat[b]!);
  order.forEach((from, i) => out.set(flat.slice(from, from + END_NUMBERS), i * END_NUMBERS));
  return out;
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
  /** Moves when a transaction rolls back, so the batch tables drop the dictionary ids it made. */
  private epoch = 0;
  /** write()'s own encoder: rows given as tuples take the same path as the proxy's batches. */
  private readonly encoder = new BatchEncoder(4096);
  private readonly decoder = new BatchDecoder();
  /** Number block of a transaction's first link, reused from one transaction to the next. */
  private scratch = new Float64Array(0);
  private stamps = 0;
  /** The transaction's additions to the statistics counters (aggregate.ts). */
  private readonly tally: AggregateTally;

  /** Pauses between slices of a transaction (the journal's writer thread); none elsewhere. */
  private readonly pacer: Pacer | null;

  constructor(readonly file: string, opts: { synchronous?: 'FULL' | 'NORMAL' | 'OFF'; pacer?: Pacer; access?: FileAccess } = {}) {
    this.pacer = opts.pacer ?? null;
    const access = opts.access ?? OWNER_ONLY;
    prepareDir(dirname(file), access);
    prepareDbFile(file, access);
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
    this.insChain = this.db.prepare('INSERT INTO chain (id, p, lo, hi, n, ne, wt, h, ends, f) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.setHigh = this.db.prepare(`UPDATE meta SET v = ? WHERE k = 'high'`);
    this.setLag = this.db.prepare('UPDATE parts SET lag = ? WHERE p = ? AND lag < ?');
    backfillAggregates(this.db);
    this.tally = new AggregateTally(this.db);
    this.reload();
  }

  /** Re-reads the chain head and counters (at open, and after a rolled-back write). */
  private reload(): void {
    this.epoch++;
    for (const d of Object.values(this.dicts)) d.clear();
    this.parts.clear();
    this.lastPart = null;
    // Purged up to the head, readHead gives the anchor the purge left as the link to chain to.
    const { head, prev, wt } = readHead(this.db);
    this.lastChainId = head.id;
    this.prevHash = prev;
    this.lastWt = wt;
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
    const e = this.encoder;
    for (const r of rows) e.rowOfTuple(r[0], r[1], r[6] === 'connect', r[2], r[3], [r[14], r[4], r[15], r[16], r[17]], r[5], r[7], r[8], r[9], r[10], r[11], r[12], r[13]);
    for (const x of ends) e.end(x[0], x[1], x[2], x[3], x[4]);
    const batches: DecodedBatch[] = [];
    for (let m = e.next(); m; m = e.next()) batches.push(this.decoder.decode(m));
    return this.writeBatches(batches, now);
  }

  /**
   * Writes batches from the journal's hand-off (batch.ts) in one transaction: every row first, in
   * order (ids increasing), then every tunnel end.
   */
  writeBatches(batches: readonly DecodedBatch[], now = Date.now()): WriteResult {
    this.pacer?.start();
    try {
      // IMMEDIATE: take the write lock up front, so a busy database waits (busy_timeout) instead of failing at once.
      return this.db.transaction(() => this.writeTx(batches, now)).immediate();
    } catch (e) {
      this.tally.clear();
      this.reload();
      throw e;
    }
  }

  /** A string field's dictionary id, through the batch tables' cache (a plain array read when known). */
  private sid(t: WireTables, field: number, dict: Dict, n: number): number {
    const ids = t.ids[field]!;
    let id = ids[n];
    if (id === undefined) ids[n] = id = dict.id(t.values[field]![n]!);
    return id;
  }

  /** Lists a string in the link's section 5 the first time the link uses it. */
  private list(g: Group, pos: number, id: number, v: string): void {
    const set = g.listed[pos]!;
    if (set.has(id)) return;
    set.add(id);
    g.text += dictEntry(LETTERS[pos]!, id, v);
  }

  /** Lists a batch-table string unless this link already did (one array read when it did). */
  private listField(g: Group, t: WireTables, field: number, pos: number, n: number, id: number): void {
    const seen = t.seen[field]!;
    if (seen[n] === g.stamp) return;
    seen[n] = g.stamp;
    this.list(g, pos, id, t.values[field]![n]!);
  }

  private writeTx(batches: readonly DecodedBatch[], now: number): WriteResult {
    const d = this.dicts;
    let wt = Math.max(now, this.lastWt);
    let nRows = 0;
    for (const b of batches) {
      const f = b.f;
      for (let o = 0; o < b.n * SLOTS; o += SLOTS) if (f[o] !== K_END && f[o + TIME]! > wt) wt = f[o + TIME]!;
      nRows += b.rows;
      if (b.tables.epoch !== this.epoch) b.tables.invalidate(this.epoch);
    }
    const groups: Group[] = [];
    const byPart = new Map<number, Group>();
    const group = (part: Part): Group => {
      let g = byPart.get(part.p);
      if (!g) {
        let nums: Float64Array;
        if (groups.length) nums = new Float64Array(nRows * ROW_NUMBERS);
        else {
          if (this.scratch.length < nRows * ROW_NUMBERS) this.scratch = new Float64Array(nRows * ROW_NUMBERS);
          nums = this.scratch;
        }
        const listed = Array.from({ length: LETTERS.length }, () => new Set<number>());
        g = { part, id: this.lastChainId + groups.length + 1, lo: null, hi: null, minT: Infinity, n: 0, nums, stamp: ++this.stamps, listed, text: '', ends: [] };
        byPart.set(part.p, g);
        groups.push(g);
      }
      return g;
    };
    let high = this.high;
    let prevId = 0;
    let g: Group | null = null;
    for (const b of batches) {
      const f = b.f;
      const t = b.tables;
      const ctxIds = t.ids[DEC]!;
      const ruleIds = t.rules;
      const ctxTexts = t.ctx;
      const decSeen = t.seen[DEC]!;
      for (let o = 0; o < b.n * SLOTS; o += SLOTS) {
        const kind = f[o];
        if (kind === K_END) continue;
        const id = f[o + ID]!;
        if (!(id > prevId)) throw new Error(`journal rows must have increasing ids (row ${id} after ${prevId})`);
        prevId = id;
        const time = f[o + TIME]!;
        const part = this.part(time, true)!;
        if (g === null || g.part !== part) g = group(part);
        if (g.lo === null) g.lo = id;
        g.hi = id;
        if (time < g.minT) g.minT = time;
        const connect = kind === K_CONNECT;
        const dn = f[o + DEC_S]!;
        const dt = t.decs[dn]!;
        let cx = ctxIds[dn];
        let rule = ruleIds[dn];
        if (cx === undefined || rule === undefined) {
          const text = (ctxTexts[dn] ??= ctxText(dt));
          ctxIds[dn] = cx = d.ctx.id(text);
          ruleIds[dn] = rule = d.rule.id(dt[3]);
        }
        const status = f[o + STATUS]!;
        const port = f[o + PORT]!;
        const bi = f[o + BYTES_IN]!;
        const bo = f[o + BYTES_OUT]!;
        const du = f[o + DURATION]!;
        const block = dt[0] === 'block';
        const cn = f[o + CLIENT_S]!;
        const un = f[o + USER_S]!;
        const mn = f[o + METHOD_S]!;
        const hn = f[o + HOST_S]!;
        const pn = f[o + PATH_S]!;
        const cl = this.sid(t, CLIENT, d.client, cn);
        const us = un < 0 ? -1 : this.sid(t, USER, d.user, un);
        const me = this.sid(t, METHOD, d.method, mn);
        const ho = this.sid(t, HOST, d.host, hn);
        const pa = pn < 0 ? -1 : this.sid(t, PATH, d.path, pn);
        part.ins.run(id, time - part.base, cl, us < 0 ? null : us, cx, ho, port === (connect ? 443 : 80) ? null : port, pa < 0 ? null : pa, packK(status, connect, block, rule, me), bi, bo, du);
        this.tally.row(time, cx, ho, block, !block && dt[3] === 'override');
        const nums = g.nums;
        const q = g.n * ROW_NUMBERS;
        nums[q] = id;
        nums[q + 1] = time;
        nums[q + 2] = connect ? 2 : 1;
        nums[q + 3] = port;
        nums[q + 4] = status;
        nums[q + 5] = bi;
        nums[q + 6] = bo;
        nums[q + 7] = du;
        nums[q + 8] = block ? 1 : 0;
        nums[q + 9] = cl;
        nums[q + 10] = us;
        nums[q + 11] = cx;
        nums[q + 12] = me;
        nums[q + 13] = ho;
        nums[q + 14] = pa;
        nums[q + 15] = rule;
        // Section 5, in DICT_LETTERS order; a decision brings its ctx and its rule.
        this.listField(g, t, CLIENT, 0, cn, cl);
        if (un >= 0) this.listField(g, t, USER, 1, un, us);
        const newDec = decSeen[dn] !== g.stamp;
        if (newDec) {
          decSeen[dn] = g.stamp;
          this.list(g, 2, cx, ctxTexts[dn] ??= ctxText(dt));
        }
        this.listField(g, t, METHOD, 3, mn, me);
        this.listField(g, t, HOST, 4, hn, ho);
        if (pn >= 0) this.listField(g, t, PATH, 5, pn, pa);
        if (newDec) this.list(g, 6, rule, dt[3]);
        g.n++;
        if (id > high) high = id;
        this.pacer?.step();
      }
    }
    let written = 0;
    let skipped = 0;
    for (const b of batches) {
      const f = b.f;
      for (let o = 0; o < b.n * SLOTS; o += SLOTS) {
        if (f[o] !== K_END) continue;
        const id = f[o + ID]!;
        const part = this.part(f[o + TIME]!, false);
        if (!part) {
          skipped++;
          continue;
        }
        const bi = f[o + BYTES_IN]!;
        const bo = f[o + BYTES_OUT]!;
        const du = f[o + DURATION]!;
        if (part.endTunnel.run(bi, bo, du, id).changes) {
          if (g === null || g.part !== part) g = group(part);
          g.ends.push(id, bi, bo, du);
          written++;
        } else skipped++;
        this.pacer?.step();
      }
    }
    let prev = this.prevHash;
    for (const g of groups) {
      const ends = sortedEnds(g.ends);
      const ne = ends.length / END_NUMBERS;
      const endIds: number[] = [];
      for (let i = 0; i < ends.length; i += END_NUMBERS) endIds.push(ends[i]!);
      const digest = hashLink2(prev, g.n, g.nums.subarray(0, g.n * ROW_NUMBERS), ne, ends, g.text);
      this.insChain.run(g.id, g.part.p, g.lo, g.hi, g.n, ne, wt, digest, ne ? encodeIds(endIds) : null, CHAIN_FORMAT);
      const lag = g.minT === Infinity ? 0 : wt - g.minT;
      if (lag > g.part.lag) {
        this.setLag.run(lag, g.part.p, lag);
        g.part.lag = lag;
      }
      prev = digest;
    }
    if (high !== this.high) this.setHigh.run(high);
    this.tally.commit();
    // Only now, inside the successful transaction, move the in-memory head.
    this.prevHash = prev;
    this.lastChainId += groups.length;
    this.lastWt = wt;
    this.high = high;
    return { rows: nRows, ends: written, skippedEnds: skipped };
  }

  /** Drops every month that ended more than `retentionDays` ago, with their counters; records the purge. */
  purge(retentionDays: number, now = Date.now()): PurgeResult {
    const result = purgeMonths(this.db, retentionDays, now);
    for (const p of result.partitions) this.parts.delete(p);
    this.lastPart = null;
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
