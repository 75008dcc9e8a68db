import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { SessionStore } from '../src/auth/sessions.js';
import { importFiles } from '../src/directory/import.js';
import { createGatewayMetrics } from '../src/metrics/registry.js';
import { Directory } from '../src/directory/store.js';
import { aafName, pupil, staff, writeAaf } from './aaf-helpers.js';
import { tmp } from './helpers.js';
import { startApi } from './supervision-helpers.js';

t.test('session store: open, replace, expire, idle extension, bound', async (t) => {
  const s = new SessionStore(2);
  const changes: string[] = [];
  s.onChange((c) => changes.push(c.t === 'open' ? `open ${c.session.address} ${c.session.user}` : `close ${c.address} ${c.reason}`));
  s.open('::ffff:127.0.0.9', 'u1', 1000, 'test', { now: 0 });
  t.equal(s.lookup('127.0.0.9', 500)?.user, 'u1', 'IPv4-mapped addresses are the IPv4 address');
  t.equal(s.lookup('::ffff:127.0.0.9', 500)?.user, 'u1');
  s.open('127.0.0.9', 'u2', 1000, 'test', { now: 600 });
  t.equal(s.lookup('127.0.0.9', 700)?.user, 'u2', 'a new session replaces the old one');
  t.equal(s.lookup('127.0.0.9', 1600), null, 'expired');
  s.open('127.0.0.8', 'idle', 1000, 'portal', { idle: true, now: 0 });
  t.ok(s.lookup('127.0.0.8', 900), 'used before its idle timeout...');
  t.ok(s.lookup('127.0.0.8', 1800), '...so it lasts longer');
  t.equal(s.lookup('127.0.0.8', 2900), null, 'then idles out');
  s.open('127.0.0.1', 'a', 10_000, 't', { now: 0 });
  s.open('127.0.0.2', 'b', 10_000, 't', { now: 0 });
  t.throws(() => s.open('127.0.0.3', 'c', 10_000, 't', { now: 0 }), /too many sessions/);
  t.throws(() => s.open('nope', 'c', 1, 't'), /not an IP address/);
  t.equal(s.active(0), 2);
  t.match(changes, ['open 127.0.0.9 u1', 'open 127.0.0.9 u2', 'close 127.0.0.9 expired']);
});

t.test('sessions and users over the API', async (t) => {
  const dataDir = tmp();
  const files = tmp();
  const dir = Directory.open(dataDir);
  await importFiles([
    writeAaf(files, aafName('0781234A', 'Complet', '20260901', 'Eleve'), [pupil('1000001', { mef: '10010012110', sn: 'Martin', givenName: 'Léa', login: 'lea.martin' })]),
    writeAaf(files, aafName('0781234A', 'Complet', '20260901', 'PersEducNat'), [staff('2000001', ['5001$ENS$X'])]),
  ], dir);
  dir.close();
  const h = await startApi({ dataDir, clients: [{ network: '127.0.0.0/24', profile: 'cycle3' }] });
  t.teardown(() => h.close());
  const ent = (await h.sup.tokens.create('sessions', 'ENT', 'test')).token;
  const supervisor = await h.tokenFor('supervisor');
  const requisition = await h.tokenFor('requisition');

  const opened = await h.api('POST', '/api/v1/sessions', { token: ent, body: { address: '127.0.0.42', user: 'lea.martin', minutes: 60 } });
  t.equal(opened.status, 201, opened.text);
  t.match(opened.json, { address: '127.0.0.42', user: '1000001', source: 'api:ENT', profile: 'college' }, 'the login resolves to the AAF id; its profile from the level');
  t.equal(h.gw.gateway.identity.sessions.lookup('127.0.0.42')?.user, '1000001', 'the gateway sees it');

  const bad = [
    [{ address: '127.0.0.43', user: 'personne', minutes: 5 }, 'body/user'],
    [{ address: '10.1.2.3', user: '1000001', minutes: 5 }, 'body/address'],
    [{ address: 'x', user: '1000001', minutes: 5 }, 'body/address'],
    [{ address: '127.0.0.43', user: '1000001', minutes: 0 }, 'body/minutes'],
    [{ address: '127.0.0.43', user: '1000001' }, 'body/minutes'],
  ] as const;
  for (const [body, field] of bad) {
    const r = await h.api('POST', '/api/v1/sessions', { token: ent, body });
    t.equal(r.status, 400, JSON.stringify(body));
    t.match(r.json.problems, [{ field }]);
  }

  const metrics = createGatewayMetrics();
  metrics.bind(() => h.gw.gateway);
  const exposed = await metrics.registry.metrics();
  t.match(exposed, /^vigie_sessions_active 1$/m);
  t.match(exposed, /^vigie_directory_users 2$/m);
  t.notMatch(exposed, /vigie_auth_checks_total\{/, 'no LDAP configured: no checks to count');

  const list = await h.api('GET', '/api/v1/sessions', { token: supervisor });
  t.match(list.json.sessions, [{ address: '127.0.0.42', user: '1000001' }]);
  t.equal((await h.api('POST', '/api/v1/sessions', { token: supervisor, body: { address: '127.0.0.44', user: '1000001', minutes: 5 } })).status, 403, 'supervisors read sessions, they do not declare them');
  t.equal((await h.api('GET', '/api/v1/journal?limit=1', { token: ent })).status, 403, 'the sessions role reads nothing else');
  t.equal((await h.api('GET', '/api/v1/users', { token: ent })).status, 403);

  const users = await h.api('GET', '/api/v1/users', { token: supervisor });
  t.match(users.json.users, [{ id: '1000001', role: 'pupil', level: '6e', profile: 'college' }, { id: '2000001', role: 'teacher', profile: 'staff' }]);
  t.notMatch(users.text, /Martin|Léa/, 'no names for supervisors');
  const one = await h.api('GET', '/api/v1/users/lea.martin', { token: supervisor });
  t.match(one.json, { id: '1000001', sessions: ['127.0.0.42'] });
  t.equal((await h.api('GET', '/api/v1/users/1000001/identity?reference=PV-1', { token: supervisor })).status, 403, 'names only for requisitions');
  t.equal((await h.api('GET', '/api/v1/users/1000001/identity', { token: requisition })).status, 400, 'a reference is required');
  const who = await h.api('GET', '/api/v1/users/1000001/identity?reference=PV-2026-042', { token: requisition });
  t.same(who.json, { id: '1000001', sn: 'Martin', givenName: 'Léa' });

  t.equal((await h.api('DELETE', '/api/v1/sessions/127.0.0.42', { token: ent })).status, 204);
  t.equal(h.gw.gateway.identity.sessions.lookup('127.0.0.42'), null);
  t.equal((await h.api('DELETE', '/api/v1/sessions/127.0.0.42', { token: ent })).status, 404);

  const auditLines = readFileSync(join(dataDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.match(auditLines.filter((a) => a.action.startsWith('session.') || a.action === 'user.identity'), [
    { action: 'session.open', target: '127.0.0.42', details: { user: '1000001', minutes: 60 }, actor: /^ENT/ },
    { action: 'user.identity', target: '1000001', details: { reference: 'PV-2026-042', found: true }, role: 'requisition' },
    { action: 'session.close', target: '127.0.0.42' },
  ]);
});
