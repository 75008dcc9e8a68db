import { domainToASCII } from 'node:url';
import { isIP } from 'node:net';

const NUMERIC_TLD = /(^|\.)[0-9]+$/;

/**
 * Lower-case letters, digits, '.', '_' and '-' only: what a normalised hostname may hold without
 * going through the IDN converter. A loop, not a regex: this runs for every request.
 */
function isPlainHost(h: string): boolean {
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    if (!((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 46 || c === 95 || c === 45)) return false;
  }
  return true;
}

/**
 * Normalises a hostname the way the lists are written: lower case, no trailing dot,
 * IDN as punycode, IPv6 literals without brackets. Returns '' for a name that cannot be valid.
 * The common case (already plain ASCII) allocates nothing more than the lower-casing.
 */
export function normalizeHost(raw: string): string {
  let host = raw;
  if (host.length === 0 || host.length > 255) return '';
  if (host.charCodeAt(0) === 91 /* [ */) {
    if (host.charCodeAt(host.length - 1) !== 93) return '';
    host = host.slice(1, -1).toLowerCase();
    return isIP(host) === 6 ? host : '';
  }
  while (host.endsWith('.')) host = host.slice(0, -1);
  if (host.length === 0) return '';
  host = host.toLowerCase();
  if (isPlainHost(host)) {
    if (host.includes('..') || host.startsWith('.')) return '';
    // As in browsers (WHATWG URL), a name ending in a number must be a whole IPv4 address.
    const last = host.charCodeAt(host.length - 1);
    if (last >= 48 && last <= 57 && NUMERIC_TLD.test(host) && isIP(host) !== 4) return '';
    return host;
  }
  if (host.includes(':')) return isIP(host) === 6 ? host : '';
  const ascii = domainToASCII(host);
  return ascii ? ascii.toLowerCase() : '';
}

export function isIpLiteral(host: string): boolean {
  return isIP(host) !== 0;
}

/** squidGuard strips a leading `www.` / `wwwN.` from url entries and from the request alike. */
export function stripWww(host: string): string {
  if (!host.startsWith('www')) return host;
  let i = 3;
  while (i < host.length && host.charCodeAt(i) >= 48 && host.charCodeAt(i) <= 57) i++;
  return host.charCodeAt(i) === 46 /* . */ ? host.slice(i + 1) : host;
}

/**
 * Normalises a url entry or request to squidGuard's `host/path` form: no scheme, no port,
 * lower-case host without leading `www.`, path kept as written (lists are lower case already).
 */
export function normalizeUrlEntry(raw: string): { host: string; path: string } | null {
  let s = raw.trim();
  const scheme = s.indexOf('://');
  if (scheme !== -1) s = s.slice(scheme + 3);
  const slash = s.indexOf('/');
  let hostPort = slash === -1 ? s : s.slice(0, slash);
  const path = slash === -1 ? '/' : s.slice(slash);
  if (hostPort.startsWith('[')) {
    const end = hostPort.indexOf(']');
    hostPort = end === -1 ? '' : hostPort.slice(0, end + 1);
  } else {
    const colon = hostPort.lastIndexOf(':');
    if (colon !== -1) hostPort = hostPort.slice(0, colon);
  }
  const host = normalizeHost(hostPort);
  if (!host) return null;
  return { host: stripWww(host), path: path.toLowerCase() };
}

/** Hostname syntax check for list entries (after normalisation). */
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
export function isValidHostEntry(host: string): boolean {
  if (!host) return false;
  if (isIP(host)) return true;
  if (host.length > 253) return false;
  const labels = host.split('.');
  for (const l of labels) if (!LABEL.test(l)) return false;
  return true;
}

export { expressionProblem } from './expressions.js';

/** Where stripWww's result starts: after a leading `www.` / `wwwN.`, else 0. */
export function wwwEnd(host: string): number {
  const n = host.length;
  if (n > 3 && host.charCodeAt(0) === 119 && host.charCodeAt(1) === 119 && host.charCodeAt(2) === 119) {
    let j = 3;
    let c = host.charCodeAt(j);
    while (c >= 48 && c <= 57 && j < n - 1) c = host.charCodeAt(++j);
    if (c === 46 && j < n - 1) return j + 1;
  }
  return 0;
}
