import type { Logger } from '../log.js';
import type { AuditLog } from '../supervision/audit.js';
import { AuditThrottle } from '../supervision/audit-throttle.js';

/** Failed portal logins written one by one per address and minute, and in all; the rest are counted. */
export const PORTAL_FAILURES_AUDITED_PER_SOURCE = 5;
export const PORTAL_FAILURES_AUDITED_PER_MINUTE = 50;

export type PortalFailure = 'invalid' | 'rate-limited' | 'unavailable';

/**
 * Captive-portal logins and logouts in the supervision audit log (`portal.login`,
 * `portal.logout`): who by pseudonymous id (the AAF id, never the login, which is often a name,
 * and never the password) and from which address. Failed logins name no user at all (the login
 * typed may be anyone's, or a password typed in the wrong field); they are written one by one up
 * to a bound per address and minute, the rest counted in one `portal.suppressed` entry a minute.
 */
export class PortalAudit {
  private readonly throttle: AuditThrottle;

  constructor(
    private readonly audit: () => AuditLog | null,
    private readonly log: Logger,
    limits = { perSource: PORTAL_FAILURES_AUDITED_PER_SOURCE, perMinute: PORTAL_FAILURES_AUDITED_PER_MINUTE },
  ) {
    const summary = { action: 'portal.suppressed', countKey: 'failed', message: 'portal: failed logins not written one by one to the audit log (rate limit)' };
    this.throttle = new AuditThrottle(() => this.audit()!, log, summary, limits);
  }

  loggedIn(client: string, user: string): Promise<void> {
    return this.write('portal.login', client, user, 'ok', 200);
  }

  loggedOut(client: string, user: string): Promise<void> {
    return this.write('portal.logout', client, user, 'ok', 200);
  }

  /** A refused login (wrong password, over the address's limit, directory unreachable). */
  failed(client: string, why: PortalFailure, status: number): Promise<void> {
    if (!this.audit() || !this.throttle.admit(client, status)) return Promise.resolve();
    return this.write('portal.login', client, null, why === 'unavailable' ? 'failed' : 'refused', status, { reason: why });
  }

  /** Writes the count of failures left out (at the end of their minute, or at stop). */
  flush(): Promise<void> {
    return this.audit() ? this.throttle.flush() : Promise.resolve();
  }

  private async write(action: string, client: string, user: string | null, outcome: 'ok' | 'refused' | 'failed', status: number, details?: Record<string, unknown>): Promise<void> {
    const log = this.audit();
    if (!log) return;
    // The login stands whether or not its line could be written: a school's pupils are not
    // locked out by a full disk; the error is logged.
    await log
      .record({ actor: user ?? '-', tokenId: null, role: 'portal', source: client, action, target: user, outcome, status, ...(details ? { details } : {}) })
      .catch((e: Error) => this.log.error(`audit: cannot record ${action}: ${e.message}`, { client }));
  }
}
