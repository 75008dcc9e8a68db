import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Logger } from '../log.js';
import { CompactIndex } from './compact-index.js';
import { buildUt1Bytes, buildUt1InProcess, type BuildResult } from './compile.js';
import { cacheDirOf } from './installed.js';
import { readShared } from './shared-file.js';
import { LIST_FILES, listCategories, type LoadReport } from './ut1.js';

/**
 * The compiled-file cache under `<dataDir>/lists/`: `ut1-<content version>.idx` plus, per source
 * folder, a small manifest tying the folder's file stamps (names, sizes, mtimes) to it. A restart
 * with unchanged sources only stats ~200 files and reads one file; any change rebuilds.
 */

export interface CompiledLoad {
  index: CompactIndex;
  report: LoadReport;
  seconds: number;
  /** 'cache': read from the compiled file; 'built': compiled from the text lists now. */
  source: 'cache' | 'built';
}

export interface CompiledLoadOptions {
  /** Where the compiled file goes; null/undefined = build in memory every time. */
  dataDir?: string | null;
  /** Build in a worker thread: true, false, or 'auto' (when the sources exceed 1 MiB). */
  worker?: boolean | 'auto';
  log?: Logger;
}

interface Manifest {
  dir: string;
  stamp: string;
  version: string;
  file: string;
  report: LoadReport;
}

const WORKER_THRESHOLD_BYTES = 1 << 20;

export { cacheDirOf } from './installed.js';

/** A cheap fingerprint of a list folder's files: changes when any file is added, removed or rewritten. */
export async function sourceStamp(dir: string): Promise<{ stamp: string; bytes: number }> {
  const names = (await listCategories(dir)).flatMap((cat) => LIST_FILES.flatMap((f) => [`${cat}/${f}`, `${cat}/${f}.gz`]));
  // All stats at once: a restart should not wait on ~400 sequential round trips to the thread pool.
  const stats = await Promise.all(
    names.map((n) =>
      stat(join(dir, n)).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return null;
        throw e;
      }),
    ),
  );
  const hash = createHash('sha256');
  let bytes = 0;
  stats.forEach((st, i) => {
    if (!st) return;
    hash.update(`${names[i]}\0${st.size}\0${st.mtimeMs}\0${st.ino}\n`);
    bytes += st.size;
  });
  return { stamp: hash.digest('hex'), bytes };
}

const manifestName = (dir: string): string => `source-${createHash('sha256').update(dir).digest('hex').slice(0, 12)}.json`;

async function readManifest(cacheDir: string, dir: string): Promise<Manifest | null> {
  try {
    const m = JSON.parse(await readFile(join(cacheDir, manifestName(dir)), 'utf8')) as Manifest;
    return m.dir === dir ? m : null;
  } catch {
    return null;
  }
}

async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmpFile = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmpFile, data);
  await rename(tmpFile, file);
}

/** Removes compiled files no manifest points to any more (older list versions, folders gone). */
export async function pruneCompiled(cacheDir: string): Promise<void> {
  const names = await readdir(cacheDir);
  const keep = new Set<string>();
  for (const n of names) {
    if (!n.startsWith('source-') || !n.endsWith('.json')) continue;
    try {
      const m = JSON.parse(await readFile(join(cacheDir, n), 'utf8')) as Manifest;
      if (existsSync(m.dir)) keep.add(m.file);
      else await unlink(join(cacheDir, n));
    } catch {
      // unreadable manifest: its file will simply be rebuilt
    }
  }
  for (const n of names) if (/^ut1-[0-9a-f]+\.idx$/.test(n) && !keep.has(n)) await unlink(join(cacheDir, n)).catch(() => undefined);
}

/** Loads a compiled file written by this module (for tools and the benchmark). */
export async function readCompiled(file: string): Promise<CompactIndex> {
  return CompactIndex.fromBytes(await readShared(file));
}

/** The UT1 index for a folder: from the compiled file when the sources did not change, else built. */
export async function loadCompiledUt1(dirIn: string, opts: CompiledLoadOptions = {}): Promise<CompiledLoad> {
  const t0 = performance.now();
  const dir = resolve(dirIn);
  const { stamp, bytes: sourceBytes } = await sourceStamp(dir);
  const cacheDir = opts.dataDir ? cacheDirOf(opts.dataDir) : null;
  if (cacheDir) {
    const m = await readManifest(cacheDir, dir);
    if (m && m.stamp === stamp) {
      try {
        const index = CompactIndex.fromBytes(await readShared(join(cacheDir, m.file)));
        if (index.version !== m.version) throw new Error(`holds version ${index.version}, manifest says ${m.version}`);
        return { index, report: m.report, seconds: (performance.now() - t0) / 1000, source: 'cache' };
      } catch (e) {
        opts.log?.warn('lists: compiled file unusable, rebuilding', { file: m.file, reason: (e as Error).message });
      }
    }
  }
  const useWorker = opts.worker === 'auto' || opts.worker === undefined ? sourceBytes > WORKER_THRESHOLD_BYTES : opts.worker;
  const built: BuildResult = useWorker ? await buildUt1InProcess({ dir }) : await buildUt1Bytes(dir);
  const index = CompactIndex.fromBytes(built.bytes);
  if (cacheDir) {
    try {
      await mkdir(cacheDir, { recursive: true });
      const file = `ut1-${built.report.version}.idx`;
      await writeAtomic(join(cacheDir, file), built.bytes);
      const manifest: Manifest = { dir, stamp, version: built.report.version, file, report: built.report };
      await writeAtomic(join(cacheDir, manifestName(dir)), JSON.stringify(manifest));
      await pruneCompiled(cacheDir);
    } catch (e) {
      opts.log?.warn('lists: cannot save the compiled lists (next start rebuilds them)', { dir: cacheDir, reason: (e as Error).message });
    }
  }
  return { index, report: built.report, seconds: (performance.now() - t0) / 1000, source: 'built' };
}
