import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { rawBinding } from '../src/proxy/raw.js';
import { serveLoopback, startGateway, type GatewayHandle } from './helpers.js';

// Client connections read into a buffer of their own (src/proxy/client-reads.ts): bytes the fast
// path keeps past a read (pipelined heads, request bodies waiting for the origin) must not be
// overwritten by the next read. These tests fail if the buffer is reused while they are held.

let release: () => void = () => {};
let heldUntil: Promise<void> = Promise.resolve();
/** `/slow-echo?held` reads nothing until `release()`. */
function hold(): void {
  heldUntil = new Promise((r) => (release = r));
}

/**
 * An origin: `/slow-echo` reads nothing for 500 ms (or, with `?held`, until `release()`), then
 * answers the whole body back; others answer their path after `?ms=`.
 */
async function startOrigin(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://o');
    if (url.pathname === '/slow-echo') {
      req.pause();
      const go = url.searchParams.has('held') ? heldUntil : new Promise((r) => setTimeout(r, 500));
      void go.then(() => {
        const chunks: Buffer[] = [];
        req.on('data', (d: Buffer) => chunks.push(d));
        req.on('end', () => {
          const body = Buffer.concat(chunks);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
          res.end(body);
        });
        req.resume();
      });
      return;
    }
    const ms = Number(url.searchParams.get('ms') ?? '0');
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(url.pathname) });
      res.end(url.pathname);
    }, ms);
  });
  server.keepAliveTimeout = 5000;
  return serveLoopback(server);
}

const origin = await startOrigin();
t.teardown(() => origin.close());
const o = `o.test:${origin.port}`;

async function gateway(rawTunnels: boolean): Promise<GatewayHandle> {
  return startGateway(
    {
      clients: [{ network: '127.0.0.1/32', profile: 'cycle3' }],
      profiles: { cycle3: { mode: 'blocklist', categories: ['adult'] } },
      hosts: { 'o.test': '127.0.0.1' },
      connectPorts: [origin.port],
      journal: { enabled: false },
    },
    undefined,
    { rawTunnels },
  );
}

/** A raw client connection to the proxy; `until(re)` waits (3 s at most) for what it has received to match. */
function client(port: number): { c: net.Socket; until(re: RegExp): Promise<boolean> } {
  const c = net.connect({ host: '127.0.0.1', port });
  let got = '';
  c.on('data', (d: Buffer) => (got += d.toString('latin1')));
  const until = async (re: RegExp) => {
    const end = Date.now() + 3000;
    while (!re.test(got) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    return re.test(got);
  };
  return { c, until };
}

for (const raw of [true, false]) {
  const way = raw && rawBinding !== null ? 'own read buffers' : 'net.Socket reads';
  t.test(`${way}: a pipelined request held while more bytes arrive is answered intact`, async (t) => {
    const gw = await gateway(raw);
    t.teardown(() => gw.close());
    const c = net.connect({ host: '127.0.0.1', port: gw.port });
    let got = '';
    c.on('data', (d: Buffer) => (got += d.toString('latin1')));
    // A first request on its own: the connection's first read is not made into its own buffer.
    c.write(`GET http://${o}/zero HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
    while (!got.endsWith('/zero')) await new Promise((r) => setTimeout(r, 5));
    // Two heads in one write: the second waits in the fast path while the first takes 200 ms.
    c.write(`GET http://${o}/first?ms=200 HTTP/1.1\r\nHost: ${o}\r\n\r\nGET http://${o}/second-request-held-in-the-buffer HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 50));
    // A third head arrives meanwhile, in a read of its own: it must not land on the second.
    c.write(`GET http://${o}/third-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx HTTP/1.1\r\nHost: ${o}\r\nConnection: close\r\n\r\n`);
    await new Promise<void>((r) => c.once('close', () => r()));
    const bodies = [...got.matchAll(/\r\n\r\n(\/[^H]*)/g)].map((m) => m[1]);
    t.same(bodies, ['/zero', '/first', '/second-request-held-in-the-buffer', '/third-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'], 'three answers, in order, to the paths sent');
  });

  t.test(`${way}: an upload to an origin that does not read yet arrives byte for byte`, async (t) => {
    const gw = await gateway(raw);
    t.teardown(() => gw.close());
    const body = randomBytes(2000 * 3000);
    hold();
    const res = await new Promise<{ status: number; hash: string; length: number }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: gw.port, method: 'POST', path: `http://${o}/slow-echo?held`, headers: { host: o, 'content-length': body.length }, agent: false });
      req.on('response', (r) => {
        const h = createHash('sha256');
        let length = 0;
        r.on('data', (d: Buffer) => {
          h.update(d);
          length += d.length;
        });
        r.on('end', () => resolve({ status: r.statusCode ?? 0, hash: h.digest('hex'), length }));
      });
      req.on('error', reject);
      // Pieces of 3,000 bytes, each read on its own, while the origin reads nothing: once the
      // kernel's buffers towards it are full, the proxy's writes queue (below the high-water
      // mark at first, so it goes on reading) and hold the bytes of reads that came before.
      void (async () => {
        for (let off = 0; off < body.length; off += 3000) {
          await new Promise((r) => setTimeout(r, 1));
          req.write(body.subarray(off, off + 3000));
        }
        req.end();
        release();
      })();
    });
    t.equal(res.status, 200);
    t.equal(res.length, body.length, 'every byte came back');
    t.equal(res.hash, createHash('sha256').update(body).digest('hex'), 'unchanged, in order');
  });

  t.test(`${way}: requests then a chunked upload and a CONNECT on the same connection (handed over)`, async (t) => {
    const gw = await gateway(raw);
    t.teardown(() => gw.close());
    const { c, until } = client(gw.port);
    c.write(`GET http://${o}/one HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
    t.ok(await until(/\/one$/), 'a fast-path request');
    // Chunked: node's HTTP server takes the connection from here.
    c.write(`POST http://${o}/slow-echo HTTP/1.1\r\nHost: ${o}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`);
    await new Promise((r) => setTimeout(r, 20));
    c.write('6\r\n world\r\n0\r\n\r\n');
    t.ok(await until(/hello world/), 'the chunked upload, handed over, echoed whole');
    c.write(`GET http://${o}/after-handoff HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
    t.ok(await until(/\/after-handoff$/), 'and the connection goes on');
    // A CONNECT on the handed-over connection, then a request inside the tunnel.
    c.write(`CONNECT ${o} HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
    t.ok(await until(/200 Connection Established\r\n\r\n$/), 'a tunnel from node\'s HTTP server');
    c.write(`GET /in-tunnel-after-handoff HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
    t.ok(await until(/\/in-tunnel-after-handoff$/), 'bytes flow through it');
    c.destroy();
  });

  t.test(`${way}: a request, then a CONNECT on the same connection (the fast path opens the tunnel)`, async (t) => {
    const gw = await gateway(raw);
    t.teardown(() => gw.close());
    const { c, until } = client(gw.port);
    c.write(`GET http://${o}/before HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
    t.ok(await until(/\/before$/));
    // The CONNECT head and the first bytes of the tunnel in one write.
    c.write(`CONNECT ${o} HTTP/1.1\r\nHost: ${o}\r\n\r\nGET /first-in-tunnel HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
    t.ok(await until(/\/first-in-tunnel$/), 'the bytes sent with the CONNECT went through');
    c.write(`GET /second-in-tunnel HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
    t.ok(await until(/\/second-in-tunnel$/), 'and what came after, read once the connection was a tunnel');
    c.destroy();
  });
}
