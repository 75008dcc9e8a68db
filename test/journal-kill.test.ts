import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { configSchema } from '../src/config/schema.js';
import type { JournalRow } from '../src/journal/types.js';
import { DEAD_DNS, freePort, startOrigin, TEST_LISTS, tmp, writeLists } from './helpers.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));

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

for (const [mode, extra] of modes) t.test(`SIGKILL under load (${mode}): the file survives and every request answered > 1 s before is journaled`, async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const port = await freePort();
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
      metrics: { enabled: false },
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
  again.child.kill('SIGTERM');
  await again.exited;

  const exp = cli(['export', '--config', configFile, '--data', dataDir, '--format', 'jsonl']);
  t.equal(exp.status, 0, exp.stderr);
  const rows = exp.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as JournalRow);
  const keys = new Set(rows.map((r) => (r.scheme === 'connect' ? r.host : r.path!)));
  const missing = before.filter((k) => !keys.has(k));
  t.same(missing, [], `every one of the ${before.length} is in the journal (${rows.length} rows)`);
  t.ok(keys.has('/after-restart'), 'the restarted gateway records');
  const ids = rows.map((r) => r.id);
  t.equal(new Set(ids).size, ids.length, 'no id used twice across the crash');

  const ver = cli(['verify', '--config', configFile, '--data', dataDir]);
  t.equal(ver.status, 0, `verify passes after the crash: ${ver.stdout}${ver.stderr}`);
  t.match(ver.stdout, /^OK: \d+ links, \d+ rows/m);
});
