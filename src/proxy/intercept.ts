/**
 * Optional TLS interception with the school's own CA (issue #24, docs/interception.md). Entered
 * from two narrow hooks of the tunnel entries (ProxyServer: a tunnel about to open, a tunnel
 * refused), after the gate has decided the CONNECT or the ClientHello:
 *
 * - `block-pages`: a refused tunnel is answered by terminating TLS with a leaf certificate for
 *   that name (src/tls/leaf.ts) and serving the gate's block page (403, FR/EN) to every request
 *   inside. Allowed tunnels are untouched.
 * - `full`: allowed tunnels are terminated too; each request inside goes through the same gate
 *   (mode `intercepted`, its full URL: UT1 urls, expressions, academy entries) and is forwarded
 *   over a strictly verified TLS connection from the interceptor's keep-alive pool of origin
 *   connections (src/proxy/intercept-upstream.ts, src/proxy/upstream.ts), journaled as plain HTTP
 *   is. Requests are read by plain HTTP's fast path (src/proxy/intercept-connection.ts); what it
 *   leaves to node's parser (uploads in chunks, upgrades, HTTP/1.0) comes to the node:http server here.
 * - Never: a profile with interception off (the hooks cost one comparison), an excluded host
 *   (interception.exclude: categories such as UT1 `bank`, domains, the shipped list), a refusal
 *   that is no block (503, 407, DNS).
 * ALPN offered to the client: http/1.1 only (what the inner server speaks).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { http } from '../net/http.js';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { InterceptMode, VigieConfig } from '../config/types.js';
import { interceptModeOf, InterceptExclusions, tlsTreatment } from '../policy/interception.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { loadCa } from '../tls/ca.js';
import { caDir } from '../tls/exclusions.js';
import { LeafIssuer, type LeafCounts, type LeafStats } from '../tls/leaf.js';
import type { ConnectionRecord } from './events.js';
import type { Gate, GateUser, Reply } from './gate.js';
import { forwardHeaders } from './headers.js';
import type { IdleSweeper } from './idle.js';
import { enterInside, InterceptConnection } from './intercept-connection.js';
import { headersWith, pathWith } from './safesearch-inside.js';
import { originContext, trustedRoots } from './intercept-upstream.js';
import { refuseUpgrade, relayUpgrade, type UpgradeDeps } from './intercept-upgrade.js';
import type { ClientConnection } from './client-connection.js';
import type { ClientContext } from './origin-exchange.js';
import { PoolAgent } from './origin-stream.js';
import { errorPage, pickLang, type UpstreamProblem } from './pages.js';
import type { TunnelStyle } from './server.js';
import { classify, ESTABLISHED, statusFor } from './target.js';
import { UpstreamPool } from './upstream.js';

/** What the interceptor uses of the proxy. */
export interface InterceptHost {
  readonly gate: Gate;
  readonly config: VigieConfig;
  readonly via: string;
  /** The proxy's inactivity watch (connect, idle and response limits). */
  readonly idle: IdleSweeper;
  snapshot(): PolicySnapshot;
  record(event: 'tunnelOpened' | 'tunnelClosed' | 'requestDone', rec: ConnectionRecord): void;
  upstreamError(problem: UpstreamProblem): void;
}

/** One terminated connection: the gate's answer to its CONNECT (or ClientHello). */
interface Session {
  readonly outer: Reply;
  readonly mode: InterceptMode;
  readonly client: string;
}

const HTML = 'text/html; charset=utf-8';

/** Whether any profile of `config` intercepts. */
export const interceptionWanted = (config: VigieConfig): boolean => Object.values(config.profiles).some((p) => p.intercept !== undefined && p.intercept !== 'off');

function destroySelf(this: Socket): void {
  this.destroy();
}

export interface InterceptStats {
  /** Connections terminated (block pages and full). */
  terminated: number;
  /** Connections of an intercepting profile left end to end because the host is excluded. */
  excluded: number;
  /** TLS handshakes with clients that failed (device without the school CA, mostly). */
  handshakeFailures: number;
}

