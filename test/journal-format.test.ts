import Database from 'better-sqlite3';
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BatchDecoder, BatchEncoder } from '../src/journal/batch.js';
import { Journal } from '../src/journal/journal.js';
import { JournalQuery } from '../src/journal/reader.js';
import { fromWire, type WireEnd, type WireRow } from '../src/journal/row.js';
import { monthOf } from '../src/journal/schema.js';
import type { JournalRow } from '../src/journal/types.js';
import { verifyJournal } from '../src/journal/verify.js';
import { JournalWriter } from '../src/journal/writer.js';
import { silentLogger } from '../src/log.js';
import { tmp } from './helpers.js';
import { verifyTampered } from './journal-helpers.js';
import { LegacyJournalWriter } from './journal-legacy.js';

const T0 = Date.UTC(2026, 10, 10, 8);

/** Rows with awkward strings: separators, digits and colons, non-ASCII, newlines, nulls. */
function rows(startId: number, n: number, at: number): WireRow[] {
  const hosts = ['www.example.org', 'é.test', '10:20.test', 'a,b.test'];
  const paths = ['/x', '/1:2/é', '/a,b\n/c', '/🙂?q=1'];
  return Array.from({ length: n }, (_, i) => {
    const connect = i % 3 === 0;
    const block = i % 4 === 1;
    return [
      startId + i,
      at + i * 1000,
      `10.0.0.${1 + (i % 3)}`,
      i % 5 === 0 ? 'élève:1' : null,
      i % 7 === 0 ? null : 'cycle3',
      connect ? 'CONNECT' : 'GET',
      connect ? 'connect' : 'http',
      hosts[i % hosts.length]!,
      connect ? 443 : i % 2 ? 8080 : 80,
      connect ? null : paths[i % paths.length]!,
      block ? 403 : 200,
      connect ? 0 : 100 + i,
      connect ? 0 : 2000 + i,
      connect ? 0 : i,
      block ? 'block' : 'allow',
      block ? 'games' : null,
      block ? 'category' : 'default',
      3,
    ] satisfies WireRow;
  });
}

async function exported(file: string): Promise<JournalRow[]> {
  const q = new JournalQuery(file);
  let s = '';
  for await (const c of q.export({}, 'jsonl')) s += c;
  q.close();
  const lines = s.split('\n').filter(Boolean).map((l) => JSON.parse(l) as JournalRow & { chainHead?: string });
  // The last line is the chain head the export reached, not a row.
  if (!lines.pop()?.chainHead) throw new Error('the export does not end with the chain head');
  return lines;
}

