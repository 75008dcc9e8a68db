// SafeSearch inside `intercept: "full"` (issue #24): the provider's parameter or header set on
// each request read inside, per the profile's settings, from lists/safesearch.json's
// `intercepted` rules; on top of the enforcing address. The provider names exist only in the
// gateway's host map (127.0.0.1, never resolved); one TLS origin answers every name, echoing the
// path and the YouTube-Restrict header it received.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { initCa } from '../src/tls/ca.js';
import { compileSafeSearch } from '../src/policy/safesearch.js';
import type { ConnectionRecord } from '../src/proxy/events.js';
import { headersWith, pathWith } from '../src/proxy/safesearch-inside.js';
import { connectTunnel, startGateway, tmp, writeLists } from './helpers.js';
import { startNamedOrigins, tlsRequests } from './intercept-helpers.js';

t.test('pathWith and headersWith replace the client value, never keep it beside ours', async (t) => {
  const safe = [['safe', 'active']] as const;
  t.equal(pathWith('/search?q=chat', safe), '/search?q=chat&safe=active');
  t.equal(pathWith('/search?safe=off&q=chat', safe), '/search?q=chat&safe=active', 'the client asked safe=off: replaced');
  t.equal(pathWith('/search?s%61fe=off&q=a+b', safe), '/search?q=a+b&safe=active', 'a percent-encoded name is the same name');
  t.equal(pathWith('/', safe), '/?safe=active');
  t.equal(pathWith('/x?q=1#frag', safe), '/x?q=1&safe=active');
  t.equal(pathWith('/x?q=1', []), '/x?q=1', 'no rules: the same path');
  t.same(headersWith(['Host', 'a', 'youtube-restrict', 'Off'], [['YouTube-Restrict', 'Strict']]), ['Host', 'a', 'YouTube-Restrict', 'Strict']);
});

t.test('lists/safesearch.json: intercepted rules are checked and compiled onto the engine values', async (t) => {
  const doc = JSON.parse(readFileSync(new URL('../lists/safesearch.json', import.meta.url), 'utf8'));
  const table = compileSafeSearch(doc);
  t.same(table.hosts.get('www.google.fr')!.retargets.on!.inside.query, [['safe', 'active']]);
  t.same(table.hosts.get('www.youtube.com')!.retargets.moderate!.inside.headers, [['YouTube-Restrict', 'Moderate']]);
  const problems = (intercepted: unknown) => {
    try {
      compileSafeSearch({ engines: { a: { setting: 'bing', hosts: ['a.test'], target: 'b.test', intercepted } } });
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };
  t.match(problems({ strict: { query: { a: '1' } } }), /\/engines\/a\/intercepted\/strict: must be one of "on"/);
  t.match(problems({ on: { query: { 'a&b': '1' } } }), /"a&b" is not a valid name/);
  t.match(problems({ on: { headers: { 'X-A': 'a b' } } }), /headers\/X-A: must be a plain value/);
  t.match(problems({ on: { cookies: {} } }), /unknown key "cookies"/);
  t.equal(problems({ on: { query: { adlt: 'strict' } } }), '', 'a good rule compiles');
});

const data = tmp();
// The CA as `vigie ca init` makes it (its CLI is tested in test/intercept.test.ts), in-process: faster.
initCa(join(data, 'ca'), 'École SafeSearch');
const schoolCa = readFileSync(join(data, 'ca', 'ca.cert.pem'), 'utf8');
const origins = await startNamedOrigins();
t.teardown(() => origins.close());
const names = ['www.google.fr', 'forcesafesearch.google.com', 'www.youtube.com', 'restrict.youtube.com', 'restrictmoderate.youtube.com', 'www.bing.com', 'strict.bing.com'];
const rows: ConnectionRecord[] = [];
const g = await startGateway(
  {
    dataDir: data,
    hosts: Object.fromEntries(names.map((n) => [n, '127.0.0.1'])),
    connectPorts: [origins.port],
    clients: [
      { network: '127.0.0.1/32', profile: 'strict' },
      { network: '127.0.0.2/32', profile: 'moderate' },
      { network: '127.0.0.3/32', profile: 'tunnelled' },
    ],
    profiles: {
      strict: { mode: 'blocklist', categories: ['adult'], intercept: 'full', safeSearch: { google: true, bing: true, youtube: 'strict' } },
      moderate: { mode: 'blocklist', categories: ['adult'], intercept: 'full', safeSearch: { google: false, bing: false, youtube: 'moderate' } },
      tunnelled: { mode: 'blocklist', categories: ['adult'], intercept: 'block-pages', safeSearch: { google: true } },
    },
    interception: { extraRoots: [origins.caFile] },
  },
  writeLists(tmp(), { adult: { domains: ['adult.test'] } }),
  { observers: [{ requestDone: (r: ConnectionRecord) => rows.push(r) }] },
);
t.teardown(() => g.close());
const at = (host: string) => `${host}:${origins.port}`;
const through = async (from: string, host: string, ca: string, path: string) => {
  const tunnel = await connectTunnel(g.port, at(host), from);
  const [a] = await tlsRequests(tunnel.socket, host, ca, [path], at(host));
  return a!;
};

t.test('full interception: the profile SafeSearch is also set by parameter and header', async (t) => {
  const google = await through('127.0.0.1', 'www.google.fr', schoolCa, '/search?q=chat&safe=off');
  t.equal(google.issuer, 'École SafeSearch', 'intercepted');
  t.equal(google.body, `origin ${at('www.google.fr')} /search?q=chat&safe=active\n`, 'safe=active replaces the pupil’s safe=off');
  t.match(rows.at(-1), { mode: 'intercepted', host: 'www.google.fr', path: '/search', decision: { retarget: { host: 'forcesafesearch.google.com' } } }, 'journaled as asked, query dropped');
  const bing = await through('127.0.0.1', 'www.bing.com', schoolCa, '/search?q=chat');
  t.equal(bing.body, `origin ${at('www.bing.com')} /search?q=chat&adlt=strict\n`);
  const yt = await through('127.0.0.1', 'www.youtube.com', schoolCa, '/watch?v=x');
  t.equal(yt.body, `origin ${at('www.youtube.com')} /watch?v=x youtube-restrict=Strict\n`);
});

t.test("the profile's level and switches decide: moderate YouTube, Google left alone", async (t) => {
  const yt = await through('127.0.0.2', 'www.youtube.com', schoolCa, '/watch?v=x');
  t.equal(yt.body, `origin ${at('www.youtube.com')} /watch?v=x youtube-restrict=Moderate\n`);
  const google = await through('127.0.0.2', 'www.google.fr', schoolCa, '/search?q=chat&safe=off');
  t.equal(google.body, `origin ${at('www.google.fr')} /search?q=chat&safe=off\n`, 'google: false — nothing added');
});

t.test('block-pages leaves allowed HTTPS untouched: the origin’s own certificate, no parameter', async (t) => {
  const google = await through('127.0.0.3', 'www.google.fr', origins.caPem, '/search?q=chat');
  t.equal(google.issuer, 'Test origins CA');
  t.equal(google.body, `origin ${at('www.google.fr')} /search?q=chat\n`);
});
