import type { FastifyInstance } from 'fastify';
import type { Identity } from '../../auth/identity.js';
import { normaliseAddress } from '../../auth/sessions.js';
import { PolicyValidationError } from '../../policy/store.js';
import { audit, problem, type ApiContext } from '../context.js';
import type { Role } from '../tokens.js';

/** The gateway's identity part (directory, sessions); null on a gateway built without one. */
export function identityOf(ctx: ApiContext): Identity | null {
  return (ctx.gateway as unknown as { identity?: Identity }).identity ?? null;
}

const DECLARE: readonly Role[] = ['sessions', 'admin'];

/**
 * Address ↔ user sessions declared by trusted systems (the ENT at login, a NAC), as e2guardian's
 * dnsauth does: while one lasts, the address browses with its user's profile and the journal
 * records the user's directory id.
 */
export function registerSessionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/api/v1/sessions', {
    config: { roles: [...DECLARE, 'supervisor'] },
    schema: { tags: ['sessions'], summary: 'Live address ↔ user sessions' },
  }, async (_req, reply) => {
    const id = identityOf(ctx);
    if (!id) return problem(reply, 503, 'this gateway has no sessions');
    return { sessions: id.sessions.list().map((s) => ({ ...s, started: new Date(s.started).toISOString(), expires: new Date(s.expires).toISOString() })) };
  });

  app.post<{ Body: { address: string; user: string; minutes: number } }>('/api/v1/sessions', {
    config: { roles: DECLARE },
    schema: {
      tags: ['sessions'],
      summary: 'Declare that a user is behind an address for some minutes (replaces that address\'s session)',
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['address', 'user', 'minutes'],
        properties: {
          address: { type: 'string', minLength: 2, maxLength: 64 },
          user: { type: 'string', minLength: 1, maxLength: 128, description: 'AAF id or login, as the directory knows it' },
          minutes: { type: 'integer', minimum: 1, maximum: 1440 },
        },
      },
    },
  }, async (req, reply) => {
    const id = identityOf(ctx);
    if (!id) return problem(reply, 503, 'this gateway has no sessions');
    const address = normaliseAddress(req.body.address);
    if (!address) throw new PolicyValidationError([{ field: 'body/address', message: 'must be an IPv4 or IPv6 address' }]);
    if (!ctx.gateway.snapshot.clients.match(address)) throw new PolicyValidationError([{ field: 'body/address', message: 'is in no configured client network' }]);
    const user = id.user(req.body.user);
    if (!user) throw new PolicyValidationError([{ field: 'body/user', message: `is not in the directory (import the AAF exports: vigie directory import)` }]);
    const session = id.sessions.open(address, user.id, req.body.minutes * 60_000, `api:${req.principal!.name}`);
    await audit(ctx, req, 'session.open', address, { user: user.id, minutes: req.body.minutes });
    return reply.code(201).send({ ...session, started: new Date(session.started).toISOString(), expires: new Date(session.expires).toISOString(), profile: id.profileOf(user.id) });
  });

  app.delete<{ Params: { address: string } }>('/api/v1/sessions/:address', {
    config: { roles: DECLARE },
    schema: { tags: ['sessions'], summary: 'End the session of an address', params: { type: 'object', properties: { address: { type: 'string', minLength: 2, maxLength: 64 } } } },
  }, async (req, reply) => {
    const id = identityOf(ctx);
    if (!id) return problem(reply, 503, 'this gateway has no sessions');
    const address = normaliseAddress(req.params.address);
    if (!address) throw new PolicyValidationError([{ field: 'params/address', message: 'must be an IPv4 or IPv6 address' }]);
    if (!id.sessions.close(address)) return problem(reply, 404, `no session for ${address}`);
    await audit(ctx, req, 'session.close', address);
    return reply.code(204).send();
  });
}
