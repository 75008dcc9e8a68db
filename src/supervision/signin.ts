import type { FastifyReply, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { AuditThrottle } from './audit-throttle.js';
import { audit, problem, type AuditContext } from './context.js';

/** Unknown tokens accepted per source address and minute before that address gets 429s. */
export const AUTH_FAILURES_PER_MINUTE = 10;
/**
 * Refused requests written to the audit log per minute, from one source and from all. Above the
 * failures that lock a source out, so its first 429s are in the log one by one too.
 */
export const REFUSALS_AUDITED_PER_SOURCE = 20;
export const REFUSALS_AUDITED_PER_MINUTE = 100;

const MINUTE = 60_000;

/**
 * Refused requests (401, 403, 429) go to the audit log with their route and reason, but a flood
 * must not fill the disk: per minute, at most REFUSALS_AUDITED_PER_SOURCE entries from one source
 * and REFUSALS_AUDITED_PER_MINUTE in all. What is left out is counted, and the count written as
 * one `access.suppressed` entry when the minute ends.
 */
export class RefusalAudit {
  private readonly throttle: AuditThrottle;

  constructor(
    private readonly ctx: AuditContext,
    limits = { perSource: REFUSALS_AUDITED_PER_SOURCE, perMinute: REFUSALS_AUDITED_PER_MINUTE },
  ) {
    const summary = { action: 'access.suppressed', countKey: 'refused', message: 'supervision: refused requests not written one by one to the audit log (rate limit)' };
    this.throttle = new AuditThrottle(() => ctx.audit, ctx.log, summary, limits);
  }

  async record(req: FastifyRequest, action: string, status: number, reason: string, details: Record<string, unknown> = {}): Promise<void> {
    if (!this.throttle.admit(req.ip, status)) return;
    const route = `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`;
    await audit(this.ctx, req, action, route, { route, reason, ...details }, 'refused', status).catch((e: Error) => this.ctx.log.error(`audit: cannot record a refused request: ${e.message}`));
  }

  /** Writes the count of refusals left out of the log (and by which sources, the busiest first). */
  flush(): Promise<void> {
    return this.throttle.flush();
  }
}

/**
 * Bearer-token sign-in for the routes that name roles. A token that is known is always served
 * (a shared NAT or a mistyped token elsewhere never locks out a good one); unknown tokens are
 * counted per source address, and an address past AUTH_FAILURES_PER_MINUTE gets 429s for them
 * until its minute is over. Tokens are 256 random bits, so the limit is not what keeps them
 * from being guessed: it keeps scanners from being served.
 */
export function signInHook(ctx: AuditContext, refusals: RefusalAudit) {
  const failures = new LRUCache<string, { count: number }>({ max: 10_000, ttl: MINUTE, ttlAutopurge: false });
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const roles = req.routeOptions.config?.roles;
    if (!roles) return;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const principal = m ? await ctx.tokens.authenticate(m[1]!) : null;
    if (principal) {
      req.principal = principal;
      if (roles.includes(principal.role)) return;
      const reason = `role "${principal.role}" may not do this (needs ${roles.join(' or ')})`;
      await refusals.record(req, 'access.denied', 403, reason, { needs: roles });
      return problem(reply, 403, reason);
    }
    reply.header('www-authenticate', 'Bearer realm="vigie"');
    if (!m) {
      // No token at all is not a guess: answered, audited, not counted.
      await refusals.record(req, 'access.unauthenticated', 401, 'no bearer token');
      return problem(reply, 401, 'a bearer token is required (Authorization: Bearer ...)');
    }
    const f = failures.get(req.ip);
    if (f && f.count >= AUTH_FAILURES_PER_MINUTE) {
      reply.header('retry-after', String(Math.max(1, Math.ceil(failures.getRemainingTTL(req.ip) / 1000))));
      await refusals.record(req, 'access.limited', 429, `more than ${AUTH_FAILURES_PER_MINUTE} unknown tokens from this address within a minute`);
      return problem(reply, 429, 'too many failed authentications from this address; retry later');
    }
    if (f) f.count++;
    else failures.set(req.ip, { count: 1 });
    const count = f?.count ?? 1;
    const alerts = ctx.gateway?.alerts;
    if (alerts) alerts.counts.authFailures++;
    if (alerts && count === Math.min(ctx.gateway!.config.alerts.security?.authFailuresPerMinute ?? AUTH_FAILURES_PER_MINUTE, AUTH_FAILURES_PER_MINUTE)) {
      alerts.securityEvent('auth-failures', 'warning', `${count} unknown or revoked API tokens from one address within a minute`, { source: req.ip, route: req.routeOptions.url }, req.ip);
    }
    ctx.log.warn('supervision: authentication failed', { source: req.ip, route: req.routeOptions.url, reason: 'unknown or revoked token' });
    await refusals.record(req, 'access.unauthenticated', 401, 'unknown or revoked token');
    return problem(reply, 401, 'unknown or revoked token');
  };
}
