import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { AafFile, AafOperation, Modification } from './aaf.js';
import { AafError } from './aaf.js';
import { classesOf, pupilLevel, staffRole, type DirectoryUser, type UserRole } from './levels.js';

/**
 * The academy directory in `<dataDir>/directory.db` (mode 0600): who may be identified, with what
 * role, level and classes. Names sit in their own table that only `identity()` reads (the API gives
 * it to the requisition role alone). A person the academy removes stays, marked `left`, as long as
 * the journal rows that may name them (the journal's retention), then is purged.
 */

export const directoryFile = (dataDir: string): string => join(dataDir, 'directory.db');

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  login TEXT,
  uai TEXT,
  structure TEXT,
  role TEXT NOT NULL,
  level TEXT,
  classes TEXT NOT NULL,
  attrs TEXT NOT NULL,
  source TEXT,
  updated TEXT NOT NULL,
  left_at TEXT
);
CREATE INDEX IF NOT EXISTS users_login ON users(login) WHERE login IS NOT NULL;
CREATE TABLE IF NOT EXISTS identities (id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE, sn TEXT, given_name TEXT);
CREATE TABLE IF NOT EXISTS establishments (jointure TEXT PRIMARY KEY, uai TEXT NOT NULL, name TEXT, updated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS imports (
  file TEXT NOT NULL, kind TEXT NOT NULL, mode TEXT NOT NULL, uai TEXT, at TEXT NOT NULL,
  added INTEGER NOT NULL, modified INTEGER NOT NULL, removed INTEGER NOT NULL, unknown INTEGER NOT NULL, ignored INTEGER NOT NULL
);
`;

/** What one file changed. */
export interface ImportResult {
  file: string;
  kind: AafFile['kind'];
  mode: AafFile['mode'];
  added: number;
  modified: number;
  /** Deleted by the file, or (full export) absent from it. */
  removed: number;
  /** Delta entries about people the directory does not know: reported, not fatal. */
  unknown: { line: number; id: string; op: AafOperation['op'] }[];
  /** Entries read and discarded (PersRelEleve: parents' data is never kept). */
  ignored: number;
}

export interface DirectoryIdentity {
  id: string;
  sn: string | null;
  givenName: string | null;
}

interface UserRow {
  id: string;
  kind: string;
  login: string | null;
  uai: string | null;
  structure: string | null;
  role: UserRole;
  level: string | null;
  classes: string;
  attrs: string;
  left_at: string | null;
}

type Attrs = Map<string, string[]>;

function applyModification(attrs: Attrs, name: string, mod: Modification, values: string[]): void {
  if (mod === 'replace') {
    if (values.length) attrs.set(name, values);
    else attrs.delete(name);
  } else if (mod === 'add') {
    attrs.set(name, [...new Set([...(attrs.get(name) ?? []), ...values])]);
  } else {
    const left = values.length ? (attrs.get(name) ?? []).filter((v) => !values.includes(v)) : [];
    if (left.length) attrs.set(name, left);
    else attrs.delete(name);
  }
}

const NAME_KEYS = new Set(['sn', 'givenName']);

export class Directory {
  private readonly statements = new Map<string, Database.Statement>();

  private constructor(readonly db: Database.Database) {}

  /** Prepared once per connection: an import runs the same few statements thousands of times. */
  private stmt(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /** Opens (creating it 0600 when missing) the directory database; `readonly` for readers in the gateway. */
  static open(dataDir: string, opts: { readonly?: boolean } = {}): Directory {
    const file = directoryFile(dataDir);
    if (!opts.readonly) {
      mkdirSync(dataDir, { recursive: true });
      // Created with the right mode before SQLite opens it: never a moment world-readable.
      closeSync(openSync(file, 'a', 0o600));
      chmodSync(file, 0o600);
    }
    const db = new Database(file, { readonly: !!opts.readonly, fileMustExist: !!opts.readonly });
    if (!opts.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.exec(SCHEMA);
    }
    return new Directory(db);
  }

  close(): void {
    this.db.close();
  }

  /**
   * Applies a parsed file in one transaction: all of it or nothing. People the academy removes are
   * marked `left` (kept for requisitions until `purge`).
   */
  apply(file: AafFile, now = new Date()): ImportResult {
    const result: ImportResult = { file: file.file, kind: file.kind, mode: file.mode, added: 0, modified: 0, removed: 0, unknown: [], ignored: 0 };
    const at = now.toISOString();
    const run = this.db.transaction(() => {
      if (file.kind === 'PersRelEleve') {
        result.ignored = file.operations.length;
      } else if (file.kind === 'EtabEducNat') {
        this.applyEstablishments(file, at, result);
      } else {
        const seen = new Set<string>();
        for (const op of file.operations) {
          seen.add(op.id);
          this.applyPerson(file, op, at, result);
        }
        // A full export is the whole list of its kind for its establishment: who is not in it has left.
        if (file.mode === 'Complet' && file.uai) {
          const stale = this.stmt('SELECT id FROM users WHERE kind = ? AND source = ? AND left_at IS NULL').all(file.kind, file.uai) as { id: string }[];
          const leave = this.stmt('UPDATE users SET left_at = ?, updated = ? WHERE id = ?');
          for (const { id } of stale) {
            if (!seen.has(id)) {
              leave.run(at, at, id);
              result.removed++;
            }
          }
        }
      }
      this.stmt('INSERT INTO imports (file, kind, mode, uai, at, added, modified, removed, unknown, ignored) VALUES (?,?,?,?,?,?,?,?,?,?)')
        .run(file.file, file.kind, file.mode, file.uai, at, result.added, result.modified, result.removed, result.unknown.length, result.ignored);
    });
    run.immediate();
    return result;
  }

  private applyEstablishments(file: AafFile, at: string, result: ImportResult): void {
    const upsert = this.stmt('INSERT INTO establishments (jointure, uai, name, updated) VALUES (?,?,?,?) ON CONFLICT(jointure) DO UPDATE SET uai = excluded.uai, name = excluded.name, updated = excluded.updated');
    for (const op of file.operations) {
      if (op.op === 'delete') {
        result.removed += this.stmt('DELETE FROM establishments WHERE jointure = ?').run(op.id).changes;
        continue;
      }
      const uai = op.attrs.get('ENTStructureUAI')?.values[0];
      if (!uai) {
        if (op.op === 'add') throw new AafError(file.file, op.line, `establishment ${op.id} has no ENTStructureUAI`);
        continue;
      }
      const existed = this.stmt('SELECT 1 FROM establishments WHERE jointure = ?').get(op.id);
      upsert.run(op.attrs.get('ENTStructureJointure')?.values[0] ?? op.id, uai, op.attrs.get('ENTStructureNomCourant')?.values[0] ?? null, at);
      if (existed) result.modified++;
      else result.added++;
    }
  }

  private applyPerson(file: AafFile, op: AafOperation, at: string, result: ImportResult): void {
    const row = this.stmt('SELECT * FROM users WHERE id = ?').get(op.id) as UserRow | undefined;
    if (op.op === 'delete') {
      if (!row || row.left_at) return void result.unknown.push({ line: op.line, id: op.id, op: op.op });
      this.stmt('UPDATE users SET left_at = ?, updated = ? WHERE id = ?').run(at, at, op.id);
      result.removed++;
      return;
    }
    if (op.op === 'modify' && (!row || row.left_at)) return void result.unknown.push({ line: op.line, id: op.id, op: op.op });
    // An add replaces what was known; a modify changes the kept attributes one by one.
    const attrs: Attrs = op.op === 'add' || !row ? new Map() : new Map(Object.entries(JSON.parse(row.attrs) as Record<string, string[]>));
    const names = op.op === 'add' || !row ? { sn: null as string | null, givenName: null as string | null } : this.identity(op.id) ?? { sn: null, givenName: null };
    for (const [name, a] of op.attrs) {
      if (NAME_KEYS.has(name)) {
        const v = a.modification === 'delete' ? null : (a.values[0] ?? null);
        names[name as 'sn' | 'givenName'] = v;
      } else {
        applyModification(attrs, name, op.op === 'add' ? 'replace' : a.modification, a.values);
      }
    }
    const user = this.derive(file, op.id, attrs);
    this.stmt(`INSERT INTO users (id, kind, login, uai, structure, role, level, classes, attrs, source, updated, left_at)
      VALUES (@id, @kind, @login, @uai, @structure, @role, @level, @classes, @attrs, @source, @updated, NULL)
      ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, login = excluded.login, uai = excluded.uai, structure = excluded.structure, role = excluded.role,
        level = excluded.level, classes = excluded.classes, attrs = excluded.attrs, source = excluded.source, updated = excluded.updated, left_at = NULL`).run({
      ...user,
      kind: file.kind,
      classes: JSON.stringify(user.classes),
      attrs: JSON.stringify(Object.fromEntries(attrs)),
      source: file.uai ?? user.uai,
      updated: at,
    });
    this.stmt('INSERT INTO identities (id, sn, given_name) VALUES (?,?,?) ON CONFLICT(id) DO UPDATE SET sn = excluded.sn, given_name = excluded.given_name').run(op.id, names.sn, names.givenName);
    if (row && !row.left_at) result.modified++;
    else result.added++;
  }

  private derive(file: AafFile, id: string, attrs: Attrs): DirectoryUser & { structure: string | null } {
    const structure = attrs.get('ENTPersonStructRattach')?.[0] ?? null;
    const est = structure ? (this.stmt('SELECT uai FROM establishments WHERE jointure = ?').get(structure) as { uai: string } | undefined) : undefined;
    const pupil = file.kind === 'Eleve';
    return {
      id,
      login: attrs.get('ENTPersonLogin')?.[0] ?? null,
      uai: est?.uai ?? file.uai,
      structure,
      role: pupil ? 'pupil' : staffRole(attrs),
      level: pupil ? pupilLevel(attrs) : null,
      classes: classesOf(attrs),
    };
  }

  private toUser(r: UserRow): DirectoryUser {
    return { id: r.id, login: r.login, uai: r.uai, role: r.role, level: r.level, classes: JSON.parse(r.classes) as string[] };
  }

  /** A present user by AAF id, or by login when no id matches. */
  find(idOrLogin: string): DirectoryUser | null {
    const r = (this.stmt('SELECT * FROM users WHERE id = ? AND left_at IS NULL').get(idOrLogin) ??
      this.stmt('SELECT * FROM users WHERE login = ? AND left_at IS NULL LIMIT 1').get(idOrLogin)) as UserRow | undefined;
    return r ? this.toUser(r) : null;
  }

  /** Every present user (the gateway keeps them in memory: no disk read per request). */
  all(): DirectoryUser[] {
    return (this.stmt('SELECT * FROM users WHERE left_at IS NULL ORDER BY id').all() as UserRow[]).map((r) => this.toUser(r));
  }

  /** A page of users, present and departed (departed ones with `left`), for the API. */
  list(opts: { limit: number; after?: string; uai?: string; role?: string }): (DirectoryUser & { left: string | null })[] {
    const rows = this.stmt(`SELECT * FROM users WHERE id > @after ${opts.uai ? 'AND uai = @uai' : ''} ${opts.role ? 'AND role = @role' : ''} ORDER BY id LIMIT @limit`)
      .all({ after: opts.after ?? '', limit: opts.limit, ...(opts.uai ? { uai: opts.uai } : {}), ...(opts.role ? { role: opts.role } : {}) }) as UserRow[];
    return rows.map((r) => ({ ...this.toUser(r), left: r.left_at }));
  }

  /** The person's names: for requisitions only (the caller checks the role and audits). */
  identity(id: string): DirectoryIdentity | null {
    const r = this.stmt('SELECT i.id, i.sn, i.given_name FROM identities i WHERE i.id = ?').get(id) as { id: string; sn: string | null; given_name: string | null } | undefined;
    return r ? { id: r.id, sn: r.sn, givenName: r.given_name } : null;
  }

  counts(): { users: number; left: number; establishments: number; byRole: Record<string, number> } {
    const byRole: Record<string, number> = {};
    for (const r of this.stmt('SELECT role, count(*) AS n FROM users WHERE left_at IS NULL GROUP BY role').all() as { role: string; n: number }[]) byRole[r.role] = r.n;
    const one = (sql: string) => (this.stmt(sql).get() as { n: number }).n;
    return { users: one('SELECT count(*) AS n FROM users WHERE left_at IS NULL'), left: one('SELECT count(*) AS n FROM users WHERE left_at IS NOT NULL'), establishments: one('SELECT count(*) AS n FROM establishments'), byRole };
  }

  /** Forgets people who left more than `retentionDays` ago (their journal rows are purged by then). */
  purge(retentionDays: number, now = Date.now()): number {
    const cutoff = new Date(now - retentionDays * 86_400_000).toISOString();
    return this.stmt('DELETE FROM users WHERE left_at IS NOT NULL AND left_at < ?').run(cutoff).changes;
  }
}
