import http from 'node:http';
import t from 'tap';
import { connectTunnel, startGateway, startOrigin, startTlsOrigin, tlsGet, viaProxy } from './helpers.js';
import { startApi } from './supervision-helpers.js';

const clients = [
  { network: '127.0.0.1/32', profile: 'cycle3' },
  { network: '127.0.0.2/32', profile: 'cycle1' },
];
const profiles = {
  cycle3: { mode: 'blocklist', categories: ['adult', 'malware'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] },
  cycle1: { mode: 'allowlist', categories: ['child'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] },
};

/** A download through the proxy that the test reads at its own pace. */
function slowDownload(proxyPort: number, url: string): Promise<{ res: http.IncomingMessage; received: () => number; done: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, path: url, localAddress: '127.0.0.1', agent: false });
    req.on('response', (res) => {
      let n = 0;
      const done = new Promise<number>((ok, ko) => {
        res.on('end', () => ok(n));
        res.on('error', ko);
        res.on('aborted', () => ko(new Error('download aborted')));
      });
      res.on('data', (c: Buffer) => (n += c.length));
      res.pause();
      resolve({ res, received: () => n, done });
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('a change through the API reaches the running proxy at once, without dropping connections', async (t) => {
  const origin = await startOrigin();
  const tlsOrigin = await startTlsOrigin();
  const hosts = Object.fromEntries(['www.site.test', 'later.test', 'kids.test', 'persist.test', 'secure.test'].map((h) => [h, '127.0.0.1']));
  const h = await startApi({ clients, profiles, hosts, connectPorts: [443, tlsOrigin.port] });
  t.teardown(async () => {
    await h.close();
    await origin.close();
    await tlsOrigin.close();
  });
  const tunnel = await connectTunnel(h.gw.port, `secure.test:${tlsOrigin.port}`);
  t.equal(tunnel.status, 200, 'a tunnel is open before the change');
  const site = (host: string, path = '/small') => `http://${host}:${origin.port}${path}`;

  t.equal((await viaProxy(h.gw.port, site('later.test'))).status, 200, 'allowed before the change');
  t.equal((await viaProxy(h.gw.port, site('kids.test'), { localAddress: '127.0.0.2' })).status, 200, 'cycle1 allowlist');

  const mib = 32;
  const dl = await slowDownload(h.gw.port, site('www.site.test', `/big?mib=${mib}`));
  dl.res.resume();
  while (dl.received() < 1048576) await new Promise((r) => setTimeout(r, 5));
  dl.res.pause();
  const midway = dl.received();

  const t0 = performance.now();
  const add = await h.api('POST', '/api/v1/lists/academy/academy-deny/entries?reason=live', { body: { entries: ['later.test', 'kids.test'] } });
  t.equal(add.status, 200);
  t.equal(add.json.added, 2);
  let blocked = 0;
  for (;;) {
    const r = await viaProxy(h.gw.port, site('later.test'));
    if (r.status === 403) {
      blocked = performance.now() - t0;
      t.match(r.body.toString(), /academy-deny/);
      break;
    }
    if (performance.now() - t0 > 1000) break;
  }
  t.ok(blocked > 0 && blocked < 1000, `blocked within a second of the API call (${blocked.toFixed(0)} ms)`);
  t.equal((await viaProxy(h.gw.port, site('kids.test'), { localAddress: '127.0.0.2' })).status, 403, 'deny list beats the allowlist for cycle1 too');
  t.equal((await viaProxy(h.gw.port, site('www.site.test'))).status, 200, 'other sites still pass');

  t.equal(dl.received(), midway, 'the download was paused during the change');
  dl.res.resume();
  t.equal(await dl.done, mib * 1048576, 'the long download finished intact across the policy change');
  t.match(await tlsGet(tunnel.socket, 'secure.test'), /hello over tls/, 'the tunnel opened before the change still carries data');

  t.test('rollback restores an earlier version as a new one', async (t) => {
    const before = h.gw.gateway.policy.version;
    const rb = await h.api('POST', '/api/v1/policy/rollback', { body: { version: before - 1, reason: 'undo live' } });
    t.equal(rb.status, 200);
    t.equal(rb.json.policyVersion, before + 1);
    t.equal(rb.json.rollbackOf, before - 1);
    t.equal((await viaProxy(h.gw.port, site('later.test'))).status, 200, 'allowed again right after the rollback');
    const list = await h.api('GET', '/api/v1/lists/academy/academy-deny');
    t.notOk(list.json.entries.includes('later.test'));
    const policy = await h.api('GET', '/api/v1/policy');
    t.match(policy.json, { version: before + 1, action: 'rollback', rollbackOf: before - 1, why: 'undo live', applied: true });
    const d = await h.api('GET', '/api/v1/decision?url=http://later.test/&client=127.0.0.1');
    t.equal(d.json.policyVersion, before + 1, 'decisions name the version in force');
  });

  t.test('a new list referenced by a profile, then deleted once unreferenced', async (t) => {
    t.equal((await h.api('PUT', '/api/v1/lists/academy/exam-week', { body: { entries: ['www.site.test/small', { expression: 'later\\.test/forbidden' }] } })).status, 201);
    const put = await h.api('PUT', '/api/v1/profiles/cycle3', { body: { ...profiles.cycle3, denyLists: ['academy-deny', 'exam-week'] } });
    t.equal(put.status, 200);
    t.same(put.json.warnings, []);
    t.equal((await viaProxy(h.gw.port, site('www.site.test', '/small'))).status, 403, 'url prefix entry');
    t.equal((await viaProxy(h.gw.port, site('www.site.test', '/echo'))).status, 200);
    t.equal((await viaProxy(h.gw.port, site('later.test', '/forbidden/x'))).status, 403, 'expression entry');
    t.equal((await h.api('DELETE', '/api/v1/lists/academy/exam-week')).status, 409, 'still referenced');
    t.equal((await h.api('DELETE', '/api/v1/lists/academy/academy-deny')).status, 409, 'permanent');
    t.equal((await h.api('PUT', '/api/v1/profiles/cycle3', { body: profiles.cycle3 })).status, 200);
    t.equal((await h.api('DELETE', '/api/v1/lists/academy/exam-week')).status, 200);
    t.equal((await viaProxy(h.gw.port, site('www.site.test', '/small'))).status, 200);
  });

  t.test('the latest stored version applies at the next start', async (t) => {
    t.equal((await h.api('POST', '/api/v1/lists/academy/academy-deny/entries', { body: { entries: ['persist.test'] } })).status, 200);
    const version = h.gw.gateway.policy.version;
    const again = await startGateway({ clients, profiles, hosts, dataDir: h.gw.config.dataDir });
    t.teardown(() => again.close());
    t.equal(again.gateway.policy.version, version);
    t.equal(again.gateway.snapshot.policyVersion, version);
    t.equal((await viaProxy(again.port, site('persist.test'))).status, 403);
    const history = await again.gateway.policy.history(100);
    t.same(history.map((m) => m.version), Array.from({ length: version }, (_, i) => version - i), 'every version kept, base included');
  });
});
