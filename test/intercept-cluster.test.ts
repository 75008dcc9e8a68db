// Leaf-certificate counters of TLS interception with workers: 2 (issue #24): the certificates are
// made in the workers, their counts relayed to the primary's /metrics like traffic and LDAP
// counts (src/cluster/relay.ts, op LEAVES). Real CLI, real sockets, `.test` names in the host map.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import t from 'tap';
import { initCa } from '../src/tls/ca.js';
import { connectTunnel, DEAD_DNS, TEST_LISTS, tmp, writeLists } from './helpers.js';
import { startNamedOrigins, tlsRequests } from './intercept-helpers.js';
import { freePort, startCli, writeJson } from './service-cli.js';
import { Scrape } from './metrics-scrape.js';

t.test('workers: 2 — leaf certificates issued, cache hits and cache size summed in the primary', async (t) => {
  const dir = tmp();
  const data = join(dir, 'data');
  initCa(join(data, 'ca'), 'Cluster CA');
  const origins = await startNamedOrigins();
  t.teardown(() => origins.close());
  const [port, metricsPort] = [await freePort(), await freePort()];
  const names = ['a.test', 'b.test', 'c.test'];
  const file = writeJson(join(dir, 'vigie.json'), {
    workers: 2,
    listen: [{ host: '127.0.0.1', port }],
    metrics: { enabled: true, listen: { host: '127.0.0.1', port: metricsPort } },
    supervision: { enabled: false },
    dns: { servers: DEAD_DNS, timeoutMs: 300 },
    hosts: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])),
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    connectPorts: [origins.port],
    clients: [{ network: '127.0.0.0/28', profile: 'pupils' }],
    profiles: { pupils: { mode: 'blocklist', categories: ['adult'], intercept: 'full' } },
    interception: { extraRoots: [origins.caFile] },
    lists: { ut1: writeLists(tmp(), TEST_LISTS), academy: writeLists(tmp(), { 'academy-allow': {}, 'academy-deny': {} }) },
  });
  // Round robin: the connections spread over both workers, each with its own cache.
  process.env.NODE_CLUSTER_SCHED_POLICY = 'rr';
  const cli = startCli(['--config', file, '--data', data, '--grace', '1']);
  delete process.env.NODE_CLUSTER_SCHED_POLICY;
  t.teardown(() => void cli.child.kill('SIGKILL'));
  await cli.waitLog(/gateway ready/, 1, 30_000);
  const scrape = async () => {
    // Workers relay their counts with their events, within ~20 ms.
    await new Promise((r) => setTimeout(r, 150));
    const text = await new Promise<string>((resolve, reject) => http.get({ host: '127.0.0.1', port: metricsPort, path: '/metrics' }, (res) => {
      let s = '';
      res.on('data', (c: Buffer) => (s += c.toString()));
      res.on('end', () => resolve(s));
    }).on('error', reject));
    return new Scrape(text);
  };
  const before = await scrape();
  t.equal(before.get('vigie_intercept_leaf_certificates_issued_total'), 0, 'exported from the start where a profile intercepts');
  const schoolCa = readFileSync(join(data, 'ca', 'ca.cert.pem'), 'utf8');
  const connections = [...names, ...names, ...names];
  for (const host of connections) {
    const tunnel = await connectTunnel(port, `${host}:${origins.port}`);
    const [a] = await tlsRequests(tunnel.socket, host, schoolCa, ['/'], `${host}:${origins.port}`);
    t.equal(a!.issuer, 'Cluster CA', `${host} intercepted`);
  }
  const m = await scrape();
  const issued = m.get('vigie_intercept_leaf_certificates_issued_total')!;
  const hits = m.get('vigie_intercept_leaf_cache_hits_total')!;
  t.equal(issued + hits, connections.length, `one certificate made or found per connection (issued ${issued}, hits ${hits})`);
  t.ok(issued >= names.length && issued <= 2 * names.length, 'each worker signs a name once at most');
  t.equal(m.get('vigie_intercept_leaf_cache_size'), issued, 'every certificate made is still cached, in one worker or the other');
});
