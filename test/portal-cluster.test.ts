import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { DEAD_DNS, TEST_LISTS, tmp, writeLists } from './helpers.js';
import { portalLogin } from './portal-helpers.js';
import { freePort, serviceOrigin, startCli, writeJson } from './service-cli.js';
import { PEOPLE, slapdMissing, startSlapd, TEST_USERS } from './slapd-helpers.js';
import { certFiles } from './supervision-helpers.js';

const skip = slapdMissing();
const basic = (login: string, password: string) => `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;

function get(port: number, path: string, from: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    // A new connection each time: with round robin, both workers take some.
    const req = http.request({ host: '127.0.0.1', port, path, agent: false, localAddress: from, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

const metric = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);

t.test('workers: 2 — LDAP checks counted in the primary, portal sessions followed and kept alive by every worker', { skip }, async (t) => {
  const slapd = await startSlapd(TEST_USERS);
  t.teardown(() => slapd.stop());
  const origin = await serviceOrigin();
  t.teardown(() => origin.close());
  const [port, metricsPort, portalPort] = [await freePort(), await freePort(), await freePort()];
  const dir = tmp();
  const file = writeJson(join(dir, 'vigie.json'), {
    workers: 2,
    listen: [{ host: '127.0.0.1', port }],
    metrics: { enabled: true, listen: { host: '127.0.0.1', port: metricsPort } },
    supervision: { enabled: false },
    dns: { servers: DEAD_DNS, timeoutMs: 300 },
    hosts: { 'www.site.test': '127.0.0.1' },
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    clients: [{ network: '127.0.0.0/28', profile: 'pupils', auth: 'required' }],
    profiles: { pupils: { mode: 'blocklist', categories: ['adult'] } },
    lists: { ut1: writeLists(tmp(), TEST_LISTS), academy: writeLists(tmp(), { 'academy-allow': {}, 'academy-deny': {} }) },
    auth: {
      ldap: { url: slapd.url, bindDn: `uid={login},${PEOPLE}`, idAttribute: 'employeeNumber' },
      failuresPerMinute: 3,
      portal: { listen: { host: '127.0.0.1', port: portalPort }, idleMinutes: 0.02, explicit: 'portal', ...certFiles() },
    },
  });
  process.env.NODE_CLUSTER_SCHED_POLICY = 'rr';
  const cli = startCli(['--config', file, '--data', join(dir, 'data'), '--grace', '1']);
  delete process.env.NODE_CLUSTER_SCHED_POLICY;
  t.teardown(() => void cli.child.kill('SIGKILL'));
  await cli.waitLog(/gateway ready/, 1, 30_000);
  const url = `http://www.site.test:${origin.port}/small`;
  const metrics = async () => {
    // Workers relay their counts with their events, within ~20 ms.
    await new Promise((r) => setTimeout(r, 150));
    return new Promise<string>((resolve, reject) => http.get({ host: '127.0.0.1', port: metricsPort, path: '/metrics' }, (res) => {
      let s = '';
      res.on('data', (c: Buffer) => (s += c.toString()));
      res.on('end', () => resolve(s));
    }).on('error', reject));
  };

  // Basic auth in the workers (a Proxy-Authorization header is checked even with explicit: "portal").
  const creds = { 'proxy-authorization': basic('eleve.cm1', 'Soleil-2026') };
  const statuses = await Promise.all(Array.from({ length: 12 }, () => get(port, url, '127.0.0.2', creds)));
  t.same([...new Set(statuses)], [200]);
  t.equal((await get(port, url, '127.0.0.2', { 'proxy-authorization': basic('eleve.cm1', 'non') })), 407);
  let m = await metrics();
  const ok = metric(m, /^vigie_auth_checks_total\{result="ok"\} (\d+)$/m);
  const cached = metric(m, /^vigie_auth_checks_total\{result="cached"\} (\d+)$/m);
  t.equal(ok + cached, 12, `every worker's checks counted in the primary (ok ${ok}, cached ${cached})`);
  t.equal(metric(m, /^vigie_auth_checks_total\{result="invalid"\} (\d+)$/m), 1);
  t.equal(metric(m, /^vigie_sessions_active (\d+)$/m), 0);

  // Failed binds are counted for the whole gateway: past the limit, every worker answers 429.
  const wrong = { 'proxy-authorization': basic('eleve.cm1', 'faux') };
  const seq: number[] = [];
  for (let i = 0; i < 8; i++) seq.push(await get(port, url, '127.0.0.5', wrong));
  const refused = seq.filter((s) => s === 407).length;
  // Sequential attempts: the primary's notice reaches each worker before the next connection (per worker: 3).
  t.ok(refused >= 3 && refused <= 4, `3 checked failures (+1 at most in flight), not 3 per worker: ${seq.join(' ')}`);
  t.same([...new Set(seq.slice(refused))], [429], 'then 429');
  await new Promise((r) => setTimeout(r, 50));
  t.same([...new Set(await Promise.all(Array.from({ length: 6 }, () => get(port, url, '127.0.0.5', wrong))))], [429], '429 from every worker');
  t.same([...new Set(await Promise.all(Array.from({ length: 4 }, () => get(port, url, '127.0.0.5', creds))))], [429], 'even with the right password (no cache hits either)');
  m = await metrics();
  t.equal(metric(m, /^vigie_auth_checks_total\{result="invalid"\} (\d+)$/m), 1 + refused, 'the directory was asked only for those');
  t.equal(await get(port, url, '127.0.0.2', creds), 200, 'other addresses unaffected');

  // A portal login in the primary: every worker follows it, and their traffic keeps it alive.
  t.equal((await get(port, url, '127.0.0.3')), 302, 'not logged in: to the portal');
  t.equal((await portalLogin(`https://127.0.0.1:${portalPort}`, '127.0.0.3', 'prof.ens', 'Tableau noir!')).status, 200);
  m = await metrics();
  t.equal(metric(m, /^vigie_sessions_active (\d+)$/m), 1, 'one active session');
  t.equal(metric(m, /^vigie_auth_checks_total\{result="ok"\} (\d+)$/m), ok + 1, 'the portal\'s check counted');
  const t0 = Date.now();
  while (Date.now() - t0 < 2400) {
    const round = await Promise.all(Array.from({ length: 4 }, () => get(port, url, '127.0.0.3')));
    t.same([...new Set(round)], [200], `logged in on every worker at ${Date.now() - t0} ms (idle timeout 1.2 s)`);
    await new Promise((r) => setTimeout(r, 250));
  }
  await new Promise((r) => setTimeout(r, 2000));
  t.same([...new Set(await Promise.all(Array.from({ length: 4 }, () => get(port, url, '127.0.0.3'))))], [302], 'idle: ended in every worker');
  t.equal(metric(await metrics(), /^vigie_sessions_active (\d+)$/m), 0);
});
