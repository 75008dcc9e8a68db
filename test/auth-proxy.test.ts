import net from 'node:net';
import t from 'tap';
import { importFiles } from '../src/directory/import.js';
import { Directory } from '../src/directory/store.js';
import { aafName, pupil, staff, writeAaf } from './aaf-helpers.js';
import { startGateway, startOrigin, tmp, viaProxy } from './helpers.js';
import { PEOPLE, slapdMissing, startSlapd, TEST_USERS } from './slapd-helpers.js';

const basic = (login: string, password: string) => `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;

/** A CONNECT with optional headers; resolves with the status line's code and the head. */
function connect(port: number, authority: string, headers: Record<string, string>, localAddress: string): Promise<{ status: number; head: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, localAddress });
    let buf = '';
    s.on('connect', () => s.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        s.destroy();
        resolve({ status: Number(buf.slice(9, 12)), head: buf.slice(0, end) });
      }
    });
    s.on('error', reject);
  });
}

const skip = slapdMissing();

t.test('explicit proxy with Basic auth against a real slapd; users in the journal', { skip }, async (t) => {
  const slapd = await startSlapd([...TEST_USERS, { uid: 'theo', password: 'Collège-3e', aafId: '1000003' }]);
  t.teardown(() => slapd.stop());
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const dataDir = tmp();
  const files = tmp();
  const dir = Directory.open(dataDir);
  await importFiles([
    // eleve.cm1 is a CM1 pupil (cycle3), theo a 3e (college), prof.ens a teacher (staff).
    writeAaf(files, aafName('0781234A', 'Complet', '20260901', 'Eleve'), [pupil('1000001', { niveau: 'CM1' }), pupil('1000003', { mef: '10310019110' })]),
    writeAaf(files, aafName('0781234A', 'Complet', '20260901', 'PersEducNat'), [staff('2000001', ['5001$ENS$X'])]),
  ], dir);
  dir.close();
  const gw = await startGateway({
    dataDir,
    clients: [
      { network: '127.0.0.0/28', profile: 'cycle1', auth: 'required', name: 'salle' },
      { network: '127.0.0.16/28', profile: 'cycle3', name: 'cdi' },
    ],
    profiles: {
      cycle1: { mode: 'allowlist', categories: ['child'] },
      cycle3: { mode: 'blocklist', categories: ['adult', 'games'] },
      college: { mode: 'blocklist', categories: ['adult'] },
      staff: { mode: 'blocklist', categories: ['malware'] },
    },
    hosts: { 'www.site.test': '127.0.0.1', 'games.test': '127.0.0.1', 'adult.test': '127.0.0.1' },
    connectPorts: [443, origin.port],
    auth: { realm: 'Ecole test', ldap: { url: slapd.url, bindDn: `uid={login},${PEOPLE}`, idAttribute: 'employeeNumber' }, failuresPerMinute: 3 },
  });
  t.teardown(() => gw.close());
  const url = (host: string) => `http://${host}:${origin.port}/small`;
  const from = (n: number) => `127.0.0.${n}`;
  const t0 = Date.now();

  const missing = await viaProxy(gw.port, url('www.site.test'), { localAddress: from(2) });
  t.equal(missing.status, 407, 'no credentials: 407');
  t.equal(missing.headers['proxy-authenticate'], 'Basic realm="Ecole test", charset="UTF-8"');
  const wrong = await viaProxy(gw.port, url('www.site.test'), { localAddress: from(2), headers: { 'proxy-authorization': basic('theo', 'faux') } });
  t.equal(wrong.status, 407, 'wrong password: 407 again');
  const locked = await viaProxy(gw.port, url('www.site.test'), { localAddress: from(3), headers: { 'proxy-authorization': basic('bloque', 'Verrou-42') } });
  t.equal(locked.status, 407, 'a locked account: 407');

  const theo = { 'proxy-authorization': basic('theo', 'Collège-3e') };
  const ok = await viaProxy(gw.port, url('games.test'), { localAddress: from(4), headers: theo });
  t.equal(ok.status, 200, 'a 3e pupil browses with the college profile (games allowed), not the room\'s cycle1');
  t.equal((await viaProxy(gw.port, url('adult.test'), { localAddress: from(4), headers: theo })).status, 403);
  const cm1 = { 'proxy-authorization': basic('eleve.cm1', 'Soleil-2026') };
  t.equal((await viaProxy(gw.port, url('games.test'), { localAddress: from(5), headers: cm1 })).status, 403, 'a CM1 pupil gets cycle3: games blocked');
  t.equal((await connect(gw.port, `games.test:${origin.port}`, {}, from(5))).status, 407, 'CONNECT without credentials: 407');
  t.equal((await connect(gw.port, `www.site.test:${origin.port}`, theo, from(4))).status, 200, 'CONNECT with them: the tunnel opens');
  t.equal((await viaProxy(gw.port, url('www.site.test'), { localAddress: from(17) })).status, 200, 'a network without auth: no prompt, its own profile');

  // Rate limit: 127.0.0.6 fails 3 times, then even the right password gets 429.
  for (let i = 0; i < 3; i++) await viaProxy(gw.port, url('www.site.test'), { localAddress: from(6), headers: { 'proxy-authorization': basic('theo', `x${i}`) } });
  t.equal((await viaProxy(gw.port, url('www.site.test'), { localAddress: from(6), headers: theo })).status, 429);

  // A session declared for an address identifies it without credentials.
  gw.gateway.identity.sessions.open(from(7), '2000001', 60_000, 'test');
  t.equal((await viaProxy(gw.port, url('adult.test'), { localAddress: from(7) })).status, 200, 'the teacher\'s session: staff profile');

  await new Promise((r) => setTimeout(r, 100));
  const journal = gw.gateway.journal!;
  await journal.flush();
  const { rows } = journal.search({ from: t0 - 1000 }, { limit: 100 });
  const admitted = rows.filter((r) => r.client !== from(2) && r.client !== from(3) && r.client !== from(6) && r.client !== from(17));
  t.equal(admitted.length, 5, 'theo: 2 requests and a tunnel; the CM1 pupil: 1 request; the session: 1');
  t.same(rows.filter((r) => [from(2), from(3), from(6)].includes(r.client)), [], '407 and 429 refusals decide nothing and are not recorded');
  t.ok(admitted.every((r) => r.user !== null), 'every authenticated request has its user in the journal');
  t.same([...new Set(rows.filter((r) => r.client === from(4)).map((r) => r.user))], ['1000003'], 'the AAF id, not the login');
  t.match(rows.find((r) => r.client === from(4) && r.host === 'games.test'), { profile: 'college', user: '1000003', decision: 'allow' });
  t.match(rows.find((r) => r.client === from(7)), { profile: 'staff', user: '2000001' });
  t.equal(rows.find((r) => r.client === from(17))?.user, null);
  t.same(journal.search({ from: t0 - 1000, user: '1000001' }, { limit: 100 }).rows.map((r) => r.client), [from(5)], 'search by user');

  // The other entries: CONNECT on net.Socket, and requests node's HTTP server takes (chunked bodies).
  const plain = await startGateway({
    clients: [{ network: '127.0.0.0/24', profile: 'cycle3', auth: 'required' }],
    hosts: { 'www.site.test': '127.0.0.1' },
    connectPorts: [origin.port],
    auth: { ldap: { url: slapd.url, bindDn: `uid={login},${PEOPLE}`, idAttribute: 'employeeNumber' } },
  }, undefined, { rawTunnels: false });
  t.teardown(() => plain.close());
  const noCreds = await connect(plain.port, `www.site.test:${origin.port}`, {}, from(8));
  t.equal(noCreds.status, 407, 'net.Socket CONNECT: 407');
  t.match(noCreds.head, /\r\nProxy-Authenticate: Basic realm="Vigie", charset="UTF-8"(\r\n|$)/);
  t.equal((await connect(plain.port, `www.site.test:${origin.port}`, theo, from(8))).status, 200);
  const chunked = { 'transfer-encoding': 'chunked' };
  const post = (headers: Record<string, string>) => viaProxy(plain.port, `http://www.site.test:${origin.port}/echo`, { localAddress: from(9), method: 'POST', headers: { ...chunked, ...headers }, body: 'abc' });
  const refused = await post({});
  t.equal(refused.status, 407, 'node\'s path: 407');
  t.match(refused.headers['proxy-authenticate'], /^Basic realm="Vigie"/);
  const echoed = await post({ 'proxy-authorization': basic('theo', 'Collège-3e') });
  t.equal(echoed.status, 200);
  t.equal(echoed.body.toString(), 'abc');
  await new Promise((r) => setTimeout(r, 100));
  await plain.gateway.journal!.flush();
  t.same(plain.gateway.journal!.search({}, { limit: 10 }).rows.map((r) => r.user), ['1000003', '1000003'], 'both recorded with the user');
});
