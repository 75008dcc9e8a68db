import { spawnSync } from 'node:child_process';
import t from 'tap';
import { resolveConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { silentLogger } from '../src/log.js';
import { createGatewayMetrics } from '../src/metrics/registry.js';
import { startMetricsServer } from '../src/metrics/server.js';
import { connectTunnel, DEAD_DNS, freePort, rawExchange, startOrigin, TEST_LISTS, tmp, viaProxy, writeLists } from './helpers.js';
import { scrape, type Scrape } from './metrics-scrape.js';

const until = async (what: () => Promise<boolean>, ms = 3000) => {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
};

/** The difference of every counter the test looks at between two scrapes. */
const delta = (a: Scrape, b: Scrape) => (name: string, labels: Record<string, string> = {}) => b.n(name, labels) - a.n(name, labels);

t.test('metrics follow the traffic exactly', async (t) => {
  const t0 = Date.now();
  const origin = await startOrigin();
  const closedPort = await freePort();
  const hosts = Object.fromEntries(['www.site.test', 'adult.test', 'games.test', 'down.test'].map((h) => [h, '127.0.0.1']));
  const ut1 = writeLists(tmp(), TEST_LISTS);
  const academy = writeLists(tmp(), { 'academy-allow': { domains: ['academy-ok.test'] }, 'academy-deny': { domains: ['academy-no.test'] } });
  const config = resolveConfig({
    listen: [{ host: '127.0.0.1', port: 0 }],
    dns: { servers: DEAD_DNS, timeoutMs: 500 },
    dataDir: tmp(),
    clients: [{ network: '127.0.0.1/32', profile: 'pupils' }],
    profiles: { pupils: { mode: 'blocklist', categories: ['adult', 'games', 'malware'] } },
    hosts,
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    connectPorts: [443, origin.port],
    timeouts: { connectMs: 1000, upstreamResponseMs: 2000, headersMs: 2000, idleMs: 5000 },
    lists: { ut1, academy },
    metrics: { listen: { host: '127.0.0.1', port: 0 } },
  });
  const metrics = createGatewayMetrics();
  const gateway = new Gateway({ config, log: silentLogger, observers: [metrics.observer] });
  metrics.bind(() => gateway);
  const server = await startMetricsServer(metrics.registry, config.metrics.listen);
  await gateway.start();
  const port = gateway.listening[0]!.port;
  t.teardown(async () => {
    await gateway.stop();
    await server.close();
    await origin.close();
  });
  const site = (host: string, path = '/small', p = origin.port) => `http://${host}:${p}${path}`;
  const m = () => scrape(server.address.port);

  const before = await m();
  t.equal(before.get('vigie_policy_lists_loaded'), 1, 'lists loaded');
  t.ok(before.n('vigie_policy_last_success_timestamp_seconds') * 1000 >= t0 - 1000, 'last success is this start');
  t.equal(before.get('vigie_policy_last_failure_timestamp_seconds'), 0, 'no failure yet');
  t.equal(before.get('vigie_list_entries', { category: 'adult', kind: 'domains' }), 2);
  t.equal(before.get('vigie_list_entries', { category: 'adult', kind: 'urls' }), 1);
  t.equal(before.get('vigie_list_entries', { category: 'malware', kind: 'expressions' }), 1);
  t.ok(before.get('vigie_policy_version')! >= 1, 'policy version exposed');
  t.ok(before.get('nodejs_eventloop_lag_seconds') !== undefined, 'event-loop lag');
  t.ok(before.get('process_resident_memory_bytes')! > 0, 'process metrics');

  for (let i = 0; i < 5; i++) t.equal((await viaProxy(port, site('www.site.test'))).status, 200);
  for (let i = 0; i < 3; i++) t.equal((await viaProxy(port, site('adult.test'))).status, 403);
  for (let i = 0; i < 2; i++) t.equal((await viaProxy(port, site('games.test'))).status, 403);
  t.equal((await viaProxy(port, site('down.test', '/small', closedPort))).status, 502);
  t.equal((await viaProxy(port, site('www.site.test'), { localAddress: '127.0.0.9' })).status, 403, 'unknown client refused');
  const body = Buffer.alloc(10_000, 97);
  t.equal((await viaProxy(port, site('www.site.test', '/echo'), { method: 'POST', body })).status, 200);
  const raw = await rawExchange(port, `GET ${site('www.site.test')} HTTP/1.1\r\nHost: www.site.test:${origin.port}\r\nConnection: close\r\n\r\n`);
  t.match(raw, /^HTTP\/1\.1 200/);

  // A tunnel open during a scrape, then closed.
  const tunnel = await connectTunnel(port, `www.site.test:${origin.port}`);
  t.equal(tunnel.status, 200);
  const inner = `GET /small HTTP/1.1\r\nHost: www.site.test\r\nConnection: close\r\n\r\n`;
  const innerReply = await new Promise<string>((resolve) => {
    let out = '';
    tunnel.socket.on('data', (c: Buffer) => (out += c.toString('latin1')));
    tunnel.socket.on('close', () => resolve(out));
    tunnel.socket.write(inner);
  });
  t.match(innerReply, /hello from origin/);
  const refused = await connectTunnel(port, 'adult.test:443');
  t.equal(refused.status, 403);

  const open = await connectTunnel(port, `www.site.test:${origin.port}`);
  t.ok(await until(async () => (await m()).get('vigie_active_connections', { kind: 'tunnel' }) === 1), 'one tunnel open');
  const during = await m();
  t.ok(during.n('vigie_active_connections', { kind: 'client' }) >= 1, 'its client connection counts');
  open.socket.destroy();
  t.ok(await until(async () => (await m()).get('vigie_active_connections', { kind: 'tunnel' }) === 0), 'tunnel gauge back to 0');
  t.ok(await until(async () => (await m()).get('vigie_active_connections', { kind: 'client' }) === 0), 'client gauge back to 0');

  const after = await m();
  const d = delta(before, after);
  const pupils = { profile: 'pupils' };
  t.equal(d('vigie_requests_total', { ...pupils, decision: 'allow', category: 'none', rule: 'default' }), 5 + 1 + 1 + 1, 'allowed requests');
  t.equal(d('vigie_requests_total', { ...pupils, decision: 'block', category: 'adult', rule: 'category' }), 3, 'adult blocks');
  t.equal(d('vigie_requests_total', { ...pupils, decision: 'block', category: 'games', rule: 'category' }), 2, 'games blocks');
  t.equal(d('vigie_requests_total', { profile: 'none', decision: 'block', rule: 'no-client' }), 1, 'unknown client');
  t.equal(d('vigie_requests_total'), 14, 'every request once');
  t.equal(d('vigie_tunnels_total', { ...pupils, decision: 'allow' }), 2, 'opened tunnels');
  t.equal(d('vigie_tunnels_total', { ...pupils, decision: 'block', category: 'adult' }), 1, 'refused tunnel');
  t.equal(d('vigie_responses_total', { kind: 'request', code: '2xx' }), 7);
  t.equal(d('vigie_responses_total', { kind: 'request', code: '4xx' }), 6);
  t.equal(d('vigie_responses_total', { kind: 'request', code: '5xx' }), 1);
  t.equal(d('vigie_responses_total', { kind: 'tunnel', code: '2xx' }), 2);
  t.equal(d('vigie_responses_total', { kind: 'tunnel', code: '4xx' }), 1);
  t.equal(d('vigie_upstream_errors_total', { reason: 'refused' }), 1, 'refused origin');
  t.equal(d('vigie_upstream_errors_total'), 1, 'no other upstream error');
  t.equal(d('vigie_request_duration_seconds_count'), 14);
  t.equal(d('vigie_request_duration_seconds_bucket', { le: '+Inf' }), 14);
  t.equal(d('vigie_tunnel_duration_seconds_count'), 2, 'closed tunnels only');
  t.equal(d('vigie_decision_duration_seconds_count'), 14 + 3, 'every request and tunnel decided once');
  t.ok(d('vigie_client_bytes_total', { kind: 'request', direction: 'in' }) >= body.length, 'uploaded body counted');
  t.ok(d('vigie_client_bytes_total', { kind: 'request', direction: 'out' }) > raw.length * 7, 'answers counted');
  t.equal(d('vigie_client_bytes_total', { kind: 'tunnel', direction: 'in' }), inner.length, 'tunnel bytes from the client, exactly');
  t.equal(d('vigie_client_bytes_total', { kind: 'tunnel', direction: 'out' }), innerReply.length, 'tunnel bytes to the client, exactly');

  // Only the raw exchange is measured alone: its answer's size is known to the byte.
  const b1 = await m();
  const req2 = `POST ${site('www.site.test', '/echo')} HTTP/1.1\r\nHost: www.site.test:${origin.port}\r\nContent-Length: 300\r\nConnection: close\r\n\r\n${'x'.repeat(300)}`;
  const raw2 = await rawExchange(port, req2);
  t.ok(await until(async () => (await m()).n('vigie_requests_total') === b1.n('vigie_requests_total') + 1));
  const d2 = delta(b1, await m());
  t.equal(d2('vigie_client_bytes_total', { kind: 'request', direction: 'out' }), raw2.length, 'bytes sent, exactly');
  t.equal(d2('vigie_client_bytes_total', { kind: 'request', direction: 'in' }), req2.length, 'bytes received (headers and body), exactly');

  // No per-host or per-client label anywhere.
  for (const s of after.series) {
    if (!s.name.startsWith('vigie_')) continue;
    t.notOk(Object.keys(s.labels).some((l) => /host|client|ip|url/.test(l)), `${s.name} has no host/client label`);
    t.notOk(Object.values(s.labels).some((v) => v.includes('.test') || v.startsWith('127.')), `${s.name} has no host/address value`);
  }

  // A failed list load is dated and keeps the previous lists.
  await gateway.reload({ ...gateway.config, lists: { ut1: tmp() + '/missing', academy } });
  const failed = await m();
  t.ok(failed.n('vigie_policy_last_failure_timestamp_seconds') * 1000 >= t0 - 1000, 'failure time set');
  t.equal(failed.get('vigie_policy_lists_loaded'), 1, 'previous lists kept');
  t.equal(failed.get('vigie_list_entries', { category: 'adult', kind: 'domains' }), 2);

  const journal = gateway.journal;
  if (journal) {
    await journal.flush();
    const j = await m();
    const h = journal.health();
    t.ok(h.rowsWritten >= 15 + 3, 'the journal wrote every request and tunnel');
    t.equal(j.get('vigie_journal_rows_written_total'), h.rowsWritten, 'rows written, as the journal counts them');
    t.equal(j.get('vigie_journal_queue_depth'), 0, 'queue empty after a flush');
    t.equal(j.get('vigie_journal_rows_lost_total'), 0, 'nothing lost');
    t.equal(j.get('vigie_journal_writable'), 1, 'writable');
  } else t.equal(failed.get('vigie_journal_queue_depth'), undefined, 'no journal, no journal series');

  // promtool lints names and types (prom-client's own nodejs_* gauges ending in _total are not ours).
  const lint = spawnSync('promtool', ['check', 'metrics'], { input: after.text, encoding: 'utf8' });
  if (lint.error) t.comment('promtool not installed: naming lint skipped');
  else {
    const ours = `${lint.stdout}${lint.stderr}`.split('\n').filter((l) => l.startsWith('vigie_'));
    t.same(ours, [], 'promtool finds nothing to say about vigie_* metrics');
  }
});
