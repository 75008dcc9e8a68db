import Database from 'better-sqlite3';
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { prepareDbFile, prepareDir, restrict, type FileAccess } from './files.js';
import type { ChainHead } from './head.js';
import { verifyJournal, type VerifyProblem } from './verify.js';

export interface BackupResult {
  file: string;
  bytes: number;
  /** The copy's chain head, rows and links, as its verification found them. */
  head: ChainHead;
  rows: number;
  entries: number;
  ok: boolean;
  problems: VerifyProblem[];
  ms: number;
}

const NAME = /^journal-\d{8}T\d{6}Z\.db$/;
const stamp = (t: number) => new Date(t).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

/** Where a backup to `dest` goes: into it when it is a folder (or ends with `/`), as `journal-<UTC time>.db`. */
export function backupTarget(dest: string, now = Date.now()): string {
  const isDir = dest.endsWith('/') || (existsSync(dest) && statSync(dest).isDirectory());
  return isDir ? join(dest, `journal-${stamp(now)}.db`) : dest;
}

/**
 * Copies the journal with SQLite's online backup (a consistent copy while the gateway writes),
 * into one self-contained file (rollback journal, no `-wal`) with the journal's file access, then
 * verifies the copy's chain. The copy is made in one step: a step-by-step copy restarts each time
 * the gateway commits, every `journal.flushMs`. Synchronous work: run it off the proxy's thread
 * (the gateway's daily backup uses its own thread, backup-worker.ts). Records a `backup` event
 * with the head in the journal when it may write there (verify compares it later).
 */
export async function backupJournal(source: string, dest: string, access: FileAccess, now = Date.now()): Promise<BackupResult> {
  const t0 = performance.now();
  const file = backupTarget(dest, now);
  if (existsSync(file)) throw new Error(`${file} exists already: a backup never overwrites a file`);
  let src: Database.Database;
  try {
    src = new Database(source, { readonly: true, fileMustExist: true });
  } catch (e) {
    throw new Error(`backup of ${source} failed: cannot open it (${(e as Error).message})`);
  }
  const part = `${file}.part`;
  try {
    prepareDir(dirname(file), access);
    rmSync(part, { force: true });
    prepareDbFile(part, access);
    src.pragma('busy_timeout = 5000');
    await src.backup(part, { progress: () => 0x7fffffff });
  } catch (e) {
    rmSync(part, { force: true });
    throw new Error(`backup of ${source} to ${file} failed: ${(e as Error).message}`);
  } finally {
    src.close();
  }
  const copy = new Database(part);
  let report;
  try {
    // One file to carry away: the copy keeps no write-ahead log beside it.
    copy.pragma('journal_mode = DELETE');
    report = verifyJournal(copy);
  } finally {
    copy.close();
  }
  renameSync(part, file);
  restrict(file, access);
  const result: BackupResult = { file, bytes: statSync(file).size, head: report.head, rows: report.rows, entries: report.entries, ok: report.ok, problems: report.problems, ms: Math.round(performance.now() - t0) };
  recordBackup(source, result, now);
  return result;
}

/** The `backup` event, with the copy's head: a later verify of the journal compares it. Best effort. */
function recordBackup(source: string, r: BackupResult, now: number): void {
  try {
    const db = new Database(source, { fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      db.prepare(`INSERT INTO events (time, kind, detail) VALUES (?, 'backup', ?)`).run(now, JSON.stringify({ file: r.file, head: r.head, rows: r.rows, ok: r.ok }));
    } finally {
      db.close();
    }
  } catch {
    // read-only access to the journal (an operator in its group): the backup itself stands
  }
}

/** Keeps the newest `keep` backups (`journal-<UTC time>.db`) of `dir`; returns the files removed. */
export function rotateBackups(dir: string, keep: number): string[] {
  const files = readdirSync(dir).filter((f) => NAME.test(f)).sort().reverse();
  const gone = files.slice(keep).map((f) => join(dir, f));
  for (const f of gone) rmSync(f, { force: true });
  return gone.map((f) => basename(f));
}

/** The next time (ms) at which the local hour (in `timezone`) is `hour`:00, after `now`. */
export function nextBackupAt(hour: number, timezone: string, now = Date.now()): number {
  const fmt = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit' });
  // Quarter hours cover every offset in use (…:30, …:45); two days cover a skipped hour.
  let t = Math.floor(now / 900_000) * 900_000 + 900_000;
  for (let i = 0; i < 200; i++, t += 900_000) if (fmt.format(t) === `${String(hour).padStart(2, '0')}:00`) return t;
  return now + 86_400_000;
}
