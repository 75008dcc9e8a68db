import { readFileSync } from 'node:fs';
import net from 'node:net';
import t from 'tap';
import { startPortal } from '../src/auth/portal.js';
import { PORTAL_FAILURES_AUDITED_PER_SOURCE } from '../src/auth/portal-audit.js';
import { resolveConfig } from '../src/config/load.js';
import { importFiles } from '../src/directory/import.js';
import { Directory } from '../src/directory/store.js';
import { silentLogger } from '../src/log.js';
import { pacScript } from '../src/proxy/pac.js';
import { AuditLog, type AuditEntry } from '../src/supervision/audit.js';
import { aafName, pupil, writeAaf } from './aaf-helpers.js';
import { connectTunnel, startGateway, startOrigin, testCert, tmp, viaProxy } from './helpers.js';
import { hiddenFields, portalCall, portalLogin } from './portal-helpers.js';
import { PEOPLE, slapdMissing, startSlapd, TEST_USERS } from './slapd-helpers.js';

const skip = slapdMissing();

/** A plain-HTTP request caught by the transparent listener (origin form, Host header). */
function transparentGet(port: number, host: string, path: string, from: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress: from });
    let buf = '';
    s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    s.on('data', (d) => (buf += d.toString('latin1')));
    s.on('end', () => resolve(buf));
    s.on('error', reject);
  });
}

