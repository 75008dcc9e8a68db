import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import type { Identity } from '../auth/identity.js';
import type { VigieConfig } from '../config/types.js';
import { ownListeners } from '../net/own-listeners.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { ConnectionRecord, ProxyObserver } from './events.js';
import { ClientReads } from './client-reads.js';
import { ClientConnection, type FastContext } from './fast.js';
import { ALERT, tlsAlert } from './clienthello.js';
import { connectTarget, Gate, parseAbsoluteUrl, refusalHeaders, type GateMode, type Reply } from './gate.js';
import { forwardHeaders } from './headers.js';
import { IdleSweeper, tickFor } from './idle.js';
import { errorPage, pickLang, problemText, type Lang, type UpstreamProblem } from './pages.js';
import type { HostResolver } from './resolver.js';
import { classify, connectTimeout, ESTABLISHED, statusFor, type Target } from './target.js';
import { rawBinding, rawSelfTest, takeOverAccept, type TcpHandle } from './raw.js';
import { RawConnection, type RawContext } from './raw-tunnel.js';
import { splice, TunnelIdle } from './splice.js';
import { listenTransparent, type TransparentBound, type TransparentHost } from './transparent.js';
import { UpstreamPool } from './upstream.js';
import { OverrideTable } from '../policy/overrides.js';

export interface ProxyDeps {
  config: VigieConfig;
  /** The current policy; read once per request so a swap never splits a request. */
  snapshot: () => PolicySnapshot;
  resolver: HostResolver;
  /** Teachers' unblocks in force; absent = none. */
  overrides?: () => OverrideTable;
  observers?: ProxyObserver[];
  /** Answers origin-form requests made to the proxy itself (PAC file, ...); false = not handled. */
  local?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Asked before new work (request or CONNECT); false = refuse with 503 (e.g. the journal cannot record). */
  admit?: () => boolean;
  /**
   * Overrides the config's `tunnels` (tests run both modes side by side): true for Node's raw TCP
   * handles (src/proxy/raw.ts) where the runtime offers them, false for `net.Socket` throughout.
   */
  rawTunnels?: boolean;
  /** Who is browsing (sessions, LDAP logins, the directory); absent = every client anonymous. */
  identity?: Identity;
  /** Listen with SO_REUSEPORT (Node ≥ 22.12): proxy threads each listen on the same ports (src/cluster/). */
  reusePort?: boolean;
}

export { parseAbsoluteUrl, splitAuthority } from './target.js';

/** How a tunnel's entry answers when it opens none: an HTTP status (CONNECT), or a TLS alert (transparent). */
export type TunnelStyle = 'http' | 'tls';

const HTML = 'text/html; charset=utf-8';
const TEXT = 'text/plain; charset=utf-8';

function destroySelf(this: Socket): void {
  this.destroy();
}

/** Answers a request that cannot be read (or must not be) with `status`, and closes. */
function refuseConnection(socket: Socket, status: number): void {
  const body = `${status} ${http.STATUS_CODES[status]}\n`;
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
}


const READ_MARK = Symbol('vigie.bytesReadAccounted');

let selfTest: Promise<boolean> | null = null;
/** The raw handles' self-test, run once per process (src/proxy/raw.ts). */
const rawHandlesWork = (): Promise<boolean> => (selfTest ??= rawSelfTest(rawBinding!));

/**
 * The data plane: an explicit HTTP proxy. Each client connection starts on the fast path
 * (src/proxy/fast.ts: raw sockets, pooled keep-alive origin connections); what it leaves aside
 * comes here through node's HTTP server (`general`), which forwards over a keep-alive http.Agent.
 * CONNECT opens a TCP tunnel. Everything passes the policy first.
 */
