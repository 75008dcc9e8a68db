import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import t, { type Test } from 'tap';
import { CompactIndexBuilder } from '../src/lists/compact-builder.js';
import { CompactIndex } from '../src/lists/compact-index.js';
import { fingerprint } from '../src/lists/hash.js';
import { MapIndexBuilder } from '../src/lists/map-index.js';
import { normalizeHost, stripWww } from '../src/lists/normalize.js';
import type { CategoryIndex } from '../src/lists/types.js';
import { loadUt1Dir } from '../src/lists/ut1.js';
import { tmp, writeLists } from './helpers.js';

/** Small seeded PRNG (mulberry32): the corpus is the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Some letters upper-cased: paths as browsers send them (squidGuard compares in lower case). */
const mixCase = (s: string, r: () => number): string => [...s].map((c) => (r() < 0.3 ? c.toUpperCase() : c)).join('');

const CATS = ['adult', 'games', 'malware', 'liste_blanche', 'press', 'redirector'];
const TLDS = ['com', 'fr', 'net', 'org', 'test', 'co.uk', 'xn--p1ai', 'de', 'io'];
const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';

function corpus(seed: number) {
  const r = rng(seed);
  // Case mixing draws from its own generator: the corpus and the queries stay those of every seed.
  const mixR = rng(seed ^ 0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const label = (): string => {
    const len = 1 + Math.floor(r() * 12);
    let s = '';
    for (let i = 0; i < len; i++) s += i > 0 && i < len - 1 && r() < 0.08 ? pick(['-', '_']) : pick([...ALNUM]);
    return s;
  };
  const domain = (): string => {
    const n = 1 + Math.floor(r() * 3);
    return [...Array.from({ length: n }, label), pick(TLDS)].join('.');
  };
  const ip = (): string => `${Math.floor(r() * 256)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}.${Math.floor(r() * 256)}`;
  const listed: string[] = [];
  const files: Record<string, { domains: string[]; urls: string[]; expressions: string[] }> = {};
  for (const c of CATS) files[c] = { domains: [], urls: [], expressions: [] };
  for (let i = 0; i < 2500; i++) {
    const roll = r();
    let raw: string;
    if (roll < 0.06) raw = ip();
    else if (roll < 0.09) raw = pick(['café', 'bücher', 'пример', 'übung-', 'naïve']) + '.' + pick(['fr', 'de', 'рф', 'test']);
    else if (roll < 0.1) raw = pick(['2001:db8::' + Math.floor(r() * 100), '[::1]']);
    else if (roll < 0.3 && listed.length) raw = label() + '.' + pick(listed.filter((h) => !h.includes(':')).slice(-200)); // nested entries
    else raw = domain();
    // The way list files really look: case, trailing dots, stray spaces, CRLF.
    const written = (r() < 0.05 ? raw.toUpperCase() : raw) + (r() < 0.03 ? '.' : '') + (r() < 0.03 ? ' ' : '') + (r() < 0.03 ? '\r' : '');
    const cats = new Set([pick(CATS)]);
    if (r() < 0.25) cats.add(pick(CATS));
    if (r() < 0.05) cats.add(pick(CATS));
    for (const c of cats) files[c]!.domains.push(written);
    listed.push(normalizeHost(raw.trim()) || raw);
  }
  // Lines both engines must refuse the same way, plus comments and blanks.
  const junk = ['-bad.test', 'bad-.test', 'a..b.test', '.lead.test', 'x'.repeat(64) + '.test', 'sp ace.test', 'ex!cl.test', '# comment', '', '   ', 'a.' + 'b'.repeat(60) + '.' + 'c'.repeat(60) + '.' + 'd'.repeat(60) + '.' + 'e'.repeat(60) + '.test', '\u00a0nbsp.test', 'ok_under.test'];
  for (const j of junk) files[pick(CATS)]!.domains.push(j);
  // A single-label entry (a whole TLD) makes lookups probe TLDs too: one corpus in three has one.
  if (seed % 3 === 0) files['games']!.domains.push('io');
  const urlHosts: string[] = [];
  for (let i = 0; i < 400; i++) {
    const host = r() < 0.5 ? pick(listed.filter((h) => !h.includes(':'))) : domain();
    const path = '/' + label() + (r() < 0.5 ? '/' + label() : '') + (r() < 0.2 ? '.html' : '');
    const written = (r() < 0.3 ? pick(['http://', 'https://', '']) : '') + (r() < 0.3 ? pick(['www.', 'www2.']) : '') + host + (r() < 0.1 ? ':8080' : '') + (mixR() < 0.2 ? mixCase(path, mixR) : path);
    files[pick(CATS)]!.urls.push(written);
    urlHosts.push(stripWww(host) + path);
  }
  files['malware']!.expressions.push('^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+/cmd', '(^|\\.)evil[0-9]+\\.');
  files['adult']!.expressions.push('sexe?(/|$)');
  return { files, listed, urlHosts, r, mixR, pick, label, domain, ip };
}

function queries(c: ReturnType<typeof corpus>, count: number): { host: string; path: string }[] {
  const { r, pick, listed, urlHosts } = c;
  const out: { host: string; path: string }[] = [];
  const mutate = (h: string): string => {
    const i = Math.floor(r() * h.length);
    return h.slice(0, i) + pick([...'abcxyz019-']) + h.slice(i + 1);
  };
  while (out.length < count) {
    const base = pick(listed);
    const roll = r();
    let q: string;
    let path = '/';
    if (roll < 0.15) q = base; // exact hit
    else if (roll < 0.3) q = Array.from({ length: 1 + Math.floor(r() * 4) }, c.label).join('.') + '.' + base; // deep subdomain
    else if (roll < 0.4) q = base.split('.').slice(1).join('.') || base; // parent of an entry
    else if (roll < 0.5) q = mutate(base); // look-alike
    else if (roll < 0.55) q = 'x' + base; // prefix without a dot must not match
    else if (roll < 0.6) q = base + '.evil.test'; // entry as a left part must not match
    else if (roll < 0.65) q = c.ip();
    else if (roll < 0.7) q = pick(['www.café.fr', 'Bücher.de', 'sub.пример.рф', 'NAÏVE.test']);
    else if (roll < 0.85) {
      const u = pick(urlHosts);
      const slash = u.indexOf('/');
      q = (r() < 0.3 ? 'www.' : '') + u.slice(0, slash);
      path = r() < 0.6 ? u.slice(slash) + (r() < 0.5 ? 'more/stuff?x=1' : '') : '/' + c.label();
      if (c.mixR() < 0.4) path = mixCase(path, c.mixR);
    } else if (roll < 0.9) q = 'a.'.repeat(130) + base; // longer than any entry, entry as suffix
    else if (roll < 0.93) {
      q = pick(['1.2.3.4', '10.0.0.1', 'evil7.test', 'x.evil42.net']);
      path = pick(['/cmd/run', '/sexe/', '/']);
      if (c.mixR() < 0.5) path = mixCase(path, c.mixR);
    } else q = c.domain(); // random miss
    const host = normalizeHost(q);
    if (host) out.push({ host, path });
  }
  return out;
}

async function buildBoth(dir: string) {
  const mb = new MapIndexBuilder();
  const mr = await loadUt1Dir(dir, mb);
  const cb = new CompactIndexBuilder();
  const cr = await loadUt1Dir(dir, cb);
  return { map: mb.build(mr.version), compact: cb.build(cr.version), mr, cr };
}

function compare(t: Test, ref: CategoryIndex, eng: CategoryIndex, qs: { host: string; path: string }[], seed: number, minUrlHits = 50): void {
  const r = rng(seed);
  const masks = [new Uint8Array(CATS.length).fill(1), ...Array.from({ length: 6 }, () => Uint8Array.from(CATS, () => (r() < 0.5 ? 1 : 0)))];
  let mismatches = 0;
  let hits = 0;
  let urlHits = 0;
  let mixedUrlHits = 0;
  for (const { host, path } of qs) {
    const want = masks[Math.floor(r() * masks.length)]!;
    const bare = stripWww(host);
    const a = [ref.matchHost(host, want), ref.hasUrlRules(bare), ref.matchUrl(bare, path, want), ref.matchExpression(host + path, want)];
    const b = [eng.matchHost(host, want), eng.hasUrlRules(bare), eng.matchUrl(bare, path, want), eng.matchExpression(host + path, want)];
    // The one-call form (what decide() uses) answers as the calls in sequence, with and without a path.
    a.push(ref.matchHostAndUrl(host, path, want), ref.matchHostAndUrl(host, '', want));
    b.push(eng.matchHostAndUrl(host, path, want), eng.matchHostAndUrl(host, '', want));
    const seq = a[0] ?? (path && a[1] ? a[2] : null);
    if (JSON.stringify(a[4]) !== JSON.stringify(seq) || JSON.stringify(a[5]) !== JSON.stringify(a[0])) mismatches++;
    if (a[0]) hits++;
    if (a[2]) urlHits++;
    if (a[2] && path !== path.toLowerCase()) mixedUrlHits++;
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      if (mismatches++ < 5) t.fail(`${host}${path}: reference ${JSON.stringify(a)} engine ${JSON.stringify(b)}`);
    }
  }
  t.equal(mismatches, 0, `${qs.length} lookups agree with the reference (${hits} domain hits, ${urlHits} url hits)`);
  t.ok(hits > qs.length / 10 && urlHits >= minUrlHits, 'the corpus exercises hits, not just misses');
  t.ok(mixedUrlHits > 0 || minUrlHits === 0, `mixed-case paths hit url entries (${mixedUrlHits})`);
}

