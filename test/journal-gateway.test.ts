import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { JournalRow } from '../src/journal/types.js';
import { connectTunnel, startGateway, startOrigin, tmp, viaProxy } from './helpers.js';

const clients = [
  { network: '127.0.0.1/32', profile: 'cycle3' },
  { network: '127.0.0.2/32', profile: 'cycle1' },
];
const profiles = {
  cycle3: { mode: 'blocklist', categories: ['adult', 'malware', 'games'] },
  cycle1: { mode: 'allowlist', categories: ['child', 'liste_blanche'] },
};
const hosts = Object.fromEntries(['www.site.test', 'kids.test', 'adult.test', 'tls.site.test', 'down.test'].map((h) => [h, '127.0.0.1']));

t.test('every proxied connection lands in the journal', async (t) => {
  const origin = await startOrigin();
  const gw = await startGateway({ clients, profiles, hosts, connectPorts: [443, origin.port] });
  t.teardown(async () => {
    await gw.close();
    await origin.close();
  });
  const journal = gw.gateway.journal!;
  t.ok(journal, 'the journal is on by default');
  const site = (host: string, path: string) => `http://${host}:${origin.port}${path}`;
  const t0 = Date.now();

  const ok = await viaProxy(gw.port, site('www.site.test', '/small?pupil=secret&q=1'));
  t.equal(ok.status, 200);
  const blocked = await viaProxy(gw.port, site('adult.test', '/x'));
  t.equal(blocked.status, 403);
  const other = await viaProxy(gw.port, site('www.site.test', '/small'), { localAddress: '127.0.0.2' });
  t.equal(other.status, 403, 'cycle1 is allowlist-only');
  const tunnel = await connectTunnel(gw.port, `tls.site.test:${origin.port}`);
  t.equal(tunnel.status, 200);
  tunnel.socket.write(`GET /small HTTP/1.1\r\nHost: tls.site.test\r\nConnection: close\r\n\r\n`);
  await new Promise((r) => tunnel.socket.on('close', r));
  const refused = await connectTunnel(gw.port, 'adult.test:443');
  t.equal(refused.status, 403);

  await new Promise((r) => setTimeout(r, 100));
  await journal.flush();
  const { rows } = journal.search({ from: t0 - 1000 }, { limit: 100 });
  t.equal(rows.length, 5, 'five connections, five rows');
  const find = (f: (r: JournalRow) => boolean) => rows.find(f);
  const okRow = find((r) => r.host === 'www.site.test' && r.client === '127.0.0.1')!;
  t.match(okRow, { method: 'GET', scheme: 'http', port: origin.port, path: '/small', status: 200, decision: 'allow', profile: 'cycle3', rule: 'default' }, 'query string dropped');
  t.ok(okRow.bytesOut > 0 && okRow.bytesIn > 0, 'bytes both ways');
  t.ok(okRow.time >= t0 - 5 && okRow.time <= Date.now());
  t.match(find((r) => r.host === 'adult.test' && r.scheme === 'http'), { status: 403, decision: 'block', category: 'adult', rule: 'category:ut1' }, 'the rule names the list set that matched');
  t.match(find((r) => r.client === '127.0.0.2'), { profile: 'cycle1', decision: 'block', rule: 'allowlist-only' });
  const tun = find((r) => r.host === 'tls.site.test')!;
  t.match(tun, { method: 'CONNECT', scheme: 'connect', path: null, status: 200, decision: 'allow' });
  t.ok(tun.bytesIn > 0 && tun.bytesOut > 0, 'tunnel end figures recorded when it closed');
  t.match(find((r) => r.host === 'adult.test' && r.scheme === 'connect'), { status: 403, decision: 'block', port: 443 });
  const ids = rows.map((r) => r.id);
  t.same(ids, [...ids].sort((a, b) => a - b), 'ids increase');

  const h = journal.health();
  t.match(h, { writable: true, queueDepth: 0, rowsLost: 0, lastError: null });
  t.equal(h.rowsWritten, 5, 'five rows written (the tunnel end completes one of them)');

  t.test('stats per profile and category', async (t) => {
    const s = journal.stats({ from: t0 - 1000 }, 'hour');
    const total = s.reduce((n, r) => n + r.requests, 0);
    const blockedN = s.reduce((n, r) => n + r.blocked, 0);
    t.equal(total, 5);
    t.equal(blockedN, 3);
    t.ok(s.find((r) => r.profile === 'cycle3' && r.category === 'adult' && r.requests === 2 && r.blocked === 2));
  });

  t.test('the file is a WAL SQLite database that passes integrity_check', async (t) => {
    const db = new Database(join(gw.config.dataDir, 'journal', 'journal.db'), { readonly: true });
    t.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    t.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    db.close();
  });
});

t.test('keepQuery keeps the query string', async (t) => {
  const origin = await startOrigin();
  const gw = await startGateway({ clients, profiles, hosts, journal: { keepQuery: true } });
  t.teardown(async () => {
    await gw.close();
    await origin.close();
  });
  await viaProxy(gw.port, `http://www.site.test:${origin.port}/small?a=1&b=2`);
  await gw.gateway.journal!.flush();
  const { rows } = gw.gateway.journal!.search({}, { limit: 10 });
  t.equal(rows[0]?.path, '/small?a=1&b=2');
});

t.test('a journal that cannot be opened stops the gateway from starting (overflow "block")', async (t) => {
  const dataDir = tmp();
  writeFileSync(join(dataDir, 'journal'), 'not a folder');
  await t.rejects(startGateway({ clients, profiles, hosts, dataDir }), /journal: cannot open .*journal\.db/);
});

t.test('journal disabled: no journal, proxy still serves', async (t) => {
  const origin = await startOrigin();
  const gw = await startGateway({ clients, profiles, hosts, journal: { enabled: false } });
  t.teardown(async () => {
    await gw.close();
    await origin.close();
  });
  t.equal(gw.gateway.journal, undefined);
  t.equal((await viaProxy(gw.port, `http://www.site.test:${origin.port}/small`)).status, 200);
});
