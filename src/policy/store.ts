import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ValidateFunction } from 'ajv';
import { completeSafeSearch } from '../config/defaults.js';
import { configSchema } from '../config/schema.js';
import { windowsOf, type ProfileConfig, type ProfileInput, type RuleSet, type VigieConfig } from '../config/types.js';
import { MapIndexBuilder } from '../lists/map-index.js';
import { loadUt1Dir, type ListSink } from '../lists/ut1.js';
import type { Logger } from '../log.js';
import { BUNDLED_ACADEMY } from '../paths.js';
import { checkDomain, checkExpression, checkUrl, PolicyValidationError, type Problem } from './entries.js';
import { own } from '../own.js';

// Entry checks live in entries.ts; re-exported here, where the routes and the CLI look for them.
export * from './entries.js';


/** One academy list, entries normalised; `changedIn` is the policy version that last changed it. */
export interface AcademyList {
  domains: string[];
  urls: string[];
  expressions: string[];
  changedIn: number;
}

/** Who changed the policy, when, why, and how (kept with every version for the history). */
export interface PolicyMeta {
  version: number;
  /** ISO 8601. */
  time: string;
  who: string;
  why: string;
  action: string;
  /** Where the change came from: a client address, `cli`, `fleet`, `config`. */
  source: string;
  rollbackOf?: number;
  /** Version of the last fleet bundle applied (carried forward), null if none ever was. */
  bundleVersion: number | null;
}

export interface PolicyState {
  meta: PolicyMeta;
  profiles: Record<string, ProfileConfig>;
  lists: Record<string, AcademyList>;
}

/** What a change may touch: a deep copy of the current state. */
export type PolicyDraft = Pick<PolicyState, 'profiles' | 'lists'>;

export const PERMANENT_LISTS = ['academy-allow', 'academy-deny'] as const;
/** A list or profile name; `__proto__` is refused (as a key it would change an object's prototype). */
export const LIST_NAME = /^(?!__proto__$)[A-Za-z0-9_.-]{1,64}$/;

const uniq = (xs: string[]): string[] => [...new Set(xs)];

/** The profile schema of the config file, reused so a profile means the same thing everywhere. */
export const profileSchema = configSchema.properties.profiles.additionalProperties;
const stringArray = { type: 'array', items: { type: 'string' } } as const;
const stateSchema = {
  type: 'object',
  required: ['profiles', 'lists'],
  properties: {
    profiles: { type: 'object', propertyNames: configSchema.properties.profiles.propertyNames, additionalProperties: profileSchema },
    lists: {
      type: 'object',
      propertyNames: { type: 'string', pattern: LIST_NAME.source },
      additionalProperties: {
        type: 'object',
        required: ['domains', 'urls', 'expressions'],
        properties: { domains: stringArray, urls: stringArray, expressions: stringArray, changedIn: { type: 'integer' } },
      },
    },
  },
} as const;
let validateState: ValidateFunction | null = null;
/**
 * Compiled at the first check, not at import: a proxy worker that only applies the policy never
 * validates one, and ajv with its compiled schema is about 1.5 MiB of heap per isolate.
 */
async function stateValidator(): Promise<ValidateFunction> {
  if (!validateState) {
    const { Ajv } = await import('../ajv.js');
    validateState = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true }).compile(stateSchema);
  }
  return validateState;
}

const fullRules = (p: Partial<RuleSet>) => ({
  mode: p.mode ?? 'blocklist',
  categories: p.categories ?? [],
  allow: p.allow ?? [],
  deny: p.deny ?? [],
  allowLists: p.allowLists ?? [],
  denyLists: p.denyLists ?? [],
});

/** Fills a profile's absent keys the way the config loader does. */
export function normalizeProfile(id: string, p: ProfileInput): ProfileConfig {
  const out: ProfileConfig = { ...fullRules(p), safeSearch: completeSafeSearch(id, p.safeSearch) };
  if (p.description !== undefined) out.description = p.description;
  if (p.schedule) out.schedule = { within: p.schedule.within, otherwise: fullRules(p.schedule.otherwise) };
  return out;
}

