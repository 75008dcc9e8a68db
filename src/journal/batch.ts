import type { JournalDecision } from './types.js';

/**
 * The hand-off from the proxy's thread to the writer thread: rows as fixed-size records of float64
 * slots in an ArrayBuffer that is transferred, not copied, with every string replaced by a small
 * number. A string (or a decision) travels once, in the `news` list of the first batch that uses it;
 * both sides then know it by its number. Structured clone of arrays of strings cost the proxy ~1.5 µs
 * a row and the writer as much again to rebuild them; this costs a few map lookups and stores.
 *
 * Numbers are given per field in order of first use, so the writer keeps plain arrays. When a
 * field's table reaches its bound, the batch in progress is sealed and every table starts afresh
 * (`reset`): memory stays bounded on both sides whatever the traffic.
 */

/** Float64 slots per record. */
export const SLOTS = 14;
export const KIND = 0;
export const ID = 1;
export const TIME = 2;
export const CLIENT_S = 3;
export const USER_S = 4;
export const DEC_S = 5;
export const METHOD_S = 6;
export const HOST_S = 7;
export const PORT = 8;
export const PATH_S = 9;
export const STATUS = 10;
export const BYTES_IN = 11;
export const BYTES_OUT = 12;
export const DURATION = 13;

/** Record kinds. An end record uses ID, TIME (its row's start: picks the month) and the figures. */
export const K_HTTP = 1;
export const K_CONNECT = 2;
export const K_END = 3;

/** String fields, in `news` order codes; DEC is a decision tuple. */
export const CLIENT = 0;
export const USER = 1;
export const METHOD = 2;
export const HOST = 3;
export const PATH = 4;
export const DEC = 5;
/** Entries per table (client, user, method, host, path, decision) before every table starts afresh. */
export const FIELD_LIMITS: readonly number[] = [65_536, 65_536, 1024, 100_000, 100_000, 65_536];

/** What a row needs of its decision: [action, profile, category, rule, policyVersion, SafeSearch retarget]. */
export type DecTuple = [action: JournalDecision, profile: string | null, category: string | null, rule: string, policyVersion: number, retarget?: string | null];

/**
 * The `ctx` dictionary text of a decision: [profile, category, policyVersion], and the enforcing
 * host as a fourth element when SafeSearch sent the connection there (rows without keep the
 * three-element text they always had).
 */
export const ctxText = (t: DecTuple): string => JSON.stringify(t[5] ? [t[1], t[2], t[4], t[5]] : [t[1], t[2], t[4]]);

/** The decision fields of a proxy Decision (structural, so this module needs nothing of the policy). */
export interface DecisionLike {
  readonly action: JournalDecision;
  readonly profile: string | null;
  readonly category: string | null;
  readonly rule: string;
  readonly policyVersion: number;
  /** The list that decided (`ut1`, `extra/NAME`, an academy list, `profile:ID`). */
  readonly list?: string | null;
  readonly retarget?: { readonly host: string };
}

/**
 * The rule as the journal records it: a category rule carries the list set that matched
 * (`category:ut1`, `category:extra/porn-sinfonietta`), so the record says which source blocked.
 * Only those sets, not academy lists (their name is already the category) nor profiles (in the
 * row): the rule table holds at most 256 names.
 */
export function journalRule(d: DecisionLike): string {
  const list = d.list;
  if (!list || (d.rule !== 'category' && d.rule !== 'allowlist')) return d.rule;
  return list === 'ut1' || list.startsWith('extra/') ? `${d.rule}:${list}` : d.rule;
}

export interface BatchMessage {
  buf: ArrayBuffer;
  /** Records in `buf` (rows and ends). */
  n: number;
  rows: number;
  /** The writer drops its tables before reading `news`. */
  reset: boolean;
  /** [field, value, field, value, ...] in order of first use. */
  news: unknown[];
}

/**
 * A figure as the journal stores it: a count, never NaN or negative. SQLite turns NaN into NULL,
 * which the NOT NULL columns refuse: one such row failed its whole transaction at every retry and
 * stalled the journal (and, under overflow "block", the proxy). A clock stepping back can make a
 * duration negative.
 */
