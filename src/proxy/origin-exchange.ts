import { http } from '../net/http.js';
import type { Socket } from 'node:net';
import type { VigieConfig } from '../config/types.js';
import type { ConnectionRecord } from './events.js';
import { type Gate, type Reply, refusalHeaders } from './gate.js';
import { ChunkedScanner, cleanHead, CRLF2, parseResponseHead, type RequestHead, type ResponseHead } from './http1.js';
import { errorPage, pickLang, type UpstreamProblem } from './pages.js';
import type { IdleSweeper } from './idle.js';
import { classify, statusFor } from './target.js';
import type { Upstream, UpstreamPool, UpstreamUser } from './upstream.js';
import type { ClientConnection } from './client-connection.js';

/** What a client connection needs from the proxy around it. */
export interface ClientContext {
  readonly config: VigieConfig;
  readonly via: string;
  readonly pool: UpstreamPool;
  /** Inactivity limits of client connections, origin connections and tunnels. */
  readonly idle: IdleSweeper;
  /** Admits, decides, records and says what to answer (src/proxy/gate.ts). */
  readonly gate: Gate;
  requestDone(rec: ConnectionRecord): void;
  upstreamError(problem: UpstreamProblem): void;
  /** Gives the connection (and the bytes read but not used) to node's HTTP server. */
  handoff(socket: Socket, unread: Buffer | null): void;
  /** Opens a CONNECT tunnel on this socket; `head` is what the client sent after the request. */
  tunnel(socket: Socket, target: string, acceptLanguage: string | undefined, head: Buffer, clientAddr?: string, proxyAuthorization?: string): void;
  /** The connection stopped being a fast-path connection (closed, handed off, tunnelled). */
  released(conn: ClientConnection): void;
}

const HTML = 'text/html; charset=utf-8';
const TEXT = 'text/plain; charset=utf-8';
/** Longest response head accepted from an origin. */
const MAX_RESPONSE_HEAD = 65_536;
/** Up to this size, a response's head and body go out in one write. */
const SMALL_BODY = 8192;

/** Where a client connection stands. */
export const enum ConnState {
  /** Between requests (possibly with part of the next head buffered). */
  Idle,
  /** One exchange in progress; what the client sends meanwhile is buffered (pipelining) or is the request body. */
  Busy,
  /** Closed, handed to node's HTTP server, or become a tunnel: no longer ours. */
  Gone,
}

/**
 * The origin side of a client connection's exchange: the request forwarded over a pooled
 * keep-alive origin connection (src/proxy/upstream.ts), the response head rewritten and its body
 * passed on as it comes, following its framing; or an answer from the proxy itself (pages).
 * Reading the client's requests is ClientConnection's part (src/proxy/client-connection.ts).
 */
export abstract class OriginExchange implements UpstreamUser {
  idleSince = 0;
  idleLimit = 0;
  protected buf: Buffer | null = null;
  protected state = ConnState.Idle;
  /** Reading from the client is paused: pipelined data piles up, or the origin cannot take the body yet. */
  protected paused = false;
  protected closeAfter = false;
  /** Client bytes of the read in progress went into a write that did not complete at once. */
  protected keptRead = false;

  // The exchange in progress (reset by finish()).
  protected rec: ConnectionRecord | null = null;
  protected req: RequestHead | null = null;
  /** The gate's answer for the exchange in progress: where to connect. */
  protected pass: Reply | null = null;
  /** The Host header to send: the request target's authority. */
  protected authority = '';
  protected out = '';
  protected bodyLeft = 0;
  protected up: Upstream | null = null;
  protected waitingKey: string | null = null;
  protected respBuf: Buffer | null = null;
  protected resp: ResponseHead | null = null;
  protected left = 0;
  protected chunks: ChunkedScanner | null = null;
  protected upPaused = false;
  protected reusable = true;
  protected gotResponseBytes = false;
  protected retried = false;
  protected headSent = false;
  protected sent = 0;
  protected received = 0;

  constructor(
    protected readonly socket: Socket,
    protected readonly ctx: ClientContext,
  ) {}

  /** The exchange is over: record it, give the origin connection back, go on with the next request. */
  protected abstract finish(): void;

