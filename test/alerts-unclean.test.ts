// A gateway with proxy workers: a pupil device's watched blocks, proxied by the workers, raise an
// alert in the first process (relayed records). Then it is killed with SIGKILL: the next start
// finds the journal not closed, raises an `unclean-stop` security event and sends it to the
// syslog collector (RFC 5424 over UDP).
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import Database from 'better-sqlite3';
import { alertsFile } from '../src/alerts/store.js';
import { DEAD_DNS, freePort, startGateway, TEST_LISTS, tmp, viaProxy, writeLists } from './helpers.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));

t.test('workers relay watched blocks to the alerts; kill -9, then the restart raises unclean-stop and sends it to syslog', async (t) => {
  const dataDir = tmp();
  const lists = writeLists(tmp(), { ...TEST_LISTS, agressif: { domains: ['fight.test'] } });
  const configFile = join(tmp(), 'vigie.json');
  const port = await freePort();
  const doc = { listen: [{ host: '127.0.0.1', port }], workers: 2, hosts: { 'fight.test': '127.0.0.1' }, dns: { servers: DEAD_DNS, timeoutMs: 500 }, metrics: { enabled: false }, supervision: { enabled: false }, lists: { ut1: lists } };
  writeFileSync(configFile, JSON.stringify(doc));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '--config', configFile, '--data', dataDir], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => void (child.exitCode === null && child.kill('SIGKILL')));
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (log += c));
  const end = Date.now() + 60_000;
  while (!/gateway ready/.test(log)) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`gateway did not start:\n${log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  for (let i = 0; i < 5; i++) t.equal((await viaProxy(port, 'http://fight.test/', { localAddress: '127.0.0.1' })).status, 403);
  const db = new Database(alertsFile(dataDir), { readonly: true });
  const watched = () => db.prepare("SELECT profile, subject, count FROM alerts WHERE type = 'watch'").all();
  for (let i = 0; i < 200 && !watched().length; i++) await new Promise((r) => setTimeout(r, 10));
  t.same(watched(), [{ profile: 'cycle3', subject: '127.0.0.1', count: 5 }], 'one alert, raised in the first process from the workers\' records');
  db.close();
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;

  const udp = createSocket('udp4');
  const got: string[] = [];
  udp.on('message', (m) => got.push(m.toString()));
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
  t.teardown(() => udp.close());
  const gw = await startGateway({ ...doc, dataDir, notifications: { syslog: { host: '127.0.0.1', port: (udp.address() as AddressInfo).port, protocol: 'udp' } } }, lists);
  t.teardown(() => gw.close());
  await gw.gateway.alerts!.settled();
  const [a] = gw.gateway.alerts!.alerts!.list({ kinds: ['security'], limit: 5 });
  t.match(a, { type: 'unclean-stop', severity: 'warning' });
  t.ok((a!.details.uncleanStops as number) >= 1);
  for (let i = 0; i < 100 && !got.length; i++) await new Promise((r) => setTimeout(r, 10));
  t.match(got[0], /^<132>1 .* vigie \d+ alert\.security \[vigie@32473 kind="alert\.security" severity="warning"\] \uFEFF\{.*"type":"unclean-stop"/);
});
