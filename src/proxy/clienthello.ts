/**
 * The first flight of a TLS client, read without terminating TLS: the transparent HTTPS listener
 * decides on the ClientHello's server_name (SNI), then relays the very bytes it read to the
 * origin. Only the records that carry the ClientHello are waited for, within a size and a time
 * bound; hostile bytes give a reason, never an exception.
 *
 * Wire format: RFC 8446 §5.1 (records; a handshake message may be split over several records and
 * a record over several TCP segments), §4.1.2 (ClientHello), RFC 6066 §3 (server_name), RFC 7301
 * §3.1 (ALPN), draft-ietf-tls-esni (encrypted_client_hello, 0xfe0d: the SNI seen is then the outer,
 * public name).
 */
import type { Socket } from 'node:net';

export interface ClientHelloInfo {
  /** The host_name of server_name as sent (printable ASCII, not yet normalised); null if absent. */
  readonly sni: string | null;
  /** ALPN protocols offered, in the client's order; empty if none. */
  readonly alpn: readonly string[];
  /** An encrypted_client_hello extension is present: `sni` is the outer (public) name. */
  readonly ech: boolean;
  /** legacy_version (0x0303 for TLS 1.2 and 1.3). */
  readonly version: number;
}

/**
 * Why bytes are not a usable ClientHello.
 * - not-tls: the first bytes are no TLS handshake record (plain HTTP on 443, SSLv2, junk)
 * - malformed: a TLS record or ClientHello whose fields do not add up
 * - too-large: the ClientHello would end beyond the size bound
 */
export type HelloProblem = 'not-tls' | 'malformed' | 'too-large';

export type HelloStep =
  | { readonly status: 'more' }
  | { readonly status: 'hello'; readonly hello: ClientHelloInfo }
  | { readonly status: 'invalid'; readonly reason: HelloProblem };

/** Enough for any real ClientHello (post-quantum key shares included, ~2 KB) with room to spare. */
export const DEFAULT_MAX_HELLO_BYTES = 16 * 1024;

const RECORD_HEADER = 5;
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
/** RFC 8446 §5.1: a plaintext record's fragment is at most 2^14 bytes. */
const MAX_FRAGMENT = 16384;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_ECH = 0xfe0d;

const MORE: HelloStep = Object.freeze({ status: 'more' });
const invalid = (reason: HelloProblem): HelloStep => ({ status: 'invalid', reason });

/** Printable ASCII without space: what a host_name may hold before normalisation. */
function asciiName(b: Buffer, start: number, end: number): string | null {
  for (let i = start; i < end; i++) {
    const c = b[i]!;
    if (c < 0x21 || c > 0x7e) return null;
  }
  return b.toString('latin1', start, end);
}

/** server_name's extension_data: one host_name entry. undefined = malformed. */
function parseServerName(b: Buffer, start: number, end: number): string | null | undefined {
  if (end - start < 2 || start + 2 + b.readUInt16BE(start) !== end) return undefined;
  let p = start + 2;
  let name: string | null = null;
  if (p === end) return undefined;
  while (p < end) {
    if (p + 3 > end) return undefined;
    const type = b[p]!;
    const len = b.readUInt16BE(p + 1);
    p += 3;
    if (len === 0 || p + len > end) return undefined;
    if (type === 0) {
      // RFC 6066: no two names of the same type.
      if (name !== null) return undefined;
      name = asciiName(b, p, p + len);
      if (name === null) return undefined;
    }
    p += len;
  }
  return name;
}

/** ALPN's extension_data: a non-empty list of non-empty names. null = malformed. */
function parseAlpn(b: Buffer, start: number, end: number): string[] | null {
  if (end - start < 2 || start + 2 + b.readUInt16BE(start) !== end || end - start === 2) return null;
  const out: string[] = [];
  let p = start + 2;
  while (p < end) {
    const len = b[p]!;
    if (len === 0 || p + 1 + len > end) return null;
    out.push(b.toString('latin1', p + 1, p + 1 + len));
    p += 1 + len;
  }
  return out;
}

