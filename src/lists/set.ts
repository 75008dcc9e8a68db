import type { VigieConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { loadCategoryLabels } from './labels.js';
import { loadUt1Index } from './load.js';
import { extraDirOf, loadExtraLists, ut1DataDate, type ExtraLoad, type ListSourceInfo } from './sources.js';
import type { CategoryIndex } from './types.js';
import { resolveUt1Dir } from './installed.js';
import type { LoadReport } from './ut1.js';

/** Everything the gateway, `vigie check` and `vigie lists status` load: one way for all three. */
export interface ListSet {
  readonly dir: string;
  readonly ut1: CategoryIndex;
  readonly report: LoadReport;
  readonly seconds: number;
  readonly source: 'cache' | 'built';
  /** Extra lists (lists/extra/); null when none are configured, found or loadable. */
  readonly extra: ExtraLoad | null;
  /** UT1 first, then each extra list: where it comes from, its counts, its data's date. */
  readonly sources: readonly ListSourceInfo[];
}

/**
 * Loads the UT1 folder in use (throws when it cannot: the caller keeps what it has or fails
 * closed), the extra lists (a failure there is logged, the UT1 lists still serve), UT1's
 * category labels, and each source's data date.
 */
export async function loadListSet(config: VigieConfig, log?: Logger, ut1Dir?: string): Promise<ListSet> {
  const dir = ut1Dir ?? (await resolveUt1Dir(config));
  const { index, report, seconds, source } = await loadUt1Index(dir, { dataDir: config.dataDir, log });
  const extraDir = extraDirOf(config);
  let extra: ExtraLoad | null = null;
  if (extraDir) {
    try {
      extra = await loadExtraLists(extraDir, { dataDir: config.dataDir, log });
    } catch (e) {
      log?.error(`lists: extra lists could not be loaded: ${(e as Error).message}; the categories they extend rely on UT1 alone`, { dir: extraDir });
    }
  }
  await loadCategoryLabels(dir).catch((e: Error) => log?.warn(`lists: category labels unreadable (${e.message}); codes are shown alone`, { dir }));
  const date = await ut1DataDate(dir, config.dataDir);
  const ut1Source: ListSourceInfo = { source: 'ut1', dir, version: index.version, categories: index.counts(), dataTime: date.time, dataFrom: date.from };
  return { dir, ut1: index, report, seconds, source, extra, sources: [ut1Source, ...(extra?.sources ?? [])] };
}
