import { CompactIndex } from './compact-index.js';
import { urlRuleTables } from './compact-urls.js';
import { fin1, fin2, fingerprint, randomSeeds, step1, step2 } from './hash.js';

/** Tag of an ancestor record: "some entry lies below this name" (not a category). */
const ANCESTOR = 0xffff;
/** Tag of a url host record: "url rules are keyed by this name" (not a category). */
const URL_HOST = 0xfffe;
import type { EntryProblem } from './map-index.js';
import { expressionProblem, isIpLiteral, isValidHostEntry, normalizeHost, normalizeUrlEntry } from './normalize.js';
import { EMBED_MASK, filterAdd, filterBlocksFor, FLAG_BITS, HAS_CHILDREN, HAS_URLS, IS_ENTRY, placeSorted, radixSortByH1, SET_BITS } from './static-table.js';
import type { CategoryCounts } from './types.js';
import type { ByteListSink } from './ut1.js';

const NOT_A_HOST = 'not a hostname or IP address';

/**
 * Accumulates UT1 entries as fingerprints (8 bytes + a category number each), then sorts,
 * merges duplicates into interned category sets and lays out the CompactIndex tables.
 * Domain lines come in as bytes: plain ASCII names are validated, lower-cased and hashed in one
 * pass with no string made; anything else goes through the same normaliser as MapIndex.
 */
export class CompactIndexBuilder implements ByteListSink {
  private readonly names: string[] = [];
  private readonly byName = new Map<string, number>();
  private readonly expr: string[][] = [];
  private readonly urlCount: number[] = [];
  private h1 = new Int32Array(1 << 16);
  private h2 = new Int32Array(1 << 16);
  private cat = new Uint16Array(1 << 16);
  private n = 0;
  /** Some entry or url host is a single label (a TLD): lookups must then probe TLDs too. */
  private topLevel = false;
  private readonly urlRules: { host: string; path: string; category: number }[] = [];
  private readonly urlSeen = new Set<string>();
  private readonly s1: number;
  private readonly s2: number;
  private readonly pair = new Int32Array(2);
  /** Ancestors of the line being read (at most 127 dots in 255 bytes). */
  private readonly found = new Int32Array(256);
  /**
   * Ancestors pushed lately, direct-mapped: "com" and friends come back on every other line, and
   * skipping repeats here halves the records the sort has to move.
   */
  private readonly recent1 = new Int32Array(4096).fill(0x7fffffff);
  private readonly recent2 = new Int32Array(4096);

  private ancestor(a: number, b: number): void {
    const slot = (a ^ (a >>> 12) ^ b) & 4095;
    if (this.recent1[slot] === a && this.recent2[slot] === b) return;
    this.recent1[slot] = a;
    this.recent2[slot] = b;
    this.push(ANCESTOR, a, b);
  }

  constructor(
    seeds: [number, number] = randomSeeds(),
    /** Category sets inside the fingerprint slots when they fit (false: always a separate array). */
    private readonly embedSets = true,
  ) {
    [this.s1, this.s2] = seeds;
  }

  category(name: string): number {
    let id = this.byName.get(name);
    if (id === undefined) {
      id = this.names.length;
      if (id >= URL_HOST) throw new Error('too many categories');
      this.names.push(name);
      this.byName.set(name, id);
      this.expr.push([]);
      this.urlCount.push(0);
    }
    return id;
  }

  private push(category: number, a: number, b: number): void {
    if (this.n === this.h1.length) {
      const grow = <T extends Int32Array | Uint16Array>(x: T, make: (n: number) => T): T => {
        const y = make(x.length * 2);
        y.set(x);
        return y;
      };
      this.h1 = grow(this.h1, (k) => new Int32Array(k));
      this.h2 = grow(this.h2, (k) => new Int32Array(k));
      this.cat = grow(this.cat, (k) => new Uint16Array(k));
    }
    this.h1[this.n] = a;
    this.h2[this.n] = b;
    this.cat[this.n++] = category;
  }

