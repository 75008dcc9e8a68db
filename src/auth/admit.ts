import type { ClientNetwork } from '../policy/clients.js';
import { challenge, parseBasic } from './basic.js';
import type { Identity } from './identity.js';
import type { AuthResult } from './ldap.js';

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
}

export interface Refused {
  /** 407: credentials missing or wrong (with the challenge); 429: too many failures; 503: directory unreachable. */
  readonly status: 407 | 429 | 503;
  readonly challenge: string | null;
  readonly reason: string;
}

export type Identification = Identified | Refused;

export const ANONYMOUS: Identified = Object.freeze({ user: null, profile: undefined });

export const isRefused = (i: Identification): i is Refused => 'status' in i;

function identified(identity: Identity, login: string, r: Extract<AuthResult, { ok: true }>): Identified {
  const user = identity.userIdFor(login, r.id);
  return { user, profile: identity.profileOf(user) ?? undefined };
}

export function identify(identity: Identity, client: string, network: ClientNetwork, header: string | undefined, realm: string): Identification | Promise<Identification> {
  const session = identity.sessions.lookup(client);
  if (session) return { user: session.user, profile: identity.profileOf(session.user) ?? undefined };
  const verifier = identity.verifier;
  if (network.auth !== 'required' || !verifier) return ANONYMOUS;
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
