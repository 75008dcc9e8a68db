/**
 * The gate: the one place where a connection is admitted, decided, recorded and given its answer.
 * Every entry calls it (the fast path, node's HTTP server behind it, CONNECT on `net.Socket` and on
 * raw handles, and later the transparent and intercepting listeners); an entry only reads its
 * protocol and carries out the Reply. New rules (teacher overrides, SafeSearch retargets,
 * authentication) are steps here, not in the entries.
 *
 * Steps of `enter()`, in order; the first that answers ends it:
 *   1. admit      new work is taken only while the journal can record it: else 503, Retry-After.
 *   2. target     the host must be canonical (read with `parseAbsoluteUrl`, `connectTarget` or
 *                 `canonicalHost`, re-exported below): '' means unreadable → 400; for a
 *                 transparent entry it is decided and recorded instead (invalid-host).
 *   2b. identify  who the client is (src/auth/admit.ts): a session, or, in a network with
 *                 `auth: required`, its Proxy-Authorization checked against LDAP (a promise when the
 *                 directory must be asked: the Reply then waits in `resolve()`); 407 with the
 *                 challenge, 429 or 503 refuse it unrecorded; before a captive-portal login,
 *                 plain HTTP is sent there (302, unrecorded) and TLS gets the network's
 *                 unauthenticatedProfile (none: fail-closed). The user's profile (directory)
 *                 replaces the network's, and the record carries the user's id.
 *   3. decide     `decideCached`: client networks (no-client), the profile, its lists, CONNECT ports.
 *   4. override   a block by the lists or the profile is lifted by a teacher's unblock for the
 *                 client's network (rule 'override'), unless the host is in a non-overridable
 *                 category. A step here rather than data in the snapshot: an unblock changes every
 *                 few minutes and must not rebuild the policy nor empty the decision caches.
 *   4b. ports     plain HTTP only to `httpPorts` (a 'port' block); a transparent TLS connection
 *                 needs a server name, not an address (invalid-host).
 *   4c. safesearch an allowed search or video host of a profile that wants it is located and
 *                 connected as the provider's enforcing host (`connectHost`; the decision carries
 *                 `retarget`, src/policy/safesearch.ts).
 *   5. record     the journal row (ConnectionRecord), for every request and tunnel decided.
 *   6. locate     host map, IP literal or cached DNS answer, synchronously; else `resolve()` later.
 *   7. destination the address actually connected to passes the destination policy
 *                 (src/proxy/destinations.ts): never the gateway's own listeners, never loopback
 *                 or private ranges unless `destinations.allow` opens them (a 'destination' block).
 *
 * Using it:
 *   const r = gate.enter({ client, mode: 'explicit', method, host, port, path, acceptLanguage });
 *   if (r.kind === 'forward' || r.kind === 'tunnel') {
 *     if (r.address === '') gate.resolve(r, user);   // later: user.gated(r), any kind
 *     else connect to r.address (r.family), port r.port
 *   } else answer r.status with r.body (r.html: HTML page, else text; r.retryAfter: add Retry-After)
 *   r.record (null for 400/503 refusals) goes to the journal when the exchange ends.
 * The answer is carried out by the entry that called: a CONNECT blocked here is answered by the
 * entry that read it, never parsed or decided again. Allocation: one Reply and the record.
 */
import { ANONYMOUS, identify, isRefused, type Identification } from '../auth/admit.js';
import type { Identity } from '../auth/identity.js';
import { isIP } from 'node:net';
import type { VigieConfig } from '../config/types.js';
import { canonicalIp, dottedQuad } from '../net/address.js';
import type { OwnListeners } from '../net/own-listeners.js';
import { decideCached } from '../policy/decide.js';
import { retargetFor } from '../policy/snapshot.js';
import { liftable, overridden, OverrideGuard, type OverrideTable } from '../policy/overrides.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { Decision, DecisionRule } from '../policy/types.js';
import { DestinationPolicy } from './destinations.js';
import type { ConnectionRecord, GateMode } from './events.js';
import { blockPage, type BlockLinks, destinationText, errorPage, pickLang, portalPage, problemText, refusedPage, type UpstreamProblem } from './pages.js';
import { blockLinks } from './report.js';
import { ResolveError, type HostResolver } from './resolver.js';
import { newRecord, statusFor, UNRECORDED } from './target.js';

export { canonicalHost, connectTarget, parseAbsoluteUrl } from './target.js';

