import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';

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

/** The folder's mode: searchable by the group (and setgid, so new files take its group) when there is one. */
const dirMode = (a: FileAccess): number => (a.gid === null ? 0o700 : 0o2750);

/** Creates the folder (0700, or 02750 and the group) when missing; an existing one is left as it is. */
export function prepareDir(dir: string, access: FileAccess): void {
  if (existsSync(dir)) return;
  mkdirSync(dir, { recursive: true, mode: dirMode(access) });
  if (access.gid !== null) chownSync(dir, -1, access.gid);
  // mkdir's mode goes through the umask and drops the setgid bit on some systems: set it exactly.
  chmodSync(dir, dirMode(access));
}

/** Gives an existing file the mode (and group); true when it exists. */
export function restrict(file: string, access: FileAccess): boolean {
  if (!existsSync(file)) return false;
  if (access.gid !== null && statSync(file).gid !== access.gid) chownSync(file, -1, access.gid);
  if ((statSync(file).mode & 0o7777) !== access.mode) chmodSync(file, access.mode);
  return true;
}

/**
 * Before SQLite opens `file`: creates it empty (a valid empty database) with the mode, or
 * corrects the mode of an existing one and of its `-wal`/`-shm` (journals created 0644 by older
 * versions become private at their next open).
 */
export function prepareDbFile(file: string, access: FileAccess): void {
  if (!existsSync(file)) closeSync(openSync(file, 'a', access.mode));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) restrict(f, access);
}
