import { readFileSync } from 'node:fs';
import t from 'tap';
import { ConfigError, resolveConfig } from '../src/config/load.js';
import type { SafeSearchSettings } from '../src/config/types.js';
import { MapIndexBuilder } from '../src/lists/map-index.js';
import { BUNDLED_SAFESEARCH } from '../src/paths.js';
import { bundledSafeSearch, compileSafeSearch, SafeSearchDataError, safeSearchTarget } from '../src/policy/safesearch.js';
import { buildSnapshot, retargetFor } from '../src/policy/snapshot.js';
import { normalizeProfile, validateDraft } from '../src/policy/store.js';

const ON: SafeSearchSettings = { google: true, bing: true, duckduckgo: true, youtube: 'strict' };
const OFF: SafeSearchSettings = { google: false, bing: false, duckduckgo: false, youtube: 'off' };

t.test('the bundled mapping: every documented host to its enforcing address, nothing else', async (t) => {
  const table = bundledSafeSearch();
  t.same(table.engines, ['google', 'youtube', 'bing', 'duckduckgo']);
  const to = (host: string, s: SafeSearchSettings = ON) => safeSearchTarget(table, host, s)?.host ?? null;
  for (const h of ['www.google.fr', 'google.fr', 'www.google.com', 'google.com', 'www.google.co.uk', 'www.google.com.br', 'google.cat', 'www.google.ad']) {
    t.equal(to(h), 'forcesafesearch.google.com', h);
    t.equal(to(h, { ...ON, google: false }), null, `${h} with google off`);
  }
  for (const h of ['www.youtube.com', 'm.youtube.com', 'youtubei.googleapis.com', 'youtube.googleapis.com', 'www.youtube-nocookie.com']) {
    t.equal(to(h), 'restrict.youtube.com', `${h} strict`);
    t.equal(to(h, { ...ON, youtube: 'moderate' }), 'restrictmoderate.youtube.com', `${h} moderate`);
    t.equal(to(h, { ...ON, youtube: 'off' }), null, `${h} off`);
  }
  for (const h of ['www.bing.com', 'edgeservices.bing.com']) t.equal(to(h), 'strict.bing.com', h);
  for (const h of ['duckduckgo.com', 'www.duckduckgo.com', 'start.duckduckgo.com']) t.equal(to(h), 'safe.duckduckgo.com', h);
  // Other Google and Microsoft services, look-alikes, the targets themselves: untouched.
  for (const h of ['maps.google.fr', 'mail.google.com', 'www.google.example', 'google.fr.evil.test', 'forcesafesearch.google.com', 'restrict.youtube.com', 'bing.com', 'www.googlee.fr', 'youtube.com', 'api.duckduckgo.com']) {
    t.equal(to(h), null, `${h} stays`);
  }
  for (const h of ['www.google.fr', 'www.youtube.com', 'www.bing.com', 'duckduckgo.com']) t.equal(to(h, OFF), null, `${h} with everything off`);
  t.equal(safeSearchTarget(table, 'www.google.fr', ON), safeSearchTarget(table, 'www.google.de', ON), 'answers are built once: no allocation per request');
  const doc = JSON.parse(readFileSync(BUNDLED_SAFESEARCH, 'utf8'));
  t.equal(table.hosts.size, doc.engines.google.tlds.length * 2 + 5 + 2 + 3, 'www.google.<tld> and google.<tld> for every listed tld');
  t.ok(doc.engines.google.tlds.length >= 190, "Google's supported domains");
  for (const e of Object.values(doc.engines) as { sources: string[] }[]) t.ok(e.sources.length > 0 && e.sources.every((s) => s.startsWith('https://')), 'each engine cites its source');
});

t.test('a bad mapping is refused, each problem named by its path', async (t) => {
  const problems = (doc: unknown): string => {
    try {
      compileSafeSearch(doc, 'x.json');
      return '';
    } catch (e) {
      t.ok(e instanceof SafeSearchDataError);
      return (e as Error).message;
    }
  };
  t.match(problems(null), /\/engines: must be an object/);
  t.match(problems({ engines: { a: { setting: 'yahoo', hosts: ['a.test'], target: 'b.test' } } }), /\/engines\/a\/setting: must be one of "google"/);
  t.match(problems({ engines: { a: { setting: 'bing', hosts: ['a.test'] } } }), /\/engines\/a\/target: an enforcing host name is required/);
  t.match(problems({ engines: { a: { setting: 'youtube', hosts: ['a.test'], targets: { strict: 's.test' } } } }), /\/engines\/a\/targets\/moderate: an enforcing host name is required/);
  t.match(problems({ engines: { a: { setting: 'bing', hosts: ['A.test'], target: 'b.test' } } }), /\/engines\/a\/hosts\/0: "A.test" is not a lower-case host name/);
  t.match(problems({ engines: { a: { setting: 'bing', hosts: ['a.test'], target: 'b..test' } } }), /\/engines\/a\/target: "b..test"/);
  t.match(problems({ engines: { a: { setting: 'bing', hosts: ['www.g.{tld}'], target: 'b.test' } } }), /\/engines\/a\/hosts\/0: "\{tld\}" needs a tlds list/);
  t.match(problems({ engines: { a: { setting: 'bing', hosts: [], target: 'b.test' } } }), /\/engines\/a\/hosts: must be a non-empty list/);
  t.match(
    problems({ engines: { a: { setting: 'bing', hosts: ['x.test'], target: 'b.test' }, c: { setting: 'google', hosts: ['x.{tld}'], tlds: ['test'], target: 'g.test' } } }),
    /\/engines\/c\/hosts\/0: "x.test" is already mapped by engine "a"/,
  );
});

