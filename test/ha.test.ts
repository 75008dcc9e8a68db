import { execFile, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import vm from 'node:vm';
import t from 'tap';
import { startGateway, tmp } from './helpers.js';

const HA = new URL('../deploy/ha/', import.meta.url).pathname;
const run = promisify(execFile);
const have = (cmd: string) => spawnSync('/bin/sh', ['-c', `command -v ${cmd}`]).status === 0;
const ci = process.env.CI === 'true';
if (ci && !have('keepalived')) throw new Error('keepalived missing: CI installs it (.ci/apt-packages)');

/** A network interface of this machine keepalived may use (not loopback); null in a bare namespace. */
const iface = (() => {
  try {
    return readdirSync('/sys/class/net').find((n) => n !== 'lo' && !n.startsWith('ifb')) ?? null;
  } catch {
    return null;
  }
})();

/**
 * `keepalived -t` on a copy naming this machine's interface and this checkout's check script.
 * keepalived 2.2 ends a config test that met a vrrp_script with SIGTERM to itself, whatever the
 * outcome, so what it printed is the verdict: nothing means nothing to complain about.
 */
function configTest(file: string, edit: (s: string) => string = (s) => s): { complaints: string[]; code: number | null; signal: string | null } {
  const copy = join(tmp('vigie-ha-'), 'keepalived.conf');
  writeFileSync(copy, edit(readFileSync(file, 'utf8').replaceAll('/usr/local/lib/vigie/vigie-check.sh', join(HA, 'vigie-check.sh')).replace(/\beth0\b/g, iface!)));
  const r = spawnSync('keepalived', ['-t', '-f', copy], { encoding: 'utf8', timeout: 20_000 });
  const complaints = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() && l.trim() !== 'Terminated');
  return { complaints, code: r.status, signal: r.signal };
}

t.test('keepalived accepts both nodes\' configs', { skip: !have('keepalived') ? 'keepalived not installed (apt-get install keepalived)' : !iface ? 'no network interface but loopback here' : false }, async (t) => {
  for (const node of ['keepalived-primary.conf', 'keepalived-backup.conf']) {
    const r = configTest(join(HA, node));
    t.same(r.complaints, [], `${node}: keepalived -t has nothing to say`);
    t.ok(r.code === 0 || r.signal === 'SIGTERM', `${node}: ended normally (${r.code ?? r.signal})`);
  }
  const bad = configTest(join(HA, 'keepalived-primary.conf'), (s) => s.replace('advert_int 1', 'advert_intervl 1'));
  t.match(bad.complaints.join('\n'), /Unknown keyword 'advert_intervl'/, 'and the check does catch a mistake');
  const primary = readFileSync(join(HA, 'keepalived-primary.conf'), 'utf8');
  const backup = readFileSync(join(HA, 'keepalived-backup.conf'), 'utf8');
  const field = (s: string, k: string) => new RegExp(`^\\s*${k}\\s+(\\S+)`, 'm').exec(s)?.[1];
  t.equal(field(primary, 'virtual_router_id'), field(backup, 'virtual_router_id'), 'one VRRP group');
  t.equal(field(primary, 'unicast_src_ip'), /unicast_peer \{\s*(\S+)/.exec(backup)?.[1], 'each node is the other\'s peer');
  t.ok(Number(field(primary, 'priority')) > Number(field(backup, 'priority')), 'A is preferred at start');
});

t.test('the health check follows the proxy', { skip: have('curl') ? false : 'curl not installed' }, async (t) => {
  const gw = await startGateway();
  const check = () => run(join(HA, 'vigie-check.sh'), ['127.0.0.1', String(gw.port)]).then(() => 0, (e: { code: number }) => e.code);
  t.equal(await check(), 0, 'proxy up: check passes');
  await gw.close();
  t.not(await check(), 0, 'proxy stopped: check fails, keepalived gives the address away');
});

t.test('the PAC file lists the virtual address, then both proxies, and never DIRECT for the internet', async (t) => {
  const ip4 = (s: string) => s.split('.').reduce((a, n) => a * 256 + Number(n), 0);
  const ctx = vm.createContext({
    isPlainHostName: (h: string) => !h.includes('.'),
    dnsDomainIs: (h: string, d: string) => h.endsWith(d),
    isInNet: (h: string, p: string, m: string) => (ip4(h) & ip4(m)) >>> 0 === (ip4(p) & ip4(m)) >>> 0,
  });
  vm.runInContext(readFileSync(join(HA, 'proxy.pac'), 'utf8'), ctx, { timeout: 1000 });
  const find = (url: string, host: string) => (ctx as { FindProxyForURL: (u: string, h: string) => string }).FindProxyForURL(url, host);
  t.equal(find('https://www.education.gouv.fr/', 'www.education.gouv.fr'), 'PROXY 10.20.0.10:3128; PROXY 10.20.0.11:3128; PROXY 10.20.0.12:3128');
  t.equal(find('http://93.184.216.34/', '93.184.216.34'), 'PROXY 10.20.0.10:3128; PROXY 10.20.0.11:3128; PROXY 10.20.0.12:3128');
  t.equal(find('http://intranet/', 'intranet'), 'DIRECT');
  t.equal(find('http://10.20.3.4/', '10.20.3.4'), 'DIRECT', 'the school\'s own network');
});