export class ProxyServer implements FastContext, RawContext, TransparentHost {
  readonly servers: net.Server[] = [];
  readonly via: string;
  readonly pool: UpstreamPool;
  readonly idle: IdleSweeper;
  /** Node's HTTP server, never listening itself: it gets the connections the fast path hands over. */
  private readonly general: http.Server;
  private readonly agent: http.Agent;
  private readonly observers: ProxyObserver[];
  /** Admits, decides, records and says what to answer, for every entry (src/proxy/gate.ts). */
  readonly gate: Gate;
  /** Open tunnels (a client `net.Socket`, or a raw connection), cut when the proxy closes. */
  private readonly tunnels = new Set<{ destroy(): void }>();
  /** Connections accepted on raw handles and not handed to `net.Socket` (src/proxy/raw-tunnel.ts). */
  private readonly raws = new Set<RawConnection>();
  /** Whether connections are accepted on raw handles (settled by the first listen()). */
  private raw: boolean;
  /** Why raw handles are not used although the runtime has them (a failed self-test), else null. */
  rawProblem: string | null = null;
  /** Tunnels opened on raw handles so far (the others went through `net.Socket`). */
  rawTunnelsOpened = 0;
  /** Open client connections, so close() can wait until each has ended its request. */
  private readonly sockets = new Set<Socket>();
  private readonly fast = new Set<ClientConnection>();
  /** Forget this proxy's listeners in the registry of the gateway's own (src/net/own-listeners.ts). */
  private readonly unlisten: (() => void)[] = [];
  private onDrained: (() => void) | null = null;

  constructor(private readonly deps: ProxyDeps) {
    const { config } = deps;
    this.via = `1.1 ${config.proxyName}`;
    this.raw = (deps.rawTunnels ?? config.tunnels === 'raw') && rawBinding !== null;
    this.observers = deps.observers ?? [];
    this.agent = new http.Agent({
      keepAlive: true,
      maxSockets: config.limits.maxSocketsPerOrigin,
      maxFreeSockets: config.limits.maxSocketsPerOrigin,
      scheduling: 'lifo',
      timeout: config.timeouts.idleMs,
    });
    // Ticks follow the configuration in force (a reload may shorten the limits).
    this.idle = new IdleSweeper(() => {
      const t = this.deps.config.timeouts;
      return tickFor(t.connectMs, t.idleMs, t.upstreamResponseMs);
    });
    this.pool = new UpstreamPool({ maxPerOrigin: config.limits.maxSocketsPerOrigin, connectMs: config.timeouts.connectMs, timeoutMs: config.timeouts.upstreamResponseMs, idle: this.idle });
    this.gate = new Gate({
      config: () => this.deps.config,
      snapshot: () => this.deps.snapshot(),
      resolver: () => this.deps.resolver,
      overrides: this.deps.overrides ?? (() => OverrideTable.EMPTY),
      bound: () => this.bound,
      admit: () => (this.deps.admit ? this.deps.admit() : true),
      own: ownListeners,
      identity: () => this.deps.identity ?? null,
    });
    this.general = this.createGeneralServer();
  }

  private emit<K extends keyof ProxyObserver>(event: K, ...args: Parameters<NonNullable<ProxyObserver[K]>>): void {
    for (const o of this.observers) {
      const fn = o[event] as ((...a: unknown[]) => void) | undefined;
      if (fn) fn.apply(o, args);
    }
  }

  // FastContext: what a fast-path connection asks of the proxy. Config and resolver are read
  // through deps: a reload (SIGHUP) replaces them.
  get config(): VigieConfig {
    return this.deps.config;
  }

  requestDone(rec: ConnectionRecord): void {
    this.emit('requestDone', rec);
  }

  upstreamError(problem: UpstreamProblem): void {
    this.emit('upstreamError', problem);
  }

  handoff(socket: Socket, unread: Buffer | null): void {
    if (unread !== null) socket.unshift(unread);
    // Bytes the fast path already recorded are not counted again by the general path's first request.
    (socket as Socket & { [READ_MARK]?: number })[READ_MARK] = socket.bytesRead - (unread?.length ?? 0);
    this.general.emit('connection', socket);
    socket.resume();
  }

