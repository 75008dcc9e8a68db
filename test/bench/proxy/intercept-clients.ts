/**
 * Load for the interception benchmark: CONNECT through the proxy, then TLS with the proxy's
 * leaf certificate (verified against the school CA and the name: proof the proxy intercepted),
 * never resuming a session (Node's client resumes only when handed one). Bounded in time.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ResponseReader } from './clients.js';

export interface BumpTarget {
  /** The proxy's port. */
  port: number;
  /** The origin port asked for in CONNECT. */
  originPort: number;
  /** The school CA (PEM) the client trusts. */
  ca: string;
}

const TIMEOUT_MS = 10_000;

/** CONNECT `host`, then TLS over the tunnel; resolves the TLS socket or null. */
function openTls(t: BumpTarget, host: string): Promise<tls.TLSSocket | null> {
  return new Promise((resolve) => {
    let settled = false;
    const raw = net.connect({ host: '127.0.0.1', port: t.port, noDelay: true });
    const finish = (s: tls.TLSSocket | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (s === null) raw.destroy();
      resolve(s);
    };
    const timer = setTimeout(() => finish(null), TIMEOUT_MS);
    raw.on('error', () => finish(null));
    raw.on('connect', () => raw.write(`CONNECT ${host}:${t.originPort} HTTP/1.1\r\nHost: ${host}:${t.originPort}\r\n\r\n`));
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.indexOf('\r\n\r\n') < 0) return;
      raw.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(buf)) return finish(null);
      raw.pause();
      const s = tls.connect({ socket: raw, servername: host, ca: t.ca, ALPNProtocols: ['http/1.1'] });
      s.once('secureConnect', () => finish(s));
      s.once('error', () => finish(null));
    };
    raw.on('data', onData);
  });
}

/** One new intercepted connection: CONNECT, TLS, one GET with Connection: close; true on 200. */
// The Host header names the port: a bumping proxy reads the origin's address from it (Squid
// would otherwise go to 443).
async function setupOnce(t: BumpTarget, host: string): Promise<boolean> {
  const s = await openTls(t, host);
  if (!s) return false;
  return new Promise((resolve) => {
    let ok = false;
    const timer = setTimeout(() => s.destroy(), TIMEOUT_MS);
    const reader = new ResponseReader((status) => {
      ok = status === 200;
      s.destroy();
    });
    s.on('data', (d: Buffer) => reader.feed(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(ok);
    });
    s.write(`GET /small HTTP/1.1\r\nHost: ${host}:${t.originPort}\r\nConnection: close\r\n\r\n`);
  });
}

export interface RateResult {
  perSecond: number;
  done: number;
  errors: number;
}

/** `loops` concurrent loops of new intercepted connections for `seconds`; `host(i)` names the i-th. */
export async function bumpSetupRate(t: BumpTarget, host: () => string, loops: number, seconds: number): Promise<RateResult> {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let done = 0;
  let errors = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      if (await setupOnce(t, host())) done++;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  return { perSecond: done / ((performance.now() - t0) / 1000), done, errors };
}

/** `conns` keep-alive TLS sessions through the proxy, each sending small GETs back to back for `seconds`. */
export async function bumpKeepAlive(t: BumpTarget, host: string, conns: number, seconds: number): Promise<RateResult> {
  const sockets = await Promise.all(Array.from({ length: conns }, () => openTls(t, host)));
  const open = sockets.filter((s): s is tls.TLSSocket => s !== null);
  const req = Buffer.from(`GET /small HTTP/1.1\r\nHost: ${host}:${t.originPort}\r\n\r\n`);
  let done = 0;
  let errors = sockets.length - open.length;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  await Promise.all(
    open.map(
      (s) =>
        new Promise<void>((resolve) => {
          const reader = new ResponseReader((status) => {
            if (status === 200) done++;
            else errors++;
            if (performance.now() < deadline) s.write(req);
            else s.destroy();
          });
          const timer = setTimeout(() => s.destroy(), seconds * 1000 + TIMEOUT_MS);
          s.on('data', (d: Buffer) => reader.feed(d));
          s.on('error', () => errors++);
          s.on('close', () => {
            clearTimeout(timer);
            resolve();
          });
          s.write(req);
        }),
    ),
  );
  return { perSecond: done / ((performance.now() - t0) / 1000), done, errors };
}
