import { normalizeHost } from '../lists/normalize.js';
import { canonicalIp } from '../net/address.js';
import type { Decision } from '../policy/types.js';
import type { ConnectionRecord } from './events.js';
import type { UpstreamProblem } from './pages.js';

export interface Target {
  host: string;
  port: number;
  path: string;
  /** The Host header to send: the request-target's authority. */
  authority: string;
}

/**
 * The one spelling of a request's host, what the decision, the journal and the connect all use:
 * an IP literal in any form (IPv4 as the WHATWG URL parser reads it, IPv6 with or without
 * brackets, IPv4-mapped IPv6 as IPv4) becomes its canonical address; a name is lower-cased, IDN as
 * punycode, without trailing dots. '' when it cannot be valid (zone ids included).
 */
export function canonicalHost(raw: string): string {
  const ip = canonicalIp(raw);
  return ip !== null ? ip : normalizeHost(raw);
}

/** Decimal digits only (no sign, space, `0x` or exponent, which Number() would take), 1 to 65535; else 0. */
function parsePort(s: string, from: number): number {
  if (s.length - from < 1 || s.length - from > 5) return 0;
  let v = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return 0;
    v = v * 10 + c - 48;
  }
  return v;
}

/** Splits `host[:port]` (IPv6 in brackets) as found in a request line; the host comes back canonical. */
export function splitAuthority(authority: string, defaultPort: number): { host: string; port: number } | null {
  let host = authority;
  let port = defaultPort;
  const at = host.lastIndexOf('@');
  if (at !== -1) host = host.slice(at + 1);
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end === -1) return null;
    const rest = host.slice(end + 1);
    host = host.slice(0, end + 1);
    if (rest) {
      if (!rest.startsWith(':')) return null;
      port = parsePort(rest, 1);
    }
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) {
      port = parsePort(host, colon + 1);
      host = host.slice(0, colon);
    }
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  const normalized = canonicalHost(host);
  if (!normalized) return null;
  return { host: normalized, port };
}

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

/** Parses an absolute-form `http://authority/path?query` request target. */
export function parseAbsoluteUrl(url: string): Target | null {
  if (url.length < 8 || url.charCodeAt(4) !== 58 /* : */ || url.slice(0, 7).toLowerCase() !== 'http://') return null;
  let end = url.indexOf('/', 7);
  const q = url.indexOf('?', 7);
  if (q !== -1 && (end === -1 || q < end)) end = q;
  const authority = end === -1 ? url.slice(7) : url.slice(7, end);
  let path = end === -1 ? '/' : url.slice(end);
  if (path.charCodeAt(0) === 63 /* ? */) path = `/${path}`;
  const hash = path.indexOf('#');
  if (hash !== -1) path = path.slice(0, hash);
  const hp = splitAuthority(authority, 80);
  if (!hp) return null;
  return { host: hp.host, port: hp.port, path, authority: authority.slice(authority.lastIndexOf('@') + 1) };
}

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

export function newRecord(kind: ConnectionRecord['kind'], time: number, client: string, method: string, scheme: ConnectionRecord['scheme'], host: string, port: number, path: string, decision: Decision, decisionSeconds: number, user: string | null = null): ConnectionRecord {
  return { kind, time, client, user, method, scheme, host, port, path, decision, status: 0, bytesIn: 0, bytesOut: 0, durationMs: 0, problem: null, decisionSeconds };
}
