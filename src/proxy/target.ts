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

export function classify(err: NodeJS.ErrnoException): UpstreamProblem {
  switch (err.code) {
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
