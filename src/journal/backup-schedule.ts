import { resolve } from 'node:path';
import { siblingModule, startWorker } from '../worker-thread.js';
import type { Logger } from '../log.js';
import { nextBackupAt, type BackupResult } from './backup.js';
import type { BackupJob } from './backup-worker.js';
import type { FileAccess } from './files.js';

export interface DailyBackupOptions {
  /** The journal's database file. */
  source: string;
  dir: string;
  /** Local hour (in `timezone`) of the daily run. */
  hour: number;
  keep: number;
  timezone: string;
  access: FileAccess;
  log: Logger;
}

export type BackupOutcome = { ok: true; result: BackupResult; removed: string[] } | { ok: false; message: string };

/**
 * `journal.backup`: once a day at the configured hour, an online copy of the journal into `dir`,
 * verified, the newest `keep` kept (older ones go only after a copy that verified). Each run is a
 * thread of its own (backup-worker.ts); a run still going when the next is due is not doubled.
 */
export class DailyBackup {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<BackupOutcome> | null = null;
  private stopped = false;

  constructor(private readonly opts: DailyBackupOptions) {}

  start(): this {
    const at = nextBackupAt(this.opts.hour, this.opts.timezone);
    this.opts.log.info('journal backups', { dir: resolve(this.opts.dir), next: new Date(at).toISOString(), keep: this.opts.keep });
    this.timer = setTimeout(() => {
      void this.runNow().finally(() => {
        if (!this.stopped) this.start();
      });
    }, Math.max(1000, at - Date.now()));
    this.timer.unref();
    return this;
  }

  /** One backup now (also what the timer runs); logs its outcome. */
  runNow(): Promise<BackupOutcome> {
    this.running ??= this.run().finally(() => (this.running = null));
    return this.running;
  }

  private async run(): Promise<BackupOutcome> {
    const job: BackupJob = { source: this.opts.source, dir: resolve(this.opts.dir), keep: this.opts.keep, access: this.opts.access };
    const worker = startWorker(siblingModule(import.meta.url, 'backup-worker'), { workerData: job });
    worker.unref();
    const outcome = await new Promise<BackupOutcome>((done) => {
      worker.once('message', (m: BackupOutcome) => done(m));
      worker.once('error', (e) => done({ ok: false, message: e.message }));
      worker.once('exit', (code) => done({ ok: false, message: `backup thread exited (code ${code})` }));
    });
    const { log } = this.opts;
    if (!outcome.ok) log.error(`journal backup failed: ${outcome.message}`, { dir: job.dir });
    else if (!outcome.result.ok) log.error('journal backup written, but the journal does not verify: older backups kept; run `vigie journal verify`', { file: outcome.result.file, problems: outcome.result.problems.length });
    else log.info('journal backup', { file: outcome.result.file, rows: outcome.result.rows, head: `${outcome.result.head.id}:${outcome.result.head.hash.slice(0, 16)}`, ms: outcome.result.ms, removed: outcome.removed.join(',') || 'none' });
    return outcome;
  }

  /** Stops the timer; a run in progress finishes (its thread does not hold the process). */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
