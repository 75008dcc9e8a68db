import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ProfileConfig } from '../../config/types.js';
import { own } from '../../own.js';
import { LIST_NAME, listEntries, parseEntries, PERMANENT_LISTS, PolicyValidationError, type AcademyList, type EntryInput } from '../../policy/store.js';
import { exportBundle } from '../bundle.js';
import { listChange, policyChange } from '../changes.js';
import { commitChange } from '../commit.js';
import { actorOf, audit, changeMeta, problem, type ApiContext } from '../context.js';
import { LIST_BODY_LIMIT } from '../limits.js';
import type { Role } from '../tokens.js';

const READERS: readonly Role[] = ['admin', 'supervisor'];
const ADMIN: readonly Role[] = ['admin'];

/** Reads and edits take any name and answer 404 for one that is not a list; creation takes valid names only. */
const anyList = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 200 } } } as const;
const listName = { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: LIST_NAME.source, description: 'letters, digits, `_`, `.`, `-`; not `__proto__`' } } } as const;
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

/** What a change answers: the version, whether it serves already, its warnings. */
const committed = (o: { policyVersion: number; applied: boolean; warnings: string[] }) => ({ policyVersion: o.policyVersion, applied: o.applied, warnings: o.warnings });

function entriesOrThrow(entries: EntryInput[]) {
  const parsed = parseEntries(entries, 'body/entries');
  if (parsed.problems.length) throw new PolicyValidationError(parsed.problems);
  return parsed;
}

export function registerPolicyRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const store = ctx.gateway.policy;

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

  app.get<{ Params: { name: string } }>('/api/v1/lists/academy/:name', { config: { roles: READERS }, schema: { tags: ['lists'], summary: 'One academy list with its entries (what PUT takes back as it is)', params: anyList } }, async (req, reply) => {
    const l = own(store.current.lists, req.params.name);
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
    const existed = Boolean(own(store.current.lists, name));
    const out = await commitChange(ctx, req, { action: existed ? 'list.replace' : 'list.create', target: name, why: req.query.reason }, (d) => {
      d.lists[name] = { domains: p.domains, urls: p.urls, expressions: p.expressions, changedIn: 0 };
    }, (before, after) => listChange(own(before.lists, name), own(after.lists, name)));
    const l = own(out.after.lists, name)!;
    return reply.code(existed ? 200 : 201).send({ name, ...committed(out), counts: { domains: l.domains.length, urls: l.urls.length, expressions: l.expressions.length } });
  });

  const edit = (kind: 'add' | 'remove') => async (req: FastifyRequest<{ Params: { name: string }; Body: { entries: EntryInput[] }; Querystring: Reason }>, reply: FastifyReply) => {
    const { name } = req.params;
    if (!own(store.current.lists, name)) return problem(reply, 404, `no academy list "${name}" (create it with PUT)`);
    const p = entriesOrThrow(req.body.entries);
    let changed = 0;
    const out = await commitChange(ctx, req, { action: kind === 'add' ? 'list.add' : 'list.remove', target: name, why: req.query.reason }, (d) => {
      const l = own(d.lists, name);
      // Deleted by another change since the check above.
      if (!l) throw new PolicyValidationError([{ field: 'params/name', message: `no academy list "${name}"` }]);
      for (const k of ['domains', 'urls', 'expressions'] as const) {
        const before = l[k].length;
        if (kind === 'add') l[k] = [...new Set([...l[k], ...p[k]])];
        else {
          const drop = new Set(p[k]);
          l[k] = l[k].filter((e) => !drop.has(e));
        }
        changed += Math.abs(l[k].length - before);
      }
    }, (before, after) => ({ requested: req.body.entries.length, ...listChange(own(before.lists, name), own(after.lists, name)) }));
    const l = own(out.after.lists, name)!;
    return { name, ...committed(out), [kind === 'add' ? 'added' : 'removed']: changed, counts: { domains: l.domains.length, urls: l.urls.length, expressions: l.expressions.length } };
  };
  const editSchema = (summary: string) => ({ config: { roles: ADMIN }, bodyLimit: LIST_BODY_LIMIT, schema: { tags: ['lists'], summary, params: anyList, querystring: reasonQuery, body: entriesBody } });
  app.post('/api/v1/lists/academy/:name/entries', editSchema('Add entries to an academy list'), edit('add'));
  app.delete('/api/v1/lists/academy/:name/entries', editSchema('Remove entries from an academy list'), edit('remove'));

  app.delete<{ Params: { name: string }; Querystring: Reason }>('/api/v1/lists/academy/:name', {
    config: { roles: ADMIN },
    schema: { tags: ['lists'], summary: 'Delete an academy list no profile references (academy-allow and academy-deny always exist)', params: anyList, querystring: reasonQuery },
  }, async (req, reply) => {
    const { name } = req.params;
    if (!own(store.current.lists, name)) return problem(reply, 404, `no academy list "${name}"`);
    if ((PERMANENT_LISTS as readonly string[]).includes(name)) return problem(reply, 409, `"${name}" always exists; empty it with PUT {"entries": []}`);
    const users = usedBy(store.current.profiles, name);
    if (users.length) return problem(reply, 409, `"${name}" is used by profile(s) ${users.join(', ')}`);
    const out = await commitChange(ctx, req, { action: 'list.delete', target: name, why: req.query.reason }, (d) => {
      delete d.lists[name];
    }, (before, after) => listChange(own(before.lists, name), own(after.lists, name)));
    return committed(out);
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
    const before = store.current;
    const state = await store.rollback(req.body.version, changeMeta(req, 'policy.rollback', req.body.reason));
    const snap = await ctx.gateway.recompile();
    await audit(ctx, req, 'policy.rollback', String(req.body.version), { policyVersion: state.meta.version, changes: policyChange(before, state), ...(req.body.reason ? { reason: req.body.reason } : {}) });
    ctx.log.info('policy changed over the API', { actor: actorOf(req), source: req.ip, action: 'policy.rollback', target: String(req.body.version), version: state.meta.version });
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
