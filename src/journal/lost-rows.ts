import type { Logger } from '../log.js';

/**
 * Rows the journal could not keep: counted exactly, logged once a second at most with the count
 * since the last line, and handed to the writer for the journal's own events (kept while it is
 * down, so a restart still records them).
 */
export class LostRows {
  /** Every row lost since the journal opened. */
  total = 0;
  private logged = 0;
  private toRecord = 0;
  private timer: NodeJS.Timeout | null = null;

  /**
   * @param why   what to say in the log line (read when it is written)
   * @param depth the queue's depth, for the log line
   * @param post  gives a count to the writer; false while none can take it (kept for later)
   */
  constructor(
    private readonly log: Logger,
    private readonly why: () => string,
    private readonly depth: () => number,
    private readonly post: (count: number) => boolean,
  ) {}

  lose(n: number): void {
    this.total += n;
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const count = this.total - this.logged;
      this.logged = this.total;
      this.log.error(`journal: rows lost (${this.why()})`, { count, total: this.total, queued: this.depth() });
      this.toRecord += count;
      this.record();
    }, 1000);
    this.timer.unref();
  }

  /** Tells the writer the rows lost and not yet recorded, if it can take them now. */
  record(): void {
    if (this.toRecord > 0 && this.post(this.toRecord)) this.toRecord = 0;
  }

  /** At close: no more log lines from the timer. */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  /** Rows lost and not yet handed to the writer (logged or not): what close() sends last. */
  unrecorded(): number {
    return this.total - this.logged + this.toRecord;
  }
}
