import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { VigieConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { BUNDLED_EXTRA } from '../paths.js';
import { loadCompiledUt1 } from './cache.js';
import type { CategoryCounts, CategoryIndex } from './types.js';
import { LIST_FILES, listCategories } from './ut1.js';
import { installedUt1Dir, readUpdateState } from './installed.js';

/**
 * Where each loaded list set comes from and how old its data is. The age is the data's own date,
 * never the time it was loaded: a snapshot bundled months ago must look months old after every
 * restart. In order of preference: the `Last-Modified` of the downloaded UT1 tarball, the date a
 * bundled folder records (`snapshot.json` for UT1, `sources.json` for the extra lists), and last
 * the newest modification time of the list files themselves.
 */

export type DataDateFrom = 'last-modified' | 'snapshot' | 'files';

export interface ListSourceInfo {
  /** `ut1` or `extra/NAME`. */
  readonly source: string;
  readonly dir: string;
  /** Content version of the index holding it. */
  readonly version: string;
  /** The UT1 category an extra list extends (itself for UT1's categories). */
  readonly categories: readonly CategoryCounts[];
  /** ms since the epoch; null when nothing tells. */
  readonly dataTime: number | null;
  readonly dataFrom: DataDateFrom | null;
}

/** One extra list as `sources.json` describes it. */
interface ExtraMeta {
  category?: string;
  date?: string;
  origin?: string;
  licence?: string;
}

export interface ExtraLoad {
  index: CategoryIndex;
  /** Per category of the index: the category it extends. */
  extends: string[];
  sources: ListSourceInfo[];
}

const parseDate = (s: unknown): number | null => {
  if (typeof s !== 'string') return null;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
};

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`${file}: ${(e as Error).message}`);
  }
}

/** Newest modification time of the list files of `categories` under `dir` (ms), or null. */
async function newestListFile(dir: string, categories: readonly string[]): Promise<number | null> {
  const names = categories.flatMap((c) => LIST_FILES.flatMap((f) => [join(dir, c, f), join(dir, c, `${f}.gz`)]));
  const times = await Promise.all(names.map((n) => stat(n).then((s) => s.mtimeMs, () => 0)));
  const t = Math.max(0, ...times);
  return t > 0 ? t : null;
}

/** The data date of a UT1 folder: the update's Last-Modified, the bundled snapshot's date, or its files. */
export async function ut1DataDate(dir: string, dataDir: string): Promise<{ time: number | null; from: DataDateFrom | null }> {
  const abs = resolve(dir);
  if ((await installedUt1Dir(dataDir)) === abs) {
    const state = await readUpdateState(dataDir);
    const t = parseDate(state?.lastModified ?? null) ?? parseDate(state?.installed?.dataTime ?? null);
    if (t !== null) return { time: t, from: 'last-modified' };
  }
  const snap = (await readJson(join(abs, 'snapshot.json'))) as { date?: string } | null;
  const t = parseDate(snap?.date);
  if (t !== null) return { time: t, from: 'snapshot' };
  const files = await newestListFile(abs, await listCategories(abs));
  return { time: files, from: files === null ? null : 'files' };
}

/** The extra lists folder in use: `lists.extra`, the bundled lists/extra when null, none when false. */
export const extraDirOf = (config: VigieConfig): string | null => (config.lists.extra === false ? null : (config.lists.extra ?? BUNDLED_EXTRA));

/**
 * Loads the extra lists (one folder per list, UT1 layout) into a compiled index, with each list's
 * category and date from `sources.json` (a list it does not describe extends the category of its
 * folder's name, dated by its files). Null when the folder does not exist.
 */
export async function loadExtraLists(dir: string, opts: { dataDir?: string | null; log?: Logger } = {}): Promise<ExtraLoad | null> {
  let names: string[];
  try {
    names = await listCategories(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (!names.length) return null;
  const meta = ((await readJson(join(dir, 'sources.json'))) ?? {}) as Record<string, ExtraMeta>;
  const { index } = await loadCompiledUt1(dir, { dataDir: opts.dataDir, log: opts.log });
  const counts = index.counts();
  const ext = index.categories.map((c) => (typeof meta[c]?.category === 'string' && meta[c].category ? meta[c].category : c));
  const sources = await Promise.all(
    index.categories.map(async (c, i): Promise<ListSourceInfo> => {
      const own = parseDate(meta[c]?.date);
      const files = own === null ? await newestListFile(dir, [c]) : null;
      return {
        source: `extra/${c}`,
        dir: join(resolve(dir), c),
        version: index.version,
        categories: [{ ...counts[i]!, name: ext[i]! }],
        dataTime: own ?? files,
        dataFrom: own !== null ? 'snapshot' : files !== null ? 'files' : null,
      };
    }),
  );
  return { index, extends: ext, sources };
}
