import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requisitionProblems } from '../../journal/requisition.js';
import type { JournalFilter, JournalReader, StatsBucket } from '../../journal/types.js';
import { decide } from '../../policy/decide.js';
import { InterceptExclusions, tlsTreatment } from '../../policy/interception.js';
import { requestFor } from '../../policy/request.js';
import { PolicyValidationError } from '../../policy/store.js';
import type { Decision } from '../../policy/types.js';
import { audit, journalOf, problem, type ApiContext, type AuditContext } from '../context.js';
import type { Role } from '../tokens.js';
import { timeField } from './time.js';

/** The journal filters' query parameters (the academy's routes add where: gateway, UAI, network). */
export const filterProps = {
  from: { type: 'string', description: 'ISO 8601 or ms since the epoch (inclusive)' },
  to: { type: 'string', description: 'ISO 8601 or ms since the epoch (exclusive)' },
  client: { type: 'string', maxLength: 64 },
  user: { type: 'string', maxLength: 256 },
  host: { type: 'string', maxLength: 255, description: 'exact host or parent domain' },
  decision: { type: 'string', enum: ['allow', 'block'] },
  profile: { type: 'string', maxLength: 64 },
  category: { type: 'string', maxLength: 128 },
} as const;

export type FilterQuery = { from?: string; to?: string; client?: string; user?: string; host?: string; decision?: 'allow' | 'block'; profile?: string; category?: string };

export function filterOf(q: FilterQuery): JournalFilter {
  const f: JournalFilter = {};
  const from = timeField(q.from, 'querystring/from');
  const to = timeField(q.to, 'querystring/to');
  if (from !== undefined) f.from = from;
  if (to !== undefined) f.to = to;
  for (const k of ['client', 'user', 'host', 'decision', 'profile', 'category'] as const) if (q[k]) (f as Record<string, unknown>)[k] = q[k];
  return f;
}

/** The journal or a 503 (the gateway runs without one, or it is not open yet). */
function needJournal(ctx: ApiContext, reply: FastifyReply): JournalReader | null {
  const j = journalOf(ctx.gateway);
  if (!j) void problem(reply, 503, 'the journal is not available on this gateway');
  return j;
}

/** A sentence for people: what the gateway would do and why. */
export function explain(d: Decision): string {
  const what = d.action === 'allow' ? 'Allowed' : 'Blocked';
  const entry = d.entry ? ` (entry "${d.entry}", ${d.matchKind})` : '';
  const period = d.period === 'within' ? ' during its time window' : d.period === 'otherwise' ? ' outside its time window' : '';
  switch (d.rule) {
    case 'no-client': return `${what}: the client address is in no configured network${d.profile ? ` (profile "${d.profile}" does not exist)` : ''}.`;
    case 'port': return `${what}: connections to this port are not allowed.`;
    case 'destination': return `${what}: the address is internal or reserved (the gateway itself, loopback, a private range...).`;
    case 'invalid-host': return `${what}: the host name is not valid.`;
    case 'fail-closed': return `${what}: no list set is loaded yet, so only allow entries pass (fail closed).`;
    case 'profile-allow': return `${what} by an allow entry of profile "${d.profile}"${period}${entry}.`;
    case 'profile-deny': return `${what} by a deny entry of profile "${d.profile}"${period}${entry}.`;
    case 'list-allow': return `${what} by the academy list "${d.category}" that profile "${d.profile}" allows${period}${entry}.`;
    case 'list-deny': return `${what} by the academy list "${d.category}" that profile "${d.profile}" blocks${period}${entry}.`;
    case 'category': return `${what}: category "${d.category}" is blocked for profile "${d.profile}"${period}${entry}.`;
    case 'default': return `${what}: nothing blocked it for profile "${d.profile}"${period}.`;
    case 'allowlist': return `${what}: category "${d.category}" is on the allowlist of profile "${d.profile}"${period}${entry}.`;
    case 'allowlist-only': return `${what}: profile "${d.profile}" only allows listed sites${period}, and this one is in none.`;
    case 'override': return `${what} by a teacher's temporary unblock of "${d.entry}" for the client's network${d.category ? ` (it lifted "${d.category}")` : ''}.`;
  }
}

