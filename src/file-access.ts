import { readFileSync } from 'node:fs';

/**
 * Who may read the journal's files (the database, its `-wal` and `-shm`, backups): they name
 * pupils' addresses and the sites they visited, so never the world. Owner only (0600) by
 * default; owner and one group (0640) when `journal.group` names one, with the folder setgid to
 * it so the files SQLite creates later (`-wal`, `-shm`) get that group too. SQLite gives a new
 * `-wal`/`-shm` the database file's own mode, so the database file is created with its mode
 * before SQLite opens it (not left to SQLite's 0644 and the process umask).
 */
export interface FileAccess {
  /** Mode of the files: 0o600, or 0o640 with a group. */
  mode: number;
  /** The group's id, null for owner only. */
  gid: number | null;
}

export const OWNER_ONLY: FileAccess = { mode: 0o600, gid: null };

/** The access a `journal.group` setting gives; a group name is looked up in /etc/group. */
export function fileAccess(group: string | number | null | undefined): FileAccess {
  if (group === null || group === undefined) return OWNER_ONLY;
  if (typeof group === 'number') return { mode: 0o640, gid: group };
  if (/^\d+$/.test(group)) return { mode: 0o640, gid: Number(group) };
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch (e) {
    throw new Error(`journal.group "${group}": cannot read /etc/group (${(e as Error).message}); give the group id instead`);
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':');
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return { mode: 0o640, gid: Number(gid) };
  }
  throw new Error(`journal.group "${group}": no such group in /etc/group`);
}
