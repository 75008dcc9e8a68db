/**
 * Connection journal figures (issue 4), each against a naive schema measured in the same run
 * (one table, text columns, one (client, time) index, same batches, same WAL + synchronous=FULL):
 * - storage: rows/s written in batches of 5,000 (20,000 rows/s flushed every 250 ms), bytes/row on
 *   disk (indexes, dictionaries and chain included); the schema-1 writer (test/journal-legacy.ts:
 *   JSON per row for the chain and the context key) on the same batches as the "before";
 * - end to end: rows/s through the Journal observer, its worker thread and back-pressure, with the
 *   CPU of each thread per row (issue 7): the proxy thread's hand-off and the writer thread, now
 *   (binary batches, chain format 2) and before (tuples by structured clone, schema-1 writer);
 * - event-loop lag p99 of a live proxy (real requests on loopback) while 20,000 rows/s are recorded,
 *   against the same proxy and feed with no journal, and with the naive schema written in-thread;
 * - export (CSV) rows/s, and one client over one day on a year of data.
 * Loopback only, every phase bounded.
 *
 *   npm run bench:journal      (ROWS=1000000 LAG_SECONDS=5 REQ_RATE=500 to change the phases;
 *                               ONLY=lag for the event-loop phase alone, ONLY=handoff for the
 *                               end-to-end and per-thread CPU phase alone, ONLY=nice for the
 *                               writer-priority phase alone; SCALE_ROWS=N for a
 *                               bigger year, compact schema only)
 */
