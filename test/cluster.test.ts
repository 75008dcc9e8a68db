import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { adminTokenFile } from '../src/supervision/tokens.js';
import { connectTunnel, DEAD_DNS, TEST_LISTS, tmp, viaProxy, writeLists } from './helpers.js';
import { scrape } from './metrics-scrape.js';
import { filesUnder, freePort, serviceOrigin, startCli, writeJson } from './service-cli.js';
import { call, certFiles } from './supervision-helpers.js';

const ut1 = writeLists(tmp(), TEST_LISTS);
const academy = writeLists(tmp(), { 'academy-allow': { domains: ['academy-ok.test'] }, 'academy-deny': { domains: ['academy-no.test'] } });

function config(port: number, metricsPort: number, originPort: number, extra: Record<string, unknown> = {}) {
  return {
    workers: 2,
    // Forked processes on every Node (test/cluster-threads.test.ts covers threads, Node ≥ 22.12).
    workersRuntime: 'processes',
    listen: [{ host: '127.0.0.1', port }],
    metrics: { listen: { host: '127.0.0.1', port: metricsPort } },
    supervision: { enabled: false },
    dns: { servers: DEAD_DNS, timeoutMs: 300 },
    hosts: { 'www.site.test': '127.0.0.1', 'adult.test': '127.0.0.1' },
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    clients: [{ network: '127.0.0.1/32', profile: 'pupils' }],
    profiles: { pupils: { mode: 'blocklist', categories: ['adult'], denyLists: ['academy-deny'] } },
    connectPorts: [originPort],
    lists: { ut1, academy },
    log: { level: 'debug' },
    ...extra,
  };
}

