import type { FastifyInstance } from 'fastify';
import type { ProfileConfig, RuleSet } from '../../config/types.js';
import { checkDomain, checkUrl, type Problem } from '../../policy/entries.js';
import { own } from '../../own.js';
import { LIST_NAME, normalizeProfile, PolicyValidationError, profileSchema } from '../../policy/store.js';
import { periodWarnings, profileChange } from '../changes.js';
import { commitChange } from '../commit.js';
import { problem, type ApiContext } from '../context.js';
import type { Role } from '../tokens.js';

const READERS: readonly Role[] = ['admin', 'supervisor'];
const ADMIN: readonly Role[] = ['admin'];

/** Reads take any name and answer 404 for one that is not a profile; writes take valid names only. */
const anyProfile = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 200 } } } as const;
const profileId = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: LIST_NAME.source, description: 'letters, digits, `_`, `.`, `-`; not `__proto__`' } } } as const;
const reasonQuery = { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 500, description: 'Why: kept in the policy history and the audit log' } } } as const;

/** What GET returns besides the profile itself: accepted by PUT and ignored, so GET output can be PUT back. */
const READ_ONLY = {
  id: { type: 'string', readOnly: true, description: 'ignored (the name is in the path)' },
  policyVersion: { type: 'integer', readOnly: true, description: 'ignored' },
  warnings: { type: 'array', readOnly: true, description: 'ignored' },
  clients: { type: 'array', readOnly: true, description: 'ignored' },
} as const;
const putBody = { ...profileSchema, properties: { ...profileSchema.properties, ...READ_ONLY } } as const;

const entryList = { type: 'array', minItems: 1, maxItems: 10_000, items: { type: 'string', minLength: 1, maxLength: 2048 }, description: 'Domains (`example.org`) or url prefixes (`example.org/path`)' } as const;
const entriesBody = {
  type: 'object',
  additionalProperties: false,
  anyOf: [{ required: ['allow'] }, { required: ['deny'] }],
  properties: {
    allow: entryList,
    deny: entryList,
    period: {
      type: 'string',
      enum: ['always', 'within', 'otherwise'],
      description: 'Which rules of a profile with a time window: `within` (its main rules, the default), `otherwise` (outside the window), `always` (both). A profile without a window has only `always`.',
    },
  },
} as const;

type Period = 'always' | 'within' | 'otherwise';
type EntriesBody = { allow?: string[]; deny?: string[]; period?: Period };
type Reason = { reason?: string };

/** The rule sets of `p` an entry edit touches (main rules, `schedule.otherwise`, or both). */
function ruleSets(p: ProfileConfig, period: Period | undefined): RuleSet[] {
  if (!p.schedule) {
    if (period === 'within' || period === 'otherwise') throw new PolicyValidationError([{ field: 'body/period', message: `the profile has no time window: only "always" applies` }]);
    return [p];
  }
  if (period === 'otherwise') return [p.schedule.otherwise];
  if (period === 'always') return [p, p.schedule.otherwise];
  return [p];
}

/** The entries of the body, normalised (as the proxy will match them), or every problem named. */
function parseProfileEntries(body: EntriesBody): { allow: string[]; deny: string[] } {
  const problems: Problem[] = [];
  const out = { allow: [] as string[], deny: [] as string[] };
  for (const kind of ['allow', 'deny'] as const) {
    (body[kind] ?? []).forEach((raw, i) => {
      const r = raw.includes('/') ? checkUrl(raw) : checkDomain(raw);
      if ('problem' in r) problems.push({ field: `body/${kind}/${i}`, entry: raw.slice(0, 200), message: r.problem });
      else out[kind].push(r.value);
    });
  }
  if (problems.length) throw new PolicyValidationError(problems);
  return out;
}

const normalized = (e: string): string => {
  const r = e.includes('/') ? checkUrl(e) : checkDomain(e);
  return 'value' in r ? r.value : e;
};

