import ipaddr from 'ipaddr.js';

/**
 * IP addresses and networks, below everything else (config, policy and proxy all use it): one
 * reading of an IP literal in whatever form it comes, so that a list entry, a decision and a
 * connect never see two spellings of one address.
 */

export type Addr = ipaddr.IPv4 | ipaddr.IPv6;

/** Parses `a.b.c.d/n`, `::/n` or a bare address; an IPv4-mapped IPv6 range becomes IPv4. Throws with the reason. */
export function parseNetwork(network: string): [Addr, number] {
  if (network.includes('/')) {
    const [addr, bits] = ipaddr.parseCIDR(network);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
      return [(addr as ipaddr.IPv6).toIPv4Address(), bits - 96];
    }
    return [addr, bits];
  }
  const addr = ipaddr.process(network);
  return [addr, addr.kind() === 'ipv4' ? 32 : 128];
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isHex = (c: number): boolean => isDigit(c) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);

/**
 * WHATWG URL's "ends in a number": the last label is all digits, or `0x` and hex digits. Such a
 * host is an IPv4 address or invalid, never a name. `host` has no trailing dot. Allocation-free.
 */
export function endsInNumber(host: string): boolean {
  const n = host.length;
  if (n === 0) return false;
  const last = host.charCodeAt(n - 1);
  // The common case, a name ending in a letter other than a-f: one comparison.
  if (!isHex(last) && last !== 120 && last !== 88) return false;
  const start = host.lastIndexOf('.') + 1;
  if (start === n) return false;
  let digits = true;
  for (let i = start; i < n; i++) if (!isDigit(host.charCodeAt(i))) digits = false;
  if (digits) return true;
  if (n - start < 2 || host.charCodeAt(start) !== 48 || (host.charCodeAt(start + 1) | 0x20) !== 120) return false;
  for (let i = start + 2; i < n; i++) if (!isHex(host.charCodeAt(i))) return false;
  return true;
}

/** One part of an IPv4 host as WHATWG reads it: `0x..` hex, `0..` octal, else decimal; -1 if invalid. */
function ipv4Number(s: string, from: number, to: number): number {
  if (from === to) return -1;
  let radix = 10;
  if (to - from >= 2 && s.charCodeAt(from) === 48 && (s.charCodeAt(from + 1) | 0x20) === 120) {
    radix = 16;
    from += 2;
  } else if (to - from >= 2 && s.charCodeAt(from) === 48) {
    radix = 8;
    from += 1;
  }
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    const d = isDigit(c) ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : 99;
    if (d >= radix) return -1;
    v = v * radix + d;
    // Past 2^32 nothing is valid: stop before the number loses precision.
    if (v > 0xffffffff) return -1;
  }
  return v;
}

/**
 * Reads an IPv4 host in any form the WHATWG URL parser accepts (`127.0.0.1`, `2130706433`,
 * `0x7f000001`, `0177.0.0.1`, `127.1`) as a 32-bit number; -1 when it is not a valid one.
 * `host` has no trailing dot.
 */
export function parseIPv4(host: string): number {
  const parts: number[] = [];
  let from = 0;
  for (;;) {
    const dot = host.indexOf('.', from);
    const to = dot === -1 ? host.length : dot;
    const v = ipv4Number(host, from, to);
    if (v < 0 || parts.length === 4) return -1;
    parts.push(v);
    if (dot === -1) break;
    from = dot + 1;
  }
  const n = parts.length;
  let value = parts[n - 1]!;
  if (value >= 256 ** (5 - n)) return -1;
  for (let i = 0; i < n - 1; i++) {
    if (parts[i]! > 255) return -1;
    value += parts[i]! * 256 ** (3 - i);
  }
  return value;
}

export const ipv4ToString = (v: number): string => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;

