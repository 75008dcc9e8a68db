// The statistics counters (src/journal/aggregate.ts) against the rows they count: stats and
// summaries read through the counters equal the same reads over the rows, for ranges cut
// anywhere in an hour, filters by profile, category and decision, after a rolled-back write,
// after counting an older file once, and after a purge.
import Database from 'better-sqlite3';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { JournalQuery } from '../src/journal/reader.js';
import type { WireRow } from '../src/journal/row.js';
import type { JournalFilter } from '../src/journal/types.js';
import { JournalWriter } from '../src/journal/writer.js';
import { tmp } from './helpers.js';

const HOUR = 3_600_000;
const HOSTS = ['a.test', 'b.test', 'c.test', 'd.test', 'e.test'];

function rows(startId: number, from: number, n: number, seed: number): WireRow[] {
  let s = seed;
  const rnd = (k: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % k;
  };
  return Array.from({ length: n }, (_, i) => {
    const r = rnd(10);
    const block = r < 3;
    const rule = block ? 'category' : r === 3 ? 'override' : 'default';
    return [startId + i, from + i * 97_000 + rnd(60_000), `10.0.0.${rnd(4)}`, null, ['cycle2', 'college', null][rnd(3)] ?? null, 'CONNECT', 'connect', HOSTS[rnd(HOSTS.length)]!, 443, null,
      block ? 403 : 200, 0, 0, 0, block ? 'block' : 'allow', block ? ['adult', 'games'][rnd(2)]! : r === 3 ? 'games' : null, rule, 1] satisfies WireRow;
  });
}

const FILTERS = (t0: number): JournalFilter[] => [
  {},
  { from: t0 + 1234, to: t0 + 30 * HOUR + 777 },
  { from: t0 + 2 * HOUR, to: t0 + 20 * HOUR },
  { from: t0 + 5 * HOUR + 1 },
  { to: t0 + 40 * HOUR - 1 },
  { from: t0 + 3 * HOUR + 10, to: t0 + 3 * HOUR + 500_000 },
  { from: t0 + 1000, to: t0 + 60 * HOUR, profile: 'cycle2' },
  { from: t0 + 1000, to: t0 + 60 * HOUR, decision: 'block', category: 'adult' },
  { from: t0 + HOUR, decision: 'allow' },
  { from: t0 + 1000, to: t0 + 60 * HOUR, profile: 'nope' },
];

async function same(t: Test, file: string, t0: number, what: string): Promise<void> {
  const agg = new JournalQuery(file, { timezone: 'Europe/Paris' });
  const raw = new JournalQuery(file, { timezone: 'Europe/Paris', aggregates: false });
  t.ok(agg.aggregated(), `${what}: counters present`);
  for (const f of FILTERS(t0)) {
    for (const b of ['hour', 'day'] as const) t.same(agg.stats(f, b), raw.stats(f, b), `${what}: stats ${b} ${JSON.stringify(f)}`);
    t.same(await agg.summary(f, 3), await raw.summary(f, 3), `${what}: summary ${JSON.stringify(f)}`);
  }
  agg.close();
  raw.close();
}

t.test('counters equal the rows they count', async (t) => {
  const file = join(tmp(), 'journal.db');
  const w = new JournalWriter(file, { synchronous: 'OFF' });
  // Across the end of a month (two partitions), 1,800 rows in batches.
  const t0 = Date.UTC(2026, 9, 30, 12, 0, 0);
  let id = w.nextId();
  for (let b = 0; b < 6; b++) {
    if (b === 3) {
      // A write that fails inside its transaction leaves neither rows nor counts behind.
      const bad = rows(id, t0 + 1000, 10, 99);
      bad[5]![0] = id - 1;
      t.throws(() => w.write(bad, [], t0 + 2000), /increasing ids/);
    }
    const batch = rows(id, t0 + b * 300 * 97_000, 300, 7 + b);
    w.write(batch, [], batch[batch.length - 1]![1] + 1000);
    id += batch.length;
  }
  const q = new JournalQuery(file);
  t.ok((q.stats({}, 'hour').reduce((s, r) => s + r.requests, 0)) === 1800, 'every row counted once');
  const s = (await q.summary({}, 10)).find((p) => p.profile === 'cycle2')!;
  t.ok(s.overridden.length > 0 && s.topBlockedHosts.length > 0, 'hosts blocked and opened by unblocks are counted');
  q.close();
  await same(t, file, t0, 'written');

  // A file written before the counters existed is counted once when a writer opens it.
  const old = join(tmp(), 'journal.db');
  w.close();
  copyFileSync(file, old);
  const db = new Database(old);
  const before = db.prepare('SELECT * FROM agg_hour ORDER BY h, cx').all();
  const hostsBefore = db.prepare('SELECT * FROM agg_host ORDER BY h, cx, ho').all();
  db.exec(`DROP TABLE agg_hour; DROP TABLE agg_host; DELETE FROM meta WHERE k = 'agg'`);
  db.close();
  const legacy = new JournalQuery(old);
  t.notOk(legacy.aggregated(), 'without counters, stats read the rows');
  t.equal(legacy.stats({}, 'day').reduce((s, r) => s + r.requests, 0), 1800);
  legacy.close();
  const w2 = new JournalWriter(old, { synchronous: 'OFF' });
  t.same(w2.db.prepare('SELECT * FROM agg_hour ORDER BY h, cx').all(), before, 'counted again: the same hours');
  t.same(w2.db.prepare('SELECT * FROM agg_host ORDER BY h, cx, ho').all(), hostsBefore, 'counted again: the same hosts');

  // Purging the first month drops its counters with its rows.
  const r = w2.purge(1, Date.UTC(2026, 10, 3));
  t.same(r.partitions, [202610]);
  const left = w2.db.prepare('SELECT count(*) FROM agg_hour WHERE h < ?').pluck().get(Date.UTC(2026, 10, 1) / HOUR);
  t.equal(left, 0, 'no counter of the purged month left');
  w2.close();
  await same(t, old, t0, 'purged');
});
