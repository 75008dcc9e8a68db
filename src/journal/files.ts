import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';

export { fileAccess, OWNER_ONLY, type FileAccess } from '../file-access.js';
import type { FileAccess } from '../file-access.js';

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
