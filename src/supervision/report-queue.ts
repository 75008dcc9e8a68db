import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { NewReport } from '../proxy/report.js';

export const reportsFile = (dataDir: string) => join(dataDir, 'reports.json');

export type ReportStatus = 'open' | 'accepted' | 'rejected' | 'escalated';
export type ReportAction = 'accept' | 'reject' | 'escalate';

/** One report: what was reported, from which profile, when; never who (no address, no user). */
export interface Report extends NewReport {
  id: string;
  status: ReportStatus;
  /** The referent's steps, oldest first (an escalated report may still be accepted or rejected). */
  steps: { action: ReportAction; by: string; at: number; reason: string }[];
}

const STATUS: Record<ReportAction, ReportStatus> = { accept: 'accepted', reject: 'rejected', escalate: 'escalated' };

/**
 * The queue of reports in `<dataDir>/reports.json` (0600), written after each change (one at a
 * time). Bounded: past `maxQueued`, the oldest closed reports go first, then the oldest open ones.
 */
export class ReportQueue {
  private reports: Report[] = [];
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly maxQueued: () => number,
  ) {}

  async load(): Promise<void> {
    try {
      const doc = JSON.parse(await readFile(this.file, 'utf8')) as { reports?: Report[] };
      this.reports = Array.isArray(doc.reports) ? doc.reports.filter((r) => r && typeof r.id === 'string' && typeof r.host === 'string') : [];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${this.file}: ${(e as Error).message}`);
    }
  }

  list(): readonly Report[] {
    return this.reports;
  }

  get(id: string): Report | undefined {
    return this.reports.find((r) => r.id === id);
  }

  /** Queues a report from the proxy; resolves once it is on disk. */
  add(r: NewReport): Promise<Report> {
    return this.serial(async () => {
      const report: Report = { id: `rp_${randomBytes(6).toString('hex')}`, host: r.host, kind: r.kind, comment: r.comment, profile: r.profile, time: r.time, status: 'open', steps: [] };
      this.reports.push(report);
      const max = this.maxQueued();
      while (this.reports.length > max) {
        const closed = this.reports.findIndex((x) => x.status !== 'open');
        this.reports.splice(closed >= 0 ? closed : 0, 1);
      }
      await this.save();
      return report;
    });
  }

  /** Records a referent's step on a report; null when there is no such report. */
  step(id: string, action: ReportAction, by: string, reason: string, at: number): Promise<Report | null> {
    return this.serial(async () => {
      const r = this.get(id);
      if (!r) return null;
      r.steps.push({ action, by, at, reason });
      r.status = STATUS[action];
      await this.save();
      return r;
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async save(): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify({ reports: this.reports }) + '\n', { mode: 0o600 });
    await rename(tmp, this.file);
  }
}