export class Interceptor {
  readonly leaves: LeafIssuer;
  readonly stats: InterceptStats = { terminated: 0, excluded: 0, handshakeFailures: 0 };
  private readonly web: Server;
  /** Verified TLS connections to origins, kept alive and shared by every terminated connection. */
  private readonly pool: UpstreamPool;
  /** The node:http path's way to the same pool. */
  private readonly agent: PoolAgent;
  /** What the fast path inside terminated connections asks of the proxy. */
  private readonly inside: ClientContext;
  private readonly fast = new Set<ClientConnection>();
  private readonly upgrades: UpgradeDeps;
  private readonly sessions = new WeakMap<Socket, Session>();
  private exclusions: InterceptExclusions | null = null;

  /** Loads the school CA (an error naming the fix when it is missing or unusable). */
  constructor(
    private readonly host: InterceptHost,
    stats?: LeafStats,
  ) {
    const { config } = host;
    this.leaves = new LeafIssuer(loadCa(caDir(config)), config.interception.leafHours, config.interception.leafCacheSize, stats);
    const context = originContext(trustedRoots(config));
    this.pool = new UpstreamPool({ maxPerOrigin: config.limits.maxSocketsPerOrigin, connectMs: config.timeouts.connectMs, timeoutMs: config.timeouts.upstreamResponseMs, idle: host.idle, tls: context });
    this.agent = new PoolAgent(this.pool);
    this.upgrades = { context, via: host.via, connectMs: config.timeouts.connectMs, record: (rec) => host.record('requestDone', rec), upstreamError: (p) => host.upstreamError(p) };
    this.web = this.createWeb();
    const web = this.web;
    const fast = this.fast;
    this.inside = {
      get config() {
        return host.config;
      },
      via: host.via,
      pool: this.pool,
      idle: host.idle,
      gate: host.gate,
      requestDone: (rec) => host.record('requestDone', rec),
      upstreamError: (p) => host.upstreamError(p),
      handoff(socket, unread) {
        if (unread !== null) socket.unshift(unread);
        web.emit('connection', socket);
        socket.resume();
      },
      // Never called: a CONNECT inside goes to node's path (fastTarget), which answers 400.
      tunnel: (socket) => void socket.destroy(),
      released: (conn) => void fast.delete(conn),
    };
  }

  /** The profile's interception for this gate answer, or null when it stays as it is (see the header). */
  modeFor(r: Reply, count = true): InterceptMode | null {
    const rec = r.record;
    if (rec === null || (r.kind !== 'block' && r.kind !== 'tunnel')) return null;
    const config = this.host.config;
    const mode = interceptModeOf(config, rec.decision.profile);
    if (mode === 'off') return null;
    const treatment = tlsTreatment(config, this.exclusionsNow(), rec.decision, r.host);
    if (treatment === 'exclude' && count) this.stats.excluded++;
    return treatment === 'intercept' ? mode : null;
  }

  /** The exclusions of the config and snapshot in force. */
  private exclusionsNow(): InterceptExclusions {
    const config = this.host.config;
    const snapshot = this.host.snapshot();
    const e = this.exclusions;
    if (e !== null && e.config === config && e.snapshot === snapshot) return e;
    return (this.exclusions = new InterceptExclusions(config, snapshot, e !== null && e.config === config ? e.domains : undefined));
  }