export function registerJournalRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const SUPERVISE: readonly Role[] = ['supervisor', 'admin'];

  app.get<{ Querystring: { url: string; client: string; at?: string } }>('/api/v1/decision', {
    config: { roles: SUPERVISE },
    schema: {
      tags: ['decision'],
      summary: 'What the gateway would do for a URL from a client, and why',
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['url', 'client'],
        properties: { url: { type: 'string', minLength: 1, maxLength: 8192 }, client: { type: 'string', minLength: 1, maxLength: 64 }, at: { type: 'string', description: 'ISO 8601 time (schedules); default now' } },
      },
    },
  }, async (req) => {
    const time = timeField(req.query.at, 'querystring/at') ?? Date.now();
    const r = requestFor(req.query.url, req.query.client, time);
    const snapshot = ctx.gateway.snapshot;
    const d = decide(snapshot, r);
    // HTTPS only: terminated with the school CA, excluded from interception, or tunnelled (docs/interception.md).
    const config = ctx.gateway.proxy.config;
    const tls = r.scheme === 'connect' ? tlsTreatment(config, new InterceptExclusions(config, snapshot), d, r.host) : null;
    return { url: req.query.url, client: req.query.client, scheme: r.scheme, host: r.host, port: r.port, path: r.path, at: new Date(time).toISOString(), ...d, explanation: explain(d), tls };
  });

  app.get<{ Querystring: FilterQuery & { limit: number; cursor?: string } }>('/api/v1/journal', {
    config: { roles: ['supervisor'] },
    schema: {
      tags: ['journal'],
      summary: 'Search the connection journal (cursor pagination)',
      querystring: { type: 'object', additionalProperties: false, properties: { ...filterProps, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, cursor: { type: 'string', maxLength: 512 } } },
    },
  }, async (req, reply) => {
    const j = needJournal(ctx, reply);
    if (!j) return reply;
    const { limit, cursor, ...rest } = req.query;
    const filter = filterOf(rest);
    await audit(ctx, req, 'journal.search', null, { filter, limit, ...(cursor ? { cursor } : {}) });
    try {
      return j.search(filter, { limit, cursor: cursor ?? null });
    } catch (e) {
      if (e instanceof RangeError) throw new PolicyValidationError([{ field: 'querystring/cursor', message: e.message }]);
      throw e;
    }
  });

  app.get<{ Querystring: FilterQuery & { format: 'csv' | 'jsonl'; reference: string } }>('/api/v1/journal/export', {
    config: { roles: ['requisition'] },
    schema: {
      tags: ['journal'],
      summary: 'Stream matching journal rows (oldest first) for a legal request: reference and time range (at most journal.maxExportDays) mandatory; the reference goes into the audit; the last line gives the chain head reached',
      querystring: {
        type: 'object',
        additionalProperties: false,
        required: ['reference', 'from', 'to'],
        properties: { ...filterProps, format: { type: 'string', enum: ['csv', 'jsonl'], default: 'jsonl' }, reference: { type: 'string', minLength: 3, maxLength: 200, pattern: '^[^\\x00-\\x1f]+$', description: 'the requisition number (mandatory)' } },
      },
    },
  }, async (req: FastifyRequest<{ Querystring: FilterQuery & { format: 'csv' | 'jsonl'; reference: string } }>, reply) => {
    const j = needJournal(ctx, reply);
    if (!j) return reply;
    const { format, ...rest } = req.query;
    const filter = filterOf(rest);
    const reference = req.query.reference.trim();
    const refused = requisitionProblems({ reference, from: filter.from, to: filter.to }, ctx.gateway.config.journal.maxExportDays);
    if (refused.length) {
      await audit(ctx, req, 'journal.export', reference, { reference, filter, format, refused: refused.map((p) => p.message) }, 'refused', 400);
      throw new PolicyValidationError(refused.map((p) => ({ field: `querystring/${p.field}`, message: p.message })));
    }
    // Recorded before the first byte leaves: an export that is not in the audit never starts.
    await audit(ctx, req, 'journal.export', reference, { reference, filter, format });
    return sendExport(ctx, req, reply, j.export(filter, format), reference, format, 'vigie-journal');
  });

  app.get<{ Querystring: FilterQuery & { bucket: StatsBucket } }>('/api/v1/stats', {
    config: { roles: SUPERVISE },
    schema: {
      tags: ['stats'],
      summary: 'Requests and blocks per profile and category, per hour or day (default: the last 7 days)',
      querystring: { type: 'object', additionalProperties: false, properties: { ...filterProps, bucket: { type: 'string', enum: ['hour', 'day'], default: 'day' } } },
    },
  }, async (req, reply) => {
    const j = needJournal(ctx, reply);
    if (!j) return reply;
    const { bucket, ...rest } = req.query;
    const filter = filterOf(rest);
    filter.to ??= Date.now();
    filter.from ??= filter.to - 7 * 86_400_000;
    const rows = j.stats(filter, bucket);
    await audit(ctx, req, 'journal.stats', null, { filter, bucket });
    return statsBody(rows, filter, bucket, { byProfile: (r) => r.profile ?? '(none)', byCategory: (r) => r.category ?? '(none)' });
  });

  app.get<{ Querystring: { from?: string; to?: string; profile?: string; top: number } }>('/api/v1/stats/top', {
    config: { roles: SUPERVISE },
    schema: {
      tags: ['stats'],
      summary: 'Per profile: requests, blocks by category, the most blocked hosts and the hosts opened by unblocks (default: the last 24 hours)',
      querystring: { type: 'object', additionalProperties: false, properties: { from: filterProps.from, to: filterProps.to, profile: filterProps.profile, top: { type: 'integer', minimum: 1, maximum: 100, default: 10 } } },
    },
  }, async (req, reply) => {
    const j = needJournal(ctx, reply);
    if (!j) return reply;
    const { top, ...rest } = req.query;
    const filter = filterOf(rest);
    filter.to ??= Date.now();
    filter.from ??= filter.to - 86_400_000;
    const profiles = await j.summary(filter, top);
    await audit(ctx, req, 'journal.stats', null, { filter, top });
    return { from: new Date(filter.from).toISOString(), to: new Date(filter.to).toISOString(), profiles };
  });
}