  /** Client bytes were just written to `s`: if they wait in its queue, the read's buffer is theirs. */
  protected noteQueued(s: Socket): void {
    if (s.writableLength > 0) this.keptRead = true;
  }

  protected pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  protected resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  /** Carries out a gate's answer that is not a forward: a block page, a refusal, a DNS error. */
  protected answer(r: Reply): void {
    if (r.problem !== null) this.ctx.upstreamError(r.problem);
    this.reply(r.status, r.html ? HTML : TEXT, Buffer.from(r.body), refusalHeaders(r));
  }

  /** Sends the request on: `path` and the header `lines` are the gate's and the client's unless a subclass sets some. */
  protected forward(path = this.pass!.path, lines = this.req!.forward): void {
    const p = this.req!;
    this.out = `${p.method} ${path} HTTP/1.1\r\n${lines}Host: ${this.authority}\r\n\r\n`;
    this.acquire();
  }

  protected acquire(): void {
    const r = this.pass!;
    // By the name connected to: a SafeSearch retarget never shares an origin connection with the original.
    const key = `${r.connectHost}:${r.port}`;
    this.waitingKey = key;
    this.ctx.pool.acquire(key, r.address, r.family, r.port, this, r.connectHost);
  }

  upReady(up: Upstream): void {
    this.waitingKey = null;
    if (this.rec === null) {
      // The client left while this connection was being opened.
      this.ctx.pool.release(up, true);
      return;
    }
    this.up = up;
    const s = up.socket;
    if (this.bodyLeft === 0 || this.buf === null) {
      s.write(this.out, 'latin1');
      return;
    }
    // The head and what already came of the body, in one writev.
    s.cork();
    s.write(this.out, 'latin1');
    const buf = this.buf;
    const n = Math.min(this.bodyLeft, buf.length);
    this.bodyLeft -= n;
    this.received += n;
    this.buf = n < buf.length ? buf.subarray(n) : null;
    if (!s.write(n === buf.length ? buf : buf.subarray(0, n))) this.pause();
    else if (this.bodyLeft > 0) this.resume();
    s.uncork();
    this.noteQueued(s);
  }

  upDrain(): void {
    if (this.bodyLeft > 0) this.resume();
  }

  protected readonly onDrain = (): void => {
    if (this.upPaused && this.up !== null) {
      this.upPaused = false;
      this.idleSince = this.ctx.idle.now;
      this.up.resumeReading();
    }
  };

  upFailed(err: NodeJS.ErrnoException): void {
    this.waitingKey = null;
    if (this.rec === null) return;
    this.fail(classify(err));
  }

  upData(d: Buffer): void {
    if (this.rec === null) return;
    this.gotResponseBytes = true;
    if (this.resp !== null) return this.body(d);
    const buf = this.respBuf === null ? d : Buffer.concat([this.respBuf, d]);
    const end = buf.indexOf(CRLF2);
    if (end === -1) {
      if (buf.length > MAX_RESPONSE_HEAD) return this.fail('reset');
      // `d` is the origin connection's read buffer: kept, it must be a copy.
      this.respBuf = buf === d ? Buffer.from(d) : buf;
      return;
    }
    this.respBuf = null;
    if (!cleanHead(buf, end)) return this.fail('reset');
    const h = parseResponseHead(buf.toString('latin1', 0, end), this.req!.method === 'HEAD', this.ctx.via, true);
    if (typeof h === 'string' || h.status === 101) return this.fail('reset');
    const rest = buf.length > end + 4 ? buf.subarray(end + 4) : null;
    if (h.status < 200) {
      // Interim answer (100, 103): passed on; the final head follows.
      const interim = `${h.statusLine}\r\n${h.forward}\r\n`;
      this.sent += interim.length;
      this.socket.write(interim, 'latin1');
      if (rest !== null) this.upData(rest);
      return;
    }
    this.resp = h;
    if (!h.reusable) this.reusable = false;
    if (h.framing === 'close') this.closeAfter = true;
    const head = `${h.statusLine}\r\n${h.forward}${this.closeAfter ? 'Connection: close\r\n' : ''}\r\n`;
    this.rec.status = h.status;
    this.headSent = true;
    this.sent += head.length;
    this.left = h.length;
    if (h.framing === 'chunked') this.chunks = new ChunkedScanner();
    const s = this.socket;
    if (h.framing === 'none' || (h.framing === 'length' && h.length === 0)) {
      s.write(head, 'latin1');
      if (rest !== null) this.reusable = false;
      return this.finish();
    }
    if (rest === null) {
      s.write(head, 'latin1');
      return;
    }
    if (rest.length <= SMALL_BODY && h.framing === 'length' && rest.length === h.length) {
      // A whole small answer in one read: one string, one write(2), no writev bookkeeping.
      this.sent += rest.length;
      this.left = 0;
      s.write(head + rest.toString('latin1'), 'latin1');
      return this.finish();
    }
    s.cork();
    s.write(head, 'latin1');
    this.body(rest);
    s.uncork();
  }

