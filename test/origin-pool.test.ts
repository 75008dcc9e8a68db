import t from 'tap';
import { freePort, rawExchange, startGateway, startOrigin } from './helpers.js';

// Both request paths (the fast path, and node's HTTP server for what it leaves aside) forward over
// one origin pool (src/proxy/upstream.ts, src/proxy/origin-stream.ts): one set of connections and
// one per-origin limit (limits.maxSocketsPerOrigin), one response timeout.

const fast = (port: number, path: string) => `GET http://pool.test:${port}${path} HTTP/1.1\r\nHost: pool.test:${port}\r\nConnection: close\r\n\r\n`;
// HTTP/1.0 and a chunked upload are handed to node's HTTP server.
const viaNode = (port: number, path: string) => `GET http://pool.test:${port}${path} HTTP/1.0\r\nHost: pool.test:${port}\r\n\r\n`;
const chunkedUpload = (port: number) => `POST http://pool.test:${port}/echo HTTP/1.1\r\nHost: pool.test:${port}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;
const status = (reply: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0);

t.test('one pool for both paths: connections and the per-origin limit are shared', async (t) => {
  const origin = await startOrigin();
  let connections = 0;
  origin.server.on('connection', () => connections++);
  const gw = await startGateway({ hosts: { 'pool.test': '127.0.0.1' }, limits: { maxSocketsPerOrigin: 1 }, timeouts: { upstreamResponseMs: 600 } });
  t.teardown(async () => {
    await gw.close();
    await origin.close();
  });

  const a = await rawExchange(gw.port, fast(origin.port, '/small'));
  const b = await rawExchange(gw.port, viaNode(origin.port, '/small'));
  const c = await rawExchange(gw.port, chunkedUpload(origin.port));
  const d = await rawExchange(gw.port, fast(origin.port, '/small'));
  t.equal(status(a), 200, 'fast path');
  t.equal(status(b), 200, 'node:http path (HTTP/1.0)');
  t.match(b, /hello from origin/);
  t.equal(status(c), 200, 'node:http path (chunked upload)');
  t.match(c, /\r\n\r\n5\r\nhello\r\n0\r\n/, 'the upload reached the origin and came back');
  t.equal(status(d), 200, 'fast path again, after the node:http path gave the connection back');
  t.equal(connections, 1, 'one origin connection carried all four exchanges, across both paths');

  // The one allowed connection is held by a fast-path request the origin never answers: the
  // node:http path's request waits for it instead of opening a second one.
  const t0 = performance.now();
  const order: string[] = [];
  const hang = rawExchange(gw.port, fast(origin.port, '/hang'), 5000).then((r) => (order.push('hang'), r));
  await new Promise((r) => setTimeout(r, 100));
  const waiting = rawExchange(gw.port, viaNode(origin.port, '/small'), 5000).then((r) => (order.push('node'), r));
  const [h, w] = await Promise.all([hang, waiting]);
  t.equal(status(h), 504, 'the unanswered request ends at the response timeout');
  t.equal(status(w), 200, 'the waiting request is served once the slot is free');
  t.same(order, ['hang', 'node'], 'and not before: the limit is one for both paths');
  t.ok(performance.now() - t0 >= 550, 'it waited for the response timeout');
  t.equal(connections, 2, 'the timed-out connection was replaced, never doubled');
});

t.test('the node:http path gets the pool response timeout (504) and connect errors (502)', async (t) => {
  const origin = await startOrigin();
  const gw = await startGateway({ hosts: { 'pool.test': '127.0.0.1', 'closed.test': '127.0.0.1' }, timeouts: { upstreamResponseMs: 300 } });
  t.teardown(async () => {
    await gw.close();
    await origin.close();
  });
  const hang = await rawExchange(gw.port, viaNode(origin.port, '/hang'), 5000);
  t.equal(status(hang), 504, 'response timeout');
  // A port nothing listens on: the pool's connect fails with ECONNREFUSED.
  const dead = await freePort();
  const closed = await rawExchange(gw.port, `GET http://closed.test:${dead}/ HTTP/1.0\r\nHost: closed.test:${dead}\r\n\r\n`, 5000);
  t.equal(status(closed), 502, 'connection refused');
  const after = await rawExchange(gw.port, viaNode(origin.port, '/small'));
  t.equal(status(after), 200, 'the path still serves afterwards');
});
