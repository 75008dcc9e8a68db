import type { Command } from 'commander';
import { categoryLabel } from '../lists/labels.js';
import { loadListSet } from '../lists/set.js';
import { createLogger } from '../log.js';
import { PolicyStore } from '../policy/store.js';
import { compilePolicy } from '../gateway.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';

const DAY = 86_400_000;

/** Age as people read it: `3 d`, `5 h`, `12 min`. */
export function age(ms: number): string {
  if (ms >= 2 * DAY) return `${Math.floor(ms / DAY)} d`;
  if (ms >= 3_600_000) return `${Math.floor(ms / 3_600_000)} h`;
  return `${Math.max(0, Math.floor(ms / 60_000))} min`;
}

/** `vigie lists status [--json]`: every category of every list set, its entries by kind, source, version and data age. */
export function registerListsStatus(lists: Command): void {
  withCommon(lists.command('status'))
    .description("each category's entries by kind, the list it comes from, its version and the age of its data; categories profiles block that have no domains")
    .option('--json', 'print a JSON object')
    .action(async (opts: CommonOpts & { json?: boolean }) => {
      const config = configFrom(opts);
      const log = createLogger('error');
      const set = await loadListSet(config, log);
      const store = new PolicyStore(config, log);
      await store.load();
      const snapshot = await compilePolicy(config, set.ut1, store.version, log, store, set.extra);
      const now = Date.now();
      const categories = set.sources.flatMap((s) =>
        s.categories.map((c) => ({
          category: c.name,
          label: categoryLabel(c.name, 'fr'),
          domains: c.domains,
          urls: c.urls,
          expressions: c.expressions,
          source: s.source,
          version: s.version,
          dataTime: s.dataTime === null ? null : new Date(s.dataTime).toISOString(),
          dataAgeDays: s.dataTime === null ? null : Math.floor((now - s.dataTime) / DAY),
        })),
      );
      const sources = set.sources.map((s) => ({ source: s.source, dir: s.dir, version: s.version, dataTime: s.dataTime === null ? null : new Date(s.dataTime).toISOString(), dataFrom: s.dataFrom }));
      if (opts.json) {
        process.stdout.write(JSON.stringify({ sources, categories, emptyCategories: snapshot.emptyCategories }, null, 2) + '\n');
        return;
      }
      const out: string[] = [];
      for (const s of set.sources) {
        out.push(`${s.source}: ${s.dir}, version ${s.version}, data ${s.dataTime === null ? 'of unknown date' : `of ${new Date(s.dataTime).toISOString().slice(0, 10)} (${age(now - s.dataTime)} old, from ${s.dataFrom})`}`);
      }
      out.push('');
      const w = Math.max(8, ...categories.map((c) => c.category.length));
      out.push(`${'category'.padEnd(w)}  ${'domains'.padStart(9)}  ${'urls'.padStart(7)}  ${'expr'.padStart(4)}  ${'source'.padEnd(22)}  ${'version'.padEnd(16)}  age`);
      for (const c of categories) {
        out.push(`${c.category.padEnd(w)}  ${String(c.domains).padStart(9)}  ${String(c.urls).padStart(7)}  ${String(c.expressions).padStart(4)}  ${c.source.padEnd(22)}  ${c.version.padEnd(16)}  ${c.dataAgeDays === null ? '?' : `${c.dataAgeDays} d`}`);
      }
      if (snapshot.emptyCategories.length) {
        out.push('');
        for (const e of snapshot.emptyCategories) out.push(`WARNING: category "${e.category}" has no domains entries; profiles ${e.profiles.join(', ')} block it`);
      }
      process.stdout.write(out.join('\n') + '\n');
    });
}
