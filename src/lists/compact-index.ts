import { isIP } from 'node:net';
import { FLAG_MASK, fin1, fin2, lane2, step1, step2 } from './hash.js';
import { EMBED_MASK, filterHas, FLAG_BITS, findLane1, findSlot, HAS_CHILDREN, HAS_URLS, home, homeScale, IS_ENTRY, SET_BITS } from './static-table.js';
import { UrlRuleIndex } from './compact-urls.js';
import { CategoryExpressions } from './expressions.js';
import { stripWww, wwwEnd } from './normalize.js';
import { compactPartsFromBytes, sectionBytes, serializeCompact, type CompactParts } from './compact-file.js';
import type { CategoryCounts, CategoryIndex, ListHit } from './types.js';

export type { CompactParts } from './compact-file.js';

/**
 * The national-scale index: every UT1 category in one table of fingerprints (static-table.ts),
 * each entry carrying an interned set of categories; parents of entries are in the table too,
 * flagged, so the label walk (parents first) stops at the first unknown name. About 12 bytes
 * per domain, no JS string per entry, one file that loads as a few typed-array views.
 * Same semantics as MapIndex, the reference it is property-tested against.
 *
 * Names are not kept, only fingerprints: a false match needs two independent lanes to collide
 * under a per-build secret seed: 51 bits when the category set rides in the slot (1 in 2^51 per
 * candidate, at most one or two per lookup), 61 bits otherwise.
 */

const SET_LIMIT = (1 << SET_BITS) - 1;
/** Longest listable name: suffixes longer than this cannot be entries, so they are not probed. */
const MAX_ENTRY = 253;

const PAIR = new Int32Array(2);

/** Does the category set of `slot` hold a wanted category? (module-level: its tables come as arguments) */
function wantsSet(fp: Int32Array, setsEmbedded: boolean, domSet: Uint16Array | Uint32Array, setStart: Uint32Array, setMembers: Uint16Array, slot: number, want: Uint8Array): boolean {
  const set = setsEmbedded ? (fp[(slot << 1) | 1]! >>> FLAG_BITS) & SET_LIMIT : domSet[slot]!;
  for (let m = setStart[set]!, end = setStart[set + 1]!; m < end; m++) if (want[setMembers[m]!]) return true;
  return false;
}

export class CompactIndex implements CategoryIndex {
  readonly categories: readonly string[];
  readonly version: string;
  /** Unique domain entries (a domain in three categories counts once). */
  readonly domains: number;
  private readonly s1: number;
  private readonly s2: number;
  private readonly domScale: number;
  private readonly urlScale: number;
  private readonly expressionRes: CategoryExpressions;
  /** Lane-2 bits that are fingerprint in the domain table. */
  private readonly mask: number;
  private readonly urlIndex: UrlRuleIndex;
  // What the walk reads, one property load each (parts.x would be two).
  private readonly fp: Int32Array;
  private readonly filter: Int32Array;
  private readonly blocks: number;
  private readonly topLevel: boolean;
  private readonly setStart: Uint32Array;
  private readonly setMembers: Uint16Array;
  private readonly domSet: Uint16Array | Uint32Array;
  private readonly setsEmbedded: boolean;

  constructor(
    readonly parts: CompactParts,
    /** The compiled file the parts view (null: built in memory). */
    private readonly file: Uint8Array | null = null,
  ) {
    this.categories = parts.categories;
    this.version = parts.version;
    this.domains = parts.domains;
    [this.s1, this.s2] = parts.seeds;
    this.domScale = homeScale(parts.domCapacity);
    this.urlScale = homeScale(parts.urlCapacity);
    this.mask = parts.setsEmbedded ? EMBED_MASK : FLAG_MASK;
    this.urlIndex = new UrlRuleIndex(parts);
    this.fp = parts.domFp;
    this.filter = parts.domFilter;
    this.blocks = parts.filterBlocks;
    this.topLevel = parts.topLevel;
    this.setStart = parts.setStart;
    this.setMembers = parts.setMembers;
    this.domSet = parts.domSet;
    this.setsEmbedded = parts.setsEmbedded;
    this.expressionRes = new CategoryExpressions(parts.expressions);
  }

  counts(): CategoryCounts[] {
    return this.parts.counts.slice();
  }

  /** Bytes held by the tables (what "bytes per entry" measures). */
  get tableBytes(): number {
    const p = this.parts;
    return sectionBytes(p);
  }

