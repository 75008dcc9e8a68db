/**
 * SafeSearch and YouTube restricted mode without interception. The providers run enforcing
 * addresses (forcesafesearch.google.com, restrict.youtube.com, strict.bing.com, ...) that serve
 * certificates for the original names: a request or tunnel for `www.google.fr` connected there
 * instead keeps TLS end to end and gets only safe results. Which host goes where is data
 * (lists/safesearch.json, with its sources); whether it applies is a profile's `safeSearch`.
 */
import { readFileSync } from 'node:fs';
import type { SafeSearchSettings } from '../config/types.js';
import { isValidHostEntry, normalizeHost } from '../lists/normalize.js';
import { BUNDLED_SAFESEARCH } from '../paths.js';

/** Where a request goes instead of its host, and which engine's rule sent it there. */
export interface Retarget {
  readonly engine: string;
  /** The enforcing host to resolve and connect to. */
  readonly host: string;
  /**
   * What a request read inside `intercept: "full"` also carries (the file's `intercepted`): query
   * parameters set (replacing the client's own) and headers set, where the provider needs them
   * besides (or instead of) its enforcing address. Empty lists: nothing more.
   */
  readonly inside: InsideRules;
}

export interface InsideRules {
  readonly query: readonly (readonly [name: string, value: string])[];
  readonly headers: readonly (readonly [name: string, value: string])[];
}

const NO_RULES: InsideRules = Object.freeze({ query: Object.freeze([]), headers: Object.freeze([]) });
/** An HTTP header name (RFC 9110 token) and a query name or value needing no escaping. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const QUERY_WORD = /^[0-9A-Za-z._~-]+$/;

interface Engine {
  readonly setting: keyof SafeSearchSettings;
  /** By setting value: `on` for the boolean switches, `strict`/`moderate` for YouTube. */
  readonly retargets: Readonly<Record<string, Retarget>>;
}

/** The compiled mapping: one map lookup per request. */
export interface SafeSearchTable {
  readonly hosts: ReadonlyMap<string, Engine>;
  /** Engine ids, in the file's order (metrics and docs). */
  readonly engines: readonly string[];
}

/** A setting's kind: a switch, or YouTube's levels (lists/safesearch.json gives `target` or `targets`). */
const SETTINGS: Record<keyof SafeSearchSettings, 'switch' | 'levels'> = { google: 'switch', bing: 'switch', duckduckgo: 'switch', youtube: 'levels' };
const LEVELS = ['strict', 'moderate'] as const;

export class SafeSearchDataError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid SafeSearch mapping ${file}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'SafeSearchDataError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const stringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Validates and compiles the mapping document; throws SafeSearchDataError naming each problem. */
export function compileSafeSearch(doc: unknown, file = '<safesearch>'): SafeSearchTable {
  const problems: string[] = [];
  const hosts = new Map<string, Engine>();
  const owner = new Map<string, string>();
  const engines: string[] = [];
  const enginesDoc = isObject(doc) ? doc.engines : undefined;
  if (!isObject(enginesDoc)) throw new SafeSearchDataError(file, ['/engines: must be an object']);
  const hostProblem = (path: string, raw: string): string | null => {
    const h = normalizeHost(raw);
    return h && h === raw && isValidHostEntry(h) ? null : `${path}: "${raw}" is not a lower-case host name`;
  };
  for (const [id, e] of Object.entries(enginesDoc)) {
    const at = `/engines/${id}`;
    if (!isObject(e)) {
      problems.push(`${at}: must be an object`);
      continue;
    }
    const setting = e.setting as keyof SafeSearchSettings;
    const kind = typeof setting === 'string' && Object.hasOwn(SETTINGS, setting) ? SETTINGS[setting] : null;
    if (!kind) {
      problems.push(`${at}/setting: must be one of ${Object.keys(SETTINGS).map((s) => `"${s}"`).join(', ')}`);
      continue;
    }
    const retargets: Record<string, Retarget> = {};
    if (kind === 'switch') {
      if (typeof e.target !== 'string') problems.push(`${at}/target: an enforcing host name is required for "${setting}"`);
      else if (hostProblem(`${at}/target`, e.target)) problems.push(hostProblem(`${at}/target`, e.target)!);
      else retargets.on = Object.freeze({ engine: id, host: e.target, inside: NO_RULES });
    } else {
      const targets = e.targets;
      for (const level of LEVELS) {
        const t = isObject(targets) ? targets[level] : undefined;
        if (typeof t !== 'string') problems.push(`${at}/targets/${level}: an enforcing host name is required for "${setting}"`);
        else if (hostProblem(`${at}/targets/${level}`, t)) problems.push(hostProblem(`${at}/targets/${level}`, t)!);
        else retargets[level] = Object.freeze({ engine: id, host: t, inside: NO_RULES });
      }
    }
    const inside = isObject(e.intercepted) ? e.intercepted : e.intercepted === undefined ? {} : null;
    if (inside === null) problems.push(`${at}/intercepted: must be an object`);
    for (const [value, rules] of Object.entries(inside ?? {})) {
      const where = `${at}/intercepted/${value}`;
      if (!Object.hasOwn(retargets, value)) {
        problems.push(`${where}: must be one of ${kind === 'switch' ? '"on"' : LEVELS.map((l) => `"${l}"`).join(', ')}`);
        continue;
      }
      const compiled = insideRules(rules, where, problems);
      if (compiled !== null) retargets[value] = Object.freeze({ ...retargets[value]!, inside: compiled });
    }
    if (!stringArray(e.hosts) || e.hosts.length === 0) {
      problems.push(`${at}/hosts: must be a non-empty list of host names`);
      continue;
    }
    const tlds = e.tlds === undefined ? null : e.tlds;
    if (tlds !== null && (!stringArray(tlds) || tlds.length === 0)) {
      problems.push(`${at}/tlds: must be a non-empty list`);
      continue;
    }
    const engine: Engine = Object.freeze({ setting, retargets: Object.freeze(retargets) });
    engines.push(id);
    e.hosts.forEach((pattern, i) => {
      const templated = pattern.includes('{tld}');
      if (templated && tlds === null) problems.push(`${at}/hosts/${i}: "{tld}" needs a tlds list`);
      for (const host of templated && tlds ? tlds.map((t) => pattern.replace('{tld}', t)) : [pattern]) {
        const bad = hostProblem(`${at}/hosts/${i}`, host);
        if (bad) problems.push(bad);
        else if (owner.has(host)) problems.push(`${at}/hosts/${i}: "${host}" is already mapped by engine "${owner.get(host)}"`);
        else {
          owner.set(host, id);
          hosts.set(host, engine);
        }
      }
    });
  }
  if (problems.length) throw new SafeSearchDataError(file, problems);
  return { hosts, engines };
}

