import type { Retarget } from './safesearch.js';

/** What the data plane asks the policy. Hosts arrive normalised (see lists/normalize.ts). */
export interface DecisionRequest {
  /** Client address as seen on the socket (IPv4-mapped IPv6 accepted). */
  readonly client: string;
  /** `http` for a forwarded request, `connect` for a tunnel. */
  readonly scheme: 'http' | 'connect';
  readonly host: string;
  readonly port: number;
  /** Path and query for http (`/a/b?c`); '' for connect. */
  readonly path: string;
  /** Request time, ms since the epoch: schedules depend on it. */
  readonly time: number;
}

/**
 * Why a decision was taken. Stable identifiers: they go into the journal, the metrics and the API.
 * - no-client: the source address is in no configured client network
 * - port: CONNECT, or plain HTTP, to a port that is not allowed
 * - destination: the address connected to is internal or reserved (the gateway's own services,
 *   loopback, private ranges, link-local...): the proxy's destination policy, after the lists
 * - invalid-host: the host cannot be normalised
 * - fail-closed: no list set is loaded yet (only allow entries pass)
 * - profile-allow / profile-deny: the profile's own entries
 * - list-allow / list-deny: an academy list referenced by the profile
 * - category: a blocked category matched (blocklist mode)
 * - default: nothing matched (blocklist mode)
 * - allowlist: an allowed category matched (allowlist mode)
 * - allowlist-only: nothing matched (allowlist mode)
 * - override: blocked by the lists or the profile, opened by a teacher's temporary unblock for the
 *   client's network (set by the gate, never by `decide`; `category` keeps what was lifted)
 */
export type DecisionRule =
  | 'no-client'
  | 'port'
  | 'destination'
  | 'invalid-host'
  | 'fail-closed'
  | 'profile-allow'
  | 'profile-deny'
  | 'list-allow'
  | 'list-deny'
  | 'category'
  | 'default'
  | 'allowlist'
  | 'allowlist-only'
  | 'override';

export interface Decision {
  readonly action: 'allow' | 'block';
  /**
   * Set by the gate on an allow that SafeSearch sends elsewhere (src/policy/safesearch.ts): the
   * enforcing host connected to instead of `host`. Absent otherwise (and from `decide`).
   */
  readonly retarget?: Retarget;
  /** The client's profile; null when the client is not ours. */
  readonly profile: string | null;
  /** The UT1 category or academy list that decided; null when none did. */
  readonly category: string | null;
  /**
   * The list the matching entry came from: `ut1`, `extra/NAME` (lists/extra/), an academy list's
   * name, or `profile:ID` for a profile's own entries; null when no entry matched. Always set by
   * decide(); optional so that decisions built elsewhere (tests, relayed copies) stay valid.
   */
  readonly list?: string | null;
  readonly rule: DecisionRule;
  /** The list entry that matched (domain, host/path prefix or regex); null when none did. */
  readonly entry: string | null;
  readonly matchKind: 'domain' | 'url' | 'expression' | null;
  /** Which of the profile's rule sets applied: `within` its time window, `otherwise`, or `always`. */
  readonly period: 'always' | 'within' | 'otherwise';
  readonly listVersion: string;
  readonly policyVersion: number;
}
