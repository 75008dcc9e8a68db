import Database from 'better-sqlite3';
import { chmodSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { nextBackupAt } from '../src/journal/backup.js';
import { DailyBackup } from '../src/journal/backup-schedule.js';
import { fileAccess } from '../src/journal/files.js';
import type { WireRow } from '../src/journal/row.js';
import { JournalWriter } from '../src/journal/writer.js';
import { createLogger } from '../src/log.js';
import { resolveConfig } from '../src/config/load.js';
import { tmp } from './helpers.js';

const row = (id: number, time: number): WireRow => [id, time, '10.0.0.1', null, 'college', 'GET', 'http', `h${id}.test`, 80, '/p', 200, 1, 2, 3, 'allow', null, 'default', 1];
const mode = (f: string) => statSync(f).mode & 0o7777;

t.test('the journal, its -wal and -shm are created 0600 whatever the umask', async (t) => {
  const old = process.umask(0o022);
  t.teardown(() => process.umask(old));
  const dir = join(tmp(), 'journal');
  const file = join(dir, 'journal.db');
  const w = new JournalWriter(file);
  w.write([row(1, Date.now())]);
  for (const f of [file, `${file}-wal`, `${file}-shm`]) t.equal(mode(f), 0o600, `${f.slice(dir.length)} 0600`);
  t.equal(mode(dir), 0o700, 'its folder 0700');
  w.close();
});

t.test('with journal.group: 0640 and the group, the folder setgid so later -wal/-shm files take it', async (t) => {
  const gid = process.getgid!();
  const access = fileAccess(gid);
  t.same(access, { mode: 0o640, gid });
  const dir = join(tmp(), 'journal');
  const file = join(dir, 'journal.db');
  const w = new JournalWriter(file, { access });
  w.write([row(1, Date.now())]);
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    t.equal(mode(f), 0o640, `${f.slice(dir.length)} 0640`);
    t.equal(statSync(f).gid, gid);
  }
  t.equal(mode(dir), 0o2750, 'folder 02750');
  w.close();
});

t.test('a journal made world-readable by an older version is made private at its next open', async (t) => {
  const file = join(tmp(), 'journal', 'journal.db');
  new JournalWriter(file).close();
  chmodSync(file, 0o644);
  const w = new JournalWriter(file);
  t.equal(mode(file), 0o600);
  w.close();
});

t.test('journal.group must name a group: a config error naming the field', async (t) => {
  t.throws(() => resolveConfig({ journal: { group: 'no-such-group-vigie' } }), /\/journal\/group: journal\.group "no-such-group-vigie": no such group in \/etc\/group/);
  t.throws(() => resolveConfig({ journal: { group: 'bad group' } }), /\/journal\/group/);
  const root = resolveConfig({ journal: { group: 'root', backup: { dir: '/var/backups/vigie', hour: 3, keep: 7 }, maxExportDays: 7 } });
  t.match(root.journal, { group: 'root', maxExportDays: 7, backup: { dir: '/var/backups/vigie', hour: 3, keep: 7 }, flushMs: 50 });
  t.same(fileAccess('root'), { mode: 0o640, gid: 0 });
  t.throws(() => resolveConfig({ journal: { backup: { hour: 3 } } }), /\/journal\/backup/);
  t.throws(() => resolveConfig({ journal: { backup: { dir: '/x', hour: 24 } } }), /\/journal\/backup/);
});

t.test('the daily backup: at the configured local hour, in its own thread, verified, rotated', async (t) => {
  // 2026-12-06 is winter: Paris is UTC+1, so 02:00 there is 01:00 UTC.
  t.equal(new Date(nextBackupAt(2, 'Europe/Paris', Date.UTC(2026, 11, 6, 10))).toISOString(), '2026-12-07T01:00:00.000Z');
  t.equal(new Date(nextBackupAt(2, 'Europe/Paris', Date.UTC(2026, 11, 6, 0, 30))).toISOString(), '2026-12-06T01:00:00.000Z');
  t.equal(new Date(nextBackupAt(2, 'Asia/Kolkata', Date.UTC(2026, 11, 6, 0))).toISOString(), '2026-12-06T20:30:00.000Z');

  const file = join(tmp(), 'journal', 'journal.db');
  const w = new JournalWriter(file);
  w.write([row(1, Date.now()), row(2, Date.now())]);
  const dir = join(tmp(), 'backups');
  const lines: string[] = [];
  const b = new DailyBackup({ source: file, dir, hour: 2, keep: 2, timezone: 'Europe/Paris', access: fileAccess(null), log: createLogger('info', (l) => lines.push(l)) });
  for (let i = 0; i < 3; i++) {
    const r = await b.runNow();
    t.match(r, { ok: true, result: { ok: true, rows: 2 + i } }, `backup ${i + 1} verified`);
    w.write([row(3 + i, Date.now())]);
    // Names have the second: the next one a second later.
    await new Promise((r) => setTimeout(r, 1100));
  }
  w.close();
  const kept = readdirSync(dir).sort();
  t.equal(kept.length, 2, `the newest two kept: ${kept.join(', ')}`);
  for (const f of kept) t.equal(mode(join(dir, f)), 0o600, `${f} 0600`);
  const newest = new Database(join(dir, kept[1]!), { readonly: true });
  t.equal(newest.prepare('SELECT count(*) FROM c_' + kept[1]!.slice(8, 14)).pluck().get(), 4, 'the newest holds the rows of its time');
  newest.close();
  t.match(lines.join(''), /INFO  journal backup file=.*rows=4/);
  const events = new Database(file, { readonly: true }).prepare(`SELECT detail FROM events WHERE kind = 'backup'`).pluck().all() as string[];
  t.equal(events.length, 3, 'each backup recorded its head in the journal, for verify');

  // A destination that cannot be written: logged, nothing rotated.
  const bad = new DailyBackup({ source: join(tmp(), 'none.db'), dir, hour: 2, keep: 1, timezone: 'UTC', access: fileAccess(null), log: createLogger('info', (l) => lines.push(l)) });
  t.match(await bad.runNow(), { ok: false, message: /backup of .*none\.db/ });
  t.equal(readdirSync(dir).length, 2, 'nothing removed after a failure');
  t.notOk(existsSync(join(dir, 'none.db')));
  t.match(lines.join(''), /ERROR journal backup failed/);
});
