import { stripWww } from '../lists/normalize.js';
import type { ListHit } from '../lists/types.js';
import type { CompiledRules, Filter, PolicySnapshot } from './snapshot.js';
import type { Decision, DecisionRequest, DecisionRule } from './types.js';

interface Found {
  readonly filter: Filter;
  readonly hit: ListHit;
}

/** First entry of the filters matching the request: domains, then url prefixes, then expressions. */
function find(filters: readonly Filter[], host: string, path: string, url: string): Found | null {
  for (const filter of filters) {
    const { index, want } = filter;
    // Domain entries, then url entries of the www-stripped host (one walk over host in the compact index).
    let hit = index.matchHostAndUrl(host, path, want);
    if (!hit && filter.hasExpressions) hit = index.matchExpression(url, want);
    if (hit) return { filter, hit };
  }
  return null;
}

function verdict(
  snapshot: PolicySnapshot,
  rules: CompiledRules | null,
  profile: string | null,
  action: Decision['action'],
  rule: DecisionRule,
  found: Found | null,
  category: string | null = found ? found.filter.names[found.hit.category]! : null,
): Decision {
  return Object.freeze({
    action,
    profile,
    category,
    list: found ? found.filter.lists[found.hit.category]! : null,
    rule,
    entry: found ? found.hit.entry : null,
    matchKind: found ? found.hit.kind : null,
    period: rules ? rules.period : 'always',
    listVersion: snapshot.listVersion,
    policyVersion: snapshot.policyVersion,
  });
}

/** The rules of a profile at a given time: its schedule picks `within` or `otherwise`. */
export function rulesAt(snapshot: PolicySnapshot, profileId: string, time: number): CompiledRules | null {
  const p = snapshot.profiles.get(profileId);
  if (!p) return null;
  if (!p.otherwise || !p.window) return p.within;
  return snapshot.clock.within(p.window, time) ? p.within : p.otherwise;
}

/** The list part of a decision, for a profile's rules and a normalised host and path. */
export function evaluate(snapshot: PolicySnapshot, rules: CompiledRules, host: string, path: string): Decision {
  const url = host + path;
  const p = rules.profile;
  let f = find(rules.profileAllow, host, path, url);
  if (f) return verdict(snapshot, rules, p, 'allow', 'profile-allow', f, null);
  if ((f = find(rules.listAllow, host, path, url))) return verdict(snapshot, rules, p, 'allow', 'list-allow', f);
  if ((f = find(rules.profileDeny, host, path, url))) return verdict(snapshot, rules, p, 'block', 'profile-deny', f, null);
  if ((f = find(rules.listDeny, host, path, url))) return verdict(snapshot, rules, p, 'block', 'list-deny', f);
  if (!snapshot.listsLoaded) return verdict(snapshot, rules, p, 'block', 'fail-closed', null);
  f = find(rules.categories, host, path, url);
  if (rules.mode === 'blocklist') return f ? verdict(snapshot, rules, p, 'block', 'category', f) : verdict(snapshot, rules, p, 'allow', 'default', null);
  return f ? verdict(snapshot, rules, p, 'allow', 'allowlist', f) : verdict(snapshot, rules, p, 'block', 'allowlist-only', null);
}

/**
 * Guards that come before the lists: client network, tunnel port, host syntax. `profile`: an
 * identified user's profile, given by the gate for a client it admitted; it replaces the network's.
 */
function precheck(snapshot: PolicySnapshot, req: DecisionRequest, profile?: string): Decision | CompiledRules {
  const id = profile ?? snapshot.clients.match(req.client)?.profile;
  if (id === undefined) return verdict(snapshot, null, null, 'block', 'no-client', null);
  const rules = rulesAt(snapshot, id, req.time);
  if (!rules) return verdict(snapshot, null, id, 'block', 'no-client', null);
  if (req.scheme === 'connect' && !snapshot.connectPorts.has(req.port)) return verdict(snapshot, rules, id, 'block', 'port', null);
  if (!req.host) return verdict(snapshot, rules, id, 'block', 'invalid-host', null);
  return rules;
}

/** The decision, as a pure function of (snapshot, request[, the identified user's profile]). */
export function decide(snapshot: PolicySnapshot, req: DecisionRequest, profile?: string): Decision {
  const r = precheck(snapshot, req, profile);
  return 'action' in r ? r : evaluate(snapshot, r, req.host, req.path);
}

/** Does the path change the outcome for this host under these rules? */
function pathMatters(rules: CompiledRules, bareHost: string): boolean {
  if (rules.pathAlways) return true;
  for (const f of rules.all) if (f.index.hasUrlRules(bareHost)) return true;
  return false;
}

/**
 * Same result as `decide`, memoised per profile rule set: keyed by host, or by host+path for the
 * hosts whose url entries (or the rule set's expressions) make the path matter.
 */
export function decideCached(snapshot: PolicySnapshot, req: DecisionRequest, profile?: string): Decision {
  const r = precheck(snapshot, req, profile);
  if ('action' in r) return r;
  const cache = r.cache;
  if (!cache) return evaluate(snapshot, r, req.host, req.path);
  const key = req.path && pathMatters(r, stripWww(req.host)) ? req.host + req.path : req.host;
  let d = cache.get(key);
  if (d === undefined) {
    d = evaluate(snapshot, r, req.host, req.path);
    cache.set(key, d);
  }
  return d;
}
