import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import type { LookupFunction } from 'node:net';
import type { VigieConfig } from '../config/types.js';
import { normalizeHost } from '../lists/normalize.js';
import { decideCached } from '../policy/decide.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { Decision } from '../policy/types.js';
import type { ConnectionRecord, ProxyObserver } from './events.js';
import { forwardHeaders } from './headers.js';
import { blockPage, errorPage, pickLang, problemText, refusedPage, type UpstreamProblem } from './pages.js';
import { HostResolver, ResolveError, type Resolved } from './resolver.js';

export interface ProxyDeps {
  config: VigieConfig;
  /** The current policy; read once per request so a swap never splits a request. */
  snapshot: () => PolicySnapshot;
  resolver: HostResolver;
  observers?: ProxyObserver[];
  /** Answers origin-form requests made to the proxy itself (PAC file, ...); false = not handled. */
  local?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Asked before new work (request or CONNECT); false = refuse with 503 (e.g. the journal cannot record). */
  admit?: () => boolean;
}

interface Target {
  host: string;
  port: number;
  path: string;
  /** The Host header to send: the request-target's authority. */
  authority: string;
}

/** Splits `host[:port]` (IPv6 in brackets) as found in a request line. */
export function splitAuthority(authority: string, defaultPort: number): { host: string; port: number } | null {
  let host = authority;
  let port = defaultPort;
  const at = host.lastIndexOf('@');
  if (at !== -1) host = host.slice(at + 1);
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end === -1) return null;
    const rest = host.slice(end + 1);
    host = host.slice(0, end + 1);
    if (rest) {
      if (!rest.startsWith(':')) return null;
      port = Number(rest.slice(1));
    }
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) {
      port = Number(host.slice(colon + 1));
      host = host.slice(0, colon);
    }
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  const normalized = normalizeHost(host);
  if (!normalized) return null;
  return { host: normalized, port };
}

/** Parses an absolute-form `http://authority/path?query` request target. */
export function parseAbsoluteUrl(url: string): Target | null {
  if (url.length < 8 || url.charCodeAt(4) !== 58 /* : */ || url.slice(0, 7).toLowerCase() !== 'http://') return null;
  let end = url.indexOf('/', 7);
  const q = url.indexOf('?', 7);
  if (q !== -1 && (end === -1 || q < end)) end = q;
  const authority = end === -1 ? url.slice(7) : url.slice(7, end);
  let path = end === -1 ? '/' : url.slice(end);
  if (path.charCodeAt(0) === 63 /* ? */) path = `/${path}`;
  const hash = path.indexOf('#');
  if (hash !== -1) path = path.slice(0, hash);
  const hp = splitAuthority(authority, 80);
  if (!hp) return null;
  return { host: hp.host, port: hp.port, path, authority: authority.slice(authority.lastIndexOf('@') + 1) };
}

function classify(err: NodeJS.ErrnoException): UpstreamProblem {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return 'unreachable';
    case 'ETIMEDOUT':
      return 'connect-timeout';
    default:
      return 'reset';
  }
}

const statusFor = (p: UpstreamProblem): number => (p === 'connect-timeout' || p === 'response-timeout' ? 504 : p === 'bad-request' ? 400 : 502);

const HTML = 'text/html; charset=utf-8';

/** Said when new work is refused because it could not be recorded (journal overflow policy `block`). */
const UNRECORDED =
  'Vigie : le journal des connexions ne peut pas enregistrer pour le moment ; les nouvelles connexions sont refusées. Réessayez dans un instant.\n' +
  'Vigie: the connection journal cannot record right now, so new connections are refused. Try again shortly.\n';
const READ_MARK = Symbol('vigie.bytesReadAccounted');

/**
 * The data plane: an explicit HTTP proxy. Absolute-form requests are forwarded over keep-alive
 * agents; CONNECT opens a TCP tunnel; both only after the policy allowed them.
 */
export class ProxyServer {
  readonly servers: http.Server[] = [];
  private readonly agent: http.Agent;
  private readonly via: string;
  private readonly observers: ProxyObserver[];
  private readonly lookup: LookupFunction;
  private readonly tunnels = new Set<Socket>();
  /** Open client connections, so close() can wait until each has ended its request. */
  private readonly sockets = new Set<Socket>();
  private onDrained: (() => void) | null = null;

