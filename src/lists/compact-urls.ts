/**
 * The url rules of the compact index, grouped by host, longest path first (squidGuard reports
 * the most specific entry): which rule of a group first prefixes a request path.
 *
 * A small group is scanned, one compare of the path's first two characters per rule. A large
 * one (docs.google.com has about a thousand rules, most sharing long prefixes, so a scan costs
 * microseconds) is searched by length instead: one pass over the path hashes each of its
 * prefixes, and for each rule length (longest first) a binary search among that length's rule
 * hashes finds the only path that can match. These tables are built with the index and kept in
 * the compiled file (urlRuleTables), so threads view them in shared memory like the rules.
 */

import type { CompactParts } from './compact-file.js';

/** Groups up to this many rules are scanned. */
const SCAN_MAX = 12;

/** Hash of a path prefix, extended one character at a time (FNV-1a step, 32 bits). */
const PATH_SEED = 0x811c9dc5 | 0;
const pathStep = (h: number, c: number): number => Math.imul(h ^ c, 0x01000193);

/** The search tables of the url rules (CompactParts' url* sections), from the rules and paths. */
export function urlRuleTables(groupStart: Uint32Array, ruleOff: Uint32Array, ruleLen: Uint32Array, paths: Uint8Array | Uint16Array): Pick<CompactParts, 'urlHead' | 'urlHeadMask' | 'urlRunFirst' | 'urlRunStart' | 'urlRunEnd' | 'urlByHash' | 'urlHashOf'> {
  const rules = ruleOff.length;
  const urlHead = new Int32Array(rules);
  const urlHeadMask = new Int32Array(rules);
  for (let r = 0; r < rules; r++) {
    const off = ruleOff[r]!;
    const len = ruleLen[r]!;
    const mask = len > 2 ? -1 : len === 2 ? -65536 : 0;
    urlHeadMask[r] = mask;
    urlHead[r] = (((paths[off + 1] ?? 0) << 16) | (paths[off + 2] ?? 0)) & mask;
  }
  const ruleHash = (r: number): number => {
    let h = PATH_SEED;
    for (let i = ruleOff[r]!, end = i + ruleLen[r]!; i < end; i++) h = pathStep(h, paths[i]!);
    return h;
  };
  const groups = Math.max(0, groupStart.length - 1);
  const urlRunFirst = new Int32Array(groups + 1);
  const starts: number[] = [];
  const ends: number[] = [];
  const urlByHash = new Int32Array(rules);
  const urlHashOf = new Int32Array(rules);
  for (let g = 0; g < groups; g++) {
    urlRunFirst[g] = starts.length;
    const from = groupStart[g]!;
    const to = groupStart[g + 1]!;
    if (to - from <= SCAN_MAX) continue;
    for (let r = from; r < to; ) {
      let e = r + 1;
      while (e < to && ruleLen[e] === ruleLen[r]) e++;
      const run: { r: number; h: number }[] = [];
      for (let x = r; x < e; x++) run.push({ r: x, h: ruleHash(x) });
      run.sort((p, q) => p.h - q.h || p.r - q.r);
      run.forEach((x, i) => {
        urlByHash[r + i] = x.r;
        urlHashOf[r + i] = x.h;
      });
      starts.push(r);
      ends.push(e);
      r = e;
    }
  }
  urlRunFirst[groups] = starts.length;
  return { urlHead, urlHeadMask, urlRunFirst, urlRunStart: Int32Array.from(starts), urlRunEnd: Int32Array.from(ends), urlByHash, urlHashOf };
}

export class UrlRuleIndex {
  private readonly groupStart: Uint32Array;
  private readonly ruleOff: Uint32Array;
  private readonly ruleLen: Uint32Array;
  private readonly ruleCat: Uint16Array;
  private readonly paths: Uint8Array | Uint16Array;
  /** Characters 1 and 2 of each rule's path in one int, and which of them the rule has. */
  private readonly head: Int32Array;
  private readonly headMask: Int32Array;
  /** Per group, its length runs: runs[runFirst[g] .. runFirst[g + 1]) (none for scanned groups). */
  private readonly runFirst: Int32Array;
  private readonly runStart: Int32Array;
  private readonly runEnd: Int32Array;
  /** Within each run, rule numbers ordered by (path hash, rule number), and their hashes. */
  private readonly byHash: Int32Array;
  private readonly hashOf: Int32Array;
  /** Prefix hashes of the path being matched (index = prefix length). */
  private readonly prefix: Int32Array;
  /** The paths' bytes as a Buffer, and their encoding: a reported entry is decoded natively. */
  private readonly text: Buffer;
  private readonly encoding: 'latin1' | 'utf16le';

