import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ProfileConfig } from '../../config/types.js';
import { LIST_NAME, listEntries, parseEntries, PERMANENT_LISTS, PolicyValidationError, profileSchema, type AcademyList, type EntryInput, type PolicyDraft } from '../../policy/store.js';
import { exportBundle } from '../bundle.js';
import { audit, changeMeta, problem, type ApiContext } from '../context.js';
import { LIST_BODY_LIMIT } from '../limits.js';
import type { Role } from '../tokens.js';

const READERS: readonly Role[] = ['admin', 'supervisor'];
const ADMIN: readonly Role[] = ['admin'];

const listName = { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: LIST_NAME.source } } } as const;
const profileId = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: LIST_NAME.source } } } as const;
const reasonQuery = { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 500, description: 'Why: kept in the policy history and the audit log' } } } as const;
const entry = {
  anyOf: [
    { type: 'string', minLength: 1, maxLength: 2048 },
    { type: 'object', additionalProperties: false, required: ['expression'], properties: { expression: { type: 'string', minLength: 1, maxLength: 2048 } } },
  ],
} as const;
const entriesBody = {
  type: 'object',
  additionalProperties: false,
  required: ['entries'],
  properties: { entries: { type: 'array', maxItems: 500_000, items: entry, description: 'Domains (`example.org`), url prefixes (`example.org/path`), or `{"expression": "regex"}`' } },
} as const;

type Reason = { reason?: string };

function usedBy(profiles: Record<string, ProfileConfig>, name: string): string[] {
  return Object.entries(profiles)
    .filter(([, p]) => [p, p.schedule?.otherwise].some((r) => r && (r.allowLists.includes(name) || r.denyLists.includes(name))))
    .map(([id]) => id);
}

function listView(name: string, l: AcademyList, profiles: Record<string, ProfileConfig>) {
  return { name, version: l.changedIn, counts: { domains: l.domains.length, urls: l.urls.length, expressions: l.expressions.length }, usedBy: usedBy(profiles, name), entries: listEntries(l) };
}

function entriesOrThrow(entries: EntryInput[]) {
  const parsed = parseEntries(entries, 'body/entries');
  if (parsed.problems.length) throw new PolicyValidationError(parsed.problems);
  return parsed;
}

