import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { fixedRate, probe, ResponseReader, tunnelSetupRate } from './clients.js';
import { spread, summarize, type Measure } from './report.js';

// The benchmark's own parts: a wrong parser or ratio would print a plausible but false table.

t.test('ResponseReader frames responses however the bytes are cut', async (t) => {
  const two = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404 Not Found\r\ncontent-length:3\r\n\r\nnop');
  for (const step of [1, 7, two.length]) {
    const seen: number[] = [];
    const r = new ResponseReader((s) => seen.push(s));
    for (let i = 0; i < two.length; i += step) r.feed(two.subarray(i, i + step));
    t.same(seen, [200, 404], `chunks of ${step}`);
  }
});

t.test('ResponseReader: a CONNECT reply has no body, the tunnel bytes after it are the next response', async (t) => {
  const seen: number[] = [];
  const r: ResponseReader = new ResponseReader((s) => {
    seen.push(s);
    r.noBody = false;
  });
  r.noBody = true;
  // Content-Length on a 200 CONNECT reply must not swallow the tunnel's bytes.
  r.feed(Buffer.from('HTTP/1.1 200 Connection established\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  t.same(seen, [200, 200]);
});

t.test('spread and ratios', async (t) => {
  t.same(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
  t.equal(spread([4, 1, 3, 2])!.median, 2.5);
  t.equal(spread([NaN]), null);
  const m: Measure = {
    key: 'small_rps',
    label: 'small',
    unit: 'req/s',
    higherIsBetter: true,
    samples: {
      direct: [{ value: 1000, proxyCpu: null, loadCpu: 50, busy: [0, 50], errors: 0 }],
      vigie: [{ value: 130, proxyCpu: 99, loadCpu: 20, busy: [99, 20], errors: 0 }],
      squid: [{ value: 100, proxyCpu: 99, loadCpu: 20, busy: [99, 20], errors: 0 }],
    },
  };
  const { rows, verdicts } = summarize([m], [
    { measure: 'small_rps', text: '≥ 1.2× Squid', check: (x) => ({ pass: x.small_rps!.vigie!.median >= 1.2 * x.small_rps!.squid!.median, detail: '' }) },
  ]);
  const vigie = rows.find((r) => r.setup === 'vigie')!;
  t.equal(vigie.vsDirect, 0.13);
  t.equal(vigie.vsSquid, 1.3);
  t.equal(verdicts[0]!.pass, true);
  t.match(vigie.target, /^PASS/);
  t.equal(rows.find((r) => r.setup === 'squid')!.target, '', 'the verdict sits on the Vigie row only');
});

t.test('load clients against a real origin and a minimal CONNECT relay', async (t) => {
  const origin = http.createServer((_req, res) => res.end('x'.repeat(200)));
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const originPort = (origin.address() as net.AddressInfo).port;
  // Just enough of a proxy to carry CONNECT: what the clients do with the reply is under test.
  const relay = net.createServer((c) => {
    c.once('data', (d) => {
      const m = /^CONNECT [^:]+:(\d+) /.exec(d.toString());
      if (!m) return void c.end('HTTP/1.1 405 No\r\nContent-Length: 0\r\n\r\n');
      const up = net.connect(Number(m[1]), '127.0.0.1', () => {
        c.write('HTTP/1.1 200 Connection established\r\n\r\n');
        c.pipe(up).pipe(c);
      });
      up.on('error', () => c.destroy());
      c.on('error', () => up.destroy());
    });
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const relayPort = (relay.address() as net.AddressInfo).port;
  t.teardown(() => {
    origin.close();
    relay.close();
    origin.closeAllConnections();
  });

  const direct = { port: originPort, viaProxy: false, originHost: 'origin.test', originPort };
  const viaRelay = { port: relayPort, viaProxy: true, originHost: 'origin.test', originPort };
  const p = await probe(viaRelay);
  t.equal(p.tunnel, 200, 'tunnelled request answered');
  t.equal(p.http, 405, 'a refused plain request shows its status');

  const setup = await tunnelSetupRate(viaRelay, 4, 0.3);
  t.ok(setup.ok > 0, 'tunnels set up (raw handles where the runtime has them)');
  t.equal(setup.errors, 0);
  process.env.BENCH_SOCKET_CLIENT = '1';
  const onSockets = await tunnelSetupRate(viaRelay, 4, 0.3);
  delete process.env.BENCH_SOCKET_CLIENT;
  t.ok(onSockets.ok > 0, 'and on net.Socket');
  t.equal(onSockets.errors, 0);
  const directSetups = await tunnelSetupRate(direct, 4, 0.3);
  t.ok(directSetups.ok > 0 && directSetups.errors === 0, 'direct: connection + request, no CONNECT');

  const fixed = await fixedRate(direct, 200, 5, 0.5);
  t.equal(fixed.errors, 0, 'every due request answered');
  t.equal(fixed.measured, 100, 'only the requests due inside the window are measured (lead-in and lead-out are not)');
  t.ok(fixed.achieved > 150 && fixed.achieved <= 202, `the window was served at the rate (${fixed.achieved.toFixed(0)}/s)`);
  t.ok(Number.isFinite(fixed.p99ms) && fixed.p99ms >= fixed.p50ms, 'percentiles ordered');
  t.ok(Number.isNaN(fixed.warmupP99ms), 'no warm-up beyond the lead-in: no warm-up p99');

  const warmed = await fixedRate(direct, 200, 5, 0.5, 1);
  t.equal(warmed.errors, 0);
  t.equal(warmed.measured, 100, 'the warm-up is not in the window');
  t.ok(Number.isFinite(warmed.warmupP99ms), `the warm-up past the lead-in has its own p99 (${warmed.warmupP99ms.toFixed(2)} ms)`);
  t.ok(warmed.answered >= 200 + 100, 'the warm-up ran at the rate before the window');
});
