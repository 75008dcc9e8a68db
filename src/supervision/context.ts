import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Gateway } from '../gateway.js';
import type { JournalReader } from '../journal/types.js';
import type { Logger } from '../log.js';
import type { PolicyMeta } from '../policy/store.js';
import type { AuditEntry, AuditLog } from './audit.js';
import type { FleetPuller } from './fleet.js';
import type { Principal, Role, TokenStore } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** Roles allowed on the route; absent = no token needed. */
    roles?: readonly Role[];
  }
}

export interface ApiContext {
  gateway: Gateway;
  tokens: TokenStore;
  audit: AuditLog;
  log: Logger;
  fleet: FleetPuller | null;
}

/** What authentication and the audit need (a gateway's API and the academy's share them). */
export type AuditContext = Pick<ApiContext, 'tokens' | 'audit' | 'log'> & Partial<Pick<ApiContext, 'gateway'>>;

/** The journal, once the gateway has one (`gateway.journal`); null until then. */
export function journalOf(gateway: Gateway): JournalReader | null {
  return ((gateway as unknown as { journal?: JournalReader | null }).journal ?? null) as JournalReader | null;
}

export const actorOf = (req: FastifyRequest): string => (req.principal ? `${req.principal.name} (${req.principal.id})` : '-');

/** Who/where for the policy history, from the request. */
export const changeMeta = (req: FastifyRequest, action: string, why: string | undefined): Pick<PolicyMeta, 'who' | 'why' | 'action' | 'source'> => ({
  who: actorOf(req),
  why: why ?? '',
  action,
  source: req.ip,
});

/** Appends an audit line for this request (who, when, from where, what). */
export function audit(ctx: AuditContext, req: FastifyRequest, action: string, target: string | null, details?: Record<string, unknown>, outcome: AuditEntry['outcome'] = 'ok', status = 200): Promise<void> {
  return ctx.audit.record({
    actor: actorOf(req),
    tokenId: req.principal?.id ?? null,
    role: req.principal?.role ?? null,
    source: req.ip,
    action,
    target,
    outcome,
    status,
    ...(details ? { details } : {}),
  });
}

export const problem = (reply: FastifyReply, status: number, message: string, extra: Record<string, unknown> = {}) =>
  reply.code(status).send({ statusCode: status, error: httpError(status), message, ...extra });

function httpError(status: number): string {
  return ({ 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Entity', 429: 'Too Many Requests', 503: 'Service Unavailable' } as Record<number, string>)[status] ?? 'Error';
}
