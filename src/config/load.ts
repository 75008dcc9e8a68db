import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { fileAccess } from '../file-access.js';
import { Ajv } from '../ajv.js';
import { parseNetwork } from '../net/address.js';
import { own } from '../own.js';
import { zoneFor } from '../time-zone.js';
import { completeSafeSearch, defaultConfig } from './defaults.js';
import { configSchema } from './schema.js';
import { holidaysOf, windowsOf, type InterceptionConfig, type ProfileConfig, type RuleSet, type VigieConfig } from './types.js';


/** A config problem: where (file and JSON path) and why. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: { path: string; message: string }[],
  ) {
    super(`invalid config ${file}:\n${problems.map((p) => `  ${p.path || '/'}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
const validateFile = ajv.compile(configSchema);

type AjvError = { instancePath: string; message?: string; keyword: string; params: Record<string, unknown> };

function describe(err: AjvError): { path: string; message: string } {
  let message = err.message ?? 'invalid';
  let path = err.instancePath;
  if (err.keyword === 'additionalProperties') message = `unknown key "${String(err.params.additionalProperty)}"`;
  if (err.keyword === 'enum') message = `must be one of ${(err.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  if (err.keyword === 'required') {
    path += `/${String(err.params.missingProperty)}`;
    message = 'is required';
  }
  return { path, message };
}

/**
 * The errors worth reading: for an `anyOf` of null or an object (`"fleet": null | {...}`), the
 * object's own errors, without "must be null" and "must match a schema in anyOf" beside them.
 */
function relevant(errors: AjvError[]): AjvError[] {
  const specific = new Set(errors.filter((e) => e.keyword !== 'anyOf' && !(e.keyword === 'type' && e.params.type === 'null')).map((e) => e.instancePath));
  return errors.filter((e) => !((e.keyword === 'anyOf' || (e.keyword === 'type' && e.params.type === 'null')) && [...specific].some((p) => p === e.instancePath || p.startsWith(e.instancePath + '/'))));
}

/** `ip`, `ip:port` or `[ipv6]:port`, as `dns.Resolver#setServers` takes them. */
function isServerAddress(s: string): boolean {
  if (isIP(s)) return true;
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s) ?? /^([^:]+):(\d{1,5})$/.exec(s);
  if (!m || !isIP(m[1]!)) return false;
  return m[2] === undefined || (Number(m[2]) >= 1 && Number(m[2]) <= 65535);
}

/** The fleet's public key (inline PEM or a file): readable, and Ed25519 or RSA. */
function publicKeyProblem(pemOrFile: string): string | null {
  let pem = pemOrFile;
  if (!pemOrFile.includes('-----BEGIN')) {
    try {
      pem = readFileSync(pemOrFile, 'utf8');
    } catch (e) {
      return `cannot read the public key file: ${(e as Error).message}`;
    }
  }
  try {
    const type = createPublicKey(pem).asymmetricKeyType;
    return type === 'ed25519' || type === 'rsa' ? null : `a ${type ?? 'unknown'} key: use Ed25519 or RSA`;
  } catch (e) {
    return `not a PEM public key: ${(e as Error).message}`;
  }
}

const defaultRuleSet = (r: Partial<RuleSet>): RuleSet => ({
  mode: r.mode ?? 'blocklist',
  categories: r.categories ?? [],
  allow: r.allow ?? [],
  deny: r.deny ?? [],
  allowLists: r.allowLists ?? [],
  denyLists: r.denyLists ?? [],
});

