import t from 'tap';
import { verifyCopy } from '../src/academy/verify.js';
import { createGatewayMetrics } from '../src/metrics/registry.js';
import { connectTunnel, startOrigin, viaProxy } from './helpers.js';
import { startPostgres, postgresMissing } from './pg-helpers.js';
import { startApi } from './supervision-helpers.js';
import pg from 'pg';

const skip = postgresMissing();

t.test('a gateway with journal.ship: real connections reach PostgreSQL, health and metrics tell the lag', { skip }, async (t) => {
  const db = await startPostgres();
  t.teardown(() => db.destroy());
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const metrics = createGatewayMetrics();
  const api = await startApi(
    {
      clients: [{ network: '127.0.0.0/8', profile: 'college' }],
      profiles: { college: { mode: 'blocklist', categories: ['adult'] } },
      hosts: { 'www.site.test': '127.0.0.1', 'tls.site.test': '127.0.0.1' },
      connectPorts: [origin.port],
      journal: { flushMs: 20, ship: { url: db.url, gatewayId: 'college-jules-verne', uai: '0801234X', batchRows: 100, fleetSeconds: 1 } },
    },
    { registry: metrics.registry },
  );
  t.teardown(() => api.close());
  metrics.bind(() => api.gw.gateway);
  const gw = api.gw.gateway;
  t.ok(gw.shipper, 'journal.ship starts a shipper');

  for (let i = 0; i < 20; i++) t.equal((await viaProxy(api.gw.port, `http://www.site.test:${origin.port}/small?i=${i}`)).status, 200);
  const tunnel = await connectTunnel(api.gw.port, `tls.site.test:${origin.port}`);
  tunnel.socket.write('GET /small HTTP/1.1\r\nHost: tls.site.test\r\nConnection: close\r\n\r\n');
  await new Promise((r) => tunnel.socket.on('close', r));
  t.equal((await viaProxy(api.gw.port, `http://adult.test:${origin.port}/x`)).status, 403);
  await new Promise((r) => setTimeout(r, 100));
  await gw.journal!.flush();

  const until = Date.now() + 60_000;
  let n = 0;
  while (Date.now() < until) {
    // The shipper creates the tables when it first connects: until then there is nothing to count.
    const counts = await db.query(`SELECT count(*) AS n, count(*) FILTER (WHERE ended) AS ended FROM vigie_rows WHERE gateway = 'college-jules-verne'`).catch(() => null);
    n = Number(counts?.rows[0].n ?? 0);
    const ended = Number(counts?.rows[0].ended ?? 0);
    if (n === 22 && ended === 1 && gw.shipper!.status.lagSeconds === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(n, 22, 'every connection of the gateway is in the copy');
  const tun = (await db.query(`SELECT * FROM vigie_rows WHERE scheme = 'connect'`)).rows[0];
  t.ok(tun.ended && tun.bytes_in > 0, 'the tunnel with its end');
  t.equal((await db.query(`SELECT path FROM vigie_rows WHERE path LIKE '/small%' LIMIT 1`)).rows[0].path, '/small', 'shipped as recorded: no query string');

  const health = await api.api('GET', '/api/v1/health', { token: null });
  t.match(health.json, { status: 'ok', ship: { connected: true, lagSeconds: 0, maxLagSeconds: 300, lastError: null } }, 'health tells the shipping state');
  const m = await metrics.registry.getSingleMetricAsString('vigie_journal_ship_lag_seconds');
  t.match(m, /^vigie_journal_ship_lag_seconds 0$/m, 'and so does /metrics');

  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  t.teardown(() => pool.end());
  const report = await verifyCopy(pool);
  t.equal(report.ok, true, 'the copy of a live gateway verifies');
  t.same(report.gateways.map((g) => g.gateway), ['college-jules-verne']);

  let fleet: any;
  // Reports come every second (fleetSeconds 1); the latest one counts.
  while (Date.now() < until && (fleet = (await db.query(`SELECT * FROM vigie_fleet WHERE gateway = 'college-jules-verne'`).catch(() => null))?.rows[0])?.status !== 'ok') await new Promise((r) => setTimeout(r, 100));
  t.match(fleet, { uai: '0801234X', version: '0.1.0', lists_loaded: true, status: 'ok' }, 'the gateway reports itself to the academy');
  t.equal(fleet.policy_version, gw.policy.version);
});
