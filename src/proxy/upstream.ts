import net, { isIP, type Socket } from 'node:net';
import tls from 'node:tls';
import type { IdleMember, IdleSweeper } from './idle.js';
import { connectTimeout } from './target.js';

/** Who is using an upstream connection right now: one exchange of a client connection. */
export interface UpstreamUser {
  /** The connection is ready (new, or reused from the pool). */
  upReady(up: Upstream): void;
  /** A new connection could not be opened. */
  upFailed(err: NodeJS.ErrnoException): void;
  /**
   * Bytes from the origin. `chunk` is a view of the connection's read buffer, valid during the
   * call only: keep a copy, or leave it in a socket's write queue (see `upHeld`).
   */
  upData(chunk: Buffer): void;
  /** After `upData`: whether the chunk may still be referenced (queued in a socket's writes). */
  upHeld(): boolean;
  /** The origin closed the connection, or it failed; `err` is null for a clean end. */
  upClosed(err: NodeJS.ErrnoException | null): void;
  /** Nothing came from the origin for the response timeout. */
  upTimeout(): void;
  /** The origin's socket can take more of the request body. */
  upDrain(): void;
}

/** First read buffer of an origin connection; a read that fills it moves it to `READ_LARGE`. */
export const READ_SMALL = 16 * 1024;
export const READ_LARGE = 64 * 1024;

/**
 * One keep-alive connection to an origin. Its listeners are attached once and follow whoever uses
 * it (`user`), so reusing it costs no listener churn; idle in the pool, anything it hears (data,
 * end) means the origin gave up on it and it is dropped.
 *
 * It reads into a buffer of its own (node's `onread`), not into a new ArrayBuffer per read: at
 * ~2 reads a request those were most of what the young-generation GC had to sweep (0.9 of a
 * 1.5 ms scavenge at 17k req/s). A chunk still queued for the client when its read returns keeps
 * that buffer, and the next read goes to a fresh one: no copy, and nothing overwritten.
 */
export class Upstream implements IdleMember {
  user: UpstreamUser | null = null;
  idleSince = 0;
  idleLimit = 0;
  /** It carried an exchange before: a failure before any response byte may be a stale keep-alive. */
  reused = false;
  idle = false;
  /** Connected (TLS: handshake done, certificate and name verified); until then the connect limit applies. */
  ready = false;
  private gone = false;
  readonly socket: Socket;
  /** What node reads into next (handed over by `nextBuffer`), undefined to keep the current one. */
  private next: Buffer | undefined = Buffer.allocUnsafeSlow(READ_SMALL);

