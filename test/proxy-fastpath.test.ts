import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import t from 'tap';
import { forwardHeaders, HOP_BY_HOP } from '../src/proxy/headers.js';
import { ChunkedScanner, parseRequestHead, parseResponseHead } from '../src/proxy/http1.js';
import { resolveConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { silentLogger } from '../src/log.js';
import { connectTunnel, DEAD_DNS, freePort, LOOPBACK_ORIGINS, rawExchange, startGateway, startOrigin, TEST_LISTS, tmp, viaProxy, writeLists } from './helpers.js';

const VIA = '1.1 vigie';

t.test('request heads: what the fast path forwards, and what it leaves to node', async (t) => {
  const p = parseRequestHead('GET http://a.test/x HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\nX-Keep: 2\r\nProxy-Authorization: Basic c2VjcmV0\r\nAccept-Language: en\r\nContent-Length: 0', VIA)!;
  t.ok(p);
  t.equal(p.method, 'GET');
  t.equal(p.target, 'http://a.test/x');
  t.equal(p.forward, 'X-Keep: 2\r\nAccept-Language: en\r\nContent-Length: 0\r\nVia: 1.1 vigie\r\n', 'Host, hop-by-hop and Connection-named headers dropped; Via added');
  t.equal(p.acceptLanguage, 'en');
  t.equal(p.close, false);
  t.equal(parseRequestHead('GET http://a.test/ HTTP/1.1\r\nVia: 1.0 other\r\nProxy-Connection: close', VIA)!.forward, 'Via: 1.0 other, 1.1 vigie\r\n');
  t.equal(parseRequestHead('GET http://a.test/ HTTP/1.1\r\nConnection: Close', VIA)!.close, true);
  t.equal(parseRequestHead('POST http://a.test/ HTTP/1.1\r\nContent-Length: 42', VIA)!.contentLength, 42);
  t.equal(parseRequestHead('GET http://a.test/ HTTP/1.1', VIA)!.forward, 'Via: 1.1 vigie\r\n', 'no header at all');
  const slow: [string, string][] = [
    ['HTTP/1.0', 'GET http://a.test/ HTTP/1.0\r\nHost: a'],
    ['chunked upload', 'POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked'],
    ['Expect', 'PUT http://a.test/ HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue'],
    ['Upgrade', 'GET http://a.test/ HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade'],
    ['two lengths', 'POST http://a.test/ HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2'],
    ['signed length', 'POST http://a.test/ HTTP/1.1\r\nContent-Length: +1'],
    ['space before the colon', 'GET http://a.test/ HTTP/1.1\r\nContent-Length : 5'],
    ['folded line', 'GET http://a.test/ HTTP/1.1\r\nX-A: 1\r\n 2'],
    ['bare CR', 'GET http://a.test/ HTTP/1.1\r\nX-A: 1\r2'],
    ['NUL', 'GET http://a.test/ HTTP/1.1\r\nX-A: \x00'],
    ['bare LF', 'GET http://a.test/ HTTP/1.1\r\nX-A: 1\nContent-Length: 5'],
    ['bare CR in the target', 'GET http://a.test/\rx HTTP/1.1'],
    ['no colon', 'GET http://a.test/ HTTP/1.1\r\nnonsense'],
    ['lowercase method', 'get http://a.test/ HTTP/1.1'],
    ['extra space', 'GET  http://a.test/ HTTP/1.1'],
    ['not HTTP', 'THIS IS NOT HTTP'],
  ];
  for (const [why, head] of slow) t.equal(parseRequestHead(head, VIA), null, why);
});

t.test('response heads: framing and reuse', async (t) => {
  const r = (head: string, isHead = false) => parseResponseHead(head, isHead, VIA);
  const ok = r('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-A: b');
  t.match(ok, { status: 200, statusLine: 'HTTP/1.1 200 OK', framing: 'length', length: 5, reusable: true });
  t.equal(typeof ok === 'object' && ok.forward, 'X-A: b\r\nVia: 1.1 vigie\r\nContent-Length: 5\r\n');
  t.type(r('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9'), 'string', 'chunked and a length at once: refused, as llhttp does (RFC 9112 §6.3: a smuggling attempt)');
  t.match(r('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip'), { framing: 'close', reusable: false }, 'not chunked last: the body ends with the connection');
  t.match(r('HTTP/1.1 200 OK'), { framing: 'close', reusable: false });
  t.match(r('HTTP/1.0 200 OK\r\nContent-Length: 1'), { framing: 'length', reusable: false, statusLine: 'HTTP/1.1 200 OK' });
  t.match(r('HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive'), { reusable: true });
  t.match(r('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close'), { reusable: false });
  t.match(r('HTTP/1.1 200 OK\r\nContent-Length: 100', true), { framing: 'none', reusable: true }, 'HEAD: no body');
  t.match(r('HTTP/1.1 204 No Content'), { framing: 'none' });
  t.match(r('HTTP/1.1 304 Not Modified\r\nContent-Length: 10'), { framing: 'none' });
  t.match(r('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload'), { status: 103, framing: 'none' });
  t.match(r('HTTP/1.1 200'), { statusLine: 'HTTP/1.1 200' }, 'no reason phrase');
  for (const bad of ['HTTP/2 200 OK', 'HTTP/1.1 2000 OK', 'HTTP/1.1 20 OK', 'ICY 200 OK', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2', 'HTTP/1.1 200 OK\r\nContent-Length: -1', 'HTTP/1.1 200 OK\r\nBad Name: 1', 'HTTP/1.1 200 OK\r\nX: \x00', 'HTTP/1.1 200 OK\r\nX: a\rb', 'HTTP/1.1 200 OK\r\nX: a\nContent-Length: 0'])
    t.type(r(bad), 'string', JSON.stringify(bad));
});

t.test('chunked scanner finds the end however the bytes are split', async (t) => {
  const body = Buffer.from('5;ext=1\r\nhello\r\n1A\r\n' + 'z'.repeat(26) + '\r\n0\r\nTrailer: x\r\nOther: y\r\n\r\n');
  const after = Buffer.from('HTTP/1.1 200 OK\r\n');
  const all = Buffer.concat([body, after]);
  let seed = 7;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  for (let round = 0; round < 300; round++) {
    const sc = new ChunkedScanner();
    let pos = 0;
    let end = -1;
    while (pos < all.length && end < 0) {
      const len = 1 + rnd(12);
      const piece = all.subarray(pos, pos + len);
      const r = sc.scan(piece);
      if (r === -2) {
        t.fail(`round ${round}: framing error at ${pos}`);
        return;
      }
      if (r >= 0) end = pos + r;
      pos += piece.length;
    }
    if (end !== body.length) {
      t.fail(`round ${round}: end at ${end}, expected ${body.length}`);
      return;
    }
  }
  t.pass('300 random splits, end found exactly each time');
  t.equal(new ChunkedScanner().scan(Buffer.from('0\r\n\r\n')), 5, 'empty body');
  for (const bad of ['x\r\n', '\r\n', '5\r\nhelloXX', '5\nhello', '1234567890abcd\r\n', '0\r\n\n', '5;e\nhello', '0\r\nT: x\ny']) t.equal(new ChunkedScanner().scan(Buffer.from(bad)), -2, JSON.stringify(bad));
  // Extension and trailer lines: up to maxLine bytes after their first character.
  t.equal(new ChunkedScanner(8).scan(Buffer.from(`1;${'e'.repeat(8)}\r\nx\r\n0\r\n\r\n`)), 20, 'an extension at the limit');
  t.equal(new ChunkedScanner(8).scan(Buffer.from(`1;${'e'.repeat(9)}\r\n`)), -2, 'one byte over');
  t.equal(new ChunkedScanner(8).scan(Buffer.from(`0\r\nT:${'t'.repeat(8)}\r\n\r\n`)), 17, 'a trailer at the limit');
  t.equal(new ChunkedScanner(8).scan(Buffer.from(`0\r\nT:${'t'.repeat(9)}\r\n\r\n`)), -2, 'one byte over');
  for (const bad of ['5 \r\n', '5\t;e\r\n', '5;\r\n', '5;a b\r\n', '5;a = b\r\n', '0\r\nT 1\r\n', '0\r\nT: \x01\r\n']) t.equal(new ChunkedScanner().scan(Buffer.from(bad)), -2, `${JSON.stringify(bad)}, as llhttp`);
});

/**
 * An origin that answers in exact bytes: each request's path names a canned response, so the
 * test sees framing the way a real server would send it.
 */
async function scriptedOrigin(): Promise<{ port: number; connections: () => number; closed: () => number; close(): Promise<void> }> {
  let connections = 0;
  let closed = 0;
  const socks = new Set<net.Socket>();
  const big = randomBytes(300_000);
  const huge = randomBytes(4 * 1024 * 1024 + 123);
  const hugeSha = createHash('sha256').update(huge).digest('hex');
  const chunkedBody = '4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n';
  const server = net.createServer((s) => {
    connections++;
    socks.add(s);
    s.on('close', () => {
      socks.delete(s);
      closed++;
    });
    s.on('error', () => {});
    let buf = '';
    let served = 0;
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const path = head.split(' ')[1]!;
        served++;
        switch (path) {
          case '/chunked':
            s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n`);
            // the body in small pieces, as a streaming server sends it
            for (let i = 0; i < chunkedBody.length; i += 5) s.write(chunkedBody.slice(i, i + 5));
            break;
          case '/until-close':
            s.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it until the end');
            return;
          case '/head-len':
            s.write('HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n');
            break;
          case '/no-content':
            s.write('HTTP/1.1 204 No Content\r\n\r\n');
            break;
          case '/hints':
            s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
            break;
          case '/garbage':
            s.end('SSH-2.0-OpenSSH\r\n\r\n');
            return;
          case '/short':
            s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this');
            return;
          case '/big':
            s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${big.length}\r\nX-Sha: ${createHash('sha256').update(big).digest('hex')}\r\n\r\n`);
            s.write(big);
            break;
          case '/huge-split': {
            // The head in two writes apart (so it spans two reads), then the body in odd-sized pieces.
            const head = `HTTP/1.1 200 OK\r\nContent-Length: ${huge.length}\r\nX-Sha: ${hugeSha}\r\n\r\n`;
            s.write(head.slice(0, 20));
            setTimeout(() => {
              s.write(head.slice(20));
              for (let i = 0; i < huge.length; i += 50_001) s.write(huge.subarray(i, i + 50_001));
            }, 30);
            break;
          }
          case '/slow':
            setTimeout(() => s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow'), 100);
            break;
          case '/once':
            // Answers one request per connection, then drops the next without a word: what a
            // keep-alive origin does when its idle timer fires just as the proxy reuses it.
            if (served > 1) {
              s.destroy();
              return;
            }
            s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce');
            break;
          default:
            s.write(`HTTP/1.1 200 OK\r\nContent-Length: ${path.length}\r\n\r\n${path}`);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    closed: () => closed,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** One client connection; `exchange` writes and reads until `count` full responses arrived (or the socket closed). */
function client(port: number) {
  const s = net.connect({ host: '127.0.0.1', port });
  let data = Buffer.alloc(0);
  let closed = false;
  const waiters: (() => void)[] = [];
  s.on('data', (d) => {
    data = Buffer.concat([data, d]);
    waiters.splice(0).forEach((w) => w());
  });
  s.on('close', () => {
    closed = true;
    waiters.splice(0).forEach((w) => w());
  });
  s.on('error', () => {});
  return {
    socket: s,
    get closed() {
      return closed;
    },
    /** Waits until `pred(text so far)` holds or the connection closes; returns the text. */
    async until(pred: (s: string) => boolean, ms = 5000): Promise<string> {
      const end = Date.now() + ms;
      while (!pred(data.toString('latin1')) && !closed && Date.now() < end) await new Promise<void>((r) => (waiters.push(r), setTimeout(r, 50)));
      return data.toString('latin1');
    },
    take(): string {
      const out = data.toString('latin1');
      data = Buffer.alloc(0);
      return out;
    },
  };
}

t.test('both paths drop every hop-by-hop header of the one list', async (t) => {
  for (const name of HOP_BY_HOP) {
    const cased = name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
    const general = forwardHeaders(['Host', 'a.test', cased, 'x', 'X-Keep', '1'], VIA, 'a.test');
    t.notOk(general.some((h) => h.toLowerCase() === name), `general path drops ${cased}`);
    const req = parseRequestHead(`GET http://a.test/ HTTP/1.1\r\nHost: a.test\r\n${cased}: x\r\nX-Keep: 1`, VIA);
    // null: the fast path hands such a request to node's server, where forwardHeaders applies.
    if (req !== null) {
      t.notMatch(req.forward.toLowerCase(), new RegExp(`(^|\\n)${name}:`), `fast path drops ${cased} from requests`);
      t.match(req.forward, /X-Keep: 1/);
    }
    if (name === 'transfer-encoding') continue; // a chunked answer keeps its framing header
    const res = parseResponseHead(`HTTP/1.1 200 OK\r\nContent-Length: 0\r\n${cased}: x\r\nX-Keep: 1`, false, VIA);
    t.ok(typeof res !== 'string');
    if (typeof res !== 'string') t.notMatch(res.forward.toLowerCase(), new RegExp(`(^|\\n)${name}:`), `fast path drops ${cased} from responses`);
  }
});

t.test('fast path on real sockets', async (t) => {
  const origin = await scriptedOrigin();
  const node = await startOrigin();
  const gw = await startGateway({
    clients: [{ network: '127.0.0.1/32', profile: 'cycle3' }],
    profiles: { cycle3: { mode: 'blocklist', categories: ['adult'] } },
    hosts: { 'o.test': '127.0.0.1', 'n.test': '127.0.0.1', 'adult.test': '127.0.0.1' },
    timeouts: { connectMs: 1000, upstreamResponseMs: 1500, headersMs: 400, idleMs: 5000 },
  });
  t.teardown(async () => {
    await gw.close();
    await origin.close();
    await node.close();
  });
  const o = `o.test:${origin.port}`;
  const get = (path: string, extra = '') => `GET http://${o}${path} HTTP/1.1\r\nHost: ${o}\r\n${extra}\r\n`;

  t.test('chunked response passes through byte for byte, and the connection goes on', async (t) => {
    const c = client(gw.port);
    c.socket.write(get('/chunked'));
    const r = await c.until((s) => s.endsWith('X-Trailer: t\r\n\r\n'));
    t.match(r, /^HTTP\/1\.1 200 OK\r\n/);
    t.match(r, /Transfer-Encoding: chunked\r\n/);
    t.ok(r.endsWith('\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n'), 'chunks, extension and trailer unchanged');
    c.take();
    c.socket.write(get('/after'));
    t.match(await c.until((s) => s.endsWith('/after')), /200 OK[\s\S]*\/after$/);
    c.socket.destroy();
  });

  t.test('a body that ends with the connection: passed on, then the client connection closes', async (t) => {
    const c = client(gw.port);
    c.socket.write(get('/until-close'));
    const r = await c.until(() => false);
    t.ok(c.closed, 'closed by the proxy');
    t.match(r, /^HTTP\/1\.1 200 OK\r\n/, 'status line in HTTP/1.1');
    t.match(r, /Connection: close\r\n/);
    t.ok(r.endsWith('\r\n\r\nall of it until the end'));
  });

  t.test('HEAD, 204 and interim 103 answers carry no body; keep-alive goes on', async (t) => {
    const c = client(gw.port);
    c.socket.write(`HEAD http://${o}/head-len HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
    const h = await c.until((s) => s.includes('\r\n\r\n'));
    t.match(h, /Content-Length: 12345/);
    c.take();
    c.socket.write(get('/no-content'));
    t.match(await c.until((s) => s.includes('\r\n\r\n')), /^HTTP\/1\.1 204/);
    c.take();
    c.socket.write(get('/hints'));
    const hints = await c.until((s) => s.endsWith('ok'));
    t.match(hints, /^HTTP\/1\.1 103 Early Hints\r\nLink: <\/a.css>; rel=preload\r\nVia: 1\.1 vigie\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    c.take();
    c.socket.write(get('/last'));
    t.match(await c.until((s) => s.endsWith('/last')), /200 OK/);
    t.notOk(c.closed);
    c.socket.destroy();
  });

  t.test('pipelined requests, one of them blocked, answered in order', async (t) => {
    const c = client(gw.port);
    c.socket.write(get('/one') + `GET http://adult.test:${origin.port}/ HTTP/1.1\r\nHost: adult.test\r\n\r\n` + get('/three'));
    const r = await c.until((s) => s.endsWith('/three'));
    const statuses = [...r.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    t.same(statuses, ['200', '403', '200']);
    t.ok(r.indexOf('/one') < r.indexOf('403') && r.indexOf('403') < r.indexOf('/three'));
    c.socket.destroy();
  });

  t.test('a head arriving byte by byte', async (t) => {
    const c = client(gw.port);
    const req = get('/drip');
    for (const ch of req) {
      c.socket.write(ch);
      await new Promise((r) => setImmediate(r));
    }
    t.match(await c.until((s) => s.endsWith('/drip')), /200 OK/);
    c.socket.destroy();
  });

  t.test('what the fast path leaves aside goes to node on the same connection', async (t) => {
    const n = `n.test:${node.port}`;
    const c = client(gw.port);
    c.socket.write(`GET http://${n}/small HTTP/1.1\r\nHost: ${n}\r\n\r\n`);
    t.match(await c.until((s) => s.includes('hello from origin')), /200 OK/);
    c.take();
    // chunked upload: node's parser takes over for the rest of the connection
    c.socket.write(`POST http://${n}/echo HTTP/1.1\r\nHost: ${n}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
    t.match(await c.until((s) => s.includes('hello') && s.includes('\r\n0\r\n\r\n') || /Content-Length: 5\r\n[\s\S]*hello$/.test(s)), /200 OK[\s\S]*hello/);
    c.take();
    c.socket.write(`GET http://${n}/small HTTP/1.1\r\nHost: ${n}\r\nConnection: close\r\n\r\n`);
    t.match(await c.until(() => false), /200 OK[\s\S]*hello from origin/);
    t.ok(c.closed);
    t.match(await rawExchange(gw.port, `GET http://${o}/x HTTP/1.1\r\nContent-Length : 5\r\n\r\n`), /^HTTP\/1\.1 400/, 'smuggling-shaped head: node answers 400');
  });

  t.test('a kept-alive origin connection that died is retried once, transparently', async (t) => {
    const before = origin.connections();
    const c = client(gw.port);
    c.socket.write(get('/once'));
    t.match(await c.until((s) => s.endsWith('once')), /200 OK/);
    c.take();
    c.socket.write(get('/once'));
    t.match(await c.until((s) => s.endsWith('once')), /200 OK/, 'second request answered');
    t.equal(origin.connections() - before, 2, 'on a second origin connection');
    c.socket.destroy();
  });

  t.test('origin trouble: garbage is a 502, a short body cuts the client', async (t) => {
    t.match(await rawExchange(gw.port, get('/garbage', 'Connection: close\r\n')), /^HTTP\/1\.1 502/);
    const c = client(gw.port);
    c.socket.write(get('/short'));
    const r = await c.until(() => false);
    t.ok(c.closed, 'client connection cut: the body was incomplete');
    t.match(r, /Content-Length: 100\r\n[\s\S]*only this$/);
  });

  t.test('large response under back-pressure arrives intact', async (t) => {
    const r = await viaProxy(gw.port, `http://${o}/big`);
    t.equal(r.status, 200);
    t.equal(createHash('sha256').update(r.body).digest('hex'), r.headers['x-sha']);
  });

  t.test('a 4 MiB answer whose head spans two reads, to a client that stalls first, arrives intact', async (t) => {
    const c = client(gw.port);
    c.socket.pause();
    c.socket.write(get('/huge-split'));
    // Let the proxy's writes to us queue up (and hold the origin connection's buffers) first.
    await new Promise((r) => setTimeout(r, 300));
    c.socket.resume();
    const done = (s: string) => {
      const end = s.indexOf('\r\n\r\n');
      const len = /Content-Length: (\d+)/.exec(s);
      return end !== -1 && len !== null && s.length >= end + 4 + Number(len[1]);
    };
    const r = await c.until(done, 20_000);
    const end = r.indexOf('\r\n\r\n');
    const body = Buffer.from(r.slice(end + 4), 'latin1');
    t.equal(body.length, 4 * 1024 * 1024 + 123);
    t.equal(createHash('sha256').update(body).digest('hex'), /X-Sha: ([0-9a-f]+)/.exec(r)?.[1], 'body intact');
    c.take();
    // The same client connection and a reused origin connection go on.
    c.socket.write(get('/after-huge'));
    t.match(await c.until((s) => s.endsWith('/after-huge')), /^HTTP\/1\.1 200 OK/);
    c.socket.destroy();
  });

  t.test('an unfinished head times out with 408', async (t) => {
    const r = await rawExchange(gw.port, `GET http://${o}/slow HTTP/1.1\r\nHost: ${o}\r\n`, 3000);
    t.match(r, /^HTTP\/1\.1 408/);
  });

  t.test('the origin connections are reused', async (t) => {
    const before = origin.connections();
    const c = client(gw.port);
    for (let i = 0; i < 20; i++) {
      c.socket.write(get(`/r${i}`));
      await c.until((s) => s.endsWith(`/r${i}`));
      c.take();
    }
    t.ok(origin.connections() - before <= 1, `20 requests over ${origin.connections() - before} new origin connection(s)`);
    c.socket.destroy();
  });

  t.test('beyond the per-origin limit, requests wait their turn', async (t) => {
    const gw1 = await startGateway({
      clients: [{ network: '127.0.0.1/32', profile: 'cycle3' }],
      profiles: { cycle3: { mode: 'blocklist', categories: ['adult'] } },
      hosts: { 'o.test': '127.0.0.1' },
      limits: { maxSocketsPerOrigin: 1 },
    });
    t.teardown(() => gw1.close());
    const before = origin.connections();
    const t0 = Date.now();
    const replies = await Promise.all([1, 2, 3].map(() => viaProxy(gw1.port, `http://${o}/slow`)));
    t.same(replies.map((r) => r.body.toString()), ['slow', 'slow', 'slow']);
    t.equal(origin.connections() - before, 1, 'one origin connection, used in turn');
    t.ok(Date.now() - t0 >= 290, 'served one after the other');
  });

  t.test('a client leaving mid-response takes the origin connection with it', async (t) => {
    const closedBefore = origin.closed();
    const c = client(gw.port);
    c.socket.write(get('/big'));
    await c.until((s) => s.length > 1000);
    c.socket.destroy();
    const end = Date.now() + 2000;
    while (origin.closed() === closedBefore && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    t.equal(origin.closed() - closedBefore, 1, 'the half-sent origin connection was closed, not pooled');
    const r = await viaProxy(gw.port, `http://${o}/after-cut`);
    t.equal(r.body.toString(), '/after-cut', 'the proxy goes on');
  });

  t.test('tunnels: half-close passes through; an idle tunnel is closed after idleMs', async (t) => {
    const gw2 = await startGateway({
      clients: [{ network: '127.0.0.1/32', profile: 'cycle3' }],
      profiles: { cycle3: { mode: 'blocklist', categories: ['adult'] } },
      hosts: { 'o.test': '127.0.0.1' },
      connectPorts: [origin.port],
      timeouts: { idleMs: 400 },
    });
    t.teardown(() => gw2.close());
    // Half-close: the client sends its request and shuts its side; the answer still arrives.
    const half = await connectTunnel(gw2.port, o);
    t.equal(half.status, 200);
    let got = '';
    half.socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    let ended = false;
    let reset = false;
    half.socket.on('end', () => (ended = true));
    half.socket.on('error', () => (reset = true));
    half.socket.end(`GET /through HTTP/1.1\r\nHost: ${o}\r\nConnection: close\r\n\r\n`);
    await new Promise<void>((r) => {
      const end = Date.now() + 3000;
      const check = () => (got.endsWith('/through') || Date.now() > end ? r() : setTimeout(check, 20));
      check();
    });
    t.match(got, /200 OK[\s\S]*\/through$/, 'answer received after the client shut its side');
    // The origin closes after its answer: the client then gets a clean end of stream, not a reset.
    const until = Date.now() + 3000;
    while (!ended && !reset && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    t.ok(ended && !reset, 'the tunnel ends with a FIN to the client once both sides are done');
    half.socket.destroy();
    // Idle: nothing either way for idleMs closes the tunnel.
    const idle = await connectTunnel(gw2.port, o);
    const t0 = Date.now();
    await new Promise<void>((r) => idle.socket.once('close', () => r()));
    t.ok(Date.now() - t0 >= 300, `closed after ${Date.now() - t0} ms of silence`);
    const end = Date.now() + 2000;
    while (gw2.gateway.proxy.activeTunnels > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    t.equal(gw2.gateway.proxy.activeTunnels, 0, 'and counted closed');
  });

  t.test('a request for the proxy itself is refused (403), on either path and through CONNECT, though 127.0.0.0/8 is allowed', async (t) => {
    const self = `127.0.0.1:${gw.port}`;
    const fast = await viaProxy(gw.port, `http://${self}/`, { headers: { 'accept-language': 'en' } });
    t.equal(fast.status, 403);
    t.match(fast.body.toString(), /a service of the gateway itself/);
    const general = await rawExchange(gw.port, `POST http://${self}/ HTTP/1.1\r\nHost: ${self}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n`);
    t.match(general, /^HTTP\/1\.1 403/, 'general path (chunked upload)');
    const p3 = await freePort();
    const gw3 = await startGateway({
      clients: [{ network: '127.0.0.1/32', profile: 'cycle3' }],
      profiles: { cycle3: { mode: 'blocklist', categories: ['adult'] } },
      hosts: { 'me.test': '127.0.0.1' },
      listen: [{ host: '127.0.0.1', port: p3 }],
      connectPorts: [p3],
    });
    t.teardown(() => gw3.close());
    const viaName = await viaProxy(gw3.port, `http://me.test:${p3}/x`);
    t.equal(viaName.status, 403, 'a name that resolves to the proxy');
    const tunnel = await connectTunnel(gw3.port, `me.test:${p3}`);
    t.equal(tunnel.status, 403, 'CONNECT to itself');
    t.match(tunnel.head, /destination refused: 127\.0\.0\.1:\d+ est un service de la passerelle/);
    t.equal((await viaProxy(gw.port, `http://${o}/still-fine`)).status, 200, 'others pass');
  });
});

t.test('an origin that stalls after its head: cut and counted as a response timeout, on either path', async (t) => {
  // Sends a head announcing 100 bytes, 10 of them, then nothing.
  const stalled = net.createServer((s) => {
    s.once('data', () => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789'));
    s.on('error', () => s.destroy());
  });
  await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
  const port = (stalled.address() as net.AddressInfo).port;
  const problems: string[] = [];
  const config = resolveConfig({
    listen: [{ host: '127.0.0.1', port: 0 }],
    dns: { servers: DEAD_DNS, timeoutMs: 500 },
    dataDir: tmp(),
    hosts: { 's.test': '127.0.0.1' },
    destinations: LOOPBACK_ORIGINS,
    timeouts: { connectMs: 1000, upstreamResponseMs: 300, headersMs: 2000, idleMs: 5000 },
    lists: { ut1: writeLists(tmp(), TEST_LISTS), academy: writeLists(tmp(), { 'academy-allow': { domains: ['ok.test'] }, 'academy-deny': { domains: ['no.test'] } }) },
    journal: { enabled: false },
  });
  const gateway = new Gateway({ config, log: silentLogger, observers: [{ upstreamError: (p) => problems.push(p) }] });
  await gateway.start();
  t.teardown(async () => {
    await gateway.stop();
    await new Promise<void>((r) => stalled.close(() => r()));
  });
  const target = `s.test:${port}`;
  // HTTP/1.1 takes the fast path; HTTP/1.0 is handed to node's server (the general path).
  for (const [name, version] of [['fast path', '1.1'], ['general path', '1.0']] as const) {
    problems.length = 0;
    const reply = await rawExchange(gateway.listening[0]!.port, `GET http://${target}/ HTTP/${version}\r\nHost: ${target}\r\n\r\n`);
    t.match(reply, /^HTTP\/1\.1 200[\s\S]*0123456789$/, `${name}: the head and the first bytes came through, then the connection was cut`);
    t.same(problems, ['response-timeout'], `${name}: one upstream error, a response timeout`);
  }
});

t.test('a client that stops reading longer than the response timeout still gets the whole body, on either path', async (t) => {
  // While the client does not read, the proxy stops reading the origin (back-pressure): the
  // origin's silence then is not a response timeout. The client side stays under idleMs.
  const origin = await scriptedOrigin();
  const problems: string[] = [];
  const config = resolveConfig({
    listen: [{ host: '127.0.0.1', port: 0 }],
    dns: { servers: DEAD_DNS, timeoutMs: 500 },
    dataDir: tmp(),
    hosts: { 'o.test': '127.0.0.1' },
    destinations: LOOPBACK_ORIGINS,
    timeouts: { connectMs: 1000, upstreamResponseMs: 300, headersMs: 2000, idleMs: 5000 },
    lists: { ut1: writeLists(tmp(), TEST_LISTS), academy: writeLists(tmp(), { 'academy-allow': { domains: ['ok.test'] }, 'academy-deny': { domains: ['no.test'] } }) },
    journal: { enabled: false },
  });
  const gateway = new Gateway({ config, log: silentLogger, observers: [{ upstreamError: (p) => problems.push(p) }] });
  await gateway.start();
  t.teardown(async () => {
    await gateway.stop();
    await origin.close();
  });
  const o = `o.test:${origin.port}`;
  for (const [name, version] of [['fast path', '1.1'], ['general path', '1.0']] as const) {
    problems.length = 0;
    const c = client(gateway.listening[0]!.port);
    c.socket.write(`GET http://${o}/huge-split HTTP/${version}\r\nHost: ${o}\r\n\r\n`);
    // Read the head and the first bytes, then stall five response timeouts long.
    await c.until((s) => s.length > 100_000);
    c.socket.pause();
    await new Promise((r) => setTimeout(r, 1500));
    c.socket.resume();
    const r = await c.until((s) => {
      const end = s.indexOf('\r\n\r\n');
      const len = /Content-Length: (\d+)/i.exec(s);
      return end !== -1 && len !== null && s.length >= end + 4 + Number(len[1]);
    }, 20_000);
    const end = r.indexOf('\r\n\r\n');
    const body = Buffer.from(r.slice(end + 4), 'latin1');
    t.equal(body.length, 4 * 1024 * 1024 + 123, `${name}: the whole body`);
    t.equal(createHash('sha256').update(body).digest('hex'), /X-Sha: ([0-9a-f]+)/i.exec(r)?.[1], `${name}: body intact`);
    t.same(problems, [], `${name}: no upstream error counted`);
    c.socket.destroy();
  }
});

t.test('a client that never reads again is cut after idleMs, and the origin connection with it', async (t) => {
  const origin = await scriptedOrigin();
  const config = resolveConfig({
    listen: [{ host: '127.0.0.1', port: 0 }],
    dns: { servers: DEAD_DNS, timeoutMs: 500 },
    dataDir: tmp(),
    hosts: { 'o.test': '127.0.0.1' },
    destinations: LOOPBACK_ORIGINS,
    timeouts: { connectMs: 1000, upstreamResponseMs: 300, headersMs: 2000, idleMs: 800 },
    lists: { ut1: writeLists(tmp(), TEST_LISTS), academy: writeLists(tmp(), { 'academy-allow': { domains: ['ok.test'] }, 'academy-deny': { domains: ['no.test'] } }) },
    journal: { enabled: false },
  });
  const gateway = new Gateway({ config, log: silentLogger });
  await gateway.start();
  t.teardown(async () => {
    await gateway.stop();
    await origin.close();
  });
  const o = `o.test:${origin.port}`;
  const c = client(gateway.listening[0]!.port);
  const closedBefore = origin.closed();
  c.socket.write(`GET http://${o}/huge-split HTTP/1.1\r\nHost: ${o}\r\n\r\n`);
  await c.until((s) => s.length > 100_000);
  c.socket.pause();
  const t0 = Date.now();
  while (origin.closed() === closedBefore && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
  t.ok(origin.closed() > closedBefore, 'the origin connection was closed');
  t.ok(Date.now() - t0 >= 700, 'not before idleMs (the origin response timeout does not apply)');
  // A paused socket sees no end: read what was queued, then the close.
  c.socket.resume();
  const r = await c.until(() => false, 10_000);
  t.ok(c.closed, 'the stalled client connection was closed');
  t.ok(r.length < 4 * 1024 * 1024, 'before the whole body');
});