/** A canonical dotted quad (as `canonicalIp` writes them: decimal, no leading zero) as a 32-bit number; -1 when it is not one. */
export function dottedQuad(s: string): number {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else if (isDigit(c) && digits < 3 && !(digits === 1 && part === 0)) {
      part = part * 10 + c - 48;
      digits++;
      if (part > 255) return -1;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return value * 256 + part;
}

/**
 * The one spelling of an IPv6 address: IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible
 * (`::a.b.c.d`, but not `::` or `::1`) addresses become the IPv4 address they carry; the others
 * their RFC 5952 form (lower case, longest zero run compressed).
 */
export function canonicalIPv6(a: ipaddr.IPv6): string {
  const p = a.parts;
  if (p[0] === 0 && p[1] === 0 && p[2] === 0 && p[3] === 0 && p[4] === 0) {
    const v4 = p[6]! * 65536 + p[7]!;
    if (p[5] === 0xffff || (p[5] === 0 && v4 > 1)) return ipv4ToString(v4);
  }
  return a.toRFC5952String();
}

/**
 * The canonical text of an IP literal as found in a URL host, a Host header, a CONNECT target, a
 * host map or a DNS answer: IPv6 in brackets or not, IPv4 in any WHATWG form, trailing dots
 * ignored. Returns null when `host` is a name (not an IP literal), '' when it is an invalid one
 * (a zone id, an IPv4 form out of range, a number-ending name that is no address).
 */
export function canonicalIp(host: string): string | null {
  let h = host;
  if (h.charCodeAt(0) === 91 /* [ */) {
    if (h.charCodeAt(h.length - 1) !== 93) return '';
    h = h.slice(1, -1);
  } else {
    let end = h.length;
    while (end > 0 && h.charCodeAt(end - 1) === 46) end--;
    if (end !== h.length) h = h.slice(0, end);
    if (endsInNumber(h)) {
      // `::ffff:1.2.3.4` ends in a number too, but is IPv6 (a host map or a DNS answer).
      if (!h.includes(':')) {
        const v = parseIPv4(h);
        return v < 0 ? '' : ipv4ToString(v);
      }
    } else if (!h.includes(':')) return null;
  }
  // Zone ids name an interface of this machine: never a destination for a client.
  if (h.includes('%') || !ipaddr.IPv6.isValid(h)) return '';
  return canonicalIPv6(ipaddr.IPv6.parse(h));
}

/** Why an address is special for the destination policy, or null for an ordinary public one. */
export type AddressClass = 'unspecified' | 'loopback' | 'private' | 'link-local' | 'multicast' | 'broadcast';

export const maskOf = (bits: number): number => (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0);

/**
 * The class of an IPv4 address given as a 32-bit number: 0.0.0.0/8 unspecified, 127.0.0.0/8
 * loopback, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 and 100.64.0.0/10 private, 169.254.0.0/16
 * link-local, 224.0.0.0/4 multicast, 255.255.255.255 broadcast. By first octet: one branch for
 * most addresses (this runs for every request).
 */
export function classifyIPv4(v: number): AddressClass | null {
  const a = v >>> 24;
  const b = (v >>> 16) & 255;
  switch (a) {
    case 0:
      return 'unspecified';
    case 127:
      return 'loopback';
    case 10:
      return 'private';
    case 172:
      return (b & 0xf0) === 16 ? 'private' : null;
    case 192:
      return b === 168 ? 'private' : null;
    case 100:
      return (b & 0xc0) === 64 ? 'private' : null;
    case 169:
      return b === 254 ? 'link-local' : null;
    case 255:
      return v === 0xffffffff ? 'broadcast' : null;
  }
  return a >= 224 && a < 240 ? 'multicast' : null;
}

/** The class of an IPv6 address (already canonical: a mapped one would be IPv4). */
export function classifyIPv6(a: ipaddr.IPv6): AddressClass | null {
  switch (a.range()) {
    case 'unspecified':
      return 'unspecified';
    case 'loopback':
      return 'loopback';
    case 'uniqueLocal':
      return 'private';
    case 'linkLocal':
      return 'link-local';
    case 'multicast':
      return 'multicast';
  }
  // Site-local (fec0::/10, deprecated): private networks of old.
  return (a.parts[0]! & 0xffc0) === 0xfec0 ? 'private' : null;
}