import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { resolveConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { Journal } from '../../src/journal/journal.js';
import { csvLine, JournalQuery } from '../../src/journal/reader.js';
import type { WireEnd, WireRow } from '../../src/journal/row.js';
import { JournalWriter } from '../../src/journal/writer.js';
import { BatchDecoder, BatchEncoder, type DecodedBatch } from '../../src/journal/batch.js';
import { silentLogger } from '../../src/log.js';
import { LegacyJournalWriter } from '../journal-legacy.js';
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import type { ConnectionRecord, ProxyObserver } from '../../src/proxy/events.js';
import { DEAD_DNS, TEST_LISTS, tmp, writeLists } from '../helpers.js';

const ROWS = Number(process.env.ROWS ?? 1_000_000);
const BATCH = 5000;
const LAG_SECONDS = Number(process.env.LAG_SECONDS ?? 5);
const RATE = Number(process.env.FEED_RATE ?? 20_000);
const REQ_RATE = Number(process.env.REQ_RATE ?? 500);
const YEAR = 365 * 86_400_000;
const START = Date.UTC(2025, 10, 1);

// ---- synthetic traffic: 800 clients, Zipf-like hosts, 70 % tunnels, 10 % blocked -------------
let seed = 12345;
const rnd = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};
const pick = <T>(a: readonly T[]) => a[Math.floor(rnd() * a.length)]!;
const zipf = <T>(a: readonly T[]) => a[Math.floor(a.length * rnd() ** 3)]!;
const CLIENTS = Array.from({ length: 800 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
const HOSTS = Array.from({ length: 5000 }, (_, i) => (i % 3 ? `www.site${i}.example` : `cdn${i % 50}.static${i}.example`));
const PATHS = Array.from({ length: 3000 }, (_, i) => (i % 4 ? `/assets/img/${i}.png` : `/articles/${i}/page.html`));
const PROFILES = ['cycle1', 'cycle2', 'cycle3', 'college', 'staff'];
const CATEGORIES = ['adult', 'games', 'social_networks', 'malware', 'chat', 'audio-video'];

function makeRow(id: number, time: number): WireRow {
  const tunnel = rnd() < 0.7;
  const block = rnd() < 0.1;
  const client = CLIENTS[Math.floor(rnd() * CLIENTS.length)]!;
  const profile = PROFILES[client.charCodeAt(client.length - 1) % PROFILES.length]!;
  return [
    id,
    time,
    client,
    null,
    profile,
    tunnel ? 'CONNECT' : rnd() < 0.9 ? 'GET' : 'POST',
    tunnel ? 'connect' : 'http',
    zipf(HOSTS),
    tunnel ? 443 : 80,
    tunnel ? null : rnd() < 0.2 ? `/search/${Math.floor(rnd() * 1e9)}` : zipf(PATHS),
    block ? 403 : 200,
    tunnel || block ? 0 : 300 + Math.floor(rnd() * 2000),
    tunnel || block ? 0 : Math.floor(rnd() * 200_000),
    tunnel || block ? 0 : Math.floor(rnd() * 800),
    block ? 'block' : 'allow',
    block ? pick(CATEGORIES) : null,
    block ? 'category' : 'default',
    7,
  ];
}

// ---- the naive schema -----------------------------------------------------------------------
class NaiveStore {
  readonly db: Database.Database;
  private readonly ins: Database.Statement;
  private readonly end: Database.Statement;
  constructor(readonly file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(`CREATE TABLE log (id INTEGER PRIMARY KEY, time TEXT NOT NULL, client TEXT NOT NULL, user TEXT, profile TEXT, method TEXT NOT NULL,
      scheme TEXT NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL, path TEXT, status INTEGER NOT NULL, bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
      duration_ms INTEGER NOT NULL, decision TEXT NOT NULL, category TEXT, rule TEXT NOT NULL, policy_version INTEGER NOT NULL);
      CREATE INDEX log_client_time ON log (client, time);`);
    this.ins = this.db.prepare('INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    this.end = this.db.prepare('UPDATE log SET bytes_in = ?, bytes_out = ?, duration_ms = ? WHERE id = ?');
  }
  write = (rows: readonly WireRow[], ends: readonly WireEnd[]) =>
    this.db.transaction(() => {
      for (const r of rows) this.ins.run(r[0], new Date(r[1]).toISOString(), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15], r[16], r[17]);
      for (const e of ends) this.end.run(e[2], e[3], e[4], e[0]);
    }).immediate();
  close() {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.db.close();
  }
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

async function main() {
  if (process.env.LAG_MODE) {
    console.log(JSON.stringify(await lagPhase(process.env.LAG_MODE as LagMode)));
    return;
  }
  if (process.env.ONLY === 'lag') return lagTable();
  if (process.env.ONLY === 'handoff') return handoffTable(tmp('vigie-bench-journal-'));
  if (process.env.ONLY === 'nice') return niceTable();
  if (process.env.SCALE_ROWS) return scale(Number(process.env.SCALE_ROWS));
  const dir = tmp('vigie-bench-journal-');
  console.log(`\nVigie journal — ${new Date().toISOString()} — node ${process.version}, ${fmt(ROWS)} rows over one year, batches of ${BATCH}, WAL synchronous=FULL, temp dir ${dir}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${availableParallelism()} cores`);

  // ---- 1. storage: the same batches into both schemas ----------------------------------------
  const compactFile = join(dir, 'compact', 'journal.db');
  const writer = new JournalWriter(compactFile);
  const naive = new NaiveStore(join(dir, 'naive.db'));
  const legacy = new LegacyJournalWriter(join(dir, 'legacy', 'journal.db'));
  let tCompact = 0;
  let tNaive = 0;
  let tLegacy = 0;
  let cCompact = 0;
  let cNaive = 0;
  let cLegacy = 0;
  let cEncode = 0;
  const encoder = new BatchEncoder(BATCH + 5000);
  const decoder = new BatchDecoder();
  const encodeTuples = (rows: WireRow[], ends: WireEnd[]): DecodedBatch[] => {
    for (const r of rows) encoder.rowOfTuple(r[0], r[1], r[6] === 'connect', r[2], r[3], [r[14], r[4], r[15], r[16], r[17]], r[5], r[7], r[8], r[9], r[10], r[11], r[12], r[13]);
    for (const e of ends) encoder.end(e[0], e[1], e[2], e[3], e[4]);
    const out: DecodedBatch[] = [];
    for (let m = encoder.next(); m; m = encoder.next()) out.push(decoder.decode(m));
    return out;
  };
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  let id = writer.nextId();
  let pendingEnds: WireEnd[] = [];
  for (let done = 0; done < ROWS; done += BATCH) {
    const n = Math.min(BATCH, ROWS - done);
    const rows: WireRow[] = [];
    for (let i = 0; i < n; i++) rows.push(makeRow(id++, START + Math.floor(((done + i) / ROWS) * YEAR)));
    const now = rows[rows.length - 1]![1] + 300;
    // The proxy encodes on its own thread (measured in the end-to-end phase); here only the write counts.
    let c0 = cpu();
    const batches = encodeTuples(rows, pendingEnds);
    cEncode += cpu() - c0;
    let t0 = performance.now();
    c0 = cpu();
    writer.writeBatches(batches, now);
    tCompact += performance.now() - t0;
    cCompact += cpu() - c0;
    t0 = performance.now();
    c0 = cpu();
    naive.write(rows, pendingEnds);
    tNaive += performance.now() - t0;
    cNaive += cpu() - c0;
    t0 = performance.now();
    c0 = cpu();
    legacy.write(rows, pendingEnds, now);
    tLegacy += performance.now() - t0;
    cLegacy += cpu() - c0;
    // Tunnels of this batch close and are ended with the next one.
    pendingEnds = rows.filter((r) => r[6] === 'connect' && r[10] === 200).map((r) => [r[0], r[1], 500 + Math.floor(rnd() * 5000), Math.floor(rnd() * 2e6), Math.floor(rnd() * 60_000)]);
  }
  writer.write([], pendingEnds, START + YEAR + 1000);
  const tc = performance.now();
  writer.close();
  const closeCompact = performance.now() - tc;
  naive.write([], pendingEnds);
  naive.close();
  legacy.write([], pendingEnds, START + YEAR + 1000);
  legacy.close();
  const size = (f: string) => statSync(f).size;
  const bCompact = size(compactFile);
  const bNaive = size(naive.file);

  console.log(`\n| storage (same batches) | compact (this journal) | naive | compact/naive | schema-1 writer (before) | before/now |`);
  console.log(`|---|---:|---:|---:|---:|---:|`);
  console.log(`| rows/s written | **${fmt(ROWS / (tCompact / 1000))}** | ${fmt(ROWS / (tNaive / 1000))} | ${ratio(tNaive, tCompact)} faster | ${fmt(ROWS / (tLegacy / 1000))} | ${ratio(tLegacy, tCompact)} |`);
  console.log(`| rows per CPU-second (less sensitive to other load on the machine) | ${fmt(ROWS / (cCompact / 1000))} | ${fmt(ROWS / (cNaive / 1000))} | ${ratio(cNaive, cCompact)} less CPU | ${fmt(ROWS / (cLegacy / 1000))} | ${ratio(cLegacy, cCompact)} |`);
  console.log(`| CPU µs per row written | **${((cCompact * 1000) / ROWS).toFixed(2)}** | ${((cNaive * 1000) / ROWS).toFixed(2)} | | ${((cLegacy * 1000) / ROWS).toFixed(2)} | |`);
  console.log(`(compact: rows given as tuples were first encoded into batches, ${((cEncode * 1000) / ROWS).toFixed(2)} µs/row, not counted above; the proxy encodes its records instead, see the end-to-end phase)`);
  console.log(`| bytes/row on disk (indexes, dictionaries, chain included) | **${fmt(bCompact / ROWS, 1)}** | ${fmt(bNaive / ROWS, 1)} | ${ratio(bCompact, bNaive)} |`);
  console.log(`| MiB per million rows | ${fmt(bCompact / 1048576 / (ROWS / 1e6), 1)} | ${fmt(bNaive / 1048576 / (ROWS / 1e6), 1)} | |`);
  console.log(`(compact close with checkpoint: ${fmt(closeCompact)} ms)`);

  // ---- 2. export and the one-client-one-day query -------------------------------------------
  const q = new JournalQuery(compactFile);
  let t0 = performance.now();
  let exported = 0;
  let bytesOut = 0;
  for await (const chunk of q.export({}, 'csv')) {
    bytesOut += chunk.length;
    for (let i = chunk.indexOf('\n'); i !== -1; i = chunk.indexOf('\n', i + 1)) exported++;
  }
  const tExport = performance.now() - t0;
  exported--; // header
  const ndb = new Database(naive.file, { readonly: true });
  const page = ndb.prepare('SELECT * FROM log WHERE id > ? ORDER BY id LIMIT 2000');
  t0 = performance.now();
  let nExported = 0;
  let after = 0;
  for (;;) {
    const got = page.all(after) as Record<string, unknown>[];
    if (!got.length) break;
    let out = '';
    for (const r of got) {
      out += csvLine({ id: r.id as number, time: Date.parse(r.time as string), client: r.client as string, user: r.user as string | null, profile: r.profile as string | null, method: r.method as string, scheme: r.scheme as 'http', host: r.host as string, port: r.port as number, path: r.path as string | null, status: r.status as number, bytesIn: r.bytes_in as number, bytesOut: r.bytes_out as number, durationMs: r.duration_ms as number, decision: r.decision as 'allow', category: r.category as string | null, rule: r.rule as string, policyVersion: r.policy_version as number, retarget: null }) + '\n';
    }
    nExported += got.length;
    after = got[got.length - 1]!.id as number;
    if (out.length < 0) console.log(out);
  }
  const tNaiveExport = performance.now() - t0;
  if (exported !== ROWS || nExported !== ROWS) throw new Error(`export counted ${exported} / ${nExported}, expected ${ROWS}`);

  const days = Array.from({ length: 25 }, (_, i) => START + Math.floor(((i + 0.5) / 25) * YEAR / 86_400_000) * 86_400_000);
  const clientQ: number[] = [];
  const naiveQ: number[] = [];
  let found = 0;
  let nFound = 0;
  const nq = ndb.prepare('SELECT * FROM log WHERE client = ? AND time >= ? AND time < ? ORDER BY id');
  for (const [i, day] of days.entries()) {
    const client = CLIENTS[(i * 37) % CLIENTS.length]!;
    t0 = performance.now();
    found += q.search({ client, from: day, to: day + 86_400_000 }, { limit: 10_000 }).rows.length;
    clientQ.push(performance.now() - t0);
    t0 = performance.now();
    nFound += nq.all(client, new Date(day).toISOString(), new Date(day + 86_400_000).toISOString()).length;
    naiveQ.push(performance.now() - t0);
  }
  if (found !== nFound) throw new Error(`client/day query found ${found} rows, naive ${nFound}`);
  clientQ.sort((a, b) => a - b);
  naiveQ.sort((a, b) => a - b);
  ndb.close();
  q.close();
  console.log(`\n| reading | compact | naive | compact/naive |`);
  console.log(`|---|---:|---:|---:|`);
  console.log(`| export CSV, rows/s (all ${fmt(ROWS)} rows, ${fmt(bytesOut / 1048576, 1)} MiB) | **${fmt(ROWS / (tExport / 1000))}** | ${fmt(ROWS / (tNaiveExport / 1000))} | ${ratio(tNaiveExport, tExport)} faster |`);
  console.log(`| one client, one day, over a year: median ms (25 queries, ${found} rows) | **${clientQ[12]!.toFixed(2)}** | ${naiveQ[12]!.toFixed(2)} | |`);
  console.log(`| same, max ms | ${clientQ[24]!.toFixed(2)} | ${naiveQ[24]!.toFixed(2)} | |`);

  await handoffTable(dir);
  await lagTable();
  await niceTable();
}

/** 3. end to end through the observer and the worker thread, now and before. */
async function handoffTable(dir: string) {
  const E2E = Math.min(ROWS, 300_000);
  const pool = e2eRecords(65_536);
  for (const tunnels of [false, true]) {
    const handoffs: HandoffResult[] = [];
    // Interleaved, twice each: other jobs on the machine come and go.
    for (let round = 0; round < 2; round++) {
      handoffs.push(await handoff('now', join(dir, `e2e-now-${tunnels}-${round}`), pool, E2E, tunnels));
      handoffs.push(await handoff('before', join(dir, `e2e-before-${tunnels}-${round}`), pool, E2E, tunnels));
    }
    const best = (k: 'now' | 'before', f: (h: HandoffResult) => number) => Math.min(...handoffs.filter((h) => h.kind === k).map(f));
    const what = tunnels ? `${fmt(E2E)} connections, 70 % tunnels: a row when it opens, its end when it closes` : `${fmt(E2E)} rows, all through requestDone (no tunnel ends), as this phase measured before issue 7`;
    console.log(`\n| end to end (observer → bounded queue → worker thread → SQLite), ${what}; back-pressure by admit() | rows/s | writer thread CPU µs/row | proxy thread: in the observer µs/row | proxy thread: all µs/row | rows written / lost | admit waits |`);
    console.log(`|---|---:|---:|---:|---:|---:|---:|`);
    for (const h of handoffs) {
      const label = h.kind === 'now' ? 'now: binary batches transferred, chain format 2' : 'before: tuples by structured clone, schema-1 writer';
      console.log(`| ${label} | ${h.kind === 'now' ? `**${fmt(h.rowsPerS)}**` : fmt(h.rowsPerS)} | ${h.kind === 'now' ? `**${h.writerUs.toFixed(2)}**` : h.writerUs.toFixed(2)} | ${h.handoffUs.toFixed(2)} | ${h.mainUs.toFixed(2)} | ${fmt(h.written)} / ${h.lost} | ${h.waits} |`);
    }
    console.log(`best of each: writer thread ${best('now', (h) => h.writerUs).toFixed(2)} µs/row now, ${best('before', (h) => h.writerUs).toFixed(2)} before (${ratio(best('before', (h) => h.writerUs), best('now', (h) => h.writerUs))} less); proxy thread in the observer ${best('now', (h) => h.handoffUs).toFixed(2)} now, ${best('before', (h) => h.handoffUs).toFixed(2)} before; all of the proxy thread ${best('now', (h) => h.mainUs).toFixed(2)} now, ${best('before', (h) => h.mainUs).toFixed(2)} before (thread CPU from /proc/self/task/<tid>/schedstat)`);
  }
}

/** 4. event-loop lag of a live proxy while recording 20,000 rows/s. */
/**
 * A larger year, compact schema only: does the one-client-one-day query stay an index range?
 *   SCALE_ROWS=20000000 npm run bench:journal
 */
async function scale(rows: number) {
  const dir = tmp('vigie-bench-journal-scale-');
  console.log(`\nVigie journal at scale — ${fmt(rows)} rows over one year, compact schema only, ${dir}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const file = join(dir, 'journal.db');
  const w = new JournalWriter(file, { synchronous: 'NORMAL' });
  let id = w.nextId();
  const t0 = performance.now();
  let ends: WireEnd[] = [];
  for (let done = 0; done < rows; done += BATCH) {
    const batch: WireRow[] = [];
    for (let i = 0; i < BATCH && done + i < rows; i++) batch.push(makeRow(id++, START + Math.floor(((done + i) / rows) * YEAR)));
    w.write(batch, ends, batch[batch.length - 1]![1] + 300);
    ends = batch.filter((r) => r[6] === 'connect' && r[10] === 200).map((r) => [r[0], r[1], 500 + Math.floor(rnd() * 5000), Math.floor(rnd() * 2e6), Math.floor(rnd() * 60_000)]);
  }
  w.close();
  const tWrite = performance.now() - t0;
  const q = new JournalQuery(file, { timezone: 'Europe/Paris' });
  const times: number[] = [];
  let found = 0;
  for (let i = 0; i < 25; i++) {
    const day = START + Math.floor(((i + 0.5) / 25) * YEAR / 86_400_000) * 86_400_000;
    const s = performance.now();
    found += q.search({ client: CLIENTS[(i * 37) % CLIENTS.length]!, from: day, to: day + 86_400_000 }, { limit: 10_000 }).rows.length;
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  const day = START + 180 * 86_400_000;
  let s = performance.now();
  let dayRows = -1;
  for await (const c of q.export({ from: day, to: day + 86_400_000 }, 'csv')) for (let i = c.indexOf('\n'); i !== -1; i = c.indexOf('\n', i + 1)) dayRows++;
  const tDay = performance.now() - s;
  s = performance.now();
  const st = q.stats({ from: day, to: day + 86_400_000 }, 'hour');
  const tStats = performance.now() - s;
  q.close();
  console.log(`\n| at scale | |\n|---|---:|`);
  console.log(`| rows written, rows/s (synchronous=NORMAL) | ${fmt(rows)}, ${fmt(rows / (tWrite / 1000))} |`);
  console.log(`| bytes/row on disk | ${fmt(statSync(file).size / rows, 1)} |`);
  console.log(`| one client, one day: median / max ms (25 queries, ${found} rows) | **${times[12]!.toFixed(2)}** / ${times[24]!.toFixed(2)} |`);
  console.log(`| one whole day exported (${fmt(dayRows)} rows), ms | ${fmt(tDay)} |`);
  console.log(`| stats of that day per hour, profile, category (${st.length} groups), ms | ${fmt(tStats)} |`);
}

type LagMode = 'no journal' | 'journal (worker)' | 'naive, in-thread' | 'journal, writer nice 0' | 'journal, writer nice 5';
type LagResult = Awaited<ReturnType<typeof lagPhase>>;

/** One lag phase in a fresh process, so no phase inherits another's heap or threads. */
function lagInChild(mode: LagMode, env: Record<string, string> = {}): Promise<LagResult> {
  return new Promise((resolve, reject) => {
    const args = ['--import', 'tsx', new URL(import.meta.url).pathname];
    // Pinned: the gateway (proxy and writer threads) on CPU 0, its load on CPU 1 (see lagPhase).
    const child = env.LAG_PIN ? spawn('taskset', ['-c', '0', process.execPath, ...args], { env: { ...process.env, ...env, LAG_MODE: mode }, stdio: ['ignore', 'pipe', 'inherit'] }) : spawn(process.execPath, args, { env: { ...process.env, ...env, LAG_MODE: mode }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`lag phase "${mode}" failed (exit ${code}): ${out}`));
      else resolve(JSON.parse(line) as LagResult);
    });
  });
}

async function lagTable() {
  const modes: LagMode[] = ['no journal', 'journal (worker)', 'naive, in-thread'];
  const lag: LagResult[] = [];
  console.log(`\n(load average before the lag phases: ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${availableParallelism()} cores; other jobs share them)`);
  // Two rounds, interleaved: other jobs on the machine come and go.
  for (let round = 0; round < 2; round++) for (const mode of modes) lag.push(await lagInChild(mode));
  console.log(`\n| live proxy (${REQ_RATE} req/s open loop from another process) + ${fmt(RATE)} rows/s fed to the journal, ${LAG_SECONDS}s, each in a fresh process | loop lag p50 ms | loop lag p99 ms | max ms | proxied req/s | request p99 ms | process CPU (all threads) | rows recorded |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---:|`);
  for (const l of lag) console.log(`| ${l.mode} | ${l.p50.toFixed(2)} | ${l.mode === 'journal (worker)' ? `**${l.p99.toFixed(2)}**` : l.p99.toFixed(2)} | ${l.max.toFixed(1)} | ${fmt(l.rps)} | ${l.reqP99.toFixed(2)} | ${(l.cpu * 100).toFixed(0)} % | ${fmt(l.rows)} |`);
  const best = (m: LagMode) => Math.min(...lag.filter((l) => l.mode === m).map((l) => l.p99));
  console.log(`best-round p99 lag: journal ${best('journal (worker)').toFixed(2)} ms, no journal ${best('no journal').toFixed(2)} ms (${ratio(best('journal (worker)'), best('no journal'))}), naive in-thread ${best('naive, in-thread').toFixed(2)} ms (${ratio(best('naive, in-thread'), best('no journal'))})`);
}

/**
 * Writer thread priority on one core (issue 7): the gateway pinned to CPU 0 with its writer thread
 * at nice 0 or 5, the load generator and origin on CPU 1; the proxy thread both proxies and feeds
 * the journal. Request latency shows whether the writer's transactions take the core from it.
 *   ONLY=nice npm run bench:journal   (NICE_FEED_RATE, NICE_REQ_RATE, NICE_ROUNDS)
 */
async function niceTable() {
  if (availableParallelism() < 2 || spawnSync('taskset', ['-c', '0', 'true']).status !== 0) {
    console.log('\n(writer priority phase skipped: needs taskset and 2 CPUs)');
    return;
  }
  const env = { LAG_PIN: '1', FEED_RATE: process.env.NICE_FEED_RATE ?? '20000', REQ_RATE: process.env.NICE_REQ_RATE ?? '1000' };
  const modes: LagMode[] = ['journal, writer nice 0', 'journal, writer nice 5'];
  const res: LagResult[] = [];
  for (let round = 0; round < Number(process.env.NICE_ROUNDS ?? 3); round++) for (const mode of modes) res.push(await lagInChild(mode, env));
  console.log(`\n| gateway pinned to CPU 0 (load on CPU 1): ${env.REQ_RATE} req/s proxied + ${fmt(Number(env.FEED_RATE))} rows/s fed to the journal, ${LAG_SECONDS}s | request p50 ms | request p99 ms | loop lag p99 ms | max ms | proxied req/s | process CPU | rows recorded |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---:|`);
  for (const l of res) console.log(`| ${l.mode} | ${l.reqP50.toFixed(2)} | ${l.reqP99.toFixed(2)} | ${l.p99.toFixed(2)} | ${l.max.toFixed(1)} | ${fmt(l.rps)} | ${(l.cpu * 100).toFixed(0)} % | ${fmt(l.rows)} |`);
  const med = (m: LagMode, f: (l: LagResult) => number) => {
    const v = res.filter((l) => l.mode === m).map(f).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)]!;
  };
  console.log(`median request p99: nice 0 ${med('journal, writer nice 0', (l) => l.reqP99).toFixed(2)} ms, nice 5 ${med('journal, writer nice 5', (l) => l.reqP99).toFixed(2)} ms; median loop lag p99: nice 0 ${med('journal, writer nice 0', (l) => l.p99).toFixed(2)} ms, nice 5 ${med('journal, writer nice 5', (l) => l.p99).toFixed(2)} ms`);
}

/** CPU time of one thread of this process, ns (schedstat; the coarser stat ticks where it is missing). */
function threadCpuNs(tid: number): number {
  try {
    return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    const f = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 1e7;
  }
}

/**
 * Records as the proxy hands them over: the makeRow mix (unique search paths included, queries
 * dropped by the journal), decisions shared per outcome as the proxy's decision cache shares them.
 */
function e2eRecords(n: number): ConnectionRecord[] {
  const decisions = new Map<string, ConnectionRecord['decision']>();
  return Array.from({ length: n }, () => {
    const w = makeRow(0, Date.now());
    const key = `${w[14]}|${w[4]}|${w[15]}|${w[16]}`;
    let decision = decisions.get(key);
    if (!decision) decisions.set(key, (decision = { action: w[14], profile: w[4], category: w[15], rule: w[16] as 'default', entry: null, matchKind: null, period: 'always', listVersion: 'x', policyVersion: 7 }));
    const tunnel = w[6] === 'connect';
    return {
      kind: tunnel ? 'tunnel' : 'request',
      time: Date.now(),
      client: w[2],
      user: null,
      method: w[5],
      scheme: w[6],
      host: w[7],
      port: w[8],
      path: tunnel ? '' : (w[9] ?? '/') + '?utm=1',
      decision,
      status: w[10],
      bytesIn: w[11],
      bytesOut: w[12],
      durationMs: w[13],
      problem: null,
      decisionSeconds: 0,
    } satisfies ConnectionRecord;
  });
}

/** The schema-1 writer in a worker thread, fed the way the journal fed it before: tuples by postMessage. */
const LEGACY_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
import('tsx/esm/api').then((m) => { m.register(); return import(workerData.module); }).then(({ LegacyJournalWriter }) => {
  const w = new LegacyJournalWriter(workerData.file);
  const pending = [];
  const pump = () => {
    if (!pending.length) return;
    const batches = pending.length;
    const rows = batches === 1 ? pending[0].rows : pending.flatMap((p) => p.rows);
    const ends = batches === 1 ? pending[0].ends : pending.flatMap((p) => p.ends);
    pending.length = 0;
    w.write(rows, ends);
    parentPort.postMessage({ type: 'written', count: rows.length + ends.length, rows: rows.length, batches });
  };
  parentPort.on('message', (m) => {
    if (m.type === 'close') { pump(); w.close(); parentPort.postMessage({ type: 'closed' }); return; }
    pending.push(m);
    if (pending.length === 1) setImmediate(pump);
  });
  parentPort.postMessage({ type: 'ready', tid: Number(fs.readlinkSync('/proc/thread-self').split('/').pop()) });
});
`;

/** The proxy side of the journal as it was: a tuple per row, arrays of tuples posted (structured clone). */
class LegacyFeed {
  private queue: WireRow[] = [];
  private ends: WireEnd[] = [];
  private readonly tunnelIds = new WeakMap<ConnectionRecord, number>();
  private inFlight = 0;
  private inFlightRows = 0;
  private nextId = 1;
  written = 0;
  writtenRows = 0;
  tid = 0;
  private waiters: (() => void)[] = [];
  private readonly worker: Worker;
  private readonly timer: NodeJS.Timeout;
  constructor(file: string) {
    this.worker = new Worker(LEGACY_WORKER, { eval: true, workerData: { file, module: new URL('../journal-legacy.ts', import.meta.url).href } });
    this.worker.on('message', (m: { type: string; count: number; rows: number; batches: number; tid: number }) => {
      if (m.type === 'ready') this.tid = m.tid;
      if (m.type === 'written') {
        this.inFlight -= m.batches;
        this.inFlightRows -= m.count;
        this.written += m.count;
        this.writtenRows += m.rows;
        if (this.queue.length || this.ends.length) this.send();
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.timer = setInterval(() => this.send(), 250);
  }
  async open(): Promise<void> {
    while (!this.tid) await new Promise<void>((r) => this.waiters.push(r));
  }
  admit(): boolean {
    return this.queue.length + this.ends.length + this.inFlightRows < 100_000;
  }
  private send(): void {
    if (this.inFlight >= 16 || (!this.queue.length && !this.ends.length)) return;
    const rows = this.queue;
    const ends = this.ends;
    this.queue = [];
    this.ends = [];
    this.inFlight++;
    this.inFlightRows += rows.length + ends.length;
    this.worker.postMessage({ rows, ends });
  }
  tunnelOpened(rec: ConnectionRecord): void {
    this.tunnelIds.set(rec, this.nextId);
    this.requestDone(rec);
  }
  tunnelClosed(rec: ConnectionRecord): void {
    const id = this.tunnelIds.get(rec);
    if (id === undefined) return;
    this.tunnelIds.delete(rec);
    this.ends.push([id, rec.time, rec.bytesIn, rec.bytesOut, rec.durationMs]);
  }
  requestDone(rec: ConnectionRecord): void {
    const d = rec.decision;
    let path: string | null = null;
    if (rec.scheme === 'http') {
      path = rec.path;
      const q = path.indexOf('?');
      if (q !== -1) path = path.slice(0, q);
    }
    const tunnel = rec.kind === 'tunnel';
    this.queue.push([this.nextId++, rec.time, rec.client, rec.user, d.profile, rec.method, rec.scheme, rec.host, rec.port, path, rec.status, tunnel ? 0 : rec.bytesIn, tunnel ? 0 : rec.bytesOut, tunnel ? 0 : rec.durationMs, d.action, d.category, d.rule, d.policyVersion]);
    if (this.queue.length >= 1024) this.send();
  }
  async flush(total: number): Promise<void> {
    this.send();
    while (this.written < total) await new Promise<void>((r) => this.waiters.push(r));
  }
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.worker.postMessage({ type: 'close' });
    await new Promise<void>((r) => this.waiters.push(r));
    await this.worker.terminate();
  }
}

interface HandoffResult {
  kind: 'now' | 'before';
  rowsPerS: number;
  writerUs: number;
  handoffUs: number;
  mainUs: number;
  written: number;
  lost: number;
  waits: number;
}

/** Feeds `total` records through one journal path as the proxy would, and takes each thread's CPU. */
async function handoff(kind: 'now' | 'before', dir: string, pool: ConnectionRecord[], total: number, tunnels: boolean): Promise<HandoffResult> {
  const j = kind === 'now' ? new Journal({ dir, retentionDays: 3650, keepQuery: false, overflow: 'block', queueMax: 100_000, flushMs: 250, log: silentLogger }) : null;
  const old = kind === 'before' ? new LegacyFeed(join(dir, 'journal.db')) : null;
  await (j ? j.open() : old!.open());
  const sink = (j ?? old)!;
  const wtid = j ? j.writerTid! : old!.tid;
  const w0 = threadCpuNs(wtid);
  const m0 = threadCpuNs(process.pid);
  const t0 = performance.now();
  let pushed = 0;
  let waits = 0;
  let sync = 0;
  // Tunnels open, and close 1,000 tunnels later (their end updates the row, as in the proxy).
  const open: ConnectionRecord[] = [];
  let closed = 0;
  const feed = (rec: ConnectionRecord) => {
    if (!tunnels || rec.kind === 'request') return sink.requestDone(rec);
    sink.tunnelOpened(rec);
    open.push(rec);
    if (open.length - closed > 1000) sink.tunnelClosed(open[closed++]!);
  };
  while (pushed < total) {
    if (!sink.admit()) {
      waits++;
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    const n = Math.min(2000, total - pushed);
    const c0 = threadCpuNs(process.pid);
    for (let i = 0; i < n; i++) feed(pool[(pushed + i) & (pool.length - 1)]!);
    sync += threadCpuNs(process.pid) - c0;
    pushed += n;
    await new Promise((r) => setImmediate(r));
  }
  while (closed < open.length) sink.tunnelClosed(open[closed++]!);
  if (j) await j.flush();
  else await old!.flush(total + open.length);
  const wall = performance.now() - t0;
  const writerUs = (threadCpuNs(wtid) - w0) / 1000 / total;
  const mainUs = (threadCpuNs(process.pid) - m0) / 1000 / total;
  const h = j?.health();
  const written = h ? h.rowsWritten : old!.writtenRows;
  await (j ? j.close() : old!.close());
  return { kind, rowsPerS: total / (wall / 1000), writerUs, handoffUs: sync / 1000 / total, mainUs, written, lost: h?.rowsLost ?? 0, waits };
}

function poolOfRecords(n: number): ConnectionRecord[] {
  return Array.from({ length: n }, () => {
    const w = makeRow(0, Date.now());
    return {
      kind: 'request',
      time: Date.now(),
      client: w[2],
      user: null,
      method: 'GET',
      scheme: 'http',
      host: w[7],
      port: 80,
      path: (w[9] ?? '/') + '?q=1',
      decision: { action: w[14], profile: w[4], category: w[15], rule: w[16] as 'default', entry: null, matchKind: null, period: 'always', listVersion: 'x', policyVersion: 7 },
      status: w[10],
      bytesIn: 400,
      bytesOut: 5000,
      durationMs: 12,
      problem: null,
      decisionSeconds: 0,
    } satisfies ConnectionRecord;
  });
}

/** A naive in-thread journal: queue, and every 250 ms a synchronous transaction on the proxy's thread. */
function naiveObserver(file: string): ProxyObserver & { stop(): void; rows: number } {
  const store = new NaiveStore(file);
  let q: WireRow[] = [];
  let id = 1;
  const o = {
    rows: 0,
    requestDone(r: ConnectionRecord) {
      q.push([id++, r.time, r.client, r.user, r.decision.profile, r.method, r.scheme, r.host, r.port, r.path, r.status, r.bytesIn, r.bytesOut, r.durationMs, r.decision.action, r.decision.category, r.decision.rule, r.decision.policyVersion]);
    },
    stop() {
      clearInterval(timer);
      store.close();
    },
  };
  const timer = setInterval(() => {
    const rows = q;
    q = [];
    if (rows.length) store.write(rows, []);
    o.rows += rows.length;
  }, 250);
  return o;
}

/**
 * Origin and client in a child process, so the proxy's thread only proxies and records: an
 * open-loop client (fixed request rate, keep-alive) through the proxy to a loopback origin.
 */
const LOAD_CHILD = `
const http = require('node:http');
const body = Buffer.alloc(200, 'x');
const origin = http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}).listen(0, '127.0.0.1', () => process.send({ origin: origin.address().port }));
process.on('message', ({ proxy, rate, seconds }) => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const lat = [];
  let sent = 0, ok = 0, errors = 0, done = 0;
  const t0 = performance.now();
  const one = () => {
    const s = performance.now();
    sent++;
    const req = http.request({ host: '127.0.0.1', port: proxy, path: 'http://site.test:' + origin.address().port + '/small', agent }, (res) => {
      res.resume();
      res.on('end', () => { if (res.statusCode === 200) ok++; else errors++; lat.push(performance.now() - s); finish(); });
    });
    req.on('error', () => { errors++; finish(); });
    req.end();
  };
  let stopped = false;
  const finish = () => { done++; if (stopped && done === sent) report(); };
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate) - sent;
    for (let i = 0; i < due; i++) one();
    if (performance.now() - t0 >= seconds * 1000) { clearInterval(timer); stopped = true; if (done === sent) report(); }
  }, 5);
  const report = () => {
    lat.sort((a, b) => a - b);
    const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] || 0;
    agent.destroy();
    process.send({ sent, ok, errors, p50: q(0.5), p99: q(0.99) });
  };
});
`;

async function lagPhase(mode: LagMode) {
  const load = ['-e', LOAD_CHILD];
  const child = process.env.LAG_PIN ? spawn('taskset', ['-c', '1', process.execPath, ...load], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }) : spawn(process.execPath, load, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await new Promise((r) => child.once('message', r));
  const config = resolveConfig({
    listen: [{ host: '127.0.0.1', port: 0 }],
    dns: { servers: DEAD_DNS, timeoutMs: 500 },
    dataDir: tmp('vigie-bench-journal-lag-'),
    hosts: { 'site.test': '127.0.0.1' },
    destinations: { allow: [{ network: '127.0.0.0/8' }] },
    lists: { ut1: writeLists(tmp(), TEST_LISTS), academy: writeLists(tmp(), { 'academy-allow': { domains: ['ok.test'] }, 'academy-deny': { domains: ['no.test'] } }) },
    journal: { enabled: mode.startsWith('journal'), ...(mode === 'journal, writer nice 0' ? { writerNice: 0 } : mode === 'journal, writer nice 5' ? { writerNice: 5 } : {}) },
    supervision: { enabled: false },
    metrics: { enabled: false },
  });
  const gw = new Gateway({ config, log: silentLogger });
  await gw.start();
  const port = gw.listening[0]!.port;
  const naive = mode === 'naive, in-thread' ? naiveObserver(join(config.dataDir, 'naive.db')) : null;
  const sink: ProxyObserver = mode.startsWith('journal') ? (gw.journal as unknown as Journal) : (naive ?? { requestDone() {} });
  const recs = poolOfRecords(4096);
  const h = monitorEventLoopDelay({ resolution: 1 });
  let sent = 0;
  const t0 = performance.now();
  const feed = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * RATE) - sent;
    for (let i = 0; i < due; i++) sink.requestDone!(recs[(sent + i) & 4095]!);
    sent += due;
  }, 5);
  // One second of warm-up at the full feed, then the measured window.
  await new Promise((r) => setTimeout(r, 1000));
  h.enable();
  const cpu0 = process.cpuUsage();
  child.send({ proxy: port, rate: REQ_RATE, seconds: LAG_SECONDS });
  const r = await new Promise<{ sent: number; ok: number; errors: number; p50: number; p99: number }>((res) => child.once('message', res));
  const cpu = process.cpuUsage(cpu0);
  h.disable();
  clearInterval(feed);
  child.kill();
  let rows = sent;
  if (mode.startsWith('journal')) {
    await gw.journal!.flush();
    rows = gw.journal!.health().rowsWritten - r.sent;
  } else if (naive) {
    naive.stop();
    rows = naive.rows;
  }
  await gw.stop();
  if (r.errors) console.log(`(${mode}: ${r.errors} of ${r.sent} requests failed)`);
  return { mode, p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, rps: r.ok / LAG_SECONDS, reqP50: r.p50, reqP99: r.p99, rows, fed: sent, cpu: (cpu.user + cpu.system) / 1e6 / LAG_SECONDS };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
