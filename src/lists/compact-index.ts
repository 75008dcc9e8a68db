import { isIP } from 'node:net';
import { fin1, fin2, step1, step2 } from './hash.js';
import { findSlot, homeScale } from './static-table.js';
import type { CategoryCounts, CategoryIndex, ListHit } from './types.js';

/**
 * The national-scale index: every UT1 category in one table of 64-bit fingerprints, each entry
 * pointing to an interned set of categories. About 12 bytes per domain, no JS string per entry,
 * one file that loads as a few typed-array views. Same semantics as MapIndex (the reference).
 *
 * Names are not kept, only fingerprints: a false match needs two independent 32-bit lanes to
 * collide under a per-build secret seed (odds ~ 1 in 2^64 per probe).
 */

const MAGIC = 'VIGIECI1';
const FORMAT = 1;
/** Longest listable name: suffixes longer than this cannot be entries, so they are not probed. */
const MAX_ENTRY = 253;

export interface CompactParts {
  version: string;
  categories: string[];
  counts: CategoryCounts[];
  seeds: [number, number];
  /** Unique domain entries. */
  domains: number;
  domCapacity: number;
  domFp: Uint32Array;
  /** Category-set id per domain slot. */
  domSet: Uint16Array | Uint32Array;
  setStart: Uint32Array;
  setMembers: Uint16Array;
  urlCapacity: number;
  urlFp: Uint32Array;
  /** Rule-group id per url-host slot. */
  urlGroup: Uint32Array;
  groupStart: Uint32Array;
  ruleOff: Uint32Array;
  ruleLen: Uint32Array;
  ruleCat: Uint16Array;
  /** Every url rule's path, concatenated (rules point into it). */
  paths: string;
  expressions: string[][];
}

type Section = 'domFp' | 'domSet' | 'setStart' | 'setMembers' | 'urlFp' | 'urlGroup' | 'groupStart' | 'ruleOff' | 'ruleLen' | 'ruleCat';
const SECTIONS: Section[] = ['domFp', 'domSet', 'setStart', 'setMembers', 'urlFp', 'urlGroup', 'groupStart', 'ruleOff', 'ruleLen', 'ruleCat'];

interface Header {
  format: number;
  version: string;
  categories: string[];
  counts: CategoryCounts[];
  seeds: [number, number];
  domains: number;
  domCapacity: number;
  urlCapacity: number;
  paths: string;
  expressions: string[][];
  sections: Record<Section, { offset: number; length: number; width: 2 | 4 }>;
}

/** Per-thread scratch for the label walk: (lane1, lane2, start) per probed suffix. */
const WALK = new Uint32Array(3 * 130);
const PAIR = new Uint32Array(2);

export class CompactIndex implements CategoryIndex {
  readonly categories: readonly string[];
  readonly version: string;
  /** Unique domain entries (a domain in three categories counts once). */
  readonly domains: number;
  private readonly s1: number;
  private readonly s2: number;
  private readonly domScale: number;
  private readonly urlScale: number;
  private readonly expressionRes: readonly (RegExp | null)[];

  constructor(readonly parts: CompactParts) {
    this.categories = parts.categories;
    this.version = parts.version;
    this.domains = parts.domains;
    [this.s1, this.s2] = parts.seeds;
    this.domScale = homeScale(parts.domCapacity);
    this.urlScale = homeScale(parts.urlCapacity);
    this.expressionRes = parts.expressions.map((list) => (list.length ? new RegExp(list.map((s) => `(?:${s})`).join('|'), 'i') : null));
  }

  counts(): CategoryCounts[] {
    return this.parts.counts.slice();
  }

  /** Bytes held by the tables (what "bytes per entry" measures). */
  get tableBytes(): number {
    const p = this.parts;
    return SECTIONS.reduce((n, s) => n + p[s].byteLength, 0) + p.paths.length;
  }

  matchHost(host: string, want: Uint8Array): ListHit | null {
    const n = host.length;
    if (n === 0 || this.domains === 0) return null;
    const last = host.charCodeAt(n - 1);
    if (((last >= 48 && last <= 57) || host.indexOf(':') !== -1) && isIP(host) !== 0) {
      this.fingerprintInto(host);
      return this.domainHit(findSlot(this.parts.domFp, this.domScale, PAIR[0]!, PAIR[1]!), want, host, 0);
    }
    // One right-to-left pass fingerprints every parent domain; then probe most specific first.
    const walk = WALK;
    let a = this.s1;
    let b = this.s2;
    let k = 0;
    const stop = n > MAX_ENTRY ? n - MAX_ENTRY : 0;
    for (let i = n - 1; i >= stop; i--) {
      const c = host.charCodeAt(i);
      a = step1(a, c);
      b = step2(b, c);
      if (i === 0 || host.charCodeAt(i - 1) === 46) {
        walk[k] = fin1(a, n - i);
        walk[k + 1] = fin2(b, n - i);
        walk[k + 2] = i;
        k += 3;
      }
    }
    const fp = this.parts.domFp;
    for (let j = k - 3; j >= 0; j -= 3) {
      const slot = findSlot(fp, this.domScale, walk[j]!, walk[j + 1]!);
      if (slot !== -1) {
        const hit = this.domainHit(slot, want, host, walk[j + 2]!);
        if (hit) return hit;
      }
    }
    return null;
  }

  private domainHit(slot: number, want: Uint8Array, host: string, start: number): ListHit | null {
    if (slot === -1) return null;
    const { domSet, setStart, setMembers } = this.parts;
    const set = domSet[slot]!;
    for (let m = setStart[set]!, end = setStart[set + 1]!; m < end; m++) {
      const category = setMembers[m]!;
      if (want[category]) return { category, entry: start === 0 ? host : host.slice(start), kind: 'domain' };
    }
    return null;
  }

