import t from 'tap';
import { canonicalIp, classifyIPv4, dottedQuad, endsInNumber, parseIPv4, parseNetwork } from '../src/net/address.js';
import { OwnListeners } from '../src/net/own-listeners.js';
import { canonicalHost, connectTarget, parseAbsoluteUrl } from '../src/proxy/target.js';

t.test('IPv4 hosts read as the WHATWG URL parser reads them', async (t) => {
  const forms = [
    '127.0.0.1', '2130706433', '0x7f000001', '0X7F000001', '0177.0.0.1', '0177.0.0.01', '127.1', '127.0.1', '0x7f.1', '0x7f.0.0.0x1',
    '127.0.0.1.', '1.13.249.217', '17693145', '0x010df9d9', '01.015.0371.0331', '1.13.63961', '1.889305', '0', '0x', '00', '4294967295',
    '4294967296', '1.2.3.256', '1.2.65536', '256.1.1.1', '1.2.3.4.5', '1.2.3.09', '0x1g', '1..2', '.1.2.3', '1.2.3.0x', '0.0.0.0x100',
    '08', '0xffffffff', '0x100000000', '255.255.255.255', '1.2.3.4e', '99999999999999999999',
  ];
  for (const h of forms) {
    let whatwg: string;
    try {
      whatwg = new URL(`http://${h}/`).hostname;
    } catch {
      whatwg = '';
    }
    // WHATWG keeps a name that does not end in a number; those are not IP literals here either.
    const ours = canonicalIp(h);
    if (ours === null) t.notOk(/^[0-9.]+$/.test(whatwg) && whatwg !== '', `${h}: a name for both`);
    else t.equal(ours, whatwg.replace(/\.$/, ''), `${h} → ${whatwg || 'invalid'}`);
  }
});

t.test('IPv6 literals: one spelling; mapped and compatible IPv4 become IPv4; zone ids refused', async (t) => {
  t.equal(canonicalIp('[::ffff:1.13.249.217]'), '1.13.249.217');
  t.equal(canonicalIp('[0:0:0:0:0:ffff:10d:f9d9]'), '1.13.249.217');
  t.equal(canonicalIp('[::FFFF:7F00:1]'), '127.0.0.1');
  t.equal(canonicalIp('[::1.13.249.217]'), '1.13.249.217', 'IPv4-compatible');
  t.equal(canonicalIp('[::1]'), '::1', 'loopback stays IPv6');
  t.equal(canonicalIp('[0:0:0:0:0:0:0:1]'), '::1');
  t.equal(canonicalIp('[::]'), '::');
  t.equal(canonicalIp('[2001:DB8:0:0:0:0:0:1]'), '2001:db8::1');
  t.equal(canonicalIp('::ffff:127.0.0.1'), '127.0.0.1', 'unbracketed (host maps, DNS answers)');
  t.equal(canonicalIp('[fe80::1%25eth0]'), '', 'zone id');
  t.equal(canonicalIp('[fe80::1%eth0]'), '', 'zone id');
  t.equal(canonicalIp('[::1'), '');
  t.equal(canonicalIp('[1.2.3.4]'), '');
  t.equal(canonicalIp('example.test'), null, 'a name');
  t.equal(canonicalIp('example.test.'), null);
  t.equal(canonicalIp('abc.0xfg'), null, 'not hex: a name');
});

t.test('canonical hosts and targets', async (t) => {
  t.equal(canonicalHost('Example.TEST.'), 'example.test');
  t.equal(canonicalHost('2130706433'), '127.0.0.1');
  t.equal(canonicalHost('a.1'), '', 'a name ending in a number that is no address');
  t.same(parseAbsoluteUrl('http://0x7f000001:8080/x?y'), { host: '127.0.0.1', port: 8080, path: '/x?y', authority: '0x7f000001:8080' });
  t.same(parseAbsoluteUrl('http://[::ffff:1.13.249.217]/'), { host: '1.13.249.217', port: 80, path: '/', authority: '[::ffff:1.13.249.217]' });
  t.equal(parseAbsoluteUrl('http://[fe80::1%25lo]:80/'), null);
  t.equal(parseAbsoluteUrl('http://host:+80/'), null, 'a port is digits only');
  t.equal(parseAbsoluteUrl('http://host:0x50/'), null);
  t.equal(parseAbsoluteUrl('http://host: 80/'), null);
  t.same(connectTarget('[0:0:0:0:0:ffff:10d:f9d9]:443'), { host: '1.13.249.217', port: 443 });
  t.equal(connectTarget('user@host.test:443'), null, 'no userinfo in a CONNECT target');
  t.equal(connectTarget('host.test:1e3'), null);
});

t.test('address helpers', async (t) => {
  t.equal(dottedQuad('10.0.0.1'), 0x0a000001);
  t.equal(dottedQuad('010.0.0.1'), -1, 'leading zero: not canonical');
  t.equal(dottedQuad('1.2.3'), -1);
  t.equal(dottedQuad('1.2.3.4.'), -1);
  t.equal(parseIPv4('1.2.3.4'), 0x01020304);
  t.ok(endsInNumber('a.b.0x1f'));
  t.notOk(endsInNumber('a.b.c'));
  t.notOk(endsInNumber('cafe.be'), 'hex letters alone are a name');
  t.equal(classifyIPv4(dottedQuad('100.64.1.1')), 'private');
  t.equal(classifyIPv4(dottedQuad('100.128.0.1')), null);
  t.equal(classifyIPv4(dottedQuad('169.254.169.254')), 'link-local');
  t.equal(classifyIPv4(dottedQuad('8.8.8.8')), null);
  for (const [a, cls] of [
    ['0.255.255.255', 'unspecified'], ['1.0.0.0', null], ['9.255.255.255', null], ['10.255.255.255', 'private'], ['11.0.0.0', null],
    ['100.63.255.255', null], ['100.64.0.0', 'private'], ['100.127.255.255', 'private'], ['100.128.0.0', null], ['126.255.255.255', null],
    ['127.255.255.255', 'loopback'], ['128.0.0.0', null], ['169.253.255.255', null], ['169.254.0.0', 'link-local'], ['169.255.0.0', null],
    ['172.15.255.255', null], ['172.16.0.0', 'private'], ['172.31.255.255', 'private'], ['172.32.0.0', null], ['192.167.255.255', null],
    ['192.168.0.0', 'private'], ['192.169.0.0', null], ['223.255.255.255', null], ['224.0.0.0', 'multicast'], ['239.255.255.255', 'multicast'],
    ['240.0.0.0', null], ['255.255.255.254', null], ['255.255.255.255', 'broadcast'],
  ] as const) t.equal(classifyIPv4(dottedQuad(a)), cls, `${a}: ${cls ?? 'public'}`);
  t.same(parseNetwork('::ffff:10.0.0.0/104').map(String), ['10.0.0.0', '8']);
});

t.test('own listeners: added, wildcard, forgotten', async (t) => {
  const own = new OwnListeners();
  const forget = own.add('127.0.0.1', 5000);
  t.ok(own.has('127.0.0.1', 5000));
  t.notOk(own.has('127.0.0.2', 5000), 'another loopback address is another socket');
  const any = own.add('::', 6000);
  t.ok(own.has('127.0.0.9', 6000), 'a wildcard answers on every local address');
  t.ok(own.has('::1', 6000));
  const mapped = own.add('::ffff:127.0.0.3', 7000);
  t.ok(own.has('127.0.0.3', 7000), 'canonical');
  forget();
  any();
  mapped();
  t.notOk(own.has('127.0.0.1', 5000), 'a closed listener is forgotten');
  t.notOk(own.has('::1', 6000));
});
