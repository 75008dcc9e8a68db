/**
 * Just enough HTTP/1.1 for the proxy's fast path (src/proxy/client-connection.ts): the request and response
 * heads it rewrites, and the chunked framing it must follow to find where a response ends.
 * Anything these parsers do not fully understand is not guessed at: a request head comes back
 * null and goes to node's own parser (the node:http path), a response head comes back as an error (502).
 * Pure functions over latin1 strings (one char per byte), testable without sockets.
 */

import { http } from '../net/http.js';
import { HOP_BY_HOP } from './headers.js';
import { DIRTY, TOKEN } from './http-bytes.js';

export { cleanHead } from './http-bytes.js';
export { ChunkedScanner } from './chunked.js';

export const CRLF2 = Buffer.from('\r\n\r\n');

/** The methods node's parser (llhttp) takes: any other one it refuses, so the fast path never forwards it. */
const METHODS: ReadonlySet<string> = new Set(http.METHODS);

/**
 * A request target the fast path forwards: visible ASCII only (RFC 9112 §3.2; llhttp refuses
 * control bytes, spaces and raw non-ASCII bytes there, and so would an origin). A loop, not a
 * regex: this runs for every request.
 */
function isVisibleAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/** A request head the fast path can forward as it is (apart from the proxy's own rewriting). */
export interface RequestHead {
  method: string;
  /** The request-target as sent (absolute-form for a proxy, authority-form for CONNECT). */
  target: string;
  /** The header lines to forward, each ending in CRLF: hop-by-hop and Host removed, Via added. */
  forward: string;
  /** Body length (Content-Length); 0 when none. */
  contentLength: number;
  /** The client asked to close the connection after this exchange. */
  close: boolean;
  acceptLanguage: string | undefined;
  /** For the gate's identification; never forwarded (hop-by-hop). */
  proxyAuthorization: string | undefined;
  /** The first Host header's value (as node's req.headers.host); never forwarded as it is (replaced from the target). */
  host: string | undefined;
}

/** A response head, rewritten for the client. */
export interface ResponseHead {
  status: number;
  /** `HTTP/1.1 200 OK`-style status line for the client, without CRLF. */
  statusLine: string;
  /** Header lines to send on (CRLF-terminated), hop-by-hop removed except a chunked Transfer-Encoding, Via added. */
  forward: string;
  /** How the body ends: a length, the chunked framing, the connection closing, or no body at all. */
  framing: 'length' | 'chunked' | 'close' | 'none';
  length: number;
  /** The origin lets this connection carry another request. */
  reusable: boolean;
}

/**
 * What the fast path does with a header, by name. The hop-by-hop names come from the one list
 * (HOP_BY_HOP in headers.ts, which node's path uses too): those without a kind of their own
 * below are `HopByHop`, dropped by both head parsers. Adding a name there drops it here.
 */
const enum HeaderKind {
  Other,
  HopByHop,
  Connection,
  ProxyConnection,
  TransferEncoding,
  Upgrade,
  Host,
  Via,
  ContentLength,
  Expect,
  AcceptLanguage,
  ProxyAuthorization,
}

/** Names with handling of their own (the other hop-by-hop names are only dropped). */
const OWN_KIND: readonly (readonly [string, HeaderKind])[] = [
  ['connection', HeaderKind.Connection],
  ['proxy-connection', HeaderKind.ProxyConnection],
  ['transfer-encoding', HeaderKind.TransferEncoding],
  ['upgrade', HeaderKind.Upgrade],
  ['host', HeaderKind.Host],
  ['via', HeaderKind.Via],
  ['content-length', HeaderKind.ContentLength],
  ['expect', HeaderKind.Expect],
  ['accept-language', HeaderKind.AcceptLanguage],
  // Read for the gate's identification step, then dropped like the other hop-by-hop names.
  ['proxy-authorization', HeaderKind.ProxyAuthorization],
];

/** The names above and the hop-by-hop ones, by length: most lines cost one length check and one comparison. */
const BY_LENGTH: (readonly [string, HeaderKind])[][] = [];
for (const entry of [...OWN_KIND, ...[...HOP_BY_HOP].filter((n) => !OWN_KIND.some(([o]) => o === n)).map((n) => [n, HeaderKind.HopByHop] as const)]) {
  (BY_LENGTH[entry[0].length] ??= []).push(entry);
}

