import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { VigieConfig } from '../config/types.js';
import { BUNDLED_UT1 } from '../paths.js';

/**
 * Which UT1 lists are installed and in use: what every gateway reads at each list load, apart
 * from update.ts (fetching, extracting) and cache.ts (compiling), which a proxy worker viewing
 * the main thread's lists never runs.
 */

export interface UpdateState {
  url: string;
  etag: string | null;
  lastModified: string | null;
  /** `dataTime`: the tarball's Last-Modified (ISO), the age of its data; null when the server sent none. */
  installed: { dir: string; version: string; sha256: string; at: string; dataTime?: string | null } | null;
}

const STATE_FILE = 'update.json';

/** Where compiled lists, installed updates and their state live under the data dir. */
export const cacheDirOf = (dataDir: string): string => join(resolve(dataDir), 'lists');

export const statePath = (dataDir: string): string => join(cacheDirOf(dataDir), STATE_FILE);

export async function readUpdateState(dataDir: string): Promise<UpdateState | null> {
  try {
    return JSON.parse(await readFile(statePath(dataDir), 'utf8')) as UpdateState;
  } catch {
    return null;
  }
}

/** The installed (updated) UT1 folder, if any and still there. */
export async function installedUt1Dir(dataDir: string): Promise<string | null> {
  const s = await readUpdateState(dataDir);
  if (!s?.installed) return null;
  const dir = join(cacheDirOf(dataDir), s.installed.dir);
  return existsSync(dir) ? dir : null;
}

/** Which UT1 folder the gateway uses: the configured one, else the last update, else the bundled lists. */
export async function resolveUt1Dir(config: VigieConfig): Promise<string> {
  return config.lists.ut1 ?? (await installedUt1Dir(config.dataDir)) ?? BUNDLED_UT1;
}
