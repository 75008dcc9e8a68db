import type { FastifyInstance } from 'fastify';
import { audit, journalOf, problem, type ApiContext } from '../context.js';
import { ROLES, type Role } from '../tokens.js';
import { timeField } from './time.js';

const READERS: readonly Role[] = ['admin', 'supervisor'];

export function registerSystemRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/api/v1/health', {
    schema: { tags: ['system'], summary: 'Status, policy version, lists loaded, journal writable (no token)', security: [] },
  }, async () => {
    const snap = ctx.gateway.snapshot;
    const journal = journalOf(ctx.gateway);
    let journalHealth: ReturnType<NonNullable<typeof journal>['health']> | null = null;
    try {
      journalHealth = journal ? journal.health() : null;
    } catch {
      journalHealth = null;
    }
    const fleet = ctx.fleet?.status ?? null;
    const ship = ctx.gateway.shipper?.status ?? null;
    const degraded = !snap?.listsLoaded || (journalHealth !== null && !journalHealth.writable) || fleet?.lastOutcome === 'rejected' || fleet?.lastOutcome === 'error' || ship?.late === true;
    return {
      status: degraded ? 'degraded' : 'ok',
      policyVersion: ctx.gateway.policy.version,
      listsLoaded: snap?.listsLoaded ?? false,
      listVersion: snap?.listVersion ?? 'none',
      // Categories profiles block that no loaded list fills (lists/README: loud when missing).
      lists: { emptyCategories: snap?.emptyCategories ?? [] },
      journal: journalHealth ? { writable: journalHealth.writable, queueDepth: journalHealth.queueDepth, rowsLost: journalHealth.rowsLost, lastError: journalHealth.lastError } : null,
      fleet,
      ship: ship && { connected: ship.connected, lagSeconds: ship.lagSeconds, maxLagSeconds: ship.maxLagSeconds, acknowledged: ship.acknowledged, rowsShipped: ship.rowsShipped, lastError: ship.lastError },
    };
  });

  // The console asks who it is before it shows anything: a wrong token is an error, and a role
  // sees only what it may do.
  app.get('/api/v1/whoami', {
    config: { roles: ROLES },
    schema: { tags: ['tokens'], summary: "The token's id, role and name (every role)" },
  }, async (req) => ({ id: req.principal!.id, role: req.principal!.role, name: req.principal!.name }));

  app.get('/api/v1/tokens', { config: { roles: ['admin'] }, schema: { tags: ['tokens'], summary: 'Tokens (never their secret)' } }, async () => ({ tokens: ctx.tokens.list() }));

  app.post<{ Body: { role: Role; name: string } }>('/api/v1/tokens', {
    config: { roles: ['admin'] },
    schema: {
      tags: ['tokens'],
      summary: 'Create a token; the answer is the only time it is shown',
      body: { type: 'object', additionalProperties: false, required: ['role', 'name'], properties: { role: { type: 'string', enum: [...ROLES] }, name: { type: 'string', pattern: '^[^\\x00-\\x1f]{1,100}$' } } },
    },
  }, async (req, reply) => {
    const { token, record } = await ctx.tokens.create(req.body.role, req.body.name, `${req.principal!.name} (${req.principal!.id})`);
    await audit(ctx, req, 'token.create', record.id, { id: record.id, role: record.role, name: record.name });
    return reply.code(201).send({ token, ...record });
  });

  app.delete<{ Params: { id: string } }>('/api/v1/tokens/:id', {
    config: { roles: ['admin'] },
    schema: { tags: ['tokens'], summary: 'Revoke a token (by id, or every token with that name)', params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } } },
  }, async (req, reply) => {
    const revoked = await ctx.tokens.revoke(req.params.id);
    if (!revoked.length) return problem(reply, 404, `no active token "${req.params.id}"`);
    await audit(ctx, req, 'token.revoke', req.params.id, { revoked: revoked.map((r) => ({ id: r.id, role: r.role, name: r.name })) });
    return { revoked };
  });

  app.get<{ Querystring: { limit: number; from?: string; to?: string; action?: string; actor?: string } }>('/api/v1/audit', {
    config: { roles: READERS },
    schema: {
      tags: ['audit'],
      summary: 'The audit log, newest first',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { limit: { type: 'integer', minimum: 1, maximum: 10000, default: 100 }, from: { type: 'string' }, to: { type: 'string' }, action: { type: 'string' }, actor: { type: 'string' } },
      },
    },
  }, async (req) => {
    const q = req.query;
    const entries = await ctx.audit.query({ limit: q.limit, from: timeField(q.from, 'querystring/from'), to: timeField(q.to, 'querystring/to'), action: q.action, actor: q.actor });
    return { entries };
  });
}
