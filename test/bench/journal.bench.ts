/**
 * Connection journal figures (issue 4), each against a naive schema measured in the same run
 * (one table, text columns, one (client, time) index, same batches, same WAL + synchronous=FULL):
 * - storage: rows/s written in batches of 5,000 (20,000 rows/s flushed every 250 ms), bytes/row on
 *   disk (indexes, dictionaries and chain included);
 * - end to end: rows/s through the Journal observer, its worker thread and back-pressure;
 * - event-loop lag p99 of a live proxy (real requests on loopback) while 20,000 rows/s are recorded,
 *   against the same proxy and feed with no journal, and with the naive schema written in-thread;
 * - export (CSV) rows/s, and one client over one day on a year of data.
 * Loopback only, every phase bounded.
 *
 *   npm run bench:journal      (ROWS=1000000 LAG_SECONDS=5 REQ_RATE=500 to change the phases;
 *                               ONLY=lag for the event-loop phase alone; SCALE_ROWS=N for a
 *                               bigger year, compact schema only)
 */
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
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
import { silentLogger } from '../../src/log.js';
import type { ConnectionRecord, ProxyObserver } from '../../src/proxy/events.js';
import { DEAD_DNS, TEST_LISTS, tmp, writeLists } from '../helpers.js';

const ROWS = Number(process.env.ROWS ?? 1_000_000);
const BATCH = 5000;
const LAG_SECONDS = Number(process.env.LAG_SECONDS ?? 5);
const RATE = 20_000;
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
  if (process.env.SCALE_ROWS) return scale(Number(process.env.SCALE_ROWS));
  const dir = tmp('vigie-bench-journal-');
  console.log(`\nVigie journal — ${new Date().toISOString()} — node ${process.version}, ${fmt(ROWS)} rows over one year, batches of ${BATCH}, WAL synchronous=FULL, temp dir ${dir}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')} on ${availableParallelism()} cores`);

  // ---- 1. storage: the same batches into both schemas ----------------------------------------
  const compactFile = join(dir, 'compact', 'journal.db');
  const writer = new JournalWriter(compactFile);
  const naive = new NaiveStore(join(dir, 'naive.db'));
  let tCompact = 0;
  let tNaive = 0;
  let cCompact = 0;
  let cNaive = 0;
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
    let t0 = performance.now();
    let c0 = cpu();
    writer.write(rows, pendingEnds, now);
    tCompact += performance.now() - t0;
    cCompact += cpu() - c0;
    t0 = performance.now();
    c0 = cpu();
    naive.write(rows, pendingEnds);
    tNaive += performance.now() - t0;
    cNaive += cpu() - c0;
    // Tunnels of this batch close and are ended with the next one.
    pendingEnds = rows.filter((r) => r[6] === 'connect' && r[10] === 200).map((r) => [r[0], r[1], 500 + Math.floor(rnd() * 5000), Math.floor(rnd() * 2e6), Math.floor(rnd() * 60_000)]);
  }
  writer.write([], pendingEnds, START + YEAR + 1000);
  const tc = performance.now();
  writer.close();
  const closeCompact = performance.now() - tc;
  naive.write([], pendingEnds);
  naive.close();
  const size = (f: string) => statSync(f).size;
  const bCompact = size(compactFile);
  const bNaive = size(naive.file);

  console.log(`\n| storage (same batches) | compact (this journal) | naive | compact/naive |`);
  console.log(`|---|---:|---:|---:|`);
  console.log(`| rows/s written | **${fmt(ROWS / (tCompact / 1000))}** | ${fmt(ROWS / (tNaive / 1000))} | ${ratio(tNaive, tCompact)} faster |`);
  console.log(`| rows per CPU-second (insensitive to other load on the machine) | ${fmt(ROWS / (cCompact / 1000))} | ${fmt(ROWS / (cNaive / 1000))} | ${ratio(cNaive, cCompact)} less CPU |`);
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
      out += csvLine({ id: r.id as number, time: Date.parse(r.time as string), client: r.client as string, user: r.user as string | null, profile: r.profile as string | null, method: r.method as string, scheme: r.scheme as 'http', host: r.host as string, port: r.port as number, path: r.path as string | null, status: r.status as number, bytesIn: r.bytes_in as number, bytesOut: r.bytes_out as number, durationMs: r.duration_ms as number, decision: r.decision as 'allow', category: r.category as string | null, rule: r.rule as string, policyVersion: r.policy_version as number }) + '\n';
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

  // ---- 3. end to end through the observer and the worker thread -----------------------------
  const j = new Journal({ dir: join(dir, 'e2e'), retentionDays: 3650, keepQuery: false, overflow: 'block', queueMax: 100_000, flushMs: 250, log: silentLogger });
  await j.open();
  const recs = poolOfRecords(4096);
  const E2E = Math.min(ROWS, 500_000);
  t0 = performance.now();
  let pushed = 0;
  let waits = 0;
  while (pushed < E2E) {
    if (!j.admit()) {
      waits++;
      await new Promise((r) => setTimeout(r, 1));
      continue;
    }
    const n = Math.min(2000, E2E - pushed);
    for (let i = 0; i < n; i++) j.requestDone(recs[(pushed + i) & 4095]!);
    pushed += n;
    await new Promise((r) => setImmediate(r));
  }
  await j.flush();
  const tE2E = performance.now() - t0;
  const h = j.health();
  await j.close();
  console.log(`\n| end to end (observer → bounded queue → worker thread → SQLite) | |`);
  console.log(`|---|---:|`);
  console.log(`| rows/s sustained, ${fmt(E2E)} rows, back-pressure by admit() (${waits} waits) | **${fmt(E2E / (tE2E / 1000))}** |`);
  console.log(`| rows written / lost | ${fmt(h.rowsWritten)} / ${h.rowsLost} |`);

  await lagTable();
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

