import t from 'tap';
import { MapIndexBuilder } from '../src/lists/map-index.js';
import { expressionProblem } from '../src/lists/normalize.js';
import { loadUt1Dir } from '../src/lists/ut1.js';
import { checkExpression } from '../src/policy/store.js';
import { startGateway, startOrigin, tmp, TEST_LISTS, viaProxy, writeLists } from './helpers.js';

const EVIL = '(a+)+$';

t.test('a catastrophic expression answers at once, and other clients are served meanwhile', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const academy = writeLists(tmp(), {
    'academy-deny': { domains: ['academy-no.test'], expressions: [EVIL, '/forbidden-[0-9]+$'] },
    'academy-allow': { domains: ['academy-ok.test'] },
  });
  const lists = writeLists(tmp(), { ...TEST_LISTS, adult: { ...TEST_LISTS.adult, urls: [...TEST_LISTS.adult.urls, 'Mixed-Site.test/Arcade/Room'] } });
  const gw = await startGateway({ hosts: { 'origin.test': '127.0.0.1' }, lists: { academy, extra: false } }, lists);
  t.teardown(() => gw.close());
  const base = `http://origin.test:${origin.port}`;

  // Warm up (connections, JIT) so the figures below are the request's own.
  t.equal((await viaProxy(gw.port, `${base}/small`, { localAddress: '127.0.0.1' })).status, 200);
  for (const n of [30, 10_000]) {
    const path = '/' + 'a'.repeat(n) + '!';
    const t0 = performance.now();
    // The pupil's request runs the expression; a staff machine asks at the same moment.
    const [evil, other] = await Promise.all([
      viaProxy(gw.port, base + path, { localAddress: '127.0.0.1' }).then((r) => ({ r, ms: performance.now() - t0 })),
      viaProxy(gw.port, `${base}/small`, { localAddress: '127.0.0.5' }).then((r) => ({ r, ms: performance.now() - t0 })),
    ]);
    t.equal(evil.r.status, 200, `/ + ${n} a + !: answered (no match: forwarded)`);
    t.equal(other.r.status, 200, 'the other client is served');
    t.comment(`${n} a's: answered in ${evil.ms.toFixed(1)} ms, other client in ${other.ms.toFixed(1)} ms (a backtracking engine took 15 s for 30)`);
  }
  // It still matches what it should, case-insensitively on the whole URL.
  t.equal((await viaProxy(gw.port, `${base}/aaa`, { localAddress: '127.0.0.1' })).status, 403, `${EVIL} blocks a path of a's`);
  t.equal((await viaProxy(gw.port, `${base}/FORBIDDEN-12`, { localAddress: '127.0.0.1' })).status, 403, 'expressions ignore case');
  // Url entries too: squidGuard lower-cases the whole URL.
  for (const path of ['/adult-corner/x', '/ADULT-Corner/x', '/Adult-CORNER']) {
    t.equal((await viaProxy(gw.port, `http://example.test${path}`, { localAddress: '127.0.0.1' })).status, 403, `url entry example.test/adult-corner blocks ${path}`);
  }
  const mixedEntry = await viaProxy(gw.port, 'http://mixed-site.test/arcade/ROOM/1', { localAddress: '127.0.0.1' });
  t.equal(mixedEntry.status, 403, 'a url entry written in mixed case matches too');
});

t.test('expressions RE2 cannot run in linear time are refused when loaded, naming the entry', async (t) => {
  t.equal(expressionProblem(EVIL), null, `${EVIL} is accepted: RE2 runs it in linear time`);
  t.match(expressionProblem('(a)\\1'), /RE2 syntax, linear time/, 'a backreference is refused');
  t.match(expressionProblem('foo(?=bar)'), /RE2 syntax/, 'lookahead is refused');
  t.match(checkExpression('(x)\\1'), { problem: /RE2 syntax/ }, 'the API and fleet bundles refuse it too');
  const dir = writeLists(tmp(), { special: { expressions: ['ok[0-9]+', '(a)\\1', 'fine'] } });
  const b = new MapIndexBuilder();
  const report = await loadUt1Dir(dir, b);
  t.equal(report.badLineCount, 1);
  t.match(report.badLines[0], { category: 'special', file: 'expressions', line: 2, text: '(a)\\1', reason: /RE2 syntax/ });
  t.same(b.build('v').counts().find((c) => c.name === 'special'), { name: 'special', domains: 0, urls: 0, expressions: 2 }, 'the other expressions of the file still serve');
});
