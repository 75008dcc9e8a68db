import net from 'node:net';

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50ms: number;
  p99ms: number;
}

/**
 * A closed-loop HTTP/1.1 load generator on raw keep-alive sockets: each connection sends the
 * same prebuilt request and waits for the whole response (Content-Length framing) before the
 * next. Cheaper per request than node:http's client, so the thing measured is the server.
 * Bounded by time and by count; targets loopback only.
 */
export function load(opts: { port: number; host?: string; request: string; connections: number; seconds: number; maxRequests?: number; localAddress?: string }): Promise<LoadResult> {
  const req = Buffer.from(opts.request);
  const deadline = performance.now() + opts.seconds * 1000;
  const max = opts.maxRequests ?? Number.MAX_SAFE_INTEGER;
  const latencies: number[] = [];
  let requests = 0;
  let errors = 0;
  const t0 = performance.now();

  const one = () =>
    new Promise<void>((resolve) => {
      const s = net.connect({ port: opts.port, host: opts.host ?? '127.0.0.1', localAddress: opts.localAddress, noDelay: true });
      let buf: Buffer = Buffer.alloc(0);
      let sent = 0;
      const send = () => {
        if (performance.now() >= deadline || requests >= max) {
          s.destroy();
          return;
        }
        sent = performance.now();
        s.write(req);
      };
      s.on('connect', send);
      s.on('data', (chunk: Buffer) => {
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        for (;;) {
          const end = buf.indexOf('\r\n\r\n');
          if (end === -1) return;
          const head = buf.toString('latin1', 0, end);
          const m = /content-length:\s*(\d+)/i.exec(head);
          const total = end + 4 + (m ? Number(m[1]) : 0);
          if (buf.length < total) return;
          if (!head.startsWith('HTTP/1.1 2')) errors++;
          buf = buf.subarray(total);
          requests++;
          latencies.push(performance.now() - sent);
          send();
        }
      });
      s.on('error', () => {
        errors++;
      });
      s.on('close', () => resolve());
    });

  return Promise.all(Array.from({ length: opts.connections }, one)).then(() => {
    const seconds = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
    return { requests, errors, seconds, rps: requests / seconds, p50ms: pct(0.5), p99ms: pct(0.99) };
  });
}