function get(agent: http.Agent, port: number, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: url, agent, localAddress: '127.0.0.1' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Journal rows (ids in order) over every monthly table of the journal database under `data`. */
function journalIds(data: string): number[] {
  const ids: number[] = [];
  for (const f of filesUnder(data).filter((x) => /journal\.db$/.test(x))) {
    const db = new Database(f, { readonly: true });
    const parts = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'c_[0-9]*' ORDER BY name`).pluck().all() as string[];
    for (const p of parts) ids.push(...(db.prepare(`SELECT id FROM ${p} ORDER BY rowid`).pluck().all() as number[]));
    db.close();
  }
  return ids;
}

t.test('workers: 2 share the port, one journal records every connection once, a policy change reaches every worker', async (t) => {
  const origin = await serviceOrigin();
  const [port, metricsPort] = [await freePort(), await freePort()];
  const dir = tmp();
  const data = join(dir, 'data');
  const certs = certFiles();
  const transparentPort = await freePort();
  const file = writeJson(join(dir, 'vigie.json'), config(port, metricsPort, origin.port, { supervision: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, ...certs }, transparent: { http: [{ host: '127.0.0.1', port: transparentPort, targetPort: origin.port }], https: [] } }));
  // Round robin hands connections out in turn, so both workers surely get some; the default (each
  // worker accepts for itself) is what the other tests run.
  process.env.NODE_CLUSTER_SCHED_POLICY = 'rr';
  const cli = startCli(['--config', file, '--data', data, '--grace', '1']);
  delete process.env.NODE_CLUSTER_SCHED_POLICY;
  t.teardown(async () => {
    cli.child.kill('SIGKILL');
    await origin.close();
  });
  await cli.waitLog(/gateway ready/);
  t.match(cli.log(), /proxy listening address=127\.0\.0\.1:\d+ workers=2/, 'the primary says the workers listen');
  t.equal(cli.log().match(/DEBUG proxy worker listening worker=\d pid=\d+ addresses=/g)?.length, 2, 'two workers listen');
  const site = (host: string) => `http://${host}:${origin.port}/small`;

  // Many keep-alive connections: round robin hands them to both workers.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  t.teardown(() => agent.destroy());
  let made = 0;
  for (let round = 0; round < 5; round++) {
    const statuses = await Promise.all(Array.from({ length: 32 }, () => get(agent, port, site('www.site.test'))));
    made += statuses.length;
    t.same([...new Set(statuses)], [200], `round ${round}: every request allowed`);
  }
  t.equal((await viaProxy(port, site('adult.test'))).status, 403, 'lists loaded in the workers: adult blocked');
  made++;
  const tunnel = await connectTunnel(port, `www.site.test:${origin.port}`);
  t.equal(tunnel.status, 200, 'tunnel through a worker');
  made++;
  tunnel.socket.destroy();
  // Transparent listeners are the primary's (workers take the proxy ports only), journaled as the rest.
  t.match(cli.log(), new RegExp(`transparent http listening address=127\\.0\\.0\\.1:${transparentPort}`), 'the primary opens the transparent listener');
  const direct = (host: string) => new Promise<number>((resolve, reject) => http.get({ host: '127.0.0.1', port: transparentPort, path: '/small', headers: { host }, agent: false }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject));
  t.same([await direct('adult.test'), await direct('www.site.test')], [403, 200], 'a redirected client is decided there too');
  const viaPrimary = 2;

  // Metrics of the primary count the workers' traffic.
  let m = await scrape(metricsPort);
  const seen = () => (m.get('vigie_requests_total', { profile: 'pupils', decision: 'allow', category: 'none', rule: 'default' }) ?? 0) + (m.get('vigie_tunnels_total', { profile: 'pupils', decision: 'allow', category: 'none', rule: 'default' }) ?? 0);
  for (let i = 0; i < 40 && seen() < 162; i++) {
    await new Promise((r) => setTimeout(r, 50));
    m = await scrape(metricsPort);
  }
  t.equal(m.get('vigie_requests_total', { profile: 'pupils', decision: 'allow', category: 'none', rule: 'default' }), 161, "the primary's metrics see every worker's requests (and its own transparent one)");
  t.equal(m.get('vigie_tunnels_total', { profile: 'pupils', decision: 'allow', category: 'none', rule: 'default' }), 1, 'and the tunnel');

  // A policy change through the API: every worker blocks the host within a second.
  const apiPort = Number(/supervision API listening address=https:\/\/127\.0\.0\.1:(\d+)/.exec(cli.log())?.[1]);
  const admin = readFileSync(adminTokenFile(data), 'utf8').trim();
  const ca = readFileSync(certs.cert, 'utf8');
  const changed = await call(apiPort, ca, 'POST', '/api/v1/lists/academy/academy-deny/entries', { token: admin, body: { entries: ['www.site.test'] } });
  t.equal(changed.status, 200, 'API change accepted');
  const t0 = Date.now();
  let statuses: number[] = [];
  while (Date.now() - t0 < 1000) {
    // Over the 16 kept-alive connections (both workers hold some), plus fresh ones.
    statuses = await Promise.all([...Array.from({ length: 16 }, () => get(agent, port, site('www.site.test'))), ...Array.from({ length: 4 }, () => viaProxy(port, site('www.site.test')).then((r) => r.status))]);
    made += statuses.length;
    if (statuses.every((s) => s === 403)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.same([...new Set(statuses)], [403], `every worker blocks the host after the change (${Date.now() - t0} ms)`);

  cli.child.kill('SIGTERM');
  t.same(await cli.exited, { code: 0, signal: null }, 'exit 0 on SIGTERM');
  const stops = [...cli.log().matchAll(/proxy worker stopped worker=(\d) pid=(\d+) requests=(\d+) tunnels=(\d+)/g)];
  t.equal(stops.length, 2, 'both workers stopped');
  t.ok(stops.every((s) => Number(s[3]) > 0), `both workers served requests (${stops.map((s) => `pid ${s[2]}: ${s[3]}`).join(', ')})`);
  t.equal(stops.reduce((n, s) => n + Number(s[3]) + Number(s[4]), 0), made, 'the workers served what was made');

  const ids = journalIds(data);
  t.equal(ids.length, made + viaPrimary, 'every connection is in the journal once');
  t.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]!), 'with increasing ids');
  t.equal(new Set(ids).size, ids.length, 'no id twice');
});

