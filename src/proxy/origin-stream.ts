import type { IncomingMessage, OutgoingHttpHeaders, RequestOptions, ServerResponse } from 'node:http';
import { http } from '../net/http.js';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { forwardHeaders } from './headers.js';
import type { Upstream, UpstreamPool, UpstreamUser } from './upstream.js';

/** What a connection a request did not end gets: the origin said nothing for the response timeout. */
export const responseTimeout = (): NodeJS.ErrnoException => Object.assign(new Error('response timeout'), { code: 'ERESPONSETIMEOUT' });

/**
 * A connection from the origin pool (src/proxy/upstream.ts) as a stream, for node's HTTP client:
 * the node:http path (src/proxy/node-http-forward.ts) forwards over the same connections, under
 * the same per-origin limit and timeouts, as the fast path. Node's client parses the response
 * on it; once it has ended one that leaves the connection reusable (node emits 'free', as it does
 * for an http.Agent), the connection goes back to the pool.
 *
 * The pool's connect and response limits end it with the errors node's own sockets give: a connect
 * timeout (ETIMEDOUT) and ERESPONSETIMEOUT, which the path turns into 504 pages.
 */
export class OriginStream extends Duplex implements UpstreamUser {
  private up: Upstream | null = null;
  private waiting = true;
  /** A write the origin's socket could not take at once: finished on its 'drain'. */
  private writeDone: ((err?: Error | null) => void) | null = null;
  /** Writes made before the connection was ready. */
  private queued: { chunk: Buffer; done: (err?: Error | null) => void }[] = [];
  /**
   * Whether the client is the one not reading: node holds response bytes it could not pass on
   * yet. The origin's silence then is not a response timeout (the fast path's rule too); the
   * client is under idleMs.
   */
  clientBehind: (() => boolean) | null = null;
  /** Reading from the origin is paused by this stream (node's parser has not taken what it has). */
  private held = false;

  constructor(
    private readonly pool: UpstreamPool,
    private readonly key: string,
    address: string,
    family: number,
    port: number,
    name: string,
  ) {
    super();
    this.on('free', this.onFree);
    pool.acquire(key, address, family, port, this, name);
  }

  upReady(up: Upstream): void {
    this.waiting = false;
    if (this.destroyed) {
      this.pool.release(up, true);
      return;
    }
    this.up = up;
    const queued = this.queued;
    this.queued = [];
    for (const q of queued) this.send(q.chunk, q.done);
  }

  upFailed(err: NodeJS.ErrnoException): void {
    this.waiting = false;
    this.destroy(err);
  }

  upData(chunk: Buffer): void {
    // `chunk` is a view of the connection's read buffer: node's parser gets a copy.
    if (!this.push(Buffer.from(chunk))) {
      this.held = true;
      this.up?.pauseReading();
    }
  }

  upHeld(): boolean {
    return false;
  }

  upClosed(err: NodeJS.ErrnoException | null): void {
    this.up = null;
    if (err !== null) this.destroy(err);
    else this.push(null);
  }

  upTimeout(): void {
    // Not reading the origin ourselves is no silence of the origin's: on a loaded host node's
    // parser may not have taken the bytes yet even though the client is keeping up.
    if ((this.held || this.clientBehind?.()) && this.up !== null) {
      this.up.idleSince = this.pool.idle.now;
      return;
    }
    this.destroy(responseTimeout());
  }

  upDrain(): void {
    const done = this.writeDone;
    this.writeDone = null;
    done?.();
  }

  override _read(): void {
    this.held = false;
    this.up?.resumeReading();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.send(chunk, done);
  }

  private send(chunk: Buffer, done: (err?: Error | null) => void): void {
    const up = this.up;
    if (up === null) {
      if (this.waiting) this.queued.push({ chunk, done });
      else done(Object.assign(new Error('origin connection closed'), { code: 'ECONNRESET' }));
      return;
    }
    if (up.socket.write(chunk)) done();
    else this.writeDone = done;
  }

  /** Node's client will not use the connection again: it is closed, not pooled. */
  override _final(done: (err?: Error | null) => void): void {
    this.dropUpstream();
    done();
    this.destroy();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (this.waiting) this.pool.cancel(this.key, this);
    this.waiting = false;
    this.dropUpstream();
    for (const q of this.queued.splice(0)) q.done(err);
    done(err);
  }

  /** The response ended and the connection may carry another exchange: back to the pool. */
  private readonly onFree = (): void => {
    const up = this.up;
    this.up = null;
    if (up !== null) {
      up.resumeReading();
      this.pool.release(up, true);
    }
    this.destroy();
  };

  private dropUpstream(): void {
    const up = this.up;
    if (up === null) return;
    this.up = null;
    up.user = null;
    up.destroy();
  }
}

/** What a request on the node:http path tells PoolAgent about its origin. */
export interface PoolRequestOptions {
  /** The pool's key for the origin: `connectHost:port`, as the fast path's. */
  poolKey: string;
  host: string;
  family: number;
  port: number;
  /** The name connected to (the key's), verified against the certificate in a TLS pool. */
  name: string;
}

/**
 * The http.Agent of the node:http path. It keeps no connection of its own: each request gets an
 * OriginStream from the origin pool, and the pool alone keeps connections alive, limits them per
 * origin and times them out. `keepAlive` makes node's client ask for keep-alive and emit 'free'
 * after a response that allows reuse (OriginStream then gives the connection back);
 * `keepSocketAlive` is false so that the agent itself never holds one.
 */
export class PoolAgent extends http.Agent {
  constructor(private readonly pool: UpstreamPool) {
    super({ keepAlive: true });
  }

  override createConnection(options: PoolRequestOptions): Socket {
    return new OriginStream(this.pool, options.poolKey, options.host, options.family, options.port, options.name) as unknown as Socket;
  }

  override keepSocketAlive(): boolean {
    return false;
  }

  /**
   * `req` on to the origin the gate checked (its address, by the name connected to), the answer
   * relayed to `res`. The origin's silence while the client is behind is no response timeout; the
   * client gone, the origin request goes too. `failed` gets node's client errors.
   */
  relay(req: IncomingMessage, res: ServerResponse, to: PoolTarget, path: string, headers: string[], via: string, failed: (err: NodeJS.ErrnoException) => void): void {
    const options: RequestOptions & PoolRequestOptions = {
      host: to.address,
      family: to.family,
      port: to.port,
      // By the name connected to, as the fast path: both paths share each origin's connections and limit.
      poolKey: `${to.connectHost}:${to.port}`,
      name: to.connectHost,
      method: req.method,
      path,
      headers: headers as unknown as OutgoingHttpHeaders,
      setHost: false,
      agent: this,
    };
    const upstream = http.request(options);
    upstream.on('response', (up) => {
      (upstream.socket as unknown as OriginStream).clientBehind = () => res.writableNeedDrain || up.isPaused();
      res.writeHead(up.statusCode ?? 502, up.statusMessage, forwardHeaders(up.rawHeaders, via) as unknown as OutgoingHttpHeaders);
      up.pipe(res);
      up.on('error', () => res.destroy());
      up.on('aborted', () => res.destroy());
    });
    upstream.on('error', failed);
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }
}

/** Where a request goes: the address the gate checked, and the name connected to. */
export interface PoolTarget {
  address: string;
  family: number;
  port: number;
  connectHost: string;
}