/** Does `h` at `at` spell `lower`, ignoring ASCII case? Only called on token characters. */
function eqLower(h: string, at: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((h.charCodeAt(at + i) | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

/** The kind of the header named by h[s, colon), without slicing it: by length first. */
function kind(h: string, s: number, colon: number): HeaderKind {
  const candidates = BY_LENGTH[colon - s];
  if (candidates === undefined) return HeaderKind.Other;
  for (let i = 0; i < candidates.length; i++) {
    const c = candidates[i]!;
    if (eqLower(h, s, c[0])) return c[1];
  }
  return HeaderKind.Other;
}

/**
 * Checks the header line h[s, e) and returns the index of its colon, or -1: a name of token
 * characters only (a space before the colon is how smuggling starts; a leading space is a folded
 * line). Control bytes, bare CRs and LFs were refused for the whole head already (cleanHead).
 */
function headerColon(h: string, s: number, e: number): number {
  const colon = h.indexOf(':', s);
  if (colon <= s || colon >= e) return -1;
  for (let i = s; i < colon; i++) {
    const c = h.charCodeAt(i);
    if (c >= 128 || TOKEN[c] === 0) return -1;
  }
  return colon;
}

/** The end of the line starting at `s`: its CRLF, or the end of the head. */
const lineEnd = (h: string, s: number): number => {
  const e = h.indexOf('\r\n', s);
  return e === -1 ? h.length : e;
};

/** Digits only, at most 15 of them (lengths stay exact integers); -1 otherwise. */
function parseLength(v: string): number {
  if (v.length === 0 || v.length > 15) return -1;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
  }
  return Number(v);
}

const CLOSE = 1;
const KEEP_ALIVE = 2;

/**
 * Reads a Connection header: returns CLOSE and/or KEEP_ALIVE bits; other tokens name further
 * hop-by-hop headers and are added to `into.named`. The usual single token costs no split.
 */
function connectionTokens(value: string, into: Forwarded): number {
  const v = value.trim().toLowerCase();
  if (v === 'keep-alive') return KEEP_ALIVE;
  if (v === 'close') return CLOSE;
  let bits = 0;
  for (const token of v.split(',')) {
    const t = token.trim();
    if (t === 'close') bits |= CLOSE;
    else if (t === 'keep-alive') bits |= KEEP_ALIVE;
    else if (t) (into.named ??= new Set()).add(t);
  }
  return bits;
}

/**
 * The header lines a head passes on, for requests and responses alike. Kept lines are copied as
 * runs of the head (a dropped line ends a run); the Via entries are gathered into one line with
 * this proxy's own added; lines named by a Connection header are dropped at the end.
 */
class Forwarded {
  private text = '';
  private run: number;
  private via = '';
  /** Header names a Connection header listed (rare), lower case. */
  named: Set<string> | null = null;

  constructor(
    private readonly head: string,
    firstHeader: number,
  ) {
    this.run = firstHeader;
  }

  /** Leaves out the line head[s, e). */
  drop(s: number, e: number): void {
    if (s > this.run) this.text += this.head.slice(this.run, s);
    this.run = e + 2;
  }

  addVia(value: string): void {
    this.via = this.via ? `${this.via}, ${value}` : value;
  }

  /** The lines to send on, CRLF-terminated, ending with the Via line. */
  finish(ownVia: string): string {
    let out = this.text;
    if (this.run < this.head.length) out += this.head.slice(this.run) + '\r\n';
    if (this.named !== null) out = dropNamed(out, this.named);
    return out + (this.via ? `Via: ${this.via}, ${ownVia}\r\n` : `Via: ${ownVia}\r\n`);
  }
}

/**
 * Parses a request head (the text before the blank line). Returns null for whatever the fast path
 * leaves to node's parser: another HTTP version, a chunked or announced-but-odd body, Expect,
 * Upgrade, a malformed line (which node then refuses: nothing is taken here that llhttp would
 * refuse, test/http1-differential.test.ts). `via` is this proxy's Via entry (`1.1 vigie`);
 * `checked`: the caller ran `cleanHead` on the bytes.
 */
export function parseRequestHead(head: string, via: string, checked = false): RequestHead | null {
  if (!checked && DIRTY.test(head)) return null;
  const first = lineEnd(head, 0);
  const sp1 = head.indexOf(' ');
  const sp2 = sp1 === -1 ? -1 : head.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 === -1 || first - sp2 !== 9 || !head.startsWith(' HTTP/1.1', sp2)) return null;
  const method = head.slice(0, sp1);
  const target = head.slice(sp1 + 1, sp2);
  if (!METHODS.has(method) || target.length === 0 || !isVisibleAscii(target)) return null;
  const fwd = new Forwarded(head, first + 2);
  let contentLength = -1;
  let close = false;
  let acceptLanguage: string | undefined;
  let proxyAuthorization: string | undefined;
  let host: string | undefined;
  for (let s = first + 2; s < head.length; ) {
    const e = lineEnd(head, s);
    const colon = headerColon(head, s, e);
    if (colon === -1) return null;
    let keep = false;
    switch (kind(head, s, colon)) {
      case HeaderKind.Other:
        keep = true;
        break;
      case HeaderKind.TransferEncoding:
      case HeaderKind.Expect:
      case HeaderKind.Upgrade:
        return null;
      case HeaderKind.ContentLength: {
        // A second Content-Length, even an equal one, llhttp refuses.
        const n = parseLength(head.slice(colon + 1, e).trim());
        if (n < 0 || contentLength !== -1) return null;
        contentLength = n;
        keep = true;
        break;
      }
      case HeaderKind.Connection:
      case HeaderKind.ProxyConnection:
        if (connectionTokens(head.slice(colon + 1, e), fwd) & CLOSE) close = true;
        break;
      case HeaderKind.Via:
        fwd.addVia(head.slice(colon + 1, e).trim());
        break;
      case HeaderKind.AcceptLanguage:
        acceptLanguage = head.slice(colon + 1, e).trim();
        keep = true;
        break;
      case HeaderKind.ProxyAuthorization:
        proxyAuthorization = head.slice(colon + 1, e).trim();
        break;
      case HeaderKind.Host:
        host ??= head.slice(colon + 1, e).trim();
        break;
      default:
        // Host (replaced from the target) and the other hop-by-hop headers are dropped.
        break;
    }
    if (!keep) fwd.drop(s, e);
    s = e + 2;
  }
  return { method, target, forward: fwd.finish(via), contentLength: contentLength === -1 ? 0 : contentLength, close, acceptLanguage, proxyAuthorization, host };
}

/** Removes the lines whose names a Connection header listed (rare: a second pass is fine). */
function dropNamed(lines: string, named: Set<string>): string {
  let out = '';
  for (const l of lines.split('\r\n')) {
    if (!l) continue;
    if (named.has(l.slice(0, l.indexOf(':')).trim().toLowerCase())) continue;
    out += l + '\r\n';
  }
  return out;
}

/**
 * Parses a response head. `headRequest`: the request was HEAD, so no body follows whatever the
 * headers say. Returns a string naming the problem when the head is not valid HTTP/1.x (or is
 * one llhttp would refuse); `checked`: the caller ran `cleanHead` on the bytes.
 */
export function parseResponseHead(head: string, headRequest: boolean, via: string, checked = false): ResponseHead | string {
  if (!checked && DIRTY.test(head)) return 'control byte, bare CR or LF in the response head';
  const first = lineEnd(head, 0);
  const line = head.slice(0, first);
  if (line.length < 12 || !line.startsWith('HTTP/1.') || (line.length > 12 && line.charCodeAt(12) !== 32)) return 'bad status line';
  const minor = line.charCodeAt(7);
  if ((minor !== 48 && minor !== 49) || line.charCodeAt(8) !== 32) return 'bad status line';
  const status = parseLength(line.slice(9, 12));
  if (status < 100 || status > 999) return 'bad status code';
  const fwd = new Forwarded(head, first + 2);
  let length = -1;
  let chunked = false;
  let transferEncoding = false;
  let keepAlive = minor === 49;
  let teLine = '';
  for (let s = first + 2; s < head.length; ) {
    const e = lineEnd(head, s);
    const colon = headerColon(head, s, e);
    if (colon === -1) return 'bad header line';
    let keep = false;
    switch (kind(head, s, colon)) {
      case HeaderKind.Other:
      case HeaderKind.Host:
      case HeaderKind.Expect:
      case HeaderKind.AcceptLanguage:
        keep = true;
        break;
      case HeaderKind.ContentLength: {
        // Dropped here and written after the other lines, once.
        const n = parseLength(head.slice(colon + 1, e).trim());
        if (n < 0 || length !== -1) return 'bad Content-Length';
        length = n;
        break;
      }
      case HeaderKind.TransferEncoding: {
        const value = head.slice(colon + 1, e).trim();
        const v = value.toLowerCase();
        transferEncoding = true;
        // Only the last coding frames the message (RFC 9112 §6.3).
        chunked = v === 'chunked' || v.endsWith(',chunked') || v.endsWith(' chunked');
        teLine = teLine ? `${teLine}, ${value}` : value;
        break;
      }
      case HeaderKind.Connection:
      case HeaderKind.ProxyConnection: {
        const bits = connectionTokens(head.slice(colon + 1, e), fwd);
        if (bits & CLOSE) keepAlive = false;
        else if (bits & KEEP_ALIVE) keepAlive = true;
        break;
      }
      case HeaderKind.Via:
        fwd.addVia(head.slice(colon + 1, e).trim());
        break;
      default:
        break;
    }
    if (!keep) fwd.drop(s, e);
    s = e + 2;
  }
  // RFC 9112 §6.3: both framings at once is how smuggling starts; llhttp refuses it too.
  if (transferEncoding && length !== -1) return 'Content-Length with Transfer-Encoding';
  let forward = fwd.finish(via);
  let framing: ResponseHead['framing'];
  if (headRequest || status === 204 || status === 304 || (status >= 100 && status < 200)) framing = 'none';
  else if (transferEncoding) framing = chunked ? 'chunked' : 'close';
  else if (length !== -1) framing = 'length';
  else framing = 'close';
  // The body's framing headers go on as they came (the client speaks HTTP/1.1 too).
  if (transferEncoding) forward += `Transfer-Encoding: ${teLine}\r\n`;
  else if (length !== -1) forward += `Content-Length: ${length}\r\n`;
  const reason = line.length > 13 ? line.slice(13) : '';
  return {
    status,
    statusLine: `HTTP/1.1 ${line.slice(9, 12)}${reason ? ' ' + reason : ''}`,
    forward,
    framing,
    length: framing === 'length' ? length : 0,
    reusable: keepAlive && framing !== 'close',
  };
}
