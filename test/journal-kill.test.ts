import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { configSchema } from '../src/config/schema.js';
import type { UncleanStop } from '../src/journal/marker.js';
import type { JournalRow } from '../src/journal/types.js';
import { DEAD_DNS, freePort, startOrigin, TEST_LISTS, tmp, writeLists } from './helpers.js';
import { Scrape } from './metrics-scrape.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
// Child processes on a shared, loaded host: more than the default two minutes for the file.
t.setTimeout(400_000);

/** `vigie start` as its own process; resolves once it logs that it is ready. */
async function startChild(configFile: string, dataDir: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '--config', configFile, '--data', dataDir], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => (log += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  children.push(child);
  const end = Date.now() + 30_000;
  while (!/gateway ready/.test(log)) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`gateway did not start:\n${log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { child, exited, log: () => log };
}

const children: ReturnType<typeof spawn>[] = [];
t.teardown(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'journal', ...args], { cwd: REPO, encoding: 'utf8', timeout: 60_000, maxBuffer: 256 << 20 });

// With proxy workers (cluster mode, when the config has it) the journal lives in the primary and
// the workers relay their events: the same guarantee must hold through the relay.
const hasWorkers = 'workers' in (configSchema.properties as Record<string, unknown>);
const modes: [string, Record<string, unknown>][] = hasWorkers ? [['one process', { workers: 1 }], ['proxy workers', { workers: 2 }]] : [['one process', {}]];

for (const [mode, extra] of modes) t.test(`SIGKILL under load (${mode}): the file survives, every request answered > 1 s before is journaled, the restart records the unclean stop`, async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const port = await freePort();
  const metricsPort = await freePort();
  const dataDir = tmp();
  const tunnelHosts = Array.from({ length: 400 }, (_, i) => `t${i}.tunnel.test`);
  const configFile = join(tmp(), 'vigie.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      listen: [{ host: '127.0.0.1', port }],
      hosts: Object.fromEntries(['site.test', ...tunnelHosts].map((h) => [h, '127.0.0.1'])),
      // The origin listens on loopback, which the destination policy refuses unless allowed.
      destinations: { allow: [{ network: '127.0.0.0/8' }] },
      dns: { servers: DEAD_DNS, timeoutMs: 500 },
      connectPorts: [origin.port],
      lists: { ut1: writeLists(tmp(), TEST_LISTS), academy: writeLists(tmp(), { 'academy-allow': { domains: ['ok.test'] }, 'academy-deny': { domains: ['no.test'] } }) },
      supervision: { enabled: false },
      metrics: { enabled: true, listen: { host: '127.0.0.1', port: metricsPort } },
      log: { level: 'info' },
      ...extra,
    }),
  );
  const gw = await startChild(configFile, dataDir);

  // Bounded load: 6 keep-alive loops of plain requests (unique paths) and one loop of short
  // tunnels (unique hosts), for 10 s and 20,000 requests at most.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
  const answered = new Map<string, number>();
  let stop = false;
  let n = 0;
  const get = (path: string) =>
    new Promise<number>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path: `http://site.test:${origin.port}${path}`, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      });
      req.on('error', () => resolve(0));
      req.end();
    });
  const tunnel = (host: string) =>
    new Promise<number>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      let buf = '';
      s.on('data', (c) => {
        buf += c.toString('latin1');
        if (buf.includes('\r\n\r\n')) {
          s.destroy();
          resolve(Number(buf.slice(9, 12)));
        }
      });
      s.on('error', () => resolve(0));
      s.on('close', () => resolve(0));
      s.write(`CONNECT ${host}:${origin.port} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    });
  const loops = Array.from({ length: 6 }, async () => {
    while (!stop && n < 20_000) {
      const path = `/small/${n++}`;
      if ((await get(path)) === 200) answered.set(path, Date.now());
    }
  });
  loops.push(
    (async () => {
      for (const h of tunnelHosts) {
        if (stop) break;
        if ((await tunnel(h)) === 200) answered.set(h, Date.now());
        await new Promise((r) => setTimeout(r, 5));
      }
    })(),
  );
  // At least 2.5 s and 300 answers (a loaded machine is slow), at most 10 s.
  const loadStart = Date.now();
  while (Date.now() - loadStart < 10_000 && (Date.now() - loadStart < 2500 || answered.size < 300)) await new Promise((r) => setTimeout(r, 50));
  const killedAt = Date.now();
  gw.child.kill('SIGKILL');
  stop = true;
  await gw.exited;
  await Promise.all(loops);
  agent.destroy();

  const file = join(dataDir, 'journal', 'journal.db');
  // Private files, the write-ahead log and its index too (SQLite gives them the database's mode).
  for (const f of [file, `${file}-wal`, `${file}-shm`, join(dataDir, 'journal', 'journal.running')]) t.equal(statSync(f).mode & 0o777, 0o600, `${f.slice(dataDir.length)} is 0600`);
  t.equal(statSync(join(dataDir, 'journal')).mode & 0o777, 0o700, 'the journal folder is 0700');
  const db = new Database(file);
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'PRAGMA integrity_check after SIGKILL');
  db.close();

  const before = [...answered].filter(([, at]) => at < killedAt - 1000).map(([k]) => k);
  t.ok(before.length >= 50, `load was real: ${answered.size} answered, ${before.length} more than 1 s before the kill`);
  t.ok(before.some((k) => k.endsWith('.tunnel.test')), 'tunnels among them');

  // Restart on the same data: it opens the journal, continues the chain, and records again.
  const again = await startChild(configFile, dataDir);
  const after = await new Promise<number>((resolve) => {
    http.get({ host: '127.0.0.1', port, path: `http://site.test:${origin.port}/after-restart`, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
  });
  t.equal(after, 200);
  t.match(again.log(), /WARN.*journal: the last run did not close the journal \(crash, kill -9 or power loss\)/, 'the restart warns');
  const scrape = await new Promise<string>((resolve, reject) => http.get({ host: '127.0.0.1', port: metricsPort, path: '/metrics', agent: false }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (body += c));
    res.on('end', () => resolve(body));
  }).on('error', reject));
  t.equal(new Scrape(scrape).get('vigie_journal_unclean_stops_total'), 1, 'and counts it');
  again.child.kill('SIGTERM');
  await again.exited;
  t.notOk(existsSync(join(dataDir, 'journal', 'journal.running')), 'a clean stop leaves no marker');

  const range = ['--from', new Date(loadStart - 60_000).toISOString(), '--to', new Date(Date.now() + 60_000).toISOString()];
  const exp = cli(['export', '--config', configFile, '--data', dataDir, '--format', 'jsonl', '--reference', 'kill test', ...range]);
  t.equal(exp.status, 0, exp.stderr);
  const lines = exp.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as JournalRow & { chainHead?: string });
  t.match(lines.pop(), { chainHead: /^\d+:[0-9a-f]{64}$/ }, 'the export ends with the chain head');
  const rows = lines as JournalRow[];
  const keys = new Set(rows.map((r) => (r.scheme === 'connect' ? r.host : r.path!)));
  const missing = before.filter((k) => !keys.has(k));
  t.same(missing, [], `every one of the ${before.length} is in the journal (${rows.length} rows)`);

  // The unclean-stop event covers what is missing: every request answered but not journaled
  // ended after the last row written (ids follow the order requests end in), before the kill.
  const ev = new Database(file, { readonly: true });
  const events = ev.prepare('SELECT kind, detail FROM events ORDER BY id').all() as { kind: string; detail: string }[];
  ev.close();
  const unclean = events.filter((e) => e.kind === 'unclean-stop').map((e) => JSON.parse(e.detail) as UncleanStop);
  t.equal(unclean.length, 1, 'one unclean-stop event');
  const u = unclean[0]!;
  t.equal(events[events.findIndex((e) => e.kind === 'unclean-stop') + 1]?.kind, 'start', 'recorded just before the start');
  const beforeRestart = rows.filter((r) => r.path !== '/after-restart');
  t.equal(u.lastId, Math.max(...beforeRestart.map((r) => r.id)), 'it names the last row written before the kill');
  t.ok(u.aliveAt <= killedAt + 50 && u.aliveAt >= killedAt - 2000, `alive at ${u.aliveAt - killedAt} ms from the kill (heartbeat every second)`);
  t.ok(u.lastWrittenAt <= killedAt + 50, 'last commit before the kill');
  const lost = [...answered].filter(([k]) => !keys.has(k));
  // With proxy workers, records reach the primary's journal through each worker's relay (flushed
  // every 20 ms, then IPC): one worker's row may be written while another's that ended a little
  // earlier is still on its way. One process writes in the order requests end.
  const slack = (extra as { workers?: number }).workers === 2 ? 250 : 0;
  t.ok(lost.every(([, at]) => at >= u.lastTime! - slack), `the ${lost.length} answered and lost all ended after the last row written (${new Date(u.lastTime!).toISOString()})`);
  t.comment(`lost at kill -9: ${lost.length} answered requests not journaled, of ${answered.size}; commit ${killedAt - u.lastWrittenAt} ms before the kill`);
  t.ok(keys.has('/after-restart'), 'the restarted gateway records');
  const ids = rows.map((r) => r.id);
  t.equal(new Set(ids).size, ids.length, 'no id used twice across the crash');

  const ver = cli(['verify', '--config', configFile, '--data', dataDir]);
  t.equal(ver.status, 0, `verify passes after the crash: ${ver.stdout}${ver.stderr}`);
  t.match(ver.stdout, /^OK: \d+ links, \d+ rows/m);
});
