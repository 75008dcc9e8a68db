import http from 'node:http';
import t from 'tap';
import { startGateway, startOrigin } from './helpers.js';

t.test('listens on IPv4 and IPv6 addresses at once; IPv6 clients get their profile', async (t) => {
  const origin = await startOrigin();
  const gw = await startGateway({
    listen: [{ host: '127.0.0.1', port: 0 }, { host: '::1', port: 0 }],
    clients: [{ network: '127.0.0.1/32', profile: 'staff' }, { network: '::1/128', profile: 'cycle1' }],
    hosts: { 'site.test': '127.0.0.1', 'kids.test': '127.0.0.1' },
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
  });
  t.teardown(async () => {
    await gw.close();
    await origin.close();
  });
  t.equal(gw.gateway.listening.length, 2);
  const v6 = gw.gateway.listening.find((l) => l.host === '::1')!;
  t.ok(v6, 'bound on ::1');
  const get = (url: string) =>
    new Promise<number>((resolve, reject) => {
      http.get({ host: '::1', port: v6.port, path: url, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
  t.equal(await get(`http://kids.test:${origin.port}/small`), 200, 'cycle1 allowlist entry over IPv6');
  t.equal(await get(`http://site.test:${origin.port}/small`), 403, 'cycle1 blocks the rest');
});