const count = (x: number): number => (x >= 0 ? x : 0);

/** Builds batches on the sending side. Not thread-safe; one per journal. */
export class BatchEncoder {
  private f: Float64Array;
  private n = 0;
  private rows = 0;
  private news: unknown[] = [];
  private reset = false;
  private full = false;
  private readonly sealed: BatchMessage[] = [];
  private sealedRecords = 0;
  private maps: Map<string, number>[] = [new Map(), new Map(), new Map(), new Map(), new Map()];
  /** Decisions by identity (the proxy's are cached objects), else by value (tuples from tests and tools). */
  private decObjects = new WeakMap<DecisionLike, number>();
  private decKeys = new Map<string, number>();
  private decCount = 0;

  constructor(
    private readonly perBatch: number,
    private readonly limits: readonly number[] = FIELD_LIMITS,
  ) {
    this.f = new Float64Array(perBatch * SLOTS);
  }

  /** Records waiting here (sealed batches and the one being filled). */
  get records(): number {
    return this.sealedRecords + this.n;
  }

  /** Whether a whole batch is waiting to be sent. */
  get hasSealed(): boolean {
    return this.sealed.length > 0;
  }

  /** The oldest batch to send (the one being filled if none is sealed), or null when empty. */
  next(): BatchMessage | null {
    if (!this.sealed.length) {
      if (!this.n) return null;
      this.seal();
    }
    const m = this.sealed.shift()!;
    this.sealedRecords -= m.n;
    return m;
  }

  private seal(): void {
    this.sealed.push({ buf: this.f.buffer as ArrayBuffer, n: this.n, rows: this.rows, reset: this.reset, news: this.news });
    this.sealedRecords += this.n;
    this.f = new Float64Array(this.perBatch * SLOTS);
    this.n = 0;
    this.rows = 0;
    this.news = [];
    this.reset = false;
  }

  /** Before a record: room in the batch, and tables below their bounds (so a record never straddles a reset). */
  private begin(): number {
    if (this.full) {
      if (this.n) this.seal();
      this.maps = [new Map(), new Map(), new Map(), new Map(), new Map()];
      this.decObjects = new WeakMap();
      this.decKeys = new Map();
      this.decCount = 0;
      this.full = false;
      this.reset = true;
    } else if (this.n === this.perBatch) this.seal();
    return this.n++ * SLOTS;
  }

  private sid(field: number, s: string): number {
    const m = this.maps[field]!;
    let id = m.get(s);
    if (id === undefined) {
      id = m.size;
      m.set(s, id);
      this.news.push(field, s);
      if (id + 1 >= this.limits[field]!) this.full = true;
    }
    return id;
  }

  private newDec(t: DecTuple): number {
    const id = this.decCount++;
    this.news.push(DEC, t);
    if (this.decCount >= this.limits[DEC]!) this.full = true;
    return id;
  }

  private decOf(d: DecisionLike): number {
    let id = this.decObjects.get(d);
    if (id === undefined) {
      id = this.newDec([d.action, d.profile, d.category, journalRule(d), d.policyVersion, d.retarget?.host ?? null]);
      this.decObjects.set(d, id);
    }
    return id;
  }

  private decOfTuple(t: DecTuple): number {
    // Length-prefixed: no two tuples share a key, and cheaper than JSON.
    const key = `${t[0]}${t[4]}|${t[1] === null ? '-' : `${t[1].length}:${t[1]}`}${t[2] === null ? '-' : `${t[2].length}:${t[2]}`}${t[5] ? `${t[5].length}:${t[5]}` : '-'}${t[3]}`;
    let id = this.decKeys.get(key);
    if (id === undefined) {
      id = this.newDec([t[0], t[1], t[2], t[3], t[4], t[5] ?? null]);
      this.decKeys.set(key, id);
    }
    return id;
  }

  /** A row from the proxy: its decision object is looked up by identity. */
  row(id: number, time: number, connect: boolean, client: string, user: string | null, decision: DecisionLike, method: string, host: string, port: number, path: string | null, status: number, bytesIn: number, bytesOut: number, durationMs: number): void {
    const o = this.begin();
    this.put(o, id, time, connect, client, user, this.decOf(decision), method, host, port, path, status, bytesIn, bytesOut, durationMs);
  }

