import { randomBytes, createHash } from 'node:crypto';
import t from 'tap';
import { connectTunnel, freePort, rawExchange, startGateway, startOrigin, startTlsOrigin, tlsGet, viaProxy } from './helpers.js';

// 127.0.0.1 plays cycle3 (blocklist), 127.0.0.2 cycle1 (allowlist only), as in the embedded demo config.
const clients = [
  { network: '127.0.0.1/32', profile: 'cycle3' },
  { network: '127.0.0.2/32', profile: 'cycle1' },
  { network: '127.0.0.5/32', profile: 'staff' },
];
const profiles = {
  cycle3: { mode: 'blocklist', categories: ['adult', 'malware', 'games'], allow: ['games.test/edu'], deny: [], allowLists: ['academy-allow'], denyLists: ['academy-deny'] },
  cycle1: { mode: 'allowlist', categories: ['child', 'liste_blanche'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] },
  staff: { mode: 'blocklist', categories: ['malware'] },
};

t.test('proxy on real sockets', async (t) => {
  const origin = await startOrigin();
  const tlsOrigin = await startTlsOrigin();
  const closedPort = await freePort();
  const hosts = Object.fromEntries(['www.site.test', 'kids.test', 'games.test', 'adult.test', 'secure.test', 'academy-ok.test', 'white.test', 'example.test', 'down.test'].map((h) => [h, '127.0.0.1']));
  const gw = await startGateway({
    clients,
    profiles,
    hosts,
    connectPorts: [443, tlsOrigin.port],
    timeouts: { connectMs: 1000, upstreamResponseMs: 800, headersMs: 2000, idleMs: 5000 },
  });
  t.teardown(async () => {
    await gw.close();
    await origin.close();
    await tlsOrigin.close();
  });
  const o = `127.0.0.1:${origin.port}`;
  const site = (host: string, path = '/small') => `http://${host}:${origin.port}${path}`;

  t.test('allowed request is forwarded, with Via and without hop-by-hop headers', async (t) => {
    const r = await viaProxy(gw.port, site('www.site.test', '/headers'), { headers: { 'x-keep': 'yes', connection: 'keep-alive, x-drop', 'x-drop': 'no', 'proxy-authorization': 'Basic c2VjcmV0' } });
    t.equal(r.status, 200);
    const seen = JSON.parse(r.body.toString()) as { headers: Record<string, string>; url: string };
    t.equal(seen.url, '/headers', 'origin receives origin-form');
    t.equal(seen.headers['x-keep'], 'yes');
    t.notOk(seen.headers['x-drop'], 'header named by Connection is stripped');
    t.notOk(seen.headers['proxy-authorization'], 'proxy credentials are never forwarded');
    t.equal(seen.headers.host, `www.site.test:${origin.port}`);
    t.match(seen.headers.via, /1\.1 vigie/);
    t.match(r.headers.via, /1\.1 vigie/);
    t.notOk(r.headers['x-hop'], 'response header named by Connection is stripped');
  });

  t.test('bodies stream both ways', async (t) => {
    const body = randomBytes(3 * 1048576 + 17);
    const r = await viaProxy(gw.port, site('www.site.test', '/echo'), { method: 'POST', body });
    t.equal(r.status, 200);
    t.equal(createHash('sha256').update(r.body).digest('hex'), createHash('sha256').update(body).digest('hex'), 'echoed body intact');
    const big = await viaProxy(gw.port, site('www.site.test', '/big?mib=8'));
    t.equal(big.body.length, 8 * 1048576);
  });

  t.test('blocked request gets a block page in French or English', async (t) => {
    const fr = await viaProxy(gw.port, site('www.adult.test', '/x'), { headers: { 'accept-language': 'fr-FR,fr;q=0.9,en;q=0.5' } });
    t.equal(fr.status, 403);
    t.match(fr.headers['content-type'], /text\/html/);
    const page = fr.body.toString();
    t.match(page, /Accès bloqué/);
    t.match(page, /cycle3/);
    t.match(page, /adult/);
    const en = await viaProxy(gw.port, site('adult.test'), { headers: { 'accept-language': 'en-GB,en;q=0.9,fr;q=0.3' } });
    t.match(en.body.toString(), /Access blocked/);
    t.match(en.body.toString(), /Category<\/dt><dd>Adult \(X\) \(adult\)/, "the category with its label from UT1's catalogue");
  });

  t.test('nothing from the request is reflected unescaped', async (t) => {
    const r = await rawExchange(gw.port, `GET http://adult.test/%3Cscript%3E HTTP/1.1\r\nHost: adult.test\r\nAccept-Language: <script>alert(1)</script>\r\nConnection: close\r\n\r\n`);
    t.match(r, /^HTTP\/1\.1 403/);
    t.notMatch(r, /<script>/);
  });

  t.test('url entries and profile allow entries', async (t) => {
    const blocked = await viaProxy(gw.port, site('example.test', '/adult-corner/page'));
    t.equal(blocked.status, 403, 'url prefix blocks');
    const open = await viaProxy(gw.port, site('example.test', '/small'));
    t.equal(open.status, 200, 'rest of the host is open');
    t.equal((await viaProxy(gw.port, site('games.test', '/play'))).status, 403, 'category blocks');
    t.equal((await viaProxy(gw.port, site('games.test', '/edu/maths'))).status, 200, 'profile allow entry wins over the category');
  });

  t.test('allowlist-only profile (cycle1 from 127.0.0.2)', async (t) => {
    const ok = await viaProxy(gw.port, site('kids.test'), { localAddress: '127.0.0.2' });
    t.equal(ok.status, 200);
    const academy = await viaProxy(gw.port, site('academy-ok.test'), { localAddress: '127.0.0.2' });
    t.equal(academy.status, 200, 'academy allowlist applies to cycle1');
    const other = await viaProxy(gw.port, site('www.site.test'), { localAddress: '127.0.0.2' });
    t.equal(other.status, 403);
    t.match(other.body.toString(), /cycle1/);
  });

  t.test('staff profile is not blocked on pupil categories', async (t) => {
    t.equal((await viaProxy(gw.port, site('adult.test'), { localAddress: '127.0.0.5' })).status, 200);
  });

  t.test('client outside the configured networks is refused', async (t) => {
    const r = await viaProxy(gw.port, site('www.site.test'), { localAddress: '127.0.0.9' });
    t.equal(r.status, 403);
    t.match(r.body.toString(), /refus/);
    const c = await connectTunnel(gw.port, `secure.test:${tlsOrigin.port}`, '127.0.0.9');
    t.equal(c.status, 403);
  });

  t.test('CONNECT allowed: TLS handshake through the tunnel', async (t) => {
    const c = await connectTunnel(gw.port, `secure.test:${tlsOrigin.port}`);
    t.equal(c.status, 200);
    const reply = await tlsGet(c.socket, 'secure.test');
    t.match(reply, /^HTTP\/1\.1 200/);
    t.match(reply, /hello over tls/);
  });

  t.test('CONNECT blocked: 403 with a short text', async (t) => {
    const c = await connectTunnel(gw.port, 'malware.test:443');
    t.equal(c.status, 403);
    t.match(c.head, /malware/);
    t.match(c.head, /text\/plain/);
  });

  t.test('CONNECT to a port that is not allowed', async (t) => {
    const c = await connectTunnel(gw.port, `secure.test:${origin.port}`);
    t.equal(c.status, 403);
    t.match(c.head, /port/);
  });

  t.test('upstream trouble: refused, DNS failure, timeout', async (t) => {
    const refused = await viaProxy(gw.port, `http://down.test:${closedPort}/`, { headers: { 'accept-language': 'en' } });
    t.equal(refused.status, 502);
    t.match(refused.body.toString(), /refused/);
    const dns = await viaProxy(gw.port, 'http://nowhere.invalid/', { headers: { 'accept-language': 'en' } });
    t.equal(dns.status, 502);
    t.match(dns.body.toString(), /DNS/);
    const slow = await viaProxy(gw.port, site('www.site.test', '/hang'), { headers: { 'accept-language': 'en' } });
    t.equal(slow.status, 504);
    const tunnel = await connectTunnel(gw.port, 'nowhere.invalid:443');
    t.equal(tunnel.status, 502);
  });

  t.test('malformed and oversized requests', async (t) => {
    t.match(await rawExchange(gw.port, 'THIS IS NOT HTTP\r\n\r\n'), /^HTTP\/1\.1 400/);
    t.match(await rawExchange(gw.port, 'GET /not-a-proxy-request HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400/);
    t.match(await rawExchange(gw.port, 'GET ftp://x.test/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400/);
    t.match(await rawExchange(gw.port, `GET http://www.site.test:${origin.port}/ HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40000)}\r\n\r\n`), /^HTTP\/1\.1 431/);
    t.match(await rawExchange(gw.port, 'CONNECT no-port-here HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400/);
    t.match(await rawExchange(gw.port, 'GET http://bad..host/ HTTP/1.1\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 400/);
    // the proxy still works afterwards
    t.equal((await viaProxy(gw.port, site('www.site.test'))).status, 200);
  });

  t.test('keep-alive connection carries many requests', async (t) => {
    const r = await rawExchange(gw.port, `GET http://${o}/small HTTP/1.1\r\nHost: ${o}\r\n\r\nGET http://${o}/small HTTP/1.1\r\nHost: ${o}\r\nConnection: close\r\n\r\n`);
    t.equal(r.match(/HTTP\/1\.1 200/g)?.length, 2);
  });
});
