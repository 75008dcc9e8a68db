import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { adminTokenFile } from '../src/supervision/tokens.js';
import { freePort, tmp } from './helpers.js';
import { postgresMissing, startPostgres } from './pg-helpers.js';
import { REPO, writeJson } from './service-cli.js';
import { call, certFiles } from './supervision-helpers.js';

const vigie = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });

t.test('a bad academy config is refused with its JSON path, exit 2', async (t) => {
  const dir = tmp();
  const r = vigie(['academy', 'start', '--config', writeJson(join(dir, 'a.json'), { dataDir: dir, postgres: { url: 'mysql://x' }, fleet: { staleSecs: 3 } })]);
  t.equal(r.status, 2, r.stderr);
  t.match(r.stderr, /\/postgres\/url: must match pattern/);
  t.match(r.stderr, /\/fleet: unknown key "staleSecs"/);
  const missing = vigie(['academy', 'start', '--config', writeJson(join(dir, 'b.json'), { dataDir: dir })]);
  t.equal(missing.status, 2);
  t.match(missing.stderr, /\/postgres: must have required property/);
});

t.test('vigie academy start serves, verify checks, SIGTERM stops', { skip: postgresMissing() }, async (t) => {
  const db = await startPostgres();
  t.teardown(() => db.destroy());
  const dir = tmp('vigie-academy-cli-');
  const port = await freePort();
  const file = writeJson(join(dir, 'academy.json'), { listen: { host: '127.0.0.1', port }, ...certFiles(), dataDir: join(dir, 'data'), postgres: { url: db.url }, metrics: { enabled: false } });
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'academy', 'start', '--config', file], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => void child.kill('SIGKILL'));
  const until = Date.now() + 30_000;
  while (!/academy API listening/.test(log) && Date.now() < until && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  t.match(log, /academy API listening/);
  t.match(log, /admin token created/, 'its own token store, first start');
  const cert = readFileSync(certFiles().cert, 'utf8');
  const health = await call(port, cert, 'GET', '/api/v1/health');
  t.match(health.json, { status: 'ok', postgres: 'ok', gateways: 0 });
  const admin = readFileSync(adminTokenFile(join(dir, 'data')), 'utf8').trim();
  t.equal((await call(port, cert, 'GET', '/api/v1/fleet', { token: admin })).status, 200);
  const v = vigie(['academy', 'verify', '--config', file]);
  t.equal(v.status, 0, 'an empty copy verifies');
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'stops on SIGTERM');
});

t.test('the deploy files: example config valid, systemd unit accepted', async (t) => {
  const { resolveAcademyConfig } = await import('../src/academy/config.js');
  const example = JSON.parse(readFileSync(join(REPO, 'deploy', 'academy.example.json'), 'utf8'));
  t.match(resolveAcademyConfig(example), { listen: { port: 8444 }, retentionDays: 365, fleet: { staleSeconds: 180 } });
  const unit = join(REPO, 'deploy', 'systemd', 'vigie-academy.service');
  t.match(readFileSync(unit, 'utf8'), /^ExecStart=.* academy start --config \/etc\/vigie\/academy\.json$/m);
  if (spawnSync('systemd-analyze', ['--version']).error) {
    t.pass('systemd-analyze', { skip: 'systemd-analyze not installed' });
    return;
  }
  const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
  t.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});
