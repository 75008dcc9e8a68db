import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { resolveAcademyConfig } from '../src/academy/config.js';
import { startAcademy, type AcademyServer } from '../src/academy/server.js';
import { JournalWriter } from '../src/journal/writer.js';
import type { JournalShipper } from '../src/journal/ship.js';
import { silentLogger } from '../src/log.js';
import { adminTokenFile } from '../src/supervision/tokens.js';
import { tmp } from './helpers.js';
import { scrape } from './metrics-scrape.js';
import { postgresMissing, startPostgres } from './pg-helpers.js';
import { shipper, shipRows, tunnelEnds } from './ship-helpers.js';
import { call, certFiles } from './supervision-helpers.js';

const skip = postgresMissing();
const HOUR = 3_600_000;

t.test('academy service over two gateways\' copies', { skip }, async (t) => {
  const pg = await startPostgres();
  t.teardown(() => pg.destroy());
  const day = Date.UTC(2026, 10, 20);
  const gateways: { id: string; uai: string; w: JournalWriter; s: JournalShipper; clients: string[] }[] = [];
  for (const [id, uai, net] of [['gw-a', '0801234X', '10.1'], ['gw-b', '0809999Z', '10.2']] as const) {
    const w = new JournalWriter(join(tmp(), 'journal.db'), { synchronous: 'OFF' });
    const clients = [`${net}.0.1`, `${net}.0.2`, `${net}.3.4`];
    // 60 rows in the afternoon of `day`, 20 the day after; ten per link.
    const rows = [...shipRows(1, 60, day + 14 * HOUR, clients), ...shipRows(61, 20, day + 30 * HOUR, clients)];
    for (let i = 0; i < rows.length; i += 10) w.write(rows.slice(i, i + 10));
    w.write([], tunnelEnds(rows.slice(0, 30)));
    let reports = 0;
    const s = shipper(w.file, pg.url, id, { uai, fleetSeconds: 0 });
    (s as unknown as { fleetStatus: () => unknown }).fleetStatus = () => ({ version: '0.1.0', policyVersion: 3, listsLoaded: true, listsAgeSeconds: 60, status: 'ok', health: { n: ++reports } });
    s.start();
    gateways.push({ id, uai, w, s, clients });
  }
  for (const g of gateways) await g.s.waitFor(g.w.head().id);
  for (const g of gateways) g.s.reportNow();

  const dataDir = tmp('vigie-academy-');
  const config = resolveAcademyConfig({ listen: { host: '127.0.0.1', port: 0 }, ...certFiles(), dataDir, postgres: { url: pg.url }, timezone: 'UTC', fleet: { staleSeconds: 4, maxLagSeconds: 60 }, metrics: { listen: { host: '127.0.0.1', port: 0 } } });
  const academy: AcademyServer = await startAcademy(config, silentLogger);
  t.teardown(async () => {
    for (const g of gateways) {
      await g.s.close();
      g.w.close();
    }
    await academy.close();
  });
  const admin = readFileSync(adminTokenFile(dataDir), 'utf8').trim();
  const supervisor = (await academy.tokens.create('supervisor', 'rectorat', 'test')).token;
  const requisition = (await academy.tokens.create('requisition', 'opj', 'test')).token;
  const api = (path: string, token: string | null = supervisor) => call(academy.port, academy.cert, 'GET', path, { token });

  await t.test('search across gateways, with the academy\'s filters', async (t) => {
    const all = await api('/api/v1/journal?limit=1000');
    t.equal(all.status, 200, all.status === 200 ? 'search' : all.text);
    t.equal(all.json.rows.length, 160, 'both gateways\' rows');
    t.same([...new Set(all.json.rows.map((r: any) => r.gateway))].sort(), ['gw-a', 'gw-b']);
    t.ok(all.json.rows.every((r: any, i: number, a: any[]) => i === 0 || a[i - 1].time <= r.time), 'oldest first');

    const device = await api(`/api/v1/journal?client=10.2.0.2&from=${new Date(day).toISOString()}&to=${new Date(day + 24 * HOUR).toISOString()}&limit=1000`);
    t.equal(device.json.rows.length, 20, 'one device over one day');
    t.ok(device.json.rows.every((r: any) => r.gateway === 'gw-b' && r.client === '10.2.0.2' && r.time < day + 24 * HOUR));

    const net = await api('/api/v1/journal?network=10.1.0.0/16&limit=1000');
    t.equal(net.json.rows.length, 80, 'a network is one school here');
    t.ok(net.json.rows.every((r: any) => r.gateway === 'gw-a'));
    t.equal((await api('/api/v1/journal?uai=0809999Z&limit=1000')).json.rows.length, 80, 'by establishment');
    t.equal((await api('/api/v1/journal?gateway=gw-a&user=eleve.dupont&limit=1000')).json.rows.length, 16, 'by gateway and user');
    const host = await api('/api/v1/journal?host=example.org&limit=1000');
    t.ok(host.json.rows.length > 0 && host.json.rows.every((r: any) => r.host === 'example.org' || r.host.endsWith('.example.org')), 'host and its subdomains, not notexample.org');

    let cursor: string | null = null;
    let seen = 0;
    do {
      const page: any = await api(`/api/v1/journal?limit=37${cursor ? `&cursor=${cursor}` : ''}`);
      seen += page.json.rows.length;
      cursor = page.json.nextCursor;
    } while (cursor);
    t.equal(seen, 160, 'the cursor walks every row once');

    const bad = await api('/api/v1/journal?network=10.300.0.0/16');
    t.equal(bad.status, 400);
    t.match(bad.json.message, /querystring\/network/);
    t.equal((await api('/api/v1/journal?uai=nope')).status, 400, 'a UAI has its form');
    t.equal((await api('/api/v1/journal', null)).status, 401);
  });

  await t.test('a requisition exports from every gateway, audited', async (t) => {
    const from = new Date(day).toISOString();
    t.equal((await api(`/api/v1/journal/export?reference=PV-1&from=${from}`)).status, 403, 'a supervisor may not export');
    const csv = await api(`/api/v1/journal/export?reference=PV-2026-118&format=csv&host=example.org&from=${from}`, requisition);
    t.equal(csv.status, 200, csv.status === 200 ? 'export' : csv.text);
    const lines = csv.text.trim().split('\n');
    t.equal(lines[0], 'gateway,id,time,client,user,profile,method,scheme,host,port,path,status,bytesIn,bytesOut,durationMs,decision,category,rule,policyVersion,retarget');
    const gws = new Set(lines.slice(1).map((l) => l.split(',')[0]));
    t.same([...gws].sort(), ['gw-a', 'gw-b'], 'rows of both gateways');
    const jsonl = await api(`/api/v1/journal/export?reference=PV-2026-119&network=10.2.3.4`, requisition);
    const rows = jsonl.text.trim().split('\n').map((l) => JSON.parse(l));
    t.ok(rows.length > 0 && rows.every((r) => r.client === '10.2.3.4' && r.gateway === 'gw-b'));
    await new Promise((r) => setTimeout(r, 100));
    const auditLines = readFileSync(join(dataDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    t.ok(auditLines.some((a) => a.action === 'journal.export' && a.target === 'PV-2026-118' && a.actor.startsWith('opj')), 'the export and its reference are in the academy\'s audit');
    t.ok(auditLines.some((a) => a.action === 'journal.export.end' && a.details.complete === true && a.details.lines === lines.length));
    t.ok(auditLines.some((a) => a.action === 'access.denied'), 'the refused export too');
  });

  await t.test('stats per gateway', async (t) => {
    const s = await api(`/api/v1/stats?from=${day}&to=${day + 3 * 24 * HOUR}&bucket=day`);
    t.equal(s.status, 200, s.status === 200 ? 'stats' : s.text);
    t.equal(s.json.totals.requests, 160);
    t.same(s.json.byGateway.map((g: any) => [g.name, g.requests]).sort(), [['gw-a', 80], ['gw-b', 80]]);
    t.equal(s.json.rows.filter((r: any) => r.gateway === 'gw-a').reduce((n: number, r: any) => n + r.requests, 0), 80);
  });

  await t.test('verify on the copy names the gateway and the ids', async (t) => {
    const ok = await api('/api/v1/journal/verify', admin);
    t.equal(ok.status, 200, ok.status === 200 ? 'verify' : ok.text);
    t.equal(ok.json.ok, true, JSON.stringify(ok.json.gateways.flatMap((g: any) => g.problems)));
    t.same(ok.json.gateways.map((g: any) => [g.gateway, g.rows]), [['gw-a', 80], ['gw-b', 80]]);
    t.equal((await api('/api/v1/journal/verify', supervisor)).status, 403);

    await pg.query(`UPDATE vigie_rows SET host = 'innocent.test' WHERE gateway = 'gw-a' AND id = 23`);
    const changed = await api('/api/v1/journal/verify', admin);
    t.equal(changed.json.ok, false);
    const pa = changed.json.gateways.find((g: any) => g.gateway === 'gw-a').problems;
    t.equal(pa.length, 1);
    t.match(pa[0], { gateway: 'gw-a', kind: 'changed', entry: 3, firstId: 21, lastId: 30 }, 'the link holding row 23');
    t.ok(changed.json.gateways.find((g: any) => g.gateway === 'gw-b').ok, 'the other gateway is fine');

    const b = gateways[1]!;
    // The tail cut: the last two links of gw-b and their rows.
    await pg.query(`DELETE FROM vigie_rows WHERE gateway = 'gw-b' AND id > 70`);
    await pg.query(`DELETE FROM vigie_chain WHERE gateway = 'gw-b' AND id > 7`);
    const cut = await api('/api/v1/journal/verify?gateway=gw-b', admin);
    t.equal(cut.json.ok, false);
    const pb = cut.json.gateways[0].problems;
    t.match(pb[pb.length - 1], { gateway: 'gw-b', kind: 'removed', entry: 8, firstId: 71 }, 'the cut starts at link 8, row 71');
    t.match(pb[pb.length - 1].message, /gw-b.*ends at link 7 but link 9 was shipped/);
    t.equal(b.w.head().id, 9, 'the gateway itself has 9 links');
  });

  await t.test('fleet status with one gateway stopped', async (t) => {
    for (const g of gateways) g.s.reportNow();
    await new Promise((r) => setTimeout(r, 300));
    const f = await api('/api/v1/fleet');
    t.equal(f.status, 200, f.status === 200 ? 'fleet' : f.text);
    t.same(f.json.stale, [], 'both reported lately');
    t.match(f.json.gateways[0], { gateway: 'gw-a', uai: '0801234X', version: '0.1.0', policyVersion: 3, status: 'ok', stale: false, unhealthy: false });
    await gateways[1]!.s.close();
    await new Promise((r) => setTimeout(r, 4500));
    gateways[0]!.s.reportNow();
    await new Promise((r) => setTimeout(r, 300));
    const after = await api('/api/v1/fleet?problems=true');
    t.same(after.json.stale, ['gw-b'], 'the stopped gateway is stale');
    t.same(after.json.gateways.map((g: any) => g.gateway), ['gw-b']);
    t.match(after.json.gateways[0].reasons[0], /no report for \d+ s/);
    const m = await scrape(academy.metrics!.address.port);
    t.equal(m.get('vigie_academy_gateway_up', { gateway: 'gw-b' }), 0);
    t.equal(m.get('vigie_academy_gateway_up', { gateway: 'gw-a' }), 1);
    t.equal(m.get('vigie_academy_gateways', { state: 'stale' }), 1);
  });
});
