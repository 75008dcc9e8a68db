import { loadCompiledUt1, type CompiledLoadOptions } from './cache.js';
import { MapIndexBuilder } from './map-index.js';
import type { CategoryIndex } from './types.js';
import { loadUt1Dir, type LoadReport } from './ut1.js';

/**
 * Loads a UT1-layout folder into the compact engine: from `<dataDir>/lists/` when compiled
 * before from the same files, else built (in a worker thread when large) and saved there.
 */
export async function loadUt1Index(dir: string, opts: CompiledLoadOptions = {}): Promise<{ index: CategoryIndex; report: LoadReport; seconds: number; source: 'cache' | 'built' }> {
  return loadCompiledUt1(dir, opts);
}

/** Loads the academy's lists (same layout) into a fresh builder; profile entries get added next. */
export async function loadAcademyLists(dir: string): Promise<{ builder: MapIndexBuilder; report: LoadReport }> {
  const builder = new MapIndexBuilder();
  let report: LoadReport;
  try {
    report = await loadUt1Dir(dir, builder);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    report = { version: 'none', categories: [], badLines: [], badLineCount: 0, entries: 0 };
  }
  // The two lists every profile may reference exist even when their folders do not.
  builder.category('academy-allow');
  builder.category('academy-deny');
  return { builder, report };
}