/** The ClientHello body (after the 4-byte handshake header); null when its fields do not add up. */
export function parseClientHelloBody(b: Buffer): ClientHelloInfo | null {
  const n = b.length;
  // legacy_version(2) random(32) legacy_session_id<0..32>
  if (n < 35) return null;
  const version = b.readUInt16BE(0);
  let p = 34;
  const sid = b[p++]!;
  if (sid > 32 || p + sid > n) return null;
  p += sid;
  // cipher_suites<2..2^16-2>: pairs of bytes
  if (p + 2 > n) return null;
  const suites = b.readUInt16BE(p);
  p += 2;
  if (suites < 2 || suites % 2 !== 0 || p + suites > n) return null;
  p += suites;
  // legacy_compression_methods<1..2^8-1>
  if (p + 1 > n) return null;
  const methods = b[p++]!;
  if (methods < 1 || p + methods > n) return null;
  p += methods;
  let sni: string | null = null;
  let alpn: string[] = [];
  let ech = false;
  // Extensions are optional before TLS 1.3 (an SSL 3.0-era client sends none).
  if (p === n) return { version, sni, alpn, ech };
  if (p + 2 > n || p + 2 + b.readUInt16BE(p) !== n) return null;
  p += 2;
  let sawName = false;
  let sawAlpn = false;
  while (p < n) {
    if (p + 4 > n) return null;
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    p += 4;
    if (p + len > n) return null;
    if (type === EXT_SERVER_NAME) {
      if (sawName) return null;
      sawName = true;
      const name = parseServerName(b, p, p + len);
      if (name === undefined) return null;
      sni = name;
    } else if (type === EXT_ALPN) {
      if (sawAlpn) return null;
      sawAlpn = true;
      const list = parseAlpn(b, p, p + len);
      if (list === null) return null;
      alpn = list;
    } else if (type === EXT_ECH) {
      ech = true;
    }
    p += len;
  }
  return { version, sni, alpn, ech };
}

/**
 * Assembles a ClientHello from the bytes of a connection as they arrive, in linear time whatever
 * the segmentation: each TLS record is looked at once, and the handshake message is copied at
 * most once (only when it spans several records). Everything received is kept for the relay.
 */
export class ClientHelloAssembler {
  /** Received bytes: the first chunk itself while it is the only one, then a growing copy. */
  private buf: Buffer = Buffer.alloc(0);
  private len = 0;
  private owned = false;
  /** Offset of the next record header not yet consumed. */
  private scan = 0;
  /** Handshake fragments while the message length is unknown (at most 4 of them: 4 header bytes). */
  private parts: Buffer[] = [];
  /** The handshake message, copied here only when it spans several records. */
  private msg: Buffer | null = null;
  private have = 0;
  /** Handshake header + body length, once its 4 header bytes are in; 0 before. */
  private total = 0;
  private result: HelloStep = MORE;

  constructor(readonly maxBytes: number = DEFAULT_MAX_HELLO_BYTES) {}