export type { GateMode } from './events.js';

/** What an entry read from the client: small, so every entry can build it cheaply. */
export interface GateTarget {
  /** The client's address as its socket gives it (IPv4-mapped accepted). */
  readonly client: string;
  readonly mode: GateMode;
  /** `CONNECT` for a tunnel; else the HTTP method forwarded. */
  readonly method: string;
  /** Canonical host (name or IP, see `canonicalHost`); '' when the target could not be read. */
  readonly host: string;
  readonly port: number;
  /** Path and query for plain HTTP; '' for a tunnel. */
  readonly path: string;
  /** For the language of pages; read only when the gate answers itself. */
  readonly acceptLanguage: string | undefined;
  /** The request's Proxy-Authorization, read only where the client's network requires auth. */
  readonly proxyAuthorization?: string | undefined;
}

export type ReplyKind = 'forward' | 'tunnel' | 'block' | 'refuse';

/** The gate's answer, which the entry carries out. */
export class Reply {
  /** Status the proxy answers with itself (block, refuse); 0 while the origin is to answer. */
  status = 0;
  /** The name located and connected to: `host`, or the enforcing host SafeSearch sends it to. */
  connectHost: string;
  /** Where to connect (canonical), once located; '' until then. */
  address = '';
  family: 4 | 6 = 4;
  /** The journal row; null for refusals that are not recorded (400, 503). */
  record: ConnectionRecord | null = null;
  /** The answer's body (block, refuse): an HTML page, or a short text for a tunnel. */
  body = '';
  html = true;
  /** Add `Retry-After` (503: the journal cannot record for now). */
  retryAfter = false;
  /** A 407's `Proxy-Authenticate` value; null otherwise. */
  challenge: string | null = null;
  /** A 302's `Location` (the captive portal); null otherwise. */
  location: string | null = null;
  /** Identification still asking the directory: `resolve()` finishes the steps (with `target`). */
  pending: Promise<Identification> | null = null;
  target: GateTarget | null = null;
  /** An upstream problem (DNS): the entry counts it. */
  problem: UpstreamProblem | null = null;

  constructor(
    public kind: ReplyKind,
    readonly host: string,
    readonly port: number,
    readonly path: string,
    readonly acceptLanguage: string | undefined,
  ) {
    this.connectHost = host;
  }
}

/** The header lines a refusal adds: `Retry-After` (503), `Proxy-Authenticate` (407). */
export function refusalHeaders(r: Reply): string {
  let h = r.retryAfter ? 'Retry-After: 5\r\n' : '';
  if (r.challenge !== null) h += `Proxy-Authenticate: ${r.challenge}\r\n`;
  if (r.location !== null) h += `Location: ${r.location}\r\n`;
  return h;
}

/** Told when `resolve()` has settled a Reply (its kind may have changed). */
export interface GateUser {
  gated(r: Reply): void;
}

export interface GateDeps {
  /** Read per request: a reload replaces them. */
  config(): VigieConfig;
  snapshot(): PolicySnapshot;
  resolver(): HostResolver;
  /** Teachers' unblocks in force (swapped whole on change). */
  overrides(): OverrideTable;
  /** The addresses the proxy listens on (ports bound, for the block page's report form). */
  bound(): readonly { host: string; port: number }[];
  /** false = refuse new work (503). */
  admit(): boolean;
  /** This process's listeners (src/net/own-listeners.ts). */
  readonly own: OwnListeners;
  /** Who is browsing (sessions, LDAP, directory); null = everyone is anonymous. */
  identity?(): Identity | null;
}

/** An allowed decision turned into a block by the gate's own rules; what the lists said is kept for the rest. */
const blockedBy = (d: Decision, rule: DecisionRule): Decision => {
  // A blocked connection goes nowhere: no SafeSearch retarget either.
  const { retarget: _none, ...kept } = d;
  return Object.freeze({ ...kept, action: 'block' as const, rule, category: null, entry: null, matchKind: null });
};

/** Why a tunnel is blocked, in the short text a CONNECT answer carries. */
function tunnelWhy(d: Decision, port: number, detail: string): string {
  if (d.rule === 'no-client') return 'client not allowed';
  if (d.rule === 'port') return `port ${port} not allowed`;
  if (d.rule === 'destination') return `destination refused: ${detail}`;
  return `blocked: profile ${d.profile}, category ${d.category ?? 'none'} (${d.rule})`;
}