/** One `intercepted` entry: `{ query?: {name: value}, headers?: {Name: value} }`, checked. */
function insideRules(doc: unknown, at: string, problems: string[]): InsideRules | null {
  if (!isObject(doc)) {
    problems.push(`${at}: must be an object with "query" and/or "headers"`);
    return null;
  }
  const before = problems.length;
  const pairs = (key: 'query' | 'headers', name: RegExp, value: RegExp): [string, string][] => {
    const o = doc[key];
    if (o === undefined) return [];
    if (!isObject(o)) {
      problems.push(`${at}/${key}: must be an object of names to values`);
      return [];
    }
    const out: [string, string][] = [];
    for (const [n, v] of Object.entries(o)) {
      if (!name.test(n)) problems.push(`${at}/${key}: "${n}" is not a valid name`);
      else if (typeof v !== 'string' || !value.test(v)) problems.push(`${at}/${key}/${n}: must be a plain value (letters, digits, . _ ~ -)`);
      else out.push([n, v]);
    }
    return out;
  };
  for (const k of Object.keys(doc)) if (k !== 'query' && k !== 'headers') problems.push(`${at}: unknown key "${k}"`);
  const query = pairs('query', QUERY_WORD, QUERY_WORD);
  const headers = pairs('headers', TOKEN, QUERY_WORD);
  if (problems.length > before) return null;
  return Object.freeze({ query: Object.freeze(query.map((p) => Object.freeze(p))), headers: Object.freeze(headers.map((p) => Object.freeze(p))) });
}

/**
 * Where a normalised host goes for a profile with these settings, or null when it stays. Pure and
 * allocation-free: the answers are built once, with the table.
 */
export function safeSearchTarget(table: SafeSearchTable, host: string, settings: SafeSearchSettings): Retarget | null {
  const engine = table.hosts.get(host);
  if (engine === undefined) return null;
  const value = settings[engine.setting];
  if (value === false || value === 'off') return null;
  return engine.retargets[value === true ? 'on' : value] ?? null;
}

let bundled: SafeSearchTable | null = null;

/** The bundled mapping, read and compiled once (when the first policy is compiled, not per request). */
export function bundledSafeSearch(): SafeSearchTable {
  if (!bundled) bundled = loadSafeSearch(BUNDLED_SAFESEARCH);
  return bundled;
}

export function loadSafeSearch(file: string): SafeSearchTable {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new SafeSearchDataError(file, [`cannot read: ${(e as Error).message}`]);
  }
  return compileSafeSearch(doc, file);
}
