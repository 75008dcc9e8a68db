import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import t from 'tap';
import { resolveConfig } from '../src/config/load.js';
import { Gateway } from '../src/gateway.js';
import { verifyJournal } from '../src/journal/verify.js';
import { createLogger } from '../src/log.js';
import { connectTunnel, DEAD_DNS, startOrigin, TEST_LISTS, tmp, viaProxy, writeLists } from './helpers.js';

/** A gateway whose log we read, with a small journal queue so it overflows on purpose. */
async function gatewayWith(journal: Record<string, unknown>) {
  const lines: string[] = [];
  const config = resolveConfig({
    listen: [{ host: '127.0.0.1', port: 0 }],
    dns: { servers: DEAD_DNS, timeoutMs: 500 },
    dataDir: tmp(),
    hosts: { 'www.site.test': '127.0.0.1' },
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    lists: { ut1: writeLists(tmp(), TEST_LISTS), academy: writeLists(tmp(), { 'academy-allow': { domains: ['ok.test'] }, 'academy-deny': { domains: ['no.test'] } }) },
    journal: { flushMs: 20, ...journal },
  });
  const gateway = new Gateway({ config, log: createLogger('debug', (l) => lines.push(l)) });
  await gateway.start();
  return { gateway, port: gateway.listening[0]!.port, lines, file: join(config.dataDir, 'journal', 'journal.db') };
}

/** Takes SQLite's write lock on the journal: its writer cannot commit until released. */
function lockWriter(file: string): () => void {
  const db = new Database(file);
  db.pragma('busy_timeout = 5000');
  db.exec('BEGIN IMMEDIATE');
  return () => {
    db.exec('COMMIT');
    db.close();
  };
}

/** An origin and a gateway in front of it, both stopped when the test ends. */
async function setup(t: { teardown(fn: () => Promise<void>): void }, journal: Record<string, unknown>) {
  const origin = await startOrigin();
  const g = await gatewayWith(journal);
  t.teardown(async () => {
    await g.gateway.stop();
    await origin.close();
  });
  return { ...g, j: g.gateway.journal!, originPort: origin.port, url: `http://www.site.test:${origin.port}/small` };
}

/** The journal's own record of lost rows, read from its file. */
const lostEvents = (db: Database.Database): unknown[] => (db.prepare(`SELECT detail FROM events WHERE kind = 'rows-lost'`).pluck().all() as string[]).map((d) => JSON.parse(d));

const waitFor = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

t.test('overflow "block": new connections are refused with 503 while rows cannot be written, none lost', async (t) => {
  const g = await setup(t, { overflow: 'block', queueMax: 4 });
  const { j, url } = g;
  const release = lockWriter(g.file);
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) statuses.push((await viaProxy(g.port, url)).status);
  t.same(statuses.slice(0, 4), [200, 200, 200, 200], 'served while the queue has room');
  t.ok(statuses.slice(4).every((s) => s === 503), `then refused: ${statuses.join(',')}`);
  const refused = await viaProxy(g.port, url);
  t.equal(refused.status, 503);
  t.match(refused.body.toString(), /journal des connexions ne peut pas enregistrer.*\n.*connection journal cannot record/);
  t.equal(refused.headers['retry-after'], '5');
  const tunnel = await connectTunnel(g.port, `www.site.test:${g.originPort}`);
  t.equal(tunnel.status, 503, 'CONNECT refused too');
  t.match(j.health(), { queueDepth: 4, rowsLost: 0 });
  await waitFor(() => !j.health().writable);
  t.match(j.health().lastError, /busy|locked/i, 'the write error is exposed');
  t.ok(g.lines.some((l) => /ERROR journal cannot write/.test(l)), 'and logged');

  release();
  await waitFor(() => j.health().writable && j.health().queueDepth === 0);
  t.equal((await viaProxy(g.port, url)).status, 200, 'served again once the journal writes');
  await j.flush();
  const { rows } = j.search({}, { limit: 100 });
  t.equal(rows.length, 5, 'every served request is in the journal, refused ones are not');
  t.ok(rows.every((r) => r.status === 200));
  t.equal(j.health().rowsLost, 0);
});

t.test('overflow "allow": connections go on, every lost row is counted and logged', async (t) => {
  const g = await setup(t, { overflow: 'allow', queueMax: 3 });
  const { j, url } = g;
  const release = lockWriter(g.file);
  for (let i = 0; i < 10; i++) t.equal((await viaProxy(g.port, url)).status, 200);
  t.match(j.health(), { queueDepth: 3, rowsLost: 7 });
  await waitFor(() => g.lines.some((l) => /rows lost/.test(l)));
  t.match(g.lines.find((l) => /rows lost/.test(l)), /ERROR journal: rows lost .* count=7 total=7/);
  release();
  await waitFor(() => j.health().queueDepth === 0);
  await j.flush();
  t.equal(j.search({}, { limit: 100 }).rows.length, 3, 'the rows that fitted are written');
  await g.gateway.stop();
  const db = new Database(g.file, { readonly: true });
  t.same(lostEvents(db), [{ count: 7 }], 'the loss is recorded in the journal itself');
  db.close();
});

t.test('the writer thread dies: fail closed, a new one starts, the rows it held are counted lost and recorded', async (t) => {
  const g = await setup(t, { overflow: 'block', queueMax: 1000 });
  const { j, url } = g;
  const writer = () => (j as unknown as { writer: { worker: Worker | null } }).writer.worker;
  for (let i = 0; i < 3; i++) t.equal((await viaProxy(g.port, url)).status, 200);
  await j.flush();
  // Two more rows held by the thread (it cannot commit them), then the thread is gone.
  const release = lockWriter(g.file);
  for (let i = 0; i < 2; i++) t.equal((await viaProxy(g.port, url)).status, 200);
  await waitFor(() => j.health().lastError !== null);
  const dying = writer()!;
  const gone = new Promise((r) => dying.once('exit', r));
  void dying.terminate();
  await gone;
  release();
  t.notOk(j.health().writable, 'not writable while no thread runs');
  t.equal((await viaProxy(g.port, url)).status, 503, 'new work refused meanwhile (overflow "block")');
  t.ok(g.lines.some((l) => /ERROR journal writer exited .*restarting it in 1 s/.test(l)), 'said loudly');

  await waitFor(() => j.health().writable);
  t.not(writer(), dying, 'a new thread');
  t.equal(j.health().writerRestarts, 1);
  t.equal(j.health().rowsLost, 2, 'exactly the rows the dead thread held');
  t.ok(g.lines.some((l) => /WARN {2}journal writer restarted .*lostRows=2/.test(l)), 'logged with the count');
  for (let i = 0; i < 2; i++) t.equal((await viaProxy(g.port, url)).status, 200, 'served and recorded again');
  await j.flush();
  const rows = j.search({}, { limit: 100, order: 'asc' }).rows;
  t.equal(rows.length, 5, 'the 3 rows before and the 2 after');
  t.same(
    rows.map((r) => r.id),
    [...Array(5).keys()].map((i) => rows[0]!.id + i),
    'ids go on where the file ended: no gap',
  );
  await g.gateway.stop();
  const db = new Database(g.file, { readonly: true });
  t.match(verifyJournal(db), { ok: true, rows: 5 }, 'the chain verifies');
  t.same(lostEvents(db), [{ count: 2 }], 'the loss is recorded in the journal itself');
  db.close();
});
