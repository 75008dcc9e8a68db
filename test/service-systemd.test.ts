import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tmp, unitNodeFlags } from './helpers.js';
import { REPO } from './service-cli.js';

const unitFile = join(REPO, 'deploy', 'systemd', 'vigie.service');
const unit = readFileSync(unitFile, 'utf8');
const has = (tool: string) => !spawnSync(tool, ['--version']).error;

t.test('the unit asks for what the issue lists', async (t) => {
  for (const line of ['User=vigie', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'StateDirectory=vigie', 'ExecReload=/bin/kill -HUP $MAINPID', 'KillSignal=SIGTERM']) {
    t.match(unit, new RegExp(`^${line.replace(/[$]/g, '\\$')}$`, 'm'), line);
  }
  const grace = Number(/--grace (\d+)/.exec(unit)?.[1]);
  const stop = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1]);
  t.ok(grace > 0 && stop > grace, `systemd waits longer (${stop}s) than the gateway's grace (${grace}s), so the journal flush is never killed`);
  t.notMatch(unit, /^MemoryDenyWriteExecute=yes/m, 'V8 needs W^X off');
});

t.test('the unit, npm start and the image give node the same flags', async (t) => {
  const flags = (line: string | undefined) => (line ?? '').split(/\s+/).filter((a) => a.startsWith('--'));
  const unitFlags = unitNodeFlags();
  t.ok(unitFlags.includes('--no-node-snapshot'), `the unit starts node without its startup snapshot (${unitFlags.join(' ')})`);
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.same(flags(/^node((?: --?\S+)*) dist\/cli\.js start$/.exec(pkg.scripts.start!)?.[1]), unitFlags, 'npm start');
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(REPO, 'deploy', 'docker', 'Dockerfile'), 'utf8'))?.[1];
  t.same((JSON.parse(entry ?? '[]') as string[]).filter((a) => a.startsWith('--')), unitFlags, 'the image');
});

t.test('systemd-analyze verify accepts the unit', async (t) => {
  if (!has('systemd-analyze')) {
    t.pass('systemd-analyze verify', { skip: 'systemd-analyze not installed (apt-get install systemd)' });
    return;
  }
  const dir = tmp();
  copyFileSync(unitFile, join(dir, 'vigie.service'));
  const r = spawnSync('systemd-analyze', ['verify', join(dir, 'vigie.service')], { encoding: 'utf8' });
  t.equal(r.status, 0, `verify exit status\n${r.stdout}${r.stderr}`);
  t.equal(r.stderr.trim(), '', 'no warning');
  const sec = spawnSync('systemd-analyze', ['security', '--offline=yes', join(dir, 'vigie.service')], { encoding: 'utf8' });
  const level = /Overall exposure level for vigie\.service: ([\d.]+)/.exec(sec.stdout)?.[1];
  if (level === undefined) t.comment(`systemd-analyze security --offline unsupported here: ${sec.stderr.trim()}`);
  else t.ok(Number(level) < 3, `exposure level ${level} is below 3 (OK)`);
});

t.test('systemd-sysusers creates the dedicated user', async (t) => {
  if (!has('systemd-sysusers')) {
    t.pass('systemd-sysusers', { skip: 'systemd-sysusers not installed' });
    return;
  }
  const root = tmp();
  mkdirSync(join(root, 'etc'));
  const r = spawnSync('systemd-sysusers', [`--root=${root}`, join(REPO, 'deploy', 'systemd', 'vigie.sysusers.conf')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(readFileSync(join(root, 'etc', 'passwd'), 'utf8'), /^vigie:x:\d+:\d+:Vigie filtering proxy:\/var\/lib\/vigie:\/usr\/sbin\/nologin$/m);
});
