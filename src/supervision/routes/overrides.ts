import type { FastifyInstance, FastifyRequest } from 'fastify';
import { normalizeHost } from '../../lists/normalize.js';
import { parseNetwork } from '../../net/address.js';
import { decide } from '../../policy/decide.js';
import { OverrideGuard, type Override } from '../../policy/overrides.js';
import { actorOf, audit, problem, type ApiContext } from '../context.js';
import type { Role } from '../tokens.js';

/** Teachers ask for unblocks; supervisors and admins see and end them too. */
const UNBLOCKERS: readonly Role[] = ['teacher', 'supervisor', 'admin'];

const shown = (o: Override) => ({ id: o.id, host: o.host, network: o.network, reason: o.reason, createdBy: o.createdBy, created: new Date(o.created).toISOString(), expires: new Date(o.expires).toISOString() });

/** The configured client network that holds all of `network`, or null (an unblock is for a class of the school). */
function clientNetworkHolding(ctx: ApiContext, network: string): { network: string; profile: string } | null {
  const [addr, bits] = parseNetwork(network);
  for (const c of ctx.gateway.config.clients) {
    const [range, cbits] = parseNetwork(c.network);
    if (range.kind() === addr.kind() && bits >= cbits && addr.match(range, cbits)) return { network: c.network, profile: c.profile };
  }
  return null;
}

export function registerOverrideRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const store = ctx.gateway.overrides;

  // A teacher sees and ends only the unblocks it made (its token); supervisors and admins all of them.
  const visible = (req: FastifyRequest, o: Override) => req.principal?.role !== 'teacher' || o.createdBy === actorOf(req);

  app.get('/api/v1/overrides', { config: { roles: UNBLOCKERS }, schema: { tags: ['overrides'], summary: 'Temporary unblocks in force (a teacher: its own), soonest to expire first, and the limits that apply' } }, async (req) => {
    const o = ctx.gateway.config.overrides;
    return { overrides: store.list().filter((x) => visible(req, x)).map(shown), maxMinutes: o.maxMinutes, nonOverridable: o.nonOverridable, networks: ctx.gateway.config.clients.map((c) => ({ network: c.network, profile: c.profile })) };
  });

  app.post<{ Body: { host: string; network: string; minutes: number; reason: string } }>('/api/v1/overrides', {
    config: { roles: UNBLOCKERS },
    schema: {
      tags: ['overrides'],
      summary: 'Unblock a host (and its subdomains) for a class network for a few minutes',
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['host', 'network', 'minutes', 'reason'],
        properties: {
          host: { type: 'string', minLength: 1, maxLength: 255 },
          network: { type: 'string', minLength: 1, maxLength: 64 },
          minutes: { type: 'integer', minimum: 1, maximum: 1440 },
          reason: { type: 'string', pattern: '^[^\\x00-\\x1f]{1,500}$' },
        },
      },
    },
  }, async (req, reply) => {
    const b = req.body;
    const refuse = async (status: number, field: string, message: string, extra: Record<string, unknown> = {}) => {
      await audit(ctx, req, 'override.refused', b.host, { host: b.host, network: b.network, minutes: b.minutes, reason: b.reason, problem: message, ...extra }, 'refused', status);
      return problem(reply, status, `${field} ${message}`, { problems: [{ field, message }], ...extra });
    };
    const host = normalizeHost(b.host.trim());
    if (!host || host.includes('/')) return refuse(400, 'body/host', 'is not a host name or address');
    let net: { network: string; profile: string } | null;
    try {
      net = clientNetworkHolding(ctx, b.network.trim());
    } catch (e) {
      return refuse(400, 'body/network', `is not a network (CIDR): ${(e as Error).message}`);
    }
    if (!net) return refuse(400, 'body/network', `is not inside one of the school's client networks (${ctx.gateway.config.clients.map((c) => c.network).join(', ')})`);
    const max = ctx.gateway.config.overrides.maxMinutes;
    if (b.minutes > max) return refuse(400, 'body/minutes', `must be at most ${max} (overrides.maxMinutes)`);
    const snapshot = ctx.gateway.snapshot;
    const guard = new OverrideGuard(snapshot, ctx.gateway.config.overrides.nonOverridable);
    const forbidden = guard.hit(host, '');
    if (forbidden !== null) return refuse(422, 'body/host', `is in category "${forbidden}", which no unblock may open (overrides.nonOverridable)`, { category: forbidden });
    // What the class gets now, for the answer: an unblock of a host that is not blocked is kept all the same (a schedule may block it later).
    const [addr] = parseNetwork(b.network.trim());
    const now = decide(snapshot, { client: addr.toString(), scheme: 'http', host, port: 80, path: '/', time: Date.now() });
    const made = await store.add({ host, network: b.network.trim(), reason: b.reason, createdBy: actorOf(req), durationMs: b.minutes * 60_000 });
    await audit(ctx, req, 'override.create', made.id, { id: made.id, host, network: made.network, minutes: b.minutes, reason: b.reason, expires: new Date(made.expires).toISOString(), profile: net.profile, blockedBy: now.action === 'block' ? { rule: now.rule, category: now.category } : null });
    ctx.log.info('override created over the API', { actor: actorOf(req), host, network: made.network, minutes: b.minutes });
    return reply.code(201).send({ ...shown(made), minutes: b.minutes, profile: net.profile, wasBlocked: now.action === 'block', blockedBy: now.action === 'block' ? { rule: now.rule, category: now.category } : null });
  });

  app.delete<{ Params: { id: string } }>('/api/v1/overrides/:id', {
    config: { roles: UNBLOCKERS },
    schema: { tags: ['overrides'], summary: 'End an unblock before its time', params: { type: 'object', properties: { id: { type: 'string', pattern: '^ov_[0-9a-f]{1,32}$' } } } },
  }, async (req, reply) => {
    const it = store.list().find((o) => o.id === req.params.id);
    if (it && !visible(req, it)) return problem(reply, 403, `override "${it.id}" was made by someone else: a teacher ends only its own`);
    const gone = await store.revoke(req.params.id);
    if (!gone) return problem(reply, 404, `no active override "${req.params.id}"`);
    await audit(ctx, req, 'override.revoke', gone.id, { id: gone.id, host: gone.host, network: gone.network, reason: gone.reason, createdBy: gone.createdBy, expires: new Date(gone.expires).toISOString() });
    return { revoked: shown(gone) };
  });
}