type LagMode = 'no journal' | 'journal (worker)' | 'naive, in-thread';
type LagResult = Awaited<ReturnType<typeof lagPhase>>;

/** One lag phase in a fresh process, so no phase inherits another's heap or threads. */
function lagInChild(mode: LagMode): Promise<LagResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname], { env: { ...process.env, LAG_MODE: mode }, stdio: ['ignore', 'pipe', 'inherit'] });
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
  const child = spawn(process.execPath, ['-e', LOAD_CHILD], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  await new Promise((r) => child.once('message', r));
  const config = resolveConfig({
    listen: [{ host: '127.0.0.1', port: 0 }],
    dns: { servers: DEAD_DNS, timeoutMs: 500 },
    dataDir: tmp('vigie-bench-journal-lag-'),
    hosts: { 'site.test': '127.0.0.1' },
    lists: { ut1: writeLists(tmp(), TEST_LISTS), academy: writeLists(tmp(), { 'academy-allow': { domains: ['ok.test'] }, 'academy-deny': { domains: ['no.test'] } }) },
    journal: { enabled: mode === 'journal (worker)' },
    supervision: { enabled: false },
    metrics: { enabled: false },
  });
  const gw = new Gateway({ config, log: silentLogger });
  await gw.start();
  const port = gw.listening[0]!.port;
  const naive = mode === 'naive, in-thread' ? naiveObserver(join(config.dataDir, 'naive.db')) : null;
  const sink: ProxyObserver = mode === 'journal (worker)' ? (gw.journal as unknown as Journal) : (naive ?? { requestDone() {} });
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
  if (mode === 'journal (worker)') {
    await gw.journal!.flush();
    rows = gw.journal!.health().rowsWritten - r.sent;
  } else if (naive) {
    naive.stop();
    rows = naive.rows;
  }
  await gw.stop();
  if (r.errors) console.log(`(${mode}: ${r.errors} of ${r.sent} requests failed)`);
  return { mode, p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, rps: r.ok / LAG_SECONDS, reqP99: r.p99, rows, fed: sent, cpu: (cpu.user + cpu.system) / 1e6 / LAG_SECONDS };
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
