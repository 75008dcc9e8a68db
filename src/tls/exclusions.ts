/**
 * Where the school CA lives, and the hosts never intercepted (interception.exclude): the
 * configured domains, and unless `shipped` is false, lists/interception-exclude.json (health,
 * government identity, certificate-pinned services, each group with its sources).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { VigieConfig } from '../config/types.js';
import { BUNDLED_INTERCEPT_EXCLUDE } from '../paths.js';
import { canonicalHost } from '../policy/request.js';

/** `interception.ca`, else `<dataDir>/ca`. */
export function caDir(config: VigieConfig): string {
  const ca = config.interception.ca;
  if (ca === null) return join(config.dataDir, 'ca');
  return isAbsolute(ca) ? ca : join(process.cwd(), ca);
}

interface ShippedFile {
  groups: { why: string; reason: string; sources: string[]; domains: string[] }[];
}

let shipped: readonly string[] | null = null;

/** The shipped list's domains (read once: it changes with a release, not at run time). */
export function shippedExclusions(): readonly string[] {
  if (shipped === null) {
    const doc = JSON.parse(readFileSync(BUNDLED_INTERCEPT_EXCLUDE, 'utf8')) as ShippedFile;
    shipped = doc.groups.flatMap((g) => g.domains);
  }
  return shipped;
}

/** A set of domains, each standing for itself and its subdomains. */
export class DomainSuffixes {
  private readonly names = new Set<string>();

  constructor(domains: Iterable<string>) {
    for (const d of domains) {
      const c = canonicalHost(d.startsWith('.') ? d.slice(1) : d);
      if (c) this.names.add(c);
    }
  }

  /** Whether `host` (canonical) or one of its parent domains is in the set: one lookup per label. */
  has(host: string): boolean {
    let at = 0;
    for (;;) {
      if (this.names.has(at === 0 ? host : host.slice(at))) return true;
      const dot = host.indexOf('.', at);
      if (dot === -1) return false;
      at = dot + 1;
    }
  }

  get size(): number {
    return this.names.size;
  }
}

/** The configured and (unless turned off) shipped excluded domains of `config`. */
export const excludedDomains = (config: VigieConfig): DomainSuffixes =>
  new DomainSuffixes(config.interception.exclude.shipped ? [...shippedExclusions(), ...config.interception.exclude.domains] : config.interception.exclude.domains);
