import { LRUCache } from 'lru-cache';
import { completeSafeSearch } from '../config/defaults.js';
import type { RuleSet, SafeSearchSettings, VigieConfig } from '../config/types.js';
import { MapIndex, MapIndexBuilder } from '../lists/map-index.js';
import type { CategoryIndex } from '../lists/types.js';
import { ClientMatcher } from './clients.js';
import { emptyCategories, type EmptyCategory } from './coverage.js';
import { bundledSafeSearch, safeSearchTarget, type Retarget, type SafeSearchTable } from './safesearch.js';
import { ScheduleClock } from './schedule.js';
import type { Decision } from './types.js';

/** The categories of one index that a rule group wants; compiled once per snapshot. */
export interface Filter {
  readonly index: CategoryIndex;
  readonly want: Uint8Array;
  /** Some wanted category has expressions: every path must be checked. */
  readonly hasExpressions: boolean;
  /** Per category of the index: the category a decision names (an extra list names the one it extends). */
  readonly names: readonly string[];
  /** Per category of the index: the list a decision names as its source (`ut1`, `extra/NAME`, an academy list). */
  readonly lists: readonly string[];
}

/** Extra domain lists (lists/extra/): each category extends a UT1 category (e.g. `adult`). */
export interface ExtraLists {
  readonly index: CategoryIndex;
  /** Per category of the index: the UT1 category it extends. */
  readonly extends: readonly string[];
}

export type Period = Decision['period'];
export type { EmptyCategory };

/** One of a profile's rule sets (squidGuard's `pass` line), compiled against the snapshot's indexes. */
export interface CompiledRules {
  readonly profile: string;
  readonly period: Period;
  readonly mode: RuleSet['mode'];
  readonly profileAllow: Filter[];
  readonly listAllow: Filter[];
  readonly profileDeny: Filter[];
  readonly listDeny: Filter[];
  readonly categories: Filter[];
  /** Every filter above, for the checks that look at all of them. */
  readonly all: Filter[];
  readonly pathAlways: boolean;
  /** Memoised decisions keyed by host (or host+path when the path matters); dies with the snapshot. */
  readonly cache: LRUCache<string, Decision> | null;
}

export interface CompiledProfile {
  readonly id: string;
  readonly window: string | null;
  readonly within: CompiledRules;
  readonly otherwise: CompiledRules | null;
  /** Engines retargeted to their enforcing address for this profile (src/policy/safesearch.ts). */
  readonly safeSearch: Readonly<SafeSearchSettings>;
}

/** Something odd but not fatal found while compiling: shown in the log and the API. */
export interface SnapshotWarning {
  readonly profile?: string;
  readonly message: string;
}

/**
 * Everything a decision depends on, immutable: a new policy is a new snapshot, swapped in
 * whole, so in-flight requests finish on the one they started with.
 */
export class PolicySnapshot {
  constructor(
    readonly policyVersion: number,
    readonly listVersion: string,
    /** False while no list set is loaded: the policy then fails closed. */
    readonly listsLoaded: boolean,
    readonly clients: ClientMatcher,
    readonly profiles: ReadonlyMap<string, CompiledProfile>,
    readonly clock: ScheduleClock,
    readonly connectPorts: ReadonlySet<number>,
    readonly indexes: { readonly ut1: CategoryIndex; readonly local: CategoryIndex; readonly extra: ExtraLists | null },
    readonly warnings: readonly SnapshotWarning[],
    /** Search and video hosts → enforcing addresses; a profile's `safeSearch` says which apply. */
    readonly safeSearch: SafeSearchTable,
    /** Categories some blocklist profile blocks and no list gives a single domain to (loud: log, metric, health). */
    readonly emptyCategories: readonly EmptyCategory[] = [],
    /** Every category some blocklist profile blocks (the metric reports each, 0 or 1). */
    readonly blockedCategories: readonly string[] = [],
  ) {}
}

export interface SnapshotInput {
  config: VigieConfig;
  /** The UT1 index; null when none is loaded yet (fail closed). */
  ut1: CategoryIndex | null;
  /** Extra lists extending UT1 categories; null = none. */
  extra?: ExtraLists | null;
  /** Academy lists, already fed into a builder (profile entries are added here). */
  academy: MapIndexBuilder;
  policyVersion: number;
  /** The SafeSearch mapping; default: the bundled lists/safesearch.json. */
  safeSearch?: SafeSearchTable;
}

const EMPTY_UT1 = new MapIndexBuilder().build('none');

/**
 * A filter over `index` wanting the categories whose `names[i]` is in `wanted`; `lists[i]` is what a
 * decision names as the source of a match in category i.
 */
function filterFor(index: CategoryIndex, wanted: Iterable<string>, names: readonly string[] = index.categories, lists: readonly string[] = index.categories): Filter | null {
  const want = new Uint8Array(index.categories.length);
  let any = false;
  const set = new Set(wanted);
  names.forEach((c, i) => {
    if (set.has(c)) {
      want[i] = 1;
      any = true;
    }
  });
  return any ? { index, want, hasExpressions: index.hasExpressions(want), names, lists } : null;
}

const nonNull = <T>(xs: (T | null)[]): T[] => xs.filter((x): x is T => x !== null);

