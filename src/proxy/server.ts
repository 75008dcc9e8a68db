import type { IncomingMessage, ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import type { Identity } from '../auth/identity.js';
import type { VigieConfig } from '../config/types.js';
import { ownListeners } from '../net/own-listeners.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { ConnectionRecord, ProxyObserver } from './events.js';
import { ClientReads } from './client-reads.js';
import { ClientConnection } from './client-connection.js';
import { Gate, type GateMode, type Reply } from './gate.js';
import { NodeHttpForwarder, refuseConnection, type NodeHttpContext } from './node-http-forward.js';
import { emitter, type Emit } from './observe.js';
import type { ClientContext } from './origin-exchange.js';
import { IdleSweeper, tickFor } from './idle.js';
import { Interception } from './intercept.js';
import type { Lang, UpstreamProblem } from './pages.js';
import type { HostResolver } from './resolver.js';
import type { Target } from './target.js';
import { rawBinding, rawSelfTest, takeOverAccept, type TcpHandle } from './raw.js';
import { RawConnection, type RawContext } from './raw-tunnel.js';
import { SocketTunnels, type TunnelContext, type TunnelStyle } from './socket-tunnel.js';
import type { TunnelRelay } from './tunnel-relay.js';
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

export type { TunnelStyle } from './socket-tunnel.js';

const EMPTY = Buffer.alloc(0);

function destroySelf(this: Socket): void {
  this.destroy();
}

let selfTest: Promise<boolean> | null = null;
/** The raw handles' self-test, run once per process (src/proxy/raw.ts). */
const rawHandlesWork = (): Promise<boolean> => (selfTest ??= rawSelfTest(rawBinding!));

/**
 * The data plane: an explicit HTTP proxy. Each client connection starts as a ClientConnection
 * (src/proxy/client-connection.ts: requests parsed from the socket's bytes, pooled keep-alive
 * origin connections); what it leaves aside goes to node's HTTP server (src/proxy/node-http-forward.ts).
 * CONNECT opens a TCP tunnel (src/proxy/socket-tunnel.ts, or src/proxy/raw-tunnel.ts on raw
 * handles). Everything passes the gate first. This module owns the listeners and the connections'
 * lifetimes.
 */
export class ProxyServer implements ClientContext, RawContext, TransparentHost, NodeHttpContext, TunnelContext {
  readonly servers: net.Server[] = [];
  readonly via: string;
  readonly pool: UpstreamPool;
  readonly idle: IdleSweeper;
  /** Requests read by node's HTTP server: what a ClientConnection hands over. */
  private readonly nodeHttp: NodeHttpForwarder;
  /** CONNECT tunnels on `net.Socket`. */
  private readonly socketTunnels: SocketTunnels;
  readonly emit: Emit;
  /** Admits, decides, records and says what to answer, for every entry (src/proxy/gate.ts). */
  readonly gate: Gate;
  /** Open tunnels (SocketRelay or RawConnection), cut when the proxy closes. */
  private readonly tunnels = new Set<TunnelRelay>();
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
  /** TLS interception with the school CA (src/proxy/intercept.ts): hooked where a tunnel opens or is refused. */
  readonly interception: Interception;

  constructor(private readonly deps: ProxyDeps) {
    const { config } = deps;
    this.via = `1.1 ${config.proxyName}`;
    this.raw = (deps.rawTunnels ?? config.tunnels === 'raw') && rawBinding !== null;
    this.emit = emitter(deps.observers ?? []);
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
    this.nodeHttp = new NodeHttpForwarder(this);
    this.socketTunnels = new SocketTunnels(this);
    this.interception = new Interception({
      gate: this.gate,
      get config() {
        return deps.config;
      },
      via: this.via,
      idle: this.idle,
      snapshot: () => this.deps.snapshot(),
      record: (event, rec) => this.emit(event, rec),
      upstreamError: (p) => this.emit('upstreamError', p),
    });
  }

  /** TunnelContext: whether interception takes this tunnel's client (then it answers it). */
  intercept(client: Socket, head: Buffer, r: Reply, style: TunnelStyle): boolean {
    return this.interception.take(client, head, r, style);
  }

  /** RawContext: an allowed tunnel that interception will take is handed to `net.Socket` by rawAnswer. */
  intercepting(reply: Reply): boolean {
    return this.interception.wants(reply);
  }

  // ClientContext: what a client connection asks of the proxy. Config and resolver are read
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
    this.nodeHttp.take(socket, unread);
  }

  released(conn: ClientConnection): void {
    this.fast.delete(conn);
  }

  // NodeHttpContext and TransparentHost: the node:http path and the tunnels on `net.Socket`.
  local(req: IncomingMessage, res: ServerResponse): boolean {
    return this.deps.local?.(req, res) ?? false;
  }

  /** Answers what node's HTTP parser refuses (bad request, headers too large, timeout). */
  clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    this.nodeHttp.clientError(err, socket);
  }

  /** A request whose target the entry has read (null: unreadable): through the gate, then forwarded or answered. */
  request(req: IncomingMessage, res: ServerResponse, t: Target | null, mode: GateMode): void {
    this.nodeHttp.request(req, res, t, mode);
  }

  /** A CONNECT request on a `net.Socket` (from either path): through the gate, then opened or answered. */
  tunnel(client: Socket, target: string, acceptLanguage: string | undefined, head: Buffer, clientAddr = client.remoteAddress ?? '', proxyAuthorization?: string): void {
    this.socketTunnels.tunnel(client, target, acceptLanguage, head, clientAddr, proxyAuthorization);
  }

  /** Carries out a gate's answer to a tunnel (src/proxy/socket-tunnel.ts). */
  gatedTunnel(client: Socket, head: Buffer, r: Reply, style: TunnelStyle): void {
    this.socketTunnels.gatedTunnel(client, head, r, style);
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
    // An allowed tunnel comes here only to be intercepted (RawContext.intercepting).
    this.socketTunnels.gatedTunnel(socket, EMPTY, reply, 'http');
  }

  rawRefuse(conn: RawConnection, client: TcpHandle, rec: ConnectionRecord, lang: Lang, problem: UpstreamProblem): void {
    this.raws.delete(conn);
    const socket = this.wrap(client, null);
    socket.on('error', destroySelf);
    this.socketTunnels.refuseTunnel(socket, rec, lang, problem, 'http');
  }

  // TunnelRelayHost: both tunnel implementations report here (src/proxy/tunnel-relay.ts).
  relayOpened(relay: TunnelRelay, rec: ConnectionRecord): void {
    this.tunnels.add(relay);
    if (relay instanceof RawConnection) this.rawTunnelsOpened++;
    this.emit('tunnelOpened', rec);
    this.emit('connectionsChanged', 'tunnel', 1);
  }

  relayClosed(relay: TunnelRelay, rec: ConnectionRecord): void {
    this.tunnels.delete(relay);
    this.emit('connectionsChanged', 'tunnel', -1);
    this.emit('tunnelClosed', rec);
  }

  rawClosed(conn: RawConnection, rec: ConnectionRecord | null): void {
    this.raws.delete(conn);
    if (rec !== null) this.relayClosed(conn, rec);
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
    this.nodeHttp.closeIdle();
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
    this.nodeHttp.close();
    this.interception.close();
    this.pool.destroy();
    this.idle.stop();
  }

  get activeTunnels(): number {
    return this.tunnels.size;
  }

}
