import Database from 'better-sqlite3';
import { join } from 'node:path';
import t from 'tap';
import { JournalQuery } from '../src/journal/reader.js';
import type { WireRow } from '../src/journal/row.js';
import { fromWire } from '../src/journal/row.js';
import { monthOf } from '../src/journal/schema.js';
import type { JournalFilter, JournalRow } from '../src/journal/types.js';
import { verifyJournal } from '../src/journal/verify.js';
import { JournalWriter } from '../src/journal/writer.js';
import { tmp } from './helpers.js';
import { verifyTampered } from './journal-helpers.js';

const DAY = 86_400_000;
const HOSTS = ['www.example.org', 'example.org', 'cdn.example.org', 'notexample.org', 'kids.test', 'games.test', 'a_b.test'];
const CLIENTS = ['10.0.0.1', '10.0.0.2', '10.0.0.3', 'fd00::7'];

/** Deterministic pseudo-random rows (xorshift), so a failure reproduces. */
function rowsAt(startId: number, times: number[], seed = 7): WireRow[] {
  let s = seed;
  const rnd = (n: number) => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
  return times.map((time, i) => {
    const connect = rnd(3) === 0;
    const block = rnd(4) === 0;
    return [
      startId + i,
      time,
      CLIENTS[rnd(CLIENTS.length)]!,
      rnd(5) === 0 ? 'eleve.dupont' : null,
      rnd(6) === 0 ? null : ['cycle3', 'college'][rnd(2)]!,
      connect ? 'CONNECT' : ['GET', 'POST'][rnd(2)]!,
      connect ? 'connect' : 'http',
      HOSTS[rnd(HOSTS.length)]!,
      connect ? (rnd(5) === 0 ? 8443 : 443) : rnd(5) === 0 ? 8080 : 80,
      connect ? null : `/p/${rnd(20)},"x"`,
      block ? 403 : 200,
      connect ? 0 : rnd(5000),
      connect ? 0 : rnd(500_000),
      connect ? 0 : rnd(3000),
      block ? 'block' : 'allow',
      block ? ['adult', 'games'][rnd(2)]! : null,
      block ? 'category' : 'default',
      1 + rnd(3),
    ] satisfies WireRow;
  });
}

const match = (r: JournalRow, f: JournalFilter): boolean =>
  (f.from === undefined || r.time >= f.from) &&
  (f.to === undefined || r.time < f.to) &&
  (f.client === undefined || r.client === f.client) &&
  (f.user === undefined || r.user === f.user) &&
  (f.host === undefined || r.host === f.host || r.host.endsWith(`.${f.host}`)) &&
  (f.decision === undefined || r.decision === f.decision) &&
  (f.profile === undefined || r.profile === f.profile) &&
  (f.category === undefined || r.category === f.category);

async function collect(it: AsyncIterable<string>): Promise<string> {
  let s = '';
  for await (const c of it) s += c;
  return s;
}

