import type { Logger } from '../log.js';
import type { AuditLog } from './audit.js';

const MINUTE = 60_000;

export interface ThrottleLimits {
  /** Entries written one by one per source address and minute. */
  perSource: number;
  /** Entries written one by one per minute, all sources together. */
  perMinute: number;
}

/** What the summary of left-out entries is called in the audit log and the log. */
export interface ThrottleSummary {
  action: string;
  /** Its details key for the count (`refused`, `failed`). */
  countKey: string;
  /** The warning logged when it is written. */
  message: string;
}

/**
 * Keeps repeated refusals (API requests, captive-portal logins) from filling the disk: per minute,
 * at most `perSource` audit entries from one source and `perMinute` in all. What is left out is
 * counted, by source and status, and written as one summary entry when the minute ends.
 */
export class AuditThrottle {
  private windowStart = 0;
  private total = 0;
  private readonly perSource = new Map<string, number>();
  private suppressed = 0;
  private suppressedSources = new Map<string, number>();
  private suppressedStatus: Record<string, number> = {};
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly audit: () => AuditLog,
    private readonly log: Logger,
    private readonly summary: ThrottleSummary,
    private readonly limits: ThrottleLimits,
  ) {}

  /** Whether an entry from `source` may be written now; if not, it is counted for the summary. */
  admit(source: string, status: number): boolean {
    const now = Date.now();
    if (now - this.windowStart >= MINUTE) {
      this.windowStart = now;
      this.total = 0;
      this.perSource.clear();
    }
    const fromSource = this.perSource.get(source) ?? 0;
    if (fromSource >= this.limits.perSource || this.total >= this.limits.perMinute) {
      this.suppressed++;
      this.suppressedSources.set(source, (this.suppressedSources.get(source) ?? 0) + 1);
      this.suppressedStatus[status] = (this.suppressedStatus[status] ?? 0) + 1;
      // The summary is written once the minute is over, whether or not more refusals come.
      this.timer ??= setTimeout(() => void this.flush(), this.windowStart + MINUTE - now).unref();
      return false;
    }
    this.perSource.set(source, fromSource + 1);
    this.total++;
    return true;
  }

  /** Writes the count of entries left out (and by which sources, the busiest first). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.suppressed) return;
    const sources = [...this.suppressedSources].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([source, count]) => ({ source, count }));
    const { action, countKey, message } = this.summary;
    const details = { [countKey]: this.suppressed, byStatus: this.suppressedStatus, sources, distinctSources: this.suppressedSources.size };
    this.log.warn(message, { [countKey]: this.suppressed, sources: this.suppressedSources.size });
    this.suppressed = 0;
    this.suppressedSources = new Map();
    this.suppressedStatus = {};
    await this.audit()
      .record({ actor: 'vigie', tokenId: null, role: null, source: 'rate-limit', action, target: null, outcome: 'refused', status: 0, details })
      .catch((e: Error) => this.log.error(`audit: cannot record ${action}: ${e.message}`));
  }
}