  constructor(
    readonly key: string,
    private readonly pool: UpstreamPool,
    address: string,
    family: number,
    port: number,
    /** The origin's name, checked against its certificate (TLS pools; an address when the client asked for one). */
    name: string,
  ) {
    // node calls `buffer` after every read, as it has since node 12: a Uint8Array replaces the
    // buffer, undefined keeps it (the typings only know the first call). test/upstream.test.ts
    // fails on a release that stops, since held chunks would then be overwritten. tls.connect
    // takes `onread` as net.connect does (when it makes the TCP socket itself).
    const onread = { buffer: this.nextBuffer as () => Uint8Array, callback: this.onRead };
    const context = pool.tlsContext;
    const socket =
      context === null
        ? net.connect({ host: address, port, family, noDelay: true, onread })
        : tls.connect({
            host: address,
            port,
            family,
            noDelay: true,
            onread,
            secureContext: context,
            // A session this pool had with the same name (checked then): resumed, as node's https.Agent does.
            session: pool.sessionFor(key),
            // The certificate is checked against the name (an address when the client asked for one).
            servername: isIP(name) === 0 ? name : '',
            checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
            minVersion: 'TLSv1.2',
            ALPNProtocols: ['http/1.1'],
            rejectUnauthorized: true,
            // The typings leave out the socket options tls.connect passes on to its TCP socket.
          } as tls.ConnectionOptions);
    this.socket = socket;
    if (context !== null) {
      socket.on('session', (session: Buffer) => pool.keepSession(key, session));
      // A session that ends in an error is not offered again.
      socket.once('error', () => pool.dropSession(key));
    }
    socket.on('drain', () => {
      this.idleSince = pool.idle.now;
      this.user?.upDrain();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => this.closed(e));
    socket.on('close', () => this.closed(null));
    socket.on('end', () => socket.destroy());
  }

  private readonly nextBuffer = (): Buffer | undefined => {
    const b = this.next;
    this.next = undefined;
    return b;
  };

  /** Pausing goes through `socket.pause()` (back-pressure), so this always returns true. */
  private readonly onRead = (n: number, buf: Uint8Array): boolean => {
    this.idleSince = this.pool.idle.now;
    const user = this.user;
    if (user === null) {
      this.destroy();
      return true;
    }
    user.upData((buf as Buffer).subarray(0, n));
    if (user.upHeld()) this.next = Buffer.allocUnsafeSlow(n === buf.length ? READ_LARGE : buf.length);
    else if (n === buf.length && n < READ_LARGE) this.next = Buffer.allocUnsafeSlow(READ_LARGE);
    return true;
  };

  /**
   * Quiet past its limit: still connecting (connect timeout), waiting for the origin (response
   * timeout, its user decides), or idle in the pool (dropped). While its user has paused it (the
   * client reads slower than the origin sends) the origin's silence is ours, not its: kept, and
   * counted again from when reading resumes (`resumeReading`). The slow client is under idleMs.
   */
  onIdle(): boolean {
    if (!this.ready) this.socket.destroy(connectTimeout());
    else if (this.user && this.socket.isPaused()) return false;
    else if (this.user) this.user.upTimeout();
    else this.destroy();
    return this.gone || this.socket.destroyed;
  }

  private closed(err: NodeJS.ErrnoException | null): void {
    if (this.gone) return;
    this.gone = true;
    this.pool.idle.delete(this);
    this.pool.forget(this);
    const user = this.user;
    this.user = null;
    user?.upClosed(err);
  }

  /** Stops reading the origin until `resumeReading` (back-pressure from the client). */
  pauseReading(): void {
    this.socket.pause();
  }

  /** Reads the origin again; its response timeout counts from now. */
  resumeReading(): void {
    this.idleSince = this.pool.idle.now;
    this.socket.resume();
  }

  get alive(): boolean {
    return !this.gone && !this.socket.destroyed;
  }

  destroy(): void {
    this.socket.destroy();
    this.closed(null);
  }
}

/** TLS sessions a pool keeps (node's https.Agent keeps 100; a school browses more sites than that). */
const MAX_SESSIONS = 1000;

interface Origin {
  idle: Upstream[];
  /** Connections open or opening (idle included), against the per-origin limit. */
  total: number;
  waiting: { user: UpstreamUser; address: string; family: number; port: number; name: string }[];
}

export interface PoolOptions {
  maxPerOrigin: number;
  connectMs: number;
  /** Inactivity limit of a connection, in use (response timeout) or idle in the pool. */
  timeoutMs: number;
  /** Where the connect and inactivity limits are watched. */
  idle: IdleSweeper;
  /**
   * Origins over TLS (interception's pool): this context's roots verify each new connection
   * (nothing can turn verification off: a bad certificate fails the connection). Absent: plain TCP.
   */
  tls?: tls.SecureContext;
}

/**
 * Keep-alive connections to origins, by `host:port` name as node's Agent does; last used first,
 * so a quiet period lets the extra ones time out. Beyond `maxPerOrigin` users wait in order.
 */
export class UpstreamPool {
  private readonly origins = new Map<string, Origin>();
  private closing = false;

  /** The TLS context of a pool of TLS origins, null for plain TCP. */
  readonly tlsContext: tls.SecureContext | null;

  /** TLS sessions by key (name:port), oldest first, at most MAX_SESSIONS: resumed connections skip a full handshake. */
  private readonly sessions = new Map<string, Buffer>();