t.test('a schema-1 file (JSON-line links) still verifies, and takes format-2 links after its own', async (t) => {
  const file = join(tmp(), 'journal.db');
  const legacy = new LegacyJournalWriter(file, { synchronous: 'OFF' });
  const old1 = rows(1, 12, T0);
  const old2 = rows(13, 12, T0 + 60_000);
  legacy.write(old1, [], T0 + 20_000);
  legacy.write(old2, [[old1[0]![0], old1[0]![1], 7, 8, 9]], T0 + 80_000);
  legacy.close();
  let db = new Database(file, { readonly: true });
  t.match(verifyJournal(db), { ok: true, entries: 2, rows: 24, ends: 1 }, 'the old file verifies as it is (read-only, no format column)');
  db.close();

  const w = new JournalWriter(file, { synchronous: 'OFF' });
  t.equal(w.nextId(), 25, 'ids continue');
  const new1 = rows(25, 12, T0 + 120_000);
  w.write(new1, [[old2[0]![0], old2[0]![1], 10, 11, 12]], T0 + 140_000);
  // Ends out of id order: the link lists them sorted.
  w.write(rows(37, 5, T0 + 180_000), [[new1[3]![0], new1[3]![1], 1, 2, 3], [new1[0]![0], new1[0]![1], 4, 5, 6]], T0 + 200_000);
  t.same(w.db.prepare('SELECT f FROM chain ORDER BY id').pluck().all(), [null, null, 2, 2], 'old links keep format 1, new ones are format 2');
  t.equal(w.db.prepare(`SELECT v FROM meta WHERE k = 'schema'`).pluck().get(), 2);
  t.match(verifyJournal(w.db), { ok: true, entries: 4, rows: 41, ends: 4, problems: [] }, 'mixed formats verify');
  w.close();

  const got = await exported(file);
  t.equal(got.length, 41);
  t.same(got.find((r) => r.id === 3), fromWire(old1[2]!), 'a schema-1 row reads back unchanged');
  t.same(got.find((r) => r.id === 27), fromWire(new1[2]!), 'a format-2 row with awkward strings reads back unchanged');
  t.match(got.find((r) => r.id === 25), { bytesIn: 4, bytesOut: 5, durationMs: 6 }, 'a tunnel end');

  const p = monthOf(T0);
  t.match(verifyTampered(file, 'v1-row', `UPDATE c_${p} SET bo = bo + 1 WHERE id = 5`).problems, [{ kind: 'changed', entry: 1 }], 'a changed row under a format-1 link');
  t.match(verifyTampered(file, 'v2-row', `UPDATE c_${p} SET bo = bo + 1 WHERE id = 30`).problems, [{ kind: 'changed', entry: 3, firstId: 25, lastId: 36 }], 'a changed row under a format-2 link');
  t.match(verifyTampered(file, 'v2-end', `UPDATE c_${p} SET du = 99 WHERE id = ${new1[3]![0]}`).problems, [{ kind: 'changed', entry: 4 }], 'changed tunnel end figures (format 2)');
  t.match(verifyTampered(file, 'v2-status', `UPDATE c_${p} SET k = k + 1 WHERE id = 26`).problems, [{ kind: 'changed', entry: 3 }], 'a changed status');
  t.match(verifyTampered(file, 'v2-port', `UPDATE c_${p} SET po = NULL WHERE id = 26`).problems, [{ kind: 'changed', entry: 3 }], 'a changed port');
  t.match(verifyTampered(file, 'downgrade', 'UPDATE chain SET f = NULL WHERE id = 3').problems, [{ kind: 'changed', entry: 3 }], 'a link relabelled as format 1');
  t.match(verifyTampered(file, 'unknown', 'UPDATE chain SET f = 9 WHERE id = 4').problems, [{ kind: 'changed', entry: 4, message: /unknown line format \(9\)/ }]);
  t.match(verifyTampered(file, 'ctx', `UPDATE d_ctx SET v = '["cycle1",null,3]' WHERE v = '["cycle3",null,3]'`).problems.map((x) => x.kind), ['changed', 'changed', 'changed', 'changed'], 'an edited profile changes every link that uses it');
});

t.test('format 2 cannot be fooled by moving text between adjacent strings', async (t) => {
  const file = join(tmp(), 'journal.db');
  const w = new JournalWriter(file, { synchronous: 'OFF' });
  const r = rows(1, 1, T0)[0]!;
  r[3] = 'ab';
  r[5] = 'GET';
  w.write([r], [], T0 + 1000);
  w.close();
  // 'ab' + 'GET' and 'a' + 'bGET' join to the same text; the length prefixes tell them apart.
  const report = verifyTampered(file, 'shift', `UPDATE d_user SET v = 'a' WHERE v = 'ab'; UPDATE d_method SET v = 'bGET' WHERE v = 'GET';`);
  t.match(report.problems, [{ kind: 'changed', entry: 1 }]);
});

t.test('batches survive table resets: strings and decisions are sent again, rows stay exact', async (t) => {
  const file = join(tmp(), 'journal.db');
  const w = new JournalWriter(file, { synchronous: 'OFF' });
  // Tables of 2 to 3 entries: a reset every few rows, some inside a batch, some between batches.
  const enc = new BatchEncoder(7, [3, 2, 2, 3, 2, 2]);
  const dec = new BatchDecoder();
  const all = rows(1, 60, T0);
  const decisions = new Map<string, { action: 'allow' | 'block'; profile: string | null; category: string | null; rule: string; policyVersion: number }>();
  let resets = 0;
  const pending = [];
  for (const r of all) {
    const key = JSON.stringify([r[14], r[4], r[15], r[16], r[17]]);
    let d = decisions.get(key);
    if (!d) decisions.set(key, (d = { action: r[14], profile: r[4], category: r[15], rule: r[16], policyVersion: r[17] }));
    enc.row(r[0], r[1], r[6] === 'connect', r[2], r[3], d, r[5], r[7], r[8], r[9], r[10], r[11], r[12], r[13]);
    if (enc.hasSealed) {
      const m = enc.next()!;
      if (m.reset) resets++;
      pending.push(dec.decode(m));
      // Several batches per transaction, as the worker merges what waits.
      if (pending.length === 3) w.writeBatches(pending.splice(0));
    }
  }
  for (let m = enc.next(); m; m = enc.next()) {
    if (m.reset) resets++;
    pending.push(dec.decode(m));
  }
  w.writeBatches(pending);
  t.ok(resets >= 5, `tables were reset (${resets} times)`);
  t.match(verifyJournal(w.db), { ok: true, rows: 60 });
  w.close();
  t.same(await exported(file), all.map(fromWire), 'every row reads back as recorded');
});