/**
 * Checks a whole draft the way the snapshot will use it: shapes (ajv), list entries one by one,
 * references between profiles, lists and time windows. Throws PolicyValidationError.
 */
export async function validateDraft(draft: PolicyDraft, config: VigieConfig, prefix = ''): Promise<PolicyDraft> {
  const validateState = await stateValidator();
  if (!validateState(draft)) {
    throw new PolicyValidationError((validateState.errors ?? []).map((e) => ({ field: `${prefix}${e.instancePath}` || '/', message: e.message ?? 'invalid' })));
  }
  const problems: Problem[] = [];
  // Null-prototype records: a name is only ever a key, never a way into Object.prototype.
  const lists: Record<string, AcademyList> = Object.create(null);
  for (const [name, l] of Object.entries(draft.lists)) {
    const parsed = { domains: [] as string[], urls: [] as string[], expressions: [] as string[] };
    for (const kind of ['domains', 'urls', 'expressions'] as const) {
      const check = kind === 'domains' ? checkDomain : kind === 'urls' ? checkUrl : checkExpression;
      l[kind].forEach((e, i) => {
        const r = check(e);
        if ('problem' in r) problems.push({ field: `${prefix}/lists/${name}/${kind}/${i}`, entry: e.slice(0, 200), message: r.problem });
        else parsed[kind].push(r.value);
      });
    }
    lists[name] = { domains: uniq(parsed.domains), urls: uniq(parsed.urls), expressions: uniq(parsed.expressions), changedIn: l.changedIn ?? 0 };
  }
  for (const name of PERMANENT_LISTS) if (!own(lists, name)) lists[name] = { domains: [], urls: [], expressions: [], changedIn: 0 };
  const profiles: Record<string, ProfileConfig> = Object.create(null);
  for (const [id, raw] of Object.entries(draft.profiles)) {
    const p = normalizeProfile(id, raw);
    profiles[id] = p;
    const sets: [string, typeof p][] = [[`${prefix}/profiles/${id}`, p]];
    if (p.schedule) {
      if (!own(config.times, p.schedule.within) || p.schedule.within === 'holidays') problems.push({ field: `${prefix}/profiles/${id}/schedule/within`, message: `unknown time window "${p.schedule.within}" (the config defines ${windowsOf(config.times).map(([t]) => `"${t}"`).join(', ') || 'none'})` });
      sets.push([`${prefix}/profiles/${id}/schedule/otherwise`, { ...p, ...p.schedule.otherwise }]);
    }
    for (const [path, rules] of sets) {
      for (const kind of ['allowLists', 'denyLists'] as const) {
        rules[kind].forEach((l, i) => {
          if (!own(lists, l)) problems.push({ field: `${path}/${kind}/${i}`, message: `unknown academy list "${l}" (create it first: PUT /api/v1/lists/academy/${l})` });
        });
      }
      for (const kind of ['allow', 'deny'] as const) {
        rules[kind].forEach((e, i) => {
          const r = e.includes('/') ? checkUrl(e) : checkDomain(e);
          if ('problem' in r) problems.push({ field: `${path}/${kind}/${i}`, entry: e, message: r.problem });
        });
      }
    }
  }
  for (const c of config.clients) {
    if (!own(profiles, c.profile)) problems.push({ field: `${prefix}/profiles/${c.profile}`, message: `profile "${c.profile}" is used by client network ${c.network} and cannot disappear` });
  }
  if (problems.length) throw new PolicyValidationError(problems);
  return { profiles, lists };
}

/** Collects a UT1-layout folder's lines as text, keeping only valid entries. */
class CollectingSink implements ListSink {
  readonly lists: Record<string, AcademyList> = {};
  private readonly names: string[] = [];
  category(name: string): number {
    this.lists[name] = { domains: [], urls: [], expressions: [], changedIn: 1 };
    return this.names.push(name) - 1;
  }
  private add(cat: number, kind: 'domains' | 'urls' | 'expressions', r: { value: string } | { problem: string }): string | null {
    if ('problem' in r) return r.problem;
    this.lists[this.names[cat]!]![kind].push(r.value);
    return null;
  }
  addDomain(cat: number, line: string) {
    return this.add(cat, 'domains', checkDomain(line));
  }
  addUrl(cat: number, line: string) {
    return this.add(cat, 'urls', checkUrl(line));
  }
  addExpression(cat: number, line: string) {
    return this.add(cat, 'expressions', checkExpression(line));
  }
}