/** Merges a partial file over the defaults: sections merge key by key; profiles merge by name. */
export function mergeConfig(file: Record<string, unknown>, base: VigieConfig = defaultConfig()): VigieConfig {
  const cfg = { ...base } as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(file)) {
    if (key === '$schema') continue;
    const current = cfg[key];
    if (key === 'profiles' || key === 'times') {
      cfg[key] = { ...(current as object), ...(value as object) };
    } else if (current && typeof current === 'object' && !Array.isArray(current) && key !== 'hosts') {
      cfg[key] = { ...(current as object), ...(value as object) };
    } else {
      cfg[key] = value;
    }
  }
  const merged = cfg as unknown as VigieConfig;
  const portal = merged.auth.portal;
  if (portal) merged.auth = { ...merged.auth, portal: { ...{ url: null, idleMinutes: 30, explicit: 'challenge' as const, cert: null, key: null }, ...portal } };
  // `exclude` merges key by key too: naming only `domains` keeps the `bank` category.
  const interception = file.interception as Partial<InterceptionConfig> | undefined;
  if (interception?.exclude) merged.interception = { ...merged.interception, exclude: { ...base.interception.exclude, ...interception.exclude } };
  for (const [id, p] of Object.entries(merged.profiles)) {
    const profile: ProfileConfig = { ...defaultRuleSet(p), description: p.description, safeSearch: completeSafeSearch(id, p.safeSearch) };
    if (p.schedule) profile.schedule = { within: p.schedule.within, otherwise: defaultRuleSet(p.schedule.otherwise) };
    if (p.intercept !== undefined && p.intercept !== 'off') profile.intercept = p.intercept;
    merged.profiles[id] = profile;
  }
  return merged;
}

/** Checks what a JSON schema cannot: references between sections, address syntax, time zone. */
export function checkConfig(cfg: VigieConfig): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  cfg.clients.forEach((c, i) => {
    try {
      parseNetwork(c.network);
    } catch (e) {
      problems.push({ path: `/clients/${i}/network`, message: `not an address or CIDR range: ${(e as Error).message}` });
    }
    if (!own(cfg.profiles, c.profile)) problems.push({ path: `/clients/${i}/profile`, message: `unknown profile "${c.profile}"` });
  });
  for (const [id, p] of Object.entries(cfg.profiles)) {
    if (p.schedule && (!own(cfg.times, p.schedule.within) || p.schedule.within === 'holidays')) {
      problems.push({ path: `/profiles/${id}/schedule/within`, message: `unknown time window "${p.schedule.within}" (define it under "times")` });
    }
  }
  for (const [name, slots] of windowsOf(cfg.times)) {
    slots.forEach((s, i) => {
      if (s.from >= s.to) problems.push({ path: `/times/${name}/${i}`, message: `"from" (${s.from}) must be before "to" (${s.to})` });
    });
  }
  cfg.destinations.allow.forEach((d, i) => {
    try {
      parseNetwork(d.network);
    } catch (e) {
      problems.push({ path: `/destinations/allow/${i}/network`, message: `not an address or CIDR range: ${(e as Error).message}` });
    }
  });
  cfg.httpPorts.forEach((p, i) => {
    if (typeof p !== 'string') return;
    const [from, to] = p.split('-').map(Number) as [number, number];
    if (from < 1 || to > 65535 || from > to) problems.push({ path: `/httpPorts/${i}`, message: `"${p}" is not a port range: "from-to", 1 <= from <= to <= 65535` });
  });
  holidaysOf(cfg.times).forEach((h, i) => {
    const bad = [h.from, h.to].find((d) => {
      const t = Date.parse(`${d}T00:00:00Z`);
      return Number.isNaN(t) || new Date(t).toISOString().slice(0, 10) !== d;
    });
    if (bad) problems.push({ path: `/times/holidays/${i}`, message: `"${bad}" is not a date of the calendar` });
    else if (h.from > h.to) problems.push({ path: `/times/holidays/${i}`, message: `"from" (${h.from}) must not be after "to" (${h.to})` });
  });
  problems.push(...checkIdentity(cfg));
  for (const id of Object.keys(cfg.alerts.profiles)) {
    if (!own(cfg.profiles, id)) problems.push({ path: `/alerts/profiles/${id}`, message: `unknown profile "${id}"` });
  }
  for (const [host, ip] of Object.entries(cfg.hosts)) {
    if (!isIP(ip)) problems.push({ path: `/hosts/${host}`, message: `"${ip}" is not an IP address` });
  }
  cfg.dns.servers?.forEach((s, i) => {
    if (!isServerAddress(s)) problems.push({ path: `/dns/servers/${i}`, message: `"${s}" is not a name server address (ip, ip:port or [ipv6]:port)` });
  });
  const fleet = cfg.supervision.fleet;
  const keyProblem = fleet ? publicKeyProblem(fleet.publicKey) : null;
  if (keyProblem) problems.push({ path: '/supervision/fleet/publicKey', message: keyProblem });
  // One address, one listener: an explicit and a transparent listener cannot share a port.
  const seen = new Map<string, string>();
  const listeners: [string, { host: string; port: number }[]][] = [['/listen', cfg.listen], ['/transparent/http', cfg.transparent.http], ['/transparent/https', cfg.transparent.https]];
  for (const [path, list] of listeners) {
    list.forEach((l, i) => {
      if (l.port === 0) return;
      const key = `${l.host}|${l.port}`;
      const other = seen.get(key);
      if (other) problems.push({ path: `${path}/${i}`, message: `${l.host}:${l.port} is already ${other}` });
      else seen.set(key, `${path}/${i}`);
    });
  }
  try {
    zoneFor(cfg.timezone);
  } catch {
    problems.push({ path: '/timezone', message: `unknown time zone "${cfg.timezone}"` });
  }
  try {
    fileAccess(cfg.journal.group);
  } catch (e) {
    problems.push({ path: '/journal/group', message: (e as Error).message });
  }
  return problems;
}

