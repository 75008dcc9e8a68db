// TLS interception with the school CA (issue #24): the CLI's CA, block pages over HTTPS, full-URL
// decisions, exclusions, strict upstream verification, the leaf cache. Real sockets on loopback,
// `.test` names through the config's host map; node's TLS clients trust the school CA.
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { join } from 'node:path';
import t from 'tap';
import { resolveConfig } from '../src/config/load.js';
import { decide } from '../src/policy/decide.js';
import { InterceptExclusions, tlsTreatment } from '../src/policy/interception.js';
import { requestFor } from '../src/policy/request.js';
import type { ConnectionRecord } from '../src/proxy/events.js';
import { connectTunnel, startGateway, tmp, writeLists } from './helpers.js';
import { startFullInterception, startNamedOrigins, tlsRequests, vigie, writeJson } from './intercept-helpers.js';

const data = tmp();
const init = await vigie('ca', 'init', '--name', 'École Jules Ferry', '--data', data);

t.test('vigie ca init and show: an ECDSA CA, key 0600, certificate as PEM and DER', async (t) => {
  t.equal(init.code, 0, init.stderr);
  const dir = join(data, 'ca');
  t.match(init.stdout, join(dir, 'ca.cert.der'), 'prints where the files are');
  t.equal(statSync(join(dir, 'ca.key.pem')).mode & 0o777, 0o600, 'the key is readable by its owner only');
  const pem = new X509Certificate(readFileSync(join(dir, 'ca.cert.pem')));
  const der = new X509Certificate(readFileSync(join(dir, 'ca.cert.der')));
  t.equal(pem.fingerprint256, der.fingerprint256, 'PEM and DER hold the same certificate');
  t.ok(pem.ca, 'a CA certificate');
  t.ok(pem.verify(pem.publicKey), 'self-signed, with a signature node:crypto verifies');
  t.match(pem.subject, /CN=École Jules Ferry/);
  const show = await vigie('ca', 'show', '--data', data);
  t.equal(show.code, 0, show.stderr);
  t.match(show.stdout, pem.fingerprint256, 'show prints the SHA-256 fingerprint');
  t.match(show.stdout, /expires: +20\d\d-/);
  const again = await vigie('ca', 'init', '--data', data);
  t.equal(again.code, 2, 'a second init refuses to replace the CA devices trust');
  t.match(again.stderr, /already exists/);
});

t.test('config: intercept per profile, interception at the top level', async (t) => {
  t.throws(() => resolveConfig({ profiles: { cycle3: { mode: 'blocklist', intercept: 'yes' } } }), /intercept: must be one of "off", "block-pages", "full"/);
  const c = resolveConfig({ interception: { exclude: { domains: ['a.test'] } } });
  t.same(c.interception.exclude, { categories: ['bank'], domains: ['a.test'], shipped: true }, 'naming domains keeps the bank category and the shipped list');
  t.equal(c.profiles.cycle3!.intercept, undefined, 'off by default');
});

const origins = await startNamedOrigins();
t.teardown(() => origins.close());
const schoolCa = readFileSync(join(data, 'ca', 'ca.cert.pem'), 'utf8');
const rows: ConnectionRecord[] = [];
// The academy's watched search terms (issue #28): looked at only inside `intercept: "full"`.
const termsFile = join(data, 'terms.txt');
writeFileSync(termsFile, '# test\narme\n');
const names = ['good.test', 'expired.test', 'wrong.test', 'adult.test', 'bank.test', 'excluded.test', 'ameli.fr'];
const g = await startGateway(
  {
    dataDir: data,
    hosts: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])),
    connectPorts: [origins.port],
    httpPorts: ['1-65535'],
    clients: [
      { network: '127.0.0.1/32', profile: 'full' },
      { network: '127.0.0.3/32', profile: 'pages' },
      { network: '127.0.0.4/32', profile: 'plain' },
    ],
    profiles: {
      full: { mode: 'blocklist', categories: ['adult'], intercept: 'full' },
      pages: { mode: 'blocklist', categories: ['adult'], intercept: 'block-pages' },
      plain: { mode: 'blocklist', categories: ['adult'] },
    },
    interception: { extraRoots: [origins.caFile], exclude: { domains: ['excluded.test'] } },
    transparent: { https: [{ host: '127.0.0.1', port: 0, targetPort: origins.port }] },
    alerts: { terms: termsFile },
  },
  writeLists(tmp(), { adult: { domains: ['adult.test'], urls: ['good.test/adult-corner'] }, bank: { domains: ['bank.test'] } }),
  { observers: [{ tunnelOpened: (r: ConnectionRecord) => rows.push(r), requestDone: (r: ConnectionRecord) => rows.push(r) }] },
);
t.teardown(() => g.close());
const interceptor = g.gateway.proxy.interception.interceptor!;
const at = (host: string) => `${host}:${origins.port}`;

/** CONNECT from `from`, then TLS trusting `ca` and GETs of `paths`. */
async function through(from: string, host: string, ca: string, paths = ['/']) {
  const tunnel = await connectTunnel(g.port, at(host), from);
  t.equal(tunnel.status, 200, `CONNECT ${host} from ${from} is answered 200`);
  return tlsRequests(tunnel.socket, host, ca, paths, at(host));
}

