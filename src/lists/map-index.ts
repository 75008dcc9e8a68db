import { CategoryExpressions } from './expressions.js';
import { expressionProblem, isIpLiteral, isValidHostEntry, normalizeHost, normalizeUrlEntry, stripWww } from './normalize.js';
import type { CategoryCounts, CategoryIndex, ListHit } from './types.js';

interface UrlRule {
  readonly path: string;
  readonly category: number;
  readonly entry: string;
}

/**
 * The straightforward index: one Map probe per label. Domains map to an interned set of
 * categories (many UT1 domains sit in several categories), so the map holds one small number
 * per domain. Used for the academy's and the profiles' own entries, which change often and stay
 * small, and as the reference implementation the compact engine is checked against.
 */
export class MapIndex implements CategoryIndex {
  constructor(
    readonly categories: readonly string[],
    readonly version: string,
    private readonly domains: Map<string, number>,
    private readonly sets: readonly (readonly number[])[],
    private readonly urls: Map<string, UrlRule[]>,
    private readonly expressions: CategoryExpressions,
    private readonly countsByCategory: readonly CategoryCounts[],
  ) {}

  counts(): CategoryCounts[] {
    return this.countsByCategory.slice();
  }

  matchHost(host: string, want: Uint8Array): ListHit | null {
    if (this.domains.size === 0) return null;
    if (isIpLiteral(host)) return this.probe(host, want);
    let suffix = host;
    for (;;) {
      const hit = this.probe(suffix, want);
      if (hit) return hit;
      const dot = suffix.indexOf('.');
      if (dot === -1) return null;
      suffix = suffix.slice(dot + 1);
    }
  }

  private probe(key: string, want: Uint8Array): ListHit | null {
    const set = this.domains.get(key);
    if (set === undefined) return null;
    for (const category of this.sets[set]!) {
      if (want[category]) return { category, entry: key, kind: 'domain' };
    }
    return null;
  }

  matchHostAndUrl(host: string, path: string, want: Uint8Array): ListHit | null {
    return this.matchHost(host, want) ?? (path ? this.matchUrl(stripWww(host), path, want) : null);
  }

  hasUrlRules(host: string): boolean {
    return this.urls.has(host);
  }

  matchUrl(host: string, path: string, want: Uint8Array): ListHit | null {
    const rules = this.urls.get(host);
    if (!rules) return null;
    // squidGuard compares the whole URL in lower case (entries are lower-cased when loaded).
    const lower = path.toLowerCase();
    for (const r of rules) {
      if (want[r.category] && lower.startsWith(r.path)) return { category: r.category, entry: r.entry, kind: 'url' };
    }
    return null;
  }

  hasExpressions(want: Uint8Array): boolean {
    return this.expressions.has(want);
  }

  matchExpression(url: string, want: Uint8Array): ListHit | null {
    const m = this.expressions.match(url, want);
    return m === null ? null : { category: m.category, entry: m.entry, kind: 'expression' };
  }
}

export type EntryProblem = string | null;

/** Accumulates entries category by category, then freezes them into a MapIndex. */
export class MapIndexBuilder {
  private readonly categories: string[] = [];
  private readonly byName = new Map<string, number>();
  private readonly domainCats = new Map<string, number[]>();
  private readonly urls = new Map<string, UrlRule[]>();
  private readonly expr: string[][] = [];
  private readonly domainCount: number[] = [];
  private readonly urlCount: number[] = [];

  category(name: string): number {
    let id = this.byName.get(name);
    if (id === undefined) {
      id = this.categories.length;
      this.categories.push(name);
      this.byName.set(name, id);
      this.expr.push([]);
      this.domainCount.push(0);
      this.urlCount.push(0);
    }
    return id;
  }

  /** Adds a `domains` line; returns why it was refused, or null. */
  addDomain(category: number, raw: string): EntryProblem {
    const host = normalizeHost(raw.trim());
    if (!host || !isValidHostEntry(host)) return 'not a hostname or IP address';
    const cats = this.domainCats.get(host);
    if (!cats) this.domainCats.set(host, [category]);
    else if (!cats.includes(category)) cats.push(category);
    else return null;
    this.domainCount[category]!++;
    return null;
  }

  addUrl(category: number, raw: string): EntryProblem {
    const u = normalizeUrlEntry(raw);
    if (!u) return 'not a url (host/path)';
    const entry = u.host + u.path;
    let rules = this.urls.get(u.host);
    if (!rules) this.urls.set(u.host, (rules = []));
    if (rules.some((r) => r.category === category && r.path === u.path)) return null;
    rules.push({ path: u.path, category, entry });
    this.urlCount[category]!++;
    return null;
  }

  addExpression(category: number, raw: string): EntryProblem {
    const src = raw.trim();
    const problem = expressionProblem(src);
    if (!problem) this.expr[category]!.push(src);
    return problem;
  }

  build(version: string): MapIndex {
    const setIds = new Map<string, number>();
    const sets: number[][] = [];
    const domains = new Map<string, number>();
    for (const [host, cats] of this.domainCats) {
      const key = cats.join(',');
      let id = setIds.get(key);
      if (id === undefined) {
        id = sets.length;
        sets.push(cats);
        setIds.set(key, id);
      }
      domains.set(host, id);
    }
    // Longer paths first, so the most specific url entry is the one reported.
    for (const rules of this.urls.values()) rules.sort((a, b) => b.path.length - a.path.length);
    const expressions = new CategoryExpressions(this.expr.map((e) => e.slice()));
    const counts = this.categories.map((name, i) => ({
      name,
      domains: this.domainCount[i]!,
      urls: this.urlCount[i]!,
      expressions: this.expr[i]!.length,
    }));
    return new MapIndex(this.categories.slice(), version, domains, sets, this.urls, expressions, counts);
  }
}