const FILE = /^(\d{1,9})\.json$/;
const fileName = (v: number) => `${String(v).padStart(6, '0')}.json`;

/**
 * The versioned policy: the profiles and the academy lists, kept in memory, every change a new
 * numbered version written under `<dataDir>/policy/` (for history and rollback) before it is
 * applied. Version 1 is the config file's profiles with the academy lists folder; at start the
 * latest stored version wins over it. Changes are serialised; a refused change leaves no trace.
 */
export class PolicyStore {
  private state: PolicyState;
  private chain: Promise<unknown> = Promise.resolve();
  private baseOnDisk = false;
  readonly dir: string;

  constructor(
    private config: VigieConfig,
    private readonly log: Logger,
  ) {
    this.dir = join(config.dataDir, 'policy');
    this.state = {
      meta: { version: 1, time: new Date().toISOString(), who: 'config', why: 'profiles from the configuration, academy lists folder', action: 'base', source: 'config', bundleVersion: null },
      profiles: structuredClone(config.profiles),
      lists: Object.fromEntries(PERMANENT_LISTS.map((n) => [n, { domains: [], urls: [], expressions: [], changedIn: 1 }])),
    };
  }

  get version(): number {
    return this.state.meta.version;
  }

  get current(): Readonly<PolicyState> {
    return this.state;
  }

