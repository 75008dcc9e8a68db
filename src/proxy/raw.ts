/**
 * Node's own TCP handles (the `tcp_wrap` and `stream_wrap` bindings that `net.Socket` is built
 * on), for the connections that are CONNECT tunnels from their first read.
 *
 * A tunnel set-up through two `net.Socket`s costs more CPU than Squid's whole set-up: the socket
 * and stream objects of both sides, their listeners, their close sequence, and the garbage all of
 * this leaves behind (README, Performance). A tunnel only moves bytes, so it needs none of it.
 *
 * These bindings are internal to Node: `process.binding` is deprecated, with no removal date. So
 * they are used only with `tunnels: "raw"` in the config, everything here is checked once at
 * start, and if any piece is missing `rawBinding` is null and tunnels use `net.Socket` (as with
 * `tunnels: "socket"`, src/proxy/splice.ts).
 */

/** What `getpeername` fills in. */
export interface PeerName {
  address?: string;
  family?: string;
  port?: number;
}

export interface WriteReq {
  handle: TcpHandle;
  oncomplete: (status: number) => void;
  /** Keeps the buffer alive while an asynchronous write is in flight. */
  buffer?: Uint8Array;
}

export interface ShutdownReq {
  handle: TcpHandle;
  oncomplete: (status: number) => void;
}

export interface ConnectReq {
  oncomplete: (status: number) => void;
}

/** A connected or accepted TCP handle (libuv's uv_tcp_t through Node's TCPWrap). */
export interface TcpHandle {
  /** Called with `this` = the handle; the byte count or error is in `streamBaseState`. */
  onread: (this: TcpHandle, ab: ArrayBuffer | undefined) => void;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  shutdown(req: ShutdownReq): number;
  close(cb?: () => void): void;
  getpeername(out: PeerName): number;
  setNoDelay(on: boolean): number;
  connect(req: ConnectReq, address: string, port: number): number;
  connect6(req: ConnectReq, address: string, port: number): number;
}

/** A listening handle (only the self-test makes one: the proxy's own come from net.Server). */
export interface TcpServerHandle {
  onconnection: (status: number, client: TcpHandle | undefined) => void;
  bind(address: string, port: number): number;
  listen(backlog: number): number;
  getsockname(out: PeerName): number;
  close(cb?: () => void): void;
}

export interface RawBinding {
  TCP: new (type: number) => TcpHandle & TcpServerHandle;
  TCPConnectWrap: new () => ConnectReq;
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  /** The socket types for `new TCP()`. */
  SOCKET: number;
  SERVER: number;
  /** Shared with the native side: results of the last read or write. */
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
}

/** libuv's end-of-stream read result. */
export const UV_EOF = -4095;

function load(): RawBinding | null {
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const tcp = binding('tcp_wrap');
    const stream = binding('stream_wrap');
    const constants = tcp.constants as Record<string, unknown> | undefined;
    const TCP = tcp.TCP as RawBinding['TCP'] | undefined;
    const b = {
      TCP,
      TCPConnectWrap: tcp.TCPConnectWrap,
      WriteWrap: stream.WriteWrap,
      ShutdownWrap: stream.ShutdownWrap,
      SOCKET: constants?.SOCKET,
      SERVER: constants?.SERVER,
      state: stream.streamBaseState,
      kReadBytesOrError: stream.kReadBytesOrError,
      kArrayBufferOffset: stream.kArrayBufferOffset,
      kLastWriteWasAsync: stream.kLastWriteWasAsync,
    };
    const ok =
      typeof b.TCP === 'function' &&
      typeof b.TCPConnectWrap === 'function' &&
      typeof b.WriteWrap === 'function' &&
      typeof b.ShutdownWrap === 'function' &&
      typeof b.SOCKET === 'number' &&
      typeof b.SERVER === 'number' &&
      b.state instanceof Int32Array &&
      typeof b.kReadBytesOrError === 'number' &&
      typeof b.kArrayBufferOffset === 'number' &&
      typeof b.kLastWriteWasAsync === 'number' &&
      ['readStart', 'readStop', 'writeBuffer', 'shutdown', 'close', 'getpeername', 'getsockname', 'setNoDelay', 'connect', 'connect6', 'bind', 'listen'].every((m) => typeof (TCP!.prototype as unknown as Record<string, unknown>)[m] === 'function');
    return ok ? (b as unknown as RawBinding) : null;
  } catch {
    return null;
  }
}