  private fingerprintInto(s: string): void {
    let a = this.s1;
    let b = this.s2;
    for (let i = s.length - 1; i >= 0; i--) {
      const c = s.charCodeAt(i);
      a = step1(a, c);
      b = step2(b, c);
    }
    PAIR[0] = fin1(a, s.length);
    PAIR[1] = fin2(b, s.length);
  }

  private urlSlot(host: string): number {
    if (this.parts.groupStart.length <= 1 || host.length > MAX_ENTRY) return -1;
    this.fingerprintInto(host);
    return findSlot(this.parts.urlFp, this.urlScale, PAIR[0]!, PAIR[1]!);
  }

  hasUrlRules(host: string): boolean {
    return this.urlSlot(host) !== -1;
  }

  matchUrl(host: string, path: string, want: Uint8Array): ListHit | null {
    const slot = this.urlSlot(host);
    if (slot === -1) return null;
    const { urlGroup, groupStart, ruleOff, ruleLen, ruleCat, paths } = this.parts;
    const g = urlGroup[slot]!;
    for (let r = groupStart[g]!, end = groupStart[g + 1]!; r < end; r++) {
      const category = ruleCat[r]!;
      if (!want[category]) continue;
      const off = ruleOff[r]!;
      const len = ruleLen[r]!;
      if (len > path.length) continue;
      let i = 0;
      while (i < len && path.charCodeAt(i) === paths.charCodeAt(off + i)) i++;
      if (i === len) return { category, entry: host + paths.slice(off, off + len), kind: 'url' };
    }
    return null;
  }

  hasExpressions(want: Uint8Array): boolean {
    for (let c = 0; c < this.expressionRes.length; c++) if (want[c] && this.expressionRes[c]) return true;
    return false;
  }

  matchExpression(url: string, want: Uint8Array): ListHit | null {
    for (let c = 0; c < this.expressionRes.length; c++) {
      const re = this.expressionRes[c];
      if (!want[c] || !re) continue;
      if (re.test(url)) {
        const entry = this.parts.expressions[c]!.find((src) => new RegExp(src, 'i').test(url)) ?? re.source;
        return { category: c, entry, kind: 'expression' };
      }
    }
    return null;
  }

  /** The compiled file: magic, header length, JSON header, then 8-aligned typed-array sections. */
  serialize(): Uint8Array {
    const p = this.parts;
    const sections = {} as Header['sections'];
    let offset = 0;
    for (const s of SECTIONS) {
      const arr = p[s];
      sections[s] = { offset, length: arr.length, width: arr.BYTES_PER_ELEMENT as 2 | 4 };
      offset += align8(arr.byteLength);
    }
    const header: Header = {
      format: FORMAT, version: p.version, categories: p.categories, counts: p.counts, seeds: p.seeds, domains: p.domains,
      domCapacity: p.domCapacity, urlCapacity: p.urlCapacity, paths: p.paths, expressions: p.expressions, sections,
    };
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const base = align8(16 + json.length);
    const out = new Uint8Array(base + offset);
    out.set(Buffer.from(MAGIC, 'latin1'), 0);
    new DataView(out.buffer).setUint32(8, json.length, true);
    out.set(json, 16);
    for (const s of SECTIONS) {
      const arr = p[s];
      out.set(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength), base + sections[s].offset);
    }
    return out;
  }

  /** Reads a compiled file; the sections become views on `bytes` (copied once if misaligned). */
  static fromBytes(bytes: Uint8Array): CompactIndex {
    if (bytes.length < 16 || Buffer.from(bytes.buffer, bytes.byteOffset, 8).toString('latin1') !== MAGIC) throw new Error('not a compiled Vigie list index (bad magic)');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const jsonLen = view.getUint32(8, true);
    if (16 + jsonLen > bytes.length) throw new Error('compiled list index is truncated (header)');
    const header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 16, jsonLen).toString('utf8')) as Header;
    if (header.format !== FORMAT) throw new Error(`compiled list index has format ${header.format}, expected ${FORMAT}`);
    if (bytes.byteOffset % 8 !== 0) bytes = bytes.slice();
    const base = align8(16 + jsonLen);
    const arrays = {} as Record<Section, Uint16Array | Uint32Array>;
    for (const s of SECTIONS) {
      const { offset, length, width } = header.sections[s];
      if (base + offset + length * width > bytes.length) throw new Error(`compiled list index is truncated (${s})`);
      arrays[s] = width === 2 ? new Uint16Array(bytes.buffer, bytes.byteOffset + base + offset, length) : new Uint32Array(bytes.buffer, bytes.byteOffset + base + offset, length);
    }
    return new CompactIndex({
      version: header.version, categories: header.categories, counts: header.counts, seeds: header.seeds, domains: header.domains,
      domCapacity: header.domCapacity, urlCapacity: header.urlCapacity, paths: header.paths, expressions: header.expressions,
      domFp: arrays.domFp as Uint32Array, domSet: arrays.domSet, setStart: arrays.setStart as Uint32Array, setMembers: arrays.setMembers as Uint16Array,
      urlFp: arrays.urlFp as Uint32Array, urlGroup: arrays.urlGroup as Uint32Array, groupStart: arrays.groupStart as Uint32Array,
      ruleOff: arrays.ruleOff as Uint32Array, ruleLen: arrays.ruleLen as Uint32Array, ruleCat: arrays.ruleCat as Uint16Array,
    });
  }
}

const align8 = (n: number): number => (n + 7) & ~7;