  /** Reads the academy lists folder, then the latest valid stored version (which wins). */
  async load(): Promise<void> {
    const dir = this.config.lists.academy ?? BUNDLED_ACADEMY;
    const sink = new CollectingSink();
    try {
      const report = await loadUt1Dir(dir, sink);
      for (const b of report.badLines) this.log.warn('academy list: line ignored', { list: b.category, file: b.file, line: b.line, reason: b.reason });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    this.state.lists = { ...this.state.lists, ...sink.lists };
    for (const v of await this.storedVersions(true)) {
      let stored: PolicyState;
      try {
        stored = await this.readVersion(v);
      } catch (e) {
        this.log.error(`policy: stored version ${v} unusable, trying the previous one: ${(e as Error).message}`, { dir: this.dir });
        continue;
      }
      this.baseOnDisk = true;
      this.state = stored;
      this.log.info('policy: applying the latest stored version', { version: v, who: stored.meta.who, time: stored.meta.time, dir: this.dir });
      return;
    }
  }

  /**
   * A re-read config file (SIGHUP): while no change was ever stored, its profiles are the policy;
   * once the API or the fleet manage the policy, only profiles new to the file are added. Returns
   * the file's profiles that the managed policy overrides (they differ from the version in force).
   */
  reconfigure(config: VigieConfig): string[] {
    this.config = config;
    if (this.state.meta.version === 1 && !this.baseOnDisk) {
      this.state.profiles = structuredClone(config.profiles);
      return [];
    }
    const overridden: string[] = [];
    const same = (id: string, a: ProfileConfig, b: ProfileConfig) => JSON.stringify(normalizeProfile(id, a)) === JSON.stringify(normalizeProfile(id, b));
    for (const [id, p] of Object.entries(config.profiles)) {
      const managed = own(this.state.profiles, id);
      if (!managed) this.state.profiles[id] = structuredClone(p);
      else if (!same(id, managed, p)) overridden.push(id);
    }
    return overridden;
  }

  /** The config the snapshot compiles: the file's, with this store's profiles. */
  effectiveConfig(config: VigieConfig = this.config): VigieConfig {
    return { ...config, profiles: this.state.profiles };
  }

  /** A fresh builder holding the academy lists (the snapshot adds profile entries to it). */
  academyBuilder(): MapIndexBuilder {
    const b = new MapIndexBuilder();
    for (const [name, l] of Object.entries(this.state.lists)) {
      const c = b.category(name);
      for (const d of l.domains) b.addDomain(c, d);
      for (const u of l.urls) b.addUrl(c, u);
      for (const x of l.expressions) b.addExpression(c, x);
    }
    return b;
  }

  /**
   * Applies `mutate` to a copy of the current policy, validates the result, writes it as the next
   * version, and only then makes it current. Throws PolicyValidationError (nothing changes).
   */
  change(meta: Pick<PolicyMeta, 'who' | 'why' | 'action' | 'source'> & Partial<Pick<PolicyMeta, 'rollbackOf' | 'bundleVersion'>>, mutate: (draft: PolicyDraft) => void | Promise<void>): Promise<PolicyState> {
    const run = async (): Promise<PolicyState> => {
      const draft: PolicyDraft = structuredClone({ profiles: this.state.profiles, lists: this.state.lists });
      await mutate(draft);
      const next = await validateDraft(draft, this.config);
      const version = this.state.meta.version + 1;
      for (const [name, l] of Object.entries(next.lists)) {
        const before = own(this.state.lists, name);
        const same = before && JSON.stringify([before.domains, before.urls, before.expressions]) === JSON.stringify([l.domains, l.urls, l.expressions]);
        l.changedIn = same ? before.changedIn : version;
      }
      const state: PolicyState = {
        meta: { bundleVersion: this.state.meta.bundleVersion, ...meta, version, time: new Date().toISOString() },
        ...next,
      };
      await mkdir(this.dir, { recursive: true });
      // History must hold the version a change starts from, so the first change also writes the base.
      if (!this.baseOnDisk && !(await this.storedVersions()).length) await this.writeVersion(this.state);
      this.baseOnDisk = true;
      await this.writeVersion(state);
      this.state = state;
      return state;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Makes a new version holding what version `v` held. */
  async rollback(v: number, meta: Pick<PolicyMeta, 'who' | 'why' | 'source'>): Promise<PolicyState> {
    const old = await this.getVersion(v);
    if (!old) throw new PolicyValidationError([{ field: 'body/version', message: `version ${v} does not exist` }]);
    return this.change({ ...meta, action: 'rollback', rollbackOf: v }, (d) => {
      d.profiles = old.profiles;
      d.lists = old.lists;
    });
  }

  async getVersion(v: number): Promise<PolicyState | null> {
    if (v === this.state.meta.version) return structuredClone(this.state);
    if (v === 1 && !this.baseOnDisk) return structuredClone(this.state);
    try {
      return await this.readVersion(v);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  /** Version metadata, newest first, below `before`. */
  async history(limit: number, before = Infinity): Promise<PolicyMeta[]> {
    const versions = (await this.storedVersions(true)).filter((v) => v < before).slice(0, limit);
    if (!versions.length && this.state.meta.version < before) return [this.state.meta];
    const metas: PolicyMeta[] = [];
    for (const v of versions) {
      try {
        metas.push((await this.readVersion(v)).meta);
      } catch {
        // an unreadable file is reported at load; the history skips it
      }
    }
    return metas;
  }

  private async storedVersions(newestFirst = false): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const vs = names.map((n) => FILE.exec(n)).filter((m) => m !== null).map((m) => Number(m[1]));
    return vs.sort((a, b) => (newestFirst ? b - a : a - b));
  }

  private async readVersion(v: number): Promise<PolicyState> {
    const doc = JSON.parse(await readFile(join(this.dir, fileName(v)), 'utf8')) as PolicyState;
    if (!doc || typeof doc !== 'object' || doc.meta?.version !== v) throw new Error(`${fileName(v)}: not version ${v}`);
    // Profiles added to the config file since that version still apply; stored ones win by name.
    const merged = { ...structuredClone(this.config.profiles), ...doc.profiles };
    const { profiles, lists } = await validateDraft({ profiles: merged, lists: doc.lists }, this.config, fileName(v));
    for (const [name, l] of Object.entries(lists)) l.changedIn = doc.lists[name]?.changedIn ?? v;
    return { meta: doc.meta, profiles, lists };
  }

  private async writeVersion(state: PolicyState): Promise<void> {
    const file = join(this.dir, fileName(state.meta.version));
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(state, null, 1) + '\n', { mode: 0o640 });
    await rename(tmp, file);
  }
}
