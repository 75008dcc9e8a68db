import t from 'tap';
import { resolveConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { categoryLabel, parseGlobalUsage } from '../src/lists/labels.js';
import { createLogger } from '../src/log.js';
import { createGatewayMetrics } from '../src/metrics/registry.js';
import { decide } from '../src/policy/decide.js';
import { startSupervision } from '../src/supervision/server.js';
import { DEAD_DNS, startGateway, testCert, tmp, TEST_LISTS, viaProxy, writeLists } from './helpers.js';
import { call, certFiles } from './supervision-helpers.js';

const req = (client: string, host: string) => ({ client, scheme: 'http' as const, host, port: 80, path: '/', time: Date.parse('2026-12-07T10:00:00+01:00') });

t.test('embedded defaults (a fresh clone): the popular adult sites are blocked for every pupil profile, the extra list named', async (t) => {
  const lines: string[] = [];
  const config = resolveConfig({ listen: [{ host: '127.0.0.1', port: 0 }], dns: { servers: DEAD_DNS, timeoutMs: 500 }, dataDir: tmp(), journal: { enabled: false } });
  const gw = new Gateway({ config, log: createLogger('info', (l) => lines.push(l)) });
  await gw.start();
  t.teardown(() => gw.stop());
  const s = gw.snapshot;
  t.ok(s.listsLoaded, 'bundled UT1 lists loaded');
  for (const host of ['pornhub.com', 'xvideos.com', 'xhamster.com', 'www.pornhub.com']) {
    for (const [client, profile] of [['127.0.0.3', 'cycle2'], ['127.0.0.1', 'cycle3'], ['127.0.0.4', 'college']] as const) {
      const d = decide(s, req(client, host));
      t.match(d, { action: 'block', profile, category: 'adult', rule: 'category', matchKind: 'domain' }, `${host} blocked for ${profile}`);
      t.match(d.list, /^extra\/porn-(sinfonietta|clefspeare13)$/, `${host} (${profile}): list names the extra list`);
    }
    t.match(decide(s, req('127.0.0.5', host)), { action: 'allow', profile: 'staff', rule: 'default', list: null }, `${host}: staff keeps its own policy`);
  }
  // A UT1 entry names UT1.
  t.match(decide(s, req('127.0.0.5', '1lkjmn.cc')), { action: 'block', category: 'malware', list: 'ut1' });
  t.same(s.emptyCategories.filter((e) => e.category === 'adult'), [], 'adult is not empty: the extra lists fill it');
  t.notMatch(lines.join(''), /has no domains entries/, 'no empty-category warning on the defaults');
  // ai is blocked for every pupil profile; cycle2 blocks streaming in school hours only.
  for (const p of ['cycle2', 'cycle3', 'college']) {
    const prof = config.profiles[p]!;
    t.ok(prof.categories.includes('ai') && prof.schedule?.otherwise.categories.includes('ai'), `${p} blocks ai at all hours`);
  }
  t.ok(config.profiles.cycle2!.categories.includes('audio-video') && !config.profiles.cycle2!.schedule?.otherwise.categories.includes('audio-video'), 'cycle2: audio-video in school hours, as cycle3');
  t.notOk(config.profiles.staff!.categories.includes('ai'), 'staff: ai open');

  // Through the proxy: the block page names the category with UT1's label.
  const page = await viaProxy(gw.listening[0]!.port, 'http://pornhub.com/', { localAddress: '127.0.0.3', headers: { 'accept-language': 'fr' } });
  t.equal(page.status, 403);
  t.match(page.body.toString(), /Adulte \(X\) \(adult\)/, 'French label next to the code');
  const en = await viaProxy(gw.listening[0]!.port, 'http://xvideos.com/', { localAddress: '127.0.0.4', headers: { 'accept-language': 'en' } });
  t.match(en.body.toString(), /Adult \(X\) \(adult\)/, 'English label next to the code');

  const metrics = createGatewayMetrics();
  metrics.bind(() => gw);
  const text = await metrics.registry.metrics();
  t.match(text, /vigie_lists_data_timestamp_seconds\{source="ut1"\} 1786925466\b/, 'UT1 data date: the bundled snapshot (2026-08-17T00:11:06Z), not the load time');
  t.match(text, /vigie_lists_data_timestamp_seconds\{source="extra\/porn-sinfonietta"\} 1776902400\b/, "an extra list's own date");
  t.match(text, /vigie_list_category_empty\{category="adult"\} 0/);
});

t.test('UT1 without adult/domains and no extra lists: a WARN naming adult and its profiles, the metric, /api/v1/health', async (t) => {
  const lines: string[] = [];
  const lists = writeLists(tmp(), { ...TEST_LISTS, adult: { urls: ['example.test/adult-corner'] } });
  const gw = await startGateway({ lists: { extra: false }, supervision: { listen: { host: '127.0.0.1', port: 0 }, ...certFiles() } }, lists, { log: createLogger('info', (l) => lines.push(l)) });
  t.teardown(() => gw.close());
  const warn = lines.find((l) => /WARN/i.test(l) && l.includes('category "adult" has no domains entries'));
  t.ok(warn, 'a WARN line names adult');
  t.match(warn ?? '', /profiles college, cycle2, cycle3 /, 'and the profiles that block it');
  t.notMatch(warn ?? '', /staff/);
  t.match(gw.gateway.snapshot.emptyCategories.find((e) => e.category === 'adult'), { profiles: ['college', 'cycle2', 'cycle3'] });

  const metrics = createGatewayMetrics();
  metrics.bind(() => gw.gateway);
  const text = await metrics.registry.metrics();
  t.match(text, /vigie_list_category_empty\{category="adult"\} 1/);
  t.match(text, /vigie_list_category_empty\{category="games"\} 0/);

  const sup = await startSupervision({ gateway: gw.gateway, log: createLogger('error', () => undefined) });
  t.teardown(() => sup.close());
  const health = await call(sup.port, sup.cert, 'GET', '/api/v1/health', { token: null });
  t.equal(health.status, 200);
  const empty = (health.json as { lists: { emptyCategories: { category: string; profiles: string[] }[] } }).lists.emptyCategories;
  t.same(empty.find((e) => e.category === 'adult'), { category: 'adult', profiles: ['college', 'cycle2', 'cycle3'] }, 'health lists adult and its profiles');
  void testCert;
});

t.test("UT1's global_usage gives each category a French and an English label", async (t) => {
  const m = parseGlobalUsage('# c\nNAME:\tadult\nDEFAULT_TYPE: black\nNAME EN: Adult (X)\nNAME FR: Adulte (X)\n\nNAME: ai\nNAME FR: IA\n');
  t.same(m.get('adult'), { en: 'Adult (X)', fr: 'Adulte (X)' });
  t.same(m.get('ai'), { fr: 'IA' });
  t.equal(categoryLabel('no-such-category', 'fr'), null);
});