t.test('a worker that dies is replaced; the primary gone, workers go too', async (t) => {
  const origin = await serviceOrigin();
  const [port, metricsPort] = [await freePort(), await freePort()];
  const dir = tmp();
  const file = writeJson(join(dir, 'vigie.json'), config(port, metricsPort, origin.port, { journal: { enabled: false } }));
  const cli = startCli(['--config', file, '--data', join(dir, 'data')]);
  t.teardown(async () => {
    cli.child.kill('SIGKILL');
    await origin.close();
  });
  await cli.waitLog(/gateway ready/);
  const pids = /gateway ready .*workers="?(\d+),(\d+)/.exec(cli.log())!.slice(1).map(Number);
  t.equal(pids.length, 2);
  process.kill(pids[0]!, 'SIGKILL');
  await cli.waitLog(/proxy worker died, starting another worker=\d pid=\d+ code=null signal=SIGKILL/);
  await cli.waitLog(/DEBUG proxy worker listening/, 3);
  const site = (host: string) => `http://${host}:${origin.port}/small`;
  let blocked = 0;
  for (let i = 0; i < 40 && blocked < 8; i++) {
    const [a, b] = await Promise.all([viaProxy(port, site('adult.test')), viaProxy(port, site('www.site.test'))]);
    t.equal(b.status, 200);
    if (a.status === 403) blocked++;
  }
  t.equal(blocked, 8, 'both the old and the new worker answer with the lists');

  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const workers = [pids[1]!, ...[...cli.log().matchAll(/DEBUG proxy worker listening worker=\d pid=(\d+)/g)].map((x) => Number(x[1])).filter((p) => !pids.includes(p))];
  t.equal(workers.length, 2, 'two live workers');
  cli.child.kill('SIGKILL');
  const end = Date.now() + 5000;
  while (workers.some(alive) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  t.notOk(workers.some(alive), 'workers exit when the primary is killed: nothing is served unrecorded');
  await t.rejects(viaProxy(port, site('www.site.test')), { code: 'ECONNREFUSED' }, 'the port is closed');
});

t.test("workers refuse new work while the primary's journal cannot record it (overflow block)", async (t) => {
  const origin = await serviceOrigin();
  const [port, metricsPort] = [await freePort(), await freePort()];
  const dir = tmp();
  // One row waiting is already too many: each batch of events blocks until the journal wrote it.
  const file = writeJson(join(dir, 'vigie.json'), config(port, metricsPort, origin.port, { journal: { overflow: 'block', queueMax: 1, flushMs: 250 } }));
  const cli = startCli(['--config', file, '--data', join(dir, 'data')]);
  t.teardown(async () => {
    cli.child.kill('SIGKILL');
    await origin.close();
  });
  await cli.waitLog(/gateway ready/);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  t.teardown(() => agent.destroy());
  const counts = new Map<number, number>();
  const end = Date.now() + 1500;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (Date.now() < end) {
        const s = await get(agent, port, `http://www.site.test:${origin.port}/small`);
        counts.set(s, (counts.get(s) ?? 0) + 1);
      }
    }),
  );
  t.ok((counts.get(503) ?? 0) > 0, `workers answered 503 while the journal was behind (${JSON.stringify([...counts])})`);
  t.ok((counts.get(200) ?? 0) > 0, 'and served again once it caught up');
  t.same([...counts.keys()].filter((s) => s !== 200 && s !== 503), [], 'nothing else');
  t.match(cli.log(), /cluster: workers refuse new connections while the journal cannot record them/);
  cli.child.kill('SIGTERM');
  t.same(await cli.exited, { code: 0, signal: null });
});
