import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tmp } from './helpers.js';
import type { NetnsGatewaySpec } from './netns-gateway.js';
import { NET, netnsPair, netnsUnsupported, shippedRuleset, waitForLine } from './netns-helpers.js';

const unsupported = await netnsUnsupported();
const HTTP_PORT = 3129;
const HTTPS_PORT = 3130;
const ROOT = new URL('..', import.meta.url).pathname;

t.test('the shipped nftables ruleset, in a gateway namespace: web redirected with the client address kept, QUIC refused', { skip: unsupported ?? false }, async (t) => {
  const net = await netnsPair(t);
  // Only the client's first address is a pupil's; its second one plays a machine outside the pupil networks.
  await net.nft(shippedRuleset({ PUPILS_V4: `${NET.client4}/32`, PUPILS_V6: NET.pupils6, VIGIE_HTTP: HTTP_PORT, VIGIE_HTTPS: HTTPS_PORT }));
  const other = '198.18.0.3';
  await net.exec(net.client, ['ip', 'addr', 'add', `${other}/24`, 'dev', 'veth0']);
  const server = net.spawn(net.gateway, [process.execPath, '--import', 'tsx', `${ROOT}test/netns-hello-server.ts`, String(HTTP_PORT), String(HTTPS_PORT)]);
  await waitForLine(server, /listening/);
  const lines: string[] = [];
  server.stdout!.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));

  // curl in the client namespace, no proxy setting, to addresses beyond the gateway.
  const curl = (url: string, ...args: string[]) => net.exec(net.client, ['curl', '-sS', '--noproxy', '*', '--max-time', '10', ...args, url]);
  const v4 = await curl(`http://${NET.remote4}/page`);
  t.equal(v4.stdout, `http ${HTTP_PORT} ::ffff:${NET.client4} ${NET.remote4}\n`, `port 80 reaches the HTTP listener from the client's own address (${v4.stderr})`);
  const v6 = await curl(`http://[${NET.remote6}]/page`);
  t.equal(v6.stdout, `http ${HTTP_PORT} ${NET.client6} [${NET.remote6}]\n`, `IPv6 too (${v6.stderr})`);

  const outsider = await curl(`http://${NET.remote4}/page`, '--interface', other, '--connect-timeout', '2');
  t.equal(outsider.code, 28, 'a source outside the pupil networks is not redirected (its SYN goes out to the void: timeout)');
  const own = await curl(`http://${NET.gateway4}/`, '--connect-timeout', '2');
  t.equal(own.code, 7, "the gateway's own addresses are not redirected (nothing listens on its port 80: refused)");

  const tls = await curl('https://pupil.test/', '--resolve', `pupil.test:443:${NET.remote4}`);
  t.not(tls.code, 0, 'the TLS client is refused');
  t.match(tls.stderr, /alert access denied/i, `with the access_denied alert (${tls.stderr.trim()})`);
  t.ok(lines.includes(`hello pupil.test ${HTTPS_PORT} ::ffff:${NET.client4}`), `port 443 reaches the HTTPS listener, which reads the server name (${lines.join(' | ')})`);

  // QUIC: refused at the gateway with an ICMP port-unreachable, so browsers fall back to TCP at once.
  const udp = await net.exec(net.client, [process.execPath, '-e', `
    const s = require('node:dgram').createSocket('udp4');
    s.on('error', (e) => { console.log(e.code); process.exit(0); });
    s.on('message', () => { console.log('answered'); process.exit(0); });
    s.connect(443, '${NET.remote4}', () => { s.send('quic'); setTimeout(() => s.send('quic'), 200); });
    setTimeout(() => { console.log('silence'); process.exit(0); }, 3000);
  `]);
  t.equal(udp.stdout.trim(), 'ECONNREFUSED', `UDP 443 is refused (${udp.stderr})`);
});

t.test('the real gateway in its namespace: curl without any proxy setting reaches http:// and https:// names through the transparent listeners', { skip: unsupported ?? false }, async (t) => {
  const net = await netnsPair(t);
  await net.nft(shippedRuleset({ PUPILS_V4: NET.pupils4, PUPILS_V6: NET.pupils6, VIGIE_HTTP: HTTP_PORT, VIGIE_HTTPS: HTTPS_PORT }));
  const spec = join(tmp(), 'spec.json');
  const doc: NetnsGatewaySpec = {
    config: {
      listen: [{ host: NET.gateway4, port: 3128 }],
      transparent: { http: [{ host: '::', port: HTTP_PORT }], https: [{ host: '::', port: HTTPS_PORT }] },
      clients: [{ network: NET.pupils4, profile: 'cycle3' }, { network: NET.pupils6, profile: 'staff' }],
    },
  };
  writeFileSync(spec, JSON.stringify(doc));
  const gw = net.spawn(net.gateway, [process.execPath, '--import', 'tsx', `${ROOT}test/netns-gateway.ts`, spec]);
  const ready = JSON.parse((await waitForLine(gw, /ready (\{.*\})\n/, 60_000))[1]!) as { ca: string };
  // The names resolve (for curl) to an address beyond the gateway: only the redirect brings them to Vigie.
  const curl = (url: string, remote: string = NET.remote4, ...args: string[]) => {
    const u = new URL(url);
    const port = u.port || (u.protocol === 'https:' ? '443' : '80');
    return net.exec(net.client, ['curl', '-sS', '--noproxy', '*', '--max-time', '10', '--cacert', ready.ca, '--resolve', `${u.hostname}:${port}:${remote}`, ...args, url]);
  };
  const plain = await curl('http://site.test/page');
  t.equal(plain.stdout, 'origin-http site.test /page\n', `http:// through the transparent HTTP listener (${plain.stderr})`);
  const tls = await curl('https://site.test/secure');
  t.equal(tls.stdout, 'origin-tls site.test /secure\n', `https:// through the transparent HTTPS listener, the origin's certificate checked (${tls.stderr})`);
  const blocked = await curl('https://blocked.test/');
  t.not(blocked.code, 0);
  t.match(blocked.stderr, /alert access denied/, `a blocked name is refused with the access_denied alert (${blocked.stderr.trim()})`);
  const blockedHttp = await curl('http://blocked.test/');
  t.match(blockedHttp.stdout, /adult/, 'a blocked plain-HTTP name gets the block page');
  const google = await curl('https://www.google.fr/search?q=x');
  t.equal(google.stdout, 'safesearch-tls www.google.fr /search?q=x\n', `SafeSearch for cycle3: the enforcing stand-in (${google.stderr})`);
  const staffGoogle = await curl('https://www.google.fr/search?q=x', `[${NET.remote6}]`);
  t.equal(staffGoogle.stdout, 'origin-tls www.google.fr /search?q=x\n', `over IPv6 the client is staff here: the original (${staffGoogle.stderr})`);
  const proxied = await net.exec(net.client, ['curl', '-sS', '--max-time', '10', '--cacert', ready.ca, '-x', `http://${NET.gateway4}:3128`, 'https://site.test/explicit']);
  t.equal(proxied.stdout, 'origin-tls site.test /explicit\n', `the explicit port still serves devices with a proxy setting (${proxied.stderr})`);
});
