import net from 'node:net';
import t, { type Test } from 'tap';
import { IdleSweeper } from '../src/proxy/idle.js';
import { READ_LARGE, READ_SMALL, UpstreamPool, type Upstream, type UpstreamUser } from '../src/proxy/upstream.js';

/** An origin that sends `pieces`, each in its own write a few milliseconds apart (so each is its own read). */
async function tricklingOrigin(pieces: Buffer[], gapMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    s.on('error', () => {});
    s.once('data', async () => {
      for (const p of pieces) {
        s.write(p);
        await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** Uses one origin connection and keeps what it reads, as views (held) or as copies. */
function collector(expected: number, holdEvery: number) {
  const kept: Buffer[] = [];
  let reads = 0;
  let largest = 0;
  let held = false;
  let done!: () => void;
  let failed!: (e: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    done = resolve;
    failed = reject;
  });
  let got = 0;
  const user: UpstreamUser = {
    upReady: (up: Upstream) => up.socket.write('go'),
    upFailed: (e) => failed(e),
    upData(d) {
      // Every `holdEvery`-th chunk is kept as the view itself and reported held, the others copied.
      held = reads++ % holdEvery === 0;
      kept.push(held ? d : Buffer.from(d));
      largest = Math.max(largest, d.length);
      got += d.length;
      if (got >= expected) setImmediate(done);
    },
    upHeld: () => held,
    upClosed: (e) => failed(e ?? new Error('closed early')),
    upTimeout: () => failed(new Error('timeout')),
    upDrain() {},
  };
  return { user, finished, kept, reads: () => reads, largest: () => largest };
}

/**
 * One pool connection to a trickling origin sending `pieces`, read by a collector that holds every
 * `holdEvery`-th chunk; everything is closed at the end of the test.
 */
async function readThroughPool(t: Test, pieces: Buffer[], gapMs: number, holdEvery: number) {
  const idle = new IdleSweeper(() => 100);
  const pool = new UpstreamPool({ maxPerOrigin: 2, connectMs: 2000, timeoutMs: 5000, idle });
  const origin = await tricklingOrigin(pieces, gapMs);
  t.teardown(async () => {
    pool.destroy();
    idle.stop();
    await origin.close();
  });
  const c = collector(pieces.reduce((n, p) => n + p.length, 0), holdEvery);
  pool.acquire(`o.test:${origin.port}`, '127.0.0.1', 4, origin.port, c.user);
  await c.finished;
  return c;
}

t.test('origin connections read into their own buffer; a chunk reported held is never overwritten', async (t) => {
  // 60 pieces of different sizes and contents, each its own read.
  const pieces = Array.from({ length: 60 }, (_, i) => Buffer.alloc(500 + i * 97, i + 1));
  const c = await readThroughPool(t, pieces, 3, 2);
  t.ok(c.reads() >= 30, `many reads into reused buffers (${c.reads()})`);
  t.ok(Buffer.concat(c.kept).equals(Buffer.concat(pieces)), 'held views and copies still read what the origin sent');
});

t.test('a read that fills the buffer moves the connection to the large one', async (t) => {
  const body = Buffer.alloc(2 * 1024 * 1024, 7);
  const c = await readThroughPool(t, [body], 1, 1_000_000);
  t.ok(c.largest() > READ_SMALL && c.largest() <= READ_LARGE, `reads up to ${c.largest()} bytes`);
  t.ok(Buffer.concat(c.kept).equals(body));
});