  /** Every byte received so far, the ClientHello and whatever followed it (valid until the next push). */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.len);
  }

  push(chunk: Buffer): HelloStep {
    if (this.result.status !== 'more') return this.result;
    this.append(chunk);
    this.result = this.advance();
    return this.result;
  }

  private append(chunk: Buffer): void {
    if (this.len === 0) {
      this.buf = chunk;
      this.len = chunk.length;
      return;
    }
    const need = this.len + chunk.length;
    if (!this.owned || need > this.buf.length) {
      // Doubling keeps byte-at-a-time arrival linear; the bound check in advance() stops growth.
      const grown = Buffer.allocUnsafe(Math.max(need, Math.min(2 * this.buf.length, this.maxBytes + MAX_FRAGMENT), 1024));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
      this.owned = true;
    }
    chunk.copy(this.buf, this.len);
    this.len = need;
  }

  private advance(): HelloStep {
    const b = this.buf;
    for (;;) {
      const avail = this.len - this.scan;
      const first = this.scan === 0;
      // Checked byte by byte as they come, so plain HTTP or junk is refused from its first byte.
      if (avail >= 1 && b[this.scan] !== HANDSHAKE) return invalid(first ? 'not-tls' : 'malformed');
      if (avail >= 2 && b[this.scan + 1] !== 3) return invalid(first ? 'not-tls' : 'malformed');
      if (avail < RECORD_HEADER) return this.scan + RECORD_HEADER > this.maxBytes ? invalid('too-large') : MORE;
      if (b[this.scan + 2]! > 4) return invalid(first ? 'not-tls' : 'malformed');
      const size = b.readUInt16BE(this.scan + 3);
      if (size === 0 || size > MAX_FRAGMENT) return invalid('malformed');
      const end = this.scan + RECORD_HEADER + size;
      if (end > this.maxBytes) return invalid('too-large');
      if (end > this.len) return MORE;
      const fragment = b.subarray(this.scan + RECORD_HEADER, end);
      this.scan = end;
      const step = this.addFragment(fragment);
      if (step !== MORE) return step;
    }
  }

  /** One handshake fragment; the ClientHello is parsed once all its bytes are in. */
  private addFragment(fragment: Buffer): HelloStep {
    if (this.have === 0 && fragment[0] !== CLIENT_HELLO) return invalid('malformed');
    let whole: Buffer;
    if (this.msg !== null) {
      // A client's first flight is the ClientHello alone: nothing may follow it in these records.
      if (this.have + fragment.length > this.total) return invalid('malformed');
      fragment.copy(this.msg, this.have);
      this.have += fragment.length;
      whole = this.msg;
    } else {
      this.parts.push(fragment);
      this.have += fragment.length;
      if (this.have < 4) return MORE;
      const h = this.parts.length === 1 ? fragment : Buffer.concat(this.parts, this.have);
      this.total = 4 + ((h[1]! << 16) | (h[2]! << 8) | h[3]!);
      if (this.total > this.maxBytes) return invalid('too-large');
      if (this.have > this.total) return invalid('malformed');
      if (this.have === this.total) {
        whole = h;
      } else {
        // Spans records: one buffer of the announced size, each later fragment copied in once.
        this.msg = Buffer.allocUnsafe(this.total);
        h.copy(this.msg, 0, 0, this.have);
        whole = this.msg;
      }
      this.parts = [];
    }
    if (this.have < this.total) return MORE;
    const hello = parseClientHelloBody(whole.subarray(4, this.total));
    return hello ? { status: 'hello', hello } : invalid('malformed');
  }
}

export type HelloOutcome =
  | { readonly status: 'hello'; readonly hello: ClientHelloInfo; readonly bytes: Buffer }
  | { readonly status: 'invalid'; readonly reason: HelloProblem; readonly bytes: Buffer }
  /** Nothing usable within the time bound, or the client closed (or failed) first. */
  | { readonly status: 'timeout' | 'closed'; readonly bytes: Buffer };

export interface ReadHelloOptions {
  maxBytes?: number;
  /** From the first listener call, not from the last byte: a slow trickle does not extend it. */
  timeoutMs: number;
}

/**
 * Reads a socket until its ClientHello is complete, malformed, too large, late or cut. The socket
 * is left paused with no listener of ours; `bytes` holds everything read (the ClientHello and
 * whatever came after it in the same reads), to be written to the origin before relaying the rest.
 * The caller keeps its own 'error' listener on the socket.
 */
export function readClientHello(socket: Socket, opts: ReadHelloOptions): Promise<HelloOutcome> {
  return new Promise((resolve) => {
    const assembler = new ClientHelloAssembler(opts.maxBytes);
    const finish = (outcome: HelloOutcome): void => {
      clearTimeout(timer);
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onClosed);
      socket.off('close', onClosed);
      socket.off('error', onClosed);
      resolve(outcome);
    };
    const onData = (chunk: Buffer): void => {
      const step = assembler.push(chunk);
      if (step.status === 'hello') finish({ status: 'hello', hello: step.hello, bytes: assembler.bytes });
      else if (step.status === 'invalid') finish({ status: 'invalid', reason: step.reason, bytes: assembler.bytes });
    };
    const onClosed = (): void => finish({ status: 'closed', bytes: assembler.bytes });
    const timer = setTimeout(() => finish({ status: 'timeout', bytes: assembler.bytes }), opts.timeoutMs);
    socket.on('data', onData);
    socket.on('end', onClosed);
    socket.on('close', onClosed);
    socket.on('error', onClosed);
    socket.resume();
  });
}

/** TLS alert descriptions (RFC 8446 §6) the transparent listener sends. */
export const ALERT = { accessDenied: 49, unrecognizedName: 112, decodeError: 50, internalError: 80 } as const;

/**
 * A fatal alert record, sent in the clear before any ServerHello: the browser shows a TLS error
 * naming the alert rather than a hung page.
 */
export function tlsAlert(description: number): Buffer {
  return Buffer.from([21, 3, 3, 0, 2, 2, description & 0xff]);
}
