import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { resolveConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { PolicyStore, PolicyValidationError } from '../src/policy/store.js';
import { tmp, writeLists } from './helpers.js';

const config = (dataDir: string, extra: Record<string, unknown> = {}) =>
  resolveConfig({ dataDir, lists: { ut1: null, academy: writeLists(tmp(), { 'academy-allow': { domains: ['ok.test'] }, 'academy-deny': { domains: ['no.test', 'bad..line'] } }) }, ...extra });

t.test('versions: serialised, validated, persisted, recovered', async (t) => {
  const dir = tmp();
  const lines: string[] = [];
  const log = createLogger('info', (l) => lines.push(l));
  const store = new PolicyStore(config(dir), log);
  await store.load();
  t.equal(store.version, 1);
  t.same(store.current.lists['academy-deny']!.domains, ['no.test']);
  t.ok(lines.some((l) => /academy list: line ignored .*bad\.\.line|line ignored list=academy-deny/.test(l)), 'a bad line of the lists folder is reported');

  // Ten changes at once: each gets its own version, none is lost.
  await Promise.all(Array.from({ length: 10 }, (_, i) => store.change({ who: 't', why: `add ${i}`, action: 'list.add', source: 'test' }, (d) => {
    d.lists['academy-deny']!.domains.push(`site${i}.test`);
  })));
  t.equal(store.version, 11);
  t.equal(store.current.lists['academy-deny']!.domains.length, 11);
  t.same(readdirSync(join(dir, 'policy')).sort().slice(0, 2), ['000001.json', '000002.json'], 'the base is written with the first change');

  await t.rejects(store.change({ who: 't', why: '', action: 'x', source: 'test' }, (d) => {
    d.lists['academy-deny']!.domains.push('not valid');
  }), PolicyValidationError);
  await t.rejects(store.change({ who: 't', why: '', action: 'x', source: 'test' }, (d) => {
    delete d.profiles.cycle3;
  }), /cycle3.*cannot disappear/, 'a profile used by a client network stays');
  t.equal(store.version, 11, 'refused changes make no version');
  t.equal(readdirSync(join(dir, 'policy')).filter((f) => f.endsWith('.json')).length, 11);

  // A damaged latest file: the next start falls back to the previous version and says so.
  writeFileSync(join(dir, 'policy', '000011.json'), '{"meta": {"version": 11}, "profiles": ');
  const lines2: string[] = [];
  const again = new PolicyStore(config(dir), createLogger('info', (l) => lines2.push(l)));
  await again.load();
  t.equal(again.version, 10);
  t.ok(lines2.some((l) => /stored version 11 unusable/.test(l)));
  const v3 = await again.getVersion(3);
  t.equal(v3?.lists['academy-deny']!.domains.length, 3);
  t.equal(await again.getVersion(99), null);
});

t.test('a reloaded config: its profiles apply until the API manages the policy', async (t) => {
  const dir = tmp();
  const store = new PolicyStore(config(dir), createLogger('error'));
  await store.load();
  const edited = config(dir, { profiles: { staff: { mode: 'blocklist', categories: ['malware', 'games'] }, extra: { mode: 'allowlist', categories: [] } } });
  store.reconfigure(edited);
  t.same(store.current.profiles.staff!.categories, ['malware', 'games'], 'base version follows the file');
  await store.change({ who: 't', why: '', action: 'profile.replace', source: 'test' }, (d) => {
    d.profiles.staff = { ...d.profiles.staff!, categories: ['malware'] };
  });
  store.reconfigure(config(dir, { profiles: { staff: { mode: 'blocklist', categories: ['adult'] }, later: { mode: 'blocklist', categories: [] } } }));
  t.same(store.current.profiles.staff!.categories, ['malware'], 'the stored version wins over the file');
  t.ok(store.current.profiles.later, 'a profile new to the file is added');
});

t.test('vigie token create|list|revoke on a data dir', async (t) => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { readFileSync } = await import('node:fs');
  const run = (...args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'token', ...args], { timeout: 60_000 });
  const dir = tmp();
  const created = await run('create', '--role', 'requisition', '--name', 'OPJ Durand', '--data', dir);
  const token = created.stdout.trim();
  t.match(token, /^vigie_[A-Za-z0-9_-]{43}$/, 'stdout holds the token and nothing else');
  t.match(created.stderr, /created requisition token tk_[0-9a-f]{12}/);
  const list = await run('list', '--json', '--data', dir);
  t.notOk(list.stdout.includes(token));
  const [rec] = JSON.parse(list.stdout) as { id: string; role: string; name: string; revoked: string | null }[];
  t.match(rec, { role: 'requisition', name: 'OPJ Durand', revoked: null });
  t.match((await run('revoke', 'OPJ Durand', '--data', dir)).stdout, new RegExp(`revoked ${rec!.id}`));
  await t.rejects(run('revoke', 'OPJ Durand', '--data', dir), 'nothing left to revoke: exit 1');
  await t.rejects(run('create', '--role', 'root', '--name', 'x', '--data', dir), 'unknown role refused');
  const audit = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  t.same(audit.map((a) => [a.action, a.source]), [['token.create', 'cli'], ['token.revoke', 'cli']]);
});
