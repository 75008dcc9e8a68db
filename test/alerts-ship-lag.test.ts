// The security event "journal shipping lag beyond a bound", caused for real: a gateway ships its
// journal to a PostgreSQL on loopback, PostgreSQL stops, connections go on being recorded, and
// once the oldest unshipped row is older than journal.ship.maxLagSeconds (1 s here) the alert is
// raised and posted to a webhook receiver.
import http from 'node:http';
import t from 'tap';
import { serveLoopback, startGateway, startOrigin, viaProxy } from './helpers.js';
import { postgresMissing, startPostgres } from './pg-helpers.js';

const skip = postgresMissing();

t.test('PostgreSQL away: ship-lag security alert, notified to the webhook', { skip }, async (t) => {
  const db = await startPostgres();
  t.teardown(() => db.destroy());
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const posts: any[] = [];
  const hook = await serveLoopback(http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => (posts.push(JSON.parse(Buffer.concat(chunks).toString())), res.writeHead(204).end()));
  }));
  t.teardown(() => hook.close());
  const gw = await startGateway({
    clients: [{ network: '127.0.0.0/8', profile: 'college' }],
    profiles: { college: { mode: 'blocklist', categories: ['adult'] } },
    hosts: { 'www.site.test': '127.0.0.1' },
    journal: { flushMs: 20, ship: { url: db.url, gatewayId: 'college-lag', maxLagSeconds: 1, fleetSeconds: 0 } },
    notifications: { webhooks: [`http://127.0.0.1:${hook.port}/alerts`] },
  });
  t.teardown(() => gw.close());
  const gateway = gw.gateway;
  const shipper = gateway.shipper!;
  const url = `http://www.site.test:${origin.port}/small`;
  const wait = async (what: string, ok: () => boolean, ms = 10_000) => {
    const until = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const security = () => gateway.alerts!.alerts!.list({ kinds: ['security'], limit: 5 });

  t.equal((await viaProxy(gw.port, url)).status, 200);
  await wait('the first row shipped', () => shipper.status.connected && shipper.status.rowsShipped > 0 && shipper.status.lagSeconds === 0);
  t.same(security(), [], 'no alert while shipping keeps up');

  await db.stop();
  for (let i = 0; i < 3; i++) t.equal((await viaProxy(gw.port, `${url}?i=${i}`)).status, 200, 'still served and recorded');
  const stopped = Date.now();
  await wait('the ship-lag alert', () => security().some((a) => a.type === 'ship-lag'));
  const raisedAfter = Date.now() - stopped;
  const [alert] = security();
  t.match(alert, { type: 'ship-lag', severity: 'warning', rule: /more than 1 s behind/ });
  t.ok((alert!.details.lagSeconds as number) >= 1, `lag ${alert!.details.lagSeconds} s`);
  t.ok(shipper.status.late && !shipper.status.connected, 'the shipper says it is late and disconnected');
  t.ok(raisedAfter < 5_000, `raised ${raisedAfter} ms after the unshipped rows (bound 1 s, reports every second)`);
  await wait('the webhook post', () => posts.some((p) => p.type === 'ship-lag'));
  t.match(posts.find((p) => p.type === 'ship-lag'), { kind: 'security', severity: 'warning', rule: /journal shipping lags/ });

  await new Promise((r) => setTimeout(r, 1100));
  t.equal(security().filter((a) => a.type === 'ship-lag').length, 1, 'one alert for the episode, not one per status report');
});
