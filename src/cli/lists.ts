import type { Command } from 'commander';
import { loadCompiledUt1 } from '../lists/cache.js';
import { progressBar } from '../lists/progress.js';
import { resolveUt1Dir, UpdateRejected, updateUt1 } from '../lists/update.js';
import { createLogger } from '../log.js';
import { configFrom, withCommon, type CommonOpts } from './common.js';
import { registerListsStatus } from './lists-status.js';

interface UpdateOpts extends CommonOpts {
  url?: string;
  checksumUrl?: string;
  force?: boolean;
}

export function registerLists(program: Command): void {
  const lists = program.command('lists').description('UT1 and extra lists: status, update from the configured tarball');
  registerListsStatus(lists);
  withCommon(lists.command('update'))
    .description('fetch the UT1 tarball (lists.updateUrl), verify, extract, compile; a running gateway picks it up within a minute')
    .option('--url <url>', 'tarball URL instead of lists.updateUrl')
    .option('--checksum-url <url>', 'checksum file URL instead of lists.checksumUrl')
    .option('-f, --force', 'download even if the server says it did not change, and accept categories shrinking to less than half')
    .action(async (opts: UpdateOpts) => {
      const config = configFrom(opts);
      const log = createLogger(config.log.level === 'debug' ? 'debug' : 'warn');
      const url = opts.url ?? config.lists.updateUrl;
      if (!url) {
        process.stderr.write('vigie: no tarball URL: set lists.updateUrl in the config or pass --url\n');
        process.exit(2);
      }
      // The lists in use now: a category that has entries there must keep some.
      const currentDir = await resolveUt1Dir(config);
      let current = null;
      try {
        current = (await loadCompiledUt1(currentDir, { dataDir: config.dataDir, log })).index.counts();
      } catch (e) {
        process.stderr.write(`vigie: current lists unreadable (${(e as Error).message}); the shrink check is skipped\n`);
      }
      const bar = progressBar(process.stderr, 'downloading');
      try {
        const r = await updateUt1({
          url,
          checksumUrl: opts.checksumUrl ?? config.lists.checksumUrl,
          dataDir: config.dataDir,
          maxBytes: config.lists.maxDownloadBytes,
          maxExtractBytes: config.lists.maxExtractBytes,
          current,
          force: opts.force,
          progress: (done, total) => bar.update(done, total),
          log,
        });
        if (r.status === 'not-modified') bar.finish(`lists up to date (server: not modified; version ${r.version ?? 'unknown'})`);
        else if (r.status === 'unchanged') bar.finish(`lists up to date (same tarball; version ${r.version})`);
        else {
          const entries = r.counts.reduce((n, c) => n + c.domains + c.urls, 0);
          bar.finish(`lists updated: version ${r.version}, ${r.counts.length} categories, ${entries} entries, ${(r.bytes / 1048576).toFixed(1)} MiB in ${r.seconds.toFixed(1)} s -> ${r.dir}`);
          if (config.lists.ut1) process.stderr.write(`note: lists.ut1 is set (${config.lists.ut1}), so the gateway keeps using that folder\n`);
        }
      } catch (e) {
        bar.finish(`update rejected: ${(e as Error).message}; the current lists stay in use`);
        process.exit(e instanceof UpdateRejected ? 1 : 3);
      }
    });
}
