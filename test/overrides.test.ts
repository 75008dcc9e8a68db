import { statSync } from 'node:fs';
import t from 'tap';
import { OverrideStore, overridesFile } from '../src/policy/override-store.js';
import { startOrigin, viaProxy } from './helpers.js';
import { startApi } from './supervision-helpers.js';

const clients = [
  { network: '127.0.0.3/32', profile: 'cycle2', name: 'CE1 A' },
  { network: '127.0.0.4/32', profile: 'cycle2', name: 'CE1 B' },
];
const profiles = { cycle2: { mode: 'blocklist', categories: ['adult', 'games', 'malware'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] } };

t.test("a teacher's temporary unblock, on real sockets", async (t) => {
  const origin = await startOrigin();
  const hosts = Object.fromEntries(['games.test', 'www.games.test', 'adult.test', 'short.test'].map((h) => [h, '127.0.0.1']));
  const h = await startApi({ clients, profiles, hosts });
  t.teardown(async () => {
    await h.close();
    await origin.close();
  });
  const teacher = await h.tokenFor('teacher', 'Mme Martin');
  const supervisor = await h.tokenFor('supervisor', 'referent');
  const site = (host: string) => `http://${host}:${origin.port}/small`;
  const from = (host: string, addr: string) => viaProxy(h.gw.port, site(host), { localAddress: addr });

  const blocked = await from('games.test', '127.0.0.3');
  t.equal(blocked.status, 403, 'games.test is blocked before the unblock');
  const page = blocked.body.toString();
  t.match(page, /action="http:\/\/127\.0\.0\.1:\d+\/report"/, 'the block page offers the report form on the proxy port');
  t.match(page, /\/admin\/#\/overrides\/new\?host=games\.test&amp;network=127\.0\.0\.3%2F32/, 'and staff a link to the prefilled unblock form');
  t.notMatch((await from('adult.test', '127.0.0.3')).body.toString(), /overrides\/new/, 'no unblock link for a non-overridable category');

  const made = await h.api('POST', '/api/v1/overrides', { token: teacher, body: { host: 'games.test', network: '127.0.0.3/32', minutes: 5, reason: 'séance de jeux éducatifs' } });
  t.equal(made.status, 201, made.text);
  t.equal(made.json.host, 'games.test');
  t.same(made.json.blockedBy, { rule: 'category', category: 'games' });
  const expires = Date.parse(made.json.expires) - Date.parse(made.json.created);
  t.equal(expires, 5 * 60_000, 'for the minutes asked');

  const ok = await from('games.test', '127.0.0.3');
  t.equal(ok.status, 200, 'the class reaches the host');
  t.equal((await from('www.games.test', '127.0.0.3')).status, 200, 'and its subdomains');
  t.equal((await from('games.test', '127.0.0.4')).status, 403, 'another class is still blocked');
  t.equal((await from('adult.test', '127.0.0.3')).status, 403, 'other hosts stay blocked');

  const journal = h.gw.gateway.journal!;
  await journal.flush();
  const rows = (await h.api('GET', '/api/v1/journal?host=games.test&limit=20', { token: supervisor })).json.rows as { client: string; decision: string; rule: string; category: string }[];
  const a = rows.filter((r) => r.client === '127.0.0.3' && r.decision === 'allow');
  t.ok(a.length >= 1 && a.every((r) => r.rule === 'override'), 'rows allowed by it carry rule "override"');
  t.ok(rows.some((r) => r.client === '127.0.0.4' && r.decision === 'block' && r.rule.startsWith('category')), 'the other class is recorded blocked');

  t.test('refusals', async (t) => {
    const adult = await h.api('POST', '/api/v1/overrides', { token: teacher, body: { host: 'www.adult.test', network: '127.0.0.3/32', minutes: 5, reason: 'x' } });
    t.equal(adult.status, 422);
    t.match(adult.json.message, /category "adult"/, 'names the category');
    t.equal(adult.json.category, 'adult');
    const long = await h.api('POST', '/api/v1/overrides', { token: teacher, body: { host: 'games.test', network: '127.0.0.3/32', minutes: 121, reason: 'x' } });
    t.equal(long.status, 400);
    t.match(long.json.message, /at most 120/);
    const wide = await h.api('POST', '/api/v1/overrides', { token: teacher, body: { host: 'games.test', network: '127.0.0.0/8', minutes: 5, reason: 'x' } });
    t.equal(wide.status, 400, 'a network wider than a class of the school is refused');
    t.equal(wide.json.problems[0].field, 'body/network');
    const bad = await h.api('POST', '/api/v1/overrides', { token: teacher, body: { host: 'games.test', network: 'nope', minutes: 5, reason: 'x' } });
    t.equal(bad.status, 400);
    const noReason = await h.api('POST', '/api/v1/overrides', { token: teacher, body: { host: 'games.test', network: '127.0.0.3/32', minutes: 5 } });
    t.equal(noReason.json.problems[0].field, 'body/reason');
  });

  t.test('roles', async (t) => {
    t.equal((await h.api('GET', '/api/v1/overrides', { token: teacher })).status, 200, 'a teacher lists');
    t.equal((await h.api('GET', '/api/v1/overrides', { token: supervisor })).status, 200, 'a supervisor lists');
    t.equal((await h.api('GET', '/api/v1/tokens', { token: teacher })).status, 403, 'a teacher cannot see tokens');
    t.equal((await h.api('POST', '/api/v1/tokens', { token: teacher, body: { role: 'admin', name: 'x' } })).status, 403, 'nor make one');
    t.equal((await h.api('POST', '/api/v1/tokens', { token: supervisor, body: { role: 'admin', name: 'x' } })).status, 403, 'nor can a supervisor');
    t.equal((await h.api('POST', '/api/v1/lists/academy/academy-allow/entries', { token: teacher, body: { entries: ['games.test'] } })).status, 403, 'a teacher cannot edit lists');
    t.equal((await h.api('GET', '/api/v1/journal', { token: teacher })).status, 403, 'nor read the journal');
    t.equal((await h.api('GET', '/api/v1/reports', { token: teacher })).status, 403, 'nor the reports');
    t.equal((await h.api('POST', '/api/v1/overrides', { token: (await h.tokenFor('requisition')), body: { host: 'games.test', network: '127.0.0.3/32', minutes: 5, reason: 'x' } })).status, 403, 'a requisition token cannot unblock');
  });

  t.test('persisted (0600), survives a restart, revoked', async (t) => {
    const file = overridesFile(h.gw.config.dataDir);
    t.equal(statSync(file).mode & 0o777, 0o600, 'the file is 0600');
    const again = new OverrideStore({ file });
    await again.load();
    t.same(again.list().map((o) => o.host), ['games.test'], 'a store opened on the file (a restart) finds it');
    const list = (await h.api('GET', '/api/v1/overrides', { token: teacher })).json;
    t.equal(list.maxMinutes, 120);
    t.ok(list.nonOverridable.includes('phishing'));
    t.equal(list.overrides.length, 1);
    const other = await h.tokenFor('teacher', 'M. Petit');
    t.same((await h.api('GET', '/api/v1/overrides', { token: other })).json.overrides, [], 'another teacher does not see it');
    t.equal((await h.api('DELETE', `/api/v1/overrides/${made.json.id}`, { token: other })).status, 403, 'nor ends it');
    t.equal((await h.api('DELETE', `/api/v1/overrides/${made.json.id}`, { token: teacher })).status, 200);
    t.equal((await h.api('DELETE', `/api/v1/overrides/${made.json.id}`, { token: teacher })).status, 404, 'once');
    t.equal((await from('games.test', '127.0.0.3')).status, 403, 'blocked again at once');
    const reread = new OverrideStore({ file });
    await reread.load();
    t.same(reread.list(), [], 'and gone from the file');
  });

  t.test('expires by itself', async (t) => {
    const store = h.gw.gateway.overrides;
    await h.api('POST', '/api/v1/lists/academy/academy-deny/entries', { body: { entries: ['short.test'] } });
    t.equal((await from('short.test', '127.0.0.3')).status, 403, 'blocked by the academy list');
    await store.add({ host: 'short.test', network: '127.0.0.3/32', reason: 'test', createdBy: 'test', durationMs: 1000 });
    t.equal((await from('short.test', '127.0.0.3')).status, 200, 'open while it lasts');
    await new Promise((r) => setTimeout(r, 1100));
    t.equal((await from('short.test', '127.0.0.3')).status, 403, 'closed once expired');
    await new Promise((r) => setTimeout(r, 100));
    t.same(store.list(), [], 'dropped from the list');
    const reread = new OverrideStore({ file: overridesFile(h.gw.config.dataDir) });
    await reread.load();
    t.same(reread.list(), [], 'and from the file');
  });

  t.test('audit lines', async (t) => {
    const entries = (await h.api('GET', '/api/v1/audit?action=override&limit=100', { token: supervisor })).json.entries as { action: string; actor: string; role: string; details: Record<string, unknown> }[];
    const create = entries.find((e) => e.action === 'override.create');
    t.ok(create, 'creation audited');
    t.match(create!.actor, /Mme Martin/, 'who');
    t.equal(create!.role, 'teacher');
    t.match(create!.details, { host: 'games.test', network: '127.0.0.3/32', minutes: 5, reason: 'séance de jeux éducatifs' });
    t.ok(entries.some((e) => e.action === 'override.revoke' && e.details.host === 'games.test'), 'revocation audited');
    const refused = entries.find((e) => e.action === 'override.refused' && e.details.category === 'adult');
    t.ok(refused, 'a refused unblock is audited with the category');
  });
});
