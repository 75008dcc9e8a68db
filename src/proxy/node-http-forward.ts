import type { IncomingMessage, OutgoingHttpHeaders, Server, ServerResponse } from 'node:http';
import { http } from '../net/http.js';
import type { Socket } from 'node:net';
import type { VigieConfig } from '../config/types.js';
import type { ConnectionRecord } from './events.js';
import { parseAbsoluteUrl, type Gate, type GateMode, type Reply } from './gate.js';
import { forwardHeaders } from './headers.js';
import type { Emit } from './observe.js';
import { errorPage, pickLang, type UpstreamProblem } from './pages.js';
import { PoolAgent } from './origin-stream.js';
import { classify, statusFor, type Target } from './target.js';
import type { UpstreamPool } from './upstream.js';

/** What the node:http path needs from the proxy around it. */
export interface NodeHttpContext {
  readonly config: VigieConfig;
  readonly via: string;
  readonly gate: Gate;
  /** The origin connections, shared with the fast path (src/proxy/upstream.ts). */
  readonly pool: UpstreamPool;
  readonly emit: Emit;
  /** Answers origin-form requests made to the proxy itself (PAC file, ...); false = not handled. */
  local(req: IncomingMessage, res: ServerResponse): boolean;
  /** A CONNECT request read by node's HTTP server. */
  tunnel(socket: Socket, target: string, acceptLanguage: string | undefined, head: Buffer, clientAddr?: string, proxyAuthorization?: string): void;
}

const HTML = 'text/html; charset=utf-8';
const TEXT = 'text/plain; charset=utf-8';
const READ_MARK = Symbol('vigie.bytesReadAccounted');

