import { lookup as systemLookup } from 'node:dns';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { VigieConfig } from '../config/types.js';
import { canonicalIp } from '../net/address.js';

export interface Resolved {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Why a name could not be resolved: `notfound` is the name's fault, `failure` the resolver's. */
export class ResolveError extends Error {
  constructor(
    readonly host: string,
    readonly kind: 'notfound' | 'failure',
    readonly code: string,
  ) {
    super(`cannot resolve ${host}: ${code}`);
    this.name = 'ResolveError';
  }
}

interface CacheEntry {
  readonly expires: number;
  readonly value: Resolved | ResolveError;
}

const NOT_FOUND_CODES = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'EAI_NONAME', 'ENONAME']);

/**
 * Name → address for the proxy: the config's static host map first (squid's hosts_file), then
 * DNS with a bounded cache (positive answers up to their TTL, failures for a short while) and
 * one query in flight per name, so a burst of requests for one host costs one lookup.
 */
export class HostResolver {
  private readonly hosts: Map<string, Resolved>;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<Resolved>>();
  private readonly resolver: Resolver | null;
  private readonly maxTtlMs: number;
  private readonly negativeTtlMs: number;
  private readonly maxEntries = 10_000;
  /**
   * getaddrinfo runs on libuv's small thread pool (4 threads, shared with file I/O and zlib):
   * a burst of lookups for new names must not queue everything else behind it. c-ares queries
   * are asynchronous sockets and can have many more in flight.
   */
  private readonly maxInflight: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly maxWaiting = 2_000;

  constructor(cfg: Pick<VigieConfig, 'hosts' | 'dns'>) {
    this.hosts = new Map(
      Object.entries(cfg.hosts).map(([name, ip]) => {
        // The address as the gate checks it and the proxy connects to it (`::ffff:a.b.c.d` is IPv4).
        const address = canonicalIp(ip) || ip;
        return [name.toLowerCase().replace(/\.$/, ''), { address, family: isIP(address) === 6 ? 6 : 4 }];
      }),
    );
    this.maxTtlMs = cfg.dns.maxTtlSeconds * 1000;
    this.negativeTtlMs = cfg.dns.negativeTtlSeconds * 1000;
    if (cfg.dns.servers) {
      this.resolver = new Resolver({ timeout: cfg.dns.timeoutMs, tries: 2 });
      this.resolver.setServers(cfg.dns.servers);
    } else this.resolver = null;
    this.maxInflight = this.resolver ? 64 : 3;
  }

  /** Synchronous answer when the host map, an IP literal or the cache has one; else undefined. */
  peek(host: string, now = Date.now()): Resolved | ResolveError | undefined {
    const fixed = this.hosts.get(host);
    if (fixed) return fixed;
    const family = isIP(host);
    if (family) return { address: host, family: family as 4 | 6 };
    const hit = this.cache.get(host);
    if (hit && hit.expires > now) return hit.value;
    return undefined;
  }

  resolve(host: string): Promise<Resolved> {
    const now = Date.now();
    const known = this.peek(host, now);
    if (known instanceof ResolveError) return Promise.reject(known);
    if (known) return Promise.resolve(known);
    let p = this.inflight.get(host);
    if (!p) {
      p = this.query(host).then(
        ({ value, ttlMs }) => this.remember(host, value, ttlMs),
        (e: NodeJS.ErrnoException) => {
          const code = e.code ?? 'EFAIL';
          const err = new ResolveError(host, NOT_FOUND_CODES.has(code) ? 'notfound' : 'failure', code);
          this.remember(host, err, this.negativeTtlMs);
          throw err;
        },
      );
      p.catch(() => {}).finally(() => this.inflight.delete(host));
      this.inflight.set(host, p);
    }
    return p;
  }

  private remember<T extends Resolved | ResolveError>(host: string, value: T, ttlMs: number): T {
    if (ttlMs > 0) {
      if (this.cache.size >= this.maxEntries) {
        // Drop the oldest insertions: Map iterates in insertion order.
        let n = this.maxEntries / 10;
        for (const k of this.cache.keys()) {
          this.cache.delete(k);
          if (--n <= 0) break;
        }
      }
      this.cache.set(host, { expires: Date.now() + ttlMs, value });
    }
    return value;
  }

  private async query(host: string): Promise<{ value: Resolved; ttlMs: number }> {
    if (this.running >= this.maxInflight) {
      if (this.waiting.length >= this.maxWaiting) throw Object.assign(new Error('too many lookups waiting'), { code: 'EBUSY' });
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.running++;
    try {
      return await this.queryNow(host);
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private async queryNow(host: string): Promise<{ value: Resolved; ttlMs: number }> {
    if (!this.resolver) {
      // getaddrinfo gives no TTL: keep answers a short, fixed while.
      const value = await new Promise<Resolved>((resolve, reject) =>
        systemLookup(host, { family: 0 }, (err, address, family) => (err ? reject(err) : resolve({ address, family: family === 6 ? 6 : 4 }))),
      );
      return { value, ttlMs: Math.min(30_000, this.maxTtlMs) };
    }
    let v4: { address: string; ttl: number }[] = [];
    let firstError: unknown = null;
    try {
      v4 = await this.resolver.resolve4(host, { ttl: true });
    } catch (e) {
      firstError = e;
    }
    if (v4.length) return { value: { address: v4[0]!.address, family: 4 }, ttlMs: Math.min(v4[0]!.ttl * 1000, this.maxTtlMs) };
    try {
      const v6 = await this.resolver.resolve6(host, { ttl: true });
      if (v6.length) return { value: { address: v6[0]!.address, family: 6 }, ttlMs: Math.min(v6[0]!.ttl * 1000, this.maxTtlMs) };
    } catch (e) {
      firstError ??= e;
    }
    throw firstError ?? Object.assign(new Error('no address'), { code: 'ENODATA' });
  }
}
