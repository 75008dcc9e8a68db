import { CTL, TOKEN } from './http-bytes.js';

const enum ChunkState {
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
  private state = ChunkState.Size;
  private size = 0;
  private digits = 0;
  private line = 0;
  private afterLine = ChunkState.SizeLf;

  constructor(private readonly maxLine = 16_384) {}

  /**
   * One byte of a chunk extension (RFC 9112 §7.1.1: `;name`, `;name=token` or `;name="quoted"`,
   * no whitespace, as llhttp takes them); false when it breaks the grammar.
   */
  private extension(c: number): boolean {
    const token = c < 128 && TOKEN[c] === 1;
    switch (this.state) {
      case ChunkState.ExtStart:
        this.state = ChunkState.ExtName;
        return token;
      case ChunkState.ExtName:
      case ChunkState.ExtToken:
        if (token) return true;
        if (c === 61 /* = */ && this.state === ChunkState.ExtName) this.state = ChunkState.ExtValue;
        else if (c === 59 /* ; */) this.state = ChunkState.ExtStart;
        else if (c === 13) this.state = ChunkState.SizeLf;
        else return false;
        return true;
      case ChunkState.ExtValue:
        if (c === 34 /* " */) this.state = ChunkState.ExtQuoted;
        else if (token) this.state = ChunkState.ExtToken;
        else return false;
        return true;
      case ChunkState.ExtQuoted:
        if (c === 34) this.state = ChunkState.ExtEnd;
        else if (c === 92 /* \ */) this.state = ChunkState.ExtEscape;
        else if (CTL[c] !== 0) return false;
        return true;
      case ChunkState.ExtEscape:
        this.state = ChunkState.ExtQuoted;
        return CTL[c] === 0;
      case ChunkState.ExtEnd:
        if (c === 59) this.state = ChunkState.ExtStart;
        else if (c === 13) this.state = ChunkState.SizeLf;
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
        case ChunkState.Data: {
          const take = Math.min(this.size, n - i);
          this.size -= take;
          i += take;
          if (this.size === 0) this.state = ChunkState.DataCr;
          continue;
        }
        case ChunkState.Size: {
          const c = buf[i]!;
          const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (v !== -1) {
            if (++this.digits > 12) return -2;
            this.size = this.size * 16 + v;
          } else if (this.digits === 0) return -2;
          else if (c === 13) this.state = ChunkState.SizeLf;
          else if (c === 59 /* ; */) {
            this.state = ChunkState.ExtStart;
            this.afterLine = ChunkState.SizeLf;
            this.line = 0;
          } else return -2;
          i++;
          continue;
        }
        case ChunkState.ExtStart:
        case ChunkState.ExtName:
        case ChunkState.ExtValue:
        case ChunkState.ExtToken:
        case ChunkState.ExtQuoted:
        case ChunkState.ExtEscape:
        case ChunkState.ExtEnd:
          if (!this.extension(buf[i]!) || (buf[i] !== 13 && ++this.line > this.maxLine)) return -2;
          i++;
          continue;
        case ChunkState.TrailerName: {
          const c = buf[i]!;
          if (c === 58 /* : */) this.state = ChunkState.Line;
          else if (c >= 128 || TOKEN[c] === 0 || ++this.line > this.maxLine) return -2;
          i++;
          continue;
        }
        case ChunkState.Line: {
          const c = buf[i]!;
          if (c === 13) this.state = this.afterLine;
          else if (CTL[c] !== 0 || ++this.line > this.maxLine) return -2;
          i++;
          continue;
        }
        case ChunkState.SizeLf:
          if (buf[i] !== 10) return -2;
          i++;
          this.digits = 0;
          if (this.size === 0) {
            this.state = ChunkState.TrailerStart;
          } else this.state = ChunkState.Data;
          continue;
        case ChunkState.DataCr:
          if (buf[i] !== 13) return -2;
          i++;
          this.state = ChunkState.DataLf;
          continue;
        case ChunkState.DataLf:
          if (buf[i] !== 10) return -2;
          i++;
          this.state = ChunkState.Size;
          continue;
        case ChunkState.TrailerStart: {
          const c = buf[i]!;
          if (c === 13) this.state = ChunkState.EndLf;
          else if (c >= 128 || TOKEN[c] === 0) return -2;
          else {
            this.state = ChunkState.TrailerName;
            this.afterLine = ChunkState.TrailerLf;
            this.line = 0;
          }
          i++;
          continue;
        }
        case ChunkState.TrailerLf:
          if (buf[i] !== 10) return -2;
          i++;
          this.state = ChunkState.TrailerStart;
          continue;
        case ChunkState.EndLf:
          if (buf[i] !== 10) return -2;
          this.state = ChunkState.Done;
          return i + 1;
        case ChunkState.Done:
          return i;
      }
    }
    return this.state === ChunkState.Done ? i : -1;
  }
}
