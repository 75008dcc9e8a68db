import Database from 'better-sqlite3';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { reusePortWorks } from '../src/cluster/runtime.js';
import { connectTunnel, DEAD_DNS, TEST_LISTS, tmp, viaProxy, writeLists } from './helpers.js';
import { scrape } from './metrics-scrape.js';
import { filesUnder, freePort, serviceOrigin, startCli, writeJson } from './service-cli.js';

// Proxy workers as threads (src/cluster/threads.ts) need SO_REUSEPORT from Node (≥ 22.12): on
// Node 20 the gateway runs processes instead, which test/cluster.test.ts covers.
if (!(await reusePortWorks())) {
  t.comment(`skipped: Node ${process.version} cannot share a port between threads (reusePort needs Node >= 22.12 on Linux)`);
  t.pass('nothing to test on this runtime');
  t.end();
} else {
  const ut1 = writeLists(tmp(), TEST_LISTS);
  const academy = writeLists(tmp(), { 'academy-allow': { domains: ['academy-ok.test'] }, 'academy-deny': { domains: ['academy-no.test'] } });

  const config = (port: number, metricsPort: number, originPort: number, deny: string[], extra: Record<string, unknown> = {}) => ({
    workers: 2,
    workersRuntime: 'threads',
    listen: [{ host: '127.0.0.1', port }],
    metrics: { listen: { host: '127.0.0.1', port: metricsPort } },
    supervision: { enabled: false },
    dns: { servers: DEAD_DNS, timeoutMs: 300 },
    hosts: { 'www.site.test': '127.0.0.1', 'adult.test': '127.0.0.1', 'newly-adult.test': '127.0.0.1', 'slow.test': '127.0.0.1' },
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    clients: [{ network: '127.0.0.1/32', profile: 'pupils' }],
    profiles: { pupils: { mode: 'blocklist', categories: ['adult'], deny } },
    connectPorts: [originPort],
    lists: { ut1, academy },
    log: { level: 'debug' },
    ...extra,
  });

  /** One request on `agent` (keep-alive) or a fresh connection; resolves with the status, rejects on a dropped one. */
  const get = (agent: http.Agent | false, port: number, url: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: url, agent, localAddress: '127.0.0.1' }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });

  const journalRows = (data: string): number => {
    let n = 0;
    for (const f of filesUnder(data).filter((x) => /journal\.db$/.test(x))) {
      const db = new Database(f, { readonly: true });
      const parts = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'c_[0-9]*'`).pluck().all() as string[];
      for (const p of parts) n += db.prepare(`SELECT count(*) FROM ${p}`).pluck().get() as number;
      db.close();
    }
    return n;
  };

  t.test('workers as threads, the main thread serving beside one: one shared copy of the lists, swaps with no dropped connection, one journal and one metrics registry', async (t) => {
    const origin = await serviceOrigin();
    const [port, metricsPort] = [await freePort(), await freePort()];
    const dir = tmp();
    const data = join(dir, 'data');
    const file = writeJson(join(dir, 'vigie.json'), config(port, metricsPort, origin.port, []));
    const cli = startCli(['--config', file, '--data', data, '--grace', '1']);
    t.teardown(async () => {
      cli.child.kill('SIGKILL');
      await origin.close();
    });
    await cli.waitLog(/gateway ready/);
    t.match(cli.log(), /proxy workers: 2 threads runtime=threads why=.* mainThread=serves/, 'the runtime chosen is logged');
    const listening = [...cli.log().matchAll(/DEBUG proxy worker listening worker=(\d) pid=\d+ thread=(\d+) addresses=127\.0\.0\.1:(\d+)/g)];
    t.same(listening.map((m) => [m[1], m[2] === '0' ? 'main' : 'thread', Number(m[3])]).sort(), [['0', 'main', port], ['1', 'thread', port]], 'the main thread (worker 0) and one thread listen on the port');
    const site = (host: string) => `http://${host}:${origin.port}/small`;
    t.equal((await viaProxy(port, site('adult.test'))).status, 403, 'the shared lists serve in the threads: adult blocked');
    t.equal((await viaProxy(port, site('newly-adult.test'))).status, 200, 'not listed yet');
    t.equal(cli.log().match(/proxy worker: lists viewed in shared memory worker=1 pid=\d+ thread=\d+/g)?.length, 1, 'the thread views the lists the main thread loaded');
    let made = 2;

    // A load of keep-alive and fresh connections runs through two swaps: the rules (SIGHUP with a
    // new deny entry) and the lists (a new adult entry, recompiled, handed over as shared memory).
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    t.teardown(() => agent.destroy());
    const statuses = new Map<string, number[]>();
    let failures: string[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const batch = await Promise.allSettled([
          ...Array.from({ length: 8 }, () => get(agent, port, site('www.site.test'))),
          ...Array.from({ length: 4 }, () => get(false, port, site('www.site.test'))),
        ]);
        for (const r of batch) {
          made++;
          if (r.status === 'rejected') failures.push((r.reason as Error).message);
          else statuses.set('site', [...(statuses.get('site') ?? []), r.value]);
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 200));
    writeJson(file, config(port, metricsPort, origin.port, ['www.site.test']));
    writeLists(ut1, { adult: { domains: ['adult.test', 'amex.test', 'newly-adult.test'] } });
    cli.child.kill('SIGHUP');
    await cli.waitLog(/INFO {2}reloaded policyVersion=\d+ listsLoaded=true/);
    await new Promise((r) => setTimeout(r, 200));
    running = false;
    await loop;
    const seen = statuses.get('site') ?? [];
    t.same(failures, [], `no connection dropped across the swap (${seen.length} requests)`);
    t.same([...new Set(seen)].sort(), [200, 403], 'the load saw the old rules, then the new ones');
    t.equal(seen.at(-1), 403, 'and ends on the new ones');
    failures = [];
    // Both isolates: many fresh connections (the kernel spreads them by source port: all 24 on
    // one of the two listeners would happen once in 8 million runs).
    const after = await Promise.all(Array.from({ length: 24 }, () => get(false, port, site('newly-adult.test'))));
    made += after.length;
    t.same([...new Set(after)], [403], 'the reloaded lists block in the main thread and the thread');
    t.equal(cli.log().match(/proxy worker: lists viewed in shared memory/g)?.length, 2, 'the new lists too, handed over as shared memory');
    const tunnel = await connectTunnel(port, `adult.test:${origin.port}`);
    made++;
    t.equal(tunnel.status, 403, 'a tunnel to a listed host is refused');
    tunnel.socket.destroy();

    // One metrics registry in the main thread counts what every thread served.
    let m = await scrape(metricsPort);
    const total = () => ['vigie_requests_total', 'vigie_tunnels_total'].reduce((n, name) => n + m.n(name), 0);
    for (let i = 0; i < 40 && total() < made; i++) {
      await new Promise((r) => setTimeout(r, 50));
      m = await scrape(metricsPort);
    }
    t.equal(total(), made, 'the metrics count every request and tunnel of both threads');

    // Requests in flight at SIGTERM, on fresh connections (both isolates), finish within the grace period.
    const inFlight = Promise.allSettled(Array.from({ length: 12 }, () => get(false, port, `http://slow.test:${origin.port}/slow?ms=400`)));
    await new Promise((r) => setTimeout(r, 150));
    cli.child.kill('SIGTERM');
    const drained = await inFlight;
    made += drained.length;
    t.same(drained.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message)), Array(12).fill(200), 'requests in flight at SIGTERM finish');
    t.same(await cli.exited, { code: 0, signal: null }, 'exit 0 on SIGTERM');
    const stops = [...cli.log().matchAll(/proxy worker stopped worker=(\d) pid=\d+ thread=(\d+) requests=(\d+) tunnels=(\d+)/g)];
    t.same(stops.map((s) => s[1]).sort(), ['0', '1'], 'the main thread and the thread stopped');
    t.ok(stops.every((s) => Number(s[3]) > 0), `both served requests (${stops.map((s) => `thread ${s[2]}: ${s[3]}`).join(', ')})`);
    t.equal(stops.reduce((n, s) => n + Number(s[3]) + Number(s[4]), 0), made, 'together they served what was made');
    t.equal(journalRows(data), made, 'the one journal holds a row for every connection of both');
  });
  t.test('mainThreadServes: false: `workers` threads, the main thread serves nothing', async (t) => {
    const origin = await serviceOrigin();
    const [port, metricsPort] = [await freePort(), await freePort()];
    const dir = tmp();
    const data = join(dir, 'data');
    const file = writeJson(join(dir, 'vigie.json'), config(port, metricsPort, origin.port, [], { mainThreadServes: false }));
    const cli = startCli(['--config', file, '--data', data, '--grace', '1']);
    t.teardown(async () => {
      cli.child.kill('SIGKILL');
      await origin.close();
    });
    await cli.waitLog(/gateway ready/);
    t.match(cli.log(), /proxy workers: 2 threads runtime=threads why=.* mainThread=coordinates/, 'the layout is logged');
    const listening = [...cli.log().matchAll(/DEBUG proxy worker listening worker=(\d) pid=\d+ thread=(\d+)/g)];
    t.same(listening.map((m) => m[1]).sort(), ['1', '2'], 'two threads listen');
    t.ok(listening.every((m) => m[2] !== '0'), 'not the main thread');
    const statuses = await Promise.all(Array.from({ length: 16 }, () => get(false, port, `http://adult.test:${origin.port}/small`)));
    t.same([...new Set(statuses)], [403], 'the threads block from the shared lists');
    cli.child.kill('SIGTERM');
    t.same(await cli.exited, { code: 0, signal: null }, 'exit 0 on SIGTERM');
    const stops = [...cli.log().matchAll(/proxy worker stopped worker=(\d) pid=\d+ thread=\d+ requests=(\d+)/g)];
    t.same(stops.map((s) => s[1]).sort(), ['1', '2'], 'the two threads stopped, no line for the main thread');
    t.equal(stops.reduce((n, s) => n + Number(s[2]), 0), 16, 'and served every request');
    t.equal(journalRows(data), 16, 'each journaled');
  });
}