t.test('a failed transaction is retried with the tables its batches were sent against', async (t) => {
  const file = join(tmp(), 'journal.db');
  const w = new JournalWriter(file, { synchronous: 'OFF' });
  const enc = new BatchEncoder(6);
  const dec = new BatchDecoder();
  const tuple = (r: WireRow) => enc.rowOfTuple(r[0], r[1], r[6] === 'connect', r[2], r[3], [r[14], r[4], r[15], r[16], r[17]], r[5], r[7], r[8], r[9], r[10], r[11], r[12], r[13]);
  const good = rows(1, 6, T0);
  for (const r of good) tuple(r);
  const a = dec.decode(enc.next()!);
  // A second batch whose ids go back fails the transaction after the first made its dictionary ids.
  for (const r of rows(2, 2, T0 + 10_000)) tuple(r);
  const b = dec.decode(enc.next()!);
  t.throws(() => w.writeBatches([a, b]), /increasing ids/);
  // Other strings take the dictionary ids the rolled-back transaction had made (in another month:
  // within a month, ids only grow from link to link).
  const other = rows(100, 3, T0 + 40 * 86_400_000).map((r): WireRow => {
    r[2] = `192.168.0.${r[0]}`;
    r[7] = `other${r[0]}.test`;
    r[4] = 'staff';
    return r;
  });
  w.write(other, [], T0 + 40 * 86_400_000 + 5000);
  w.writeBatches([a]);
  t.match(verifyJournal(w.db), { ok: true, rows: 9 });
  w.close();
  const got = await exported(file);
  t.same(got.filter((r) => r.id < 100), good.map(fromWire), 'the retried rows name their own strings, not stale ids');
  t.same(got.filter((r) => r.id >= 100), other.map(fromWire));
});

t.test('one transaction across a month boundary, with tunnel ends of both months: every row exact', async (t) => {
  const file = join(tmp(), 'journal.db');
  const w = new JournalWriter(file);
  // 37 rows in November, 21 in December, and the ends of three November tunnels and one December
  // tunnel written in the same transaction as their rows.
  const nov = rows(1, 37, T0);
  const dec = rows(38, 21, Date.UTC(2026, 11, 3, 9));
  const ends: WireEnd[] = [nov[0]!, nov[33]!, dec[0]!, nov[18]!].map((r, k) => [r[0], r[1], 500 + k, 600 + k, 70 + k]);
  t.ok(ends.every((e) => [...nov, ...dec].find((r) => r[0] === e[0])![6] === 'connect'), 'the ended rows are tunnels');
  t.match(w.write([...nov, ...dec], ends, T0 + 60 * 86_400_000), { rows: 58, ends: 4, skippedEnds: 0 });
  t.match(verifyJournal(w.db), { ok: true, rows: 58 });
  w.close();
  const got = await exported(file);
  const want = [...nov, ...dec].map((r) => {
    const e = ends.find((x) => x[0] === r[0]);
    return e ? fromWire([...r.slice(0, 11), e[2], e[3], e[4], ...r.slice(14)] as WireRow) : fromWire(r);
  });
  t.same(got, want, 'every row exact, ended tunnels with their figures');
});

t.test('figures that are not counts (NaN, negative) are written as 0, not retried forever', async (t) => {
  const dir = tmp();
  const j = new Journal({ dir, retentionDays: 365, keepQuery: false, overflow: 'block', queueMax: 1000, flushMs: 20, retryMs: 50, log: silentLogger });
  await j.open();
  t.teardown(() => j.close());
  const decision = { action: 'allow', profile: 'cycle3', category: null, rule: 'default', entry: null, matchKind: null, period: 'always', listVersion: 'v', policyVersion: 1 } as const;
  const base = { kind: 'request', time: Date.now(), client: '127.0.0.1', user: null, method: 'GET', scheme: 'http', host: 'odd.test', port: 80, path: '/', decision, status: 200, problem: null, decisionSeconds: 0 } as const;
  j.requestDone({ ...base, bytesIn: NaN, bytesOut: -5, durationMs: -3 });
  j.requestDone({ ...base, bytesIn: 7, bytesOut: 8, durationMs: 9 });
  const done = await Promise.race([j.flush().then(() => true), new Promise((r) => setTimeout(() => r(false), 3000))]);
  t.ok(done, 'both rows committed');
  t.match(j.health(), { rowsWritten: 2, lastError: null });
  const got = await exported(join(dir, 'journal.db'));
  t.same(got.map((r) => [r.bytesIn, r.bytesOut, r.durationMs]), [[0, 0, 0], [7, 8, 9]]);
});