  matchHost(host: string, want: Uint8Array): ListHit | null {
    return this.matchHostAndUrl(host, '', want);
  }

  /**
   * matchHost(host), then (path not empty) the url entries of the www-stripped host: the answer
   * of the two calls in sequence, from one right-to-left walk (see walk).
   */
  matchHostAndUrl(host: string, path: string, want: Uint8Array): ListHit | null {
    const n = host.length;
    if (n === 0) return null;
    const last = host.charCodeAt(n - 1);
    if (last <= 57 && last >= 48 && isIP(host) !== 0) return this.exactHost(host, want) ?? (path.length === 0 ? null : this.matchUrl(host, path, want));
    // Up to the first name the walk probes, where most lookups end (the filter does not know it):
    // a small function of its own, so that path stays compact machine code (inside the whole
    // walk a cold miss measured 25-29 ns slower). Anything else goes on in walk() from there.
    const stop = n > MAX_ENTRY ? n - MAX_ENTRY - 1 : 0;
    let a = this.s1 | 0;
    let probe = this.topLevel === true;
    let i = n - 1;
    for (; i >= stop; i--) {
      const c = host.charCodeAt(i);
      if (c === 46) {
        if (probe) {
          if (!filterHas(this.filter, this.blocks | 0, fin1(a, n - 1 - i))) return null;
          break;
        }
        probe = true;
      } else if (c === 58) break;
      a = Math.imul(a ^ c, 0x01000193);
    }
    return this.walk(host, path, want, i, a, probe);
  }

  /**
   * The lookup of matchHostAndUrl, computing lane 1 only, on from position `from` (lane-1 state
   * `a1` of host[from + 1..], `probed`: the next dot is a name to probe).
   *
   * Right to left, the lane-1 state just before a dot is the fingerprint of the name after it, so
   * parents come first. Every parent of an entry or of a url host is in the table (flagged), so
   * the walk stops at the first name the Bloom filter or the table does not know, usually right
   * after the TLD. A name whose lane 1 is held by one slot only is that slot's name or absent
   * (and then nothing below it is listed), so going on or stopping needs no lane 2; lane 2 is
   * computed once, at the end, to confirm the deepest wanted entry (or the url host). A lane-1
   * value held by two slots, or a candidate lane 2 disowns, takes the exact walk instead.
   *
   * A method that copies the tables into typed locals first, not a closure over them: with
   * several indexes alive (each reload makes one; bench:lists loads six) V8 compiled the shared
   * closure generically, the lane-1 state boxed with a float add per character; a cold lookup
   * measured 25-30 ns slower.
   */
  private walk(host: string, path: string, want: Uint8Array, from: number, a1: number, probed: boolean): ListHit | null {
    // `| 0`, `+` and `=== true` give V8 each value's representation: a property read is a tagged
    // value it would otherwise box, re-check and convert at every character (the lane-1 state
    // became a float add per character, `probe` a generic truth test).
    const fp = this.fp;
    const scale = +this.domScale;
    const filter = this.filter;
    const blocks = this.blocks | 0;
    const mask = this.mask | 0;
    const setStart = this.setStart;
    const setMembers = this.setMembers;
    const domSet = this.domSet;
    const setsEmbedded = this.setsEmbedded === true;
    const self = this;
    const n = host.length;
    let a = a1 | 0;
    let cand = -1;
    let candStart = 0;
    let urlH1 = 0;
    let urlAt = false;
    // Where the www-stripped host starts (url entries are keyed by it), once one is flagged.
    let urlStart = 0;
    let colon = false;
    // The TLD itself is only probed when some entry is a single label: it is always an ancestor.
    let probe = probed === true;
    // Names longer than any entry are never probed; a dot just past that limit still counts.
    const stop = n > MAX_ENTRY ? n - MAX_ENTRY - 1 : 0;
    let i = from | 0;
    for (; i >= stop; i--) {
      const c = host.charCodeAt(i);
      if (c === 46 && !probe) probe = true;
      else if (c === 46) {
        const h1 = fin1(a, n - 1 - i);
        if (!filterHas(filter, blocks, h1)) break;
        const slot = findLane1(fp, h1, home(h1, scale));
        if (slot === -1) break;
        if (fp[(slot + 1) << 1] === h1) return self.exactMatch(host, path, want);
        const low = fp[(slot << 1) | 1]!;
        if (low & IS_ENTRY && wantsSet(fp, setsEmbedded, domSet, setStart, setMembers, slot, want)) {
          cand = slot;
          candStart = i + 1;
        }
        if (low & HAS_URLS && i === wwwEnd(host) - 1) {
          urlAt = true;
          urlH1 = h1;
          urlStart = i + 1;
        }
        if (!(low & HAS_CHILDREN)) break;
      } else if (c === 58 && !colon) {
        // IPv6 literals match exactly (checked once; other names with ':' walk like any name).
        colon = true;
        if (isIP(host) !== 0) return self.exactMatch(host, path, want);
      }
      a = Math.imul(a ^ c, 0x01000193);
    }
    if (i < 0 && probe) {
      // The whole host was read, every parent known: the last name to try.
      const h1 = fin1(a, n);
      const slot = filterHas(filter, blocks, h1) ? findLane1(fp, h1, home(h1, scale)) : -1;
      if (slot !== -1) {
        if (fp[(slot + 1) << 1] === h1) return self.exactMatch(host, path, want);
        const low = fp[(slot << 1) | 1]!;
        if (low & IS_ENTRY && wantsSet(fp, setsEmbedded, domSet, setStart, setMembers, slot, want)) {
          cand = slot;
          candStart = 0;
        }
        if (low & HAS_URLS && wwwEnd(host) === 0) {
          urlAt = true;
          urlH1 = h1;
        }
      }
    }
    if (cand !== -1) {
      if (((fp[(cand << 1) | 1]! ^ lane2(this.s2 | 0, host, candStart)) & mask) === 0) {
        const set = setsEmbedded ? (fp[(cand << 1) | 1]! >>> FLAG_BITS) & SET_LIMIT : domSet[cand]!;
        for (let m = setStart[set]!, end = setStart[set + 1]!; m < end; m++) {
          const category = setMembers[m]!;
          if (want[category]) return { category, entry: candStart === 0 ? host : host.slice(candStart), kind: 'domain' };
        }
      }
      return self.exactMatch(host, path, want);
    }
    if (!urlAt || path.length === 0) return null;
    const slot = self.urlExact(urlH1, lane2(this.s2 | 0, host, urlStart));
    return slot === -1 ? null : self.urlRules(slot, urlStart === 0 ? host : host.slice(urlStart), path, want);
  }