/** Node's TCP handles, or null when this runtime does not offer them as expected (or they are turned off). */
export const rawBinding: RawBinding | null = load();

/** What a write did: 0 = done now, 1 = in flight (`done` is called later), < 0 = a libuv error. */
export function writeRaw(b: RawBinding, h: TcpHandle, data: Uint8Array, done: (status: number) => void): number {
  const req = new b.WriteWrap();
  req.handle = h;
  req.oncomplete = done;
  const err = h.writeBuffer(req, data);
  if (err !== 0) return err;
  if (b.state[b.kLastWriteWasAsync] === 0) return 0;
  // libuv holds a pointer into `data` until the write completes: nothing else may free it.
  req.buffer = data;
  return 1;
}

const ignoreStatus = (): void => {};

/** Sends FIN once what is queued has been written; returns a libuv error, or 0. */
export function shutdownRaw(b: RawBinding, h: TcpHandle, done: (status: number) => void = ignoreStatus): number {
  const req = new b.ShutdownWrap();
  req.handle = h;
  req.oncomplete = done;
  return h.shutdown(req);
}

/**
 * An exchange on loopback through the same calls the tunnels make (accept, connect, read, write,
 * shutdown, end of stream, close), since these bindings are internal and a later Node could keep
 * their names and change what they do. Resolves false on any surprise, or after a second.
 */
export function rawSelfTest(b: RawBinding): Promise<boolean> {
  return new Promise((resolve) => {
    const open: { close(cb?: () => void): void }[] = [];
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const h of open) h.close();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 1000);
    try {
      const PING = Buffer.from('vigie raw self-test');
      const server = new b.TCP(b.SERVER);
      open.push(server);
      const addr: PeerName = {};
      if (server.bind('127.0.0.1', 0) !== 0 || server.listen(1) !== 0 || server.getsockname(addr) !== 0 || !addr.port) return done(false);
      // The accepted side echoes what it reads, then passes the end of stream on.
      server.onconnection = (status, accepted) => {
        if (status !== 0 || accepted === undefined) return done(false);
        open.push(accepted);
        accepted.onread = (ab) => {
          const n = b.state[b.kReadBytesOrError];
          if (n > 0 && ab !== undefined) {
            if (writeRaw(b, accepted, Buffer.from(ab, b.state[b.kArrayBufferOffset], n), (st) => st < 0 && done(false)) < 0) done(false);
          } else if (n === UV_EOF) {
            if (shutdownRaw(b, accepted) !== 0) done(false);
          } else if (n < 0) done(false);
        };
        if (accepted.readStart() !== 0) done(false);
      };
      const client = new b.TCP(b.SOCKET);
      open.push(client);
      const req = new b.TCPConnectWrap();
      const got: Buffer[] = [];
      req.oncomplete = (status) => {
        if (status !== 0) return done(false);
        client.onread = (ab) => {
          const n = b.state[b.kReadBytesOrError];
          if (n > 0 && ab !== undefined) got.push(Buffer.from(ab, b.state[b.kArrayBufferOffset], n));
          else if (n === UV_EOF) done(Buffer.concat(got).equals(PING));
          else if (n < 0) done(false);
        };
        if (client.readStart() !== 0 || writeRaw(b, client, PING, (st) => st < 0 && done(false)) < 0 || shutdownRaw(b, client) !== 0) done(false);
      };
      if (client.connect(req, '127.0.0.1', addr.port) !== 0) done(false);
    } catch {
      done(false);
    }
  });
}

/**
 * Takes over the accepting of a listening server: `accepted` gets each new connection's raw handle
 * instead of a `net.Socket`. The handle's `onconnection` is what `net.Server` itself sets to build
 * its sockets (a cluster worker's handle has it too); a server without one is left as it is.
 */
export function takeOverAccept(server: import('node:net').Server, accepted: (client: TcpHandle) => void): void {
  const handle = (server as unknown as { _handle?: { onconnection?: unknown } | null })._handle;
  if (!handle || typeof handle.onconnection !== 'function') return;
  handle.onconnection = (err: number, client: TcpHandle | undefined) => {
    // A failed accept (out of descriptors...) leaves the connection in the backlog: as net.Server
    // but without its 'error' event, which nothing here would catch.
    if (err !== 0 || client === undefined) return;
    accepted(client);
  };
}
