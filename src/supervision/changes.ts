import type { ProfileConfig, RuleSet } from '../config/types.js';
import { listEntries, type EntryInput, type ListEntries } from '../policy/entries.js';

/** Entries named one by one in an audit entry; beyond that, only their count. */
export const AUDIT_ENTRIES_MAX = 1000;

const EMPTY: ListEntries = { domains: [], urls: [], expressions: [] };

/** What a list change added and removed, in API form, bounded: `{added, addedCount, removed, removedCount}`. */
export function listChange(before: ListEntries | undefined, after: ListEntries | undefined): { added: EntryInput[]; addedCount: number; removed: EntryInput[]; removedCount: number } {
  const diff = (a: ListEntries, b: ListEntries): ListEntries => {
    const out: ListEntries = { domains: [], urls: [], expressions: [] };
    for (const k of ['domains', 'urls', 'expressions'] as const) {
      const had = new Set(b[k]);
      out[k] = a[k].filter((e) => !had.has(e));
    }
    return out;
  };
  const added = listEntries(diff(after ?? EMPTY, before ?? EMPTY));
  const removed = listEntries(diff(before ?? EMPTY, after ?? EMPTY));
  return { added: added.slice(0, AUDIT_ENTRIES_MAX), addedCount: added.length, removed: removed.slice(0, AUDIT_ENTRIES_MAX), removedCount: removed.length };
}

/** An array field for the audit: whole up to AUDIT_ENTRIES_MAX items, else its head and its length. */
function bounded(v: unknown): unknown {
  if (!Array.isArray(v) || v.length <= AUDIT_ENTRIES_MAX) return v ?? null;
  return { first: v.slice(0, AUDIT_ENTRIES_MAX), count: v.length };
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

export type FieldChange = { before: unknown; after: unknown; added?: unknown[]; removed?: unknown[] };

/**
 * The fields of a profile that a change touched, each with its value before and after (null:
 * absent); a list field also says what it gained and lost, which is what a reader looks for.
 */
export function profileChange(before: ProfileConfig | undefined, after: ProfileConfig | undefined): Record<string, FieldChange> {
  const out: Record<string, FieldChange> = {};
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  for (const k of keys) {
    const b = (before as Record<string, unknown> | undefined)?.[k];
    const a = (after as Record<string, unknown> | undefined)?.[k];
    if (same(b, a)) continue;
    out[k] = { before: bounded(b), after: bounded(a) };
    if (Array.isArray(b) || Array.isArray(a)) {
      const had = new Set((b as unknown[] | undefined) ?? []);
      const has = new Set((a as unknown[] | undefined) ?? []);
      out[k]!.added = [...has].filter((x) => !had.has(x)).slice(0, AUDIT_ENTRIES_MAX);
      out[k]!.removed = [...had].filter((x) => !has.has(x)).slice(0, AUDIT_ENTRIES_MAX);
    }
  }
  return out;
}

/** What a whole-policy change (rollback, bundle) did: which profiles changed, and each list's additions and removals. */
export function policyChange(
  before: { profiles: Record<string, ProfileConfig>; lists: Record<string, ListEntries> },
  after: { profiles: Record<string, ProfileConfig>; lists: Record<string, ListEntries> },
): { profiles: Record<string, Record<string, FieldChange>>; lists: Record<string, { addedCount: number; removedCount: number }> } {
  const profiles: Record<string, Record<string, FieldChange>> = {};
  for (const id of new Set([...Object.keys(before.profiles), ...Object.keys(after.profiles)])) {
    const c = profileChange(Object.hasOwn(before.profiles, id) ? before.profiles[id] : undefined, Object.hasOwn(after.profiles, id) ? after.profiles[id] : undefined);
    if (Object.keys(c).length) profiles[id] = c;
  }
  const lists: Record<string, { addedCount: number; removedCount: number }> = {};
  for (const name of new Set([...Object.keys(before.lists), ...Object.keys(after.lists)])) {
    const { addedCount, removedCount } = listChange(Object.hasOwn(before.lists, name) ? before.lists[name] : undefined, Object.hasOwn(after.lists, name) ? after.lists[name] : undefined);
    if (addedCount || removedCount) lists[name] = { addedCount, removedCount };
  }
  return { profiles, lists };
}

const RULE_KEYS = ['mode', 'categories', 'allow', 'deny', 'allowLists', 'denyLists'] as const;
const rulesOf = (r: RuleSet) => RULE_KEYS.map((k) => r[k]);

/**
 * Said when a change to a profile with a time window takes effect only on one side of it: its
 * main rules apply within the window, `schedule.otherwise` outside it.
 */
export function periodWarnings(before: ProfileConfig | undefined, after: ProfileConfig): string[] {
  const window = after.schedule?.within;
  if (!before || !window || !before.schedule || before.schedule.within !== window) return [];
  const within = !same(rulesOf(before), rulesOf(after));
  const otherwise = !same(rulesOf(before.schedule.otherwise), rulesOf(after.schedule!.otherwise));
  if (within && !otherwise) return [`this change applies only within the time window "${window}"; outside it the profile's "schedule.otherwise" rules apply, unchanged`];
  if (otherwise && !within) return [`this change applies only outside the time window "${window}" (the "schedule.otherwise" rules); within it the profile's main rules apply, unchanged`];
  return [];
}