  constructor(private readonly opts: PoolOptions) {
    this.tlsContext = opts.tls ?? null;
  }

  sessionFor(key: string): Buffer | undefined {
    return this.sessions.get(key);
  }

  keepSession(key: string, session: Buffer): void {
    this.sessions.delete(key);
    this.sessions.set(key, session);
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
  }

  dropSession(key: string): void {
    this.sessions.delete(key);
  }

  get idle(): IdleSweeper {
    return this.opts.idle;
  }

  private origin(key: string): Origin {
    let o = this.origins.get(key);
    if (!o) {
      o = { idle: [], total: 0, waiting: [] };
      this.origins.set(key, o);
    }
    return o;
  }

  /**
   * A connection to `key` for `user` (reused, new, or when one frees up). A TLS pool's key must
   * name `name` (the name verified), so that a connection is only reused for the name it was checked for.
   */
  acquire(key: string, address: string, family: number, port: number, user: UpstreamUser, name = ''): void {
    const o = this.origin(key);
    let up = o.idle.pop();
    while (up && !up.alive) up = o.idle.pop();
    if (up) {
      up.idle = false;
      up.user = user;
      up.idleSince = this.opts.idle.now;
      user.upReady(up);
      return;
    }
    if (o.total >= this.opts.maxPerOrigin) {
      o.waiting.push({ user, address, family, port, name });
      return;
    }
    this.open(o, key, address, family, port, name, user);
  }

  private open(o: Origin, key: string, address: string, family: number, port: number, name: string, user: UpstreamUser): void {
    o.total++;
    const up = new Upstream(key, this, address, family, port, name);
    const socket = up.socket;
    this.opts.idle.add(up, this.opts.connectMs);
    // Until it connects, failures belong to the opener; then it behaves like any pooled connection.
    const opener: UpstreamUser = {
      upReady() {},
      upFailed() {},
      upData() {},
      upHeld: () => false,
      upDrain() {},
      upTimeout() {},
      upClosed: (err) => {
        user.upFailed(err ?? Object.assign(new Error('connection closed'), { code: 'ECONNRESET' }));
      },
    };
    up.user = opener;
    socket.once(this.tlsContext === null ? 'connect' : 'secureConnect', () => {
      up.ready = true;
      up.idleLimit = this.opts.timeoutMs;
      up.idleSince = this.opts.idle.now;
      up.user = user;
      user.upReady(up);
    });
  }

  /** Gives a connection back after an exchange; a connection that cannot be reused is closed. */
  release(up: Upstream, reusable: boolean): void {
    up.user = null;
    if (!reusable || !up.alive || this.closing) {
      up.destroy();
      return;
    }
    up.reused = true;
    up.idleSince = this.opts.idle.now;
    const o = this.origin(up.key);
    const next = o.waiting.shift();
    if (next) {
      up.user = next.user;
      next.user.upReady(up);
      return;
    }
    up.idle = true;
    o.idle.push(up);
  }

  /** A waiting user gave up (its client left). */
  cancel(key: string, user: UpstreamUser): void {
    const o = this.origins.get(key);
    if (!o) return;
    const i = o.waiting.findIndex((w) => w.user === user);
    if (i !== -1) o.waiting.splice(i, 1);
  }

  /** Called once per connection when it closes: frees its slot for whoever waits. */
  forget(up: Upstream): void {
    const o = this.origins.get(up.key);
    if (!o) return;
    o.total--;
    if (up.idle) {
      const i = o.idle.indexOf(up);
      if (i !== -1) o.idle.splice(i, 1);
    }
    const next = o.waiting.shift();
    if (next) this.open(o, up.key, next.address, next.family, next.port, next.name, next.user);
    else if (o.total === 0) this.origins.delete(up.key);
  }

  destroy(): void {
    this.closing = true;
    for (const o of this.origins.values()) {
      for (const up of o.idle.splice(0)) up.destroy();
    }
  }
}
