import type { FastifyInstance } from 'fastify';
import type { Alert, AlertKind, AlertStatus } from '../../alerts/store.js';
import { actorOf, audit, problem, type ApiContext } from '../context.js';
import type { Role } from '../tokens.js';

/**
 * Who sees which alerts. Safeguarding alerts name a pupil's device or pseudonym: the school's
 * referent and the admin only. Security alerts are about the gateway and devices' infections: the
 * admin and the academy's supervisor.
 */
export const ALERT_KINDS_BY_ROLE: Partial<Record<Role, AlertKind[]>> = {
  admin: ['safeguarding', 'security'],
  referent: ['safeguarding'],
  supervisor: ['security'],
};
const READERS = Object.keys(ALERT_KINDS_BY_ROLE) as Role[];

const shown = (a: Alert) => ({
  ...a,
  created: new Date(a.created).toISOString(),
  updated: new Date(a.updated).toISOString(),
  at: a.at === null ? null : new Date(a.at).toISOString(),
  evidence: a.evidence.map((e) => ({ ...e, time: new Date(e.time).toISOString() })),
});

const STEP: Record<'acknowledge' | 'dismiss', Exclude<AlertStatus, 'open'>> = { acknowledge: 'acknowledged', dismiss: 'dismissed' };

export function registerAlertRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { status?: AlertStatus; kind?: AlertKind; limit: number } }>('/api/v1/alerts', {
    config: { roles: READERS },
    schema: {
      tags: ['alerts'],
      summary: 'Alerts the role may see, most recently updated first (safeguarding: admin, referent; security: admin, supervisor)',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { status: { enum: ['open', 'acknowledged', 'dismissed'] }, kind: { enum: ['safeguarding', 'security'] }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 } },
      },
    },
  }, async (req, reply) => {
    const engine = ctx.gateway.alerts;
    if (!engine?.alerts) return problem(reply, 503, 'no alert store in this process');
    engine.flush();
    const allowed = ALERT_KINDS_BY_ROLE[req.principal!.role]!;
    const kinds = req.query.kind ? allowed.filter((k) => k === req.query.kind) : allowed;
    if (!kinds.length) return problem(reply, 403, `role "${req.principal!.role}" may not see ${req.query.kind} alerts`);
    return { alerts: engine.alerts.list({ kinds, status: req.query.status, limit: req.query.limit }).map(shown), open: engine.alerts.countOpen(kinds) };
  });

  app.post<{ Params: { id: string }; Body: { action: 'acknowledge' | 'dismiss'; reason: string } }>('/api/v1/alerts/:id', {
    config: { roles: READERS },
    schema: {
      tags: ['alerts'],
      summary: 'Acknowledge an alert, or dismiss it with a reason (audited; tunes nothing: new hits raise a new alert)',
      params: { type: 'object', properties: { id: { type: 'string', pattern: '^al_[0-9a-f]{1,32}$' } } },
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['action'],
        properties: { action: { enum: ['acknowledge', 'dismiss'] }, reason: { type: 'string', maxLength: 500, default: '' } },
      },
    },
  }, async (req, reply) => {
    const engine = ctx.gateway.alerts;
    if (!engine?.alerts) return problem(reply, 503, 'no alert store in this process');
    const a = engine.alerts.get(req.params.id);
    const allowed = ALERT_KINDS_BY_ROLE[req.principal!.role]!;
    if (!a || !allowed.includes(a.kind)) return problem(reply, 404, `no alert "${req.params.id}"`);
    const { action, reason } = req.body;
    // A dismissal says why: the reason is what the audit keeps of the referent's judgement.
    if (action === 'dismiss' && reason.trim().length < 3) {
      const problems = [{ field: 'body/reason', message: 'a dismissal needs a reason (3 characters at least)' }];
      await audit(ctx, req, 'request.invalid', `${req.method} ${req.routeOptions.url}`, { problems }, 'refused', 400);
      return problem(reply, 400, 'body/reason: a dismissal needs a reason (3 characters at least)', { problems });
    }
    if (a.status !== 'open') {
      await audit(ctx, req, `alert.${action}`, a.id, { id: a.id, kind: a.kind, type: a.type, status: a.status, reason, problem: `already ${a.status}` }, 'refused', 409);
      return problem(reply, 409, `alert ${a.id} is already ${a.status}`);
    }
    const done = engine.step(a.id, STEP[action], actorOf(req), reason);
    await audit(ctx, req, `alert.${action}`, a.id, { id: a.id, kind: a.kind, type: a.type, profile: a.profile, subject: a.subject, count: a.count, from: 'open', to: STEP[action], reason });
    return { alert: shown(done!) };
  });
}