t.test('export, search and stats filters against a reference', async (t) => {
  const file = join(tmp(), 'journal.db');
  const w = new JournalWriter(file, { synchronous: 'OFF' });
  // Two months, written in batches of 50 a little after they start; some requests are long
  // (written long after they started), which the time-to-id bounds must survive.
  const start = Date.UTC(2026, 9, 31, 20, 0, 0);
  const all: WireRow[] = [];
  let id = w.nextId();
  for (let b = 0; b < 12; b++) {
    const base = start + b * 1_800_000;
    const times = Array.from({ length: 50 }, (_, i) => base + i * 30_000 - (i % 10 === 0 ? 3 * 3_600_000 : 0));
    const rows = rowsAt(id, times, 11 + b);
    id += rows.length;
    w.write(rows, [], base + 50 * 30_000 + 200);
    all.push(...rows);
  }
  // Tunnel ends, written later.
  const tunnels = all.filter((r) => r[6] === 'connect' && r[10] === 200).slice(0, 10);
  w.write([], tunnels.map((r) => [r[0], r[1], 111, 222, 333]), start + 7 * 3_600_000);
  w.close();
  const ended = new Set(tunnels.map((r) => r[0]));
  const expected = all.map(fromWire).map((r) => (ended.has(r.id) ? { ...r, bytesIn: 111, bytesOut: 222, durationMs: 333 } : r));
  t.ok(new Set(all.map((r) => monthOf(r[1]))).size === 2, 'rows span two months');

  const q = new JournalQuery(file, { timezone: 'Europe/Paris' });
  t.teardown(() => q.close());
  const filters: JournalFilter[] = [
    {},
    { from: start + 3_600_000, to: start + 4 * 3_600_000 },
    { client: '10.0.0.2' },
    { client: '10.0.0.2', from: start + 2 * 3_600_000, to: start + 5 * 3_600_000 },
    { client: '10.9.9.9' },
    { user: 'eleve.dupont' },
    { host: 'example.org' },
    { host: 'cdn.example.org' },
    { host: 'a_b.test' },
    { decision: 'block' },
    { decision: 'allow', profile: 'college' },
    { category: 'games', from: start },
    { from: Date.UTC(2026, 10, 1), to: Date.UTC(2026, 10, 1, 1) },
  ];
  for (const f of filters) {
    const want = expected.filter((r) => match(r, f)).sort((a, b) => a.id - b.id);
    const jsonl = await collect(q.export(f, 'jsonl'));
    const lines = jsonl.split('\n').filter(Boolean).map((l) => JSON.parse(l) as JournalRow & { chainHead?: string; rows?: number });
    t.match(lines.pop(), { chainHead: /^\d+:[0-9a-f]{64}$/, rows: want.length }, 'the last line gives the chain head');
    const got = lines.sort((a, b) => a.id - b.id);
    t.same(got, want, `export jsonl ${JSON.stringify(f)} (${want.length} rows)`);
    const csv = (await collect(q.export(f, 'csv'))).trimEnd().split('\n');
    t.equal(csv[0], 'id,time,client,user,profile,method,scheme,host,port,path,status,bytesIn,bytesOut,durationMs,decision,category,rule,policyVersion,retarget');
    t.match(csv.pop(), new RegExp(`^# chain head \\d+:[0-9a-f]{64} - ${want.length} rows - exported `), 'so does the CSV');
    t.equal(csv.length - 1, want.length, `export csv ${JSON.stringify(f)}`);
    const st = q.stats(f, 'hour');
    t.equal(st.reduce((n, r) => n + r.requests, 0), want.length, `stats total ${JSON.stringify(f)}`);
    t.equal(st.reduce((n, r) => n + r.blocked, 0), want.filter((r) => r.decision === 'block').length, `stats blocked ${JSON.stringify(f)}`);
  }

  t.test('csv quotes what needs quoting', async (t) => {
    const csv = await collect(q.export({ client: '10.0.0.1' }, 'csv'));
    t.match(csv, /,"\/p\/\d+,""x""",/);
    t.match(csv.split('\n')[1]!, /^\d+,2026-1\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z,10\.0\.0\.1,/);
  });

  t.test('search pages with cursors, both orders', async (t) => {
    const f: JournalFilter = { decision: 'allow' };
    const want = expected.filter((r) => match(r, f));
    for (const order of ['asc', 'desc'] as const) {
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = q.search(f, { limit: 37, cursor, order });
        seen.push(...page.rows.map((r) => r.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor && pages < 100);
      t.equal(seen.length, want.length, `${order}: every row once`);
      t.equal(new Set(seen).size, seen.length, `${order}: no duplicates`);
    }
    t.throws(() => q.search({}, { limit: 5, cursor: 'garbage' }), /invalid cursor/);
  });

  t.test('day buckets follow the configured time zone', async (t) => {
    const days = q.stats({}, 'day');
    for (const d of days) {
      const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d.bucket);
      t.equal(local, '00:00', `bucket ${new Date(d.bucket).toISOString()} is a Paris midnight`);
    }
    t.equal(days.reduce((n, r) => n + r.requests, 0), expected.length);
  });
});

t.test('one client over one day uses the client index within an id range', async (t) => {
  const file = join(tmp(), 'journal.db');
  const w = new JournalWriter(file, { synchronous: 'OFF' });
  w.write(rowsAt(1, [Date.UTC(2026, 5, 2)]), [], Date.UTC(2026, 5, 2));
  w.close();
  const q = new JournalQuery(file);
  t.teardown(() => q.close());
  const db = new Database(file, { readonly: true });
  t.teardown(() => db.close());
  const plan = db.prepare('EXPLAIN QUERY PLAN SELECT id FROM c_202606 c WHERE c.id > ? AND c.id <= ? AND c.t >= ? AND c.cl = ?').all(0, 10, 0, 1) as { detail: string }[];
  t.match(plan.map((p) => p.detail).join(' '), /USING INDEX c_202606_cl \(cl=\? AND rowid>\? AND rowid<\?\)/);
});

t.test('retention purge drops whole months, is recorded, and keeps the chain verifiable', async (t) => {
  const file = join(tmp(), 'journal.db');
  const w = new JournalWriter(file, { synchronous: 'OFF' });
  const now = Date.UTC(2026, 10, 22, 9);
  const old = now - 400 * DAY;
  const mid = now - 200 * DAY;
  let id = w.nextId();
  for (const time of [old, old + DAY, mid, now - DAY]) {
    const rows = rowsAt(id, Array.from({ length: 20 }, (_, i) => time + i * 1000));
    id += rows.length;
    w.write(rows, [], time + 30_000);
  }
  t.equal(w.purge(365, now - 300 * DAY).partitions.length, 0, 'nothing is old enough yet');
  const r = w.purge(365, now);
  t.same(r.partitions, [monthOf(old)], 'the month that ended more than 365 days ago is dropped');
  t.equal(r.rows, 40);
  const db = w.db;
  t.notOk(db.prepare(`SELECT name FROM sqlite_master WHERE name = 'c_${monthOf(old)}'`).get(), 'its table is gone');
  t.equal(db.prepare(`SELECT count(*) FROM c_${monthOf(mid)}`).pluck().get(), 20, 'younger months stay');
  const ev = db.prepare(`SELECT detail FROM events WHERE kind = 'purge' ORDER BY id DESC LIMIT 1`).pluck().get() as string;
  t.match(JSON.parse(ev), { retentionDays: 365, partitions: [monthOf(old)], rows: 40 }, 'the purge is recorded');
  // Rows keep coming after a purge; the chain stays whole.
  w.write(rowsAt(id, [now]), [], now + 100);
  t.match(verifyJournal(db), { ok: true, rows: 41, problems: [] });
  // Purging everything, then writing again: the anchor carries the chain across.
  w.purge(1, now + 400 * DAY);
  t.equal(db.prepare('SELECT count(*) FROM parts').pluck().get(), 0);
  w.write(rowsAt(w.nextId(), [now + 400 * DAY]), [], now + 400 * DAY + 100);
  t.match(verifyJournal(db), { ok: true, rows: 1 });
  t.ok(w.nextId() > id, 'ids never go back after a purge');
  w.close();
  const reopened = new JournalWriter(file);
  reopened.write(rowsAt(reopened.nextId(), [now + 401 * DAY]), [], now + 401 * DAY + 100);
  t.match(verifyJournal(reopened.db), { ok: true, rows: 2 }, 'reopened writer continues the chain');
  reopened.close();
});