t.test('block-pages: a refused name gets the French block page over TLS, allowed names stay end to end', async (t) => {
  const [blocked] = await through('127.0.0.3', 'adult.test', schoolCa);
  t.equal(blocked!.status, 403);
  t.match(blocked!.body, /Accès bloqué/, 'the French block page');
  t.match(blocked!.body, /adult\.test/);
  t.equal(blocked!.issuer, 'École Jules Ferry', 'served with a leaf of the school CA');
  t.equal(blocked!.alpn, 'http/1.1', 'ALPN: http/1.1 only, though the client offered h2 first');
  t.match(rows.at(-1), { kind: 'tunnel', host: 'adult.test', status: 403, decision: { action: 'block', category: 'adult' } }, 'one journal row, the CONNECT');
  const allowed = await through('127.0.0.3', 'good.test', origins.caPem, ['/', '/adult-corner']);
  t.equal(allowed[0]!.issuer, 'Test origins CA', "an allowed name keeps the origin's own certificate");
  t.same(allowed.map((a) => a.status), [200, 200], 'a UT1 url entry is invisible without full interception');
});

t.test('block-pages on the transparent listener: the ClientHello of a refused name gets the block page', async (t) => {
  const port = g.gateway.transparentListening.find((l) => l.kind === 'https')!.port;
  const [blocked] = await tlsRequests(net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.3' }), 'adult.test', schoolCa, ['/']);
  t.equal(blocked!.status, 403);
  t.match(blocked!.body, /Accès bloqué/);
  t.match(rows.at(-1), { kind: 'tunnel', mode: 'transparent', host: 'adult.test', status: 403 });
});

t.test('full: allowed HTTPS through the school CA, each request decided on its URL and journaled', async (t) => {
  const before = rows.length;
  const answers = await through('127.0.0.1', 'good.test', schoolCa, ['/page?q=1', '/adult-corner']);
  t.equal(answers[0]!.issuer, 'École Jules Ferry', 'the leaf is issued by the school CA');
  t.equal(answers[0]!.status, 200);
  t.equal(answers[0]!.body, `origin ${at('good.test')} /page?q=1\n`, 'forwarded to the origin, verified with interception.extraRoots');
  t.equal(answers[1]!.status, 403, 'the UT1 url entry on an allowed host is blocked');
  t.match(answers[1]!.body, /Accès bloqué/);
  const mine = rows.slice(before);
  t.match(mine, [
    { kind: 'tunnel', host: 'good.test', status: 200, mode: 'explicit' },
    { kind: 'request', mode: 'intercepted', method: 'GET', host: 'good.test', path: '/page?q=1', status: 200, decision: { action: 'allow' } },
    { kind: 'request', mode: 'intercepted', host: 'good.test', path: '/adult-corner', status: 403, decision: { action: 'block', category: 'adult' } },
  ]);
  const [fronted] = await through('127.0.0.1', 'good.test', schoolCa, ['/']).then(() => tlsRequestsFronted());
  t.equal(fronted!.status, 421, 'a Host other than the name connected to is refused (no domain fronting)');
});

t.test('full: a search with a watched term raises one safeguarding alert naming the term, not the query', async (t) => {
  const store = g.gateway.alerts!.alerts!;
  const terms = () => store.list({ kinds: ['safeguarding'], limit: 100 }).filter((a) => a.type === 'terms');
  await through('127.0.0.1', 'good.test', schoolCa, ['/search?q=acheter+une+ARMOIRE', '/search?q=acheter+une+%C3%A2rme', '/search?q=ARME+de+poing']);
  // Records reach the observers as each exchange ends: wait for the alert a moment at most.
  for (let i = 0; i < 40 && terms().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  const raised = terms();
  t.equal(raised.length, 1, 'two matching searches from one client: one alert (deduplicated)');
  t.match(raised[0], { type: 'terms', profile: 'full', subject: '127.0.0.1', categories: ['terms'] });
  t.match(raised[0]!.evidence[0], { host: 'good.test', term: 'arme' });
  t.notMatch(JSON.stringify(raised[0]), /acheter|poing|search\?/, 'the query itself is not kept');
  // The same search through a block-pages profile (tunnelled untouched) is never read.
  const c = await connectTunnel(g.port, at('good.test'), '127.0.0.3');
  await tlsRequests(c.socket, 'good.test', origins.caPem, ['/search?q=arme'], at('good.test'));
  await new Promise((r) => setTimeout(r, 100));
  t.same(terms().map((a) => a.subject), ['127.0.0.1'], 'no alert for the tunnelled search');
});

async function tlsRequestsFronted() {
  const tunnel = await connectTunnel(g.port, at('good.test'), '127.0.0.1');
  return tlsRequests(tunnel.socket, 'good.test', schoolCa, ['/'], at('adult.test'));
}

t.test('full: a WebSocket upgrade is decided on its URL, then relayed to the verified origin', async (t) => {
  const upgrade = async (path: string) => {
    const tunnel = await connectTunnel(g.port, at('good.test'), '127.0.0.1');
    const s = tls.connect({ socket: tunnel.socket, servername: 'good.test', ca: schoolCa });
    await once(s, 'secureConnect');
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${at('good.test')}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
    const [first] = (await once(s, 'data')) as [Buffer];
    return { s, head: first.toString() };
  };
  const ok = await upgrade('/ws');
  t.match(ok.head, /^HTTP\/1\.1 101 /, 'switched');
  ok.s.write('ping');
  const [echo] = (await once(ok.s, 'data')) as [Buffer];
  t.equal(echo.toString(), 'ping', 'bytes flow both ways');
  ok.s.destroy();
  const blocked = await upgrade('/adult-corner');
  t.match(blocked.head, /^HTTP\/1\.1 403 /, 'an upgrade to a blocked URL is refused');
  blocked.s.destroy();
});

t.test('full: excluded hosts keep the origin certificate (domain, bank category, shipped list)', async (t) => {
  for (const host of ['excluded.test', 'bank.test', 'ameli.fr']) {
    const [a] = await through('127.0.0.1', host, origins.caPem);
    t.equal(a!.issuer, 'Test origins CA', `${host}: end to end`);
    t.equal(a!.status, 200);
  }
});

t.test('full: an origin with an expired or wrong-name certificate gives the error page, never a connection', async (t) => {
  for (const host of ['expired.test', 'wrong.test']) {
    const [a] = await through('127.0.0.1', host, schoolCa);
    t.equal(a!.status, 502, host);
    t.match(a!.body, /certificat présenté par ce site n’est pas valide/);
    t.match(rows.at(-1), { kind: 'request', host, problem: 'certificate', status: 502 }, 'journaled with its cause');
  }
});

t.test('the leaf cache serves a second connection without signing again', async (t) => {
  await through('127.0.0.1', 'good.test', schoolCa);
  const { issued, hits } = interceptor.leaves.stats;
  await through('127.0.0.1', 'good.test', schoolCa);
  t.equal(interceptor.leaves.stats.issued, issued, 'no new certificate');
  t.equal(interceptor.leaves.stats.hits, hits + 1, 'one cache hit');
});

t.test('a profile without interception: blocked CONNECT answered 403 as before, nothing terminated', async (t) => {
  const terminated = interceptor.stats.terminated;
  const r = await connectTunnel(g.port, at('adult.test'), '127.0.0.4');
  t.equal(r.status, 403);
  t.equal(interceptor.stats.terminated, terminated);
});

t.test('raw tunnel handles (tunnels: raw): the same interception', async (t) => {
  const raw = await startFullInterception(data, origins, { 'good.test': '127.0.0.1', 'adult.test': '127.0.0.1' }, { rawTunnels: true });
  t.teardown(() => raw.close());
  const get = async (host: string, paths: string[]) => tlsRequests((await connectTunnel(raw.port, at(host))).socket, host, schoolCa, paths, at(host));
  const answers = await get('good.test', ['/', '/adult-corner']);
  t.same(answers.map((a) => [a.status, a.issuer]), [[200, 'École Jules Ferry'], [403, 'École Jules Ferry']], 'allowed host terminated, its URL entry blocked');
  const [blocked] = await get('adult.test', ['/']);
  t.equal(blocked!.status, 403);
  t.match(blocked!.body, /Accès bloqué/);
});

t.test('a profile intercepts but there is no school CA: the gateway does not start, and says what to run', async (t) => {
  await t.rejects(startGateway({ profiles: { cycle3: { mode: 'blocklist', intercept: 'block-pages' } } }), /no school CA in .*vigie ca init/);
});

t.test('the treatment the explainers report: intercept, exclude or tunnel (vigie check --json)', async (t) => {
  const snapshot = g.gateway.snapshot!;
  const exclusions = new InterceptExclusions(g.config, snapshot);
  const treat = (url: string, client: string) => {
    const req = requestFor(`${url}:${origins.port}`, client, Date.now());
    return tlsTreatment(g.config, exclusions, decide(snapshot, req), req.host);
  };
  t.same(
    [treat('https://adult.test', '127.0.0.3'), treat('https://good.test', '127.0.0.3'), treat('https://good.test', '127.0.0.1'), treat('https://bank.test', '127.0.0.1'), treat('https://adult.test', '127.0.0.4')],
    ['intercept', 'tunnel', 'intercept', 'exclude', 'tunnel'],
  );
  const lists = writeLists(tmp(), { adult: { domains: ['adult.test'] }, bank: { domains: ['bank.test'] } });
  const config = writeJson(join(tmp(), 'config.json'), { dataDir: data, clients: [{ network: '127.0.0.1/32', profile: 'full' }], profiles: { full: { mode: 'blocklist', categories: ['adult'], intercept: 'full' } } });
  const r = await vigie('check', 'https://bank.test', '--client', '127.0.0.1', '--json', '-c', config, '-l', lists);
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), { action: 'allow', profile: 'full', tls: 'exclude' }, 'vigie check --json carries tls');
});