t.test('compact engine = reference semantics on a seeded corpus', async (t) => {
  for (const seed of [1, 2, 3]) {
    const c = corpus(seed);
    const dir = writeLists(tmp(), c.files);
    // One category gzipped, as the bundled lists are.
    writeFileSync(join(dir, 'press', 'domains.gz'), gzipSync(c.files['press']!.domains.join('\n')));
    const { map, compact, mr, cr } = await buildBoth(dir);
    t.equal(cr.version, mr.version, 'same content version');
    t.equal(cr.entries, mr.entries, 'same accepted line count');
    t.equal(cr.badLineCount, mr.badLineCount, 'same refused line count');
    t.same(cr.badLines, mr.badLines, 'same refused lines, same reasons');
    t.same(compact.counts(), map.counts(), 'same per-category counts');
    const qs = queries(c, 4000);
    compare(t, map, compact, qs, seed * 7);
    // The compiled file reads back to the same answers.
    const again = CompactIndex.fromBytes(compact.serialize());
    compare(t, map, again, qs.slice(0, 1500), seed * 11);
    t.ok(compact.parts.setsEmbedded, 'category sets ride in the fingerprint slots');
    t.equal(compact.parts.topLevel, seed % 3 === 0, 'TLDs are probed only when a TLD is listed');
    // And the layout with a separate category-set array (too many sets to embed) agrees too.
    const wide = new CompactIndexBuilder(undefined, false);
    await loadUt1Dir(dir, wide);
    const separate = CompactIndex.fromBytes(wide.build(cr.version).serialize());
    t.notOk(separate.parts.setsEmbedded);
    compare(t, map, separate, qs.slice(0, 1500), seed * 13);
  }
});

