import { CompactIndex } from '../lists/compact-index.js';
import { loadCategoryLabels } from '../lists/labels.js';
import type { ListSet } from '../lists/set.js';
import type { ListSourceInfo } from '../lists/sources.js';
import type { LoadReport } from '../lists/ut1.js';

/**
 * A list set as the main thread hands it to its proxy threads: the compiled files themselves,
 * which lie in SharedArrayBuffers (src/lists/cache.ts), so postMessage passes a handle and every
 * thread's index views the same bytes: one copy of the lists per machine, whatever `workers` is.
 */
export interface SharedLists {
  dir: string;
  report: LoadReport;
  seconds: number;
  source: 'cache' | 'built';
  /** The UT1 compiled file (SharedArrayBuffer-backed). */
  ut1: Uint8Array;
  extra: { file: Uint8Array; extends: string[]; sources: ListSourceInfo[] } | null;
  sources: readonly ListSourceInfo[];
}

/** What a thread needs to view `set`; null when an index is not in shared memory (then threads read the disk). */
export function shareListSet(set: ListSet | null): SharedLists | null {
  if (!set) return null;
  const ut1 = set.ut1 instanceof CompactIndex ? set.ut1.sharedFile : null;
  if (!ut1) return null;
  let extra: SharedLists['extra'] = null;
  if (set.extra) {
    const file = set.extra.index instanceof CompactIndex ? set.extra.index.sharedFile : null;
    if (!file) return null;
    extra = { file, extends: set.extra.extends, sources: set.extra.sources };
  }
  // The report's bad lines stay in the main thread, which logs them: a thread needs the counts.
  const report: LoadReport = { ...set.report, badLines: [] };
  return { dir: set.dir, report, seconds: set.seconds, source: set.source, ut1, extra, sources: set.sources };
}

/** The list set of `shared` in this thread: indexes over the shared bytes, no copy of them. */
export async function listSetFromShared(shared: SharedLists): Promise<ListSet> {
  const ut1 = CompactIndex.fromBytes(shared.ut1);
  const extra = shared.extra ? { index: CompactIndex.fromBytes(shared.extra.file), extends: shared.extra.extends, sources: shared.extra.sources } : null;
  // The labels are module state of each thread (the block page names categories with them).
  await loadCategoryLabels(shared.dir).catch(() => undefined);
  return { dir: shared.dir, ut1, report: shared.report, seconds: shared.seconds, source: shared.source, extra, sources: shared.sources };
}
