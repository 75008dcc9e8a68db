import { generateKeyPairSync } from 'node:crypto';
import { statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { alertsFile } from '../src/alerts/store.js';
import { createGatewayMetrics } from '../src/metrics/registry.js';
import { matchTerms, parseTerms, searchQueryOf } from '../src/alerts/terms.js';
import { signBundle } from '../src/supervision/bundle.js';
import { serveLoopback, startGateway, tmp, viaProxy, writeLists } from './helpers.js';
import { startApi } from './supervision-helpers.js';

const LISTS = { agressif: { domains: ['fight.test'] }, drogue: { domains: ['weed.test'] }, malware: { domains: ['evil.test'] }, games: { domains: ['games.test'] } };
const rules = { mode: 'blocklist', categories: ['agressif', 'drogue', 'malware', 'games'] };
const profiles = { college: rules, staff: rules };
const hosts = Object.fromEntries(['fight.test', 'weed.test', 'evil.test', 'games.test'].map((h) => [h, '127.0.0.1']));

t.test('safeguarding thresholds, dedup, rate limit, roles, acknowledge and dismiss; security events', async (t) => {
  const posts: any[] = [];
  const hook = await serveLoopback(http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => (posts.push(JSON.parse(Buffer.concat(chunks).toString())), res.writeHead(204).end()));
  }));
  // The academy serves a bundle signed with a key that is not the configured one.
  const pub = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const wrong = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const academy = http.createServer((_q, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(signBundle({ version: 1, profiles: {}, lists: {} } as never, wrong))));
  await new Promise<void>((r) => academy.listen(0, '127.0.0.1', r));
  const h = await startApi(
    { clients: [{ network: '127.0.0.10/32', profile: 'staff' }, { network: '127.0.0.0/24', profile: 'college' }], profiles, hosts, notifications: { webhooks: [`http://127.0.0.1:${hook.port}/alerts`] }, alerts: { maxPerHour: 3, profiles: { staff: { watch: [] } } } },
    { lists: writeLists(tmp(), LISTS), supervision: { fleet: { url: `http://127.0.0.1:${(academy.address() as AddressInfo).port}/bundle.json`, publicKey: pub, intervalSeconds: 3600 } } },
  );
  t.teardown(async () => {
    await h.close();
    await hook.close();
    academy.close();
  });
  const engine = h.gw.gateway.alerts!;
  const port = h.gw.port;
  const hit = (host: string, from = '127.0.0.1') => viaProxy(port, `http://${host}/page?q=private+words`, { localAddress: from });
  const referent = await h.tokenFor('referent');
  const supervisor = await h.tokenFor('supervisor');
  const list = async (token: string, q = '') => (await h.api('GET', `/api/v1/alerts${q}`, { token })).json;

  t.test('a refused fleet bundle is a security event', async (t) => {
    while (h.sup.fleet!.status.lastOutcome === null) await new Promise((r) => setTimeout(r, 10));
    await engine.settled();
    t.match(posts.shift(), { kind: 'alert.security', type: 'bundle-refused', severity: 'error', details: { reason: 'signature' } });
  });

  t.test('5 watched blocks in 10 minutes from one client raise one alert, naming why', async (t) => {
    for (let i = 0; i < 4; i++) t.equal((await hit('fight.test')).status, 403);
    await hit('games.test'); // blocked, not watched
    for (let i = 0; i < 5; i++) await hit('fight.test', '127.0.0.10'); // staff: alerts.profiles.staff.watch is empty
    await engine.settled();
    t.equal(posts.length, 0, 'below the threshold: nothing');
    await hit('weed.test');
    await engine.settled();
    t.equal(posts.length, 1);
    const p = posts.shift();
    t.match(p, { kind: 'alert.safeguarding', severity: 'warning', category: 'agressif', categories: ['agressif', 'drogue'], profile: 'college', client: '127.0.0.1', count: 5, rule: /5 blocked requests .* within 10 minutes/ });
    t.same(Object.keys(p.evidence[0]).sort(), ['host', 'time'], 'host and time only');
    t.notOk(JSON.stringify(p).includes('private'), 'no path nor query');
    t.notOk(JSON.stringify(p).includes('games.test'), 'no unwatched browsing');
    // Deduplicated: more hits go to the open alert, no new notification.
    await hit('fight.test');
    await hit('fight.test');
    await engine.settled();
    t.equal(posts.length, 0);
    const [a] = (await list(referent)).alerts;
    t.match(a, { type: 'watch', count: 7, status: 'open', subject: '127.0.0.1' });
  });

  t.test('malware from a device: a security event, for the supervisor not the referent', async (t) => {
    await hit('evil.test', '127.0.0.2');
    await hit('evil.test', '127.0.0.2');
    await engine.settled();
    t.match(posts.shift(), { kind: 'alert.security', type: 'malware', client: '127.0.0.2', category: 'malware' });
    t.equal(posts.length, 0, 'the second hit is deduplicated');
    t.same((await list(referent)).alerts.map((a: any) => a.kind), ['safeguarding']);
    t.same((await list(supervisor)).alerts.map((a: any) => a.type).sort(), ['bundle-refused', 'malware']);
    t.equal((await h.api('GET', '/api/v1/alerts?kind=security', { token: referent })).status, 403);
    t.equal((await h.api('GET', '/api/v1/alerts', { token: await h.tokenFor('teacher') })).status, 403);
  });

  t.test('acknowledge and dismiss: audited; a dismissal needs a reason; new hits raise a new alert', async (t) => {
    const [a] = (await list(referent)).alerts;
    const bad = await h.api('POST', `/api/v1/alerts/${a.id}`, { token: referent, body: { action: 'dismiss' } });
    t.equal(bad.status, 400);
    t.match(bad.json.problems, [{ field: 'body/reason' }]);
    const ok = await h.api('POST', `/api/v1/alerts/${a.id}`, { token: referent, body: { action: 'acknowledge', reason: 'vu avec le CPE' } });
    t.equal(ok.status, 200);
    t.match(ok.json.alert, { status: 'acknowledged', reason: 'vu avec le CPE', by: /referent/ });
    t.equal((await h.api('POST', `/api/v1/alerts/${a.id}`, { token: referent, body: { action: 'dismiss', reason: 'fausse alerte' } })).status, 409);
    const audit = (await h.api('GET', '/api/v1/audit?action=alert', {})).json.entries;
    t.ok(audit.some((e: any) => e.action === 'alert.acknowledge' && e.details.from === 'open' && e.details.to === 'acknowledged' && e.details.reason === 'vu avec le CPE'));
    for (let i = 0; i < 5; i++) await hit('fight.test');
    await engine.settled();
    // Rate limit (maxPerHour 3: bundle, watch, malware sent): kept in the queue, not notified.
    t.equal(posts.length, 0, 'over alerts.maxPerHour: not notified');
    t.equal(engine.counts.suppressed, 1);
    const open = (await list(referent, '?status=open')).alerts;
    t.equal(open.length, 1, 'a new alert after the acknowledgement');
    t.not(open[0].id, a.id);
  });

  t.test('repeated API authentication failures and a config change outside the API', async (t) => {
    for (let i = 0; i < 10; i++) await h.api('GET', '/api/v1/alerts', { token: 'not-a-token' });
    const { restartNeeded } = await h.gw.gateway.reload({ ...h.gw.config, alerts: { ...h.gw.config.alerts, dedupMinutes: 30 } });
    t.same(restartNeeded, [], 'alerts apply at reload (SIGHUP), the terms file is read again');
    t.equal(h.gw.gateway.config.alerts.dedupMinutes, 30);
    const types = (await list(h.admin, '?kind=security')).alerts.map((a: any) => a.type);
    t.ok(types.includes('auth-failures'));
    t.ok(types.includes('config-changed'));
  });

  t.test('the metrics the Prometheus rules read', async (t) => {
    const m = createGatewayMetrics();
    m.bind(() => h.gw.gateway);
    const text = await m.registry.metrics();
    t.match(text, /vigie_alerts_raised_total\{kind="safeguarding",type="watch",severity="warning"\} 2/);
    t.match(text, /vigie_alerts_raised_total\{kind="security",type="bundle-refused",severity="error"\} 1/);
    t.match(text, /vigie_alerts_open\{kind="safeguarding"\} 1/);
    t.match(text, /vigie_alert_notifications_total\{outcome="suppressed"\} [1-9]/);
    t.match(text, /vigie_api_auth_failures_total 10/);
  });

  t.test('pseudonyms and the file', async (t) => {
    t.match(engine.pseudonym('jdupont'), /^user:[0-9a-f]{12}$/);
    t.equal(engine.pseudonym('jdupont'), engine.pseudonym('jdupont'));
    t.equal(statSync(alertsFile(h.gw.config.dataDir)).mode & 0o777, 0o600);
    const all = engine.alerts!.list({ kinds: ['safeguarding', 'security'], limit: 1000 }).length;
    t.ok(all >= 5);
    t.equal(engine.alerts!.purge(365, Date.now() + 366 * 86_400_000), all, 'purged past the journal retention');
  });
});

