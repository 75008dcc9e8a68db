import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { challenge, parseBasic } from '../src/auth/basic.js';
import { escapeDnValue, escapeFilterValue, LdapVerifier } from '../src/auth/ldap.js';
import { ANONYMOUS, identify, type Identification } from '../src/auth/admit.js';
import { Identity } from '../src/auth/identity.js';
import { ConfigError, resolveConfig } from '../src/config/load.js';
import { createGatewayMetrics } from '../src/metrics/registry.js';
import type { LdapConfig } from '../src/config/types.js';
import { silentLogger } from '../src/log.js';
import { tmp } from './helpers.js';
import { PEOPLE, slapdMissing, startSlapd, SUFFIX, type SlapdHandle } from './slapd-helpers.js';

const basic = (login: string, password: string) => `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;

t.test('Basic credentials: parsed, or nothing', async (t) => {
  t.same(parseBasic(basic('eleve.cm1', 'Tableau noir:é')), { login: 'eleve.cm1', password: 'Tableau noir:é' });
  t.same(parseBasic('basic   ' + Buffer.from('a:b').toString('base64')), { login: 'a', password: 'b' });
  for (const h of [undefined, '', 'Bearer x', 'Basic !!!', basic('', 'x'), basic('eleve', ''), basic('*)(uid=*', 'x'), basic('a,b', 'x'), basic('a', 'x\ny'), 'Basic ' + 'A'.repeat(2000)]) {
    t.equal(parseBasic(h), null, String(h).slice(0, 40));
  }
  t.equal(challenge('Vigie'), 'Basic realm="Vigie", charset="UTF-8"');
  t.equal(escapeFilterValue('a*)(b\\'), 'a\\2a\\29\\28b\\5c');
  t.equal(escapeDnValue(' #a,b+c'), '\\ #a\\,b\\+c');
});

t.test('auth config: checked with the JSON path', async (t) => {
  const bad = (doc: unknown) => {
    try {
      resolveConfig(doc);
      return [];
    } catch (e) {
      return (e as ConfigError).problems.map((p) => `${p.path} ${p.message}`);
    }
  };
  t.match(bad({ clients: [{ network: '10.0.0.0/8', profile: 'college', auth: 'required' }] }), [/\/clients\/0\/auth "required" needs/]);
  t.match(bad({ auth: { ldap: { url: 'ldap://127.0.0.1' } } }), [/\/auth\/ldap set either "bindDn"/]);
  t.match(bad({ auth: { ldap: { url: 'ldap://127.0.0.1', searchFilter: '(uid={login})' } } }), [/\/auth\/ldap\/searchBase required/]);
  t.match(bad({ auth: { ldap: { url: 'http://x', bindDn: 'uid={login}' } } }), [/\/auth\/ldap\/url/]);
  t.match(bad({ auth: { realm: 'a"b' } }), [/\/auth\/realm/]);
  t.match(bad({ directory: { levels: { '6e': 'nope' }, classes: { 'no-dollar': 'college' } } }), [/\/directory\/classes/]);
  t.match(bad({ directory: { levels: { '6e': 'nope' } } }), [/\/directory\/levels\/6e unknown profile "nope"/]);
  t.same(bad({ clients: [{ network: '10.0.0.0/8', profile: 'college', auth: 'required' }], auth: { ldap: { url: 'ldap://127.0.0.1', bindDn: 'uid={login},dc=x' } } }), []);
});

const skip = slapdMissing();

t.test('LDAP bind against a real slapd', { skip }, async (t) => {
  const slapd: SlapdHandle = await startSlapd();
  let stopped = false;
  t.teardown(() => (stopped ? undefined : slapd.stop()));
  const opts = { cacheSeconds: 60, cacheMax: 100, failuresPerMinute: 3 };
  const direct: LdapConfig = { url: slapd.url, bindDn: `uid={login},${PEOPLE}`, idAttribute: 'employeeNumber', timeoutMs: 2000 };
  const v = new LdapVerifier(direct, opts, silentLogger);

  t.match(await v.verify('127.0.0.10', 'eleve.cm1', 'Soleil-2026'), { ok: true, outcome: 'ok', login: 'eleve.cm1', id: '1000001' }, 'right password: the AAF id from the entry');
  t.match(await v.verify('127.0.0.10', 'prof.ens', 'Tableau noir!'), { ok: true, id: '2000001' });
  t.match(await v.verify('127.0.0.10', 'sans.id', 'Pas-de-jointure'), { ok: true, id: null }, 'an entry without the attribute: no id');
  t.match(await v.verify('127.0.0.11', 'eleve.cm1', 'wrong'), { ok: false, outcome: 'invalid' });
  t.match(await v.verify('127.0.0.11', 'bloque', 'Verrou-42'), { ok: false, outcome: 'invalid' }, 'a locked account (ppolicy) is refused with its right password');
  t.match(await v.verify('127.0.0.11', 'personne', 'x'), { ok: false, outcome: 'invalid' }, 'no such user');

  // The bind cache: the same credentials again are not sent to the directory.
  t.match(await v.verify('127.0.0.12', 'eleve.cm1', 'Soleil-2026'), { ok: true, outcome: 'cached', id: '1000001' });
  t.match(v.cached('127.0.0.12', 'eleve.cm1', 'Soleil-2026'), { ok: true, outcome: 'cached' }, 'synchronous hit');
  t.equal(v.cached('127.0.0.12', 'eleve.cm1', 'Soleil-2027'), null, 'another password is no hit');

  // Rate limit: 127.0.0.11 has 3 failures, the limit: even the right password is not checked now.
  t.ok(v.limited('127.0.0.11'));
  t.match(await v.verify('127.0.0.11', 'prof.ens', 'Tableau noir!'), { ok: false, outcome: 'rate-limited' }, 'not even from the cache (no guessing against it)');
  t.equal(v.cached('127.0.0.11', 'prof.ens', 'Tableau noir!'), null);
  t.notOk(v.limited('127.0.0.10'), 'other clients are not limited');
  t.match(v.counts, { ok: 3, cached: 2, invalid: 3, 'rate-limited': 1, unavailable: 0 });

  // Search-then-bind with a service account whose password is in a file.
  const pwFile = join(tmp(), 'ldap.pw');
  writeFileSync(pwFile, slapd.service.password + '\n', { mode: 0o600 });
  const search = new LdapVerifier({ url: slapd.url, searchBase: SUFFIX, searchFilter: '(&(objectClass=inetOrgPerson)(uid={login}))', searchBindDn: slapd.service.dn, searchBindPasswordFile: pwFile, idAttribute: 'employeeNumber' }, { ...opts, cacheSeconds: 0 }, silentLogger);
  t.match(await search.verify('127.0.0.20', 'prof.ens', 'Tableau noir!'), { ok: true, outcome: 'ok', id: '2000001' });
  t.match(await search.verify('127.0.0.20', 'prof.ens', 'Tableau noir!'), { ok: true, outcome: 'ok' }, 'cacheSeconds 0: asked every time');
  t.match(await search.verify('127.0.0.20', 'prof.ens', 'faux'), { ok: false, outcome: 'invalid' });
  t.match(await search.verify('127.0.0.20', 'bloque', 'Verrou-42'), { ok: false, outcome: 'invalid' });
  t.throws(() => new LdapVerifier({ url: slapd.url, searchBase: SUFFIX, searchFilter: '(uid={login})', searchBindDn: slapd.service.dn, searchBindPasswordFile: join(tmp(), 'missing') }, opts, silentLogger), /ENOENT/, 'a missing service password file is an error at start');
  const wrongService = join(tmp(), 'wrong.pw');
  writeFileSync(wrongService, 'not-it');
  const misconfigured = new LdapVerifier({ url: slapd.url, searchBase: SUFFIX, searchFilter: '(uid={login})', searchBindDn: slapd.service.dn, searchBindPasswordFile: wrongService }, opts, silentLogger);
  t.match(await misconfigured.verify('127.0.0.21', 'prof.ens', 'Tableau noir!'), { ok: false, outcome: 'unavailable' }, 'a refused service account is our problem, not the user\'s');
  t.notOk(misconfigured.limited('127.0.0.21'));

  // Concurrent checks of the same credentials share one bind.
  const fresh = new LdapVerifier(direct, opts, silentLogger);
  const all = await Promise.all(Array.from({ length: 20 }, () => fresh.verify('127.0.0.30', 'prof.ens', 'Tableau noir!')));
  t.ok(all.every((r) => r.ok));
  t.equal(fresh.counts.ok + fresh.counts.cached, 20);

  // The gateway's Identity builds its verifier from the config; the metrics count its checks.
  const identity = new Identity(resolveConfig({ dataDir: tmp(), auth: { ldap: direct, failuresPerMinute: 3 } }), silentLogger);
  await identity.verifier!.verify('127.0.0.40', 'prof.ens', 'Tableau noir!');
  await identity.verifier!.verify('127.0.0.40', 'prof.ens', 'Tableau noir!');
  await identity.verifier!.verify('127.0.0.40', 'prof.ens', 'non');
  const metrics = createGatewayMetrics();
  metrics.bind(() => ({ snapshot: undefined, policyUpdates: { lastSuccess: 0, lastFailure: 0 }, identity }));
  const exposed = await metrics.registry.metrics();
  t.match(exposed, /^vigie_auth_checks_total\{result="ok"\} 1$/m);
  t.match(exposed, /^vigie_auth_checks_total\{result="cached"\} 1$/m);
  t.match(exposed, /^vigie_auth_checks_total\{result="invalid"\} 1$/m);
  t.match(exposed, /^vigie_sessions_active 0$/m);
  t.equal(identity.userIdFor('prof.ens', '2000001'), '2000001', 'no directory: the LDAP entry\'s id');
  t.equal(identity.userIdFor('sans.id', null), 'sans.id', 'nothing better than the login');

  // The identification step the gate runs: sessions first, then Basic where the network requires it.
  const required = { profile: 'cycle3', name: 'salle', auth: 'required', network: '127.0.0.0/8', unauthenticatedProfile: null } as const;
  const open = { profile: 'cycle3', name: 'cdi', auth: 'none', network: '127.0.0.0/8', unauthenticatedProfile: null } as const;
  const at = (i: Identification | Promise<Identification>) => Promise.resolve(i);
  const auth = { ...identity['config'].auth, realm: 'Vigie' };
  const who = (client: string, network: typeof required | typeof open, proxyAuthorization: string | undefined) =>
    identify(identity, { client, mode: 'explicit', method: 'GET', host: 'www.site.test', port: 80, path: '/', proxyAuthorization }, network, auth);
  t.same(await at(who('127.0.0.50', open, undefined)), ANONYMOUS, 'a network without auth: anonymous');
  t.match(await at(who('127.0.0.50', required, undefined)), { status: 407, challenge: 'Basic realm="Vigie", charset="UTF-8"' });
  t.match(await at(who('127.0.0.50', required, basic('prof.ens', 'non'))), { status: 407, reason: 'wrong login or password' });
  const first = who('127.0.0.51', required, basic('eleve.cm1', 'Soleil-2026'));
  t.ok(first instanceof Promise, 'not yet checked: the directory is asked');
  t.same(await first, { user: '1000001', profile: undefined }, 'the entry\'s AAF id; no directory imported: the network\'s profile');
  const again = who('127.0.0.51', required, basic('eleve.cm1', 'Soleil-2026'));
  t.notOk(again instanceof Promise, 'a cached check answers synchronously');
  identity.sessions.open('127.0.0.52', '1000001', 60_000, 'test');
  t.same(who('127.0.0.52', required, undefined), { user: '1000001', profile: undefined }, 'a session identifies without credentials');
  t.same(who('127.0.0.52', open, undefined), { user: '1000001', profile: undefined }, 'in any network');
  for (let i = 0; i < 3; i++) await who('127.0.0.55', required, basic('prof.ens', `essai${i}`));
  t.match(await who('127.0.0.55', required, basic('prof.ens', 'Tableau noir!')), { status: 429, challenge: null }, 'past the failures: 429, not another prompt');

  // The directory down: cached successes still pass, anything else is "unavailable", not "invalid".
  await slapd.stop();
  stopped = true;
  t.match(await v.verify('127.0.0.10', 'eleve.cm1', 'Soleil-2026'), { ok: true, outcome: 'cached' });
  t.match(await v.verify('127.0.0.13', 'prof.ens', 'autre'), { ok: false, outcome: 'unavailable' });
  t.notOk(v.limited('127.0.0.13'), 'an unavailable directory does not count against the client');
  t.match(await who('127.0.0.53', required, basic('prof.ens', 'autre')), { status: 503, challenge: null });
  t.same(who('127.0.0.51', required, basic('eleve.cm1', 'Soleil-2026')), { user: '1000001', profile: undefined }, 'cached logins still browse');
  for (let i = 0; i < 3; i++) await who('127.0.0.54', required, basic('x', String(i)));
  t.match(await who('127.0.0.54', required, basic('x', 'y')), { status: 503 }, 'unavailable is not a failure of the client');
});
