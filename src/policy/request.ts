import { normalizeHost } from '../lists/normalize.js';
import { canonicalIp } from '../net/address.js';
import type { DecisionRequest } from './types.js';

/** Where a request goes, as its request line says. */
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

/** `URL` as the gateway would see it: plain http keeps its path, https is a CONNECT to host:port. */
export function requestFor(url: string, client: string, time: number): DecisionRequest {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  const scheme = m ? m[1]!.toLowerCase() : 'http';
  if (scheme === 'https') {
    const rest = url.slice(m![0].length);
    const authority = rest.split(/[/?#]/, 1)[0]!;
    const hp = splitAuthority(authority, 443);
    return { client, scheme: 'connect', host: hp?.host ?? '', port: hp?.port ?? 443, path: '', time };
  }
  const target = parseAbsoluteUrl(m ? `http://${url.slice(m[0].length)}` : `http://${url}`);
  return { client, scheme: 'http', host: target?.host ?? '', port: target?.port ?? 80, path: target?.path ?? '/', time };
}