  /** The hook: true = the connection is terminated here (the entry does nothing more with it). */
  take(client: Socket, head: Buffer, r: Reply, style: TunnelStyle): boolean {
    const mode = this.modeFor(r);
    if (mode === null) return false;
    if (client.destroyed) return true;
    const rec = r.record!;
    const context = this.leaves.contextFor(r.host);
    this.stats.terminated++;
    rec.status = r.kind === 'block' ? r.status : 200;
    this.host.record('tunnelOpened', rec);
    client.on('error', destroySelf);
    if (style === 'http') client.write(ESTABLISHED);
    // A transparent connection's ClientHello (or bytes sent after the CONNECT) was read already.
    if (head.length) client.unshift(head);
    const secure = new tls.TLSSocket(client, { isServer: true, secureContext: context, ALPNProtocols: ['http/1.1'] });
    this.sessions.set(secure, { outer: r, mode, client: rec.client });
    const limit = this.host.config.timeouts.headersMs;
    const handshake = setTimeout(() => secure.destroy(), limit);
    let established = false;
    secure.once('secure', () => {
      established = true;
      clearTimeout(handshake);
    });
    secure.on('error', () => {
      // Before the handshake ends, mostly a device that does not trust the school CA.
      if (!established) this.stats.handshakeFailures++;
      secure.destroy();
    });
    if (r.kind === 'tunnel') {
      secure.once('close', () => {
        clearTimeout(handshake);
        rec.durationMs = Date.now() - rec.time;
        rec.bytesIn = client.bytesRead;
        rec.bytesOut = client.bytesWritten;
        this.host.record('tunnelClosed', rec);
      });
    } else secure.once('close', () => clearTimeout(handshake));
    // A refused name's block page comes from node's server; allowed requests take the fast path.
    if (r.kind === 'tunnel') this.fast.add(new InterceptConnection(secure, this.inside, r));
    else this.web.emit('connection', secure);
    return true;
  }

  close(): void {
    for (const c of this.fast) c.closeSoon();
    this.web.closeAllConnections();
    this.agent.destroy();
    this.pool.destroy();
  }

  /** The HTTP/1.1 server inside terminated connections (never listening: it is given them). */
  private createWeb(): Server {
    const { limits, timeouts } = this.host.config;
    const web = http.createServer({ maxHeaderSize: limits.maxHeaderBytes, requestTimeout: 0, headersTimeout: timeouts.headersMs, keepAliveTimeout: timeouts.idleMs, noDelay: true });
    web.timeout = timeouts.idleMs;
    web.on('request', (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res));
    web.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    web.on('clientError', (_err: Error, socket: Socket) => socket.destroy());
    web.emit('listening');
    return web;
  }

  /** A request read by node's parser inside a terminated connection: `enterInside`, as on the fast path. */
  private enter(req: IncomingMessage): Reply | [number, string] {
    const s = this.sessions.get(req.socket);
    if (s === undefined || req.httpVersionMajor !== 1) return [400, errorPage(pickLang(req.headers['accept-language']), '', 'bad-request')];
    return enterInside(this.host.gate, s.outer, s.client, req.method ?? 'GET', req.url ?? '', req.headers.host, req.headers['accept-language']);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const r = this.enter(req);
    if (Array.isArray(r)) return this.send(res, r[0], r[1]);
    const authority = req.headers.host!;
    this.track(req, res, r);
    if (r.kind !== 'forward') return this.answer(res, r);
    if (r.address !== '' && r.pending === null) return this.forward(req, res, r, authority);
    const user: GateUser = { gated: () => (r.kind === 'forward' ? this.forward(req, res, r, authority) : this.answer(res, r)) };
    this.host.gate.resolve(r, user);
  }

