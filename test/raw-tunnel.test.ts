import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import t from 'tap';
import type { ConnectionRecord, ProxyObserver } from '../src/proxy/events.js';
import { rawBinding, rawSelfTest, type RawBinding, type TcpHandle, type WriteReq } from '../src/proxy/raw.js';
import { connectTunnel, freePort, rawExchange, startGateway, viaProxy, type GatewayHandle } from './helpers.js';

/** Everything the proxy reports, for assertions on records and gauges. */
class Recorder implements ProxyObserver {
  opened: ConnectionRecord[] = [];
  closed: ConnectionRecord[] = [];
  clients = 0;
  tunnels = 0;
  tunnelOpened(rec: ConnectionRecord): void {
    this.opened.push(rec);
  }
  tunnelClosed(rec: ConnectionRecord): void {
    this.closed.push(rec);
  }
  connectionsChanged(kind: 'client' | 'tunnel', delta: 1 | -1): void {
    if (kind === 'client') this.clients += delta;
    else this.tunnels += delta;
  }
}

/** An origin whose behaviour each test sets: `onConnection` gets every accepted socket. */
async function startScriptedOrigin(): Promise<{ port: number; set(fn: (s: net.Socket) => void): void; close(): Promise<void> }> {
  let handler: (s: net.Socket) => void = (s) => s.destroy();
  const open = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => s.destroy());
    handler(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    set: (fn) => (handler = fn),
    close: () => {
      // Half-open leftovers of the tests (the origin never ends its side unless told to).
      for (const s of open) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

t.ok(rawBinding, 'this runtime offers the raw TCP handles (else every tunnel uses net.Socket and these tests check that path twice)');

t.test('the raw handles pass their self-test, and a binding that misbehaves fails it', { skip: rawBinding === null }, async (t) => {
  const b = rawBinding!;
  t.equal(await rawSelfTest(b), true, 'an echo through accept, connect, read, write, shutdown and close');
  // Same names, different behaviour: writes that fail, or that lose bytes.
  class FailingWrites extends (b.TCP as unknown as new (type: number) => TcpHandle) {
    override writeBuffer(): number {
      return -22;
    }
  }
  t.equal(await rawSelfTest({ ...b, TCP: FailingWrites as unknown as RawBinding['TCP'] }), false, 'writes that fail');
  class ShortWrites extends (b.TCP as unknown as new (type: number) => TcpHandle) {
    override writeBuffer(req: WriteReq, data: Uint8Array): number {
      return super.writeBuffer(req, data.subarray(1));
    }
  }
  t.equal(await rawSelfTest({ ...b, TCP: ShortWrites as unknown as RawBinding['TCP'] }), false, 'writes that lose bytes');
  class NoEnd extends (b.TCP as unknown as new (type: number) => TcpHandle) {
    override shutdown(): number {
      return 0;
    }
  }
  const t0 = Date.now();
  t.equal(await rawSelfTest({ ...b, TCP: NoEnd as unknown as RawBinding['TCP'] }), false, 'an end of stream that never comes');
  t.ok(Date.now() - t0 < 2000, 'gives up within its second');
});

const origin = await startScriptedOrigin();
t.teardown(() => origin.close());
const refusedPort = await freePort();
const authority = `o.test:${origin.port}`;

async function gateway(rawTunnels: boolean, doc: Record<string, unknown> = {}): Promise<{ gw: GatewayHandle; rec: Recorder }> {
  const rec = new Recorder();
  const gw = await startGateway(
    {
      clients: [{ network: '127.0.0.1/32', profile: 'cycle3' }],
      profiles: { cycle3: { mode: 'blocklist', categories: ['adult'] } },
      hosts: { 'o.test': '127.0.0.1', 'adult.test': '127.0.0.1' },
      connectPorts: [origin.port, refusedPort],
      journal: { enabled: false },
      ...doc,
    },
    undefined,
    { observers: [rec], rawTunnels },
  );
  return { gw, rec };
}

for (const raw of [true, false]) {
  const way = raw ? 'raw handles' : 'net.Socket';
  t.test(`tunnels on ${way}: bytes both ways, a pipelined first flight, half-close, exact records`, async (t) => {
    const { gw, rec } = await gateway(raw);
    t.teardown(() => gw.close());
    t.equal(gw.gateway.proxy.rawTunnels, raw && rawBinding !== null, `raw handles ${raw ? 'on' : 'off'}`);
    let atOrigin = '';
    let originEnded = false;
    origin.set((s) => {
      s.on('data', (d: Buffer) => {
        atOrigin += d.toString('latin1');
        if (atOrigin === 'HELLO') s.write('WORLD');
      });
      s.on('end', () => {
        originEnded = true;
        s.end('!');
      });
    });
    const c = net.connect({ host: '127.0.0.1', port: gw.port });
    let got = '';
    let ended = false;
    c.on('data', (d: Buffer) => (got += d.toString('latin1')));
    c.on('end', () => (ended = true));
    // The head and the first bytes of the tunnel in one write, as a TLS client's hello often is.
    c.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\nHELLO`);
    t.ok(await until(() => got.endsWith('WORLD')), 'the origin got the pipelined bytes and its answer came back');
    t.equal(got, 'HTTP/1.1 200 Connection Established\r\n\r\nWORLD');
    c.end('BYE');
    t.ok(await until(() => ended), 'the client got a FIN after the origin answered its half-close');
    t.ok(originEnded, 'the origin saw the client FIN');
    t.equal(atOrigin, 'HELLOBYE');
    t.equal(got.endsWith('WORLD!'), true, 'what the origin sent after the FIN arrived');
    t.ok(await until(() => rec.closed.length === 1), 'the tunnel was recorded closed');
    const r = rec.closed[0]!;
    t.equal(r.status, 200);
    t.equal(r.host, 'o.test');
    t.equal(r.client, '127.0.0.1');
    t.equal(r.bytesIn, 8, 'bytes from the client: HELLO + BYE');
    t.equal(r.bytesOut, 6, 'bytes to the client: WORLD + !');
    t.same(rec.opened, [r], 'recorded opened once, the same record');
    t.equal(gw.gateway.proxy.rawTunnelsOpened, raw ? 1 : 0, raw ? 'on raw handles' : 'on net.Socket');
    t.ok(await until(() => rec.clients === 0 && rec.tunnels === 0), 'gauges back to zero');
    t.equal(gw.gateway.proxy.activeTunnels, 0);
  });

  t.test(`tunnels on ${way}: back-pressure both ways, and the bytes arrive intact`, async (t) => {
    const { gw } = await gateway(raw);
    t.teardown(() => gw.close());
    const DOWN = 96 * 1048576;
    const UP = 32 * 1048576;
    const block = randomBytes(1048576);
    const hashDownSent = createHash('sha256');
    const hashUpGot = createHash('sha256');
    let upGot = 0;
    let flushed = -1;
    let originSocket: net.Socket | null = null;
    const originDone = new Promise<void>((resolve) => {
      origin.set((s) => {
        originSocket = s;
        // The client's first byte starts the download: what comes with the 200 would be lost to connectTunnel.
        let started = false;
        s.on('data', (d: Buffer) => {
          if (!started) {
            started = true;
            d = d.subarray(1);
            pump();
          }
          hashUpGot.update(d);
          upGot += d.length;
        });
        s.on('end', () => resolve());
        let i = 0;
        const pump = () => {
          while (i < DOWN / block.length) {
            const b = Buffer.from(block);
            b[0] = i++ & 255;
            hashDownSent.update(b);
            if (!s.write(b)) return void s.once('drain', pump);
          }
          s.end();
        };
      });
    });
    const tunnel = await connectTunnel(gw.port, authority);
    t.equal(tunnel.status, 200);
    const c = tunnel.socket;
    c.pause();
    c.write('g');
    // The client reads nothing for 600 ms: the origin must be held back by the proxy, not drained into its memory.
    await new Promise((r) => setTimeout(r, 600));
    const o = originSocket as net.Socket | null;
    if (o) flushed = o.bytesWritten - o.writableLength;
    t.ok(flushed >= 0 && flushed < 64 * 1048576, `while the client reads nothing the origin could hand over ${(flushed / 1048576).toFixed(1)} of ${DOWN / 1048576} MiB`);
    const hashDownGot = createHash('sha256');
    let downGot = 0;
    const clientDone = new Promise<void>((r) => c.once('end', r));
    c.on('data', (d: Buffer) => {
      hashDownGot.update(d);
      downGot += d.length;
    });
    c.resume();
    const hashUpSent = createHash('sha256');
    for (let i = 0; i < UP / block.length; i++) {
      const b = Buffer.from(block);
      b[1] = i & 255;
      hashUpSent.update(b);
      if (!c.write(b)) await new Promise((r) => c.once('drain', r));
    }
    c.end();
    await Promise.all([clientDone, originDone]);
    t.equal(downGot, DOWN, 'every byte down');
    t.equal(hashDownGot.digest('hex'), hashDownSent.digest('hex'), 'in order, unchanged');
    t.equal(upGot, UP, 'every byte up');
    t.equal(hashUpGot.digest('hex'), hashUpSent.digest('hex'), 'in order, unchanged');
    c.destroy();
  });
}

t.test('what is not an allowed tunnel in the first read goes the net.Socket way, and is answered as before', async (t) => {
  const { gw, rec } = await gateway(true);
  t.teardown(() => gw.close());
  const proxy = gw.gateway.proxy;
  origin.set((s) => {
    s.on('data', (d: Buffer) => s.write(d));
    s.on('end', () => s.end());
  });

  const blocked = await connectTunnel(gw.port, `adult.test:${origin.port}`);
  t.equal(blocked.status, 403, 'a blocked site: 403');
  t.match(blocked.head, /adult/, 'with the category');

  const refused = await connectTunnel(gw.port, `o.test:${refusedPort}`);
  t.equal(refused.status, 502, 'an origin that refuses: 502');
  t.ok(await until(() => rec.opened.some((r) => r.port === refusedPort)));
  const refusedRec = rec.opened.find((r) => r.port === refusedPort)!;
  t.equal(refusedRec.problem, 'refused', 'recorded with its cause');
  t.equal(refusedRec.status, 502);

  const noName = await connectTunnel(gw.port, `nowhere.invalid:${origin.port}`);
  t.equal(noName.status, 502, 'a name that does not resolve: 502');

  t.match(await rawExchange(gw.port, 'CONNECT no-port-here HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400/, 'no port: 400');

  // A head split over two reads: the ordinary path opens the tunnel.
  const split = net.connect({ host: '127.0.0.1', port: gw.port });
  let got = '';
  split.on('data', (d: Buffer) => (got += d.toString('latin1')));
  split.write('CONNECT o.test:');
  await new Promise((r) => setTimeout(r, 50));
  split.write(`${origin.port} HTTP/1.1\r\n\r\nping`);
  t.ok(await until(() => got.endsWith('ping')), 'a head in two parts still opens the tunnel, echoed');
  split.destroy();

  // A plain request first, then a CONNECT on the same connection.
  const plain = await viaProxy(gw.port, `http://o.test:${refusedPort}/`);
  t.equal(plain.status, 502, 'a plain request on a raw-accepted connection is answered');

  t.equal(proxy.rawTunnelsOpened, 0, 'none of these was a raw tunnel');
  const ok = await connectTunnel(gw.port, authority);
  t.equal(ok.status, 200);
  ok.socket.destroy();
  t.equal(proxy.rawTunnelsOpened, 1, 'while an allowed tunnel is');
  t.ok(await until(() => rec.clients === 0 && rec.tunnels === 0), 'every connection counted closed');
});

t.test('raw connections: silent clients and quiet tunnels are closed at the idle limit; shutting down records open tunnels', async (t) => {
  const { gw, rec } = await gateway(true, { timeouts: { idleMs: 300 } });
  let closedGw = false;
  t.teardown(() => (closedGw ? undefined : gw.close()));
  let atOrigin = 0;
  origin.set((s) => s.on('data', (d: Buffer) => (atOrigin += d.length)));

  const silent = net.connect({ host: '127.0.0.1', port: gw.port });
  const t0 = Date.now();
  await new Promise<void>((r) => silent.once('close', () => r()));
  t.ok(Date.now() - t0 >= 250, `a client that sends nothing is closed after ${Date.now() - t0} ms`);

  const quiet = await connectTunnel(gw.port, authority);
  t.equal(quiet.status, 200);
  const t1 = Date.now();
  await new Promise<void>((r) => quiet.socket.once('close', () => r()));
  t.ok(Date.now() - t1 >= 250, `a quiet tunnel is closed after ${Date.now() - t1} ms`);
  t.ok(await until(() => rec.closed.length === 1), 'and recorded closed');

  const open = await connectTunnel(gw.port, authority);
  t.equal(open.status, 200);
  open.socket.write('still talking');
  t.ok(await until(() => atOrigin === 'still talking'.length), 'bytes went through');
  const cut = new Promise<void>((r) => open.socket.once('close', () => r()));
  closedGw = true;
  await gw.close();
  t.equal(rec.closed.length, 2, 'the tunnel cut by the shutdown was recorded before close() returned');
  t.equal(rec.closed[1]!.bytesIn, 'still talking'.length);
  await cut;
  t.equal(rec.clients, 0, 'no client connection left');
  t.equal(rec.tunnels, 0, 'no tunnel left');
});

t.test('raw tunnels: a reset on either side closes the tunnel and records it', async (t) => {
  const { gw, rec } = await gateway(true);
  t.teardown(() => gw.close());
  let originSide: net.Socket | null = null;
  origin.set((s) => {
    originSide = s;
    s.on('data', (d: Buffer) => s.write(d));
  });
  // The client resets.
  const a = await connectTunnel(gw.port, authority);
  a.socket.write('x');
  t.ok(await until(() => originSide !== null), 'connected through');
  const first = originSide as unknown as net.Socket;
  const originEnded = new Promise<void>((r) => first.once('end', () => r()));
  a.socket.resetAndDestroy();
  await originEnded;
  t.pass('a client reset ends the origin side');
  t.ok(await until(() => rec.closed.length === 1), 'recorded closed');
  // The origin resets.
  originSide = null;
  const b = await connectTunnel(gw.port, authority);
  b.socket.on('error', () => {});
  const clientClosed = new Promise<void>((r) => b.socket.once('close', () => r()));
  b.socket.write('y');
  t.ok(await until(() => originSide !== null));
  (originSide as unknown as net.Socket).resetAndDestroy();
  await clientClosed;
  t.pass('an origin reset closes the client side');
  t.ok(await until(() => rec.closed.length === 2), 'recorded closed');
  t.equal(gw.gateway.proxy.rawTunnelsOpened, 2);
  t.ok(await until(() => rec.clients === 0 && rec.tunnels === 0), 'gauges back to zero');
});

t.test('raw tunnels over IPv6: a client on ::1 to an origin on ::1', async (t) => {
  const six = net.createServer((s) => s.on('data', (d: Buffer) => s.write(d)));
  await new Promise<void>((r) => six.listen(0, '::1', r));
  t.teardown(() => new Promise<void>((r) => six.close(() => r())));
  const port = (six.address() as net.AddressInfo).port;
  const rec = new Recorder();
  const gw = await startGateway(
    {
      listen: [{ host: '::1', port: 0 }],
      clients: [{ network: '::1/128', profile: 'cycle3' }],
      profiles: { cycle3: { mode: 'blocklist', categories: ['adult'] } },
      hosts: { 'six.test': '::1' },
      destinations: { allow: [{ network: '::1/128' }] },
      connectPorts: [port],
      journal: { enabled: false },
    },
    undefined,
    { observers: [rec], rawTunnels: true },
  );
  t.teardown(() => gw.close());
  const c = net.connect({ host: '::1', port: gw.port });
  let got = '';
  c.on('data', (d: Buffer) => (got += d.toString('latin1')));
  c.write(`CONNECT six.test:${port} HTTP/1.1\r\n\r\nv6`);
  t.ok(await until(() => got.endsWith('v6')), 'echoed through the tunnel');
  t.match(got, /^HTTP\/1\.1 200 /);
  c.destroy();
  t.ok(await until(() => rec.closed.length === 1));
  t.equal(rec.closed[0]!.client, '::1', 'the client address as the policy saw it');
  t.equal(gw.gateway.proxy.rawTunnelsOpened, 1);
});

t.test('the tunnels key picks the mode: "socket" (public APIs) by default, "raw" on request', async (t) => {
  const { resolveConfig } = await import('../src/config/load.js');
  t.equal(resolveConfig({}).tunnels, 'socket', 'default');
  t.throws(() => resolveConfig({ tunnels: 'fast' }), /tunnels/, 'an unknown mode is refused, naming the key');
  // The test gateway stays on the public path unless a test asks (test/helpers.ts): `{}` here is the helper's.
  for (const [doc, raw] of [[{}, false], [{ tunnels: 'socket' }, false], [{ tunnels: 'raw' }, rawBinding !== null]] as const) {
    const gw = await startGateway(doc);
    t.equal(gw.gateway.proxy.rawTunnels, raw, `${JSON.stringify(doc)}: ${raw ? 'raw handles' : 'net.Socket'}`);
    await gw.close();
  }
});
