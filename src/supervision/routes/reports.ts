import type { FastifyInstance } from 'fastify';
import { OverrideGuard } from '../../policy/overrides.js';
import { actorOf, audit, problem, type ApiContext } from '../context.js';
import { commitChange } from '../commit.js';
import { hasChannel, notify } from '../notify.js';
import type { Report, ReportAction, ReportStatus } from '../report-queue.js';
import type { Role } from '../tokens.js';

const REFERENTS: readonly Role[] = ['supervisor', 'admin'];

const shown = (r: Report) => ({ ...r, time: new Date(r.time).toISOString(), steps: r.steps.map((s) => ({ ...s, at: new Date(s.at).toISOString() })) });

/** The academy list an accepted report adds its host to. */
const listFor = (r: Report) => (r.kind === 'allow' ? 'academy-allow' : 'academy-deny');

export function registerReportRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { status?: ReportStatus; kind?: 'allow' | 'block'; limit: number } }>('/api/v1/reports', {
    config: { roles: REFERENTS },
    schema: {
      tags: ['reports'],
      summary: 'Reports from the block page and /report, newest first (no client address, no user)',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { status: { enum: ['open', 'accepted', 'rejected', 'escalated'] }, kind: { enum: ['allow', 'block'] }, limit: { type: 'integer', minimum: 1, maximum: 5000, default: 500 } },
      },
    },
  }, async (req, reply) => {
    const q = ctx.gateway.reports;
    if (!q) return problem(reply, 503, 'no report queue in this process');
    const all = q.list();
    const out: ReturnType<typeof shown>[] = [];
    for (let i = all.length - 1; i >= 0 && out.length < req.query.limit; i--) {
      const r = all[i]!;
      if ((req.query.status && r.status !== req.query.status) || (req.query.kind && r.kind !== req.query.kind)) continue;
      out.push(shown(r));
    }
    return { reports: out, open: all.filter((r) => r.status === 'open').length };
  });

  app.post<{ Params: { id: string }; Body: { action: ReportAction; reason: string } }>('/api/v1/reports/:id', {
    config: { roles: REFERENTS },
    schema: {
      tags: ['reports'],
      summary: 'Accept (adds the host to academy-allow or academy-deny, by kind), reject, or escalate (notifications.webhooks) a report',
      params: { type: 'object', properties: { id: { type: 'string', pattern: '^rp_[0-9a-f]{1,32}$' } } },
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['action'],
        properties: { action: { enum: ['accept', 'reject', 'escalate'] }, reason: { type: 'string', maxLength: 500, default: '' } },
      },
    },
  }, async (req, reply) => {
    const q = ctx.gateway.reports;
    if (!q) return problem(reply, 503, 'no report queue in this process');
    const r = q.get(req.params.id);
    if (!r) return problem(reply, 404, `no report "${req.params.id}"`);
    const { action, reason } = req.body;
    const target = r.id;
    const refuse = async (status: number, message: string, extra: Record<string, unknown> = {}) => {
      await audit(ctx, req, 'report.refused', target, { id: r.id, host: r.host, kind: r.kind, action, reason, problem: message, ...extra }, 'refused', status);
      return problem(reply, status, message, extra);
    };
    if (r.status === 'accepted' || r.status === 'rejected') return refuse(409, `report ${r.id} is already ${r.status}`);
    const by = actorOf(req);
    const about = { id: r.id, host: r.host, kind: r.kind, profile: r.profile, comment: r.comment, reason };
    if (action === 'reject') {
      const done = await q.step(r.id, 'reject', by, reason, Date.now());
      await audit(ctx, req, 'report.reject', target, about);
      return { report: shown(done!) };
    }
    if (action === 'escalate') {
      if (!hasChannel(ctx.gateway.config)) return refuse(409, 'nowhere to escalate: notifications has no webhooks, smtp nor syslog in the config');
      const deliveries = await notify(ctx.gateway.config, { kind: 'report.escalated', severity: 'notice', event: 'report.escalated', title: `signalement ${r.host}`, report: { ...shown(r), steps: undefined }, by, reason });
      if (!deliveries.some((d) => d.ok)) return refuse(502, 'no notification channel took the escalation', { deliveries });
      const done = await q.step(r.id, 'escalate', by, reason, Date.now());
      await audit(ctx, req, 'report.escalate', target, { ...about, deliveries });
      return { report: shown(done!), deliveries };
    }
    // accept: the host goes into an academy list, as a policy change (versioned, audited with the list change).
    if (req.principal!.role !== 'admin') return refuse(403, 'accepting a report changes an academy list: admin only (a supervisor may reject or escalate)');
    if (r.kind === 'allow') {
      const forbidden = new OverrideGuard(ctx.gateway.snapshot, ctx.gateway.config.overrides.nonOverridable).hit(r.host, '');
      if (forbidden) return refuse(422, `${r.host} is in category "${forbidden}" (overrides.nonOverridable): it cannot be allowed from a report`, { category: forbidden });
    }
    const list = listFor(r);
    const out = await commitChange(ctx, req, { action: 'report.accept', target: list, why: reason || `report ${r.id}` }, (d) => {
      const l = d.lists[list]!;
      if (!l.domains.includes(r.host)) l.domains = [...l.domains, r.host];
    }, () => ({ ...about, list, added: [r.host] }));
    const done = await q.step(r.id, 'accept', by, reason, Date.now());
    return { report: shown(done!), list, policyVersion: out.policyVersion, applied: out.applied };
  });
}