  /** An Upgrade (WebSocket) request: decided as any request, then relayed (src/proxy/intercept-upgrade.ts). */
  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', destroySelf);
    const r = this.enter(req);
    if (Array.isArray(r)) return refuseUpgrade(socket, r[0], `Vigie: ${r[0]}\n`);
    const go = () => {
      if (r.kind === 'forward') return relayUpgrade(this.upgrades, req, socket, head, r, req.headers.host!);
      if (r.record !== null) {
        r.record.status = r.status;
        this.host.record('requestDone', r.record);
      }
      refuseUpgrade(socket, r.status, r.html ? `Vigie: ${r.status}\n` : r.body);
    };
    if (r.kind === 'forward' && (r.address === '' || r.pending !== null)) this.host.gate.resolve(r, { gated: go });
    else go();
  }

  /** The request's journal row, completed and handed over when the exchange ends. */
  private track(req: IncomingMessage, res: ServerResponse, r: Reply): void {
    const socket = req.socket;
    const read0 = socket.bytesRead;
    const written0 = socket.bytesWritten;
    res.once('close', () => {
      const rec = r.record;
      if (rec === null) return;
      rec.status = res.headersSent ? res.statusCode : 0;
      rec.durationMs = Date.now() - rec.time;
      rec.bytesIn = socket.bytesRead - read0;
      rec.bytesOut = socket.bytesWritten - written0;
      this.host.record('requestDone', rec);
    });
  }

  /** A gate answer that is not a forward: block page, refusal, DNS error. */
  private answer(res: ServerResponse, r: Reply): void {
    if (r.problem !== null) this.host.upstreamError(r.problem);
    if (r.pending !== null) return void this.host.gate.resolve(r, { gated: () => this.answer(res, r) });
    this.send(res, r.status, r.body, r.html);
  }

  /** Over a verified TLS connection of the pool to the address the gate checked (node's client for what the fast path leaves). */
  private forward(req: IncomingMessage, res: ServerResponse, r: Reply, authority: string): void {
    if (res.destroyed) return;
    // SafeSearch by parameter or header where the profile's provider needs it (empty lists: none).
    const inside = r.record!.decision.retarget?.inside;
    const headers = forwardHeaders(req.rawHeaders, this.host.via, authority);
    const path = inside === undefined ? r.path : pathWith(r.path, inside.query);
    this.agent.relay(req, res, r, path, inside === undefined ? headers : headersWith(headers, inside.headers), this.host.via, (err) => {
      const problem = classify(err);
      r.record!.problem = problem;
      this.host.upstreamError(problem);
      if (res.headersSent) return void res.destroy();
      req.resume();
      this.send(res, statusFor(problem), errorPage(pickLang(req.headers['accept-language']), r.host, problem));
    });
  }

  private send(res: ServerResponse, status: number, body: string, html = true): void {
    if (res.destroyed) return;
    const b = Buffer.from(body);
    res.writeHead(status, { 'Content-Type': html ? HTML : 'text/plain; charset=utf-8', 'Content-Length': b.length, 'Cache-Control': 'no-store', Via: this.host.via });
    res.end(b);
  }
}

/**
 * The proxy's handle on interception: no Interceptor (and no work) while no profile intercepts;
 * made (the CA loaded) when the config in force asks for it, again after a reload.
 */
export class Interception {
  private current: Interceptor | null = null;
  private madeFor: VigieConfig | null = null;
  /** Why the config's interception could not start after a reload (the CA unusable); null when fine. */
  problem: string | null = null;
  /** Leaf certificates signed and served from cache since start, whichever interceptor did it (metrics). */
  readonly leafStats: LeafStats = { issued: 0, hits: 0 };

  constructor(private readonly host: InterceptHost) {
    // At start a missing or bad CA is the gateway's start error, with its reason.
    if (interceptionWanted(host.config)) this.current = new Interceptor(host, this.leafStats);
    this.madeFor = host.config;
  }

  /** The interceptor for the config in force, or null (interception off everywhere). */
  get interceptor(): Interceptor | null {
    const config = this.host.config;
    if (config !== this.madeFor) {
      this.madeFor = config;
      if (!interceptionWanted(config)) {
        this.current = null;
        this.problem = null;
      }
      else if (this.current === null) {
        try {
          this.current = new Interceptor(this.host, this.leafStats);
          this.problem = null;
        } catch (e) {
          this.problem = (e as Error).message;
        }
      }
    }
    return this.current;
  }

  /** Hook: the entry stops here when this returns true. */
  take(client: Socket, head: Buffer, r: Reply, style: TunnelStyle): boolean {
    const i = this.madeFor === this.host.config ? this.current : this.interceptor;
    return i !== null && i.take(client, head, r, style);
  }

  /** Hook of the raw-handle entry: whether an allowed tunnel must come to `take` rather than be opened there. */
  wants(r: Reply): boolean {
    const i = this.madeFor === this.host.config ? this.current : this.interceptor;
    return i !== null && i.modeFor(r, false) !== null;
  }

  /** Leaf counts of this process for the metrics: signed, cache hits, certificates cached now. */
  leafCounts(): LeafCounts {
    return { issued: this.leafStats.issued, hits: this.leafStats.hits, size: this.current?.leaves.size ?? 0 };
  }

  close(): void {
    this.current?.close();
  }
}
