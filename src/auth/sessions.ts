import ipaddr from 'ipaddr.js';

/**
 * Who is behind a client address right now: sessions declared by trusted systems (the ENT, a NAC,
 * through the API) or opened by a login (captive portal), each until it expires. In memory only:
 * after a restart the ENT or NAC declares them again, and nobody is identified on stale data.
 */

export interface Session {
  /** Normalised client address (IPv4-mapped IPv6 as IPv4). */
  address: string;
  /** Directory id (AAF) of the user, or the login when the directory does not know it. */
  user: string;
  /** Who declared it: `api:<token name>`, `portal`, ... */
  source: string;
  started: number;
  /** ms since the epoch. */
  expires: number;
  /** Set for sessions that end after this long without traffic (portal logins); each use extends them. */
  idleMs?: number;
}

export type SessionChange = { t: 'open'; session: Session } | { t: 'close'; address: string; reason: 'ended' | 'expired' | 'replaced' };

/** Normalises an address, or null when it is not one. */
export function normaliseAddress(address: string): string | null {
  try {
    return ipaddr.process(address).toString();
  } catch {
    return null;
  }
}

export class SessionStore {
  private readonly byAddress = new Map<string, Session>();
  private readonly listeners: ((c: SessionChange) => void)[] = [];
  /**
   * A cluster worker's copy: it follows the primary's store, which alone ends idle sessions (it
   * sees every worker's traffic); the copy neither extends nor drops them on its own.
   */
  follower = false;

  /** A school has a few thousand devices: beyond this, something is declaring sessions in a loop. */
  constructor(readonly max = 100_000) {}

  onChange(fn: (c: SessionChange) => void): void {
    this.listeners.push(fn);
  }

  private emit(c: SessionChange): void {
    for (const fn of this.listeners) fn(c);
  }

  /** Binds an address to a user, replacing whatever session it had. Throws on a bad address or when full. */
  open(address: string, user: string, ms: number, source: string, opts: { idle?: boolean; now?: number } = {}): Session {
    const a = normaliseAddress(address);
    if (!a) throw new RangeError(`"${address}" is not an IP address`);
    const now = opts.now ?? Date.now();
    if (!this.byAddress.has(a) && this.byAddress.size >= this.max) {
      this.sweep(now);
      if (this.byAddress.size >= this.max) throw new RangeError(`too many sessions (${this.max})`);
    }
    const session: Session = { address: a, user, source, started: now, expires: now + ms, ...(opts.idle ? { idleMs: ms } : {}) };
    this.byAddress.set(a, session);
    this.emit({ t: 'open', session });
    return session;
  }

  /** Ends the session of an address; false when it had none. */
  close(address: string): boolean {
    const a = normaliseAddress(address) ?? address;
    const had = this.byAddress.delete(a);
    if (had) this.emit({ t: 'close', address: a, reason: 'ended' });
    return had;
  }

  /**
   * The live session of an address (the gate asks on each new connection), or null. An idle
   * session is extended by its use; an expired one is dropped.
   */
  lookup(address: string, now = Date.now()): Session | null {
    if (this.byAddress.size === 0) return null;
    // Sockets of a dual-stack listener report IPv4 clients as ::ffff:a.b.c.d.
    if (address.startsWith('::ffff:') && address.includes('.')) address = address.slice(7);
    const s = this.byAddress.get(address);
    if (!s) return null;
    if (s.idleMs !== undefined && this.follower) return s;
    if (s.expires <= now) {
      this.byAddress.delete(address);
      this.emit({ t: 'close', address, reason: 'expired' });
      return null;
    }
    if (s.idleMs !== undefined) s.expires = now + s.idleMs;
    return s;
  }

  /**
   * Traffic from an address (a request or tunnel done, in any worker): its idle session lives on.
   * One map read and a number written; nothing allocated.
   */
  seen(address: string, now = Date.now()): void {
    if (this.byAddress.size === 0) return;
    if (address.startsWith('::ffff:') && address.includes('.')) address = address.slice(7);
    const s = this.byAddress.get(address);
    if (s !== undefined && s.idleMs !== undefined && s.expires > now && s.expires < now + s.idleMs) s.expires = now + s.idleMs;
  }

  /** Applies a change made elsewhere (a cluster worker follows its primary's store). */
  apply(c: SessionChange): void {
    if (c.t === 'open') this.byAddress.set(c.session.address, { ...c.session });
    else this.byAddress.delete(c.address);
  }

  /** Drops expired sessions; returns how many. `busy`: addresses with a tunnel open, not idle whatever its age. */
  sweep(now = Date.now(), busy?: (address: string) => boolean): number {
    let n = 0;
    for (const [a, s] of this.byAddress) {
      if (s.idleMs !== undefined && this.follower) continue;
      if (s.idleMs !== undefined && busy?.(a)) s.expires = Math.max(s.expires, now + s.idleMs);
      if (s.expires <= now) {
        this.byAddress.delete(a);
        this.emit({ t: 'close', address: a, reason: 'expired' });
        n++;
      }
    }
    return n;
  }

  list(now = Date.now()): Session[] {
    return [...this.byAddress.values()].filter((s) => s.expires > now).map((s) => ({ ...s }));
  }

  /** Sessions held, expired ones not yet swept included (0 = nobody to look up). */
  get size(): number {
    return this.byAddress.size;
  }

  /** Live sessions (the metrics gauge). */
  active(now = Date.now()): number {
    let n = 0;
    for (const s of this.byAddress.values()) if (s.expires > now) n++;
    return n;
  }
}