t.test('several live indexes, looked up in turn, each answer as their own reference', async (t) => {
  // A gateway holds more than one index across a reload; the lookup keeps no state between
  // calls or between indexes (its tables are read from the instance at every call).
  const built = [];
  for (const seed of [4, 5]) {
    const c = corpus(seed);
    const { map, compact } = await buildBoth(writeLists(tmp(), c.files));
    built.push({ map, compact, qs: queries(c, 1500) });
  }
  const want = new Uint8Array(CATS.length).fill(1);
  let mismatches = 0;
  let hits = 0;
  for (let i = 0; i < 1500; i++) {
    for (const b of built) {
      const { host, path } = b.qs[i]!;
      for (const q of [b, ...built]) {
        const ref = q.map.matchHostAndUrl(host, path, want);
        if (ref) hits++;
        if (JSON.stringify(q.compact.matchHostAndUrl(host, path, want)) !== JSON.stringify(ref) && mismatches++ < 5) t.fail(`${host}${path}`);
      }
    }
  }
  t.equal(mismatches, 0, 'interleaved lookups agree with the reference');
  t.ok(hits > 500, `with hits (${hits})`);
});

t.test('domains fed as strings (ListSink path) and as bytes give the same index', async (t) => {
  const c = corpus(9);
  const byBytes = new CompactIndexBuilder([5, 7]);
  const byStrings = new CompactIndexBuilder([5, 7]);
  const ref = new MapIndexBuilder();
  const differ: string[] = [];
  for (const [name, f] of Object.entries(c.files)) {
    const a = byBytes.category(name);
    const b = byStrings.category(name);
    const m = ref.category(name);
    for (const line of f.domains) {
      const trimmed = line.trim();
      if (!trimmed || trimmed.startsWith('#')) continue;
      const buf = Buffer.from(trimmed);
      const p = byBytes.addDomainBytes(a, buf, 0, buf.length);
      if ((p === undefined ? byBytes.addDomain(a, trimmed) : p) !== byStrings.addDomain(b, trimmed)) differ.push(trimmed);
      ref.addDomain(m, trimmed);
    }
  }
  t.same(differ, [], 'every line gets the same verdict on both paths');
  const x = byBytes.build('v');
  const y = byStrings.build('v');
  t.same(Buffer.from(x.serialize()), Buffer.from(y.serialize()), 'byte-identical compiled files');
  compare(t, ref.build('v'), x, queries(c, 2000), 3, 0);
});

