import http from 'node:http';
import t from 'tap';
import { startGateway, startOrigin, TEST_LISTS, tmp, writeLists } from './helpers.js';

const clients = [{ network: '127.0.0.1/32', profile: 'cycle3' }];
const profiles = { cycle3: { mode: 'blocklist', categories: ['adult', 'malware', 'games'], allow: [], deny: [], allowLists: [], denyLists: [] } };

/** What each request must get, whatever list version is live: the two list sets agree on these. */
const CASES = [
  { host: 'ok.test', path: '/small', status: 200 },
  { host: 'www.adult.test', path: '/small', status: 403 },
  { host: 'games.test', path: '/small', status: 403 },
  { host: 'example.test', path: '/adult-corner/x', status: 403 },
  { host: 'example.test', path: '/small', status: 200 },
  { host: 'deep.sub.malware.test', path: '/small', status: 403 },
];

t.test('list swaps under load: nothing dropped, nothing mis-decided', async (t) => {
  const origin = await startOrigin();
  // Two list sets with different content (so every load is a real swap to a new version) that
  // decide the requests above the same way.
  const a = writeLists(tmp(), TEST_LISTS);
  const b = writeLists(tmp(), { ...TEST_LISTS, press: { domains: Array.from({ length: 2000 }, (_, i) => `news${i}.test`) }, games: { domains: ['games.test', 'more-games.test'] } });
  const hosts = Object.fromEntries(CASES.map((c) => [c.host, '127.0.0.1']));
  const gw = await startGateway({ clients, profiles, hosts }, a);
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 4 });
  t.teardown(async () => {
    keepAlive.destroy();
    await gw.close();
    await origin.close();
  });

  const TOTAL = 1200;
  const CONCURRENCY = 12;
  const deadline = Date.now() + 20_000;
  let sent = 0;
  let done = false;
  let swaps = 0;
  const wrong: string[] = [];
  const errors: string[] = [];
  const get = (host: string, path: string, agent: http.Agent | false) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: gw.port, path: `http://${host}:${origin.port}${path}`, agent, localAddress: '127.0.0.1' });
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
      req.on('response', (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  const client = async (id: number) => {
    // Bounded: TOTAL requests, longer only while fewer than 20 swaps happened (at most 3x TOTAL).
    while ((sent < TOTAL || swaps < 20) && sent < 3 * TOTAL && Date.now() < deadline) {
      const c = CASES[sent++ % CASES.length]!;
      try {
        const r = await get(c.host, c.path, id % 2 ? keepAlive : false);
        if (r.status !== c.status) wrong.push(`${c.host}${c.path}: ${r.status}, expected ${c.status}`);
        else if (r.status === 200 && r.body !== 'hello from origin\n') wrong.push(`${c.host}${c.path}: body ${JSON.stringify(r.body.slice(0, 60))}`);
      } catch (e) {
        errors.push(`${c.host}${c.path}: ${(e as Error).message}`);
      }
    }
  };

  const versions = new Set<string>();
  const swapper = async () => {
    let flip = false;
    while (!done) {
      flip = !flip;
      gw.gateway.config.lists.ut1 = flip ? b : a;
      if (!(await gw.gateway.loadLists())) errors.push('loadLists failed');
      versions.add(gw.gateway.snapshot.listVersion);
      await gw.gateway.recompile();
      swaps += 2;
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  const swapping = swapper();
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => client(i)));
  done = true;
  await swapping;

  t.ok(sent >= TOTAL, `the whole bounded load ran (${sent} requests)`);
  t.same(errors, [], 'no request dropped or failed');
  t.same(wrong, [], 'every request decided as its rules say');
  t.ok(swaps >= 20, `the policy was swapped ${swaps} times during the load`);
  t.equal(versions.size, 2, 'both list versions were live in turn');
});
