/**
 * The transparent listeners: entries of the gate for traffic the gateway's firewall redirects
 * (deploy/nftables/vigie.nft), without a proxy setting on the device. A redirect keeps the
 * client's address but not the port it was connecting to, so each listener stands for one
 * (`targetPort`: 80 for http, 443 for https by default).
 *
 * - HTTP: origin-form requests; the target is the `Host` header, at the listener's port. Then as
 *   in explicit mode (ProxyServer.request): same gate, pages, journal and metrics.
 * - HTTPS: the ClientHello is read without terminating TLS (src/proxy/clienthello.ts); the gate
 *   decides on its server name and the tunnel connects *by that name* (never to the address the
 *   client aimed at, which a redirect hides anyway), sending the ClientHello first. Refused: a
 *   TLS alert (access_denied) after the journal row. No name, or an address: refused the same way.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { http } from '../net/http.js';
import net, { type Socket } from 'node:net';
import { TRANSPARENT_TARGET_PORT } from '../config/defaults.js';
import type { TransparentListener, VigieConfig } from '../config/types.js';
import { ALERT, readClientHello, tlsAlert } from './clienthello.js';
import { canonicalHost, type Gate, type Reply } from './gate.js';
import type { TunnelStyle } from './server.js';
import { splitAuthority, type Target } from './target.js';

/** What the transparent entries use of the proxy: its gate, and the paths a gated request or tunnel takes. */
export interface TransparentHost {
  readonly gate: Gate;
  readonly config: VigieConfig;
  request(req: IncomingMessage, res: ServerResponse, t: Target | null, mode: 'transparent'): void;
  gatedTunnel(client: Socket, head: Buffer, r: Reply, style: TunnelStyle): void;
  adopt(socket: Socket): void;
  addServer(server: net.Server): void;
  /** Answers the HTTP parser's errors (bad request, headers too large, timeout). */
  clientError(err: NodeJS.ErrnoException, socket: Socket): void;
  /** Refuses a request that must not be read on, with `status`, and closes. */
  refuse(socket: Socket, status: number): void;
}

export interface TransparentBound {
  kind: 'http' | 'https';
  host: string;
  port: number;
  targetPort: number;
}

function destroySelf(this: Socket): void {
  this.destroy();
}

/** The target of an origin-form request: its Host header's name, at the port the listener stands for. */
export function hostTarget(req: IncomingMessage, targetPort: number): Target | null {
  const authority = req.headers.host;
  const url = req.url ?? '';
  if (!authority || url.charCodeAt(0) !== 47 /* / */) return null;
  const hp = splitAuthority(authority, targetPort);
  return hp === null ? null : { host: hp.host, port: targetPort, path: url, authority };
}

/** A transparent HTTPS connection: its ClientHello, then the gate, then the tunnel or the alert. */
export function helloEntry(host: TransparentHost, client: Socket, targetPort: number): void {
  client.on('error', destroySelf);
  const { timeouts } = host.config;
  void readClientHello(client, { timeoutMs: timeouts.headersMs }).then((o) => {
    if (client.destroyed) return;
    if (o.status !== 'hello') {
      // Not a ClientHello at all (silence, plain HTTP on 443, a cut): nothing to decide on.
      if (o.status === 'invalid' && o.reason !== 'not-tls') {
        client.resume();
        client.end(tlsAlert(ALERT.decodeError));
      } else client.destroy();
      return;
    }
    // A name that cannot be a host (or none) reaches the gate as '', which decides and records it.
    const name = o.hello.sni === null ? '' : canonicalHost(o.hello.sni);
    const r = host.gate.enter({ client: client.remoteAddress ?? '', mode: 'transparent', method: 'CONNECT', host: name, port: targetPort, path: '', acceptLanguage: undefined });
    host.gatedTunnel(client, o.bytes, r, 'tls');
  });
}

const listenOn = (server: net.Server, a: { host: string; port: number }): Promise<net.AddressInfo> =>
  new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: a.host, port: a.port, backlog: 4096 }, () => {
      server.off('error', reject);
      resolve(server.address() as net.AddressInfo);
    });
  });

/** Starts the configured transparent listeners; resolves with what they bound. */
export async function listenTransparent(host: TransparentHost, register: (address: string, port: number) => () => void, unlisten: (() => void)[]): Promise<TransparentBound[]> {
  const { transparent, limits, timeouts } = host.config;
  const bound: TransparentBound[] = [];
  const start = async (kind: 'http' | 'https', l: TransparentListener) => {
    const targetPort = l.targetPort ?? TRANSPARENT_TARGET_PORT[kind];
    let server: net.Server;
    if (kind === 'http') {
      const web = http.createServer({ maxHeaderSize: limits.maxHeaderBytes, requestTimeout: 0, headersTimeout: timeouts.headersMs, keepAliveTimeout: timeouts.idleMs, noDelay: true });
      web.timeout = timeouts.idleMs;
      web.on('connection', (s: Socket) => host.adopt(s));
      // As on the explicit port: only HTTP/1.0 and 1.1 (llhttp also takes 0.9 and any x.y).
      web.on('request', (req: IncomingMessage, res: ServerResponse) => (req.httpVersionMajor === 1 ? host.request(req, res, hostTarget(req, targetPort), 'transparent') : host.refuse(req.socket, 400)));
      web.on('clientError', (err: NodeJS.ErrnoException, s: Socket) => host.clientError(err, s));
      server = web;
    } else {
      server = net.createServer({ noDelay: true }, (s: Socket) => {
        host.adopt(s);
        helloEntry(host, s, targetPort);
      });
    }
    host.addServer(server);
    const a = await listenOn(server, l);
    unlisten.push(register(a.address, a.port));
    bound.push({ kind, host: a.address, port: a.port, targetPort });
  };
  for (const l of transparent.http) await start('http', l);
  for (const l of transparent.https) await start('https', l);
  return bound;
}