export function registerPolicyRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const store = ctx.gateway.policy;

  /** Makes a change a new version, applies it to the proxy, records it; answers with the version. */
  const commit = async (req: FastifyRequest, action: string, target: string, why: string | undefined, details: Record<string, unknown>, mutate: (d: PolicyDraft) => void) => {
    const state = await store.change(changeMeta(req, action, why), mutate);
    const snap = await ctx.gateway.recompile();
    await audit(ctx, req, action, target, { ...details, policyVersion: state.meta.version, ...(why ? { reason: why } : {}) });
    // Only what concerns the changed profile or list: the rest is in GET /api/v1/policy.
    const warnings = snap.warnings.filter((w) => w.profile === target || w.message.includes(`"${target}"`)).map((w) => w.message);
    return { policyVersion: state.meta.version, applied: snap.policyVersion === state.meta.version, warnings };
  };

  app.get('/api/v1/profiles', { config: { roles: READERS }, schema: { tags: ['profiles'], summary: 'Every profile and the client networks using it' } }, async () => {
    const profiles = store.current.profiles;
    const clients = ctx.gateway.config.clients;
    return {
      policyVersion: store.version,
      profiles: Object.entries(profiles).map(([id, p]) => ({ id, ...p, clients: clients.filter((c) => c.profile === id).map((c) => ({ network: c.network, name: c.name ?? null })) })),
    };
  });

  app.get<{ Params: { id: string } }>('/api/v1/profiles/:id', { config: { roles: READERS }, schema: { tags: ['profiles'], params: profileId } }, async (req, reply) => {
    const p = store.current.profiles[req.params.id];
    if (!p) return problem(reply, 404, `no profile "${req.params.id}"`);
    return { id: req.params.id, policyVersion: store.version, ...p, warnings: ctx.gateway.snapshot.warnings.filter((w) => w.profile === req.params.id).map((w) => w.message) };
  });

  app.put<{ Params: { id: string }; Body: ProfileConfig; Querystring: Reason }>('/api/v1/profiles/:id', {
    config: { roles: ADMIN },
    schema: { tags: ['profiles'], summary: 'Replace (or create) a profile: mode, categories, allow/deny entries, academy lists, schedule', params: profileId, querystring: reasonQuery, body: profileSchema },
  }, async (req, reply) => {
    const existed = Boolean(store.current.profiles[req.params.id]);
    const out = await commit(req, 'profile.replace', req.params.id, req.query.reason, { created: !existed }, (d) => {
      d.profiles[req.params.id] = req.body;
    }).catch((e) => {
      // The store names paths inside the whole policy; the caller sent this profile as the body.
      if (!(e instanceof PolicyValidationError)) throw e;
      const own = `/profiles/${req.params.id}`;
      throw new PolicyValidationError(e.problems.map((p) => (p.field === own || p.field.startsWith(own + '/') ? { ...p, field: 'body' + p.field.slice(own.length) } : p)));
    });
    return reply.code(existed ? 200 : 201).send({ id: req.params.id, ...out });
  });

  app.get('/api/v1/lists', { config: { roles: READERS }, schema: { tags: ['lists'], summary: 'UT1 categories and academy lists with entry counts and versions' } }, async () => {
    const snap = ctx.gateway.snapshot;
    const profiles = store.current.profiles;
    return {
      policyVersion: store.version,
      ut1: { loaded: snap.listsLoaded, version: snap.listVersion, categories: snap.listsLoaded ? snap.indexes.ut1.counts() : [] },
      academy: Object.entries(store.current.lists).map(([name, l]) => {
        const { entries: _e, ...v } = listView(name, l, profiles);
        return v;
      }),
    };
  });

  app.get<{ Params: { name: string } }>('/api/v1/lists/academy/:name', { config: { roles: READERS }, schema: { tags: ['lists'], params: listName } }, async (req, reply) => {
    const l = store.current.lists[req.params.name];
    if (!l) return problem(reply, 404, `no academy list "${req.params.name}"`);
    return { policyVersion: store.version, ...listView(req.params.name, l, store.current.profiles) };
  });

  app.put<{ Params: { name: string }; Body: { entries: EntryInput[] }; Querystring: Reason }>('/api/v1/lists/academy/:name', {
    config: { roles: ADMIN },
    bodyLimit: LIST_BODY_LIMIT,
    schema: { tags: ['lists'], summary: 'Create or replace an academy list', params: listName, querystring: reasonQuery, body: entriesBody },
  }, async (req, reply) => {
    const { name } = req.params;
    const p = entriesOrThrow(req.body.entries);
    const existed = Boolean(store.current.lists[name]);
    const out = await commit(req, existed ? 'list.replace' : 'list.create', name, req.query.reason, { domains: p.domains.length, urls: p.urls.length, expressions: p.expressions.length }, (d) => {
      d.lists[name] = { domains: p.domains, urls: p.urls, expressions: p.expressions, changedIn: 0 };
    });
    const l = store.current.lists[name]!;
    return reply.code(existed ? 200 : 201).send({ name, ...out, counts: { domains: l.domains.length, urls: l.urls.length, expressions: l.expressions.length } });
  });

  const edit = (kind: 'add' | 'remove') => async (req: FastifyRequest<{ Params: { name: string }; Body: { entries: EntryInput[] }; Querystring: Reason }>, reply: import('fastify').FastifyReply) => {
    const { name } = req.params;
    if (!store.current.lists[name]) return problem(reply, 404, `no academy list "${name}" (create it with PUT)`);
    const p = entriesOrThrow(req.body.entries);
    let changed = 0;
    const out = await commit(req, kind === 'add' ? 'list.add' : 'list.remove', name, req.query.reason, { entries: req.body.entries.length }, (d) => {
      const l = d.lists[name]!;
      for (const k of ['domains', 'urls', 'expressions'] as const) {
        const before = l[k].length;
        if (kind === 'add') l[k] = [...new Set([...l[k], ...p[k]])];
        else {
          const drop = new Set(p[k]);
          l[k] = l[k].filter((e) => !drop.has(e));
        }
        changed += Math.abs(l[k].length - before);
      }
    });
    const l = store.current.lists[name]!;
    return { name, ...out, [kind === 'add' ? 'added' : 'removed']: changed, counts: { domains: l.domains.length, urls: l.urls.length, expressions: l.expressions.length } };
  };
  const editSchema = (summary: string) => ({ config: { roles: ADMIN }, bodyLimit: LIST_BODY_LIMIT, schema: { tags: ['lists'], summary, params: listName, querystring: reasonQuery, body: entriesBody } });
  app.post('/api/v1/lists/academy/:name/entries', editSchema('Add entries to an academy list'), edit('add'));
  app.delete('/api/v1/lists/academy/:name/entries', editSchema('Remove entries from an academy list'), edit('remove'));

  app.delete<{ Params: { name: string }; Querystring: Reason }>('/api/v1/lists/academy/:name', {
    config: { roles: ADMIN },
    schema: { tags: ['lists'], summary: 'Delete an academy list no profile references (academy-allow and academy-deny always exist)', params: listName, querystring: reasonQuery },
  }, async (req, reply) => {
    const { name } = req.params;
    if (!store.current.lists[name]) return problem(reply, 404, `no academy list "${name}"`);
    if ((PERMANENT_LISTS as readonly string[]).includes(name)) return problem(reply, 409, `"${name}" always exists; empty it with PUT {"entries": []}`);
    const users = usedBy(store.current.profiles, name);
    if (users.length) return problem(reply, 409, `"${name}" is used by profile(s) ${users.join(', ')}`);
    return commit(req, 'list.delete', name, req.query.reason, {}, (d) => {
      delete d.lists[name];
    });
  });

  app.get('/api/v1/policy', { config: { roles: READERS }, schema: { tags: ['policy'], summary: 'The policy in force: version, who changed it, when and why' } }, async () => {
    const snap = ctx.gateway.snapshot;
    return { ...store.current.meta, applied: snap.policyVersion === store.version, listsLoaded: snap.listsLoaded, listVersion: snap.listVersion, warnings: snap.warnings };
  });

  app.get<{ Querystring: { limit: number; before?: number } }>('/api/v1/policy/history', {
    config: { roles: READERS },
    schema: { tags: ['policy'], summary: 'Earlier versions, newest first', querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 }, before: { type: 'integer', minimum: 1 } } } },
  }, async (req) => {
    const versions = await store.history(req.query.limit, req.query.before);
    const last = versions[versions.length - 1];
    return { current: store.version, versions, nextBefore: last && versions.length === req.query.limit && last.version > 1 ? last.version : null };
  });

  app.get<{ Params: { version: number } }>('/api/v1/policy/versions/:version', {
    config: { roles: READERS },
    schema: { tags: ['policy'], summary: 'One version in full (profiles and academy lists)', params: { type: 'object', properties: { version: { type: 'integer', minimum: 1 } } } },
  }, async (req, reply) => {
    const v = await store.getVersion(req.params.version);
    if (!v) return problem(reply, 404, `no policy version ${req.params.version}`);
    return v;
  });

  app.post<{ Body: { version: number; reason?: string } }>('/api/v1/policy/rollback', {
    config: { roles: ADMIN },
    schema: {
      tags: ['policy'],
      summary: 'Make a new version holding what an earlier one held, and apply it',
      body: { type: 'object', additionalProperties: false, required: ['version'], properties: { version: { type: 'integer', minimum: 1 }, reason: { type: 'string', maxLength: 500 } } },
    },
  }, async (req) => {
    const state = await store.rollback(req.body.version, changeMeta(req, 'policy.rollback', req.body.reason));
    const snap = await ctx.gateway.recompile();
    await audit(ctx, req, 'policy.rollback', String(req.body.version), { policyVersion: state.meta.version, ...(req.body.reason ? { reason: req.body.reason } : {}) });
    return { policyVersion: state.meta.version, rollbackOf: req.body.version, applied: snap.policyVersion === state.meta.version };
  });

  app.get('/api/v1/policy/bundle', {
    config: { roles: ADMIN },
    schema: { tags: ['policy'], summary: 'The current policy as an unsigned bundle payload (sign it with `vigie policy sign`)' },
  }, async (req) => {
    await audit(ctx, req, 'policy.export', String(store.version));
    return exportBundle(store, store.version, ctx.gateway.config.proxyName);
  });
}