t.test('the writer thread runs at its own nice value, the proxy thread keeps the process one', { skip: process.platform !== 'linux' && 'per-thread nice is Linux only' }, async (t) => {
  const j = new Journal({ dir: tmp(), retentionDays: 365, keepQuery: false, overflow: 'block', queueMax: 1000, flushMs: 50, log: silentLogger, writerNice: 7 });
  await j.open();
  t.teardown(() => j.close());
  const nice = (tid: number) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
  t.ok(j.writerTid && j.writerTid !== process.pid, 'the writer reports its thread id');
  // A writer that could not be given its priority back is never set above nice 5.
  const want = j.writerPriority!.canBoost ? 7 : 5;
  if (getPriority(0) <= want) t.equal(nice(j.writerTid!), want, `writer thread at nice ${want} (boost ${j.writerPriority!.canBoost ? 'possible' : 'not possible'})`);
  else t.equal(nice(j.writerTid!), getPriority(0), 'a process already nicer is left as it is');
  t.equal(nice(process.pid), getPriority(0), 'main thread unchanged');
});

t.test('a nice writer gets the process priority while records pile up, and its own back once they are written', { skip: process.platform !== 'linux' && 'per-thread nice is Linux only' }, async (t) => {
  const j = new Journal({ dir: tmp(), retentionDays: 365, keepQuery: false, overflow: 'block', queueMax: 100_000, flushMs: 50, log: silentLogger, writerNice: 19 });
  await j.open();
  t.teardown(() => j.close());
  const nice = (tid: number) => Number(readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
  const p = j.writerPriority!;
  const base = getPriority(0);
  const decision = { action: 'allow', profile: 'cycle3', category: null, rule: 'default', entry: null, matchKind: null, period: 'always', listVersion: 'v', policyVersion: 1 } as const;
  const record = (i: number) => j.requestDone({ kind: 'request', time: Date.now(), client: '127.0.0.1', user: null, method: 'GET', scheme: 'http', host: `h${i % 50}.test`, port: 80, path: '/', decision, status: 200, bytesIn: 10, bytesOut: 20, durationMs: 1, problem: null, decisionSeconds: 0 });
  if (!p.canBoost) {
    // Without the right to lower a nice value again, the writer stays at 5 and is never boosted.
    t.equal(nice(j.writerTid!), Math.max(5, base));
    for (let i = 0; i < 5000; i++) record(i);
    await j.flush();
    t.equal(j.health().writerBoosts, 0);
    return;
  }
  t.equal(nice(j.writerTid!), Math.max(19, base), 'writer at nice 19 while it keeps up');
  // 17,000 records in one turn of the loop: more than the 16,384 that call for a boost.
  for (let i = 0; i < 17_000; i++) record(i);
  t.equal(nice(j.writerTid!), base, 'boosted to the process priority');
  t.equal(j.health().writerBoosts, 1);
  await j.flush();
  t.equal(nice(j.writerTid!), Math.max(19, base), 'back to nice 19 once written');
  for (let i = 0; i < 100; i++) record(i);
  await j.flush();
  t.equal(j.health().writerBoosts, 1, 'a trickle does not boost');
  t.equal(j.health().rowsWritten, 17_100);
});

t.test('with a small queueMax the writer is boosted at half of it, before new work is refused', { skip: process.platform !== 'linux' && 'per-thread nice is Linux only' }, async (t) => {
  const j = new Journal({ dir: tmp(), retentionDays: 365, keepQuery: false, overflow: 'block', queueMax: 1000, flushMs: 50, log: silentLogger, writerNice: 19 });
  await j.open();
  t.teardown(() => j.close());
  if (!j.writerPriority!.canBoost) {
    t.pass('no right to boost here');
    return;
  }
  const decision = { action: 'allow', profile: 'cycle3', category: null, rule: 'default', entry: null, matchKind: null, period: 'always', listVersion: 'v', policyVersion: 1 } as const;
  const record = () => j.requestDone({ kind: 'request', time: Date.now(), client: '127.0.0.1', user: null, method: 'GET', scheme: 'http', host: 'h.test', port: 80, path: '/', decision, status: 200, bytesIn: 1, bytesOut: 2, durationMs: 1, problem: null, decisionSeconds: 0 });
  for (let i = 0; i < 499; i++) record();
  t.equal(j.health().writerBoosts, 0, '499 waiting: not yet');
  record();
  t.equal(j.health().writerBoosts, 1, '500 waiting: boosted');
  t.ok(j.admit(), 'still admitting new work');
  await j.flush();
  t.equal(j.writerPaced, true, 'back in the background, paced');
});