t.test('verify reports changed, removed, reordered and added rows with their range', async (t) => {
  const dir = tmp();
  const file = join(dir, 'journal.db');
  const w = new JournalWriter(file, { synchronous: 'OFF' });
  const t0 = Date.UTC(2026, 10, 10, 8);
  let id = w.nextId();
  const batches: WireRow[][] = [];
  for (let b = 0; b < 5; b++) {
    const rows = rowsAt(id, Array.from({ length: 10 }, (_, i) => t0 + b * 60_000 + i * 1000), 3 + b);
    id += rows.length;
    batches.push(rows);
    w.write(rows, [], t0 + b * 60_000 + 20_000);
  }
  const tunnel = batches.flat().find((r) => r[6] === 'connect' && r[10] === 200)!;
  w.write([], [[tunnel[0], tunnel[1], 10, 20, 30]], t0 + 400_000);
  t.match(verifyJournal(w.db), { ok: true, entries: 6, rows: 50, ends: 1 }, 'untouched journal verifies');
  w.close();

  const tamper = (name: string, sql: string) => verifyTampered(file, name, sql);
  const p = monthOf(t0);
  const target = batches[2]![4]!;

  let r = tamper('changed', `UPDATE c_${p} SET bo = bo + 1 WHERE id = ${target[0]}`);
  t.equal(r.ok, false);
  t.match(r.problems, [{ kind: 'changed', entry: 3, firstId: batches[2]![0]![0], lastId: batches[2]![9]![0] }], 'changed row: its batch range');
  t.ok(r.problems[0]!.from! <= target[1] && r.problems[0]!.to! >= target[1], 'time range covers the row');

  r = tamper('removed', `DELETE FROM c_${p} WHERE id = ${target[0]}`);
  t.match(r.problems, [{ kind: 'removed', entry: 3, message: /1 of 10 row\(s\) removed/ }]);

  const [a, b] = [batches[1]![2]![0], batches[1]![3]![0]];
  r = tamper(
    'reordered',
    `UPDATE c_${p} SET id = -1 WHERE id = ${a}; UPDATE c_${p} SET id = ${a} WHERE id = ${b}; UPDATE c_${p} SET id = ${b} WHERE id = -1;`,
  );
  t.match(r.problems, [{ kind: 'changed', entry: 2, message: /changed or reordered/ }], 'swapped rows');

  r = tamper('host', `UPDATE d_host SET v = 'innocent.test' WHERE v = 'games.test'`);
  t.ok(r.problems.length >= 1 && r.problems.every((x) => x.kind === 'changed'), 'an edited interned host changes the rows that use it');

  r = tamper('link', `DELETE FROM chain WHERE id = 4; DELETE FROM c_${p} WHERE id BETWEEN ${batches[3]![0]![0]} AND ${batches[3]![9]![0]}`);
  t.match(r.problems, [{ kind: 'chain', entry: 5, message: /links 4\.\.4 are missing/ }], 'a removed batch breaks the chain');

  r = tamper('added', `INSERT INTO c_${p} SELECT ${id + 100}, t, cl, us, cx, ho, po, pa, k, bi, bo, du FROM c_${p} WHERE id = ${target[0]}`);
  t.match(r.problems, [{ kind: 'added', firstId: id + 100, lastId: id + 100 }], 'a row outside the chain');

  r = tamper('end', `UPDATE c_${p} SET bi = 9999 WHERE id = ${tunnel[0]}`);
  t.match(r.problems, [{ kind: 'changed', entry: 6 }], 'edited tunnel end figures');

  r = tamper('fake-end', `UPDATE c_${p} SET k = k + 4096 WHERE id = (SELECT id FROM c_${p} WHERE ((k >> 10) & 1) = 1 AND ((k >> 12) & 1) = 0 LIMIT 1)`);
  t.match(r.problems, [{ kind: 'added', message: /tunnel end/ }], 'an end nobody wrote');
});
