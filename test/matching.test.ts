import t from 'tap';
import { MapIndexBuilder } from '../src/lists/map-index.js';
import { normalizeHost, normalizeUrlEntry, stripWww } from '../src/lists/normalize.js';
import { loadUt1Dir } from '../src/lists/ut1.js';
import { tmp, writeLists } from './helpers.js';

t.test('host normalisation', async (t) => {
  t.equal(normalizeHost('WWW.Example.ORG'), 'www.example.org', 'case');
  t.equal(normalizeHost('example.org.'), 'example.org', 'trailing dot');
  t.equal(normalizeHost('example.org..'), 'example.org', 'several trailing dots');
  t.equal(normalizeHost('bücher.de'), 'xn--bcher-kva.de', 'IDN to punycode');
  t.equal(normalizeHost('BÜCHER.de.'), 'xn--bcher-kva.de', 'IDN, case and trailing dot together');
  t.equal(normalizeHost('[::1]'), '::1', 'IPv6 literal loses its brackets');
  t.equal(normalizeHost('[not-v6]'), '', 'bracketed junk refused');
  t.equal(normalizeHost('a..b'), '', 'empty label refused');
  t.equal(normalizeHost(''), '');
  t.equal(normalizeHost('.'), '');
  t.equal(normalizeHost('x'.repeat(300)), '');
});

t.test('url entry normalisation', async (t) => {
  t.same(normalizeUrlEntry('http://WWW.Example.org:8080/Path/x'), { host: 'example.org', path: '/path/x' });
  t.same(normalizeUrlEntry('www3.example.org/a'), { host: 'example.org', path: '/a' });
  t.same(normalizeUrlEntry('example.org'), { host: 'example.org', path: '/' });
  t.equal(normalizeUrlEntry('/only/a/path'), null);
  t.equal(stripWww('www.wwwexample.org'), 'wwwexample.org');
  t.equal(stripWww('wwwexample.org'), 'wwwexample.org', 'www without a dot is part of the name');
});

t.test('squidGuard semantics on a MapIndex', async (t) => {
  const b = new MapIndexBuilder();
  const adult = b.category('adult');
  const bank = b.category('bank');
  const malware = b.category('malware');
  t.equal(b.addDomain(adult, 'amex.com'), null);
  t.equal(b.addDomain(adult, 'Bücher.example'), null, 'IDN entries are stored as punycode');
  t.equal(b.addDomain(bank, 'amex.com'), null, 'an entry may sit in several categories');
  t.equal(b.addDomain(malware, '10.1.2.3'), null);
  t.equal(b.addUrl(adult, 'www.example.org/adult'), null);
  t.equal(b.addExpression(malware, '^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+/search\\?q=[0-9]+$'), null);
  t.match(b.addDomain(adult, 'not a host'), /hostname/);
  t.match(b.addExpression(adult, '(unclosed'), /invalid regular expression/);
  t.match(b.addUrl(adult, '/no-host'), /url/);
  const idx = b.build('v1');
  const all = new Uint8Array([1, 1, 1]);
  const onlyBank = new Uint8Array([0, 1, 0]);

  t.match(idx.matchHost('amex.com', all), { entry: 'amex.com', kind: 'domain', category: adult });
  t.match(idx.matchHost('www.what.amex.com', all), { entry: 'amex.com' }, 'subdomains match');
  t.equal(idx.matchHost('aamex.com', all), null, 'look-alike does not match');
  t.equal(idx.matchHost('amex.com.evil.test', all), null, 'suffix of another name does not match');
  t.equal(idx.matchHost('com', all), null, 'parent of an entry does not match');
  t.match(idx.matchHost('amex.com', onlyBank), { category: bank }, 'want filter picks the category');
  t.equal(idx.matchHost('amex.com', new Uint8Array([0, 0, 1])), null, 'unwanted categories never match');
  t.match(idx.matchHost(normalizeHost('WWW.BÜCHER.example.'), all), { entry: 'xn--bcher-kva.example' }, 'IDN request host matches');
  t.match(idx.matchHost('10.1.2.3', all), { category: malware }, 'IP literal matches exactly');
  t.equal(normalizeHost('9.10.1.2.3'), '', 'a name ending in a number is an IPv4 address or nothing');
  t.equal(normalizeHost('10.1.2.3'), '10.1.2.3');
  t.equal(idx.matchHost('10.1.2.4', all), null);

  t.ok(idx.hasUrlRules('example.org'));
  t.match(idx.matchUrl('example.org', '/adult/page', all), { entry: 'example.org/adult', kind: 'url' });
  t.equal(idx.matchUrl('example.org', '/other', all), null);
  t.equal(idx.hasUrlRules('sub.example.org'), false, 'url entries are keyed on the exact host');

  t.ok(idx.hasExpressions(all));
  t.notOk(idx.hasExpressions(onlyBank));
  t.match(idx.matchExpression('10.0.0.1/search?q=123', all), { kind: 'expression', category: malware });
  t.equal(idx.matchExpression('example.org/search?q=123', all), null);
  t.same(
    idx.counts().map((c) => [c.name, c.domains, c.urls, c.expressions]),
    [['adult', 2, 1, 0], ['bank', 1, 0, 0], ['malware', 1, 0, 1]],
  );
});

t.test('UT1 folder reader: bad lines are reported, not fatal', async (t) => {
  const dir = writeLists(tmp(), {
    adult: { domains: ['# comment', '', 'good.test', 'bad host', 'also-good.test\r'], urls: ['good.test/x'] },
    empty: { domains: [] },
  });
  const b = new MapIndexBuilder();
  const report = await loadUt1Dir(dir, b);
  t.same(report.categories, ['adult', 'empty']);
  t.equal(report.entries, 3);
  t.equal(report.badLineCount, 1);
  t.match(report.badLines[0], { category: 'adult', file: 'domains', line: 4, text: 'bad host' });
  t.match(report.version, /^[0-9a-f]{16}$/);
  const again = await loadUt1Dir(dir, new MapIndexBuilder());
  t.equal(again.version, report.version, 'version is a content hash: stable');
  writeLists(dir, { adult: { domains: ['good.test', 'new.test'] } });
  t.not((await loadUt1Dir(dir, new MapIndexBuilder())).version, report.version, 'changes with the content');
});
