import type { Socket } from 'node:net';
import type { ConnectionRecord } from './events.js';
import { parseAbsoluteUrl, type GateUser, type Reply } from './gate.js';
import { cleanHead, CRLF2, parseRequestHead, type RequestHead } from './http1.js';
import type { IdleMember } from './idle.js';
import type { ClientReader } from './client-reads.js';
import { ConnState, OriginExchange, type ClientContext } from './origin-exchange.js';

const LFLF = Buffer.from('\n\n');
const HTML = 'text/html; charset=utf-8';
const EMPTY = Buffer.alloc(0);

/**
 * One client connection speaking plain HTTP/1.1 through the proxy (the fast path), on raw sockets.
 * It handles what browsing is made of (requests without a body or with a Content-Length body,
 * any response framing) and CONNECT; anything else (origin-form requests such as the PAC file,
 * chunked uploads, Expect, Upgrade, HTTP/1.0, odd heads) goes to node's HTTP server with the bytes
 * already read, for the rest of the connection. Node's request/response objects cost more than the
 * filtering itself; here a request is one head string in, one head string out.
 */
export class ClientConnection extends OriginExchange implements IdleMember, ClientReader, GateUser {
  private processing = false;
  private headerTimer: NodeJS.Timeout | null = null;
  protected readonly client: string;
  /** Handed to node's HTTP server or become a tunnel. */
  private handedOver = false;
  /** Attached at the start, all taken off when the connection leaves the fast path. */
  private readonly listeners: [string, (d: Buffer) => void][];

  constructor(socket: Socket, ctx: ClientContext, client = socket.remoteAddress ?? '') {
    super(socket, ctx);
    this.client = client;
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

  /** The proxy is shutting down: close now if idle, else after the exchange in progress. */
  closeSoon(): void {
    if (this.state === ConnState.Idle && this.buf === null) this.socket.destroy();
    else this.closeAfter = true;
  }

  private readonly onData = (d: Buffer): void => {
    this.idleSince = this.ctx.idle.now;
    if (this.state === ConnState.Busy) {
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
    if (this.state === ConnState.Gone) return;
    this.append(d);
    this.process();
  };

  private append(d: Buffer): void {
    this.buf = this.buf === null ? d : Buffer.concat([this.buf, d]);
  }

  /** Takes the next request heads from the buffer, as long as the connection is between exchanges. */
  protected process(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      const max = this.ctx.config.limits.maxHeaderBytes;
      while (this.state === ConnState.Idle && this.buf !== null) {
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
        if (p === null || !this.fastTarget(p)) return this.handoff();
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

  protected detach(): void {
    this.state = ConnState.Gone;
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

  protected handoff(): void {
    const unread = this.buf;
    this.buf = null;
    this.detach();
    this.ctx.handoff(this.socket, unread);
  }

  /** Whether this path takes a request of this form: absolute-form and CONNECT (origin-form: the PAC file, 400s). */
  protected fastTarget(p: RequestHead): boolean {
    return p.target.charCodeAt(0) !== 47 /* / */;
  }

  /**
   * The gate's answer for the request `p` (and the authority to send as Host), or an answer of
   * this entry's own, [status, html], given at once and not journaled.
   */
  protected enter(p: RequestHead): Reply | [number, string] {
    const t = parseAbsoluteUrl(p.target);
    this.authority = t === null ? '' : t.authority;
    return this.ctx.gate.enter({ client: this.client, mode: 'explicit', method: p.method, host: t === null ? '' : t.host, port: t === null ? 0 : t.port, path: t === null ? '' : t.path, acceptLanguage: p.acceptLanguage, proxyAuthorization: p.proxyAuthorization });
  }

  protected begin(p: RequestHead, headBytes: number): void {
    this.state = ConnState.Busy;
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
    const r = this.enter(p);
    if (Array.isArray(r)) {
      unreadBody();
      return this.reply(r[0], HTML, Buffer.from(r[1]));
    }
    this.rec = r.record;
    this.pass = r;
    if (r.kind !== 'forward') {
      unreadBody();
      return this.answer(r);
    }
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

  /** The exchange is over: record it, give the origin connection back, go on with the next request. */
  protected finish(): void {
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
      this.state = ConnState.Gone;
      this.buf = null;
      this.socket.end();
      return;
    }
    this.state = ConnState.Idle;
    // The quiet time between requests counts from the end of this answer.
    this.idleSince = this.ctx.idle.now;
    this.resume();
    if (this.buf !== null) this.process();
  }

  protected reset(): void {
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

  protected readonly onHeadersTimeout = (): void => {
    this.headerTimer = null;
    if (this.state !== ConnState.Idle) return;
    this.state = ConnState.Gone;
    this.socket.end('HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nContent-Length: 20\r\nConnection: close\r\n\r\n408 Request Timeout\n');
  };

  protected readonly onEnd = (): void => {
    // The client will send nothing more: answer what is in progress, then close.
    if (this.state === ConnState.Busy) this.closeAfter = true;
    else this.socket.end();
  };

  /** Quiet for the idle limit: closed, unless an exchange runs and the origin is the one awaited. */
  onIdle(): boolean {
    // During an exchange the origin's limits apply, unless the client is the one not reading.
    if (this.state === ConnState.Busy && !this.upPaused) return false;
    this.socket.destroy();
    return true;
  }

  protected readonly onError = (): void => {
    this.socket.destroy();
  };

  protected readonly onClose = (): void => {
    this.ctx.idle.delete(this);
    if (this.headerTimer) clearTimeout(this.headerTimer);
    this.headerTimer = null;
    if (this.waitingKey !== null) this.ctx.pool.cancel(this.waitingKey, this);
    this.waitingKey = null;
    this.dropUpstream();
    const rec = this.rec;
    this.reset();
    this.state = ConnState.Gone;
    this.buf = null;
    this.ctx.released(this);
    if (rec !== null) this.recordDone(rec);
  };

  /** The exchange's figures, for the journal and the metrics: once, whether it ended or was cut. */
  protected recordDone(rec: ConnectionRecord): void {
    rec.durationMs = Date.now() - rec.time;
    rec.bytesIn = this.received;
    rec.bytesOut = this.sent;
    this.ctx.requestDone(rec);
  }
}