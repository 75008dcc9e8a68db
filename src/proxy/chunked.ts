import { CTL, TOKEN } from './http-bytes.js';

const enum C {
  Size,
  /** Just after a chunk size's `;`: an extension name must start here. */
  ExtStart,
  /** A chunk extension's name; then CR, `;` or `=`. */
  ExtName,
  /** After `=`: a token or a quoted string. */
  ExtValue,
  ExtToken,
  ExtQuoted,
  /** After a backslash inside a quoted string. */
  ExtEscape,
  /** After a quoted string's closing quote: CR or `;`. */
  ExtEnd,
  /** A trailer field's name, up to its colon. */
  TrailerName,
  /** Inside a trailer value, skipped up to its CR; `afterLine` says what follows. */
  Line,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  TrailerLf,
  EndLf,
  Done,
}

/**
 * Follows a chunked body without decoding it (the bytes go on unchanged) to find where it ends.
 * Chunk sizes are limited to 2^48 - 1 and extensions and trailers to `maxLine` bytes each. As
 * strict as llhttp (test/http1-differential.test.ts): a size is followed by CR or `;name`, no
 * whitespace; trailers are `name: value` lines; no control byte but HTAB in either.
 */
export class ChunkedScanner {
  private state = C.Size;
  private size = 0;
  private digits = 0;
  private line = 0;
  private afterLine = C.SizeLf;

  constructor(private readonly maxLine = 16_384) {}

  /**
   * One byte of a chunk extension (RFC 9112 §7.1.1: `;name`, `;name=token` or `;name="quoted"`,
   * no whitespace, as llhttp takes them); false when it breaks the grammar.
   */
  private extension(c: number): boolean {
    const token = c < 128 && TOKEN[c] === 1;
    switch (this.state) {
      case C.ExtStart:
        this.state = C.ExtName;
        return token;
      case C.ExtName:
      case C.ExtToken:
        if (token) return true;
        if (c === 61 /* = */ && this.state === C.ExtName) this.state = C.ExtValue;
        else if (c === 59 /* ; */) this.state = C.ExtStart;
        else if (c === 13) this.state = C.SizeLf;
        else return false;
        return true;
      case C.ExtValue:
        if (c === 34 /* " */) this.state = C.ExtQuoted;
        else if (token) this.state = C.ExtToken;
        else return false;
        return true;
      case C.ExtQuoted:
        if (c === 34) this.state = C.ExtEnd;
        else if (c === 92 /* \ */) this.state = C.ExtEscape;
        else if (CTL[c] !== 0) return false;
        return true;
      case C.ExtEscape:
        this.state = C.ExtQuoted;
        return CTL[c] === 0;
      case C.ExtEnd:
        if (c === 59) this.state = C.ExtStart;
        else if (c === 13) this.state = C.SizeLf;
        else return false;
        return true;
      default:
        return false;
    }
  }

  /** Scans `buf` from `from`; returns the index just past the body's end, -1 if not there yet, -2 on a framing error. */
  scan(buf: Buffer, from = 0): number {
    let i = from;
    const n = buf.length;
    while (i < n) {
      switch (this.state) {
        case C.Data: {
          const take = Math.min(this.size, n - i);
          this.size -= take;
          i += take;
          if (this.size === 0) this.state = C.DataCr;
          continue;
        }
        case C.Size: {
          const c = buf[i]!;
          const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (v !== -1) {
            if (++this.digits > 12) return -2;
            this.size = this.size * 16 + v;
          } else if (this.digits === 0) return -2;
          else if (c === 13) this.state = C.SizeLf;
          else if (c === 59 /* ; */) {
            this.state = C.ExtStart;
            this.afterLine = C.SizeLf;
            this.line = 0;
          } else return -2;
          i++;
          continue;
        }
        case C.ExtStart:
        case C.ExtName:
        case C.ExtValue:
        case C.ExtToken:
        case C.ExtQuoted:
        case C.ExtEscape:
        case C.ExtEnd:
          if (!this.extension(buf[i]!) || (buf[i] !== 13 && ++this.line > this.maxLine)) return -2;
          i++;
          continue;
        case C.TrailerName: {
          const c = buf[i]!;
          if (c === 58 /* : */) this.state = C.Line;
          else if (c >= 128 || TOKEN[c] === 0 || ++this.line > this.maxLine) return -2;
          i++;
          continue;
        }
        case C.Line: {
          const c = buf[i]!;
          if (c === 13) this.state = this.afterLine;
          else if (CTL[c] !== 0 || ++this.line > this.maxLine) return -2;
          i++;
          continue;
        }
        case C.SizeLf:
          if (buf[i] !== 10) return -2;
          i++;
          this.digits = 0;
          if (this.size === 0) {
            this.state = C.TrailerStart;
          } else this.state = C.Data;
          continue;
        case C.DataCr:
          if (buf[i] !== 13) return -2;
          i++;
          this.state = C.DataLf;
          continue;
        case C.DataLf:
          if (buf[i] !== 10) return -2;
          i++;
          this.state = C.Size;
          continue;
        case C.TrailerStart: {
          const c = buf[i]!;
          if (c === 13) this.state = C.EndLf;
          else if (c >= 128 || TOKEN[c] === 0) return -2;
          else {
            this.state = C.TrailerName;
            this.afterLine = C.TrailerLf;
            this.line = 0;
          }
          i++;
          continue;
        }
        case C.TrailerLf:
          if (buf[i] !== 10) return -2;
          i++;
          this.state = C.TrailerStart;
          continue;
        case C.EndLf:
          if (buf[i] !== 10) return -2;
          this.state = C.Done;
          return i + 1;
        case C.Done:
          return i;
      }
    }
    return this.state === C.Done ? i : -1;
  }
}
