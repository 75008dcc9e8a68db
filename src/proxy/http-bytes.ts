/**
 * Which bytes may stand where in an HTTP/1.1 head or chunked framing, shared by the head parsers
 * (http1.ts) and the chunked scanner (chunked.ts): as strict as llhttp, node's parser
 * (test/http1-differential.test.ts).
 */

/** RFC 9110 token characters (header names), by code. */
export const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;

/** Bytes a head may not hold: 1 for control bytes other than HTAB, CR and LF (and DEL); 2 for CR and LF, allowed as CRLF only. */
export const CTL = new Uint8Array(256);
for (let c = 0; c < 32; c++) CTL[c] = c === 9 ? 0 : c === 10 || c === 13 ? 2 : 1;
CTL[127] = 1;

/** Is the byte at `i` (a CTL one) a CR of a CRLF, or its LF, inside buf[0, end)? */
function crlfAt(buf: Uint8Array, i: number, end: number): boolean {
  const c = buf[i]!;
  if (CTL[c] !== 2) return false;
  return c === 13 ? i + 1 < end && buf[i + 1] === 10 : i > 0 && buf[i - 1] === 13;
}

/**
 * Whether the head buf[0, end) (without its blank line) holds only bytes llhttp takes anywhere in
 * a head: no control byte but HTAB, and CR and LF only as CRLF line ends (RFC 9110 §5.5, RFC 9112
 * §2.2). Four bytes at a time: a word with no byte below 0x20 and no DEL (most words) costs a few
 * operations, so the whole head is checked for less than the per-line searches it replaces.
 */
export function cleanHead(buf: Buffer, end: number): boolean {
  let i = 0;
  const off = buf.byteOffset;
  while (i < end && ((off + i) & 3) !== 0) {
    if (CTL[buf[i]!] !== 0 && !crlfAt(buf, i, end)) return false;
    i++;
  }
  const words = (end - i) >> 2;
  if (words > 0) {
    const w = new Int32Array(buf.buffer, off + i, words);
    for (let k = 0; k < words; k++) {
      const x = w[k]!;
      const y = x ^ 0x7f7f7f7f;
      // A byte below 0x20, or equal to 0x7f (Bit Twiddling Hacks' hasless and haszero).
      if (((x - 0x20202020) & ~x & 0x80808080) === 0 && ((y - 0x01010101) & ~y & 0x80808080) === 0) continue;
      for (let j = i + k * 4, stop = j + 4; j < stop; j++) if (CTL[buf[j]!] !== 0 && !crlfAt(buf, j, end)) return false;
    }
    i += words * 4;
  }
  for (; i < end; i++) if (CTL[buf[i]!] !== 0 && !crlfAt(buf, i, end)) return false;
  return true;
}

/** `cleanHead` for a head already decoded (latin1), for callers that have no bytes (tests, tools): true when it is not clean. */
export const DIRTY = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;