t.test('captive portal: redirect, login against slapd, profile and journal, logout, idle expiry', { skip }, async (t) => {
  const slapd = await startSlapd([...TEST_USERS, { uid: 'theo', password: 'Collège-3e', aafId: '1000003' }]);
  t.teardown(() => slapd.stop());
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const dataDir = tmp();
  const dir = Directory.open(dataDir);
  await importFiles([writeAaf(tmp(), aafName('0781234A', 'Complet', '20260901', 'Eleve'), [pupil('1000003', { mef: '10310019110' })])], dir);
  dir.close();
  const gw = await startGateway({
    dataDir,
    clients: [
      { network: '127.0.0.0/28', profile: 'cycle1', auth: 'required', unauthenticatedProfile: 'ent', name: 'wifi' },
      { network: '127.0.0.16/28', profile: 'cycle1', auth: 'required', name: 'tablettes' },
    ],
    profiles: {
      ent: { mode: 'allowlist', categories: [], allow: ['ent.test'] },
      cycle1: { mode: 'allowlist', categories: ['child'] },
      college: { mode: 'blocklist', categories: ['adult'] },
    },
    hosts: { 'www.site.test': '127.0.0.1', 'ent.test': '127.0.0.1', 'adult.test': '127.0.0.1' },
    connectPorts: [443, origin.port],
    transparent: { http: [{ host: '127.0.0.1', port: 0, targetPort: origin.port }] },
    auth: {
      ldap: { url: slapd.url, bindDn: `uid={login},${PEOPLE}`, idAttribute: 'employeeNumber' },
      failuresPerMinute: 3,
      portal: { listen: { host: '127.0.0.1', port: 0 }, idleMinutes: 0.01, explicit: 'portal' },
    },
  });
  t.teardown(() => gw.close());
  const identity = gw.gateway.identity;
  const auditLog = new AuditLog(dataDir);
  const portal = await startPortal({ config: () => gw.gateway.config, identity, clients: () => gw.gateway.snapshot.clients, log: silentLogger, audit: () => auditLog }, testCert());
  t.teardown(() => portal.close());
  const base = portal.url;
  const site = `http://www.site.test:${origin.port}/small`;
  const t0 = Date.now();

  // Before the login: plain HTTP goes to the portal (transparent and explicit), TLS gets the ENT only.
  const caught = await transparentGet(gw.gateway.transparentListening[0]!.port, `www.site.test:${origin.port}`, '/small?x=1', '127.0.0.2');
  t.match(caught, /^HTTP\/1\.1 302 /, 'transparent HTTP: 302');
  const location = /\r\nLocation: (\S+)\r\n/.exec(caught)?.[1] ?? '';
  t.ok(location.startsWith(`${base}/?to=${encodeURIComponent(`http://www.site.test:${origin.port}/small?x=1`)}&sig=`), `to the portal with the URL asked for: ${location}`);
  const explicit = await viaProxy(gw.port, site, { localAddress: '127.0.0.2' });
  t.equal(explicit.status, 302, 'explicit without credentials (explicit: "portal"): 302 too');
  t.equal((await connectTunnel(gw.port, `ent.test:${origin.port}`, '127.0.0.2')).status, 200, 'unauthenticated CONNECT to the ENT: the unauthenticatedProfile allows it');
  t.equal((await connectTunnel(gw.port, `www.site.test:${origin.port}`, '127.0.0.2')).status, 403, 'anything else: blocked');
  t.equal((await connectTunnel(gw.port, `ent.test:${origin.port}`, '127.0.0.17')).status, 403, 'a network without unauthenticatedProfile: blocked (fail closed)');

  // The login page: strict CSP, the return URL kept only when signed.
  const page = await portalCall(base, 'GET', new URL(location).search ? `/${new URL(location).search}` : '/', { from: '127.0.0.2' });
  t.equal(page.status, 200);
  t.match(page.headers['content-security-policy'], /default-src 'none'/);
  t.notMatch(page.headers['content-security-policy'], /unsafe-inline/);
  t.match(page.body, /<html lang="fr">/, 'French first');
  t.match(page.body, /<label for="login">Identifiant<\/label>/);
  t.notMatch(page.body, /<script|style="/, 'no inline code');
  t.equal(hiddenFields(page.body).to, `http://www.site.test:${origin.port}/small?x=1`);
  const english = await portalCall(base, 'GET', '/', { from: '127.0.0.2', headers: { 'accept-language': 'en-GB,en;q=0.9' } });
  t.match(english.body, /<html lang="en">[\s\S]*Log in/);
  const forged = await portalCall(base, 'GET', `/?to=${encodeURIComponent('https://evil.test/')}&sig=AAAA`, { from: '127.0.0.2' });
  t.notOk(hiddenFields(forged.body).to, 'an unsigned return URL is dropped');
  t.equal((await portalCall(base, 'GET', '/', { from: '127.0.0.200' })).status, 403, 'an address outside the client networks cannot log in');

  // CSRF: no token, or another site's origin, is refused.
  const fields = hiddenFields(page.body);
  t.equal((await portalCall(base, 'POST', '/login', { from: '127.0.0.2', form: { login: 'theo', password: 'Collège-3e' } })).status, 403, 'no token: 403');
  t.equal((await portalCall(base, 'POST', '/login', { from: '127.0.0.2', form: { ...fields, login: 'theo', password: 'Collège-3e' }, headers: { origin: 'https://evil.test' } })).status, 403, 'another origin: 403');
  t.equal((await portalCall(base, 'POST', '/login', { from: '127.0.0.3', form: { ...fields, login: 'theo', password: 'Collège-3e' } })).status, 403, 'a token from another address: 403');
  t.equal(identity.sessions.size, 0);

  // Wrong password, then the right one with an unsigned return URL: no redirect off the portal.
  const wrong = await portalLogin(base, '127.0.0.2', 'theo', 'faux');
  t.equal(wrong.status, 401, 'wrong password: 401');
  t.match(wrong.body, /role="alert">Identifiant ou mot de passe incorrect/);
  const ok = await portalLogin(base, '127.0.0.2', 'theo', 'Collège-3e', new URL(location).search);
  t.match(ok.body, new RegExp(`<meta http-equiv="refresh" content="1;url=http://www\\.site\\.test:${origin.port}/small\\?x=1">`), 'back to the page asked for');
  t.match(identity.sessions.lookup('127.0.0.2'), { user: '1000003', source: 'portal' });
  const other = hiddenFields((await portalCall(base, 'GET', '/', { from: '127.0.0.6' })).body);
  const openRedirect = await portalCall(base, 'POST', '/login', { from: '127.0.0.6', form: { ...other, to: 'https://evil.test/', sig: fields.sig!, login: 'theo', password: 'Collège-3e' } });
  t.equal(openRedirect.status, 200, 'logged in');
  t.notMatch(openRedirect.body, /evil\.test/, 'a return URL whose signature does not match is not followed (no open redirect)');

  // Logged in: the user's profile (college: adult blocked, the rest allowed), HTTPS too.
  t.equal((await viaProxy(gw.port, site, { localAddress: '127.0.0.2' })).status, 200, 'browses');
  t.equal((await viaProxy(gw.port, `http://adult.test:${origin.port}/small`, { localAddress: '127.0.0.2' })).status, 403, 'with the college profile');
  t.equal((await connectTunnel(gw.port, `www.site.test:${origin.port}`, '127.0.0.2')).status, 200, 'HTTPS beyond the ENT once logged in');
  t.match(await transparentGet(gw.gateway.transparentListening[0]!.port, `www.site.test:${origin.port}`, '/small', '127.0.0.2'), /^HTTP\/1\.1 200 /, 'transparent too');

  // Rate limit: three failures from one address, then even the right password gets 429.
  for (let i = 0; i < 3; i++) await portalLogin(base, '127.0.0.4', 'theo', `x${i}`);
  const limited = await portalLogin(base, '127.0.0.4', 'theo', 'Collège-3e');
  t.equal(limited.status, 429, 'rate limited');
  t.equal(identity.sessions.lookup('127.0.0.4'), null);
  for (let i = 0; i < 3; i++) t.equal((await portalLogin(base, '127.0.0.4', 'theo', 'Collège-3e')).status, 429);

  // Logout ends the binding: HTTP goes to the portal again.
  const connected = await portalCall(base, 'GET', '/', { from: '127.0.0.2' });
  t.match(connected.body, /Connecté en tant que <strong>1000003<\/strong>/);
  const out = await portalCall(base, 'POST', '/logout', { from: '127.0.0.2', form: hiddenFields(connected.body) });
  t.match(out.body, /Vous êtes déconnecté/);
  t.equal((await viaProxy(gw.port, site, { localAddress: '127.0.0.2' })).status, 302, 'after logout: the portal again');

  // Idle expiry (0.6 s here): traffic keeps the session, silence ends it.
  t.equal((await portalLogin(base, '127.0.0.5', 'theo', 'Collège-3e')).status, 200);
  for (let i = 0; i < 6; i++) {
    await new Promise((r) => setTimeout(r, 200));
    t.equal((await viaProxy(gw.port, site, { localAddress: '127.0.0.5' })).status, 200, `still logged in while browsing (${(i + 1) * 200} ms)`);
  }
  await new Promise((r) => setTimeout(r, 1000));
  t.equal(identity.sessions.list().find((s) => s.address === '127.0.0.5'), undefined, 'swept after 0.6 s without traffic');
  t.equal((await viaProxy(gw.port, site, { localAddress: '127.0.0.5' })).status, 302, 'then redirected to the portal');

  const cfg = gw.gateway.config;
  const pac = pacScript({ ...cfg, auth: { ...cfg.auth, portal: { ...cfg.auth.portal!, url: 'https://Portail.ecole.test:8444' } } }, '10.0.0.1:3128');
  t.match(pac, /if \(host === "portail\.ecole\.test"\) return "DIRECT";/, 'the PAC file sends the portal DIRECT');

  await new Promise((r) => setTimeout(r, 100));
  const journal = gw.gateway.journal!;
  await journal.flush();
  const rows = journal.search({ from: t0 - 1000 }, { limit: 200 }).rows;
  const logged = rows.filter((r) => r.client === '127.0.0.2' && r.user !== null);
  t.equal(logged.length, 4, 'the logged-in requests and tunnel of 127.0.0.2');
  t.ok(logged.every((r) => r.user === '1000003' && r.profile === 'college'));
  t.match(rows.filter((r) => r.user === null && r.client === '127.0.0.2').map((r) => [r.host, r.profile, r.decision]), [['ent.test', 'ent', 'allow'], ['www.site.test', 'ent', 'block']], 'before login: the unauthenticatedProfile decided the tunnels; redirects are not recorded');
  t.match(rows.find((r) => r.client === '127.0.0.17'), { rule: 'fail-closed', decision: 'block' });

  // The audit log: logins and logouts by pseudonymous id and address; failures without a user,
  // bounded per address and minute, the rest counted when the portal stops.
  const audited = (await auditLog.query({ limit: 100, action: 'portal' })).reverse();
  const brief = (e: AuditEntry) => [e.action, e.source, e.actor, e.outcome, e.status];
  t.same(audited.filter((e) => e.outcome === 'ok').map(brief), [
    ['portal.login', '127.0.0.2', '1000003', 'ok', 200],
    ['portal.login', '127.0.0.6', '1000003', 'ok', 200],
    ['portal.logout', '127.0.0.2', '1000003', 'ok', 200],
    ['portal.login', '127.0.0.5', '1000003', 'ok', 200],
  ]);
  t.match(audited.find((e) => e.action === 'portal.login' && e.outcome === 'ok'), { role: 'portal', target: '1000003' });
  const failed = audited.filter((e) => e.outcome === 'refused');
  t.same(failed.map((e) => [e.source, e.actor, e.target, e.status, e.details?.reason]), [
    ['127.0.0.2', '-', null, 401, 'invalid'],
    ...[0, 1, 2].map(() => ['127.0.0.4', '-', null, 401, 'invalid']),
    ...[0, 1].map(() => ['127.0.0.4', '-', null, 429, 'rate-limited']),
  ], `failures: ${PORTAL_FAILURES_AUDITED_PER_SOURCE} per address and minute, no user named`);
  await portal.close();
  const [summary] = await auditLog.query({ limit: 10, action: 'portal.suppressed' });
  t.match(summary, { actor: 'vigie', details: { failed: 2, byStatus: { 429: 2 }, sources: [{ source: '127.0.0.4', count: 2 }] } }, 'the rest counted');
  const text = readFileSync(auditLog.file, 'utf8');
  t.notMatch(text, /theo|Collège|faux/, 'neither the login nor a password in the audit log');
});

t.test('portal config: errors name the path', async (t) => {
  const ldap = { url: 'ldap://127.0.0.1:1', bindDn: 'uid={login},dc=test' };
  const listen = { host: '127.0.0.1', port: 0 };
  t.throws(() => resolveConfig({ auth: { portal: { listen } } }), /\/auth\/portal: the portal checks logins against LDAP/);
  t.throws(() => resolveConfig({ auth: { ldap, portal: { listen, url: 'http://portail.test/' } } }), /\/auth\/portal\/url: must match pattern/);
  t.throws(() => resolveConfig({ auth: { ldap, portal: { listen, cert: '/x.pem' } } }), /\/auth\/portal: set both "cert" and "key"/);
  t.throws(() => resolveConfig({ clients: [{ network: '10.0.0.0/8', profile: 'college', unauthenticatedProfile: 'nope' }] }), /\/clients\/0\/unauthenticatedProfile: unknown profile "nope"/);
  t.match(resolveConfig({ auth: { ldap, portal: { listen } } }).auth.portal, { idleMinutes: 30, explicit: 'challenge', url: null, cert: null, key: null });
});
