import { execFile, spawn, spawnSync } from 'node:child_process';
import tls from 'node:tls';
import { promisify } from 'node:util';
import t from 'tap';
import { createLogger } from '../src/log.js';
import { REFUSALS_AUDITED_PER_SOURCE } from '../src/supervision/signin.js';
import { REPO } from './service-cli.js';
import { call, startApi, type ApiHandle } from './supervision-helpers.js';

const run = promisify(execFile);

type Entry = { time: string; actor: string; role: string | null; source: string; action: string; target: string | null; outcome: string; status: number; details?: any };

async function auditOf(h: ApiHandle, action: string, limit = 1000): Promise<Entry[]> {
  const r = await h.api('GET', `/api/v1/audit?action=${encodeURIComponent(action)}&limit=${limit}`);
  return r.json.entries as Entry[];
}

/** One TLS handshake with the API under the given client limits: the negotiated protocol and cipher, or the error. */
function handshake(port: number, ca: string, opts: tls.ConnectionOptions): Promise<{ protocol: string | null; cipher: string } | { error: string }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ...opts }, () => {
      resolve({ protocol: s.getProtocol(), cipher: s.getCipher().name });
      s.end();
    });
    s.on('error', (e) => resolve({ error: e.message }));
  });
}

t.test('supervision API edges', async (t) => {
  const logLines: string[] = [];
  const h = await startApi({}, { log: createLogger('info', (l) => logLines.push(l)) });
  t.teardown(() => h.close());
  const supervisor = await h.tokenFor('supervisor', 'sup');

  t.test('a flood of unknown tokens locks out the flood, not the admin at the same address', async (t) => {
    const from = '127.0.7.1';
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) statuses.push((await h.api('GET', '/api/v1/profiles', { token: `vigie_wrong${i}`, from })).status);
    t.same(statuses.slice(0, 10), Array(10).fill(401));
    t.same(statuses.slice(10), Array(5).fill(429));
    t.equal((await h.api('GET', '/api/v1/profiles', { from })).status, 200, 'the admin token from that address still works');
    t.equal((await h.api('GET', '/api/v1/profiles', { token: null, from })).status, 401, 'no token is a 401, not a lock-out');
  });

  t.test('refused requests are audited with route and reason, rate-limited', async (t) => {
    const from = '127.0.7.2';
    await h.api('GET', '/api/v1/policy', { token: null, from });
    await h.api('PUT', '/api/v1/lists/academy/academy-deny', { token: supervisor, body: { entries: [] }, from });
    const refused = await auditOf(h, 'access');
    const mine = refused.filter((e) => e.source === from);
    t.match(mine.find((e) => e.status === 401), { action: 'access.unauthenticated', outcome: 'refused', target: 'GET /api/v1/policy', details: { route: 'GET /api/v1/policy', reason: 'no bearer token' } });
    t.match(mine.find((e) => e.status === 403), { action: 'access.denied', role: 'supervisor', target: 'PUT /api/v1/lists/academy/:name', details: { reason: /role "supervisor" may not/ } });
    t.match(refused.find((e) => e.source === '127.0.7.1' && e.status === 429), { action: 'access.limited', details: { route: 'GET /api/v1/profiles', reason: /unknown tokens/ } });

    const flood = '127.0.7.3';
    for (let i = 0; i < 50; i++) await h.api('GET', '/api/v1/audit', { token: i % 2 ? null : `vigie_flood${i}`, from: flood });
    const written = (await auditOf(h, 'access')).filter((e) => e.source === flood);
    t.equal(written.length, REFUSALS_AUDITED_PER_SOURCE, 'one source writes a bounded number of entries a minute');
    t.same(await auditOf(h, 'access.suppressed'), [], 'the count waits for the end of the minute');
    await h.sup.refusals.flush();
    const [summary] = await auditOf(h, 'access.suppressed');
    const left = 50 - REFUSALS_AUDITED_PER_SOURCE;
    t.match(summary, { action: 'access.suppressed', actor: 'vigie', details: { refused: left, sources: [{ source: flood, count: left }], distinctSources: 1 } }, 'what was left out is counted');
    t.equal(summary!.details.byStatus['401'] + summary!.details.byStatus['429'], left, 'by status');
    t.match(logLines.join(''), /WARN  supervision: refused requests not written one by one to the audit log \(rate limit\) refused=30 sources=1/);
  });

  t.test('list changes audit the entries added and removed', async (t) => {
    t.equal((await h.api('PUT', '/api/v1/lists/academy/cheating?reason=ticket%2017', { body: { entries: ['answers.test', 'essays.test/buy', { expression: '^copy\\.' }] } })).status, 201);
    t.equal((await h.api('POST', '/api/v1/lists/academy/cheating/entries', { body: { entries: ['WWW.More-Answers.test', 'answers.test'] } })).status, 200);
    t.equal((await h.api('DELETE', '/api/v1/lists/academy/cheating/entries', { body: { entries: ['essays.test/buy'] } })).status, 200);
    t.equal((await h.api('PUT', '/api/v1/lists/academy/cheating', { body: { entries: ['answers.test', 'new.test'] } })).status, 200);
    const [replace, remove, add, create] = (await auditOf(h, 'list')).filter((e) => e.target === 'cheating');
    t.match(create, { action: 'list.create', details: { added: ['answers.test', 'essays.test/buy', { expression: '^copy\\.' }], addedCount: 3, removed: [], removedCount: 0, reason: 'ticket 17' } });
    t.match(add, { action: 'list.add', details: { requested: 2, added: ['more-answers.test'], addedCount: 1, removedCount: 0 } }, 'only what was new, normalised');
    t.match(remove, { action: 'list.remove', details: { removed: ['essays.test/buy'], removedCount: 1, addedCount: 0 } });
    t.match(replace, { action: 'list.replace', details: { added: ['new.test'], removed: ['more-answers.test', { expression: '^copy\\.' }], removedCount: 2 } });
    t.ok(replace!.details.policyVersion > create!.details.policyVersion);

    const many = Array.from({ length: 1500 }, (_, i) => `bulk${i}.test`);
    t.equal((await h.api('POST', '/api/v1/lists/academy/cheating/entries', { body: { entries: many } })).status, 200);
    const [bulk] = await auditOf(h, 'list.add', 1);
    t.equal(bulk!.details.added.length, 1000, 'the first 1,000 entries by name');
    t.equal(bulk!.details.addedCount, 1500, 'and how many in all');
  });

  t.test('profile changes audit the fields before and after; the process log names actor, action, version', async (t) => {
    const before = (await h.api('GET', '/api/v1/profiles/cycle2')).json;
    const body = { ...before, categories: [...before.categories, 'chess'], description: 'CP-CE2' };
    const r = await h.api('PUT', '/api/v1/profiles/cycle2?reason=chess%20too', { body });
    t.equal(r.status, 200, 'what GET returns is accepted back, read-only fields and all');
    const [entry] = await auditOf(h, 'profile.replace', 1);
    t.match(entry, { action: 'profile.replace', target: 'cycle2', role: 'admin', details: { created: false, reason: 'chess too', policyVersion: r.json.policyVersion } });
    t.same(Object.keys(entry!.details.changes).sort(), ['categories', 'description']);
    t.same(entry!.details.changes.categories, { before: before.categories, after: body.categories, added: ['chess'], removed: [] });
    t.same(entry!.details.changes.description, { before: before.description ?? null, after: 'CP-CE2' });
    t.match(logLines.join(''), new RegExp(`INFO  policy changed over the API actor="admin \\(tk_[0-9a-f]+\\)" source=127\\.0\\.0\\.1 action=profile\\.replace target=cycle2 version=${r.json.policyVersion}`));

    const back = await h.api('POST', '/api/v1/policy/rollback', { body: { version: r.json.policyVersion - 1, reason: 'undo' } });
    t.equal(back.status, 200);
    const [rollback] = await auditOf(h, 'policy.rollback', 1);
    t.same(rollback!.details.changes.profiles.cycle2.categories, { before: body.categories, after: before.categories, added: [], removed: ['chess'] }, 'a rollback says what it changed back');
    t.same(rollback!.details.changes.lists, {});
    t.match(logLines.join(''), /action=policy\.rollback target=\d+ version=\d+/);
  });

  t.test('token actions audit role and name', async (t) => {
    const c = await h.api('POST', '/api/v1/tokens', { body: { role: 'requisition', name: 'OPJ Martin' } });
    await h.api('DELETE', `/api/v1/tokens/${c.json.id}`);
    const [revoke, create] = await auditOf(h, 'token', 2);
    t.match(create, { action: 'token.create', target: c.json.id, details: { id: c.json.id, role: 'requisition', name: 'OPJ Martin' } });
    t.match(revoke, { action: 'token.revoke', details: { revoked: [{ id: c.json.id, role: 'requisition', name: 'OPJ Martin' }] } });
  });

  t.test('profile entries: add and remove one site, with schedule warnings', async (t) => {
    const decide = async (url: string, at: string) => (await h.api('GET', `/api/v1/decision?url=${encodeURIComponent(url)}&client=127.0.0.1&at=${encodeURIComponent(at)}`)).json;
    const school = '2026-11-24T10:00:00+01:00';
    const evening = '2026-11-24T20:00:00+01:00';
    t.match(await decide('http://games.test/', school), { action: 'block', profile: 'cycle3', period: 'within' });

    const add = await h.api('POST', '/api/v1/profiles/cycle3/entries?reason=class%20project', { body: { allow: ['Games.test'] } });
    t.equal(add.status, 200, add.text);
    t.equal(add.json.added, 1);
    t.match(add.json.warnings.join('\n'), /applies only within the time window "school"/);
    t.ok(add.json.profile.allow.includes('games.test'));
    t.match(await decide('http://games.test/', school), { action: 'allow', rule: 'profile-allow' }, 'unblocked in school hours at once');
    const [audited] = await auditOf(h, 'profile.entries', 1);
    t.match(audited, { action: 'profile.entries.add', target: 'cycle3', details: { period: 'within', reason: 'class project', changes: { allow: { after: ['games.test'] } } } });

    const again = await h.api('POST', '/api/v1/profiles/cycle3/entries', { body: { allow: ['games.test'] } });
    t.equal(again.json.added, 0, 'an entry already there is not added twice');

    const night = await h.api('POST', '/api/v1/profiles/cycle3/entries', { body: { deny: ['late.test'], period: 'otherwise' } });
    t.match(night.json.warnings.join('\n'), /applies only outside the time window "school"/);
    t.match(await decide('http://late.test/', evening), { action: 'block', rule: 'profile-deny', period: 'otherwise' });
    t.match(await decide('http://late.test/', school), { action: 'allow' });
    const both = await h.api('POST', '/api/v1/profiles/cycle3/entries', { body: { deny: ['everywhere.test'], period: 'always' } });
    t.notMatch(both.json.warnings.join('\n'), /time window/, 'both rule sets changed: nothing to warn about');

    const del = await h.api('DELETE', '/api/v1/profiles/cycle3/entries', { body: { allow: ['games.test', 'never-there.test'] } });
    t.equal(del.status, 200);
    t.equal(del.json.removed, 1);
    t.match(del.json.warnings.join('\n'), /nothing to remove: allow "never-there.test"/);
    t.match(await decide('http://games.test/', school), { action: 'block' }, 'blocked again');

    const staff = await h.api('POST', '/api/v1/profiles/staff/entries', { body: { deny: ['x.test'] } });
    t.notMatch(staff.json.warnings.join('\n'), /time window/, 'a profile without a window: no warning about one');
    const bad: [string, unknown, string][] = [
      ['staff', { deny: ['y.test'], period: 'otherwise' }, 'body/period'],
      ['staff', { deny: ['ok.test', 'not a host'] }, 'body/deny/1'],
      ['staff', { period: 'always' }, 'body/allow'],
      ['staff', { allow: [] }, 'body/allow'],
      ['staff', { allow: ['a.test'], extra: 1 }, 'body/extra'],
    ];
    for (const [id, body, field] of bad) {
      const r = await h.api('POST', `/api/v1/profiles/${id}/entries`, { body });
      t.equal(r.status, 400, `${JSON.stringify(body)}: 400`);
      t.ok(r.json.problems.some((p: { field: string }) => p.field === field), `names ${field}: ${JSON.stringify(r.json.problems)}`);
    }
    t.equal((await h.api('POST', '/api/v1/profiles/nobody/entries', { body: { allow: ['a.test'] } })).status, 404);
  });

  t.test('names that are not own keys are 404s everywhere', async (t) => {
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      for (const [method, path, body] of [
        ['GET', `/api/v1/profiles/${name}`],
        ['POST', `/api/v1/profiles/${name}/entries`, { allow: ['a.test'] }],
        ['DELETE', `/api/v1/profiles/${name}/entries`, { allow: ['a.test'] }],
        ['GET', `/api/v1/lists/academy/${name}`],
        ['POST', `/api/v1/lists/academy/${name}/entries`, { entries: ['a.test'] }],
        ['DELETE', `/api/v1/lists/academy/${name}/entries`, { entries: ['a.test'] }],
        ['DELETE', `/api/v1/lists/academy/${name}`],
        ['DELETE', `/api/v1/tokens/${name}`],
      ] as [string, string, unknown?][]) {
        const r = await h.api(method, path, { body });
        t.equal(r.status, 404, `${method} ${path}: ${r.status} ${r.text.slice(0, 100)}`);
      }
    }
    const proto = await h.api('PUT', '/api/v1/profiles/__proto__', { body: { mode: 'blocklist' } });
    t.equal(proto.status, 400, '__proto__ cannot be created');
    t.equal(proto.json.problems[0].field, 'params/id');
    t.equal((await h.api('PUT', '/api/v1/lists/academy/__proto__', { body: { entries: [] } })).status, 400);
    const ctor = await h.api('PUT', '/api/v1/lists/academy/constructor', { body: { entries: ['ctor.test'] } });
    t.equal(ctor.status, 201, 'an ordinary name otherwise');
    t.equal((await h.api('GET', '/api/v1/lists/academy/constructor')).json.entries[0], 'ctor.test');
  });

  t.test('TLS: 1.3, and 1.2 with ECDHE and AEAD suites only', async (t) => {
    const { port, cert } = h.sup;
    t.match(await handshake(port, cert, {}), { protocol: 'TLSv1.3' });
    t.match(await handshake(port, cert, { maxVersion: 'TLSv1.2' }), { protocol: 'TLSv1.2', cipher: /^ECDHE-RSA-(AES\d+-GCM|CHACHA20-POLY1305)/ });
    for (const cipher of ['AES128-SHA', 'AES128-SHA256', 'AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA', 'ECDHE-RSA-AES256-SHA384']) {
      t.match(await handshake(port, cert, { maxVersion: 'TLSv1.2', ciphers: cipher }), { error: /./ }, `${cipher} refused`);
    }
    t.match(await handshake(port, cert, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }), { error: /./ }, 'TLS 1.1 refused');
    const openssl = spawnSync('openssl', ['version']);
    if (openssl.error) {
      if (process.env.CI === 'true') t.fail('openssl is missing (listed in .ci/apt-packages)');
      else t.comment('openssl not installed: the s_client check is left out');
      return;
    }
    // Asynchronous: the API answers from this very process. `Q` on stdin: s_client quits once connected.
    const s = (args: string[]) =>
      new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-brief', ...args], { stdio: ['pipe', 'ignore', 'pipe'], timeout: 10_000 });
        let stderr = '';
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('close', (status) => resolve({ status, stderr }));
        c.stdin.end('Q\n');
      });
    const cbc = await s(['-tls1_2', '-cipher', 'AES128-SHA']);
    t.equal(cbc.status, 1, 'openssl s_client -tls1_2 -cipher AES128-SHA fails');
    t.match(cbc.stderr, /handshake failure|no cipher|alert/i, cbc.stderr);
    const gcm = await s(['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256']);
    t.equal(gcm.status, 0, 'while an ECDHE-GCM suite connects');
    t.match(gcm.stderr, /Ciphersuite: ECDHE-RSA-AES128-GCM-SHA256/);
  });

  t.test('the OpenAPI document describes the new routes and read-only fields', async (t) => {
    const doc = (await h.api('GET', '/api/v1/openapi.json', { token: null })).json;
    const entries = doc.paths['/api/v1/profiles/{id}/entries'];
    t.ok(entries?.post && entries?.delete, 'POST and DELETE /profiles/{id}/entries');
    const body = entries.post.requestBody.content['application/json'].schema;
    t.same(Object.keys(body.properties).sort(), ['allow', 'deny', 'period']);
    const put = doc.paths['/api/v1/profiles/{id}'].put.requestBody.content['application/json'].schema;
    for (const k of ['id', 'policyVersion', 'warnings']) t.equal(put.properties[k].readOnly, true, `${k} is read-only`);
  });

  t.test('/ leads to the console', async (t) => {
    const r = await h.api('GET', '/', { token: null });
    t.equal(r.status, 302);
    t.equal(r.headers.location, '/admin/');
  });

  t.test('a token made by `vigie token create` works at the very next request', async (t) => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'token', 'create', '--role', 'supervisor', '--name', 'fresh', '--data', h.gw.config.dataDir], { cwd: REPO });
    const token = stdout.trim();
    t.equal((await call(h.sup.port, h.sup.cert, 'GET', '/api/v1/policy', { token })).status, 200);
    const [created] = await auditOf(h, 'token.create', 1);
    t.match(created, { source: 'cli', details: { role: 'supervisor', name: 'fresh' } });
  });
});