export function registerProfileRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const store = ctx.gateway.policy;
  const view = (id: string, p: ProfileConfig) => ({ id, policyVersion: store.version, ...p, warnings: [...new Set(ctx.gateway.snapshot.warnings.filter((w) => w.profile === id).map((w) => w.message))] });

  app.get('/api/v1/profiles', { config: { roles: READERS }, schema: { tags: ['profiles'], summary: 'Every profile and the client networks using it' } }, async () => {
    const profiles = store.current.profiles;
    const clients = ctx.gateway.config.clients;
    return {
      policyVersion: store.version,
      profiles: Object.entries(profiles).map(([id, p]) => ({ id, ...p, clients: clients.filter((c) => c.profile === id).map((c) => ({ network: c.network, name: c.name ?? null })) })),
    };
  });

  app.get<{ Params: { id: string } }>('/api/v1/profiles/:id', { config: { roles: READERS }, schema: { tags: ['profiles'], summary: 'One profile (what PUT takes back as it is)', params: anyProfile } }, async (req, reply) => {
    const p = own(store.current.profiles, req.params.id);
    if (!p) return problem(reply, 404, `no profile "${req.params.id}"`);
    return view(req.params.id, p);
  });

  app.put<{ Params: { id: string }; Body: ProfileConfig & Partial<Record<keyof typeof READ_ONLY, unknown>>; Querystring: Reason }>('/api/v1/profiles/:id', {
    config: { roles: ADMIN },
    schema: { tags: ['profiles'], summary: 'Replace (or create) a profile: mode, categories, allow/deny entries, academy lists, schedule. Read-only fields of GET (id, policyVersion, warnings, clients) are ignored.', params: profileId, querystring: reasonQuery, body: putBody },
  }, async (req, reply) => {
    const { id } = req.params;
    const { id: _i, policyVersion: _v, warnings: _w, clients: _c, ...profile } = req.body;
    const existed = Boolean(own(store.current.profiles, id));
    const out = await commitChange(ctx, req, { action: 'profile.replace', target: id, why: req.query.reason }, (d) => {
      d.profiles[id] = profile;
    }, (before, after) => ({ created: !own(before.profiles, id), changes: profileChange(own(before.profiles, id), own(after.profiles, id)) })).catch((e) => {
      // The store names paths inside the whole policy; the caller sent this profile as the body.
      if (!(e instanceof PolicyValidationError)) throw e;
      const prefix = `/profiles/${id}`;
      throw new PolicyValidationError(e.problems.map((p) => (p.field === prefix || p.field.startsWith(prefix + '/') ? { ...p, field: 'body' + p.field.slice(prefix.length) } : p)));
    });
    const warnings = [...periodWarnings(own(out.before.profiles, id), own(out.after.profiles, id)!), ...out.warnings];
    return reply.code(existed ? 200 : 201).send({ id, policyVersion: out.policyVersion, applied: out.applied, warnings });
  });

  const edit = (kind: 'add' | 'remove') => async (req: import('fastify').FastifyRequest<{ Params: { id: string }; Body: EntriesBody; Querystring: Reason }>, reply: import('fastify').FastifyReply) => {
    const { id } = req.params;
    if (!own(store.current.profiles, id)) return problem(reply, 404, `no profile "${id}"`);
    const entries = parseProfileEntries(req.body);
    const notFound: string[] = [];
    let count = 0;
    const out = await commitChange(ctx, req, { action: kind === 'add' ? 'profile.entries.add' : 'profile.entries.remove', target: id, why: req.query.reason }, (d) => {
      const current = own(d.profiles, id);
      // Deleted by another change since the check above.
      if (!current) throw new PolicyValidationError([{ field: 'params/id', message: `no profile "${id}"` }]);
      const p = normalizeProfile(id, current);
      d.profiles[id] = p;
      for (const rules of ruleSets(p, req.body.period)) {
        for (const k of ['allow', 'deny'] as const) {
          const before = rules[k].length;
          if (kind === 'add') {
            const had = new Set(rules[k].map(normalized));
            rules[k] = [...rules[k], ...new Set(entries[k].filter((e) => !had.has(e)))];
          } else {
            const drop = new Set(entries[k]);
            const present = new Set(rules[k].map(normalized));
            for (const e of entries[k]) if (!present.has(e)) notFound.push(`${k} "${e}"`);
            rules[k] = rules[k].filter((e) => !drop.has(normalized(e)));
          }
          count += Math.abs(rules[k].length - before);
        }
      }
    }, (before, after) => ({ period: req.body.period ?? (own(before.profiles, id)!.schedule ? 'within' : 'always'), changes: profileChange(own(before.profiles, id), own(after.profiles, id)) }));
    const after = own(out.after.profiles, id)!;
    const warnings = [...periodWarnings(own(out.before.profiles, id), after), ...out.warnings];
    if (notFound.length) warnings.push(`not in the ${req.body.period === 'always' ? 'rules' : 'rule set'} edited, nothing to remove: ${[...new Set(notFound)].slice(0, 20).join(', ')}`);
    return { id, policyVersion: out.policyVersion, applied: out.applied, [kind === 'add' ? 'added' : 'removed']: count, warnings, profile: after };
  };
  const editSchema = (summary: string) => ({ config: { roles: ADMIN }, schema: { tags: ['profiles'], summary, params: anyProfile, querystring: reasonQuery, body: entriesBody } });
  app.post('/api/v1/profiles/:id/entries', editSchema('Add allow or deny entries to a profile (its main rules unless `period` says otherwise)'), edit('add'));
  app.delete('/api/v1/profiles/:id/entries', editSchema('Remove allow or deny entries from a profile'), edit('remove'));
}