/** Compiles config + indexes into a snapshot. Bad profile entries become warnings, never a crash. */
export function buildSnapshot(input: SnapshotInput): PolicySnapshot {
  const { config } = input;
  const ut1 = input.ut1 ?? EMPTY_UT1;
  const extra = input.ut1 ? (input.extra ?? null) : null;
  const warnings: SnapshotWarning[] = [];
  const builder = input.academy;

  // The profiles' own entries become small categories of the local index.
  const own = (profile: string, period: Period, kind: 'allow' | 'deny', entries: string[]): string => {
    const name = `profile:${profile}:${period}:${kind}`;
    const cat = builder.category(name);
    for (const e of entries) {
      const problem = e.includes('/') ? builder.addUrl(cat, e) : builder.addDomain(cat, e);
      if (problem) warnings.push({ profile, message: `${kind} entry "${e}": ${problem}` });
    }
    return name;
  };
  const plans = Object.entries(config.profiles).map(([id, p]) => {
    const periods: [Period, RuleSet][] = p.schedule ? [['within', p], ['otherwise', p.schedule.otherwise]] : [['always', p]];
    return { id, window: p.schedule?.within ?? null, periods: periods.map(([period, rules]) => ({ period, rules, allowName: own(id, period, 'allow', rules.allow), denyName: own(id, period, 'deny', rules.deny) })) };
  });
  const local: MapIndex = builder.build(`local-${input.policyVersion}`);
  const localNames = new Set(local.categories);
  const listVersion = input.ut1 ? ut1.version : 'none';
  // What a decision names as the list that matched: the UT1 set, each extra list, each academy
  // list by its name, a profile's own entries as `profile:ID`.
  const ut1Lists = ut1.categories.map(() => 'ut1');
  const extraLists = extra ? extra.index.categories.map((c) => `extra/${c}`) : [];
  const localLists = local.categories.map((c) => (c.startsWith('profile:') ? c.split(':', 2).join(':') : c));
  const localFilter = (wanted: Iterable<string>) => filterFor(local, wanted, local.categories, localLists);

  const compile = (id: string, period: Period, rules: RuleSet, allowName: string, denyName: string): CompiledRules => {
    for (const l of [...rules.allowLists, ...rules.denyLists]) {
      if (!localNames.has(l)) warnings.push({ profile: id, message: `academy list "${l}" does not exist (yet): it matches nothing` });
    }
    if (input.ut1) {
      const known = new Set([...ut1.categories, ...(extra?.extends ?? [])]);
      for (const c of rules.categories) {
        if (!known.has(c) && !localNames.has(c)) warnings.push({ profile: id, message: `category "${c}" is not in the loaded lists: it ${rules.mode === 'blocklist' ? 'blocks' : 'allows'} nothing` });
      }
    }
    const categories = nonNull([
      filterFor(ut1, rules.categories, ut1.categories, ut1Lists),
      // An extra list counts as the category it extends: a profile blocking `adult` blocks it too.
      extra ? filterFor(extra.index, rules.categories, extra.extends, extraLists) : null,
      localFilter(rules.categories.filter((c) => localNames.has(c))),
    ]);
    const groups = {
      profileAllow: nonNull([localFilter([allowName])]),
      listAllow: nonNull([localFilter(rules.allowLists)]),
      profileDeny: nonNull([localFilter([denyName])]),
      listDeny: nonNull([localFilter(rules.denyLists)]),
      categories,
    };
    const all = Object.values(groups).flat();
    const pathAlways = all.some((f) => f.hasExpressions);
    // Bounded by maxSize rather than max: lru-cache preallocates `max` slots (~0.5 MiB for 20,000)
    // per rule set and per thread, the main thread's unused copies too; this way it grows with the
    // hosts actually seen.
    const size = config.limits.decisionCacheSize;
    const cache = size > 0 ? new LRUCache<string, Decision>({ maxSize: size, sizeCalculation: () => 1 }) : null;
    return { profile: id, period, mode: rules.mode, ...groups, all, pathAlways, cache };
  };

  const coverage: [EmptyCategory[], string[]] = input.ut1 ? emptyCategories(config, [ut1, local, ...(extra ? [extra] : [])]) : [[], []];
  const profiles = new Map<string, CompiledProfile>();
  for (const plan of plans) {
    const [first, second] = plan.periods.map((x) => compile(plan.id, x.period, x.rules, x.allowName, x.denyName));
    const safeSearch = Object.freeze(completeSafeSearch(plan.id, config.profiles[plan.id]!.safeSearch));
    profiles.set(plan.id, { id: plan.id, window: plan.window, within: first!, otherwise: second ?? null, safeSearch });
  }

  return new PolicySnapshot(
    input.policyVersion,
    listVersion,
    input.ut1 !== null,
    new ClientMatcher(config.clients),
    profiles,
    new ScheduleClock(config.times, config.timezone),
    new Set(config.connectPorts),
    { ut1, local, extra },
    warnings,
    input.safeSearch ?? bundledSafeSearch(),
    ...coverage,
  );
}

/**
 * The retarget for an allowed request of a profile (null: no profile, or the host stays). Applies
 * after the decision, which is taken on the name the client asked for.
 */
export function retargetFor(snapshot: PolicySnapshot, profile: string | null, host: string): Retarget | null {
  if (profile === null) return null;
  const p = snapshot.profiles.get(profile);
  return p === undefined ? null : safeSearchTarget(snapshot.safeSearch, host, p.safeSearch);
}
