/**
 * Which HTTPS connections TLS interception takes (docs/interception.md): the one rule, used by
 * the data plane (src/proxy/intercept.ts) and by the explainers (`vigie check --json`).
 * Pure: the config, the policy snapshot and the gate's decision in, an answer out.
 */
import type { InterceptMode, VigieConfig } from '../config/types.js';
import { excludedDomains, type DomainSuffixes } from '../tls/exclusions.js';
import { OverrideGuard } from './overrides.js';
import type { PolicySnapshot } from './snapshot.js';
import type { Decision } from './types.js';

/** What happens to an HTTPS connection: terminated with the school CA, left alone as excluded, or tunnelled. */
export type TlsTreatment = 'intercept' | 'exclude' | 'tunnel';

/** The profile's interception mode; off when absent or for no profile. */
export function interceptModeOf(config: VigieConfig, profile: string | null): InterceptMode {
  if (profile === null || !Object.hasOwn(config.profiles, profile)) return 'off';
  return config.profiles[profile]!.intercept ?? 'off';
}

/** Hosts never intercepted, for one config and snapshot (built again when either changes). */
export class InterceptExclusions {
  private readonly guard: OverrideGuard;

  constructor(
    readonly config: VigieConfig,
    readonly snapshot: PolicySnapshot,
    readonly domains: DomainSuffixes = excludedDomains(config),
  ) {
    // "Which of these categories lists the host" is the overrides' guard: one implementation.
    this.guard = new OverrideGuard(snapshot, config.interception.exclude.categories);
  }

  /** An excluded domain, or a host listed in an excluded category. */
  has(host: string): boolean {
    return this.domains.has(host) || this.guard.hit(host, '') !== null;
  }
}

/**
 * The treatment of a CONNECT (or ClientHello) for `host` the gate decided as `decision`:
 * `block-pages` takes blocked names, `full` every name; excluded hosts and names the gate could
 * not read are left alone; a decision without a profile (client not served) is never intercepted.
 */
export function tlsTreatment(config: VigieConfig, exclusions: InterceptExclusions, decision: Decision, host: string): TlsTreatment {
  const mode = interceptModeOf(config, decision.profile);
  if (mode === 'off' || (mode === 'block-pages' && decision.action !== 'block')) return 'tunnel';
  return host === '' || exclusions.has(host) ? 'exclude' : 'intercept';
}
