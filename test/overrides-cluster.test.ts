import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { adminTokenFile } from '../src/supervision/tokens.js';
import { DEAD_DNS, TEST_LISTS, tmp, writeLists } from './helpers.js';
import { freePort, serviceOrigin, startCli, writeJson } from './service-cli.js';
import { call, certFiles } from './supervision-helpers.js';

function get(agent: http.Agent | false, port: number, url: string, from: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: url, agent, localAddress: from }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('cluster: an unblock reaches every worker at once, a report from a worker reaches the queue', async (t) => {
  const origin = await serviceOrigin();
  const port = await freePort();
  const dir = tmp();
  const data = join(dir, 'data');
  const certs = certFiles();
  const file = writeJson(join(dir, 'vigie.json'), {
    workers: 2,
    listen: [{ host: '127.0.0.1', port }],
    metrics: { enabled: false },
    supervision: { enabled: true, listen: { host: '127.0.0.1', port: 0 }, ...certs },
    dns: { servers: DEAD_DNS, timeoutMs: 300 },
    hosts: { 'games.test': '127.0.0.1' },
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    clients: [{ network: '127.0.0.3/32', profile: 'pupils' }, { network: '127.0.0.4/32', profile: 'pupils' }],
    profiles: { pupils: { mode: 'blocklist', categories: ['adult', 'games'] } },
    lists: { ut1: writeLists(tmp(), TEST_LISTS), academy: writeLists(tmp(), { 'academy-allow': {}, 'academy-deny': {} }) },
    log: { level: 'debug' },
  });
  process.env.NODE_CLUSTER_SCHED_POLICY = 'rr';
  const cli = startCli(['--config', file, '--data', data, '--grace', '1']);
  delete process.env.NODE_CLUSTER_SCHED_POLICY;
  t.teardown(async () => {
    cli.child.kill('SIGKILL');
    await origin.close();
  });
  await cli.waitLog(/gateway ready/);
  const url = `http://games.test:${origin.port}/small`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  t.teardown(() => agent.destroy());
  const burst = async () => Promise.all(Array.from({ length: 32 }, (_, i) => get(i % 2 ? agent : false, port, url, '127.0.0.3')));
  t.same([...new Set(await burst())], [403], 'blocked in every worker before');

  const apiPort = Number(/supervision API listening address=https:\/\/127\.0\.0\.1:(\d+)/.exec(cli.log())?.[1]);
  const ca = readFileSync(certs.cert, 'utf8');
  const admin = readFileSync(adminTokenFile(data), 'utf8').trim();
  const teacher = (await call(apiPort, ca, 'POST', '/api/v1/tokens', { token: admin, body: { role: 'teacher', name: 'Mme Martin' } })).json.token as string;
  const made = await call(apiPort, ca, 'POST', '/api/v1/overrides', { token: teacher, body: { host: 'games.test', network: '127.0.0.3/32', minutes: 5, reason: 'atelier' } });
  t.equal(made.status, 201, 'the unblock is created');
  // IPC messages are on their way when the API answers: a few milliseconds at most.
  const t0 = Date.now();
  let statuses = await burst();
  while (statuses.some((s) => s !== 200) && Date.now() - t0 < 1000) statuses = await burst();
  t.same([...new Set(statuses)], [200], `every worker serves the unblocked host (within ${Date.now() - t0} ms)`);
  t.same([...new Set(await Promise.all(Array.from({ length: 8 }, () => get(false, port, url, '127.0.0.4'))))], [403], 'another class still blocked in every worker');

  t.equal((await call(apiPort, ca, 'DELETE', `/api/v1/overrides/${made.json.id}`, { token: teacher })).status, 200);
  const t1 = Date.now();
  statuses = await burst();
  while (statuses.some((s) => s !== 403) && Date.now() - t1 < 1000) statuses = await burst();
  t.same([...new Set(statuses)], [403], 'revoked in every worker');

  const body = 'host=games.test&kind=allow&comment=atelier';
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/report', localAddress: '127.0.0.3', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
  t.equal(status, 200, 'a worker takes the report');
  let reports: { host: string; kind: string }[] = [];
  for (let i = 0; i < 20 && !reports.length; i++) {
    await new Promise((r) => setTimeout(r, 50));
    reports = (await call(apiPort, ca, 'GET', '/api/v1/reports', { token: admin })).json.reports;
  }
  t.match(reports, [{ host: 'games.test', kind: 'allow', profile: 'pupils' }], "the primary's queue has it");
});