export class Gate {
  private policyFor: VigieConfig | null = null;
  private policy: DestinationPolicy | null = null;
  /** Each allowed decision's SafeSearch variant, built once (decisions are cached per host). */
  private readonly retargeted = new WeakMap<Decision, Decision>();
  private guard: OverrideGuard | null = null;
  private links: { config: VigieConfig; links: BlockLinks } | null = null;

  constructor(private readonly deps: GateDeps) {}

  /** The destination policy of the config in force (compiled again after a reload). */
  get destinations(): DestinationPolicy {
    const config = this.deps.config();
    if (config !== this.policyFor || this.policy === null) {
      this.policy = new DestinationPolicy(config, this.deps.own);
      this.policyFor = config;
    }
    return this.policy;
  }

  /** The non-overridable categories compiled for this snapshot and config (again after either changes). */
  guardFor(snapshot: PolicySnapshot): OverrideGuard {
    const names = this.deps.config().overrides.nonOverridable;
    if (this.guard === null || this.guard.snapshot !== snapshot || this.guard.names !== names) this.guard = new OverrideGuard(snapshot, names);
    return this.guard;
  }

  /** Steps 1 to 7 (see above), synchronously; a Reply without `address` waits for `resolve()`. */
  enter(t: GateTarget): Reply {
    const tunnel = t.method === 'CONNECT';
    const r = new Reply(tunnel ? 'tunnel' : 'forward', t.host, t.port, t.path, t.acceptLanguage);
    if (!this.deps.admit()) {
      r.kind = 'refuse';
      r.status = 503;
      r.body = UNRECORDED;
      r.html = false;
      r.retryAfter = true;
      return r;
    }
    // A transparent entry's unreadable target (a ClientHello without a name) is decided and recorded.
    if (!t.host && t.mode !== 'transparent') {
      r.kind = 'refuse';
      r.status = 400;
      const lang = pickLang(t.acceptLanguage);
      r.html = !tunnel;
      r.body = tunnel ? problemText(lang, 'bad-request') + '\n' : errorPage(lang, '', 'bad-request');
      return r;
    }
    const identity = this.deps.identity?.() ?? null;
    let who: Identification = ANONYMOUS;
    if (identity !== null && identity.active) {
      // Only clients of a configured network are identified; the others are no-client blocks below.
      const network = this.deps.snapshot().clients.match(t.client);
      if (network !== null) {
        const i = identify(identity, t, network, this.deps.config().auth);
        if (i instanceof Promise) {
          r.pending = i;
          r.target = t;
          return r;
        }
        who = i;
      }
    }
    return this.decide(r, t, who);
  }

  /** Steps 3 to 7, once the client is identified (or refused). */
  private decide(r: Reply, t: GateTarget, who: Identification): Reply {
    const tunnel = r.kind === 'tunnel';
    if (isRefused(who)) {
      r.kind = 'refuse';
      r.status = who.status;
      r.challenge = who.challenge;
      r.retryAfter = who.status === 503;
      r.location = who.location ?? null;
      r.html = r.location !== null;
      r.body = r.location !== null ? portalPage(pickLang(t.acceptLanguage), r.location) : `Vigie: ${who.reason}\n`;
      return r;
    }
    const started = Date.now();
    const t0 = performance.now();
    const scheme = tunnel ? 'connect' : 'http';
    const snapshot = this.deps.snapshot();
    let decision = decideCached(snapshot, { client: t.client, scheme, host: t.host, port: t.port, path: t.path, time: started }, who.profile);
    if (liftable(decision)) {
      const o = this.deps.overrides().find(t.client, t.host, started);
      if (o !== null && this.guardFor(snapshot).hit(t.host, t.path) === null) decision = overridden(decision, o);
    }
    const destinations = this.destinations;
    if (decision.action === 'allow' && !tunnel && !destinations.httpPort(t.port)) decision = blockedBy(decision, 'port');
    // Not logged in on the portal, and no profile for that: nothing passes.
    if (who.closed === true) decision = blockedBy(decision, 'fail-closed');
    // A transparent TLS connection is connected by its server name: none (or an address) is refused.
    if (decision.action === 'allow' && tunnel && t.mode === 'transparent' && isIP(t.host) !== 0) decision = blockedBy(decision, 'invalid-host');
    if (decision.action === 'allow') decision = this.safeSearch(snapshot, decision, t.host);
    r.connectHost = decision.retarget?.host ?? t.host;
    r.record = newRecord(tunnel ? 'tunnel' : 'request', started, t.client, t.method, scheme, t.host, t.port, t.path, decision, (performance.now() - t0) / 1000, who.user, t.mode);
    if (decision.action === 'block') return this.block(r, '');
    const known = this.deps.resolver().peek(r.connectHost);
    if (known === undefined) return r;
    if (known instanceof ResolveError) return this.fail(r, 'dns');
    return this.place(r, known.address);
  }

