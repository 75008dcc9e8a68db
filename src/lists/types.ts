/** How a list entry matched a request. */
export type MatchKind = 'domain' | 'url' | 'expression';

export interface ListHit {
  /** Category number inside the index that produced the hit. */
  readonly category: number;
  /** The list entry as normalised (a domain, `host/path` url prefix, or the regex source). */
  readonly entry: string;
  readonly kind: MatchKind;
}

export interface CategoryCounts {
  readonly name: string;
  readonly domains: number;
  readonly urls: number;
  readonly expressions: number;
}

/**
 * A read-only set of categorised entries with squidGuard semantics. Implementations are
 * immutable once built, so a policy snapshot can share one between requests and swap it whole.
 *
 * `want` is a per-category filter (want[category] !== 0) compiled once per profile, so a lookup
 * costs one probe per label and no allocation unless it hits.
 */
export interface CategoryIndex {
  readonly categories: readonly string[];
  /** Content version (hash of the sources), shown in decisions as `listVersion`. */
  readonly version: string;
  counts(): CategoryCounts[];
  /** Domain entries: `host` itself then each parent domain, most specific first; IP literals match exactly. */
  matchHost(host: string, want: Uint8Array): ListHit | null;
  /**
   * matchHost(host, want), then, when `path` is not empty, matchUrl(stripWww(host), path, want):
   * the domain and url parts of a decision in one call (the compact engine walks the host once).
   */
  matchHostAndUrl(host: string, path: string, want: Uint8Array): ListHit | null;
  /** True when some url entry is keyed on this (www-stripped) host, i.e. the path matters. */
  hasUrlRules(host: string): boolean;
  /** Url entries: exact (www-stripped) host and a path prefix. */
  matchUrl(host: string, path: string, want: Uint8Array): ListHit | null;
  /** True when some wanted category has expressions. */
  hasExpressions(want: Uint8Array): boolean;
  /** Expression entries: regexes over `host/path?query`. */
  matchExpression(url: string, want: Uint8Array): ListHit | null;
}

/** A line of a list file that was not accepted. Reported, never fatal. */
export interface BadLine {
  readonly category: string;
  readonly file: string;
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}
