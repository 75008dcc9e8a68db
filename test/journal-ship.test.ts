import { join } from 'node:path';
import t from 'tap';
import { Pool } from 'pg';
import { verifyCopy } from '../src/academy/verify.js';
import { monthOf } from '../src/journal/schema.js';
import { monthsPresent, purgeCopy } from '../src/journal/ship-schema.js';
import { JournalWriter } from '../src/journal/writer.js';
import { tmp } from './helpers.js';
import { postgresMissing, startPostgres, type TestPostgres } from './pg-helpers.js';
import { shipper, shipRows, tunnelEnds } from './ship-helpers.js';

const skip = postgresMissing();

t.test('journal shipping to PostgreSQL', { skip }, async (t) => {
  const pg: TestPostgres = await startPostgres();
  t.teardown(() => pg.destroy());
  const file = join(tmp(), 'journal.db');
  const w = new JournalWriter(file, { synchronous: 'OFF' });
  t.teardown(() => w.close());
  const now = Date.now();
  let next = 1;
  const write = (n: number, time = now - 3_600_000) => {
    const rows = shipRows(next, n, time);
    // Ten rows a transaction: ten rows a chain link, as a gateway with little traffic writes them.
    for (let i = 0; i < n; i += 10) w.write(rows.slice(i, i + 10));
    next += n;
    return rows;
  };
  const count = async () => Number((await pg.query('SELECT count(*) AS n, count(DISTINCT id) AS d FROM vigie_rows WHERE gateway = $1', ['gw-a'])).rows[0].n);
  const distinct = async () => Number((await pg.query('SELECT count(DISTINCT id) AS d FROM vigie_rows WHERE gateway = $1', ['gw-a'])).rows[0].d);

  const first = write(120);
  let s = shipper(file, pg.url, 'gw-a');
  s.start();
  await s.waitFor(w.head().id);
  t.equal(await count(), 120, 'every row shipped');
  t.equal(s.status.lagSeconds, 0, 'caught up: lag 0');
  t.ok(s.status.batches >= 3, `batched (${s.status.batches} transactions for 120 rows at batchRows 50)`);

  await t.test('tunnel ends follow their rows', async (t) => {
    w.write([], tunnelEnds(first));
    await s.waitFor(w.head().id);
    const r = (await pg.query('SELECT count(*) FILTER (WHERE ended) AS ended, count(*) FILTER (WHERE scheme = $2) AS tunnels, min(bytes_out) FILTER (WHERE scheme = $2) AS bo FROM vigie_rows WHERE gateway = $1', ['gw-a', 'connect'])).rows[0];
    t.equal(Number(r.ended), 40, 'every tunnel ended in the copy');
    t.equal(Number(r.tunnels), 40);
    t.equal(Number(r.bo), 2222, 'with the figures of its end');
  });

  await t.test('a restart of the gateway side resumes from what PostgreSQL acknowledged', async (t) => {
    await s.close();
    write(70);
    s = shipper(file, pg.url, 'gw-a');
    s.start();
    await s.waitFor(w.head().id);
    t.equal(await count(), 190, 'the 70 new rows, none twice');
    t.equal(await distinct(), 190);
  });

  await t.test('a batch PostgreSQL stored but whose acknowledgement the shipper never saw is kept once', async (t) => {
    await s.close();
    // As if the shipper died between COMMIT and reading its answer, 10 links ago.
    await pg.query('UPDATE vigie_ship SET link = link - 10 WHERE gateway = $1', ['gw-a']);
    s = shipper(file, pg.url, 'gw-a');
    s.start();
    await s.waitFor(w.head().id);
    t.equal(await count(), 190, 'sent again, stored once');
    t.equal(Number((await pg.query('SELECT count(*) AS n FROM vigie_chain WHERE gateway = $1', ['gw-a'])).rows[0].n), w.head().id, 'one copy of each link');
  });

  await t.test('a PostgreSQL outage: lag grows, then everything arrives once', async (t) => {
    await pg.stop();
    write(80, Date.now() - 100_000);
    const until = Date.now() + 15_000;
    while ((s.status.connected || (s.status.lagSeconds ?? 0) < 1) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    t.equal(s.status.connected, false, 'the shipper saw PostgreSQL go');
    t.ok((s.status.lagSeconds ?? 0) >= 1, `lag grows while it is away (${s.status.lagSeconds} s)`);
    t.match(s.status.lastError, /\S/, 'and says why');
    await pg.start();
    await s.waitFor(w.head().id, 40_000);
    t.equal(await count(), 270);
    t.equal(await distinct(), 270);
    t.equal(s.status.lagSeconds, 0);
  });

  await t.test('a PostgreSQL restart in the middle of shipping', async (t) => {
    write(400);
    const head = w.head().id;
    // Restarted while batches are in flight: a transaction cut short is rolled back and sent again.
    await new Promise((r) => setTimeout(r, 30));
    await pg.stop();
    await pg.start();
    await s.waitFor(head, 40_000);
    t.equal(await count(), 670);
    t.equal(await distinct(), 670);
    const ack = (await pg.query('SELECT link FROM vigie_ship WHERE gateway = $1', ['gw-a'])).rows[0];
    t.equal(Number(ack.link), head, 'the acknowledged link is the journal head');
  });

  await t.test('a busy gateway holds shipping back, up to half its lag limit', async (t) => {
    await s.close();
    let busy = true;
    s = shipper(file, pg.url, 'gw-a', { busy: () => busy, maxLagSeconds: 4 });
    s.start();
    for (const until = Date.now() + 30_000; !s.status.connected && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
    const before = await count();
    write(20, Date.now() - 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    t.equal(await count(), before, 'nothing shipped while busy');
    t.ok((s.status.lagSeconds ?? 0) > 0.5, `the lag grows meanwhile (${s.status.lagSeconds} s)`);
    await s.waitFor(w.head().id, 20_000);
    t.ok((s.status.lagSeconds ?? 0) === 0 && busy, 'still busy, but at half the limit (2 s) it ships anyway');
    busy = false;
    write(20, Date.now() - 60_000);
    await s.waitFor(w.head().id, 20_000);
    t.equal(await count(), before + 40, 'and when not busy, at once');
  });

  await t.test('month partitions are created and purged whole', async (t) => {
    const old = Date.UTC(2024, 0, 10);
    const rows = shipRows(next, 30, old);
    w.write(rows);
    next += 30;
    await s.waitFor(w.head().id);
    const c = await pgClient(pg);
    const months = await monthsPresent(c);
    t.ok(months.includes(202401) && months.includes(monthOf(now - 3_600_000)), `partitions per month: ${months.join(', ')}`);
    const parts = (await pg.query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'vigie_rows'::regclass`)).rows.map((r) => r.relname);
    t.ok(parts.includes('vigie_rows_202401'), 'declarative partition of vigie_rows');
    try {
      const purged = await purgeCopy(c, 365);
      t.same(purged.months, [202401], 'the month that ended over a year ago goes');
      t.equal(purged.rows, 30);
    } finally {
      await c.end();
    }
    t.equal(Number((await pg.query('SELECT count(*) AS n FROM vigie_rows WHERE t < $1', [Date.UTC(2024, 1, 1)])).rows[0].n), 0);
    t.notOk((await pg.query(`SELECT to_regclass('vigie_rows_202401') AS r`)).rows[0].r, 'its partition is dropped');
    t.equal(await count(), 710, 'the rest stays');
    const pool = new Pool({ connectionString: pg.url, max: 1 });
    try {
      const report = await verifyCopy(pool);
      t.equal(report.ok, true, `the copy still verifies after the purge: ${JSON.stringify(report.gateways[0]?.problems)}`);
    } finally {
      await pool.end();
    }
  });

  await s.close();
});

async function pgClient(p: TestPostgres) {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: p.url });
  await c.connect();
  return c;
}
