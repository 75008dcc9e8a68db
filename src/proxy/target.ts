import type { Decision } from '../policy/types.js';
import type { ConnectionRecord, GateMode } from './events.js';
import type { UpstreamProblem } from './pages.js';

// Request-target parsing is shared with the decision explainers (API, CLI): it lives in the policy layer.
export { canonicalHost, parseAbsoluteUrl, splitAuthority, type Target } from '../policy/request.js';
import { splitAuthority } from '../policy/request.js';

/** `...:digits` at the end (a CONNECT target must name its port). */
function endsWithPort(target: string): boolean {
  let i = target.length - 1;
  while (i >= 0 && target.charCodeAt(i) >= 48 && target.charCodeAt(i) <= 57) i--;
  return i < target.length - 1 && i >= 0 && target.charCodeAt(i) === 58;
}

/** A CONNECT request-target: authority-form only (no userinfo), port included (RFC 9110 §9.3.6); null if not. */
export function connectTarget(target: string): { host: string; port: number } | null {
  return endsWithPort(target) && !target.includes('/') && !target.includes('@') ? splitAuthority(target, 443) : null;
}

/** The answer that opens a tunnel. */
export const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection Established\r\n\r\n', 'latin1');

/** The error a connection attempt is destroyed with at the connect limit (classified 'connect-timeout'). */
export const connectTimeout = (): NodeJS.ErrnoException => Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' });

/** The errors node's TLS client gives for a certificate it does not accept (OpenSSL's verify codes and the name check). */
const CERTIFICATE_ERRORS: ReadonlySet<string> = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_FORMAT',
]);

/** What went wrong with an origin connection, in the journal's and the pages' terms (plain or TLS). */
export function classify(err: NodeJS.ErrnoException): UpstreamProblem {
  if (err.code !== undefined && CERTIFICATE_ERRORS.has(err.code)) return 'certificate';
  switch (err.code) {
    case 'ERESPONSETIMEOUT':
      return 'response-timeout';
    case 'ECONNREFUSED':
      return 'refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return 'unreachable';
    case 'ETIMEDOUT':
      return 'connect-timeout';
    default:
      return 'reset';
  }
}

export const statusFor = (p: UpstreamProblem): number => (p === 'connect-timeout' || p === 'response-timeout' ? 504 : p === 'bad-request' ? 400 : 502);

/** Said when new work is refused because it could not be recorded (journal overflow policy `block`). */
export const UNRECORDED =
  'Vigie : le journal des connexions ne peut pas enregistrer pour le moment ; les nouvelles connexions sont refusées. Réessayez dans un instant.\n' +
  'Vigie: the connection journal cannot record right now, so new connections are refused. Try again shortly.\n';

export function newRecord(kind: ConnectionRecord['kind'], time: number, client: string, method: string, scheme: ConnectionRecord['scheme'], host: string, port: number, path: string, decision: Decision, decisionSeconds: number, user: string | null = null, mode: GateMode = 'explicit'): ConnectionRecord {
  return { kind, time, client, user, method, scheme, host, port, path, decision, status: 0, bytesIn: 0, bytesOut: 0, durationMs: 0, problem: null, decisionSeconds, mode };
}
