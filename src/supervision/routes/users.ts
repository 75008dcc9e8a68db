import type { FastifyInstance } from 'fastify';
import { profileForUser } from '../../directory/levels.js';
import { Directory } from '../../directory/store.js';
import { audit, problem, type ApiContext } from '../context.js';
import type { Role } from '../tokens.js';
import { identityOf } from './sessions.js';

const READERS: readonly Role[] = ['admin', 'supervisor'];

/** Reads the directory database (the API's own read-only connection; the proxy uses its copy in memory). */
function withDirectory<T>(ctx: ApiContext, fn: (d: Directory) => T): T | null {
  let d: Directory;
  try {
    d = Directory.open(ctx.gateway.config.dataDir, { readonly: true });
  } catch {
    return null;
  }
  try {
    return fn(d);
  } finally {
    d.close();
  }
}

/**
 * The directory as supervisors see it: pseudonymous ids, roles, levels, classes and profiles. A
 * person's name is given only to the requisition role, with the requisition's reference, audited.
 */
export function registerUserRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { limit: number; after?: string; uai?: string; role?: string } }>('/api/v1/users', {
    config: { roles: READERS },
    schema: {
      tags: ['users'],
      summary: 'Directory users, by id (never their name); departed ones kept for requisitions carry `left`',
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          after: { type: 'string', maxLength: 64, description: 'the last id of the previous page' },
          uai: { type: 'string', maxLength: 16 },
          role: { type: 'string', enum: ['pupil', 'teacher', 'staff', 'direction'] },
        },
      },
    },
  }, async (req) => {
    const users = withDirectory(ctx, (d) => d.list(req.query)) ?? [];
    const dir = ctx.gateway.config.directory;
    return { users: users.map((u) => ({ ...u, profile: u.left ? null : profileForUser(u, dir) })), next: users.length === req.query.limit ? users[users.length - 1]!.id : null };
  });

  app.get<{ Params: { id: string } }>('/api/v1/users/:id', {
    config: { roles: READERS },
    schema: { tags: ['users'], summary: 'One user (AAF id or login): role, level, classes, profile, live sessions', params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } } },
  }, async (req, reply) => {
    const u = withDirectory(ctx, (d) => d.find(req.params.id));
    if (!u) return problem(reply, 404, `no user "${req.params.id}" in the directory`);
    const sessions = identityOf(ctx)?.sessions.list().filter((s) => s.user === u.id).map((s) => s.address) ?? [];
    return { ...u, profile: profileForUser(u, ctx.gateway.config.directory), sessions };
  });

  app.get<{ Params: { id: string }; Querystring: { reference: string } }>('/api/v1/users/:id/identity', {
    config: { roles: ['requisition'] },
    schema: {
      tags: ['users'],
      summary: 'Who an id is (names), for a legal request; the reference goes into the audit',
      params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } },
      querystring: { type: 'object', additionalProperties: false, required: ['reference'], properties: { reference: { type: 'string', minLength: 3, maxLength: 200, pattern: '^[^\\x00-\\x1f]+$' } } },
    },
  }, async (req, reply) => {
    const who = withDirectory(ctx, (d) => d.identity(req.params.id));
    // Recorded whether or not the id resolves: the question itself is part of the requisition.
    await audit(ctx, req, 'user.identity', req.params.id, { reference: req.query.reference, found: !!who }, who ? 'ok' : 'refused', who ? 200 : 404);
    if (!who) return problem(reply, 404, `no user "${req.params.id}" in the directory`);
    return who;
  });
}