  /** The answer the slow way: both lanes checked at every name (IP literals, lane-1 collisions). */
  private exactMatch(host: string, path: string, want: Uint8Array): ListHit | null {
    return this.exactMatchHost(host, want) ?? (path.length === 0 ? null : this.matchUrl(stripWww(host), path, want));
  }

  private exactMatchHost(host: string, want: Uint8Array): ListHit | null {
    const n = host.length;
    if (n === 0) return null;
    if (isIP(host) !== 0) return this.exactHost(host, want);
    const fp = this.parts.domFp;
    const scale = this.domScale;
    const mask = this.mask;
    let a = this.s1;
    let b = this.s2;
    let best = -1;
    let bestStart = 0;
    const stop = n > MAX_ENTRY ? n - MAX_ENTRY - 1 : 0;
    for (let i = n - 1; i >= stop - 1; i--) {
      const c = i >= 0 ? host.charCodeAt(i) : 46;
      if (c === 46) {
        const len = n - 1 - i;
        if (len > MAX_ENTRY) break;
        const slot = findSlot(fp, scale, fin1(a, len), fin2(b, len), mask);
        if (slot === -1) break;
        const low = fp[(slot << 1) | 1]!;
        if (low & IS_ENTRY && this.wants(slot, want)) {
          best = slot;
          bestStart = i + 1;
        }
        if (!(low & HAS_CHILDREN)) break;
      }
      if (i < 0) break;
      a = step1(a, c);
      b = step2(b, c);
    }
    return best === -1 ? null : this.domainHit(best, want, host, bestStart);
  }

  /** The url table slot holding exactly (h1, h2) as a host with rules, or -1. */
  private urlExact(h1: number, h2: number): number {
    const fp = this.parts.urlFp;
    const slot = findSlot(fp, this.urlScale, h1, h2);
    return slot !== -1 && fp[(slot << 1) | 1]! & IS_ENTRY ? slot : -1;
  }

  private exactHost(host: string, want: Uint8Array): ListHit | null {
    this.fingerprintInto(host);
    const slot = findSlot(this.parts.domFp, this.domScale, PAIR[0]!, PAIR[1]!, this.mask);
    if (slot === -1 || !(this.parts.domFp[(slot << 1) | 1]! & IS_ENTRY)) return null;
    return this.domainHit(slot, want, host, 0);
  }

