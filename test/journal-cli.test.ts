import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { WireRow } from '../src/journal/row.js';
import { monthOf } from '../src/journal/schema.js';
import { JournalWriter } from '../src/journal/writer.js';
import { tmp } from './helpers.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
// Child processes on a shared, loaded host: more than the default two minutes for the file.
t.setTimeout(400_000);
// The journal commands on a bare program: the same module `vigie journal` runs, without loading
// the rest of the CLI (API server, ...) in every child. The kill test runs them through src/cli.ts.
const ENTRY = `import { Command } from 'commander';
import { registerJournal } from './src/cli/journal.js';
const program = new Command('vigie');
registerJournal(program);
await program.parseAsync(process.argv.slice(1), { from: 'user' });`;
const vigie = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ENTRY, 'journal', ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000 });

const row = (id: number, time: number, client: string, host: string, block: boolean): WireRow => [id, time, client, null, 'college', 'GET', 'http', host, 80, '/p', block ? 403 : 200, 100, 1000, 5, block ? 'block' : 'allow', block ? 'games' : null, block ? 'category' : 'default', 3];
const auditLines = (data: string) => readFileSync(join(data, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { actor: string; source: string; action: string; target: string | null; outcome: string; details: Record<string, unknown> });
const me = `cli (${userInfo().username})`;

const day = Date.UTC(2026, 10, 20, 8); // 09:00 in Paris
const REQ = ['--reference', 'PV 2026/0042', '--from', '2026-11-20', '--to', '2026-11-21'];

t.test('vigie journal export | stats | verify | purge', async (t) => {
  const data = tmp();
  const file = join(data, 'journal', 'journal.db');
  const w = new JournalWriter(file);
  const old = day - 500 * 86_400_000;
  w.write([row(1, old, '10.0.0.9', 'old.test', false)], [], old + 1000);
  w.write([row(2, day, '10.0.0.1', 'www.games.test', true), row(3, day + 60_000, '10.0.0.2', 'kids.test', false), row(4, day + 3_600_000, '10.0.0.1', 'kids.test', false)], [], day + 3_700_000);
  w.close();

  const all = vigie('export', '--data', data, '--format', 'csv', ...REQ);
  t.equal(all.status, 0, all.stderr);
  const lines = all.stdout.trimEnd().split('\n');
  t.equal(lines.length, 5, 'header, three rows, the chain head');
  const head = vigie('head', '--data', data);
  t.equal(head.status, 0, head.stderr);
  t.match(head.stdout, /^2:[0-9a-f]{64}\n$/);
  t.equal(lines[4], `# chain head ${head.stdout.trim()} - 3 rows - ${lines[4]!.split(' - ')[2]}`, 'the CSV ends with the head it reached');
  const one = vigie('export', '--data', data, '--format', 'jsonl', '--client', '10.0.0.1', '--reference', 'PV-7', '--from', '2026-11-20T09:00:00+01:00', '--to', '2026-11-20T09:30+01:00');
  t.equal(one.status, 0, one.stderr);
  const got = one.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.match(got, [{ id: 2, host: 'www.games.test', decision: 'block', category: 'games', profile: 'college' }, { chainHead: head.stdout.trim(), rows: 1 }]);
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
  t.equal(vigie('verify', '--data', data, '--head', head.stdout.trim()).status, 0, 'the head still verifies after a purge');

  const db = new Database(file);
  db.prepare(`UPDATE c_${monthOf(day)} SET bo = 1 WHERE id = 3`).run();
  db.close();
  const bad = vigie('verify', '--data', data);
  t.equal(bad.status, 1, 'exit 1 when tampered');
  t.match(bad.stdout, /^CHANGED link 2: ids 2\.\.4 \(2026-11-20T08:00:00\.000Z \.\. 2026-11-20T09:00:00\.000Z\): /m);
  t.match(bad.stdout, /^TAMPERED: /m);

  const audit = auditLines(data);
  t.match(audit.find((e) => e.action === 'journal.export' && e.target === 'PV 2026/0042'), { actor: me, source: 'cli', outcome: 'ok', details: { reference: 'PV 2026/0042', format: 'csv', filter: { from: Date.parse('2026-11-20'), to: Date.parse('2026-11-21') } } }, 'a CLI export is audited with the OS user');
  t.match(audit.find((e) => e.action === 'journal.export.end' && e.target === 'PV 2026/0042'), { actor: me, outcome: 'ok', details: { lines: 5, complete: true, head: head.stdout.trim() } });
  t.match(audit.filter((e) => e.action === 'journal.verify').map((e) => e.outcome), ['ok', 'ok', 'failed'], 'and so is every verify, with its outcome');
});

t.test('requisitions are scoped: reference and a time range of at most journal.maxExportDays', async (t) => {
  const data = tmp();
  const w = new JournalWriter(join(data, 'journal', 'journal.db'));
  w.write([row(1, day, '10.0.0.1', 'a.test', false)], [], day + 1000);
  w.close();
  const refused = (args: string[], field: RegExp, why: RegExp) => {
    const r = vigie('export', '--data', data, ...args);
    t.equal(r.status, 2, `refused: ${args.join(' ')}`);
    t.match(r.stderr, field);
    t.match(r.stderr, why);
    t.equal(r.stdout, '', 'nothing exported');
  };
  refused(['--from', '2026-11-20', '--to', '2026-11-21'], /--reference:/, /mandatory: at least 3 characters/);
  refused(['--reference', '   ', '--from', '2026-11-20', '--to', '2026-11-21'], /--reference:/, /at least 3 characters besides spaces/);
  refused(['--reference', ' x ', '--from', '2026-11-20', '--to', '2026-11-21'], /--reference:/, /at least 3/);
  refused(['--reference', 'PV-1'], /--from:[^\n]*\n--to:/, /mandatory/);
  refused(['--reference', 'PV-1', '--from', '2026-11-01'], /--to:/, /mandatory \(at most 31 days\)/);
  refused(['--reference', 'PV-1', '--from', '2026-10-01', '--to', '2026-11-21'], /--to:/, /covers 51 days; at most 31/);
  const audit = auditLines(data).filter((e) => e.action === 'journal.export');
  t.equal(audit.length, 6, 'each refusal is audited');
  t.ok(audit.every((e) => e.outcome === 'refused' && e.actor === me));
});

t.test('verify is anchored outside the chain: recorded heads, --head, cut tails and wipes', async (t) => {
  const base = tmp();
  const file = join(base, 'journal', 'journal.db');
  const w = new JournalWriter(file);
  // What the writer thread records (worker.ts): the head at each start and stop.
  const stop = () => w.record('stop', { unwritten: 0, head: w.head(), lastId: w.nextId() - 1 });
  w.write([row(1, day, '10.0.0.1', 'a.test', false), row(2, day + 1, '10.0.0.1', 'b.test', false)], [], day + 100);
  w.write([row(3, day + 200, '10.0.0.2', 'c.test', false)], [], day + 300);
  stop();
  const mid = `${w.head().id}:${w.head().hash}`;
  w.write([row(4, day + 400, '10.0.0.3', 'd.test', true), row(5, day + 500, '10.0.0.3', 'e.test', false)], [], day + 600);
  stop();
  const last = `${w.head().id}:${w.head().hash}`;
  w.close();
  const p = monthOf(day);
  /** A copy of the journal with `sql` applied to it. */
  const tampered = (sql: string) => {
    const data = tmp();
    cpSync(join(base, 'journal'), join(data, 'journal'), { recursive: true });
    const db = new Database(join(data, 'journal', 'journal.db'));
    db.exec(sql);
    db.close();
    return data;
  };

  t.equal(vigie('verify', '--data', base, '--head', last, '--head', mid).status, 0, 'heads given that the chain holds: OK');

  // The last link and its rows deleted: the chain alone still verifies; its recorded numbering tells.
  const cut = vigie('verify', '--data', tampered(`DELETE FROM chain WHERE id = 3; DELETE FROM c_${p} WHERE id > 3`));
  t.equal(cut.status, 1, `a cut tail fails: ${cut.stdout}`);
  t.match(cut.stdout, /^REMOVED link 3: ids 4\.\.5: the tail was cut: rows from id 4 to 5 and links 3\.\.3 are gone/m);
  // The same, with SQLite's numbering and the journal's own count put back as they were: the
  // head the last stop recorded tells.
  const careful = vigie('verify', '--data', tampered(`DELETE FROM chain WHERE id = 3; DELETE FROM c_${p} WHERE id > 3; UPDATE sqlite_sequence SET seq = 2 WHERE name = 'chain'; UPDATE meta SET v = 3 WHERE k = 'high'`));
  t.equal(careful.status, 1, `a careful cut fails too: ${careful.stdout}`);
  t.match(careful.stdout, /the tail was cut: rows from id 4 to 5 and links 3\.\.3 are gone \(link 3 was the head \(event stop #\d+ at /);

  const wipe = `DELETE FROM chain; DELETE FROM c_${p}; DELETE FROM sqlite_sequence; UPDATE meta SET v = 0 WHERE k = 'high'`;
  const wiped = vigie('verify', '--data', tampered(wipe));
  t.equal(wiped.status, 1, `a wiped journal fails: ${wiped.stdout}`);
  t.match(wiped.stdout, /rows from id 1 to 5 and links 1\.\.3 are gone/);

  // Wiped with its events: nothing inside the file tells any more, only a head kept elsewhere.
  const blank = tampered(`${wipe}; DELETE FROM events`);
  t.equal(vigie('verify', '--data', blank).status, 0, 'wiped with its events: undetectable from inside');
  const given = vigie('verify', '--data', blank, '--head', mid);
  t.equal(given.status, 1, 'the head given with --head catches it');
  t.match(given.stdout, /rows from id 1 and links 1\.\.2 are gone \(link 2 was the head \(--head\)\)/);
  const rewritten = vigie('verify', '--data', base, '--head', `3:${'ab'.repeat(32)}`);
  t.equal(rewritten.status, 1, 'a head the chain does not hold');
  t.match(rewritten.stdout, /^CHAIN link 3: ids 4\.\.\?: link 3 is not the head recorded \(--head\): the chain was rewritten from row id 4 at the latest/m);

  const gone = tmp();
  const missing = vigie('verify', '--data', gone, '--head', last);
  t.equal(missing.status, 1, 'no journal at all, and a head kept: fails');
  t.match(missing.stdout, /REMOVED: no journal at .*every row up to link 3 is gone/);
  const malformed = vigie('verify', '--data', base, '--head', '3:xyz');
  t.equal(malformed.status, 1);
  t.match(malformed.stderr, /"3:xyz" is not a chain head \(ID:HASH/);
});

t.test('backup, then restore, then verify', async (t) => {
  const data = tmp();
  const file = join(data, 'journal', 'journal.db');
  const w = new JournalWriter(file);
  w.write([row(1, day, '10.0.0.1', 'a.test', false), row(2, day + 1, '10.0.0.2', 'b.test', true)], [], day + 100);
  w.record('start', { head: w.head(), lastId: 2 });
  const dest = join(tmp(), 'backups');
  // While a writer holds the journal open (the gateway running).
  const b = vigie('backup', dest + '/', '--data', data);
  t.equal(b.status, 0, b.stdout + b.stderr);
  t.match(b.stdout, /^backup verified: .*journal-\d{8}T\d{6}Z\.db \(2 rows, 1 links, .*; head 1:[0-9a-f]{64}$/m);
  const copy = /verified: (\S+)/.exec(b.stdout)![1]!;
  t.equal(statSync(copy).mode & 0o777, 0o600, 'the backup is 0600');
  t.notOk(existsSync(`${copy}-wal`) || existsSync(`${copy}.part`), 'one file, no -wal beside it');
  t.equal(vigie('backup', copy, '--data', data).status, 1, 'never overwrites a file');
  // The journal goes on after the backup.
  w.write([row(3, day + 200, '10.0.0.3', 'c.test', false)], [], day + 300);
  const later = `${w.head().id}:${w.head().hash}`;
  w.close();
  t.match(auditLines(data).find((e) => e.action === 'journal.backup'), { actor: me, outcome: 'ok', target: copy, details: { rows: 2, verified: true } });

  // Restore (docs/journal.md): the gateway stopped, the backup copied in place of journal.db, -wal and -shm removed.
  const restored = tmp();
  cpSync(copy, join(restored, 'journal', 'journal.db'));
  const v = vigie('verify', '--data', restored);
  t.equal(v.status, 0, v.stdout);
  t.match(v.stdout, /^OK: 1 links, 2 rows/m);
  const r = new JournalWriter(join(restored, 'journal', 'journal.db'));
  t.equal(r.nextId(), 3, 'a restored journal continues its ids');
  r.write([row(3, day + 400, '10.0.0.4', 'd.test', false)], [], day + 500);
  r.close();
  t.equal(vigie('verify', '--data', restored).status, 0, 'and its chain');
  const lost = vigie('verify', '--data', restored, '--head', later);
  t.equal(lost.status, 1, 'a head kept after the backup shows what the restore lost');
  t.match(lost.stdout, /link 2 is not the head recorded \(--head\)/);
  rmSync(dest, { recursive: true, force: true });
});
