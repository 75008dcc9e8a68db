import type { FastifyRequest } from 'fastify';
import type { PolicyDraft, PolicyState } from '../policy/store.js';
import { actorOf, audit, changeMeta, type ApiContext } from './context.js';

export interface Committed {
  policyVersion: number;
  /** The proxy serves the new version already. */
  applied: boolean;
  /** The compiler's warnings about the changed profile or list. */
  warnings: string[];
}

/**
 * Makes a change a new policy version, applies it to the proxy, then records it: in the audit
 * (with what `describe` says changed, from the versions before and after) and in the process log
 * (who, what, which version). Throws PolicyValidationError, and then nothing changed.
 */
export async function commitChange(
  ctx: ApiContext,
  req: FastifyRequest,
  change: { action: string; target: string; why: string | undefined },
  mutate: (draft: PolicyDraft, before: Readonly<PolicyState>) => void,
  describe: (before: Readonly<PolicyState>, after: Readonly<PolicyState>) => Record<string, unknown>,
): Promise<Committed & { before: Readonly<PolicyState>; after: Readonly<PolicyState> }> {
  const store = ctx.gateway.policy;
  let before!: Readonly<PolicyState>;
  const after = await store.change(changeMeta(req, change.action, change.why), (d) => {
    // Changes run one at a time: the state in force now is the one the draft was copied from.
    before = store.current;
    mutate(d, before);
  });
  const snap = await ctx.gateway.recompile();
  const version = after.meta.version;
  await audit(ctx, req, change.action, change.target, { ...describe(before, after), policyVersion: version, ...(change.why ? { reason: change.why } : {}) });
  ctx.log.info('policy changed over the API', { actor: actorOf(req), source: req.ip, action: change.action, target: change.target, version });
  // Only what concerns the changed profile or list: the rest is in GET /api/v1/policy.
  // A profile with a time window is compiled twice, and says the same things twice: once is enough.
  const warnings = [...new Set(snap.warnings.filter((w) => w.profile === change.target || w.message.includes(`"${change.target}"`)).map((w) => w.message))];
  return { policyVersion: version, applied: snap.policyVersion === version, warnings, before, after };
}
