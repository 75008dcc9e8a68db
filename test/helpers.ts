import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { resolveConfig } from '../src/config/load.js';
import type { VigieConfig } from '../src/config/types.js';
import { Gateway, type GatewayOptions } from '../src/gateway.js';
import { silentLogger } from '../src/log.js';
import { selfSignedCertificate } from '../src/tls/selfsigned.js';

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

/** Listens on an ephemeral loopback port; `close` also cuts keep-alive connections. */
export async function serveLoopback(server: http.Server | https.Server): Promise<{ port: number; close(): Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export const tmp = (prefix = 'vigie-test-'): string => mkdtempSync(join(tmpdir(), prefix));

/** Writes a UT1-layout folder: { category: { domains: [...], urls: [...], expressions: [...] } }. */
export function writeLists(dir: string, lists: Record<string, Partial<Record<'domains' | 'urls' | 'expressions', string[]>>>): string {
  for (const [cat, files] of Object.entries(lists)) {
    mkdirSync(join(dir, cat), { recursive: true });
    for (const [file, lines] of Object.entries(files)) writeFileSync(join(dir, cat, file), lines.join('\n') + '\n');
  }
  return dir;
}

/** A closed UDP/TCP port on loopback: DNS queries to it fail at once, and nothing leaves the machine. */
export const DEAD_DNS = ['127.0.0.1:9'];

export const TEST_LISTS = {
  adult: { domains: ['adult.test', 'amex.test'], urls: ['example.test/adult-corner'] },
  games: { domains: ['games.test'] },
  malware: { domains: ['malware.test', '10.66.66.66'], expressions: ['^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+/search\\?q=[0-9]+$'] },
  child: { domains: ['kids.test'] },
  liste_blanche: { domains: ['white.test'] },
};

export interface OriginHandle {
  port: number;
  server: http.Server;
  close(): Promise<void>;
}

/**
 * A loopback origin: `/small` (a short text), `/big?mib=N` (N MiB streamed), `/echo` (request body
 * back), `/headers` (what it received, as JSON), `/hang` (never answers).
 */
export async function startOrigin(): Promise<OriginHandle> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://origin');
    if (url.pathname === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
    } else if (url.pathname === '/big') {
      const mib = Number(url.searchParams.get('mib') ?? '1');
      const chunk = Buffer.alloc(65536, 120);
      let left = mib * 16;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(mib * 1048576) });
      const pump = () => {
        while (left > 0) {
          left--;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    } else if (url.pathname === '/headers') {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive, x-hop', 'x-hop': 'secret', 'keep-alive': 'timeout=5' });
      res.end(JSON.stringify({ headers: req.headers, url: req.url }));
    } else if (url.pathname === '/hang') {
      // never answers
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('hello from origin\n');
    }
  });
  return { ...(await serveLoopback(server)), server };
}

let cachedCert: { key: string; cert: string } | null = null;
export const testCert = () => (cachedCert ??= selfSignedCertificate(['secure.test', 'localhost', '127.0.0.1']));

export async function startTlsOrigin(): Promise<{ port: number; close(): Promise<void> }> {
  const server = https.createServer(testCert(), (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello over tls\n');
  });
  return serveLoopback(server);
}

export interface GatewayHandle {
  gateway: Gateway;
  port: number;
  config: VigieConfig;
  close(): Promise<void>;
}

/**
 * What tests open in the destination policy: their origins listen on loopback, which the proxy
 * refuses unless allowed (the gateway's own listeners stay refused whatever this says).
 */
export const LOOPBACK_ORIGINS = { allow: [{ network: '127.0.0.0/8' }] };

/**
 * A gateway on an ephemeral loopback port with test lists; names resolve only through `hosts`.
 * Its destination policy opens 127.0.0.0/8 (the tests' origins) unless `doc.destinations` says otherwise.
 */
export async function startGateway(doc: Record<string, unknown> = {}, lists: string = writeLists(tmp(), TEST_LISTS), opts: Pick<GatewayOptions, 'observers' | 'rawTunnels'> & { log?: GatewayOptions['log'] } = {}): Promise<GatewayHandle> {
  const academy = (doc.lists as { academy?: string } | undefined)?.academy ?? writeLists(tmp(), { 'academy-allow': { domains: ['academy-ok.test'] }, 'academy-deny': { domains: ['academy-no.test'] } });
  const config = resolveConfig({
    listen: [{ host: '127.0.0.1', port: 0 }],
    dns: { servers: DEAD_DNS, timeoutMs: 500 },
    dataDir: tmp(),
    destinations: LOOPBACK_ORIGINS,
    // The public path is the tests' reference (issue 21); raw handles where a test asks for them.
    tunnels: 'socket',
    ...doc,
    lists: { ...(doc.lists as object | undefined), ut1: lists, academy },
  });
  const gateway = new Gateway({ config, log: opts.log ?? silentLogger, ...opts });
  await gateway.start();
  return { gateway, port: gateway.listening[0]!.port, config, close: () => gateway.stop() };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** Sends an absolute-form request through the proxy from `localAddress` (which picks the profile). */
export function viaProxy(proxyPort: number, url: string, opts: { localAddress?: string; method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: opts.method ?? 'GET', path: url, headers: opts.headers, localAddress: opts.localAddress ?? '127.0.0.1', agent: false });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Sends raw bytes to the proxy and collects everything until it closes (or `ms` passes). */
export function rawExchange(proxyPort: number, data: string | Buffer, ms = 3000, localAddress = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: proxyPort, localAddress });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => s.destroy(), ms);
    s.on('data', (c) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.write(data);
  });
}

/** Opens a CONNECT tunnel; resolves with the status line and the socket (open only on 200). */
export function connectTunnel(proxyPort: number, authority: string, localAddress = '127.0.0.1'): Promise<{ status: number; head: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: proxyPort, localAddress });
    let buf = '';
    s.on('error', reject);
    const onData = (c: Buffer) => {
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      s.off('data', onData);
      const status = Number(buf.slice(9, 12));
      if (status !== 200) {
        // read the rest (the short text body) before resolving
        s.on('data', (more) => (buf += more.toString('latin1')));
        s.on('close', () => resolve({ status, head: buf, socket: s }));
        return;
      }
      resolve({ status, head: buf, socket: s });
    };
    s.on('data', onData);
    s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}

/** TLS handshake and one GET over an open tunnel, checking the certificate name. */
export function tlsGet(socket: net.Socket, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const t = tls.connect({ socket, servername, ca: testCert().cert }, () => {
      t.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\nConnection: close\r\n\r\n`);
    });
    let out = '';
    t.on('data', (c) => (out += c.toString()));
    t.on('end', () => resolve(out));
    t.on('error', reject);
  });
}

/**
 * The node flags of deploy/systemd/vigie.service's ExecStart (npm start and the image pass the
 * same, test/service-systemd.test.ts): the benches start `vigie start` as a school box runs it.
 */
export function unitNodeFlags(): string[] {
  const unit = readFileSync(join(new URL('..', import.meta.url).pathname, 'deploy/systemd/vigie.service'), 'utf8');
  const exec = /^ExecStart=\S+\/node((?: --?[\w-]+(?:=\S+)?)*) \S+\/cli\.js start/m.exec(unit);
  if (!exec) throw new Error('deploy/systemd/vigie.service: no ExecStart=…/node [flags] …/cli.js start line');
  return exec[1]!.trim().split(/\s+/).filter(Boolean);
}