  private wants(slot: number, want: Uint8Array): boolean {
    const { setStart, setMembers } = this.parts;
    const set = this.setOf(slot);
    for (let m = setStart[set]!, end = setStart[set + 1]!; m < end; m++) if (want[setMembers[m]!]) return true;
    return false;
  }

  private domainHit(slot: number, want: Uint8Array, host: string, start: number): ListHit | null {
    const { setStart, setMembers } = this.parts;
    const set = this.setOf(slot);
    for (let m = setStart[set]!, end = setStart[set + 1]!; m < end; m++) {
      const category = setMembers[m]!;
      if (want[category]) return { category, entry: start === 0 ? host : host.slice(start), kind: 'domain' };
    }
    return null;
  }

  private setOf(slot: number): number {
    return this.parts.setsEmbedded ? (this.parts.domFp[(slot << 1) | 1]! >>> FLAG_BITS) & SET_LIMIT : this.parts.domSet[slot]!;
  }

  private fingerprintInto(s: string): void {
    let a = this.s1;
    let b = this.s2;
    const n = s.length;
    for (let i = n - 1; i >= 0; i--) {
      const c = s.charCodeAt(i);
      a = step1(a, c);
      b = step2(b, c);
    }
    PAIR[0] = fin1(a, s.length);
    PAIR[1] = fin2(b, s.length);
  }

  /** The url table slot of exactly `host`, walking parents first so unknown names cost a few characters. */
  private urlSlot(host: string): number {
    const n = host.length;
    if (this.parts.groupStart.length <= 1 || n > MAX_ENTRY || n === 0) return -1;
    const fp = this.parts.urlFp;
    const scale = this.urlScale;
    let a = this.s1;
    for (let i = n - 1; i >= 0; i--) {
      const c = host.charCodeAt(i);
      // Parents first, on lane 1 alone: this only decides whether to go on, never a match.
      if (c === 46) {
        const h1 = fin1(a, n - 1 - i);
        if (findLane1(fp, h1, home(h1, scale)) === -1) return -1;
      }
      a = Math.imul(a ^ c, 0x01000193);
    }
    this.fingerprintInto(host);
    const slot = findSlot(fp, scale, PAIR[0]!, PAIR[1]!);
    return slot !== -1 && fp[(slot << 1) | 1]! & IS_ENTRY ? slot : -1;
  }

  hasUrlRules(host: string): boolean {
    return this.urlSlot(host) !== -1;
  }

  matchUrl(host: string, path: string, want: Uint8Array): ListHit | null {
    const slot = this.urlSlot(host);
    return slot === -1 ? null : this.urlRules(slot, host, path, want);
  }

  /**
   * The first wanted rule of url slot `slot` (host `host`) that prefixes `path`, compared in lower
   * case as squidGuard does (rules are lower-cased when built); only hosts with url rules pay it.
   */
  private urlRules(slot: number, host: string, path: string, want: Uint8Array): ListHit | null {
    const r = this.urlIndex.first(this.parts.urlGroup[slot]!, path.toLowerCase(), want);
    if (r === -1) return null;
    return { category: this.parts.ruleCat[r]!, entry: host + this.urlIndex.path(r), kind: 'url' };
  }

  hasExpressions(want: Uint8Array): boolean {
    return this.expressionRes.has(want);
  }

  matchExpression(url: string, want: Uint8Array): ListHit | null {
    const m = this.expressionRes.match(url, want);
    return m === null ? null : { category: m.category, entry: m.entry, kind: 'expression' };
  }

  /**
   * The compiled file (compact-file.ts); `shared`: in a SharedArrayBuffer, which the gateway's
   * threads all view without a copy.
   */
  serialize(shared = false): Uint8Array {
    return serializeCompact(this.parts, shared);
  }

  /** Reads a compiled file; the sections become views on `bytes` (copied once if misaligned). */
  static fromBytes(bytes: Uint8Array): CompactIndex {
    const { parts, file } = compactPartsFromBytes(bytes);
    return new CompactIndex(parts, file);
  }

  /** The compiled file this index views, when it lies in a SharedArrayBuffer: another thread can view it too. */
  get sharedFile(): Uint8Array | null {
    return this.file !== null && this.file.buffer instanceof SharedArrayBuffer ? this.file : null;
  }
}
