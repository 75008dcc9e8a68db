import type { VigieConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { CategoryIndex } from './types.js';
import { updateStamp, updateUt1 } from './update.js';

/** What the schedule needs from the gateway. */
export interface ListsHost {
  loadLists(): Promise<boolean>;
  readonly snapshot: { readonly listsLoaded: boolean; readonly indexes: { readonly ut1: CategoryIndex } };
}

/** How often the gateway looks for an update installed by `vigie lists update` from a shell. */
const WATCH_MS = 60_000;

/**
 * Inside the running gateway: fetches updates every `lists.updateIntervalHours` (when an
 * `updateUrl` is set) and reloads the lists when an update was installed, by itself or by the
 * CLI. Timers are unref'd, runs never overlap, failures are logged and keep the current lists.
 */
export class ListUpdateScheduler {
  private timers: NodeJS.Timeout[] = [];
  private running = false;
  private seen = 0;
  private stopped = false;

  constructor(
    private readonly host: ListsHost,
    private readonly config: VigieConfig,
    private readonly log: Logger,
    private readonly watchMs = WATCH_MS,
  ) {}

  async start(): Promise<void> {
    this.seen = await updateStamp(this.config.dataDir);
    const hours = this.config.lists.updateIntervalHours ?? 0;
    if (this.config.lists.updateUrl && hours > 0) this.every(hours * 3_600_000, () => this.update());
    this.every(this.watchMs, () => this.watch());
  }

  private every(ms: number, run: () => Promise<void>): void {
    const t = setInterval(() => {
      if (this.running || this.stopped) return;
      this.running = true;
      run()
        .catch((e: Error) => this.log.error(`lists: scheduled update failed: ${e.message}; keeping the current lists`))
        .finally(() => (this.running = false));
    }, ms);
    t.unref();
    this.timers.push(t);
  }

  /** One scheduled update; resolves once any new lists are serving. */
  async update(): Promise<void> {
    const { lists, dataDir } = this.config;
    if (!lists.updateUrl) return;
    const current = this.host.snapshot.listsLoaded ? this.host.snapshot.indexes.ut1.counts() : null;
    const r = await updateUt1({ url: lists.updateUrl, checksumUrl: lists.checksumUrl, dataDir, maxBytes: lists.maxDownloadBytes, maxExtractBytes: lists.maxExtractBytes, current, log: this.log });
    if (r.status === 'installed') {
      this.log.info('lists: update installed', { version: r.version, bytes: r.bytes, seconds: r.seconds.toFixed(1) });
      this.seen = await updateStamp(dataDir);
      if (lists.ut1) this.log.warn('lists: lists.ut1 is set, so the updated lists are not used', { ut1: lists.ut1 });
      else await this.host.loadLists();
    }
  }

  private async watch(): Promise<void> {
    const stamp = await updateStamp(this.config.dataDir);
    if (stamp === this.seen) return;
    this.seen = stamp;
    if (!this.config.lists.ut1) await this.host.loadLists();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }
}