t.test('empty index and odd hosts never throw', async (t) => {
  const empty = new CompactIndexBuilder().build('none');
  const want = new Uint8Array(1).fill(1);
  t.equal(empty.matchHost('a.test', want), null);
  t.equal(empty.hasUrlRules('a.test'), false);
  const b = new CompactIndexBuilder();
  b.addDomain(b.category('x'), 'test');
  const one = CompactIndex.fromBytes(b.build('1').serialize());
  t.same(one.matchHost('deep.er.test', want), { category: 0, entry: 'test', kind: 'domain' }, 'a TLD entry covers its names');
  t.equal(one.matchHost('', want), null);
  t.equal(one.matchHost('.'.repeat(600), want), null);
  t.equal(one.matchHost('test.x', want), null);
  t.throws(() => CompactIndex.fromBytes(Buffer.from('not an index at all')), /bad magic/);
  const bytes = one.serialize();
  t.throws(() => CompactIndex.fromBytes(bytes.subarray(0, bytes.length - 9)), /truncated/);
});

t.test('matchHostAndUrl: www forms, domain-before-url order and odd hosts agree with the reference', async (t) => {
  const dir = writeLists(tmp(), {
    adult: { domains: ['www.both.test', 'deep.sub.test', '10.0.0.9'], urls: ['site.test/a/', 'www3.site.test/b', 'sub.test/p', 'www.test/w', '10.0.0.7/x', '[::1]/v6', 'www/bare'] },
    games: { domains: ['both.test'], urls: ['both.test/x', 'www.both.test/y', 'w.site.test/c'] },
  });
  const { map, compact } = await buildBoth(dir);
  const hosts = ['site.test', 'www.site.test', 'www3.site.test', 'www33.site.test', 'wwwx.site.test', 'www.www.site.test', 'x.site.test', 'w.site.test', 'www.w.site.test',
    'both.test', 'www.both.test', 'a.www.both.test', 'sub.test', 'www.sub.test', 'deep.sub.test', 'www.test', 'www.www.test', 'test', 'www', 'www.', 'www1', 'www1.', '.',
    '10.0.0.7', '10.0.0.9', '::1', 'www.10.0.0.7', 'a:b.site.test', 'x'.repeat(250) + '.site.test', 'www.' + 'x'.repeat(246) + '.test', ''];
  const paths = ['', '/', '/a/', '/a/b', '/b', '/c', '/x', '/y', '/p/q', '/w', '/x', '/v6', '/bare'];
  const all = new Uint8Array(2).fill(1);
  const wants = [all, Uint8Array.of(1, 0), Uint8Array.of(0, 1)];
  let urlHits = 0;
  for (const want of wants) {
    for (const host of hosts) {
      for (const path of paths) {
        const ref = map.matchHost(host, want) ?? (path ? map.matchUrl(stripWww(host), path, want) : null);
        if (ref?.kind === 'url') urlHits++;
        t.same(map.matchHostAndUrl(host, path, want), ref, `reference ${host}${path}`);
        t.same(compact.matchHostAndUrl(host, path, want), ref, `compact ${host}${path}`);
      }
    }
  }
  t.ok(urlHits > 20, `url entries decide some of them (${urlHits})`);
});