/** Directory mappings name existing profiles; a network that requires auth has a way to check it. */
function checkIdentity(cfg: VigieConfig): { path: string; message: string }[] {
  const problems: { path: string; message: string }[] = [];
  for (const key of ['levels', 'classes'] as const) {
    for (const [k, profile] of Object.entries(cfg.directory[key])) {
      if (!cfg.profiles[profile]) problems.push({ path: `/directory/${key}/${k}`, message: `unknown profile "${profile}"` });
    }
  }
  const ldap = cfg.auth.ldap;
  const portal = cfg.auth.portal;
  if (portal && !ldap) problems.push({ path: '/auth/portal', message: 'the portal checks logins against LDAP: configure "auth.ldap"' });
  if (portal && (!portal.cert !== !portal.key)) problems.push({ path: '/auth/portal', message: 'set both "cert" and "key", or neither (the API\'s certificate is then used)' });
  if (ldap) {
    if (!ldap.bindDn === !ldap.searchFilter) problems.push({ path: '/auth/ldap', message: 'set either "bindDn" (a template) or "searchFilter" with "searchBase"' });
    if (ldap.searchFilter && !ldap.searchBase) problems.push({ path: '/auth/ldap/searchBase', message: 'required with "searchFilter"' });
    if (ldap.startTls && ldap.url.startsWith('ldaps:')) problems.push({ path: '/auth/ldap/startTls', message: 'STARTTLS is for ldap:// URLs (ldaps:// is TLS already)' });
  }
  cfg.clients.forEach((c, i) => {
    if (c.auth === 'required' && !ldap) problems.push({ path: `/clients/${i}/auth`, message: '"required" needs a way to check credentials: configure "auth.ldap"' });
    if (c.unauthenticatedProfile !== undefined && !cfg.profiles[c.unauthenticatedProfile]) problems.push({ path: `/clients/${i}/unauthenticatedProfile`, message: `unknown profile "${c.unauthenticatedProfile}"` });
  });
  return problems;
}

/** Validates a parsed config document; throws ConfigError naming every problem. */
export function resolveConfig(doc: unknown, file = '<config>'): VigieConfig {
  if (!validateFile(doc)) throw new ConfigError(file, relevant(validateFile.errors ?? []).map(describe));
  const cfg = mergeConfig(doc as Record<string, unknown>);
  const problems = checkConfig(cfg);
  if (problems.length) throw new ConfigError(file, problems);
  return cfg;
}

/** Reads the config file (or the embedded defaults when there is none). Runs once at start and on reload. */
export function loadConfig(file?: string): VigieConfig {
  if (!file) return resolveConfig({}, '<embedded defaults>');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [{ path: '', message: `cannot read: ${(e as Error).message}` }]);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(file, [{ path: '', message: `not valid JSON: ${(e as Error).message}` }]);
  }
  return resolveConfig(doc, file);
}
