import { statSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import t from 'tap';
import { createLogger } from '../src/log.js';
import { AUTH_FAILURES_PER_MINUTE } from '../src/supervision/server.js';
import { adminTokenFile, TokenStore } from '../src/supervision/tokens.js';
import { call, startApi } from './supervision-helpers.js';

type Role = 'admin' | 'supervisor' | 'requisition';
const ROLES: Role[] = ['admin', 'supervisor', 'requisition'];

/** Every endpoint, with a request that is valid for it and the roles allowed to make it. */
const ENDPOINTS: { method: string; path: string; body?: unknown; roles: Role[] | 'public' }[] = [
  { method: 'GET', path: '/api/v1/health', roles: 'public' },
  { method: 'GET', path: '/api/v1/openapi.json', roles: 'public' },
  { method: 'GET', path: '/api/v1/profiles', roles: ['admin', 'supervisor'] },
  { method: 'GET', path: '/api/v1/profiles/staff', roles: ['admin', 'supervisor'] },
  { method: 'PUT', path: '/api/v1/profiles/staff?reason=matrix', body: { mode: 'blocklist', categories: ['malware'], allowLists: ['academy-allow'] }, roles: ['admin'] },
  { method: 'GET', path: '/api/v1/lists', roles: ['admin', 'supervisor'] },
  { method: 'GET', path: '/api/v1/lists/academy/academy-deny', roles: ['admin', 'supervisor'] },
  { method: 'PUT', path: '/api/v1/lists/academy/matrix', body: { entries: ['matrix.test'] }, roles: ['admin'] },
  { method: 'POST', path: '/api/v1/lists/academy/matrix/entries', body: { entries: ['more.test'] }, roles: ['admin'] },
  { method: 'DELETE', path: '/api/v1/lists/academy/matrix/entries', body: { entries: ['more.test'] }, roles: ['admin'] },
  { method: 'DELETE', path: '/api/v1/lists/academy/matrix', roles: ['admin'] },
  { method: 'GET', path: '/api/v1/policy', roles: ['admin', 'supervisor'] },
  { method: 'GET', path: '/api/v1/policy/history', roles: ['admin', 'supervisor'] },
  { method: 'GET', path: '/api/v1/policy/versions/1', roles: ['admin', 'supervisor'] },
  { method: 'POST', path: '/api/v1/policy/rollback', body: { version: 1, reason: 'matrix' }, roles: ['admin'] },
  { method: 'GET', path: '/api/v1/policy/bundle', roles: ['admin'] },
  { method: 'GET', path: '/api/v1/decision?url=http://games.test/&client=127.0.0.1', roles: ['admin', 'supervisor'] },
  { method: 'GET', path: '/api/v1/journal?limit=5', roles: ['supervisor'] },
  { method: 'GET', path: '/api/v1/journal/export?reference=PV-2026-001&format=csv&from=2026-01-01&to=2026-01-31', roles: ['requisition'] },
  { method: 'GET', path: '/api/v1/stats?bucket=hour', roles: ['admin', 'supervisor'] },
  { method: 'GET', path: '/api/v1/audit?limit=5', roles: ['admin', 'supervisor'] },
  { method: 'GET', path: '/api/v1/tokens', roles: ['admin'] },
  { method: 'POST', path: '/api/v1/tokens', body: { role: 'supervisor', name: 'matrix' }, roles: ['admin'] },
  { method: 'DELETE', path: '/api/v1/tokens/matrix', roles: ['admin'] },
];

t.test('supervision API over HTTPS', async (t) => {
  const logLines: string[] = [];
  const h = await startApi({}, { generateCert: true, log: createLogger('debug', (l) => logLines.push(l)), supervision: { names: ['vigie.school.test', 'localhost'] } });
  t.teardown(() => h.close());
  const tokens: Record<Role, string> = { admin: h.admin, supervisor: await h.tokenFor('supervisor', 'sup'), requisition: await h.tokenFor('requisition', 'gendarmerie') };
  // Unauthenticated calls come from their own addresses, so the failure rate limit stays out of the way.
  let anon = 0;
  const stranger = () => `127.0.${10 + Math.floor(anon / 200)}.${(anon++ % 200) + 1}`;

  t.test('first start: self-signed certificate with the configured names, admin token file 0600', async (t) => {
    const cert = new X509Certificate(h.sup.cert);
    t.match(cert.subjectAltName, /DNS:vigie\.school\.test/);
    t.match(cert.subjectAltName, /IP Address:127\.0\.0\.1/);
    const file = adminTokenFile(h.gw.config.dataDir);
    t.equal(statSync(file).mode & 0o777, 0o600);
    t.match(h.admin, /^vigie_[A-Za-z0-9_-]{43}$/);
    const stored = (await import('node:fs')).readFileSync(`${h.gw.config.dataDir}/tokens.json`, 'utf8');
    t.notOk(stored.includes(h.admin), 'the token itself is not stored');
    t.notOk(stored.includes(tokens.supervisor));
    const log = logLines.join('');
    t.match(log, new RegExp(`admin token created.*file=${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`), 'the log gives the path');
    t.notOk(log.includes(h.admin), 'never the token');
  });

  t.test('each role against each endpoint', async (t) => {
    for (const e of ENDPOINTS) {
      const label = `${e.method} ${e.path}`;
      const none = await call(h.sup.port, h.sup.cert, e.method, e.path, { body: e.body, from: stranger() });
      const bad = await call(h.sup.port, h.sup.cert, e.method, e.path, { body: e.body, token: 'vigie_not-a-real-token', from: stranger() });
      if (e.roles === 'public') {
        t.equal(none.status, 200, `${label} needs no token`);
        continue;
      }
      t.equal(none.status, 401, `${label} without a token: 401`);
      t.match(none.headers['www-authenticate'], /Bearer/);
      t.equal(bad.status, 401, `${label} with a bad token: 401`);
      for (const role of ROLES) {
        const r = await h.api(e.method, e.path, { token: tokens[role], body: e.body });
        if (e.roles.includes(role)) {
          // The journal endpoints answer 503 on a gateway without a journal: allowed, not refused.
          t.ok(r.status < 300 || (r.status === 503 && /journal/.test(e.path + ' ' + r.text)) || (r.status === 404 && e.method === 'DELETE' && e.path.includes('tokens')), `${label} as ${role}: allowed (${r.status} ${r.text.slice(0, 120)})`);
        } else {
          t.equal(r.status, 403, `${label} as ${role}: 403`);
          t.match(r.json?.message, /may not/);
        }
      }
    }
  });

  t.test('OpenAPI document describes the routes', async (t) => {
    const r = await h.api('GET', '/api/v1/openapi.json', { token: null });
    t.equal(r.json.openapi, '3.0.3');
    for (const p of ['/api/v1/lists/academy/{name}', '/api/v1/lists/academy/{name}/entries', '/api/v1/journal/export', '/api/v1/policy/rollback', '/api/v1/decision']) t.ok(r.json.paths[p], `documents ${p}`);
    t.ok(r.json.paths['/api/v1/journal/export'].get.parameters.some((p: { name: string; required: boolean }) => p.name === 'reference' && p.required), 'reference is a required parameter');
  });

  t.test('bad bodies give 400 naming the field; nothing changes', async (t) => {
    const before = h.gw.gateway.policy.version;
    const cases: [string, string, unknown, RegExp][] = [
      ['PUT', '/api/v1/lists/academy/academy-deny', { entries: 'x.test' }, /^body\/entries$/],
      ['PUT', '/api/v1/lists/academy/academy-deny', {}, /^body\/entries$/],
      ['PUT', '/api/v1/lists/academy/academy-deny', { entries: [], extra: 1 }, /^body\/extra$/],
      ['PUT', '/api/v1/lists/academy/academy-deny', { entries: ['ok.test', 'not a host', { expression: '(' }] }, /^body\/entries\/1$/],
      ['POST', '/api/v1/lists/academy/academy-deny/entries', { entries: ['ok.test', 'bad..dots'] }, /^body\/entries\/1$/],
      ['PUT', '/api/v1/lists/academy/bad%20name', { entries: [] }, /^params\/name$/],
      ['PUT', '/api/v1/profiles/cycle3', { mode: 'sometimes' }, /^body\/mode$/],
      ['PUT', '/api/v1/profiles/cycle3', { mode: 'blocklist', categories: 1 }, /^body\/categories$/],
      ['PUT', '/api/v1/profiles/cycle3', { mode: 'blocklist', denyLists: ['nope'] }, /^body\/denyLists\/0$/],
      ['PUT', '/api/v1/profiles/cycle3', { mode: 'blocklist', deny: ['ok.test', 'white space.test'] }, /^body\/deny\/1$/],
      ['PUT', '/api/v1/profiles/cycle3', { mode: 'blocklist', schedule: { within: 'night', otherwise: { mode: 'blocklist' } } }, /^body\/schedule\/within$/],
      ['POST', '/api/v1/policy/rollback', { version: 'one' }, /^body\/version$/],
      ['POST', '/api/v1/policy/rollback', { version: 999 }, /^body\/version$/],
      ['POST', '/api/v1/tokens', { role: 'root', name: 'x' }, /^body\/role$/],
    ];
    for (const [method, path, body, field] of cases) {
      const r = await h.api(method, path, { body });
      t.equal(r.status, 400, `${method} ${path} ${JSON.stringify(body)}: 400`);
      t.ok(r.json.problems.some((p: { field: string }) => field.test(p.field)), `names ${field} (${JSON.stringify(r.json.problems)})`);
    }
    const entry = await h.api('PUT', '/api/v1/lists/academy/academy-deny', { body: { entries: ['ok.test', { expression: '(' }] } });
    t.same(entry.json.problems[0], { field: 'body/entries/1/expression', entry: '(', message: entry.json.problems[0].message });
    t.match(entry.json.problems[0].message, /invalid regular expression/);
    const q = await h.api('GET', '/api/v1/decision?url=http://x.test/', { token: tokens.supervisor });
    t.equal(q.status, 400);
    t.equal(q.json.problems[0].field, 'querystring/client');
    const ref = await h.api('GET', '/api/v1/journal/export?format=csv', { token: tokens.requisition });
    t.equal(ref.status, 400, 'an export without a reference is refused');
    t.equal(ref.json.problems[0].field, 'querystring/reference');
    const json = await h.api('PUT', '/api/v1/lists/academy/academy-deny', { raw: '{"entries": [' });
    t.equal(json.status, 400, 'broken JSON');
    const big = await h.api('PUT', '/api/v1/profiles/cycle3', { raw: JSON.stringify({ mode: 'blocklist', description: 'x'.repeat(1_100_000) }) });
    t.equal(big.status, 413, 'body size limit');
    t.equal(h.gw.gateway.policy.version, before, 'no refused request made a version');
  });

  t.test('the minimal console is static, with a strict CSP', async (t) => {
    const page = await h.api('GET', '/admin/', { token: null });
    t.equal(page.status, 200);
    t.match(page.headers['content-security-policy'], /default-src 'none'; script-src 'self'/);
    t.match(page.text, /<script src="console.js" defer><\/script>/);
    t.equal((await h.api('GET', '/admin/console.js', { token: null })).status, 200);
    t.equal((await h.api('GET', '/admin/..%2f..%2fpackage.json', { token: null })).status, 404);
  });

  t.test('decision explains', async (t) => {
    const r = await h.api('GET', '/api/v1/decision?url=http://www.adult.test/x&client=127.0.0.2', { token: tokens.supervisor });
    t.equal(r.status, 200);
    t.equal(r.json.action, 'block');
    t.equal(r.json.profile, 'cycle1');
    t.equal(r.json.rule, 'allowlist-only');
    t.match(r.json.explanation, /only allows listed sites/);
    const tls = await h.api('GET', '/api/v1/decision?url=https://academy-ok.test/&client=127.0.0.2', { token: tokens.supervisor });
    t.equal(tls.json.action, 'allow');
    t.equal(tls.json.scheme, 'connect');
    t.equal(tls.json.rule, 'list-allow');
    t.equal(tls.json.tls, 'tunnel', 'HTTPS: what interception does with it (off for this profile: tunnelled)');
    t.equal(r.json.tls, null, 'plain HTTP: no TLS treatment');
  });

  t.test('tokens: create, use, revoke', async (t) => {
    const c = await h.api('POST', '/api/v1/tokens', { body: { role: 'supervisor', name: 'inspector' } });
    t.equal(c.status, 201);
    t.equal((await h.api('GET', '/api/v1/policy', { token: c.json.token })).status, 200);
    const list = await h.api('GET', '/api/v1/tokens');
    t.ok(list.json.tokens.some((x: { id: string }) => x.id === c.json.id));
    t.notOk(list.text.includes(c.json.token), 'the list never shows a token');
    t.notOk(list.text.includes('"hash"'));
    t.equal((await h.api('DELETE', `/api/v1/tokens/${c.json.id}`)).status, 200);
    t.equal((await h.api('GET', '/api/v1/policy', { token: c.json.token, from: stranger() })).status, 401, 'revoked at once');
    // What `vigie token create|revoke` do on the same data dir, while the server runs.
    const cli = await TokenStore.open(h.gw.config.dataDir);
    const made = await cli.create('supervisor', 'made-by-cli', 'cli');
    t.equal((await h.api('GET', '/api/v1/policy', { token: made.token })).status, 200, 'a token made by the CLI works at the next request');
    t.same((await cli.revoke('made-by-cli')).map((r) => r.id), [made.record.id]);
    t.equal((await h.api('GET', '/api/v1/policy', { token: made.token, from: stranger() })).status, 401, 'a CLI revocation applies at the next request');
  });

  t.test('failed authentications are rate-limited per source, never for a known token', async (t) => {
    const from = '127.0.5.5';
    for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++) t.equal((await h.api('GET', '/api/v1/policy', { token: 'vigie_guess' + i, from })).status, 401);
    const locked = await h.api('GET', '/api/v1/policy', { token: 'vigie_guess-again', from });
    t.equal(locked.status, 429, 'the next unknown token from that source waits');
    t.ok(Number(locked.headers['retry-after']) > 0);
    t.equal((await h.api('GET', '/api/v1/policy', { token: tokens.supervisor, from })).status, 200, 'a known token from the same source (a shared NAT) is served');
    t.equal((await h.api('GET', '/api/v1/policy', { token: 'vigie_guess-elsewhere', from: '127.0.5.6' })).status, 401, 'other sources are not affected');
  });

  t.test('the audit log holds each action: who, when, what, from where', async (t) => {
    await h.api('PUT', '/api/v1/lists/academy/academy-deny?reason=ticket%2042', { body: { entries: ['audited.test'] }, from: '127.0.0.9' });
    await h.api('GET', '/api/v1/profiles/cycle1', { token: tokens.requisition });
    const r = await h.api('GET', '/api/v1/audit?limit=1000', { token: tokens.supervisor });
    t.equal(r.status, 200);
    const entries = r.json.entries as { time: string; actor: string; role: string; source: string; action: string; target: string; outcome: string; details?: Record<string, unknown> }[];
    const change = entries.find((e) => e.action === 'list.replace' && e.details?.reason === 'ticket 42');
    t.ok(change, 'list change audited');
    t.match(change, { role: 'admin', source: '127.0.0.9', target: 'academy-deny', outcome: 'ok' });
    t.match(change!.actor, /^admin \(tk_/);
    t.ok(Date.now() - Date.parse(change!.time) < 60_000);
    t.ok(entries.find((e) => e.action === 'access.denied' && e.role === 'requisition' && e.outcome === 'refused'), 'refused access audited');
    t.ok(entries.find((e) => e.action === 'request.invalid' && e.outcome === 'refused'), 'refused change audited');
    for (const a of ['profile.replace', 'list.create', 'list.add', 'list.remove', 'list.delete', 'policy.rollback', 'policy.export', 'token.create', 'token.revoke']) {
      t.ok(entries.some((e) => e.action === a), `${a} audited`);
    }
    const hist = await h.api('GET', '/api/v1/policy/history?limit=2', { token: tokens.supervisor });
    t.equal(hist.json.versions[0].why, 'ticket 42');
    t.equal(hist.json.versions[0].source, '127.0.0.9');
    t.equal(hist.json.versions.length, 2);
    t.equal(hist.json.nextBefore, hist.json.versions[1].version, 'cursor to older versions');
    const filtered = await h.api('GET', '/api/v1/audit?action=list&limit=1000');
    t.ok(filtered.json.entries.length > 0 && filtered.json.entries.every((e: { action: string }) => e.action.startsWith('list.')));
  });

  t.test('no token, good or bad, ever reaches the log or the audit', async (t) => {
    const audit = (await import('node:fs')).readFileSync(h.sup.audit.file, 'utf8');
    for (const secret of [...Object.values(tokens), 'vigie_not-a-real-token', 'vigie_guess0']) {
      t.notOk(logLines.join('').includes(secret), 'not in the log');
      t.notOk(audit.includes(secret), 'not in the audit');
    }
    t.ok(logLines.some((l) => /WARN {2}supervision: authentication failed source=127\.0\./.test(l)), 'failures are logged with their source');
  });
});

t.test('whoami names the token and its role, for every role, and refuses a wrong token', async (t) => {
  const h = await startApi();
  t.teardown(() => h.close());
  const me = await h.api('GET', '/api/v1/whoami');
  t.same({ role: me.json.role, name: me.json.name }, { role: 'admin', name: 'admin' });
  for (const role of ['supervisor', 'requisition'] as const) {
    const r = await h.api('GET', '/api/v1/whoami', { token: await h.tokenFor(role, `${role} one`) });
    t.same({ status: r.status, role: r.json.role, name: r.json.name }, { status: 200, role, name: `${role} one` });
  }
  t.equal((await h.api('GET', '/api/v1/whoami', { token: 'wrong' })).status, 401, 'a wrong token is an error');
  t.equal((await h.api('GET', '/api/v1/whoami', { token: null })).status, 401);
});
