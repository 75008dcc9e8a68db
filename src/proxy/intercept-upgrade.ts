/**
 * WebSocket (and any HTTP/1.1 Upgrade) inside an intercepted connection (`full`): decided by the
 * gate on its URL like any request, then relayed over a new TLS connection to the origin with the
 * same verification as src/proxy/intercept-upstream.ts. The Upgrade and Connection headers are
 * what this exchange is about, so they are kept (forwardHeaders would drop them as hop-by-hop).
 */
import type { IncomingMessage } from 'node:http';
import { isIP, type Socket } from 'node:net';
import tls from 'node:tls';
import type { ConnectionRecord } from './events.js';
import type { Reply } from './gate.js';
import type { UpstreamProblem } from './pages.js';
import { classify, statusFor } from './target.js';

const DROPPED = new Set(['proxy-authorization', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'host']);

/** The request head for the origin: the client's headers but proxy ones, the authority as Host, our Via. */
function upgradeHead(req: IncomingMessage, path: string, authority: string, via: string): string {
  let head = `${req.method ?? 'GET'} ${path} HTTP/1.1\r\nHost: ${authority}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (!DROPPED.has(name.toLowerCase())) head += `${name}: ${raw[i + 1]!}\r\n`;
  }
  return `${head}Via: ${via}\r\n\r\n`;
}

export interface UpgradeDeps {
  /** The origin TLS context (roots, TLS >= 1.2) shared with the agent. */
  readonly context: tls.SecureContext;
  readonly via: string;
  readonly connectMs: number;
  record(rec: ConnectionRecord): void;
  upstreamError(problem: UpstreamProblem): void;
}

/** Ends the client's upgrade attempt with a short HTTP answer. */
export function refuseUpgrade(socket: Socket, status: number, text: string): void {
  const body = Buffer.from(text);
  socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Error'}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${text}`);
}

/** Relays an allowed upgrade `r` (located by the gate) to the origin; the record ends when either side closes. */
export function relayUpgrade(deps: UpgradeDeps, req: IncomingMessage, client: Socket, head: Buffer, r: Reply, authority: string): void {
  const rec = r.record!;
  const name = r.connectHost;
  const up = tls.connect({
    host: r.address,
    port: r.port,
    servername: isIP(name) === 0 ? name : undefined,
    secureContext: deps.context,
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['http/1.1'],
    checkServerIdentity: (_h, cert) => tls.checkServerIdentity(name, cert),
  });
  const timer = setTimeout(() => up.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), deps.connectMs);
  let open = false;
  const done = () => {
    rec.durationMs = Date.now() - rec.time;
    rec.bytesIn = up.bytesWritten;
    rec.bytesOut = up.bytesRead;
    deps.record(rec);
  };
  up.once('secureConnect', () => {
    clearTimeout(timer);
    open = true;
    up.write(upgradeHead(req, r.path, authority, deps.via));
    if (head.length) up.write(head);
    // The origin's answer (101 or a refusal) goes to the client as it is; its status is journaled.
    up.once('data', (first: Buffer) => {
      rec.status = Number(first.toString('latin1', 9, 12)) || 0;
    });
    up.pipe(client);
    client.pipe(up);
    up.once('close', () => client.destroy());
    client.once('close', () => up.destroy());
    up.once('close', done);
  });
  up.on('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(timer);
    if (open) return void client.destroy();
    const problem = classify(err);
    rec.problem = problem;
    rec.status = statusFor(problem);
    deps.upstreamError(problem);
    deps.record(rec);
    refuseUpgrade(client, rec.status, `Vigie: ${problem}\n`);
  });
  client.on('error', () => up.destroy());
}