t.test('lane-1 collisions (forced) are told apart by lane 2, on the fast walk and the exact one', async (t) => {
  // The fast walk decides on lane 1 alone and checks lane 2 only for its final candidate. With
  // known seeds, lane 1 collides for some pairs among a few hundred thousand names: find such
  // pairs, list some of them, and check every answer against the reference.
  const seeds: [number, number] = [0x1234567, 0x89abc];
  const r = rng(5);
  const seen = new Map<number, string>();
  const pairs: [string, string][] = [];
  const out = new Int32Array(2);
  for (let i = 0; i < 400_000 && pairs.length < 12; i++) {
    let name = '';
    for (let k = 0; k < 9; k++) name += ALNUM[Math.floor(r() * 26)];
    name += '.test';
    fingerprint(name, seeds[0], seeds[1], out);
    const other = seen.get(out[0]!);
    if (other !== undefined && other !== name) pairs.push([other, name]);
    else seen.set(out[0]!, name);
  }
  t.ok(pairs.length >= 6, `found ${pairs.length} colliding pairs`);
  // Pair kinds: one listed and its twin queried; both listed (two slots share lane 1); one is
  // only a parent of a listed name (an ancestor slot); a url host and its twin.
  const files: Record<string, { domains: string[]; urls: string[] }> = { adult: { domains: [], urls: [] }, games: { domains: [], urls: [] } };
  const names: string[] = [];
  pairs.forEach(([x, y], i) => {
    names.push(x, y, `sub.${x}`, `sub.${y}`, `www.${x}`, `deep.sub.${y}`);
    if (i % 4 === 0) files.adult!.domains.push(x);
    else if (i % 4 === 1) files.adult!.domains.push(x), files.games!.domains.push(y);
    else if (i % 4 === 2) files.games!.domains.push(`sub.${x}`);
    else files.adult!.urls.push(`${x}/p/`);
  });
  const dir = writeLists(tmp(), files);
  const mb = new MapIndexBuilder();
  const map = mb.build((await loadUt1Dir(dir, mb)).version);
  const cb = new CompactIndexBuilder(seeds);
  const compact = CompactIndex.fromBytes(cb.build((await loadUt1Dir(dir, cb)).version).serialize());
  const wants = [Uint8Array.of(1, 1), Uint8Array.of(1, 0), Uint8Array.of(0, 1)];
  let hits = 0;
  for (const want of wants) {
    for (const host of names) {
      for (const path of ['', '/p/q', '/x']) {
        const ref = map.matchHostAndUrl(host, path, want);
        if (ref) hits++;
        t.same(compact.matchHostAndUrl(host, path, want), ref, `${host}${path}`);
      }
      t.same(compact.matchHost(host, want), map.matchHost(host, want), host);
    }
  }
  t.ok(hits > 20, `some of them are hits (${hits})`);
});

