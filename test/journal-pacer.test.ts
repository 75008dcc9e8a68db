import { getPriority } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';
import { Journal } from '../src/journal/journal.js';
import { Pacer, paceWords, setPaced } from '../src/journal/pacer.js';
import { verifyJournal } from '../src/journal/verify.js';
import type { WireEnd, WireRow } from '../src/journal/row.js';
import { JournalWriter } from '../src/journal/writer.js';
import { silentLogger } from '../src/log.js';
import { tmp } from './helpers.js';

const decision = { action: 'allow', profile: 'cycle3', category: null, rule: 'default', entry: null, matchKind: null, period: 'always', listVersion: 'v', policyVersion: 1 } as const;

t.test('a paced writer pauses once per slice of rows, an unpaced one never', async (t) => {
  const words = paceWords();
  // A zero slice: every look at the clock (each 16 rows) finds it used up.
  const pacer = new Pacer(words, 0, 0.001);
  setPaced(words, true);
  pacer.start();
  for (let i = 0; i < 160; i++) pacer.step();
  t.equal(pacer.pauses, 10, 'one pause per 16 rows once the slice is used up');
  setPaced(words, false);
  for (let i = 0; i < 160; i++) pacer.step();
  t.equal(pacer.pauses, 10, 'no pause while unpaced (catching up)');
  const long = new Pacer(words, 60_000, 0.001);
  setPaced(words, true);
  long.start();
  for (let i = 0; i < 1600; i++) long.step();
  t.equal(long.pauses, 0, 'no pause within a slice');
});

t.test('unpacing wakes a writer in the middle of a pause', async (t) => {
  const words = paceWords();
  setPaced(words, true);
  // The writer side in a thread of its own, pausing for up to 20 s.
  const src = `
    const { workerData, parentPort } = require('node:worker_threads');
    import('tsx/esm/api').then((m) => { m.register(); return import(workerData.url); }).then(({ Pacer }) => {
      const p = new Pacer(workerData.words, 0, 20000);
      p.start();
      parentPort.postMessage('pausing');
      const t0 = performance.now();
      for (let i = 0; i < 16; i++) p.step();
      parentPort.postMessage({ pauses: p.pauses, ms: performance.now() - t0 });
    });`;
  const w = new Worker(src, { eval: true, workerData: { words, url: new URL('../src/journal/pacer.ts', import.meta.url).href } });
  t.teardown(() => w.terminate());
  const result = await new Promise<{ pauses: number; ms: number }>((resolve, reject) => {
    w.on('error', reject);
    w.on('message', (m) => {
      if (m === 'pausing') setTimeout(() => setPaced(words, false), 100);
      else resolve(m);
    });
  });
  t.equal(result.pauses, 1);
  t.ok(result.ms >= 50 && result.ms < 10_000, `woken after ${result.ms.toFixed(0)} ms, not at the end of its 20 s pause`);
});

t.test('the writer looks at its pacer after every row and every tunnel end, and pausing changes nothing written', async (t) => {
  const dir = tmp();
  const words = paceWords();
  setPaced(words, true);
  const pacer = new Pacer(words, 0, 0.001);
  const w = new JournalWriter(join(dir, 'journal.db'), { pacer });
  const at = Date.now();
  const first = w.nextId();
  const rows: WireRow[] = Array.from({ length: 2000 }, (_, i) => {
    const connect = i % 2 === 1;
    // A tunnel's row is written when it opens, with no figures yet: its end brings them.
    return [first + i, at + i, '127.0.0.1', null, 'cycle3', connect ? 'CONNECT' : 'GET', connect ? 'connect' : 'http', 'h.test', 443, connect ? null : '/p', 200, connect ? 0 : 10, connect ? 0 : 20, connect ? 0 : 1, 'allow', null, 'default', 1];
  });
  w.write(rows);
  t.equal(pacer.pauses, 125, '2,000 rows: one pause per 16');
  const ends: WireEnd[] = rows.filter((r) => r[6] === 'connect').map((r) => [r[0], r[1], 100, 200, 5]);
  // The count runs on from the rows: 1,000 ends bring it to 3,000 looks, 187 pauses.
  w.write([], ends);
  t.equal(pacer.pauses, 187, '1,000 tunnel ends: one pause per 16 more');
  t.match(verifyJournal(w.db), { ok: true, rows: 2000, ends: 1000, problems: [] }, 'the chain verifies');
  w.close();
});

t.test('a background writer pauses in its transactions; one that cannot be boosted does not', { skip: process.platform !== 'linux' && 'per-thread nice is Linux only' }, async (t) => {
  const j = new Journal({ dir: tmp(), retentionDays: 365, keepQuery: false, overflow: 'block', queueMax: 100_000, flushMs: 50, log: silentLogger, writerNice: 19 });
  await j.open();
  t.teardown(() => j.close());
  const record = (i: number) => j.requestDone({ kind: 'request', time: Date.now(), client: '127.0.0.1', user: null, method: 'GET', scheme: 'http', host: `h${i % 50}.test`, port: 80, path: '/', decision, status: 200, bytesIn: 10, bytesOut: 20, durationMs: 1, problem: null, decisionSeconds: 0 });
  const p = j.writerPriority!;
  const background = p.canBoost && p.nice! > getPriority(0);
  t.equal(j.writerPaced, background, background ? `paced at nice ${p.nice}` : 'never paced when it cannot be boosted back');
  // 1,500 records: under the 2,048 that stop the pauses, and several milliseconds of its work.
  for (let i = 0; i < 1500; i++) record(i);
  t.equal(j.writerPaced, background);
  await j.flush();
  t.equal(j.health().writerBoosts, 0);
  t.equal(j.health().rowsWritten, 1500);
  if (background) t.ok(j.health().writerPauses > 0, `a writer at nice ${p.nice} paused ${j.health().writerPauses} times`);
  else t.equal(j.health().writerPauses, 0, 'a writer that cannot be boosted back never pauses');
  if (!background) return;
  // 17,000 at once: boosted, it catches up without pauses, and pauses again once done.
  for (let i = 0; i < 17_000; i++) record(i);
  t.equal(j.health().writerBoosts, 1, 'boosted from 16,384 records waiting');
  t.equal(j.writerPaced, false, 'no pauses while boosted');
  await j.flush();
  t.equal(j.writerPaced, true, 'paced again once written');
  t.equal(j.health().rowsWritten, 18_500);
});
