import type { AuthConfig } from '../config/types.js';
import type { ClientNetwork } from '../policy/clients.js';
import { challenge, parseBasic } from './basic.js';
import type { Identity } from './identity.js';
import type { AuthResult } from './ldap.js';
import { requestedUrl } from './portal-link.js';

/**
 * The identification step of the gate's admission, for a client already known to be in one of the
 * configured networks: who it is (a session, or `Proxy-Authorization: Basic` checked against the
 * directory where the network requires it) and the profile that gives. Synchronous when it can be
 * (no auth, a session, a cached check), a promise only when the LDAP directory must be asked.
 */

export interface Identified {
  /** The directory id (or the login when the directory does not know them); null = anonymous. */
  readonly user: string | null;
  /** The user's profile from the directory; undefined = the network's profile applies. */
  readonly profile: string | undefined;
  /** Not logged in on the portal yet, and the network names no profile for that: whatever is decided, blocked. */
  readonly closed?: true;
}

export interface Refused {
  /**
   * 407: credentials missing or wrong (with the challenge); 429: too many failures; 503: directory
   * unreachable; 302: not logged in on the captive portal yet (to `location`).
   */
  readonly status: 302 | 407 | 429 | 503;
  readonly challenge: string | null;
  readonly reason: string;
  readonly location?: string;
}

/** What identification reads of a request (the gate's GateTarget has it all). */
export interface IdentifyTarget {
  readonly client: string;
  readonly mode: 'explicit' | 'transparent' | 'intercepted';
  readonly method: string;
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly proxyAuthorization?: string | undefined;
}

export type Identification = Identified | Refused;

export const ANONYMOUS: Identified = Object.freeze({ user: null, profile: undefined });

export const isRefused = (i: Identification): i is Refused => 'status' in i;

function identified(identity: Identity, login: string, r: Extract<AuthResult, { ok: true }>): Identified {
  const user = identity.userIdFor(login, r.id);
  return { user, profile: identity.profileOf(user) ?? undefined };
}

const UNAUTHENTICATED_CLOSED: Identified = Object.freeze({ user: null, profile: undefined, closed: true });

/**
 * Before a portal login: plain HTTP goes to the portal (302, with the URL to come back to, signed);
 * a TLS connection (SNI or CONNECT), which cannot be redirected without interception, gets the
 * network's `unauthenticatedProfile`, and is blocked when there is none (fail closed).
 */
function beforePortalLogin(identity: Identity, t: IdentifyTarget, network: ClientNetwork): Identification {
  if (t.method === 'CONNECT') return network.unauthenticatedProfile !== null ? { user: null, profile: network.unauthenticatedProfile } : UNAUTHENTICATED_CLOSED;
  if (identity.portal.base === null) return { status: 503, challenge: null, reason: 'the login portal is not running' };
  return { status: 302, challenge: null, reason: 'log in first', location: identity.portal.loginUrl(requestedUrl(t.host, t.port, t.path)) };
}

export function identify(identity: Identity, t: IdentifyTarget, network: ClientNetwork, auth: AuthConfig): Identification | Promise<Identification> {
  const client = t.client;
  const session = identity.sessions.lookup(client);
  if (session) return { user: session.user, profile: identity.profileOf(session.user) ?? undefined };
  const verifier = identity.verifier;
  if (network.auth !== 'required' || !verifier) return ANONYMOUS;
  const header = t.proxyAuthorization;
  const portal = auth.portal;
  // Transparent clients cannot answer a 407; explicit ones go to the portal too where the config says so.
  if (portal !== null && (t.mode !== 'explicit' || (portal.explicit === 'portal' && !header))) return beforePortalLogin(identity, t, network);
  const realm = auth.realm;
  const creds = parseBasic(header);
  if (!creds) return { status: 407, challenge: challenge(realm), reason: header ? 'unusable credentials' : 'credentials required' };
  const hit = verifier.cached(client, creds.login, creds.password);
  if (hit?.ok) return identified(identity, creds.login, hit);
  return verifier.verify(client, creds.login, creds.password).then((r): Identification => {
    if (r.ok) return identified(identity, creds.login, r);
    if (r.outcome === 'rate-limited') return { status: 429, challenge: null, reason: 'too many failed logins from this address; wait a minute' };
    if (r.outcome === 'unavailable') return { status: 503, challenge: null, reason: 'the school directory cannot check logins right now' };
    return { status: 407, challenge: challenge(realm), reason: 'wrong login or password' };
  });
}
