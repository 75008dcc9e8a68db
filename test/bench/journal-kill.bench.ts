/**
 * The journal's loss window, measured (issue 18): a gateway under a fixed load of small requests
 * is killed with SIGKILL, restarted on the same data, and the requests it answered but did not
 * journal are counted, for the default `journal.flushMs` and for 250 ms (the old default), in
 * alternating rounds of the same run. The `unclean-stop` event's last commit gives how long before
 * the kill the last rows reached the file. Expected: missing <= rate x window.
 *
 *   npm run bench:kill                      (RATE=1000 SECONDS=4 ROUNDS=5 FLUSH=50,250)
 *
 * Loopback only: a Node origin and the load in this process, the gateway as `node dist/cli.js
 * start` (built first), pinned to CPU 0 when taskset exists. Every phase is bounded; children are
 * killed on exit.
 */
import Database from 'better-sqlite3';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UncleanStop } from '../../src/journal/marker.js';
import { JournalQuery } from '../../src/journal/reader.js';
import { DEAD_DNS, freePort, TEST_LISTS, writeLists } from '../helpers.js';
import { median } from './common.js';

const num = (name: string, dflt: number) => {
  const n = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: expected a positive number`);
  return n;
};
const RATE = num('RATE', 1000);
const SECONDS = num('SECONDS', 4);
const ROUNDS = Math.floor(num('ROUNDS', 5));
const FLUSH = (process.env.FLUSH ?? '50,250').split(',').map(Number);
const ROOT = new URL('../..', import.meta.url).pathname;
const log = (s: string) => process.stderr.write(`[bench:kill ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

let pin: string[] = [];
try {
  execFileSync('taskset', ['-c', '0', 'true']);
  pin = ['taskset', '-c', '0'];
} catch {
  log('no taskset: the gateway is not pinned');
}

async function startGateway(config: string, data: string): Promise<ChildProcess> {
  const argv = [...pin, process.execPath, join(ROOT, 'dist/cli.js'), 'start', '--config', config, '--data', data];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => (out = (out + c).slice(-8000)));
  const end = Date.now() + 120_000;
  while (!/gateway ready/.test(out)) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`gateway did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}

interface Round {
  flushMs: number;
  answered: number;
  missing: number;
  rate: number;
  lastCommitMs: number;
  /** Rows per chain link (one link per transaction) and bytes per row on disk: the cost of a short flush. */
  rowsPerLink: number;
  bytesPerRow: number;
}

async function round(flushMs: number, originPort: number): Promise<Round> {
  const dir = mkdtempSync(join(tmpdir(), 'vigie-kill-'));
  const port = await freePort();
  const config = join(dir, 'vigie.json');
  writeFileSync(config, JSON.stringify({
    listen: [{ host: '127.0.0.1', port }],
    clients: [{ network: '127.0.0.0/8', profile: 'cycle3' }],
    hosts: { 'site.test': '127.0.0.1' },
    dns: { servers: DEAD_DNS, timeoutMs: 500 },
    lists: { ut1: writeLists(join(dir, 'lists'), TEST_LISTS) },
    supervision: { enabled: false },
    metrics: { enabled: false },
    workers: 1,
    journal: { flushMs },
    log: { level: 'info' },
  }));
  const data = join(dir, 'data');
  let gw = await startGateway(config, data);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const answered = new Map<string, number>();
  let n = 0;
  const one = () => {
    const path = `/r/${n++}`;
    const req = http.request({ host: '127.0.0.1', port, path: `http://site.test:${originPort}${path}`, agent }, (res) => {
      res.resume();
      // A response read whole, even after the kill, was sent by the gateway before it died.
      res.on('end', () => {
        if (res.statusCode === 200) answered.set(path, Date.now());
      });
    });
    req.on('error', () => undefined);
    req.end();
  };
  // Open loop at RATE: 10 ms ticks, each sending what is due since the start (no catch-up burst
  // beyond one tick's worth if this process falls behind).
  const t0 = Date.now();
  let sent = 0;
  const ticker = setInterval(() => {
    const due = Math.min(Math.floor(((Date.now() - t0) * RATE) / 1000), sent + Math.ceil(RATE / 50));
    for (; sent < due; sent++) one();
  }, 10);
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const killedAt = Date.now();
  gw.kill('SIGKILL');
  clearInterval(ticker);
  await new Promise((r) => gw.once('exit', r));
  // Responses already in this process's sockets are read before counting.
  await new Promise((r) => setTimeout(r, 1000));
  agent.destroy();
  const rate = (answered.size * 1000) / (killedAt - t0);
  // The restart records the unclean stop; a clean stop after it.
  gw = await startGateway(config, data);
  gw.kill('SIGTERM');
  await new Promise((r) => gw.once('exit', r));
  const file = join(data, 'journal', 'journal.db');
  const q = new JournalQuery(file);
  const paths = new Set<string>();
  for (let page = q.search({}, { limit: 10_000 }); ; page = q.search({}, { limit: 10_000, cursor: page.nextCursor })) {
    for (const r of page.rows) if (r.path) paths.add(r.path);
    if (!page.nextCursor) break;
  }
  q.close();
  const db = new Database(file, { readonly: true });
  const ev = db.prepare(`SELECT detail FROM events WHERE kind = 'unclean-stop'`).pluck().get() as string | undefined;
  const links = db.prepare('SELECT count(*) FROM chain').pluck().get() as number;
  const bytes = (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
  db.close();
  const u = ev ? (JSON.parse(ev) as UncleanStop) : null;
  const missing = [...answered.keys()].filter((p) => !paths.has(p)).length;
  rmSync(dir, { recursive: true, force: true });
  return { flushMs, answered: answered.size, missing, rate, lastCommitMs: u ? killedAt - u.lastWrittenAt : NaN, rowsPerLink: paths.size / Math.max(1, links), bytesPerRow: bytes / Math.max(1, paths.size) };
}

async function main(): Promise<void> {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  const origin = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '12' });
    res.end('hello world\n');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const originPort = (origin.address() as { port: number }).port;
  const rounds: Round[] = [];
  for (let i = 1; i <= ROUNDS; i++) {
    for (const f of FLUSH) {
      log(`round ${i}/${ROUNDS}: flushMs ${f}, ${RATE} req/s for ${SECONDS} s, then SIGKILL`);
      const r = await round(f, originPort);
      log(`  answered ${r.answered} (${r.rate.toFixed(0)}/s), missing ${r.missing}, last commit ${r.lastCommitMs} ms before the kill`);
      rounds.push(r);
    }
  }
  origin.close();
  const lines = [
    `SIGKILL at ${RATE} req/s (small requests), ${ROUNDS} rounds per setting, alternating; median [min–max]`,
    '',
    '| flushMs | answered/s | missing rows | missing as ms of traffic | last commit before kill (ms) | rate × flushMs | rows per link | bytes/row on disk |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...FLUSH.map((f) => {
      const rs = rounds.filter((r) => r.flushMs === f);
      const span = (xs: number[], d = 0) => `${median(xs).toFixed(d)} [${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}]`;
      return `| ${f} | ${span(rs.map((r) => r.rate))} | ${span(rs.map((r) => r.missing))} | ${span(rs.map((r) => (r.missing / r.rate) * 1000))} | ${span(rs.map((r) => r.lastCommitMs))} | ${((RATE * f) / 1000).toFixed(0)} | ${span(rs.map((r) => r.rowsPerLink), 1)} | ${span(rs.map((r) => r.bytesPerRow))} |`;
    }),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

await main();
