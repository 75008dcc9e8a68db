import ipaddr from 'ipaddr.js';
import { LRUCache } from 'lru-cache';
import type { ClientRule } from '../config/types.js';
import { parseNetwork } from '../net/address.js';

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

interface CompiledRule {
  readonly range: Addr;
  readonly bits: number;
  readonly kind: 'ipv4' | 'ipv6';
  readonly profile: string;
  readonly name: string;
  /** Whether clients of this network must say who they are (config `clients[].auth`). */
  readonly auth: 'none' | 'required';
  readonly network: string;
  /** Before a portal login: the profile for this network's HTTPS; null = blocked (config `clients[].unauthenticatedProfile`). */
  readonly unauthenticatedProfile: string | null;
}

/** The network a client address belongs to. */
export interface ClientNetwork {
  readonly profile: string;
  readonly name: string;
  readonly auth: 'none' | 'required';
  readonly network: string;
  readonly unauthenticatedProfile: string | null;
}

/** Client address → profile by source range; the most specific range wins, like a routing table. */
export class ClientMatcher {
  private readonly rules: CompiledRule[];
  /** A school has a few thousand devices at most: parsing each address once is enough. */
  private readonly memo = new LRUCache<string, ClientNetwork | false>({ max: 8192 });

  constructor(rules: readonly ClientRule[]) {
    this.rules = rules
      .map((r) => {
        const [range, bits] = parseNetwork(r.network);
        return { range, bits, kind: range.kind(), profile: r.profile, name: r.name ?? r.network, auth: r.auth ?? 'none', network: r.network, unauthenticatedProfile: r.unauthenticatedProfile ?? null };
      })
      .sort((a, b) => b.bits - a.bits);
  }

  /** Returns the matching rule, or null when the client is not one of ours. */
  match(ip: string): ClientNetwork | null {
    let m = this.memo.get(ip);
    if (m === undefined) this.memo.set(ip, (m = this.lookup(ip) ?? false));
    return m || null;
  }

  private lookup(ip: string): ClientNetwork | null {
    let addr: Addr;
    try {
      addr = ipaddr.process(ip); // maps ::ffff:a.b.c.d to IPv4
    } catch {
      return null;
    }
    const kind = addr.kind();
    for (const r of this.rules) {
      if (r.kind === kind && addr.match(r.range, r.bits)) return r;
    }
    return null;
  }
}