/**
 * Streams a requisition export: each chunk as it comes, then `journal.export.end` in the audit with
 * the lines sent and whether the export completed (also for the academy's exports).
 */
export function sendExport(ctx: AuditContext, req: FastifyRequest, reply: FastifyReply, chunks: AsyncIterable<string>, reference: string, format: 'csv' | 'jsonl', name: string): FastifyReply {
  let lines = 0;
  let complete = false;
  async function* counted() {
    try {
      for await (const chunk of chunks) {
        lines += (chunk.match(/\n/g) ?? []).length;
        yield chunk;
      }
      complete = true;
    } finally {
      void audit(ctx, req, 'journal.export.end', reference, { reference, lines, complete }, complete ? 'ok' : 'failed').catch(() => undefined);
    }
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  reply.header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
  reply.header('content-disposition', `attachment; filename="${name}-${stamp}.${format}"`);
  reply.header('cache-control', 'no-store');
  return reply.send(Readable.from(counted()));
}

interface Counted {
  bucket: number;
  requests: number;
  blocked: number;
}

/**
 * The body of a stats answer (gateway and academy): the range, the totals, the rows summed per
 * each grouping in `by` (largest first), and the rows with ISO times.
 */
export function statsBody<R extends Counted>(rows: R[], filter: { from?: number; to?: number }, bucket: StatsBucket, by: Record<string, (r: R) => string>) {
  const sum = (key: (r: R) => string) => {
    const m = new Map<string, { requests: number; blocked: number }>();
    for (const r of rows) {
      const k = key(r);
      const t = m.get(k) ?? { requests: 0, blocked: 0 };
      t.requests += r.requests;
      t.blocked += r.blocked;
      m.set(k, t);
    }
    return [...m].map(([name, t]) => ({ name, ...t })).sort((a, b) => b.requests - a.requests);
  };
  const groups: Record<string, { name: string; requests: number; blocked: number }[]> = {};
  for (const [name, key] of Object.entries(by)) groups[name] = sum(key);
  return {
    from: new Date(filter.from!).toISOString(),
    to: new Date(filter.to!).toISOString(),
    bucket,
    totals: rows.reduce((t, r) => ({ requests: t.requests + r.requests, blocked: t.blocked + r.blocked }), { requests: 0, blocked: 0 }),
    ...groups,
    rows: rows.map((r) => ({ ...r, bucket: new Date(r.bucket).toISOString() })),
  };
}
