import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { StatsBucket } from '../journal/types.js';
import { PolicyValidationError } from '../policy/store.js';
import { audit, type AuditContext } from '../supervision/context.js';
import { filterOf, filterProps, sendExport, statsBody, type FilterQuery } from '../supervision/routes/journal.js';
import type { Role } from '../supervision/tokens.js';
import type { AcademyConfig } from './config.js';
import { fleetStatus } from './fleet.js';
import { AcademyJournal, FilterError, type AcademyFilter } from './store.js';
import { verifyCopy } from './verify.js';

export interface AcademyContext extends AuditContext {
  pool: pg.Pool;
  journal: AcademyJournal;
  config: AcademyConfig;
}

const whereProps = {
  gateway: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$', description: 'gateway id (journal.ship.gatewayId)' },
  uai: { type: 'string', pattern: '^[0-9]{7}[A-Z]$', description: 'establishment (UAI)' },
  network: { type: 'string', maxLength: 64, description: 'client address or CIDR range' },
} as const;

type AcademyQuery = FilterQuery & { gateway?: string; uai?: string; network?: string };

const academyFilter = (q: AcademyQuery): AcademyFilter => {
  const f: AcademyFilter = filterOf(q);
  for (const k of ['gateway', 'uai', 'network'] as const) if (q[k]) f[k] = q[k];
  return f;
};

/** A bad filter value becomes the API's usual 400 naming the field. */
async function filtered<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof FilterError) throw new PolicyValidationError([{ field: e.field, message: e.message }]);
    throw e;
  }
}

/** The supervision API's journal routes over the academy's PostgreSQL copy, plus the fleet. */
export function registerAcademyRoutes(app: FastifyInstance, ctx: AcademyContext): void {
  const SUPERVISE: readonly Role[] = ['supervisor', 'admin'];

  app.get('/api/v1/health', { schema: { tags: ['system'], summary: 'The academy service and its PostgreSQL (no token)', security: [] } }, async (_req, reply) => {
    try {
      const r = await ctx.pool.query('SELECT count(*) AS n FROM vigie_gateways');
      return { status: 'ok', postgres: 'ok', gateways: Number(r.rows[0].n) };
    } catch (e) {
      return reply.code(503).send({ status: 'degraded', postgres: (e as Error).message });
    }
  });

  app.get<{ Querystring: AcademyQuery & { limit: number; cursor?: string; order: 'asc' | 'desc' } }>('/api/v1/journal', {
    config: { roles: ['supervisor'] },
    schema: {
      tags: ['journal'],
      summary: 'Search every gateway\'s journal (cursor pagination, oldest first)',
      querystring: { type: 'object', additionalProperties: false, properties: { ...filterProps, ...whereProps, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, cursor: { type: 'string', maxLength: 512 }, order: { type: 'string', enum: ['asc', 'desc'], default: 'asc' } } },
    },
  }, async (req) => {
    const { limit, cursor, order, ...rest } = req.query;
    const filter = academyFilter(rest);
    await audit(ctx, req, 'journal.search', null, { filter, limit, ...(cursor ? { cursor } : {}) });
    return filtered(() => ctx.journal.search(filter, { limit, cursor: cursor ?? null, order }));
  });

  app.get<{ Querystring: AcademyQuery & { format: 'csv' | 'jsonl'; reference: string } }>('/api/v1/journal/export', {
    config: { roles: ['requisition'] },
    schema: {
      tags: ['journal'],
      summary: 'Stream matching rows of every gateway (oldest first) for a legal request; the reference goes into the audit',
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['reference'],
        properties: { ...filterProps, ...whereProps, format: { type: 'string', enum: ['csv', 'jsonl'], default: 'jsonl' }, reference: { type: 'string', minLength: 3, maxLength: 200, pattern: '^[^\\x00-\\x1f]+$', description: 'the requisition number (mandatory)' } },
      },
    },
  }, async (req, reply) => {
    const { format, reference, ...rest } = req.query;
    const filter = academyFilter(rest);
    // A bad filter is refused before anything is recorded as exported.
    await filtered(() => ctx.journal.search(filter, { limit: 1 }));
    await audit(ctx, req, 'journal.export', reference, { reference, filter, format });
    return sendExport(ctx, req, reply, ctx.journal.export(filter, format), reference, format, 'vigie-academy-journal');
  });

  app.get<{ Querystring: AcademyQuery & { bucket: StatsBucket } }>('/api/v1/stats', {
    config: { roles: SUPERVISE },
    schema: {
      tags: ['stats'],
      summary: 'Requests and blocks per gateway, profile and category, per hour or day (default: the last 7 days)',
      querystring: { type: 'object', additionalProperties: false, properties: { ...filterProps, ...whereProps, bucket: { type: 'string', enum: ['hour', 'day'], default: 'day' } } },
    },
  }, async (req) => {
    const { bucket, ...rest } = req.query;
    const filter = academyFilter(rest);
    filter.to ??= Date.now();
    filter.from ??= filter.to - 7 * 86_400_000;
    const rows = await filtered(() => ctx.journal.stats(filter, bucket));
    await audit(ctx, req, 'journal.stats', null, { filter, bucket });
    return statsBody(rows, filter, bucket, { byGateway: (r) => r.gateway, byProfile: (r) => r.profile ?? '(none)', byCategory: (r) => r.category ?? '(none)' });
  });

  app.get<{ Querystring: { gateway?: string } }>('/api/v1/journal/verify', {
    config: { roles: ['admin', 'requisition'] },
    schema: {
      tags: ['journal'],
      summary: 'Check each gateway\'s hash chain in the copy; problems name the gateway and the ids',
      querystring: { type: 'object', additionalProperties: false, properties: { gateway: whereProps.gateway } },
    },
  }, async (req) => {
    const report = await verifyCopy(ctx.pool, req.query.gateway ? [req.query.gateway] : undefined);
    await audit(ctx, req, 'journal.verify', req.query.gateway ?? null, { ok: report.ok, gateways: report.gateways.length, problems: report.gateways.reduce((n, g) => n + g.problems.length, 0) });
    return report;
  });

  app.get<{ Querystring: { problems?: boolean } }>('/api/v1/fleet', {
    config: { roles: SUPERVISE },
    schema: {
      tags: ['fleet'],
      summary: 'Every gateway\'s last status report; stale and unhealthy ones named',
      querystring: { type: 'object', additionalProperties: false, properties: { problems: { type: 'boolean', default: false, description: 'only stale or unhealthy gateways' } } },
    },
  }, async (req) => {
    const all = await fleetStatus(ctx.pool, ctx.config.fleet);
    return {
      limits: ctx.config.fleet,
      stale: all.filter((g) => g.stale).map((g) => g.gateway),
      unhealthy: all.filter((g) => g.unhealthy).map((g) => g.gateway),
      gateways: req.query.problems ? all.filter((g) => g.stale || g.unhealthy) : all,
    };
  });

}
