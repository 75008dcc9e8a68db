import { MapIndexBuilder } from './map-index.js';
import type { CategoryIndex } from './types.js';
import { loadUt1Dir, type LoadReport } from './ut1.js';

/** Loads a UT1-layout folder into an index. */
export async function loadUt1Index(dir: string): Promise<{ index: CategoryIndex; report: LoadReport; seconds: number }> {
  const t0 = performance.now();
  const builder = new MapIndexBuilder();
  const report = await loadUt1Dir(dir, builder);
  if (report.categories.length === 0) throw new Error(`${dir}: no category folder (expected UT1 layout: CATEGORY/domains, urls, expressions)`);
  const index = builder.build(report.version);
  return { index, report, seconds: (performance.now() - t0) / 1000 };
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
