import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { WireRow } from '../src/journal/row.js';
import { monthOf } from '../src/journal/schema.js';
import { JournalWriter } from '../src/journal/writer.js';
import { tmp } from './helpers.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
// The journal commands on a bare program: the same module `vigie journal` runs, without loading
// the rest of the CLI (API server, ...) in every child. The kill test runs them through src/cli.ts.
const ENTRY = `import { Command } from 'commander';
import { registerJournal } from './src/cli/journal.js';
const program = new Command('vigie');
registerJournal(program);
await program.parseAsync(process.argv.slice(1), { from: 'user' });`;
const vigie = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENTRY, 'journal', ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });

const row = (id: number, time: number, client: string, host: string, block: boolean): WireRow => [id, time, client, null, 'college', 'GET', 'http', host, 80, '/p', block ? 403 : 200, 100, 1000, 5, block ? 'block' : 'allow', block ? 'games' : null, block ? 'category' : 'default', 3];

t.test('vigie journal export | stats | verify | purge', async (t) => {
  const data = tmp();
  const file = join(data, 'journal', 'journal.db');
  const w = new JournalWriter(file);
  const day = Date.UTC(2026, 10, 20, 8); // 09:00 in Paris
  const old = day - 500 * 86_400_000;
  w.write([row(1, old, '10.0.0.9', 'old.test', false)], [], old + 1000);
  w.write([row(2, day, '10.0.0.1', 'www.games.test', true), row(3, day + 60_000, '10.0.0.2', 'kids.test', false), row(4, day + 3_600_000, '10.0.0.1', 'kids.test', false)], [], day + 3_700_000);
  w.close();

  const all = vigie('export', '--data', data, '--format', 'csv');
  t.equal(all.status, 0, all.stderr);
  t.equal(all.stdout.trimEnd().split('\n').length, 5, 'header and four rows');
  const one = vigie('export', '--data', data, '--format', 'jsonl', '--client', '10.0.0.1', '--from', '2026-11-20T09:00:00+01:00', '--to', '2026-11-20T09:30');
  t.equal(one.status, 0, one.stderr);
  t.match(
    one.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l)),
    [{ id: 2, host: 'www.games.test', decision: 'block', category: 'games', profile: 'college' }],
  );
  const badTime = vigie('export', '--data', data, '--from', 'yesterday');
  t.not(badTime.status, 0);
  t.match(badTime.stderr, /"yesterday" is not an ISO 8601 date or time/);

  const stats = vigie('stats', '--data', data, '--from', '2026-11-20', '--bucket', 'day');
  t.equal(stats.status, 0, stats.stderr);
  t.match(stats.stdout, /start \(Europe\/Paris\)\s+profile\s+category\s+requests\s+blocked/);
  t.match(stats.stdout, /2026-11-20 00:00\s+college\s+games\s+1\s+1/);
  t.match(stats.stdout, /2026-11-20 00:00\s+college\s+-\s+2\s+0/);
  t.match(stats.stdout, /total\s+3\s+1/);

  const ok = vigie('verify', '--data', data);
  t.equal(ok.status, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, /^OK: 2 links, 4 rows, 0 tunnel ends checked; head 2:[0-9a-f]{64}/m);

  const purged = vigie('purge', '--data', data);
  t.equal(purged.status, 0, purged.stderr);
  t.match(purged.stdout, new RegExp(`purged ${monthOf(old)} \\(1 rows, retention 365 days`));

  const db = new Database(file);
  db.prepare(`UPDATE c_${monthOf(day)} SET bo = 1 WHERE id = 3`).run();
  db.close();
  const bad = vigie('verify', '--data', data);
  t.equal(bad.status, 1, 'exit 1 when tampered');
  t.match(bad.stdout, /^CHANGED link 2: ids 2\.\.4 \(2026-11-20T08:00:00\.000Z \.\. 2026-11-20T09:00:00\.000Z\): /m);
  t.match(bad.stdout, /^TAMPERED: /m);
});
