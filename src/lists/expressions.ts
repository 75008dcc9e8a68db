import { createRequire } from 'node:module';

/**
 * List expressions (UT1 `expressions` files, academy lists, fleet bundles) run on RE2 (the `re2`
 * native module): a linear-time engine, so no expression, however written, can stall the event
 * loop on a crafted URL the way a backtracking one does (`(a+)+$` on 30 `a`s and a `!` took
 * 15 s in V8's). RE2 has no backreferences nor lookaround: such an expression is refused when
 * the list loads (a bad line naming its category, file and line) or when the API receives it.
 * squidGuard matches expressions case-insensitively; so does this.
 */

interface Re2Regex {
  test(s: string): boolean;
}
type Re2Constructor = new (pattern: string, flags?: string) => Re2Regex;

// A CommonJS native addon: required, so its load error (if any) is one clear message at start.
const RE2 = createRequire(import.meta.url)('re2') as Re2Constructor;

/** Why `src` cannot be a list expression, or null. */
export function expressionProblem(src: string): string | null {
  try {
    new RE2(src, 'i');
    return null;
  } catch (e) {
    return `invalid regular expression (RE2 syntax, linear time: no backreferences or lookaround): ${(e as Error).message}`;
  }
}

/**
 * One category's expressions: tested all at once as one alternation (one linear pass over the
 * URL), and, on a match only, one by one to name the entry that matched.
 */
export class ExpressionSet {
  private readonly all: Re2Regex;
  private each: Re2Regex[] | null = null;

  constructor(readonly sources: readonly string[]) {
    this.all = new RE2(sources.map((s) => `(?:${s})`).join('|'), 'i');
  }

  test(url: string): boolean {
    return this.all.test(url);
  }

  /** The first expression matching `url` (call after test() said one does). */
  which(url: string): string {
    this.each ??= this.sources.map((s) => new RE2(s, 'i'));
    for (let i = 0; i < this.each.length; i++) if (this.each[i]!.test(url)) return this.sources[i]!;
    return this.sources[0]!;
  }
}

/**
 * The expressions of an index, category by category. A request is tested against every wanted
 * category at once: one RE2 alternation per `want` filter (built at its first use; filters live
 * as long as their policy snapshot), so a request costs one native call, not one per category
 * (each call converts the URL to UTF-8); the categories are told apart only on a match.
 */
export class CategoryExpressions {
  private readonly sets: readonly (ExpressionSet | null)[];
  private readonly byWant = new WeakMap<Uint8Array, ExpressionSet | null>();

  constructor(readonly perCategory: readonly (readonly string[])[]) {
    this.sets = perCategory.map((list) => (list.length ? new ExpressionSet(list) : null));
  }

  /** True when some wanted category has expressions. */
  has(want: Uint8Array): boolean {
    for (let c = 0; c < this.sets.length; c++) if (want[c] && this.sets[c]) return true;
    return false;
  }

  /** The first wanted category (in index order) with an expression matching `url`, and that expression. */
  match(url: string, want: Uint8Array): { category: number; entry: string } | null {
    let all = this.byWant.get(want);
    if (all === undefined) {
      const sources = this.perCategory.flatMap((list, c) => (want[c] ? list : []));
      all = sources.length ? new ExpressionSet(sources) : null;
      this.byWant.set(want, all);
    }
    if (all === null || !all.test(url)) return null;
    for (let c = 0; c < this.sets.length; c++) {
      const set = this.sets[c];
      if (want[c] && set && set.test(url)) return { category: c, entry: set.which(url) };
    }
    return null;
  }
}