  /** A row given as values (tests, tools): its decision is looked up by value. */
  rowOfTuple(id: number, time: number, connect: boolean, client: string, user: string | null, decision: DecTuple, method: string, host: string, port: number, path: string | null, status: number, bytesIn: number, bytesOut: number, durationMs: number): void {
    const o = this.begin();
    this.put(o, id, time, connect, client, user, this.decOfTuple(decision), method, host, port, path, status, bytesIn, bytesOut, durationMs);
  }

  private put(o: number, id: number, time: number, connect: boolean, client: string, user: string | null, dec: number, method: string, host: string, port: number, path: string | null, status: number, bytesIn: number, bytesOut: number, durationMs: number): void {
    const f = this.f;
    f[o] = connect ? K_CONNECT : K_HTTP;
    f[o + ID] = id;
    f[o + TIME] = time;
    f[o + CLIENT_S] = this.sid(CLIENT, client);
    f[o + USER_S] = user === null ? -1 : this.sid(USER, user);
    f[o + DEC_S] = dec;
    f[o + METHOD_S] = this.sid(METHOD, method);
    f[o + HOST_S] = this.sid(HOST, host);
    f[o + PORT] = port;
    f[o + PATH_S] = path === null ? -1 : this.sid(PATH, path);
    f[o + STATUS] = status;
    f[o + BYTES_IN] = count(bytesIn);
    f[o + BYTES_OUT] = count(bytesOut);
    f[o + DURATION] = count(durationMs);
    this.rows++;
  }

  /** A tunnel's end: its row's id and start time, and the final figures. */
  end(id: number, time: number, bytesIn: number, bytesOut: number, durationMs: number): void {
    const o = this.begin();
    const f = this.f;
    f[o] = K_END;
    f[o + ID] = id;
    f[o + TIME] = time;
    f[o + BYTES_IN] = count(bytesIn);
    f[o + BYTES_OUT] = count(bytesOut);
    f[o + DURATION] = count(durationMs);
  }
}

/**
 * The receiving side's view of the numbers: the strings and decisions, plus what the writer derives
 * from them once (dictionary ids, chain-line pieces). A reset makes a new object; batches already
 * received keep theirs, so a retried transaction reads them as they were sent.
 */
export class WireTables {
  readonly values: string[][] = [[], [], [], [], []];
  readonly decs: DecTuple[] = [];
  /** Writer caches, per field (DEC: the decision's ctx): dictionary ids, valid for `epoch`. */
  readonly ids: number[][] = [[], [], [], [], [], []];
  readonly rules: number[] = [];
  /** The ctx dictionary text of each decision. */
  readonly ctx: string[] = [];
  /** Per field, the last chain link that listed each entry's string (row.ts, section 5). */
  readonly seen: number[][] = [[], [], [], [], [], []];
  epoch = -1;

  apply(news: readonly unknown[]): void {
    for (let i = 0; i < news.length; i += 2) {
      const field = news[i] as number;
      if (field === DEC) this.decs.push(news[i + 1] as DecTuple);
      else this.values[field]!.push(news[i + 1] as string);
    }
  }

  /** Drops dictionary ids from a rolled-back transaction (the writer's epoch moved). */
  invalidate(epoch: number): void {
    for (const a of this.ids) a.length = 0;
    this.rules.length = 0;
    this.epoch = epoch;
  }
}

export interface DecodedBatch {
  f: Float64Array;
  n: number;
  rows: number;
  tables: WireTables;
}

/** Receiving side: turns messages into batches bound to the tables they were sent against. */
export class BatchDecoder {
  private tables = new WireTables();

  decode(m: BatchMessage): DecodedBatch {
    if (m.reset) this.tables = new WireTables();
    this.tables.apply(m.news);
    return { f: new Float64Array(m.buf, 0, m.n * SLOTS), n: m.n, rows: m.rows, tables: this.tables };
  }
}