  released(conn: ClientConnection): void {
    this.fast.delete(conn);
  }

  private createGeneralServer(): http.Server {
    const { config } = this.deps;
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
    server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => (req.httpVersionMajor === 1 ? this.tunnel(socket, req.url ?? '', req.headers['accept-language'], head, undefined, req.headers['proxy-authorization']) : refuseConnection(socket, 400)));
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

  /** Refuses a request that must not be read on (HTTP/0.9, versions other than 1.x). */
  refuse(socket: Socket, status: number): void {
    refuseConnection(socket, status);
  }

  /** Starts the transparent listeners (config `transparent`, src/proxy/transparent.ts). */
  listenTransparent(): Promise<TransparentBound[]> {
    return listenTransparent(this, (address, port) => ownListeners.add(address, port), this.unlisten);
  }

  private createFront(): net.Server {
    // allowHalfOpen as node's HTTP server has it, so a connection handed over behaves as it expects.
    const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket: Socket) => {
      this.emit('connectionsChanged', 'client', 1);
      this.track(socket);
      this.fast.add(new ClientConnection(socket, this));
    });
    this.servers.push(server);
    return server;
  }

  /** A client connection accepted by another entry (transparent listeners): counted and closed with the proxy. */
  adopt(socket: Socket): void {
    this.emit('connectionsChanged', 'client', 1);
    this.track(socket);
  }

  /** A server of another entry, closed with the proxy's own. */
  addServer(server: net.Server): void {
    this.servers.push(server);
  }

  /** A client connection on `net.Socket` (already counted in the gauge), until it closes. */
  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      this.emit('connectionsChanged', 'client', -1);
      this.checkDrained();
    });
  }

  private checkDrained(): void {
    if (this.sockets.size === 0 && this.raws.size === 0) this.onDrained?.();
  }

  /**
   * Each connection of a listening server starts on its raw handle (src/proxy/raw-tunnel.ts), and
   * only those that are not tunnels get a `net.Socket` (`tunnels: "raw"`; src/proxy/raw.ts holds
   * the internals this needs).
   */
  private acceptRaw(server: net.Server): void {
    const b = rawBinding!;
    takeOverAccept(server, (client) => {
      this.emit('connectionsChanged', 'client', 1);
      this.raws.add(new RawConnection(b, this, client));
    });
  }

  // RawContext: what a raw connection asks of the proxy.
  rawAdopt(conn: RawConnection, client: TcpHandle, first: Buffer | null): void {
    this.raws.delete(conn);
    const reads = new ClientReads();
    const socket = this.wrap(client, reads);
    const fast = new ClientConnection(socket, this);
    reads.socket = socket;
    reads.reader = fast;
    this.fast.add(fast);
    if (first !== null) fast.feed(first);
  }

  rawAnswer(conn: RawConnection, client: TcpHandle, reply: Reply): void {
    this.raws.delete(conn);
    const socket = this.wrap(client, null);
    socket.on('error', destroySelf);
    this.answerTunnel(socket, reply, 'http');
  }

  rawRefuse(conn: RawConnection, client: TcpHandle, rec: ConnectionRecord, lang: Lang, problem: UpstreamProblem): void {
    this.raws.delete(conn);
    const socket = this.wrap(client, null);
    socket.on('error', destroySelf);
    this.refuseTunnel(socket, rec, lang, problem, 'http');
  }

  rawOpened(conn: RawConnection, rec: ConnectionRecord): void {
    this.tunnels.add(conn);
    this.rawTunnelsOpened++;
    this.emit('tunnelOpened', rec);
    this.emit('connectionsChanged', 'tunnel', 1);
  }

  rawClosed(conn: RawConnection, rec: ConnectionRecord | null): void {
    this.raws.delete(conn);
    if (rec !== null) {
      this.tunnels.delete(conn);
      this.emit('connectionsChanged', 'tunnel', -1);
      this.emit('tunnelClosed', rec);
    }
    this.emit('connectionsChanged', 'client', -1);
    this.checkDrained();
  }

  /** A `net.Socket` on a raw client handle, as net.Server would have made it; `reads`: into a buffer of its own. */
  private wrap(client: TcpHandle, reads: ClientReads | null): Socket {
    const onread = reads === null ? undefined : { buffer: reads.buffer as () => Uint8Array, callback: reads.callback };
    const socket = new net.Socket({ handle: client, allowHalfOpen: true, readable: true, writable: true, onread } as net.SocketConstructorOpts);
    this.track(socket);
    return socket;
  }

  /** Whether connections are accepted on raw handles: CONNECT tunnels then never meet a `net.Socket`. */
  get rawTunnels(): boolean {
    return this.raw;
  }

  /** Every address this proxy listens on (the block page's report form points at the first). */
  readonly bound: { host: string; port: number }[] = [];

  /** Starts one listener per configured address; resolves with the bound addresses. */
  async listen(addresses = this.deps.config.listen): Promise<{ host: string; port: number }[]> {
    if (this.raw && !(await rawHandlesWork())) {
      this.raw = false;
      this.rawProblem = 'the raw TCP handles failed their self-test on loopback';
    }
    const bound: { host: string; port: number }[] = [];
    for (const a of addresses) {
      const server = this.createFront();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        // `reusePort` is not in @types/node 20's ListenOptions yet.
        server.listen({ host: a.host, port: a.port, backlog: 4096, ...(this.deps.reusePort ? { reusePort: true } : {}) } as net.ListenOptions, () => {
          server.off('error', reject);
          resolve();
        });
      });
      if (this.rawTunnels) this.acceptRaw(server);
      const addr = server.address() as net.AddressInfo;
      bound.push({ host: addr.address, port: addr.port });
      this.bound.push({ host: addr.address, port: addr.port });
      this.unlisten.push(ownListeners.add(addr.address, addr.port));
    }
    return bound;
  }

  /** Stops accepting; open connections are cut after `graceMs`. */
  async close(graceMs = 0): Promise<void> {
    const closing = this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const forget of this.unlisten.splice(0)) forget();
    for (const c of [...this.fast]) c.closeSoon();
    for (const r of [...this.raws]) if (r.waiting) r.destroy();
    this.general.closeIdleConnections();
    const cut = () => {
      for (const s of this.sockets) s.destroy();
      for (const t of [...this.tunnels]) t.destroy();
      for (const r of [...this.raws]) r.destroy();
    };
    const timer = setTimeout(cut, graceMs);
    if (graceMs === 0) cut();
    await Promise.all(closing);
    // A server reports closed before its sockets' own 'close' events, which is where cut requests
    // end and are recorded (journal, metrics): wait for those too.
    if (this.sockets.size || this.raws.size) await new Promise<void>((resolve) => (this.onDrained = resolve));
    clearTimeout(timer);
    // Stops node's connection checks (it reports "not running": it never listened).
    this.general.close(() => {});
    this.agent.destroy();
    this.pool.destroy();
    this.idle.stop();
  }

  get activeTunnels(): number {
    return this.tunnels.size;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    if (url.charCodeAt(0) === 47 /* / */) {
      if (this.deps.local?.(req, res)) return;
      this.sendPage(res, 400, errorPage(pickLang(req.headers['accept-language']), '', 'bad-request'));
      return;
    }
    this.request(req, res, parseAbsoluteUrl(url), 'explicit');
  }

  /** A request whose target the entry has read (null: unreadable): through the gate, then forwarded or answered. */
  request(req: IncomingMessage, res: ServerResponse, t: Target | null, mode: GateMode): void {
    const socket = req.socket;
    const r = this.gate.enter({ client: socket.remoteAddress ?? '', mode, method: req.method ?? 'GET', host: t === null ? '' : t.host, port: t === null ? 0 : t.port, path: t === null ? '' : t.path, acceptLanguage: req.headers['accept-language'], proxyAuthorization: req.headers['proxy-authorization'] });
    if (r.pending !== null) {
      // The client is being identified: decided (and recorded) once that is done.
      this.gate.resolve(r, { gated: () => this.settled(req, res, r, t) });
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
        this.emit('requestDone', rec);
      });
    }
    if (r.kind !== 'forward') return this.answer(req, res, r);
    if (r.address !== '') return this.forward(req, res, r, t!.authority);
    this.gate.resolve(r, { gated: () => (r.kind === 'forward' ? this.forward(req, res, r, t!.authority) : this.answer(req, res, r)) });
  }

  /** Carries out a gate's answer that is not a forward: block page, refusal, DNS error. */
  private answer(req: IncomingMessage, res: ServerResponse, r: Reply): void {
    req.resume();
    if (r.problem !== null) this.emit('upstreamError', r.problem);
    if (res.destroyed) return;
    const body = Buffer.from(r.body);
    const headers: http.OutgoingHttpHeaders = { 'Content-Type': r.html ? HTML : TEXT, 'Content-Length': body.length, 'Cache-Control': 'no-store', Via: this.via };
    if (r.retryAfter) headers['Retry-After'] = '5';
    if (r.challenge !== null) headers['Proxy-Authenticate'] = r.challenge;
    res.writeHead(r.status, headers);
    res.end(body);
  }

  /** Forwards over the agent to the address the gate checked: never a second lookup that could answer otherwise. */
  private forward(req: IncomingMessage, res: ServerResponse, r: Reply, authority: string): void {
    const { timeouts } = this.deps.config;
    if (res.destroyed) return;
    const rec = r.record!;
    const upstream = http.request({
      host: r.address,
      family: r.family,
      port: r.port,
      method: req.method,
      path: r.path,
      headers: forwardHeaders(req.rawHeaders, this.via, authority) as unknown as http.OutgoingHttpHeaders,
      setHost: false,
      agent: this.agent,
      timeout: timeouts.upstreamResponseMs,
    });
    let connectTimer: NodeJS.Timeout | null = null;
    upstream.once('socket', (s: Socket) => {
      if (!s.connecting) return;
      connectTimer = setTimeout(() => upstream.destroy(connectTimeout()), timeouts.connectMs);
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
      const problem: UpstreamProblem = err.code === 'ERESPONSETIMEOUT' ? 'response-timeout' : classify(err);
      this.fail(req, res, rec, r.host, problem);
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

  /** A CONNECT request on a `net.Socket` (from either path): through the gate, then opened or answered. */
  tunnel(client: Socket, target: string, acceptLanguage: string | undefined, head: Buffer, clientAddr = client.remoteAddress ?? '', proxyAuthorization?: string): void {
    client.on('error', destroySelf);
    const hp = connectTarget(target);
    const r = this.gate.enter({ client: clientAddr, mode: 'explicit', method: 'CONNECT', host: hp === null ? '' : hp.host, port: hp === null ? 0 : hp.port, path: '', acceptLanguage, proxyAuthorization });
    this.gatedTunnel(client, head, r, 'http');
  }

  /**
   * Carries out a gate's answer to a tunnel: opened (then `head` goes first), or answered in the
   * entry's own terms: an HTTP status for a CONNECT, a TLS alert for a transparent ClientHello.
   */
  gatedTunnel(client: Socket, head: Buffer, r: Reply, style: TunnelStyle): void {
    if (r.kind !== 'tunnel') return this.answerTunnel(client, r, style);
    if (r.address !== '') return this.openTunnel(client, head, r, style);
    this.gate.resolve(r, { gated: () => (r.kind === 'tunnel' ? this.openTunnel(client, head, r, style) : this.answerTunnel(client, r, style)) });
  }

  /** Carries out a gate's answer to a CONNECT that opens no tunnel: recorded (when decided), then answered. */
  private answerTunnel(client: Socket, r: Reply, style: TunnelStyle): void {
    const rec = r.record;
    if (r.problem !== null) this.emit('upstreamError', r.problem);
    if (rec !== null) {
      rec.status = r.status;
      this.emit('tunnelOpened', rec);
    }
    if (style === 'tls') this.endTls(client, r.kind === 'block' ? ALERT.accessDenied : ALERT.internalError);
    else this.endTunnel(client, r.status, r.body, refusalHeaders(r));
  }

  /** A tunnel that cannot be opened: recorded with its cause, and the client told why. */
  private refuseTunnel(client: Socket, rec: ConnectionRecord, lang: Lang, problem: UpstreamProblem, style: TunnelStyle): void {
    rec.problem = problem;
    rec.status = statusFor(problem);
    this.emit('upstreamError', problem);
    this.emit('tunnelOpened', rec);
    if (style === 'tls') this.endTls(client, ALERT.internalError);
    else this.endTunnel(client, rec.status, problemText(lang, problem) + '\n');
  }

  private openTunnel(client: Socket, head: Buffer, r: Reply, style: TunnelStyle): void {
    if (client.destroyed) return;
    const { timeouts } = this.deps.config;
    const rec = r.record!;
    const lang = pickLang(r.acceptLanguage);
    const upstream = net.connect({ host: r.address, port: r.port, family: r.family, noDelay: true });
    let opened = false;
    // Nothing the client sends goes anywhere before the tunnel is open.
    client.pause();
    // One watch for the tunnel's life: the connect limit first, then the idle limit.
    const watch = new TunnelIdle(client, upstream);
    this.idle.add(watch, timeouts.connectMs);
    // 'connect' and 'close' come once each: plain listeners, no once() wrappers to build and search.
    upstream.on('connect', () => {
      watch.idleLimit = timeouts.idleMs;
      watch.idleSince = this.idle.now;
      opened = true;
      rec.status = 200;
      this.tunnels.add(client);
      this.emit('tunnelOpened', rec);
      this.emit('connectionsChanged', 'tunnel', 1);
      upstream.off('close', beforeOpen);
      client.off('close', beforeOpen);
      // A transparent connection was never asked anything: its ClientHello is `head`.
      if (style === 'http') client.write(ESTABLISHED);
      if (head.length) upstream.write(head);
      splice(client, upstream, this.idle, watch, () => {
        this.tunnels.delete(client);
        rec.durationMs = Date.now() - rec.time;
        rec.bytesIn = upstream.bytesWritten;
        rec.bytesOut = upstream.bytesRead;
        this.emit('connectionsChanged', 'tunnel', -1);
        this.emit('tunnelClosed', rec);
      });
      client.resume();
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!opened && !rec.status) this.refuseTunnel(client, rec, lang, classify(err), style);
      else client.destroy();
    });
    // Until the tunnel opens, either side closing ends the attempt.
    const beforeOpen = () => {
      this.idle.delete(watch);
      // An error answer (rec.status set) is on its way: endTunnel closes the client after it.
      if (!rec.status) client.destroy();
      upstream.destroy();
    };
    upstream.on('close', beforeOpen);
    client.on('close', beforeOpen);
  }

  /** Ends a transparent TLS connection with a fatal alert: no page can be shown inside TLS. */
  private endTls(client: Socket, alert: number): void {
    if (client.destroyed) return;
    client.resume();
    client.end(tlsAlert(alert));
  }

  private endTunnel(client: Socket, status: number, text: string, extraHeaders = ''): void {
    if (client.destroyed) return;
    // Read (and drop) what the client still sends, so its close is seen and the socket freed.
    client.resume();
    const body = Buffer.from(text);
    client.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\nVia: ${this.via}\r\n${extraHeaders}\r\n${text}`);
  }
}
