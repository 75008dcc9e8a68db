import http from 'node:http';
import t from 'tap';
import { isoWeekOf, isoWeekRange } from '../src/supervision/routes/weekly.js';
import { startOrigin, viaProxy } from './helpers.js';
import { startApi } from './supervision-helpers.js';

t.test('ISO weeks', async (t) => {
  t.same(isoWeekRange('2026-W01', 'UTC')!.days, ['2025-12-29', '2026-01-04'], 'week 1 holds 4 January');
  t.same(isoWeekRange('2026-W53', 'UTC')!.days, ['2026-12-28', '2027-01-03'], '2026 has 53 weeks (1 January is a Thursday)');
  t.equal(isoWeekRange('2025-W53', 'UTC'), null, '2025 has 52');
  t.equal(isoWeekRange('2026-W00', 'UTC'), null);
  const paris = isoWeekRange('2026-W49', 'Europe/Paris')!;
  t.equal(new Date(paris.from).toISOString(), '2026-11-29T23:00:00.000Z', 'Monday 00:00 in the school time zone');
  t.equal(paris.to - paris.from, 7 * 86_400_000);
  t.equal(isoWeekOf(Date.UTC(2026, 11, 6)), '2026-W49');
  t.equal(isoWeekOf(Date.UTC(2027, 0, 1)), '2026-W53');
});

t.test('weekly summary per profile, JSON and CSV, from the journal', async (t) => {
  const origin = await startOrigin();
  const hosts = Object.fromEntries(['games.test', 'adult.test', 'ok.test'].map((h) => [h, '127.0.0.1']));
  const rules = { mode: 'blocklist', categories: ['adult', 'games'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] };
  const h = await startApi({ clients: [{ network: '127.0.0.3/32', profile: 'cycle2' }, { network: '127.0.0.4/32', profile: 'college' }], profiles: { cycle2: rules, college: rules }, hosts });
  t.teardown(async () => {
    await h.close();
    await origin.close();
  });
  const get = (host: string, from: string) => viaProxy(h.gw.port, `http://${host}:${origin.port}/small`, { localAddress: from });
  for (let i = 0; i < 3; i++) await get('games.test', '127.0.0.3');
  await get('adult.test', '127.0.0.3');
  await get('ok.test', '127.0.0.3');
  await get('adult.test', '127.0.0.4');
  const teacher = await h.tokenFor('teacher', 'M. Dupont');
  t.equal((await h.api('POST', '/api/v1/overrides', { token: teacher, body: { host: 'games.test', network: '127.0.0.3/32', minutes: 10, reason: 'atelier' } })).status, 201);
  await get('games.test', '127.0.0.3');
  await new Promise<void>((resolve, reject) => {
    const body = 'host=adult.test&comment=';
    const req = http.request({ host: '127.0.0.1', port: h.gw.port, method: 'POST', path: '/report', localAddress: '127.0.0.4', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } }, (res) => res.resume().on('end', resolve));
    req.on('error', reject);
    req.end(body);
  });
  await h.gw.gateway.journal!.flush();
  await new Promise((r) => setTimeout(r, 100));

  const supervisor = await h.tokenFor('supervisor');
  const week = isoWeekOf(Date.now());
  const w = await h.api('GET', `/api/v1/reports/weekly?week=${week}`, { token: supervisor });
  t.equal(w.status, 200, w.text);
  const c2 = w.json.profiles.find((p: { profile: string }) => p.profile === 'cycle2');
  t.match(c2, { requests: 6, blocked: 4 });
  t.same(c2.blockedByCategory, [{ category: 'games', blocked: 3 }, { category: 'adult', blocked: 1 }]);
  t.same(c2.topBlockedHosts, [{ host: 'games.test', blocked: 3 }, { host: 'adult.test', blocked: 1 }]);
  t.same(c2.overridden, [{ host: 'games.test', requests: 1 }], 'requests opened by the unblock');
  t.match(c2.overrides, [{ host: 'games.test', network: '127.0.0.3/32', minutes: 10, reason: 'atelier' }]);
  t.match(c2.overrides[0].by, /M\. Dupont/);
  const col = w.json.profiles.find((p: { profile: string }) => p.profile === 'college');
  t.match(col, { requests: 1, blocked: 1, reports: [{ host: 'adult.test', kind: 'block', status: 'open' }] });

  const csv = await h.api('GET', `/api/v1/reports/weekly?week=${week}&format=csv`, { token: supervisor });
  t.equal(csv.status, 200);
  t.match(csv.headers['content-type'], /text\/csv/);
  t.match(csv.text, new RegExp(`${week},cycle2,blocked by category,games,3`));
  t.match(csv.text, new RegExp(`${week},college,report \\(block\\),adult.test at`));

  t.equal((await h.api('GET', '/api/v1/reports/weekly?week=2025-W53', { token: supervisor })).status, 400, 'no such week');
  t.equal((await h.api('GET', '/api/v1/reports/weekly?week=2026-12', { token: supervisor })).json.problems[0].field, 'querystring/week');
  t.equal((await h.api('GET', `/api/v1/reports/weekly?week=${week}`, { token: teacher })).status, 403, 'not for teachers');
  const empty = await h.api('GET', '/api/v1/reports/weekly?week=2020-W10', { token: supervisor });
  t.same(empty.json.profiles, [], 'a week without traffic is empty');
});
