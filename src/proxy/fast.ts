import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { VigieConfig } from '../config/types.js';
import type { ConnectionRecord } from './events.js';
import { parseAbsoluteUrl, type Gate, type GateUser, type Reply, refusalHeaders } from './gate.js';
import { ChunkedScanner, cleanHead, CRLF2, parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from './http1.js';
import { errorPage, pickLang, type UpstreamProblem } from './pages.js';
import type { IdleMember, IdleSweeper } from './idle.js';
import { classify, statusFor } from './target.js';
import type { ClientReader } from './client-reads.js';
import type { Upstream, UpstreamPool, UpstreamUser } from './upstream.js';

/** What a client connection needs from the proxy around it. */
export interface FastContext {
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

const LFLF = Buffer.from('\n\n');
const EMPTY = Buffer.alloc(0);
const HTML = 'text/html; charset=utf-8';
const TEXT = 'text/plain; charset=utf-8';
/** Longest response head accepted from an origin. */
const MAX_RESPONSE_HEAD = 65_536;
/** Up to this size, a response's head and body go out in one write. */
const SMALL_BODY = 8192;

const enum S {
  /** Between requests (possibly with part of the next head buffered). */
  Idle,
  /** One exchange in progress; what the client sends meanwhile is buffered (pipelining) or is the request body. */
  Busy,
  /** Closed, handed to node's HTTP server, or become a tunnel: no longer ours. */
  Gone,
}

/**
 * The fast path: one client connection speaking plain HTTP/1.1 through the proxy, on raw sockets.
 * It handles what browsing is made of (requests without a body or with a Content-Length body,
 * any response framing) and CONNECT; anything else (origin-form requests such as the PAC file,
 * chunked uploads, Expect, Upgrade, HTTP/1.0, odd heads) goes to node's HTTP server with the bytes
 * already read, for the rest of the connection. Node's request/response objects cost more than the
 * filtering itself; here a request is one head string in, one head string out.
 */
export class ClientConnection implements UpstreamUser, IdleMember, ClientReader, GateUser {
  idleSince = 0;
  idleLimit = 0;
  private buf: Buffer | null = null;
  private state = S.Idle;
  private processing = false;
  private headerTimer: NodeJS.Timeout | null = null;
  /** Reading from the client is paused: pipelined data piles up, or the origin cannot take the body yet. */
  private paused = false;
  private closeAfter = false;
  private readonly client: string;
  /** Handed to node's HTTP server or become a tunnel. */
  private handedOver = false;
  /** Client bytes of the read in progress went into a write that did not complete at once. */
  private keptRead = false;
  /** Attached at the start, all taken off when the connection leaves the fast path. */
  private readonly listeners: [string, (d: Buffer) => void][];

  // The exchange in progress (reset by finish()).
  private rec: ConnectionRecord | null = null;
  private req: RequestHead | null = null;
  /** The gate's answer for the exchange in progress: where to connect. */
  private pass: Reply | null = null;
  /** The Host header to send: the request target's authority. */
  private authority = '';
  private out = '';
  private bodyLeft = 0;
  private up: Upstream | null = null;
  private waitingKey: string | null = null;
  private respBuf: Buffer | null = null;
  private resp: ResponseHead | null = null;
  private left = 0;
  private chunks: ChunkedScanner | null = null;
  private upPaused = false;
  private reusable = true;
  private gotResponseBytes = false;
  private retried = false;
  private headSent = false;
  private sent = 0;
  private received = 0;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: FastContext,
  ) {
    this.client = socket.remoteAddress ?? '';
    this.listeners = [['data', this.onData], ['end', this.onEnd], ['error', this.onError], ['close', this.onClose], ['drain', this.onDrain]];
    for (const [event, fn] of this.listeners) socket.on(event, fn);
    ctx.idle.add(this, ctx.config.timeouts.idleMs);
  }

  /** Takes the bytes already read from the connection before it became a `net.Socket` (src/proxy/raw-tunnel.ts). */
  feed(first: Buffer): void {
    this.onData(first);
  }

  fromClient(d: Buffer): boolean | null {
    if (this.handedOver) return null;
    this.keptRead = false;
    this.onData(d);
    return this.handedOver || this.keptRead || (this.buf !== null && this.buf.buffer === d.buffer);
  }

  /** Client bytes were just written to `s`: if they wait in its queue, the read's buffer is theirs. */
  private noteQueued(s: Socket): void {
    if (s.writableLength > 0) this.keptRead = true;
  }

  /** The proxy is shutting down: close now if idle, else after the exchange in progress. */
  closeSoon(): void {
    if (this.state === S.Idle && this.buf === null) this.socket.destroy();
    else this.closeAfter = true;
  }

  private readonly onData = (d: Buffer): void => {
    this.idleSince = this.ctx.idle.now;
    if (this.state === S.Busy) {
      if (this.bodyLeft > 0 && this.up !== null && this.buf === null) {
        const n = Math.min(this.bodyLeft, d.length);
        this.bodyLeft -= n;
        this.received += n;
        this.up.idleSince = this.ctx.idle.now;
        if (!this.up.socket.write(n === d.length ? d : d.subarray(0, n))) this.pause();
        this.noteQueued(this.up.socket);
        if (n < d.length) this.append(d.subarray(n));
      } else this.append(d);
      if (this.buf !== null && this.buf.length > 4 * this.ctx.config.limits.maxHeaderBytes) this.pause();
      return;
    }
    if (this.state === S.Gone) return;
    this.append(d);
    this.process();
  };

  private append(d: Buffer): void {
    this.buf = this.buf === null ? d : Buffer.concat([this.buf, d]);
  }

  private pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  /** Takes the next request heads from the buffer, as long as the connection is between exchanges. */
  private process(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      const max = this.ctx.config.limits.maxHeaderBytes;
      while (this.state === S.Idle && this.buf !== null) {
        const buf = this.buf;
        const end = buf.indexOf(CRLF2);
        if (end === -1) {
          // Too long, or lines ending in a bare LF: node's parser gives the right answer (431, 400).
          if (buf.length > max || buf.indexOf(LFLF) !== -1) return this.handoff();
          this.headerTimer ??= setTimeout(this.onHeadersTimeout, this.ctx.config.timeouts.headersMs);
          return;
        }
        if (end + 4 > max) return this.handoff();
        if (this.headerTimer) {
          clearTimeout(this.headerTimer);
          this.headerTimer = null;
        }
        // Control bytes, bare CRs or LFs: node's parser refuses them (400).
        if (!cleanHead(buf, end)) return this.handoff();
        const p = parseRequestHead(buf.toString('latin1', 0, end), this.ctx.via, true);
        if (p === null || p.target.charCodeAt(0) === 47 /* / */) return this.handoff();
        const rest = buf.length > end + 4 ? buf.subarray(end + 4) : null;
        if (p.method === 'CONNECT') {
          this.buf = null;
          this.detach();
          this.ctx.tunnel(this.socket, p.target, p.acceptLanguage, rest ?? EMPTY, this.client, p.proxyAuthorization);
          return;
        }
        this.buf = rest;
        this.begin(p, end + 4);
      }
    } finally {
      this.processing = false;
    }
  }

  private detach(): void {
    this.state = S.Gone;
    this.handedOver = true;
    if (this.headerTimer) clearTimeout(this.headerTimer);
    this.headerTimer = null;
    const s = this.socket;
    // Paused first, so nothing is read with nobody listening.
    s.pause();
    for (const [event, fn] of this.listeners) s.off(event, fn);
    this.ctx.idle.delete(this);
    this.ctx.released(this);
  }

  private handoff(): void {
    const unread = this.buf;
    this.buf = null;
    this.detach();
    this.ctx.handoff(this.socket, unread);
  }

  private begin(p: RequestHead, headBytes: number): void {
    this.state = S.Busy;
    this.req = p;
    this.received = headBytes;
    this.sent = 0;
    this.headSent = false;
    this.bodyLeft = p.contentLength;
    if (p.close) this.closeAfter = true;
    // A body we will not read would be taken for the next request: close after answering.
    const unreadBody = () => {
      if (this.bodyLeft > 0) this.closeAfter = true;
    };
    const t = parseAbsoluteUrl(p.target);
    const r = this.ctx.gate.enter({ client: this.client, mode: 'explicit', method: p.method, host: t === null ? '' : t.host, port: t === null ? 0 : t.port, path: t === null ? '' : t.path, acceptLanguage: p.acceptLanguage, proxyAuthorization: p.proxyAuthorization });
    this.rec = r.record;
    this.pass = r;
    if (r.kind !== 'forward') {
      unreadBody();
      return this.answer(r);
    }
    this.authority = t!.authority;
    if (r.address === '') this.ctx.gate.resolve(r, this);
    else this.forward();
  }

  /** The gate settled a name it had to resolve; a late answer finds the exchange gone. */
  gated(r: Reply): void {
    if (r !== this.pass) return;
    // Decided only now when the client had to be identified first.
    this.rec = r.record;
    if (r.kind === 'forward') return this.forward();
    if (this.bodyLeft > 0) this.closeAfter = true;
    this.answer(r);
  }

  /** Carries out a gate's answer that is not a forward: a block page, a refusal, a DNS error. */
  private answer(r: Reply): void {
    if (r.problem !== null) this.ctx.upstreamError(r.problem);
    this.reply(r.status, r.html ? HTML : TEXT, Buffer.from(r.body), refusalHeaders(r));
  }

  private forward(): void {
    const p = this.req!;
    this.out = `${p.method} ${this.pass!.path} HTTP/1.1\r\n${p.forward}Host: ${this.authority}\r\n\r\n`;
    this.acquire();
  }

  private acquire(): void {
    const r = this.pass!;
    // By the name connected to: a SafeSearch retarget never shares an origin connection with the original.
    const key = `${r.connectHost}:${r.port}`;
    this.waitingKey = key;
    this.ctx.pool.acquire(key, r.address, r.family, r.port, this);
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

  private readonly onDrain = (): void => {
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
  private body(d: Buffer): void {
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
    if (this.rec === null || this.state !== S.Busy) return;
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
    // general path does.
    if (this.rec !== null) this.fail('response-timeout');
  }

  private dropUpstream(): void {
    const up = this.up;
    if (up === null) return;
    this.up = null;
    up.user = null;
    up.destroy();
  }

  private fail(problem: UpstreamProblem): void {
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
  private reply(status: number, type: string, body: Buffer, extra = ''): void {
    const head = `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nVia: ${this.ctx.via}\r\n${extra}${this.closeAfter ? 'Connection: close\r\n' : ''}\r\n`;
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

  /** The exchange is over: record it, give the origin connection back, go on with the next request. */
  private finish(): void {
    const rec = this.rec;
    const up = this.up;
    if (this.bodyLeft > 0) {
      // The answer came before the whole request body: neither connection knows where it stands.
      this.closeAfter = true;
      this.reusable = false;
    }
    if (up !== null) {
      this.up = null;
      if (this.upPaused) up.resumeReading();
      this.ctx.pool.release(up, this.reusable);
    }
    this.reset();
    if (rec !== null) this.recordDone(rec);
    if (this.closeAfter) {
      this.state = S.Gone;
      this.buf = null;
      this.socket.end();
      return;
    }
    this.state = S.Idle;
    // The quiet time between requests counts from the end of this answer.
    this.idleSince = this.ctx.idle.now;
    this.resume();
    if (this.buf !== null) this.process();
  }

  private reset(): void {
    this.rec = null;
    this.req = null;
    this.pass = null;
    this.authority = '';
    this.out = '';
    this.bodyLeft = 0;
    this.respBuf = null;
    this.resp = null;
    this.left = 0;
    this.chunks = null;
    this.upPaused = false;
    this.reusable = true;
    this.gotResponseBytes = false;
    this.retried = false;
  }

  private readonly onHeadersTimeout = (): void => {
    this.headerTimer = null;
    if (this.state !== S.Idle) return;
    this.state = S.Gone;
    this.socket.end('HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\n408 Request Timeout\n');
  };

  private readonly onEnd = (): void => {
    // The client will send nothing more: answer what is in progress, then close.
    if (this.state === S.Busy) this.closeAfter = true;
    else this.socket.end();
  };

  /** Quiet for the idle limit: closed, unless an exchange runs and the origin is the one awaited. */
  onIdle(): boolean {
    // During an exchange the origin's limits apply, unless the client is the one not reading.
    if (this.state === S.Busy && !this.upPaused) return false;
    this.socket.destroy();
    return true;
  }

  private readonly onError = (): void => {
    this.socket.destroy();
  };

  private readonly onClose = (): void => {
    this.ctx.idle.delete(this);
    if (this.headerTimer) clearTimeout(this.headerTimer);
    this.headerTimer = null;
    if (this.waitingKey !== null) this.ctx.pool.cancel(this.waitingKey, this);
    this.waitingKey = null;
    this.dropUpstream();
    const rec = this.rec;
    this.reset();
    this.state = S.Gone;
    this.buf = null;
    this.ctx.released(this);
    if (rec !== null) this.recordDone(rec);
  };

  /** The exchange's figures, for the journal and the metrics: once, whether it ended or was cut. */
  private recordDone(rec: ConnectionRecord): void {
    rec.durationMs = Date.now() - rec.time;
    rec.bytesIn = this.received;
    rec.bytesOut = this.sent;
    this.ctx.requestDone(rec);
  }
}
