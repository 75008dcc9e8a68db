import t from 'tap';
import { startOrigin, viaProxy } from './helpers.js';
import { startApi } from './supervision-helpers.js';

const clients = [
  { network: '127.0.0.1/32', profile: 'cycle3' },
  { network: '127.0.0.2/32', profile: 'cycle1' },
];
const profiles = {
  cycle3: { mode: 'blocklist', categories: ['adult', 'malware'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] },
  cycle1: { mode: 'allowlist', categories: ['child'], allowLists: ['academy-allow'], denyLists: ['academy-deny'] },
};

t.test('journal search, export and statistics through the API', async (t) => {
  const origin = await startOrigin();
  const hosts = Object.fromEntries(['www.site.test', 'adult.test', 'kids.test'].map((h) => [h, '127.0.0.1']));
  const h = await startApi({ clients, profiles, hosts });
  t.teardown(async () => {
    await h.close();
    await origin.close();
  });
  const journal = h.gw.gateway.journal;
  if (!journal) throw new Error('the gateway has no journal');
  const site = (host: string) => `http://${host}:${origin.port}/small`;
  const t0 = Date.now();
  for (let i = 0; i < 3; i++) t.equal((await viaProxy(h.gw.port, site('www.site.test'))).status, 200);
  t.equal((await viaProxy(h.gw.port, site('adult.test'))).status, 403);
  t.equal((await viaProxy(h.gw.port, site('kids.test'), { localAddress: '127.0.0.2' })).status, 200);
  t.equal((await viaProxy(h.gw.port, site('www.site.test'), { localAddress: '127.0.0.2' })).status, 403);
  await journal.flush();
  const supervisor = await h.tokenFor('supervisor', 'Mme Martin');
  const requisition = await h.tokenFor('requisition', 'OPJ Durand');

  const health = (await h.api('GET', '/api/v1/health', { token: null })).json;
  t.equal(health.journal.writable, true, 'health says the journal is writable');

  t.test('search with filters and cursor pagination', async (t) => {
    const all = await h.api('GET', `/api/v1/journal?from=${t0 - 1000}&limit=100`, { token: supervisor });
    t.equal(all.status, 200);
    t.equal(all.json.rows.length, 6);
    const blocked = await h.api('GET', `/api/v1/journal?decision=block&from=${new Date(t0 - 1000).toISOString()}`, { token: supervisor });
    t.same(blocked.json.rows.map((r: { host: string }) => r.host).sort(), ['adult.test', 'www.site.test']);
    const byProfile = await h.api('GET', '/api/v1/journal?profile=cycle1', { token: supervisor });
    t.equal(byProfile.json.rows.length, 2);
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/api/v1/journal?host=site.test&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await h.api('GET', q, { token: supervisor });
      t.equal(page.status, 200);
      seen.push(...page.json.rows.map((r: { id: number }) => r.id));
      cursor = page.json.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    t.equal(seen.length, 4, 'the host filter includes subdomains, every row once');
    t.equal(new Set(seen).size, 4);
    t.ok(pages >= 2, 'more than one page');
    const bad = await h.api('GET', '/api/v1/journal?from=yesterday', { token: supervisor });
    t.equal(bad.status, 400);
    t.equal(bad.json.problems[0].field, 'querystring/from');
    t.equal((await h.api('GET', '/api/v1/journal?decision=maybe', { token: supervisor })).json.problems[0].field, 'querystring/decision');
    t.equal((await h.api('GET', '/api/v1/journal?cursor=garbage', { token: supervisor })).json.problems[0].field, 'querystring/cursor');
  });

  t.test('export for a requisition: streamed CSV and JSON lines ending with the chain head, reference audited', async (t) => {
    const range = `from=${t0 - 60_000}&to=${Date.now() + 60_000}`;
    const csv = await h.api('GET', `/api/v1/journal/export?format=csv&reference=PV%202026%2F0042&client=127.0.0.2&${range}`, { token: requisition });
    t.equal(csv.status, 200);
    t.match(csv.headers['content-type'], /text\/csv/);
    t.match(csv.headers['content-disposition'], /attachment; filename="vigie-journal-.*\.csv"/);
    const lines = csv.text.trim().split('\n');
    t.match(lines[0], /^id,time,client/);
    t.equal(lines.length, 4, 'header, the two rows of 127.0.0.2, the chain head');
    t.match(lines[3], /^# chain head \d+:[0-9a-f]{64} - 2 rows - exported \d{4}-/);
    const jsonl = await h.api('GET', `/api/v1/journal/export?format=jsonl&reference=PV-43&decision=block&${range}`, { token: requisition });
    const rows = jsonl.text.trim().split('\n').map((l) => JSON.parse(l));
    t.equal(rows.length, 3);
    t.ok(rows.slice(0, 2).every((r: { decision: string }) => r.decision === 'block'));
    t.match(rows[2], { chainHead: /^\d+:[0-9a-f]{64}$/, rows: 2 }, 'the last line is the chain head reached');

    // Scoped: a real reference, and a time range no longer than journal.maxExportDays (31).
    const refused = async (q: string) => (await h.api('GET', `/api/v1/journal/export?format=csv&${q}`, { token: requisition })).json;
    t.equal((await h.api('GET', `/api/v1/journal/export?format=csv&${range}`, { token: requisition })).status, 400, 'no reference, no export');
    t.match(await refused(`reference=%20%20%20&${range}`), { statusCode: 400, problems: [{ field: 'querystring/reference', message: /at least 3 characters besides spaces/ }] }, 'a blank reference is refused');
    t.match(await refused(`reference=%20a%20%20&${range}`), { problems: [{ field: 'querystring/reference' }] }, 'one character and spaces is refused');
    t.match(await refused('reference=PV-44'), { statusCode: 400 }, 'no time range: refused');
    t.match(await refused(`reference=PV-44&from=${t0}`), { statusCode: 400 }, 'no end: refused');
    t.match(await refused(`reference=PV-44&from=2026-01-01&to=2026-02-02`), { problems: [{ field: 'querystring/to', message: /covers 32 days; at most 31/ }] }, 'more than 31 days: refused');
    t.match(await refused(`reference=PV-44&from=2026-02-01&to=2026-01-01`), { problems: [{ field: 'querystring/to', message: /after its start/ }] });
    t.equal((await h.api('GET', `/api/v1/journal/export?format=csv&reference=PV-1&${range}`, { token: supervisor })).status, 403, 'supervisors cannot export');
    t.equal((await h.api('GET', '/api/v1/journal', { token: requisition })).status, 403, 'requisition cannot browse');
    await new Promise((r) => setTimeout(r, 50));
    const audit = (await h.api('GET', '/api/v1/audit?action=journal&limit=100', { token: supervisor })).json.entries as { action: string; actor: string; target: string; source: string; outcome: string; details: Record<string, unknown> }[];
    const start = audit.find((e) => e.action === 'journal.export' && e.details.reference === 'PV 2026/0042');
    t.ok(start, 'the export and its reference are audited');
    t.match(start, { actor: /^OPJ Durand \(tk_/, target: 'PV 2026/0042', source: '127.0.0.1' });
    t.match(start!.details.filter, { client: '127.0.0.2' });
    const end = audit.find((e) => e.action === 'journal.export.end' && e.details.reference === 'PV 2026/0042');
    t.match(end?.details, { lines: 4, complete: true }, 'and how much left');
    t.ok(audit.some((e) => e.action === 'journal.export' && e.outcome === 'refused' && e.details.reference === 'PV-44'), 'refusals are audited');
    t.ok(audit.some((e) => e.action === 'journal.search' && /Mme Martin/.test(e.actor)), 'searches are audited');
  });

  t.test('statistics per profile and category', async (t) => {
    const s = await h.api('GET', `/api/v1/stats?bucket=hour&from=${t0 - 3_600_000}`, { token: supervisor });
    t.equal(s.status, 200);
    t.same(s.json.totals, { requests: 6, blocked: 2 });
    t.same(s.json.byProfile.find((p: { name: string }) => p.name === 'cycle3'), { name: 'cycle3', requests: 4, blocked: 1 });
    t.same(s.json.byProfile.find((p: { name: string }) => p.name === 'cycle1'), { name: 'cycle1', requests: 2, blocked: 1 });
    t.ok(s.json.byCategory.some((c: { name: string; blocked: number }) => c.name === 'adult' && c.blocked === 1));
    t.match(s.json.rows[0].bucket, /^\d{4}-\d\d-\d\dT\d\d:00:00\.000Z$/);
    const day = await h.api('GET', '/api/v1/stats?bucket=day', { token: h.admin });
    t.equal(day.json.totals.requests, 6);
    t.equal((await h.api('GET', '/api/v1/stats?bucket=week', { token: supervisor })).json.problems[0].field, 'querystring/bucket');
  });
});
