import ipaddr from 'ipaddr.js';
import type { VigieConfig } from '../config/types.js';
import { classifyIPv4, classifyIPv6, dottedQuad, maskOf, parseNetwork, type AddressClass } from '../net/address.js';
import { OwnListeners } from '../net/own-listeners.js';

/** Why the proxy will not connect a client to an address: one of the gateway's own listeners, or its class. */
export type DestinationRefusal = 'self' | AddressClass;

/** Classes no configuration opens: the gateway itself, and addresses that are never a web site. */
const ALWAYS: ReadonlySet<AddressClass> = new Set(['unspecified', 'link-local', 'multicast', 'broadcast']);

interface AllowEntry {
  readonly v4: boolean;
  /** IPv4: network and mask as 32-bit numbers. */
  readonly base: number;
  readonly mask: number;
  /** IPv6: the range for ipaddr.js. */
  readonly range: ipaddr.IPv6 | null;
  readonly bits: number;
  readonly ports: ReadonlySet<number> | null;
}

/**
 * The destination policy of one configuration: where plain HTTP may go (`httpPorts`), and which
 * addresses a client may be connected to. Checked on the address actually connected to (a host
 * map or a DNS answer counts, not only a literal), after the decision.
 */
export class DestinationPolicy {
  /** One byte per port: 1 where plain HTTP may go. */
  private readonly http = new Uint8Array(65536);
  private readonly allow: AllowEntry[];
  /** The listeners the config declares: in a cluster worker, the metrics and API listen in another process. */
  private readonly declared = new OwnListeners();

  constructor(
    config: VigieConfig,
    private readonly own: OwnListeners,
  ) {
    for (const p of config.httpPorts) {
      if (typeof p === 'number') this.http[p] = 1;
      else {
        const [from, to] = p.split('-').map(Number) as [number, number];
        this.http.fill(1, from, to + 1);
      }
    }
    this.allow = config.destinations.allow.map((d) => {
      const [addr, bits] = parseNetwork(d.network);
      const ports = d.ports ? new Set(d.ports) : null;
      if (addr.kind() === 'ipv4') {
        const base = (addr as ipaddr.IPv4).octets.reduce((v, o) => v * 256 + o, 0);
        const mask = maskOf(bits);
        return { v4: true, base: (base & mask) >>> 0, mask, range: null, bits, ports };
      }
      return { v4: false, base: 0, mask: 0, range: addr as ipaddr.IPv6, bits, ports };
    });
    const listeners = [...config.listen];
    if (config.metrics.enabled) listeners.push(config.metrics.listen);
    if (config.supervision.enabled) listeners.push(config.supervision.listen);
    for (const l of listeners) if (l.port !== 0) this.declared.add(l.host, l.port);
  }

  /** Whether plain HTTP may go to this port. */
  httpPort(port: number): boolean {
    return this.http[port] === 1;
  }

  /** Why `address` (canonical, as canonicalIp writes it) on `port` is refused, or null when it may be reached. */
  check(address: string, port: number): DestinationRefusal | null {
    if (this.own.has(address, port) || this.declared.has(address, port)) return 'self';
    const v4 = dottedQuad(address);
    let cls: AddressClass | null;
    let v6: ipaddr.IPv6 | null = null;
    if (v4 >= 0) cls = classifyIPv4(v4);
    else if (ipaddr.IPv6.isValid(address)) cls = classifyIPv6((v6 = ipaddr.IPv6.parse(address)));
    // Not an address at all: nothing to connect to that could be checked.
    else return 'unspecified';
    if (cls === null) return null;
    if (ALWAYS.has(cls)) return cls;
    for (const a of this.allow) {
      if (a.ports !== null && !a.ports.has(port)) continue;
      if (a.v4 ? v4 >= 0 && ((v4 & a.mask) >>> 0) === a.base : v6 !== null && v6.match(a.range!, a.bits)) return null;
    }
    return cls;
  }
}