t.test('profile defaults: strict for cycle1–3, moderate YouTube for college, off for staff, on for new profiles', async (t) => {
  const cfg = resolveConfig({});
  for (const p of ['cycle1', 'cycle2', 'cycle3']) t.same(cfg.profiles[p]!.safeSearch, ON, p);
  t.same(cfg.profiles.college!.safeSearch, { ...ON, youtube: 'moderate' });
  t.same(cfg.profiles.staff!.safeSearch, OFF);
  const file = resolveConfig({
    profiles: {
      staff: { mode: 'blocklist', categories: ['malware'] },
      cycle2: { mode: 'blocklist', safeSearch: { youtube: 'off' } },
      lycee: { mode: 'blocklist' },
    },
  });
  t.same(file.profiles.staff!.safeSearch, OFF, 'a redefined staff keeps staff\'s default');
  t.same(file.profiles.cycle2!.safeSearch, { ...ON, youtube: 'off' }, 'given keys override, absent ones stay');
  t.same(file.profiles.lycee!.safeSearch, ON, 'a new profile starts with everything on');
  t.throws(() => resolveConfig({ profiles: { p: { mode: 'blocklist', safeSearch: { youtube: 'maybe' } } } }), ConfigError);
  t.throws(() => resolveConfig({ profiles: { p: { mode: 'blocklist', safeSearch: { google: 'yes' } } } }), /\/profiles\/p\/safeSearch\/google: must be boolean/);
  t.throws(() => resolveConfig({ profiles: { p: { mode: 'blocklist', safeSearch: { yahoo: true } } } }), /\/profiles\/p\/safeSearch: unknown key "yahoo"/);
  // The supervision API's profiles get the same defaults.
  t.same(normalizeProfile('staff', { mode: 'blocklist' }).safeSearch, OFF);
  t.same(normalizeProfile('cm2-b', { mode: 'blocklist', safeSearch: { bing: false } }).safeSearch, { ...ON, bing: false });
  const draft = await validateDraft({ profiles: { ...cfg.profiles, college: { ...cfg.profiles.college!, safeSearch: { ...ON, youtube: 'off' } } }, lists: {} }, cfg);
  t.equal(draft.profiles.college!.safeSearch.youtube, 'off');
});

t.test('the snapshot carries each profile\'s settings: retargetFor answers per profile', async (t) => {
  const config = resolveConfig({ profiles: { college: { mode: 'blocklist', safeSearch: { google: false } } } });
  const snapshot = buildSnapshot({ config, ut1: null, academy: new MapIndexBuilder(), policyVersion: 3 });
  t.equal(retargetFor(snapshot, 'cycle3', 'www.google.fr')?.host, 'forcesafesearch.google.com');
  t.same(retargetFor(snapshot, 'cycle1', 'www.youtube.com'), { engine: 'youtube', host: 'restrict.youtube.com', inside: { query: [], headers: [['YouTube-Restrict', 'Strict']] } });
  t.equal(retargetFor(snapshot, 'college', 'www.youtube.com')?.host, 'restrictmoderate.youtube.com');
  t.equal(retargetFor(snapshot, 'college', 'www.google.fr'), null, 'switched off in the file');
  t.equal(retargetFor(snapshot, 'staff', 'www.google.fr'), null);
  t.equal(retargetFor(snapshot, null, 'www.google.fr'), null, 'no profile, no retarget (the decision blocks anyway)');
  t.equal(retargetFor(snapshot, 'nobody', 'www.google.fr'), null);
  t.ok(Object.isFrozen(snapshot.profiles.get('cycle3')!.safeSearch), 'immutable with the snapshot');
});

t.test('transparent listeners: off by default, validated, never on an address already taken', async (t) => {
  t.same(resolveConfig({}).transparent, { http: [], https: [] });
  const cfg = resolveConfig({ transparent: { https: [{ host: '10.0.0.1', port: 3130 }] } });
  t.same(cfg.transparent, { http: [], https: [{ host: '10.0.0.1', port: 3130 }] }, 'sections merge key by key');
  t.throws(() => resolveConfig({ transparent: { http: [{ host: '10.0.0.1' }] } }), /\/transparent\/http\/0\/port: is required/);
  t.throws(() => resolveConfig({ transparent: { quic: [] } }), /\/transparent: unknown key "quic"/);
  const alt = resolveConfig({ transparent: { https: [{ host: '10.0.0.1', port: 3131, targetPort: 8443 }] } });
  t.equal(alt.transparent.https[0]!.targetPort, 8443, 'a listener for another port meant (a redirect loses it)');
  t.throws(() => resolveConfig({ transparent: { https: [{ host: '10.0.0.1', port: 3131, targetPort: 0 }] } }), /\/transparent\/https\/0\/targetPort: must be >= 1/);
  t.throws(
    () => resolveConfig({ listen: [{ host: '10.0.0.1', port: 3128 }], transparent: { http: [{ host: '10.0.0.1', port: 3129 }], https: [{ host: '10.0.0.1', port: 3128 }] } }),
    /\/transparent\/https\/0: 10\.0\.0\.1:3128 is already \/listen\/0/,
  );
  t.doesNotThrow(() => resolveConfig({ listen: [{ host: '127.0.0.1', port: 0 }], transparent: { http: [{ host: '127.0.0.1', port: 0 }] } }), 'port 0 (tests) never collides');
});
