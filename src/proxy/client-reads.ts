import type { Socket } from 'node:net';

/** First read buffer of a client connection; a read that fills it moves it to `CLIENT_READ_LARGE`. */
export const CLIENT_READ_SMALL = 4096;
export const CLIENT_READ_LARGE = 16 * 1024;

/** What takes a client's bytes on the fast path (src/proxy/client-connection.ts). */
export interface ClientReader {
  /**
   * Bytes read from the client, valid during this call only. Returns true when a reference to them
   * is kept past it (pending bytes, the origin's write queue), false when not, null when the
   * connection is no longer the reader's (handed to node's HTTP server or become a tunnel).
   */
  fromClient(d: Buffer): boolean | null;
}

/**
 * A client connection's reads into a buffer of its own (node's `onread`), as origin connections
 * have had since 2026-11-22 (src/proxy/upstream.ts): no new ArrayBuffer per read for the
 * scavenger to sweep, and no stream machinery between the read and the fast path. A read whose
 * bytes are kept leaves that buffer to them, and the next read gets a fresh one.
 *
 * A socket in this mode never emits 'data' and cannot leave it (node keeps the user buffer on the
 * handle). Once the connection is handed over, to node's HTTP server or to a tunnel, each read is
 * pushed as a copy into the socket's own readable side, which then behaves as any socket's.
 */
export class ClientReads {
  reader: ClientReader | null = null;
  socket: Socket | null = null;
  private next: Buffer | undefined = Buffer.allocUnsafeSlow(CLIENT_READ_SMALL);

  // node calls `buffer` after every read (a Uint8Array replaces the buffer, undefined keeps it),
  // as for origin connections: test/upstream.test.ts fails on a release that stops.
  readonly buffer = (): Buffer | undefined => {
    const b = this.next;
    this.next = undefined;
    return b;
  };

  readonly callback = (n: number, buf: Uint8Array): boolean => {
    const view = (buf as Buffer).subarray(0, n);
    const kept = this.reader === null ? null : this.reader.fromClient(view);
    if (kept === null) {
      this.reader = null;
      return this.socket!.push(Buffer.from(view));
    }
    if (kept) this.next = Buffer.allocUnsafeSlow(n === buf.length ? CLIENT_READ_LARGE : buf.length);
    else if (n === buf.length && n < CLIENT_READ_LARGE) this.next = Buffer.allocUnsafeSlow(CLIENT_READ_LARGE);
    return true;
  };
}