  addDomain(category: number, raw: string): EntryProblem {
    const host = normalizeHost(raw.trim());
    if (!host || !isValidHostEntry(host)) return NOT_A_HOST;
    let a = this.s1;
    let b = this.s2;
    const n = host.length;
    for (let i = n - 1; i >= 0; i--) {
      const c = host.charCodeAt(i);
      if (c === 46) this.ancestor(fin1(a, n - 1 - i), fin2(b, n - 1 - i));
      a = step1(a, c);
      b = step2(b, c);
    }
    this.push(category, fin1(a, n), fin2(b, n));
    if (host.indexOf('.') === -1 && !isIpLiteral(host)) this.topLevel = true;
    return null;
  }

  /**
   * A trimmed, non-comment domains line in buf[start, end). Returns undefined when the line is
   * not plain ASCII host syntax, for the caller to pass it to addDomain as a string; this keeps
   * accept/refuse identical to normalizeHost + isValidHostEntry.
   */
  addDomainBytes(category: number, buf: Uint8Array, start: number, end: number): EntryProblem | undefined {
    if (end - start > 255) return NOT_A_HOST;
    while (end > start && buf[end - 1] === 46) end--;
    if (end === start) return NOT_A_HOST;
    let a = this.s1;
    let b = this.s2;
    let labelEnd = end;
    let bad = false;
    let k = 0;
    const found = this.found;
    // A name ending in a number must be a whole IPv4 address (normalizeHost): the string path decides.
    if (buf[end - 1]! >= 48 && buf[end - 1]! <= 57) return undefined;
    for (let i = end - 1; i >= start; i--) {
      let c = buf[i]!;
      if (c >= 65 && c <= 90) c += 32;
      else if (c === 46) {
        // Label (i, labelEnd): 1..63 chars, no hyphen at either end.
        const len = labelEnd - i - 1;
        if (len === 0 || len > 63 || buf[i + 1] === 45 || buf[labelEnd - 1] === 45) bad = true;
        labelEnd = i;
        // What follows the dot is an ancestor (the lookup's walk must not stop there); kept
        // aside until the line is known to be valid.
        found[k++] = fin1(a, end - 1 - i);
        found[k++] = fin2(b, end - 1 - i);
      } else if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 95)) return undefined;
      a = step1(a, c);
      b = step2(b, c);
    }
    const len = labelEnd - start;
    if (len === 0 || len > 63 || buf[start] === 45 || buf[labelEnd - 1] === 45) bad = true;
    if (bad || end - start > 253) return NOT_A_HOST;
    for (let j = 0; j < k; j += 2) this.ancestor(found[j]!, found[j + 1]!);
    this.push(category, fin1(a, end - start), fin2(b, end - start));
    if (k === 0) this.topLevel = true;
    return null;
  }

  addUrl(category: number, raw: string): EntryProblem {
    const u = normalizeUrlEntry(raw);
    if (!u) return 'not a url (host/path)';
    const key = `${category}\0${u.host}${u.path}`;
    if (this.urlSeen.has(key)) return null;
    this.urlSeen.add(key);
    this.urlRules.push({ host: u.host, path: u.path, category });
    // The host's parents go into the domain table as ancestors, and the host flagged as having
    // url rules: a lookup's domain walk reaches a url host only through known names, and reads
    // the url table only for a host so flagged.
    let a = this.s1;
    let b = this.s2;
    const n = u.host.length;
    for (let i = n - 1; i >= 0; i--) {
      const c = u.host.charCodeAt(i);
      if (c === 46) this.ancestor(fin1(a, n - 1 - i), fin2(b, n - 1 - i));
      a = step1(a, c);
      b = step2(b, c);
    }
    this.push(URL_HOST, fin1(a, n), fin2(b, n));
    if (u.host.indexOf('.') === -1 && !isIpLiteral(u.host)) this.topLevel = true;
    this.urlCount[category]!++;
    return null;
  }

  addExpression(category: number, raw: string): EntryProblem {
    const src = raw.trim();
    const problem = expressionProblem(src);
    if (!problem) this.expr[category]!.push(src);
    return problem;
  }

  build(version: string): CompactIndex {
    const domainCount = new Array<number>(this.names.length).fill(0);
    const sorted = radixSortByH1(this.h1, this.h2, this.cat, this.n);
    // Free the insertion buffers before the tables are laid out (peak memory matters at 6 M).
    this.h1 = this.h2 = new Int32Array(0);
    this.cat = new Uint16Array(0);
    const { h1, h2, tag } = sorted;
    const n = this.n;
    this.n = 0;

    // Merge equal fingerprints (same host in several categories, repeated lines, ancestors).
    const u1 = new Int32Array(n);
    const u2 = new Int32Array(n);
    const uFlags = new Uint8Array(n);
    const uSet = new Uint32Array(n);
    const setIds = new Map<string, number>();
    const sets: number[][] = [[]];
    const single = new Int32Array(this.names.length).fill(-1);
    const intern = (cats: number[]): number => {
      if (cats.length === 0) return 0;
      if (cats.length === 1) {
        const c = cats[0]!;
        if (single[c] === -1) {
          single[c] = sets.length;
          sets.push([c]);
        }
        return single[c]!;
      }
      const key = cats.join(',');
      let id = setIds.get(key);
      if (id === undefined) {
        id = sets.length;
        sets.push(cats);
        setIds.set(key, id);
      }
      return id;
    };
    let u = 0;
    let entries = 0;
    const emit = (a: number, b: number, cats: number[], marks: number) => {
      u1[u] = a;
      u2[u] = b;
      uFlags[u] = (cats.length ? IS_ENTRY : 0) | marks;
      uSet[u] = intern(cats);
      if (cats.length) entries++;
      u++;
    };
    let i = 0;
    while (i < n) {
      const a = h1[i]!;
      let j = i + 1;
      while (j < n && h1[j] === a) j++;
      if (j === i + 1) {
        // The common case, kept free of allocations: one name, one category (or an ancestor).
        const c = tag[i]!;
        u1[u] = a;
        u2[u] = h2[i]!;
        if (c === ANCESTOR) uFlags[u] = HAS_CHILDREN;
        else if (c === URL_HOST) uFlags[u] = HAS_URLS;
        else {
          domainCount[c]!++;
          uFlags[u] = IS_ENTRY;
          if (single[c] === -1) {
            single[c] = sets.length;
            sets.push([c]);
          }
          uSet[u] = single[c]!;
          entries++;
        }
        u++;
      } else {
        // Same lane 1: group by lane 2, keeping first-seen order of both names and categories.
        const done = new Uint8Array(j - i);
        for (let x = i; x < j; x++) {
          if (done[x - i]) continue;
          const cats: number[] = [];
          let marks = 0;
          for (let y = x; y < j; y++) {
            if (h2[y] !== h2[x]) continue;
            done[y - i] = 1;
            const c = tag[y]!;
            if (c === ANCESTOR) marks |= HAS_CHILDREN;
            else if (c === URL_HOST) marks |= HAS_URLS;
            else if (!cats.includes(c)) {
              cats.push(c);
              domainCount[c]!++;
            }
          }
          emit(a, h2[x]!, cats, marks);
        }
      }
      i = j;
    }
    // Up to 1024 category sets (UT1 has a few hundred), the set id rides in lane 2 next to the
    // flags: no second array to read on a hit, 2 bytes a slot less. Lane 2 keeps 19 bits, so
    // fingerprints keep 51; if two names would then look alike, keep them apart with 61.
    const filterBlocks = filterBlocksFor(u);
    const domFilter = new Int32Array(filterBlocks * 16);
    for (let k = 0; k < u; k++) filterAdd(domFilter, filterBlocks, u1[k]!);
    let embed = this.embedSets && sets.length <= 1 << SET_BITS;
    for (let k = 1, run = 0; embed && k < u; k++) {
      if (u1[k] !== u1[k - 1]) run = k;
      for (let x = run; x < k; x++) if ((u2[k]! & EMBED_MASK) === (u2[x]! & EMBED_MASK)) embed = false;
    }
    let dom;
    let domSet: Uint16Array | Uint32Array;
    if (embed) {
      const low = new Uint16Array(u);
      for (let k = 0; k < u; k++) low[k] = uFlags[k]! | (uSet[k]! << FLAG_BITS);
      dom = placeSorted(u1, u2, u, low, EMBED_MASK);
      domSet = new Uint16Array(0);
    } else {
      dom = placeSorted(u1, u2, u, uFlags);
      domSet = sets.length > 0xffff ? new Uint32Array(dom.order.length) : new Uint16Array(dom.order.length);
      for (let s = 0; s < dom.order.length; s++) if (dom.order[s]! >= 0) domSet[s] = uSet[dom.order[s]!]!;
    }
    const setStart = new Uint32Array(sets.length + 1);
    const setMembers = new Uint16Array(sets.reduce((k, s) => k + s.length, 0));
    let m = 0;
    sets.forEach((s, id) => {
      setStart[id] = m;
      for (const c of s) setMembers[m++] = c;
    });
    setStart[sets.length] = m;

    // Url rules grouped by host; longer paths first so the most specific entry is reported.
    const byHost = new Map<string, { path: string; category: number }[]>();
    for (const r of this.urlRules) {
      let g = byHost.get(r.host);
      if (!g) byHost.set(r.host, (g = []));
      g.push(r);
    }
    const hosts = [...byHost.keys()].map((host) => ({ host }));
    // The url table holds the hosts and, flagged, their parents, so hasUrlRules() can stop its
    // walk at the first unknown parent (most requests: right after the TLD).
    const keys = new Map<string, { flags: number; group: number }>();
    hosts.forEach(({ host }, g) => {
      const k = keys.get(host);
      if (k) {
        k.flags |= IS_ENTRY;
        k.group = g;
      } else keys.set(host, { flags: IS_ENTRY, group: g });
      for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
        const parent = host.slice(dot + 1);
        const p = keys.get(parent);
        if (p) p.flags |= HAS_CHILDREN;
        else keys.set(parent, { flags: HAS_CHILDREN, group: 0 });
      }
    });
    const table = [...keys].map(([name, k]) => {
      fingerprint(name, this.s1, this.s2, this.pair);
      return { a: this.pair[0]!, b: this.pair[1]!, ...k };
    });
    table.sort((x, y) => x.a - y.a || x.b - y.b);
    const url = placeSorted(Int32Array.from(table, (k) => k.a), Int32Array.from(table, (k) => k.b), table.length, Uint8Array.from(table, (k) => k.flags));
    const urlGroup = new Uint32Array(url.order.length);
    for (let s = 0; s < url.order.length; s++) if (url.order[s]! >= 0) urlGroup[s] = table[url.order[s]!]!.group;
    const groupStart = new Uint32Array(hosts.length + 1);
    const ruleOff = new Uint32Array(this.urlRules.length);
    const ruleLen = new Uint32Array(this.urlRules.length);
    const ruleCat = new Uint16Array(this.urlRules.length);
    const pieces: string[] = [];
    let r = 0;
    let off = 0;
    hosts.forEach((h, g) => {
      groupStart[g] = r;
      const rules = byHost.get(h.host)!.sort((x, y) => y.path.length - x.path.length);
      for (const rule of rules) {
        ruleOff[r] = off;
        ruleLen[r] = rule.path.length;
        ruleCat[r++] = rule.category;
        pieces.push(rule.path);
        off += rule.path.length;
      }
    });
    groupStart[hosts.length] = r;
    const joined = pieces.join('');
    // One byte a character when every path fits (UT1's do), else two: charCodeAt compares either.
    let wide = false;
    for (let i = 0; i < joined.length && !wide; i++) wide = joined.charCodeAt(i) > 0xff;
    const paths = wide ? new Uint16Array(joined.length) : new Uint8Array(joined.length);
    for (let i = 0; i < joined.length; i++) paths[i] = joined.charCodeAt(i);

    const counts: CategoryCounts[] = this.names.map((name, c) => ({ name, domains: domainCount[c]!, urls: this.urlCount[c]!, expressions: this.expr[c]!.length }));
    return new CompactIndex({
      version, categories: this.names.slice(), counts, seeds: [this.s1, this.s2], domains: entries, topLevel: this.topLevel,
      domCapacity: dom.capacity, domFp: dom.fp, domSet, setsEmbedded: embed, setStart, setMembers, filterBlocks, domFilter,
      urlCapacity: url.capacity, urlFp: url.fp, urlGroup, groupStart, ruleOff, ruleLen, ruleCat, paths, ...urlRuleTables(groupStart, ruleOff, ruleLen, paths),
      expressions: this.expr.map((e) => e.slice()),
    });
  }
}
