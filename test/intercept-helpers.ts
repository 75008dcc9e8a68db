// Shared by the interception tests: a school CA made by the real CLI, an origin CA for the test
// origins (given to the gateway as interception.extraRoots), TLS origins answering by name.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { initCa, loadCa } from '../src/tls/ca.js';
import { LeafIssuer } from '../src/tls/leaf.js';
import { startGateway, tmp, writeLists } from './helpers.js';

const run = promisify(execFile);
export const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

export async function vigie(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/**
 * TLS origins on one port, by server name: `good.test` (and any other name: its own certificate),
 * `expired.test` (a certificate that expired), `wrong.test` (a certificate for another name).
 * Their CA is not the school's: the file `caFile` is what the gateway is told to trust.
 */
export async function startNamedOrigins(): Promise<{ port: number; caFile: string; caPem: string; tls: { connections: number; resumed: number }; close(): Promise<void> }> {
  const dir = tmp('vigie-origin-ca-');
  initCa(dir, 'Test origins CA');
  const ca = loadCa(dir);
  const leaves = new LeafIssuer(ca, 72, 100);
  const now = Date.now();
  const contexts = new Map<string, tls.SecureContext>([
    ['expired.test', leaves.issue('expired.test', now - 10 * 86_400_000).context],
    ['wrong.test', leaves.issue('other.test', now).context],
  ]);
  const server = https.createServer({ SNICallback: (name, cb) => cb(null, contexts.get(name) ?? leaves.contextFor(name)) }, (req, res) => {
    // YouTube's restricted-mode header, echoed when present (SafeSearch inside full interception).
    const yt = req.headers['youtube-restrict'];
    const body = `origin ${req.headers.host} ${req.url}${yt === undefined ? '' : ` youtube-restrict=${String(yt)}`}\n`;
    // `/close...`: the origin closes the connection after answering (a proxy must open a new one).
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...(req.url?.startsWith('/close') ? { connection: 'close' } : {}) });
    req.resume();
    req.on('end', () => res.end(body));
  });
  // TLS connections accepted, and how many resumed a session (what a proxy's origin pool reuses).
  const counts = { connections: 0, resumed: 0 };
  server.on('secureConnection', (s: tls.TLSSocket) => {
    counts.connections++;
    if (s.isSessionReused()) counts.resumed++;
  });
  // A WebSocket stand-in: switches protocols, then echoes.
  server.on('upgrade', (req, socket: net.Socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${req.headers.upgrade}\r\nConnection: Upgrade\r\n\r\n`);
    socket.pipe(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const caFile = join(dir, 'ca.cert.pem');
  return {
    port: (server.address() as net.AddressInfo).port,
    caFile,
    caPem: readFileSync(caFile, 'utf8'),
    tls: counts,
    close: () => new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export interface TlsAnswer {
  status: number;
  body: string;
  issuer: string;
  alpn: string | false;
}

/**
 * One TLS session over `socket` (trusting `ca`, the name checked) with GETs of `paths` on it,
 * keep-alive; resolves with each answer and the certificate's issuer.
 */
export function tlsRequests(socket: net.Socket, servername: string, ca: string, paths: string[], hostHeader = servername): Promise<TlsAnswer[]> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ socket, servername, ca, ALPNProtocols: ['h2', 'http/1.1'] });
    const out: TlsAnswer[] = [];
    let buf = '';
    s.on('secureConnect', () => s.write(paths.map((p, i) => `GET ${p} HTTP/1.1\r\nHost: ${hostHeader}\r\nAccept-Language: fr-FR\r\n${i === paths.length - 1 ? 'Connection: close\r\n' : ''}\r\n`).join('')));
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.slice(0, end);
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? '-1');
        if (len < 0 || buf.length < end + 4 + len) return;
        out.push({ status: Number(head.slice(9, 12)), body: Buffer.from(buf.slice(end + 4, end + 4 + len), 'latin1').toString('utf8'), issuer: String(s.getPeerCertificate().issuer.CN ?? ''), alpn: s.alpnProtocol ?? false });
        buf = buf.slice(end + 4 + len);
        if (out.length === paths.length) {
          s.destroy();
          resolve(out);
        }
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(out));
  });
}

export const writeJson = (file: string, doc: unknown): string => {
  writeFileSync(file, JSON.stringify(doc));
  return file;
};

/**
 * A gateway whose one client network (127.0.0.1/32) has profile `full` (blocklist of `adult`,
 * `intercept: "full"`), trusting the test origins' CA: `adult.test` listed, `good.test/adult-corner`
 * a url entry.
 */
export function startFullInterception(data: string, origins: { port: number; caFile: string }, hosts: Record<string, string>, opts: Parameters<typeof startGateway>[2] = {}): ReturnType<typeof startGateway> {
  return startGateway(
    {
      dataDir: data,
      hosts,
      connectPorts: [origins.port],
      httpPorts: ['1-65535'],
      clients: [{ network: '127.0.0.1/32', profile: 'full' }],
      profiles: { full: { mode: 'blocklist', categories: ['adult'], intercept: 'full' } },
      interception: { extraRoots: [origins.caFile] },
    },
    writeLists(tmp(), { adult: { domains: ['adult.test'], urls: ['good.test/adult-corner'] } }),
    opts,
  );
}

