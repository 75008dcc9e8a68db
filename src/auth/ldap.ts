import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { LRUCache } from 'lru-cache';
import type { AuthConfig, LdapConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { LOGIN } from './basic.js';

/**
 * Checks a login and password with an LDAP bind against the school's directory (Scribe, AD, an
 * academy LDAP): either straight to a DN built from a template, or by finding the entry first with
 * a filter. Successes are remembered briefly (keyed by an HMAC of login and password under a key
 * that lives only in this process, so the cache holds no usable secret); failures are counted per
 * client address, and past the limit the directory is not asked at all for a minute.
 */

export type AuthOutcome = 'ok' | 'cached' | 'invalid' | 'rate-limited' | 'unavailable';

export type AuthResult =
  | { ok: true; outcome: 'ok' | 'cached'; login: string; /** The AAF id the entry carries (idAttribute), if any. */ id: string | null }
  | { ok: false; outcome: 'invalid' | 'rate-limited' | 'unavailable' };

type Answer = { login: string; id: string | null } | 'invalid' | 'unavailable';

/** RFC 4515: a value inside a search filter. */
export const escapeFilterValue = (v: string): string => v.replace(/[\\*()\x00]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

/** RFC 4514: a value inside a DN. */
export const escapeDnValue = (v: string): string =>
  v.replace(/[,+"\\<>;=\x00]/g, (c) => `\\${c}`).replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ');

/** `AC-VERSAILLES$1234567` (ENTPersonJointure) → `1234567`; a bare id stays as it is. */
const aafIdOf = (v: string): string => v.slice(v.lastIndexOf('$') + 1);

/** Failures are counted over this long from the first one (`failuresPerMinute`). */
const WINDOW_MS = 60_000;

/** Waits for a free slot: at most `limit` binds at once, and at most `queue` waiting. */
class Slots {
  private busy = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number, private readonly queue: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T | null> {
    if (this.busy >= this.limit) {
      if (this.waiting.length >= this.queue) return null;
      await new Promise<void>((r) => this.waiting.push(r));
    }
    this.busy++;
    try {
      return await fn();
    } finally {
      this.busy--;
      this.waiting.shift()?.();
    }
  }
}

export class LdapVerifier {
  /** Checks by outcome since start (the metrics read them). */
  readonly counts: Record<AuthOutcome, number> = { ok: 0, cached: 0, invalid: 0, 'rate-limited': 0, unavailable: 0 };
  /** Told each check counted (a cluster worker relays them to the primary's metrics). */
  onCount: ((outcome: AuthOutcome) => void) | null = null;
  /** Told each failure counted here (a cluster worker tells the primary, which counts them all). */
  onFailure: ((client: string) => void) | null = null;
  /** Told when a client reaches the limit, with when it ends (the cluster primary tells every worker). */
  onLimited: ((client: string, until: number) => void) | null = null;
  private readonly key = randomBytes(32);
  private readonly cache: LRUCache<string, { login: string; id: string | null }>;
  /** Failures per client address; `until`: when the window that began at the first one ends. */
  private readonly failures: LRUCache<string, { count: number; until: number }>;
  private readonly inFlight = new Map<string, Promise<Answer>>();
  private readonly slots = new Slots(16, 256);
  private readonly tls: ConnectionOptions;
  private readonly servicePassword: string | null;
  private readonly timeoutMs: number;

  constructor(
    private readonly ldap: LdapConfig,
    private readonly opts: Pick<AuthConfig, 'cacheSeconds' | 'cacheMax' | 'failuresPerMinute'>,
    private readonly log: Logger,
  ) {
    this.cache = new LRUCache({ max: opts.cacheMax, ttl: Math.max(1, opts.cacheSeconds) * 1000 });
    this.failures = new LRUCache({ max: 10_000, ttl: WINDOW_MS });
    this.timeoutMs = ldap.timeoutMs ?? 5000;
    const host = new URL(ldap.url).hostname.replace(/^\[|\]$/g, '');
    // SNI takes names only (RFC 6066); the certificate is still checked against an address.
    this.tls = { ...(isIP(host) ? {} : { servername: host }), ...(ldap.caFile ? { ca: readFileSync(ldap.caFile) } : {}) };
    this.servicePassword = ldap.searchBindPasswordFile ? readFileSync(ldap.searchBindPasswordFile, 'utf8').replace(/\r?\n$/, '') : null;
  }

  private keyOf(login: string, password: string): string {
    return createHmac('sha256', this.key).update(login).update('\0').update(password).digest('base64');
  }

  /**
   * A remembered success, without a promise (the proxy's fast path); null when the directory must
   * be asked. A client over its failures gets no hits either: else it could go on guessing against
   * the cache of those who logged in recently.
   */
  cached(client: string, login: string, password: string): AuthResult | null {
    if (this.opts.cacheSeconds === 0 || this.limited(client)) return null;
    const hit = this.cache.get(this.keyOf(login, password));
    if (!hit) return null;
    this.counts.cached++;
    this.onCount?.('cached');
    return { ok: true, outcome: 'cached', login: hit.login, id: hit.id };
  }

  /** Whether this client is over its failures (checked before asking for credentials again). */
  limited(client: string): boolean {
    const f = this.failures.get(client);
    return !!f && f.count >= this.opts.failuresPerMinute;
  }

  async verify(client: string, login: string, password: string): Promise<AuthResult> {
    if (this.limited(client)) return this.count({ ok: false, outcome: 'rate-limited' });
    const hit = this.cached(client, login, password);
    if (hit) return hit;
    if (!LOGIN.test(login) || !password) return this.fail(client, login, 'malformed login or empty password');
    const key = this.keyOf(login, password);
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.ask(login, password).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    const r = await pending;
    if (r === 'invalid') return this.fail(client, login, 'invalid credentials');
    if (r === 'unavailable') return this.count({ ok: false, outcome: 'unavailable' });
    if (this.opts.cacheSeconds > 0) this.cache.set(key, r);
    return this.count({ ok: true, outcome: 'ok', login: r.login, id: r.id });
  }

  private count<T extends AuthResult>(r: T): T {
    this.counts[r.outcome]++;
    this.onCount?.(r.outcome);
    return r;
  }

  /**
   * Counts one failure of `client` (here, or relayed from a cluster worker). The window starts at
   * the first failure: later ones do not extend it. Reaching the limit is announced once.
   */
  countFailure(client: string, now = Date.now()): void {
    const f = this.failures.get(client);
    if (f) f.count++;
    else this.failures.set(client, { count: 1, until: now + WINDOW_MS });
    const g = f ?? this.failures.get(client)!;
    if (g.count === this.opts.failuresPerMinute) this.onLimited?.(client, g.until);
  }

  /** Another process says `client` reached the limit: no check for it until `until`. */
  limitUntil(client: string, until: number, now = Date.now()): void {
    if (until <= now) return;
    this.failures.set(client, { count: this.opts.failuresPerMinute, until }, { ttl: until - now });
  }

  /** The clients over their limit, with when it ends (for a worker that starts meanwhile). */
  limits(now = Date.now()): [string, number][] {
    const out: [string, number][] = [];
    for (const [client, f] of this.failures.entries()) if (f.count >= this.opts.failuresPerMinute && f.until > now) out.push([client, f.until]);
    return out;
  }

  private fail(client: string, login: string, why: string): AuthResult {
    this.countFailure(client);
    this.onFailure?.(client);
    this.log.warn('auth: refused', { client, login, reason: why });
    return this.count({ ok: false, outcome: 'invalid' });
  }

  /** One check against the directory, on its own connection. */
  private async ask(login: string, password: string): Promise<Answer> {
    // Imported at the first check: a gateway without LDAP (and its proxy threads until one) does without it.
    const { Client, InvalidCredentialsError } = await import('ldapts');
    const r = await this.slots.run(async () => {
      // ldapts speaks TLS from the start whenever it is given tlsOptions: only for ldaps:// URLs.
      const tlsOptions = this.ldap.url.startsWith('ldaps:') ? { tlsOptions: this.tls } : {};
      const client = new Client({ url: this.ldap.url, timeout: this.timeoutMs, connectTimeout: this.timeoutMs, ...tlsOptions });
      // Only the user's own bind failing means wrong credentials; the service account failing is our problem.
      let userBind = false;
      try {
        if (this.ldap.startTls) await client.startTLS(this.tls);
        let dn: string;
        let id: string | null = null;
        if (this.ldap.bindDn) {
          dn = this.ldap.bindDn.replaceAll('{login}', escapeDnValue(login));
        } else {
          if (this.ldap.searchBindDn) await client.bind(this.ldap.searchBindDn, this.servicePassword ?? '');
          const filter = this.ldap.searchFilter!.replaceAll('{login}', escapeFilterValue(login));
          const { searchEntries } = await client.search(this.ldap.searchBase!, { scope: 'sub', filter, sizeLimit: 2, attributes: this.ldap.idAttribute ? [this.ldap.idAttribute] : ['1.1'] });
          if (searchEntries.length !== 1) return 'invalid' as const;
          dn = searchEntries[0]!.dn;
          id = this.idFrom(searchEntries[0]!);
        }
        userBind = true;
        await client.bind(dn, password);
        userBind = false;
        if (this.ldap.idAttribute && id === null) {
          const { searchEntries } = await client.search(dn, { scope: 'base', filter: '(objectClass=*)', attributes: [this.ldap.idAttribute] });
          id = searchEntries[0] ? this.idFrom(searchEntries[0]) : null;
        }
        return { login, id };
      } catch (e) {
        if (userBind && e instanceof InvalidCredentialsError) return 'invalid' as const;
        this.log.error(`auth: the LDAP directory did not answer: ${(e as Error).message}`, { url: this.ldap.url });
        return 'unavailable' as const;
      } finally {
        await client.unbind().catch(() => undefined);
      }
    });
    return r ?? 'unavailable';
  }

  private idFrom(entry: Record<string, unknown>): string | null {
    const v = entry[this.ldap.idAttribute!];
    const first = Array.isArray(v) ? v[0] : v;
    return typeof first === 'string' && first ? aafIdOf(first) : null;
  }
}