  constructor(p: CompactParts) {
    this.groupStart = p.groupStart;
    this.ruleOff = p.ruleOff;
    this.ruleLen = p.ruleLen;
    this.ruleCat = p.ruleCat;
    this.paths = p.paths;
    this.head = p.urlHead;
    this.headMask = p.urlHeadMask;
    this.runFirst = p.urlRunFirst;
    this.runStart = p.urlRunStart;
    this.runEnd = p.urlRunEnd;
    this.byHash = p.urlByHash;
    this.hashOf = p.urlHashOf;
    // Runs are longest first: a group's first rule is its longest, so no prefix is longer than the longest rule.
    let longest = 0;
    for (let r = 0; r < p.ruleLen.length; r++) if (p.ruleLen[r]! > longest) longest = p.ruleLen[r]!;
    this.prefix = new Int32Array(longest + 1);
    this.text = Buffer.from(p.paths.buffer, p.paths.byteOffset, p.paths.byteLength);
    this.encoding = p.paths.BYTES_PER_ELEMENT === 1 ? 'latin1' : 'utf16le';
  }

  /** A rule's path as a string (the entry a match reports). */
  path(r: number): string {
    const w = this.paths.BYTES_PER_ELEMENT;
    const off = this.ruleOff[r]! * w;
    return this.text.toString(this.encoding, off, off + this.ruleLen[r]! * w);
  }

  /** The first rule of group g (in list order) whose category is wanted and which prefixes path, or -1. */
  first(g: number, path: string, want: Uint8Array): number {
    const { groupStart, ruleOff, ruleLen, ruleCat, paths } = this;
    const n = path.length;
    const firstRun = this.runFirst[g]!;
    const lastRun = this.runFirst[g + 1]!;
    if (firstRun === lastRun) {
      const heads = this.head;
      const masks = this.headMask;
      const head = n > 2 ? (path.charCodeAt(1) << 16) | path.charCodeAt(2) : n === 2 ? path.charCodeAt(1) << 16 : 0;
      for (let r = groupStart[g]!, end = groupStart[g + 1]!; r < end; r++) {
        if ((head & masks[r]!) !== heads[r]) continue;
        if (!want[ruleCat[r]!]) continue;
        const off = ruleOff[r]!;
        const len = ruleLen[r]!;
        if (len > n) continue;
        let i = 0;
        while (i < len && path.charCodeAt(i) === paths[off + i]) i++;
        if (i === len) return r;
      }
      return -1;
    }
    // Runs are longest first: the group's first rule is its longest.
    const ph = this.prefix;
    const m = Math.min(n, ruleLen[groupStart[g]!]!);
    let h = PATH_SEED;
    for (let i = 0; i < m; i++) ph[i + 1] = h = pathStep(h, path.charCodeAt(i));
    const byHash = this.byHash;
    const hashOf = this.hashOf;
    for (let j = firstRun; j < lastRun; j++) {
      let lo = this.runStart[j]!;
      let hi = this.runEnd[j]!;
      const len = ruleLen[lo]!;
      if (len > n) continue;
      const want1 = ph[len]!;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (hashOf[mid]! < want1) lo = mid + 1;
        else hi = mid;
      }
      // Equal hashes are ordered by rule number: the first wanted, truly equal one is the answer.
      for (let p = lo, end = this.runEnd[j]!; p < end && hashOf[p] === want1; p++) {
        const r = byHash[p]!;
        if (!want[ruleCat[r]!]) continue;
        const off = ruleOff[r]!;
        let i = 0;
        while (i < len && path.charCodeAt(i) === paths[off + i]) i++;
        if (i === len) return r;
      }
    }
    return -1;
  }
}