  /** Step 6 for a name not in the resolver's cache, then step 7; `user.gated(r)` once settled. */
  resolve(r: Reply, user: GateUser): void {
    const pending = r.pending;
    if (pending !== null) {
      r.pending = null;
      const settle = (who: Identification) => {
        this.decide(r, r.target!, who);
        r.target = null;
        if ((r.kind === 'forward' || r.kind === 'tunnel') && r.address === '') this.resolve(r, user);
        else user.gated(r);
      };
      pending.then(settle, () => settle({ status: 503, challenge: null, reason: 'the school directory cannot check logins right now' }));
      return;
    }
    this.deps.resolver().resolve(r.connectHost).then(
      (a) => user.gated(this.place(r, a.address)),
      (e: unknown) => user.gated(this.fail(r, e instanceof ResolveError ? 'dns' : 'unreachable')),
    );
  }

  /** The SafeSearch step: an allowed search or video host goes to its provider's enforcing address. */
  private safeSearch(snapshot: PolicySnapshot, d: Decision, host: string): Decision {
    const to = retargetFor(snapshot, d.profile, host);
    if (to === null) return d;
    let out = this.retargeted.get(d);
    if (out === undefined || out.retarget !== to) {
      out = Object.freeze({ ...d, retarget: to });
      this.retargeted.set(d, out);
    }
    return out;
  }

  /** Step 7: the address the connection would go to, checked and kept (so the connect uses that very one). */
  private place(r: Reply, found: string): Reply {
    const address = dottedQuad(found) >= 0 ? found : (canonicalIp(found) ?? found);
    const why = this.destinations.check(address, r.port);
    if (why !== null) {
      const rec = r.record!;
      rec.decision = blockedBy(rec.decision, 'destination');
      return this.block(r, destinationText(pickLang(r.acceptLanguage), address, r.port, why));
    }
    r.address = address;
    r.family = address.includes(':') ? 6 : 4;
    return r;
  }

  private block(r: Reply, detail: string): Reply {
    const d = r.record!.decision;
    r.kind = 'block';
    r.status = 403;
    if (r.record!.kind === 'tunnel') {
      r.html = false;
      r.body = `Vigie: ${tunnelWhy(d, r.port, detail)}\n`;
    } else {
      const lang = pickLang(r.acceptLanguage);
      r.body = d.rule === 'no-client' ? refusedPage(lang) : blockPage(lang, r.host, d, detail, this.linksFor(d, r));
    }
    return r;
  }

  /** The block page's report form, and for a block a teacher may lift, the console's prefilled unblock form (also for src/proxy/intercept.ts). */
  linksFor(d: Decision, r: Reply): BlockLinks {
    const config = this.deps.config();
    if (this.links === null || this.links.config !== config) this.links = { config, links: blockLinks(config, this.deps.bound()[0]) };
    const base = this.links.links;
    const client = r.record!.client;
    const network = liftable(d) && this.guardFor(this.deps.snapshot()).hit(r.host, r.path) === null ? this.deps.snapshot().clients.match(client)?.network : undefined;
    return { report: base.report, unblock: network && base.unblock ? `${base.unblock}#/overrides/new?host=${encodeURIComponent(r.host)}&network=${encodeURIComponent(network)}` : null };
  }

  /** The origin cannot be located (DNS): recorded with its cause, answered with an error page. */
  private fail(r: Reply, problem: UpstreamProblem): Reply {
    const rec = r.record!;
    const lang = pickLang(r.acceptLanguage);
    rec.problem = problem;
    r.kind = 'refuse';
    r.problem = problem;
    r.status = statusFor(problem);
    if (rec.kind === 'tunnel') {
      r.html = false;
      r.body = problemText(lang, problem) + '\n';
    } else r.body = errorPage(lang, rec.host, problem);
    return r;
  }
}
