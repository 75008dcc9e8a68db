import { statSync } from 'node:fs';
import http from 'node:http';
import t from 'tap';
import { reportsFile } from '../src/supervision/report-queue.js';
import { serveLoopback, startOrigin, viaProxy } from './helpers.js';
import { startApi } from './supervision-helpers.js';

const clients = [
  { network: '127.0.0.3/32', profile: 'cycle2' },
  { network: '127.0.0.4/32', profile: 'college' },
];
const rules = { mode: 'blocklist', categories: ['adult', 'games'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] };
const profiles = { cycle2: rules, college: rules };

/** A form post straight to the proxy port (origin-form, as a browser sends it to http://<gateway>:<port>/report). */
function postReport(port: number, from: string, fields: Record<string, string>): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  const body = new URLSearchParams(fields).toString();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/report', localAddress: from, agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

t.test('reports from the block page and /report, queued, accepted, rejected, escalated', async (t) => {
  const received: { headers: http.IncomingHttpHeaders; body: any }[] = [];
  const hook = await serveLoopback(http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) });
      res.writeHead(204).end();
    });
  }));
  const origin = await startOrigin();
  const hosts = Object.fromEntries(['games.test', 'bad.test', 'adult.test'].map((h) => [h, '127.0.0.1']));
  const h = await startApi({ clients, profiles, hosts, reports: { perClientPerHour: 4 }, notifications: { webhooks: [`http://127.0.0.1:${hook.port}/academy?secret=s3cr3t`] } });
  t.teardown(async () => {
    await h.close();
    await origin.close();
    await hook.close();
  });
  const supervisor = await h.tokenFor('supervisor', 'referent');
  const port = h.gw.port;

  const get = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/report', localAddress: '127.0.0.3', agent: false }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    }).on('error', reject);
  });
  t.equal(get.status, 200);
  t.match(get.body, /<form method="post" action="\/report">/, 'GET /report is the form');
  t.match(get.body, /name="host"/);

  const page = (await viaProxy(port, `http://games.test:${origin.port}/`, { localAddress: '127.0.0.3' })).body.toString();
  const action = /<form method="post" action="([^"]+)"/.exec(page)![1]!;
  t.equal(action, `http://127.0.0.1:${port}/report`, 'the block page posts to the proxy port');
  t.match(page, /name="kind" value="allow"/);

  const allow = await postReport(port, '127.0.0.3', { host: 'games.test', kind: 'allow', comment: 'jeu de calcul mental\u0007' });
  t.equal(allow.status, 200);
  t.match(allow.body, /Merci/, 'a page thanks the sender');
  const block = await postReport(port, '127.0.0.4', { host: 'https://Bad.Test/some/page', comment: '' });
  t.equal(block.status, 200);
  t.equal((await postReport(port, '127.0.0.4', { host: 'not a host', comment: '' })).status, 400, 'a bad host is refused with the form again');
  t.equal((await postReport(port, '127.0.0.9', { host: 'x.test' })).status, 403, 'a device outside the client networks cannot report');
  for (let i = 0; i < 3; i++) await postReport(port, '127.0.0.4', { host: `spam${i}.test` });
  const limited = await postReport(port, '127.0.0.4', { host: 'spam9.test' });
  t.equal(limited.status, 429, 'rate-limited per client');
  t.ok(Number(limited.headers['retry-after']) > 0);
  t.equal((await postReport(port, '127.0.0.3', { host: 'other.test' })).status, 200, 'another client is not limited by it');

  await new Promise((r) => setTimeout(r, 100));
  const list = await h.api('GET', '/api/v1/reports', { token: supervisor });
  t.equal(list.status, 200);
  const reports = list.json.reports as { id: string; host: string; kind: string; profile: string; comment: string; status: string }[];
  t.equal(reports.length, 6);
  t.notMatch(list.text, /127\.0\.0\.[34]/, 'no client address in the reports');
  const r1 = reports.find((r) => r.host === 'games.test')!;
  t.match(r1, { kind: 'allow', profile: 'cycle2', comment: 'jeu de calcul mental', status: 'open' });
  const r2 = reports.find((r) => r.host === 'bad.test')!;
  t.match(r2, { kind: 'block', profile: 'college' });
  t.equal(statSync(reportsFile(h.gw.config.dataDir)).mode & 0o777, 0o600, 'the queue file is 0600');

  t.test('accept adds to the academy list, admin only', async (t) => {
    const bySup = await h.api('POST', `/api/v1/reports/${r2.id}`, { token: supervisor, body: { action: 'accept', reason: 'ok' } });
    t.equal(bySup.status, 403, 'a supervisor cannot change a list through a report');
    t.equal((await viaProxy(port, `http://bad.test:${origin.port}/small`, { localAddress: '127.0.0.3' })).status, 200, 'bad.test open before');
    const ok = await h.api('POST', `/api/v1/reports/${r2.id}`, { body: { action: 'accept', reason: 'vérifié' } });
    t.equal(ok.status, 200, ok.text);
    t.equal(ok.json.list, 'academy-deny');
    t.equal(ok.json.report.status, 'accepted');
    t.equal((await viaProxy(port, `http://bad.test:${origin.port}/small`, { localAddress: '127.0.0.3' })).status, 403, 'blocked once accepted');
    t.equal((await h.api('POST', `/api/v1/reports/${r2.id}`, { body: { action: 'reject' } })).status, 409, 'a closed report stays closed');
    const adultReport = await postReport(port, '127.0.0.3', { host: 'adult.test', kind: 'allow' });
    t.equal(adultReport.status, 200);
    const ar = (await h.api('GET', '/api/v1/reports?status=open', { token: supervisor })).json.reports.find((r: { host: string }) => r.host === 'adult.test');
    const refused = await h.api('POST', `/api/v1/reports/${ar.id}`, { body: { action: 'accept' } });
    t.equal(refused.status, 422, 'a non-overridable category is never allowed from a report');
    t.match(refused.json.message, /"adult"/);
  });

  t.test('escalate reaches the webhook, reject closes', async (t) => {
    const esc = await h.api('POST', `/api/v1/reports/${r1.id}`, { token: supervisor, body: { action: 'escalate', reason: 'à voir par l’académie' } });
    t.equal(esc.status, 200, esc.text);
    t.equal(received.length, 1, 'one JSON POST');
    t.equal(received[0]!.headers['content-type'], 'application/json');
    t.match(received[0]!.body, { event: 'report.escalated', report: { host: 'games.test', kind: 'allow', profile: 'cycle2' }, reason: 'à voir par l’académie' });
    t.notMatch(JSON.stringify(esc.json), /s3cr3t/, 'the webhook query is not shown');
    const spam = (await h.api('GET', '/api/v1/reports?status=open', { token: supervisor })).json.reports.find((r: { host: string }) => r.host === 'spam0.test');
    const rej = await h.api('POST', `/api/v1/reports/${spam.id}`, { token: supervisor, body: { action: 'reject', reason: 'sans objet' } });
    t.equal(rej.json.report.status, 'rejected');
    t.equal((await h.api('POST', '/api/v1/reports/rp_000000', { token: supervisor, body: { action: 'reject' } })).status, 404);
    t.equal((await h.api('POST', `/api/v1/reports/${spam.id}`, { token: supervisor, body: { action: 'maybe' } })).json.problems[0].field, 'body/action');
  });

  t.test('each step audited', async (t) => {
    const entries = (await h.api('GET', '/api/v1/audit?action=report&limit=100', { token: supervisor })).json.entries as { action: string; details: Record<string, unknown> }[];
    t.ok(entries.some((e) => e.action === 'report.accept' && e.details.host === 'bad.test' && e.details.list === 'academy-deny'), 'accept, with the list');
    t.ok(entries.some((e) => e.action === 'report.escalate' && e.details.host === 'games.test' && Array.isArray(e.details.deliveries)), 'escalate, with the deliveries');
    t.ok(entries.some((e) => e.action === 'report.reject' && e.details.host === 'spam0.test'), 'reject');
    t.ok(entries.some((e) => e.action === 'report.refused' && e.details.category === 'adult'), 'a refused accept');
    t.notMatch(JSON.stringify(entries), /s3cr3t/, 'no webhook secret in the audit');
  });
});
