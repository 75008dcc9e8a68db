import type { VigieConfig } from '../config/types.js';
import type { CategoryIndex } from '../lists/types.js';

/** A category that profiles block while no loaded list gives it a single domain. */
export interface EmptyCategory {
  readonly category: string;
  /** The profiles that block it (in any of their periods). */
  readonly profiles: readonly string[];
}

/** An index, or extra lists whose categories count as the ones they extend. */
type Counted = CategoryIndex | { readonly index: CategoryIndex; readonly extends: readonly string[] };

/**
 * Which blocked categories have no `domains` entry in any list: a profile that relies on one
 * blocks almost nothing of it (UT1's adult category holds a few urls but its millions of domains
 * live in one file that a partial copy can lack). Profiles in blocklist mode only: an allowlist's
 * categories open sites, they never stand between a pupil and one.
 */
export function emptyCategories(config: VigieConfig, indexes: readonly Counted[]): [EmptyCategory[], string[]] {
  const domains = new Map<string, number>();
  for (const x of indexes) {
    const index = 'index' in x ? x.index : x;
    const names = 'index' in x ? x.extends : index.categories;
    index.counts().forEach((c, i) => domains.set(names[i]!, (domains.get(names[i]!) ?? 0) + c.domains));
  }
  const blockedBy = new Map<string, Set<string>>();
  for (const [id, p] of Object.entries(config.profiles)) {
    for (const rules of p.schedule ? [p, p.schedule.otherwise] : [p]) {
      if (rules.mode !== 'blocklist') continue;
      for (const c of rules.categories) {
        let set = blockedBy.get(c);
        if (!set) blockedBy.set(c, (set = new Set()));
        set.add(id);
      }
    }
  }
  const blocked = [...blockedBy.keys()].sort();
  const empty = blocked.filter((c) => !domains.get(c)).map((category) => ({ category, profiles: [...blockedBy.get(category)!].sort() }));
  return [empty, blocked];
}
