import net from 'node:net';
import t from 'tap';
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

t.test('origin connections read into their own buffer; a chunk reported held is never overwritten', async (t) => {
  const idle = new IdleSweeper(() => 100);
  const pool = new UpstreamPool({ maxPerOrigin: 2, connectMs: 2000, timeoutMs: 5000, idle });
  // 60 pieces of different sizes and contents, each its own read.
  const pieces = Array.from({ length: 60 }, (_, i) => Buffer.alloc(500 + i * 97, i + 1));
  const whole = Buffer.concat(pieces);
  const origin = await tricklingOrigin(pieces, 3);
  t.teardown(async () => {
    pool.destroy();
    idle.stop();
    await origin.close();
  });
  const c = collector(whole.length, 2);
  pool.acquire(`o.test:${origin.port}`, '127.0.0.1', 4, origin.port, c.user);
  await c.finished;
  t.ok(c.reads() >= 30, `many reads into reused buffers (${c.reads()})`);
  t.ok(Buffer.concat(c.kept).equals(whole), 'held views and copies still read what the origin sent');
});

t.test('a read that fills the buffer moves the connection to the large one', async (t) => {
  const idle = new IdleSweeper(() => 100);
  const pool = new UpstreamPool({ maxPerOrigin: 2, connectMs: 2000, timeoutMs: 5000, idle });
  const body = Buffer.alloc(2 * 1024 * 1024, 7);
  const origin = await tricklingOrigin([body], 1);
  t.teardown(async () => {
    pool.destroy();
    idle.stop();
    await origin.close();
  });
  const c = collector(body.length, 1_000_000);
  pool.acquire(`o.test:${origin.port}`, '127.0.0.1', 4, origin.port, c.user);
  await c.finished;
  t.ok(c.largest() > READ_SMALL && c.largest() <= READ_LARGE, `reads up to ${c.largest()} bytes`);
  t.ok(Buffer.concat(c.kept).equals(body));
});