  constructor(private readonly deps: ProxyDeps) {
    const { config } = deps;
    this.via = `1.1 ${config.proxyName}`;
    this.observers = deps.observers ?? [];
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: config.limits.maxSocketsPerOrigin,
      maxFreeSockets: config.limits.maxSocketsPerOrigin,
      scheduling: 'lifo',
      timeout: config.timeouts.idleMs,
    });
    // The agent pools sockets per origin name; new sockets resolve through our cache.
    this.lookup = ((hostname: string, options: { all?: boolean }, cb: (...args: unknown[]) => void) => {
      deps.resolver.resolve(hostname).then(
        (r) => (options.all ? cb(null, [{ address: r.address, family: r.family }]) : cb(null, r.address, r.family)),
        (e) => cb(e),
      );
    }) as unknown as LookupFunction;
  }

  private emit<K extends keyof ProxyObserver>(event: K, ...args: Parameters<NonNullable<ProxyObserver[K]>>): void {
    for (const o of this.observers) {
      const fn = o[event] as ((...a: unknown[]) => void) | undefined;
      if (fn) fn.apply(o, args);
    }
  }

  createServer(): http.Server {
    const { config } = this.deps;
    const server = http.createServer({
      maxHeaderSize: config.limits.maxHeaderBytes,
      requestTimeout: 0,
      headersTimeout: config.timeouts.headersMs,
      keepAliveTimeout: config.timeouts.idleMs,
      noDelay: true,
    });
    server.timeout = config.timeouts.idleMs;
    server.on('request', (req, res) => this.onRequest(req, res));
    server.on('connect', (req, socket, head) => this.onConnect(req, socket as Socket, head));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      this.emit('connectionsChanged', 'client', 1);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.emit('connectionsChanged', 'client', -1);
        if (!this.sockets.size) this.onDrained?.();
      });
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (!socket.writable || err.code === 'ECONNRESET') {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const body = `${status} ${http.STATUS_CODES[status]}\n`;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    });
    this.servers.push(server);
    return server;
  }

  /** Starts one listener per configured address; resolves with the bound addresses. */
  async listen(addresses = this.deps.config.listen): Promise<{ host: string; port: number }[]> {
    const bound: { host: string; port: number }[] = [];
    for (const a of addresses) {
      const server = this.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: a.host, port: a.port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const addr = server.address() as net.AddressInfo;
      bound.push({ host: addr.address, port: addr.port });
    }
    return bound;
  }

  /** Stops accepting; open connections are cut after `graceMs`. */
  async close(graceMs = 0): Promise<void> {
    const closing = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.servers) s.closeIdleConnections();
    const cut = () => {
      for (const s of this.servers) s.closeAllConnections();
      for (const t of this.tunnels) t.destroy();
    };
    const timer = setTimeout(cut, graceMs);
    if (graceMs === 0) cut();
    await Promise.all(closing);
    // A server reports closed before its sockets' own 'close' events, which is where cut requests
    // end and are recorded (journal, metrics): wait for those too.
    if (this.sockets.size) await new Promise<void>((resolve) => (this.onDrained = resolve));
    clearTimeout(timer);
    this.agent.destroy();
  }

  get activeTunnels(): number {
    return this.tunnels.size;
  }

  private record(kind: ConnectionRecord['kind'], time: number, client: string, method: string, scheme: ConnectionRecord['scheme'], host: string, port: number, path: string, decision: Decision, decisionSeconds: number): ConnectionRecord {
    return { kind, time, client, user: null, method, scheme, host, port, path, decision, status: 0, bytesIn: 0, bytesOut: 0, durationMs: 0, problem: null, decisionSeconds };
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    if (url.charCodeAt(0) === 47 /* / */) {
      if (this.deps.local?.(req, res)) return;
      this.sendPage(res, 400, errorPage(pickLang(req.headers['accept-language']), '', 'bad-request'));
      return;
    }
    if (this.deps.admit && !this.deps.admit()) {
      req.resume();
      if (res.destroyed) return;
      res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(UNRECORDED), 'Retry-After': '5', 'Cache-Control': 'no-store', Via: this.via });
      res.end(UNRECORDED);
      return;
    }
    const target = parseAbsoluteUrl(url);
    if (!target) {
      this.sendPage(res, 400, errorPage(pickLang(req.headers['accept-language']), '', 'bad-request'));
      return;
    }
    const started = Date.now();
    const t0 = process.hrtime.bigint();
    const client = req.socket.remoteAddress ?? '';
    const snapshot = this.deps.snapshot();
    const decision = decideCached(snapshot, { client, scheme: 'http', host: target.host, port: target.port, path: target.path, time: started });
    const rec = this.record('request', started, client, req.method ?? 'GET', 'http', target.host, target.port, target.path, decision, Number(process.hrtime.bigint() - t0) / 1e9);
    const socket = req.socket;
    // The parser has already read this request's headers (often its whole body too): count from
    // where the previous request on this connection stopped, so uploads and headers are included.
    const read0 = (socket as Socket & { [READ_MARK]?: number })[READ_MARK] ?? 0;
    const written0 = socket.bytesWritten;
    res.once('close', () => {
      rec.status = res.headersSent ? res.statusCode : 0;
      rec.durationMs = Date.now() - started;
      rec.bytesIn = socket.bytesRead - read0;
      (socket as Socket & { [READ_MARK]?: number })[READ_MARK] = socket.bytesRead;
      rec.bytesOut = socket.bytesWritten - written0;
      this.emit('requestDone', rec);
    });
    if (decision.action === 'block') {
      const lang = pickLang(req.headers['accept-language']);
      this.sendPage(res, 403, decision.rule === 'no-client' ? refusedPage(lang) : blockPage(lang, target.host, decision));
      req.resume();
      return;
    }
    const known = this.deps.resolver.peek(target.host);
    if (known === undefined) {
      this.deps.resolver.resolve(target.host).then(
        (r) => this.forward(req, res, target, r, rec),
        (e: unknown) => this.fail(req, res, rec, target.host, e instanceof ResolveError ? 'dns' : 'unreachable'),
      );
    } else if (known instanceof ResolveError) this.fail(req, res, rec, target.host, 'dns');
    else this.forward(req, res, target, known, rec);
  }

  private forward(req: IncomingMessage, res: ServerResponse, target: Target, _resolved: Resolved, rec: ConnectionRecord): void {
    const { timeouts } = this.deps.config;
    if (res.destroyed) return;
    const upstream = http.request({
      host: target.host,
      port: target.port,
      method: req.method,
      path: target.path,
      headers: forwardHeaders(req.rawHeaders, this.via, target.authority) as unknown as http.OutgoingHttpHeaders,
      setHost: false,
      agent: this.agent,
      lookup: this.lookup,
      timeout: timeouts.upstreamResponseMs,
    });
    let connectTimer: NodeJS.Timeout | null = null;
    upstream.once('socket', (s: Socket) => {
      if (!s.connecting) return;
      connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), timeouts.connectMs);
      s.once('connect', () => {
        if (connectTimer) clearTimeout(connectTimer);
        connectTimer = null;
      });
    });
    upstream.on('timeout', () => upstream.destroy(Object.assign(new Error('response timeout'), { code: 'ERESPONSETIMEOUT' })));
    upstream.on('response', (up) => {
      res.writeHead(up.statusCode ?? 502, up.statusMessage, forwardHeaders(up.rawHeaders, this.via) as unknown as http.OutgoingHttpHeaders);
      up.pipe(res);
      up.on('error', () => res.destroy());
      up.on('aborted', () => res.destroy());
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (connectTimer) clearTimeout(connectTimer);
      const problem: UpstreamProblem = err.code === 'ERESPONSETIMEOUT' ? 'response-timeout' : err.code === 'ENOTFOUND' || err instanceof ResolveError ? 'dns' : classify(err);
      this.fail(req, res, rec, target.host, problem);
    });
    // The client went away: stop talking to the origin too.
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  private fail(req: IncomingMessage, res: ServerResponse, rec: ConnectionRecord, host: string, problem: UpstreamProblem): void {
    rec.problem = problem;
    this.emit('upstreamError', problem);
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
    res.writeHead(status, { 'Content-Type': HTML, 'Content-Length': body.length, 'Cache-Control': 'no-store', Via: this.via });
    res.end(body);
  }

  private onConnect(req: IncomingMessage, client: Socket, head: Buffer): void {
    const started = Date.now();
    const t0 = process.hrtime.bigint();
    const lang = pickLang(req.headers['accept-language']);
    client.on('error', () => client.destroy());
    if (this.deps.admit && !this.deps.admit()) {
      this.endTunnel(client, 503, UNRECORDED);
      return;
    }
    const target = req.url ?? '';
    // CONNECT takes authority-form only, port included (RFC 9110 §9.3.6).
    const hp = /:\d+$/.test(target) && !target.includes('/') ? splitAuthority(target, 443) : null;
    if (!hp) {
      this.endTunnel(client, 400, problemText(lang, 'bad-request'));
      return;
    }
    const clientAddr = client.remoteAddress ?? '';
    const decision = decideCached(this.deps.snapshot(), { client: clientAddr, scheme: 'connect', host: hp.host, port: hp.port, path: '', time: started });
    const rec = this.record('tunnel', started, clientAddr, 'CONNECT', 'connect', hp.host, hp.port, '', decision, Number(process.hrtime.bigint() - t0) / 1e9);
    if (decision.action === 'block') {
      rec.status = 403;
      this.emit('tunnelOpened', rec);
      const why = decision.rule === 'no-client' ? 'client not allowed' : decision.rule === 'port' ? `port ${hp.port} not allowed` : `blocked: profile ${decision.profile}, category ${decision.category ?? 'none'} (${decision.rule})`;
      this.endTunnel(client, 403, `Vigie: ${why}\n`);
      return;
    }
    const open = (r: Resolved) => this.openTunnel(client, head, r, rec, lang);
    const failed = (problem: UpstreamProblem) => {
      rec.problem = problem;
      rec.status = statusFor(problem);
      this.emit('upstreamError', problem);
      this.emit('tunnelOpened', rec);
      this.endTunnel(client, rec.status, problemText(lang, problem) + '\n');
    };
    const known = this.deps.resolver.peek(hp.host);
    if (known === undefined) this.deps.resolver.resolve(hp.host).then(open, () => failed('dns'));
    else if (known instanceof ResolveError) failed('dns');
    else open(known);
  }

  private openTunnel(client: Socket, head: Buffer, target: Resolved, rec: ConnectionRecord, lang: ReturnType<typeof pickLang>): void {
    if (client.destroyed) return;
    const { timeouts } = this.deps.config;
    const upstream = net.connect({ host: target.address, port: rec.port, family: target.family, noDelay: true });
    let opened = false;
    const connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), timeouts.connectMs);
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      opened = true;
      rec.status = 200;
      this.tunnels.add(client);
      this.emit('tunnelOpened', rec);
      this.emit('connectionsChanged', 'tunnel', 1);
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.setTimeout(timeouts.idleMs, () => upstream.destroy());
      client.setTimeout(timeouts.idleMs, () => client.destroy());
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const close = () => {
      if (!opened) return;
      opened = false;
      this.tunnels.delete(client);
      rec.durationMs = Date.now() - rec.time;
      rec.bytesIn = upstream.bytesWritten;
      rec.bytesOut = upstream.bytesRead;
      this.emit('connectionsChanged', 'tunnel', -1);
      this.emit('tunnelClosed', rec);
    };
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (!opened && !rec.status) {
        const problem = classify(err);
        rec.problem = problem;
        rec.status = statusFor(problem);
        this.emit('upstreamError', problem);
        this.emit('tunnelOpened', rec);
        this.endTunnel(client, rec.status, problemText(lang, problem) + '\n');
      } else client.destroy();
    });
    upstream.on('close', () => {
      client.destroy();
      close();
    });
    client.on('close', () => {
      upstream.destroy();
      close();
    });
  }

  private endTunnel(client: Socket, status: number, text: string): void {
    if (client.destroyed) return;
    const body = Buffer.from(text);
    client.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\nVia: ${this.via}\r\n\r\n${text}`);
  }
}