/** Answers a request that cannot be read (or must not be) with `status`, and closes. */
export function refuseConnection(socket: Socket, status: number): void {
  const body = `${status} ${http.STATUS_CODES[status]}\n`;
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * Requests read by node's HTTP server: what a ClientConnection (src/proxy/client-connection.ts)
 * does not fully understand (origin-form requests, chunked uploads, Expect, Upgrade, HTTP/1.0, odd
 * heads) and the transparent HTTP entry. Through the gate, then forwarded by node's HTTP client
 * over the fast path's origin pool (src/proxy/origin-stream.ts), or answered; malformed input gets
 * 400/431/408.
 */
export class NodeHttpForwarder {
  /** Node's HTTP server, never listening itself: it gets the connections handed over. */
  private readonly server: Server;
  /** Node's client takes origin connections from the pool through it (src/proxy/origin-stream.ts). */
  private readonly agent: PoolAgent;

  constructor(private readonly ctx: NodeHttpContext) {
    this.agent = new PoolAgent(ctx.pool);
    this.server = this.createServer();
  }

  /** Takes a connection, with the bytes already read but not used, for the rest of its life. */
  take(socket: Socket, unread: Buffer | null): void {
    if (unread !== null) socket.unshift(unread);
    // Bytes the fast path already recorded are not counted again by this path's first request.
    (socket as Socket & { [READ_MARK]?: number })[READ_MARK] = socket.bytesRead - (unread?.length ?? 0);
    this.server.emit('connection', socket);
    socket.resume();
  }

  /** Closes the connections idle between requests (the proxy is closing). */
  closeIdle(): void {
    this.server.closeIdleConnections();
  }

  /** Stops node's connection checks; exchanges still in progress lose their origin connection. */
  close(): void {
    // It reports "not running": it never listened.
    this.server.close(() => {});
    this.agent.destroy();
  }

  private createServer(): Server {
    const { config } = this.ctx;
    const server = http.createServer({
      maxHeaderSize: config.limits.maxHeaderBytes,
      requestTimeout: 0,
      headersTimeout: config.timeouts.headersMs,
      keepAliveTimeout: config.timeouts.idleMs,
      noDelay: true,
    });
    server.timeout = config.timeouts.idleMs;
    // llhttp takes HTTP/0.9 request lines (no version) and any HTTP/x.y: only 1.0 and 1.1 pass.
    server.on('request', (req, res) => (req.httpVersionMajor === 1 ? this.onRequest(req, res) : refuseConnection(req.socket, 400)));
    server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => (req.httpVersionMajor === 1 ? this.ctx.tunnel(socket, req.url ?? '', req.headers['accept-language'], head, undefined, req.headers['proxy-authorization']) : refuseConnection(socket, 400)));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.clientError(err, socket));
    // Starts node's tracking of the connections it is given (headers timeout, closeIdleConnections):
    // it never listens itself, the front servers below do.
    server.emit('listening');
    return server;
  }

  /** Answers what node's HTTP parser refuses (bad request, headers too large, timeout). */
  clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    refuseConnection(socket, err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    if (url.charCodeAt(0) === 47 /* / */) {
      if (this.ctx.local(req, res)) return;
      this.sendPage(res, 400, errorPage(pickLang(req.headers['accept-language']), '', 'bad-request'));
      return;
    }
    this.request(req, res, parseAbsoluteUrl(url), 'explicit');
  }

  /** A request whose target the entry has read (null: unreadable): through the gate, then forwarded or answered. */
  request(req: IncomingMessage, res: ServerResponse, t: Target | null, mode: GateMode): void {
    const socket = req.socket;
    const r = this.ctx.gate.enter({ client: socket.remoteAddress ?? '', mode, method: req.method ?? 'GET', host: t === null ? '' : t.host, port: t === null ? 0 : t.port, path: t === null ? '' : t.path, acceptLanguage: req.headers['accept-language'], proxyAuthorization: req.headers['proxy-authorization'] });
    if (r.pending !== null) {
      // The client is being identified: decided (and recorded) once that is done.
      this.ctx.gate.resolve(r, { gated: () => this.settled(req, res, r, t) });
      return;
    }
    this.settled(req, res, r, t);
  }

  /** A decided request: recorded when it ends, then forwarded or answered. */
  private settled(req: IncomingMessage, res: ServerResponse, r: Reply, t: ReturnType<typeof parseAbsoluteUrl>): void {
    const socket = req.socket;
    const rec = r.record;
    if (rec !== null) {
      // The parser has already read this request's headers (often its whole body too): count from
      // where the previous request on this connection stopped, so uploads and headers are included.
      const read0 = (socket as Socket & { [READ_MARK]?: number })[READ_MARK] ?? 0;
      const written0 = socket.bytesWritten;
      res.once('close', () => {
        rec.status = res.headersSent ? res.statusCode : 0;
        rec.durationMs = Date.now() - rec.time;
        rec.bytesIn = socket.bytesRead - read0;
        (socket as Socket & { [READ_MARK]?: number })[READ_MARK] = socket.bytesRead;
        rec.bytesOut = socket.bytesWritten - written0;
        this.ctx.emit('requestDone', rec);
      });
    }
    if (r.kind !== 'forward') return this.answer(req, res, r);
    if (r.address !== '') return this.forward(req, res, r, t!.authority);
    this.ctx.gate.resolve(r, { gated: () => (r.kind === 'forward' ? this.forward(req, res, r, t!.authority) : this.answer(req, res, r)) });
  }

  /** Carries out a gate's answer that is not a forward: block page, refusal, DNS error. */
  private answer(req: IncomingMessage, res: ServerResponse, r: Reply): void {
    req.resume();
    if (r.problem !== null) this.ctx.emit('upstreamError', r.problem);
    if (res.destroyed) return;
    const body = Buffer.from(r.body);
    const headers: OutgoingHttpHeaders = { 'Content-Type': r.html ? HTML : TEXT, 'Content-Length': body.length, 'Cache-Control': 'no-store', Via: this.ctx.via };
    if (r.retryAfter) headers['Retry-After'] = '5';
    if (r.challenge !== null) headers['Proxy-Authenticate'] = r.challenge;
    if (r.location !== null) headers.Location = r.location;
    res.writeHead(r.status, headers);
    res.end(body);
  }

  /** Forwards over the pool to the address the gate checked: never a second lookup that could answer otherwise. */
  private forward(req: IncomingMessage, res: ServerResponse, r: Reply, authority: string): void {
    if (res.destroyed) return;
    const rec = r.record!;
    this.agent.relay(req, res, r, r.path, forwardHeaders(req.rawHeaders, this.ctx.via, authority), this.ctx.via, (err) => this.fail(req, res, rec, r.host, classify(err)));
  }

  private fail(req: IncomingMessage, res: ServerResponse, rec: ConnectionRecord, host: string, problem: UpstreamProblem): void {
    rec.problem = problem;
    this.ctx.emit('upstreamError', problem);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    req.resume();
    this.sendPage(res, statusFor(problem), errorPage(pickLang(req.headers['accept-language']), host, problem));
  }

  private sendPage(res: ServerResponse, status: number, html: string): void {
    if (res.destroyed) return;
    const body = Buffer.from(html);
    res.writeHead(status, { 'Content-Type': HTML, 'Content-Length': body.length, 'Cache-Control': 'no-store', Via: this.ctx.via });
    res.end(body);
  }

}
