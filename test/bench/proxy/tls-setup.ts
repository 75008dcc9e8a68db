/**
 * HTTPS set-up rate, explicit against transparent (issue 22): every iteration is a new TCP
 * connection and a full TLS handshake with the origin (no session resumption: Node's client
 * resumes only when given a session), then one small GET with `Connection: close`.
 *   explicit:     CONNECT origin.test:<tls> through the proxy, then TLS inside the tunnel;
 *   transparent:  straight to the gateway's transparent HTTPS listener, which reads the SNI name.
 * Both sides use public node:net/node:tls so the two rows do the same client work.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ORIGIN_HOST } from './setup.js';

export interface TlsSetupTarget {
  mode: 'explicit' | 'transparent';
  /** The proxy's explicit port, or its transparent HTTPS listener. */
  port: number;
  /** The origin's TLS port (asked for in CONNECT; the transparent listener's targetPort). */
  originTlsPort: number;
}

export interface TlsSetupResult {
  perSecond: number;
  done: number;
  errors: number;
}

const GET = Buffer.from(`GET /small HTTP/1.1\r\nHost: ${ORIGIN_HOST}\r\nConnection: close\r\n\r\n`);
const TIMEOUT_MS = 10_000;

/** One set-up; resolves true when the GET answered 200 over the fresh TLS session. */
function once(t: TlsSetupTarget): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const sockets: net.Socket[] = [];
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const s of sockets) s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), TIMEOUT_MS);
    const overTls = (opts: tls.ConnectionOptions) => {
      const s = tls.connect({ ...opts, servername: ORIGIN_HOST, rejectUnauthorized: false });
      sockets.push(s);
      let head = '';
      s.on('secureConnect', () => s.write(GET));
      s.on('data', (d: Buffer) => {
        if (head.length < 16) head += d.toString('latin1', 0, 16);
      });
      s.on('end', () => finish(head.startsWith('HTTP/1.1 200')));
      s.on('error', () => finish(false));
      s.on('close', () => finish(head.startsWith('HTTP/1.1 200')));
    };
    if (t.mode === 'transparent') return overTls({ host: '127.0.0.1', port: t.port });
    const raw = net.connect({ host: '127.0.0.1', port: t.port, noDelay: true });
    sockets.push(raw);
    raw.on('error', () => finish(false));
    raw.on('connect', () => raw.write(`CONNECT ${ORIGIN_HOST}:${t.originTlsPort} HTTP/1.1\r\nHost: ${ORIGIN_HOST}:${t.originTlsPort}\r\n\r\n`));
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      raw.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(buf)) return finish(false);
      // A proxy sends nothing after the 200 until the client speaks: the TLS client takes the socket.
      raw.pause();
      overTls({ socket: raw });
    };
    raw.on('data', onData);
  });
}

/** `loops` concurrent set-up loops for `seconds`; the rate counts completed good set-ups. */
export async function tlsSetupRate(t: TlsSetupTarget, loops: number, seconds: number): Promise<TlsSetupResult> {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let done = 0;
  let errors = 0;
  const loop = async () => {
    while (performance.now() < deadline) {
      if (await once(t)) done++;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  const elapsed = (performance.now() - t0) / 1000;
  return { perSecond: done / elapsed, done, errors };
}