  /** Our client's socket still holds data to send, which may be the origin's last chunk. */
  upHeld(): boolean {
    return this.socket.writableLength > 0;
  }

  /** Passes response body bytes on, following the framing to find the end. */
  protected body(d: Buffer): void {
    let chunk = d;
    let done = false;
    const h = this.resp!;
    if (h.framing === 'length') {
      if (d.length >= this.left) {
        if (d.length > this.left) {
          chunk = d.subarray(0, this.left);
          this.reusable = false;
        }
        this.left = 0;
        done = true;
      } else this.left -= d.length;
    } else if (h.framing === 'chunked') {
      const end = this.chunks!.scan(d);
      // Broken framing: the head is out, so fail() cuts both connections.
      if (end === -2) return this.fail('reset');
      if (end >= 0) {
        done = true;
        if (end < d.length) {
          chunk = d.subarray(0, end);
          this.reusable = false;
        }
      }
    }
    this.sent += chunk.length;
    if (!this.socket.write(chunk) && !done && this.up !== null) {
      this.upPaused = true;
      // From here the wait is the client's: its idleMs counts (see onIdle).
      this.idleSince = this.ctx.idle.now;
      this.up.pauseReading();
    }
    if (done) this.finish();
  }

  upClosed(err: NodeJS.ErrnoException | null): void {
    const up = this.up;
    this.up = null;
    if (this.rec === null || this.state !== ConnState.Busy) return;
    if (this.resp !== null) {
      // A body that ends with the connection is complete; any other was cut short.
      if (this.resp.framing === 'close' && err === null) return this.finish();
      return this.fail('reset');
    }
    // A kept-alive connection the origin had just closed: try once more on a fresh one.
    const m = this.req!.method;
    if (up !== null && up.reused && !this.gotResponseBytes && !this.retried && this.req!.contentLength === 0 && (m === 'GET' || m === 'HEAD')) {
      this.retried = true;
      this.acquire();
      return;
    }
    this.fail(err ? classify(err) : 'reset');
  }

  upTimeout(): void {
    // Before the head: a 504 page; after it: the connection is cut. Counted either way, as the
    // node:http path does.
    if (this.rec !== null) this.fail('response-timeout');
  }

  protected dropUpstream(): void {
    const up = this.up;
    if (up === null) return;
    this.up = null;
    up.user = null;
    up.destroy();
  }

  protected fail(problem: UpstreamProblem): void {
    const rec = this.rec!;
    rec.problem = problem;
    this.ctx.upstreamError(problem);
    this.dropUpstream();
    if (this.headSent) {
      this.socket.destroy();
      return;
    }
    if (this.bodyLeft > 0) this.closeAfter = true;
    this.reply(statusFor(problem), HTML, Buffer.from(errorPage(pickLang(this.req!.acceptLanguage), rec.host, problem)));
  }

  /** Answers the current request from the proxy itself (block, error and refusal pages). */
  protected reply(status: number, type: string, body: Buffer, extra = ''): void {
    const head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nVia: ${this.ctx.via}\r\n${extra}${this.closeAfter ? 'Connection: close\r\n' : ''}\r\n`;
    if (this.rec !== null) this.rec.status = status;
    this.headSent = true;
    const s = this.socket;
    if (this.req!.method === 'HEAD') {
      s.write(head, 'latin1');
      this.sent += head.length;
    } else {
      s.cork();
      s.write(head, 'latin1');
      s.write(body);
      s.uncork();
      this.sent += head.length + body.length;
    }
    this.finish();
  }

}
