import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { resolveConfig } from '../src/config/load.js';
import { silentLogger } from '../src/log.js';
import { PolicyStore } from '../src/policy/store.js';
import { TEST_LISTS, tmp, writeLists } from './helpers.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli.ts', import.meta.url).pathname;

async function vigie(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    // State (compiled lists, policy versions) goes to a temp dir unless the test names one.
    const withData = args[0] === 'check' && !args.includes('--data') ? [...args, '--data', tmp()] : args;
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', CLI, ...withData], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

t.test('vigie --help lists the commands', async (t) => {
  const r = await vigie('--help');
  t.equal(r.code, 0);
  t.match(r.stdout, /start/);
  t.match(r.stdout, /check/);
});

t.test('vigie check --json with the bundled lists', async (t) => {
  const r = await vigie('check', 'https://1lkjmn.cc/', '--client', '127.0.0.5', '--json');
  t.equal(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout);
  t.match(d, { action: 'block', profile: 'staff', category: 'malware', rule: 'category', entry: '1lkjmn.cc' });
  t.match(d.listVersion, /^[0-9a-f]{16}$/);
  const kid = JSON.parse((await vigie('check', 'http://www.alexalamaternelle.eklablog.com/page', '--client', '127.0.0.2', '--json')).stdout);
  t.match(kid, { action: 'allow', profile: 'cycle1', category: 'child', rule: 'allowlist', entry: 'alexalamaternelle.eklablog.com' });
});

t.test('vigie check with --lists, --at and the text output', async (t) => {
  const lists = writeLists(tmp(), TEST_LISTS);
  // games are blocked for cycle3 in school hours only (embedded demo profile)
  const school = JSON.parse((await vigie('check', 'games.test', '--client', '127.0.0.1', '--lists', lists, '--at', '2026-11-24T10:00:00+01:00', '--json')).stdout);
  t.match(school, { action: 'block', category: 'games', period: 'within', entry: 'games.test' });
  const evening = JSON.parse((await vigie('check', 'games.test', '--client', '127.0.0.1', '--lists', lists, '--at', '2026-11-24T20:00:00+01:00', '--json')).stdout);
  t.match(evening, { action: 'allow', category: null, period: 'otherwise' });
  const text = await vigie('check', 'http://adult.test/x', '--client', '127.0.0.1', '--lists', lists);
  t.match(text.stdout, /^BLOCK http:\/\/adult\.test\/x/);
  t.match(text.stdout, /category: adult/);
  const outsider = JSON.parse((await vigie('check', 'open.test', '--client', '192.0.2.7', '--lists', lists, '--json')).stdout);
  t.match(outsider, { action: 'block', rule: 'no-client', profile: null });
  const badTime = await vigie('check', 'open.test', '--client', '127.0.0.1', '--at', 'yesterday');
  t.not(badTime.code, 0);
  t.match(badTime.stderr, /ISO 8601/);
});

t.test('vigie check applies the latest policy version stored by the supervision API', async (t) => {
  const lists = writeLists(tmp(), TEST_LISTS);
  const data = tmp();
  const before = JSON.parse((await vigie('check', 'http://homework-help.test/', '--client', '127.0.0.1', '--lists', lists, '--data', data, '--json')).stdout);
  t.match(before, { action: 'allow', policyVersion: 1 });
  const store = new PolicyStore(resolveConfig({ dataDir: data }), silentLogger);
  await store.load();
  await store.change({ who: 'test', why: 'cheating site', action: 'lists.add', source: 'api' }, (draft) => {
    draft.lists['academy-deny']!.domains.push('homework-help.test');
  });
  const after = JSON.parse((await vigie('check', 'http://homework-help.test/', '--client', '127.0.0.1', '--lists', lists, '--data', data, '--json')).stdout);
  t.match(after, { action: 'block', rule: 'list-deny', category: 'academy-deny', policyVersion: 2 });
});

t.test('vigie start refuses an invalid config with the path and the reason', async (t) => {
  const file = join(tmp(), 'bad.json');
  writeFileSync(file, JSON.stringify({ clients: [{ network: '10.0.0.0/8', profile: 'ghost' }] }));
  const r = await vigie('start', '--config', file);
  t.equal(r.code, 2);
  t.match(r.stderr, /bad\.json/);
  t.match(r.stderr, /\/clients\/0\/profile: unknown profile "ghost"/);
});