t.test('a host with hundreds of url rules (searched by length, not scanned) answers as the reference', async (t) => {
  const r = rng(21);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const seg = () => Array.from({ length: 1 + Math.floor(r() * 6) }, () => pick([...'abcde0'])).join('');
  // Long shared prefixes, many lengths, the same path in several categories, nested paths.
  const paths: string[] = [];
  for (let i = 0; i < 300; i++) {
    const base = r() < 0.5 && paths.length ? pick(paths) : pick(['/forms/d/e/', '/document/d/', '/a', '/']);
    paths.push(base + seg() + (r() < 0.3 ? '/' : ''));
  }
  const files: Record<string, { domains: string[]; urls: string[] }> = { adult: { domains: [], urls: [] }, games: { domains: [], urls: [] }, press: { domains: [], urls: [] } };
  for (const p of paths) {
    files[pick(['adult', 'games', 'press'])]!.urls.push(`docs.big.test${p}`);
    if (r() < 0.2) files[pick(['adult', 'games', 'press'])]!.urls.push(`docs.big.test${p}`);
  }
  files.games!.urls.push('small.test/forms/', 'small.test/forms/d/');
  const dir = writeLists(tmp(), files);
  const { map, compact } = await buildBoth(dir);
  const wants = [Uint8Array.of(1, 1, 1), Uint8Array.of(1, 0, 0), Uint8Array.of(0, 1, 1), Uint8Array.of(0, 0, 1)];
  let urlHits = 0;
  let checked = 0;
  for (let i = 0; i < 3000; i++) {
    const p = pick(paths);
    const roll = r();
    const path = roll < 0.4 ? p + seg() : roll < 0.6 ? p : roll < 0.8 ? p.slice(0, Math.max(1, Math.floor(r() * p.length))) : '/' + seg() + p;
    const host = pick(['docs.big.test', 'www.docs.big.test', 'small.test']);
    const want = pick(wants);
    const ref = map.matchHostAndUrl(host, path, want);
    if (ref?.kind === 'url') urlHits++;
    const got = compact.matchHostAndUrl(host, path, want);
    if (JSON.stringify(got) !== JSON.stringify(ref)) t.fail(`${host}${path}: reference ${JSON.stringify(ref)} engine ${JSON.stringify(got)}`);
    else checked++;
  }
  t.equal(checked, 3000, 'every answer agrees');
  t.ok(urlHits > 1000, `most of them are url hits (${urlHits})`);
});

t.test('url paths beyond latin1 are kept two bytes a character, through the compiled file', async (t) => {
  const wideDir = writeLists(tmp(), { adult: { domains: [], urls: ['wide.test/путь/x', 'wide.test/é/'] } });
  const narrowDir = writeLists(tmp(), { adult: { domains: [], urls: ['narrow.test/é/', 'narrow.test/a'] } });
  const all = new Uint8Array(1).fill(1);
  for (const [dir, host, hit, width] of [[wideDir, 'wide.test', '/путь/x/y', 2], [narrowDir, 'narrow.test', '/é/z', 1]] as const) {
    const { map, compact } = await buildBoth(dir);
    t.equal(compact.parts.paths.BYTES_PER_ELEMENT, width, `${host}: ${width} byte(s) a character`);
    const expected = map.matchHostAndUrl(host, hit, all);
    t.ok(expected, `${host}${hit}: the reference finds its rule`);
    for (const eng of [compact, CompactIndex.fromBytes(compact.serialize())]) {
      t.same(eng.matchHostAndUrl(host, hit, all), expected, `${host}${hit} as the reference, entry included`);
      t.equal(eng.matchHostAndUrl(host, '/other', all), null);
    }
  }
});
