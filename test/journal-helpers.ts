import Database from 'better-sqlite3';
import { copyFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { verifyJournal, type VerifyReport } from '../src/journal/verify.js';

/** Verifies a copy of the journal `file` (named `<name>.db` beside it) after `sql` changed it. */
export function verifyTampered(file: string, name: string, sql: string): VerifyReport {
  const copy = join(dirname(file), `${name}.db`);
  copyFileSync(file, copy);
  const db = new Database(copy);
  try {
    db.exec(sql);
    return verifyJournal(db);
  } finally {
    db.close();
  }
}