t.test('lists that cannot load: failing closed is a critical security event', async (t) => {
  const gw = await startGateway({ clients: [{ network: '127.0.0.0/24', profile: 'college' }], profiles }, '/nonexistent/ut1');
  t.teardown(() => gw.close());
  const [a] = gw.gateway.alerts!.alerts!.list({ kinds: ['security'], limit: 10 });
  t.match(a, { type: 'fail-closed', severity: 'critical' });
});

t.test('watched search terms: whole words, case and accents folded, phrases in order', async (t) => {
  const terms = parseTerms('# commentaire\narme\n\nse faire du mal  # phrase\nÉcole buissonnière\n');
  t.equal(terms.size, 3);
  t.equal(matchTerms(terms, 'comment acheter une ARME'), 'arme');
  t.equal(matchTerms(terms, 'armoire alarme armes'), null, 'whole words only');
  t.equal(matchTerms(terms, 'comment se faire du mal'), 'se faire du mal');
  t.equal(matchTerms(terms, 'mal du faire se'), null);
  t.equal(matchTerms(terms, 'ecole BUISSONNIERE'), 'ecole buissonniere');
  t.equal(matchTerms(parseTerms(''), 'arme'), null);
  t.throws(() => parseTerms('a b c d e f g', 'terms.txt'), /terms.txt:1: a term has at most 6 words/);
  t.equal(searchQueryOf('/search?q=se+faire%20du+mal&hl=fr'), 'se faire du mal');
  t.equal(searchQueryOf('/search'), null);
});
