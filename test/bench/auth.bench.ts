/**
 * Authenticated against anonymous small requests through the same gateway, in the same run: one
 * client network without auth, and in a network with `auth: required` a client sending Basic
 * (checked against a real slapd, then from the bind cache) and one logged in on the captive portal
 * (its address bound to the user, no header). The gateway runs in its own process (WORKERS=1 by
 * default, journal on); the load is closed-loop keep-alive from here. Rounds alternate the three.
 * At the end the journal is read back: every authenticated request's row must carry its user.
 * Loopback only.
 *
 *   flock /tmp/vigie-bench.lock npm run bench:auth
 *   WORKERS=2 flock /tmp/vigie-bench.lock npm run bench:auth
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JournalQuery } from '../../src/journal/reader.js';
import { journalFile } from '../../src/journal/journal.js';
import { TEST_LISTS, tmp, writeLists } from '../helpers.js';
import { portalLogin } from '../portal-helpers.js';
import { PEOPLE, startSlapd } from '../slapd-helpers.js';
import { freePort, startSmallOrigin, waitFor } from './common.js';
import { load, type LoadResult } from './loadgen.js';

const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));
const slapd = await startSlapd();
const originPort = await freePort();
const origin = await startSmallOrigin(originPort);
const proxyPort = await freePort();
const portalPort = await freePort();
const workers = Number(process.env.WORKERS ?? '1');
const dir = tmp('vigie-bench-auth-');
const config = join(dir, 'config.json');
writeFileSync(config, JSON.stringify({
  listen: [{ host: '127.0.0.1', port: proxyPort }],
  workers,
  dataDir: join(dir, 'data'),
  lists: { ut1: writeLists(tmp(), TEST_LISTS) },
  hosts: { 'origin.test': '127.0.0.1' },
  destinations: { allow: [{ network: '127.0.0.0/8' }] },
  dns: { servers: ['127.0.0.1:9'] },
  clients: [
    { network: '127.0.0.1/32', profile: 'college', name: 'anonymous' },
    { network: '127.0.0.2/31', profile: 'college', name: 'login', auth: 'required' },
  ],
  auth: { ldap: { url: slapd.url, bindDn: `uid={login},${PEOPLE}`, idAttribute: 'employeeNumber' }, portal: { listen: { host: '127.0.0.1', port: portalPort } } },
  supervision: { enabled: false },
  metrics: { enabled: false },
}));
const gw = spawn(process.execPath, ['--import', 'tsx', CLI, 'start', '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
const stopped = new Promise((r) => gw.once('exit', r));
try {
  await waitFor(gw, /gateway ready/, 60_000);
  const portal = await portalLogin(`https://127.0.0.1:${portalPort}`, '127.0.0.3', 'prof.ens', 'Tableau noir!');
  if (portal.status !== 200) throw new Error(`portal login: ${portal.status}`);
  const request = (auth: string) => `GET http://origin.test:${originPort}/small HTTP/1.1\r\nHost: origin.test:${originPort}\r\n${auth}\r\n`;
  const anonymous = request('');
  const login = request(`Proxy-Authorization: Basic ${Buffer.from('eleve.cm1:Soleil-2026').toString('base64')}\r\n`);
  // Warm-up (and the one bind that fills the cache).
  await load({ port: proxyPort, request: anonymous, connections: 4, seconds: 1 });
  await load({ port: proxyPort, request: login, connections: 4, seconds: 1, localAddress: '127.0.0.2' });
  await load({ port: proxyPort, request: anonymous, connections: 4, seconds: 1, localAddress: '127.0.0.3' });
  const rows: { label: string; r: LoadResult }[] = [];
  for (let round = 0; round < 3; round++) {
    rows.push({ label: 'anonymous', r: await load({ port: proxyPort, request: anonymous, connections: 4, seconds: 3 }) });
    rows.push({ label: 'Basic (cached bind)', r: await load({ port: proxyPort, request: login, connections: 4, seconds: 3, localAddress: '127.0.0.2' }) });
    rows.push({ label: 'portal session', r: await load({ port: proxyPort, request: anonymous, connections: 4, seconds: 3, localAddress: '127.0.0.3' }) });
  }
  const pad = (v: string, n: number) => v.padStart(n);
  process.stdout.write(`\n${'client'.padEnd(22)}${pad('req/s', 10)}${pad('p50 ms', 9)}${pad('p99 ms', 9)}${pad('errors', 8)}\n`);
  for (const { label, r } of rows) process.stdout.write(`${label.padEnd(22)}${pad(r.rps.toFixed(0), 10)}${pad(r.p50ms.toFixed(2), 9)}${pad(r.p99ms.toFixed(2), 9)}${pad(String(r.errors), 8)}\n`);
  const mean = (l: string) => rows.filter((x) => x.label === l).reduce((a, x) => a + x.r.rps, 0) / 3;
  const runs = `means of 3 rounds, 4 keep-alive connections, 3 s each; workers ${workers}; node ${process.version}`;
  process.stdout.write(`\nBasic (cached) / anonymous: ${(mean('Basic (cached bind)') / mean('anonymous')).toFixed(3)}\nportal session / anonymous: ${(mean('portal session') / mean('anonymous')).toFixed(3)}\n(${runs})\n`);
  // The journal, read back once the gateway has flushed it on its way out.
  gw.kill('SIGTERM');
  await stopped;
  const q = new JournalQuery(journalFile(join(dir, 'data', 'journal')));
  const total = (filter: Record<string, string>) => q.stats(filter, 'day').reduce((a, r) => a + r.requests, 0);
  for (const [client, user] of [['127.0.0.2', '1000001'], ['127.0.0.3', '2000001']] as const) {
    const all = total({ client });
    const withUser = total({ client, user });
    const sent = rows.filter((x) => x.label === (client === '127.0.0.2' ? 'Basic (cached bind)' : 'portal session')).reduce((a, x) => a + x.r.requests, 0);
    process.stdout.write(`journal ${client}: ${all} rows (${sent} answered in the measured rounds, plus warm-up), ${withUser} with user ${user}: ${all === withUser ? 'every one' : `${all - withUser} WITHOUT`}\n`);
  }
  q.close();
} finally {
  gw.kill('SIGTERM');
  origin.kill();
  await slapd.stop();
}
