/**
 * Cluster mode (issue 7, "use both cores"): small requests/s through the gateway with `workers: 1`
 * (one process) and `workers: 2` (a primary with the journal + two proxy workers), both gateways
 * running in the same run, phases alternated, against direct access to the origin. Journal and
 * metrics on, the full bundled lists. Also the gateway's CPU time per 1,000 requests (all its
 * processes), steadier than req/s when the machine's cores are shared with other jobs.
 * Loopback only; every phase is bounded in time.
 *
 * Then tunnel set-ups/s: CONNECT, wait for the 200, close, on TUNNEL_LOOPS loops at once.
 * A WORKERS entry `n:runtime` sets `workersRuntime` (threads, processes), e.g. WORKERS=1,2:threads,2:processes;
 * `n:threads:coordinates` sets `mainThreadServes: false` (n threads, the main thread serving nothing;
 * plain `n:threads` is the main thread serving beside n − 1 threads);
 * `@flag` after it gives node that flag, e.g. `2:threads@--semi-space-growth-factor=2` (V8's default
 * young generation, against Vigie's small one: src/heap.ts).
 *
 *   npm run build && node --import tsx test/bench/cluster.bench.ts
 *   (SECONDS_PER_PHASE=5 ROUNDS=3 CONNECTIONS=50 TUNNEL_LOOPS=20 WORKERS=1,2 to change it)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { tmp } from '../helpers.js';
import { freePort, median, startSmallOrigin, unitNodeFlags } from './common.js';
import { load, type LoadResult } from './loadgen.js';

const SECONDS = Number(process.env.SECONDS_PER_PHASE ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50);
const WORKERS = (process.env.WORKERS ?? '1,2').split(',');
const TUNNEL_LOOPS = Number(process.env.TUNNEL_LOOPS ?? 20);

/** Tunnel set-ups per second: each loop sends CONNECT, waits for the 200, closes, again (bounded by time). */
async function tunnels(port: number, target: string, seconds: number): Promise<{ rps: number; errors: number }> {
  const end = performance.now() + seconds * 1000;
  let made = 0;
  let errors = 0;
  const one = () =>
    new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1', noDelay: true }, () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
      let head = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => {
        head += d;
        if (head.includes('\r\n\r\n')) {
          s.destroy();
          resolve(head.startsWith('HTTP/1.1 200'));
        }
      });
      s.on('error', () => resolve(false));
      s.on('close', () => resolve(false));
    });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: TUNNEL_LOOPS }, async () => {
    while (performance.now() < end) if (await one()) made++;
    else errors++;
  }));
  return { rps: made / ((performance.now() - t0) / 1000), errors };
}
const ROOT = new URL('../..', import.meta.url).pathname;
const TICK = 100; // clock ticks per second on Linux

/** CPU seconds (user + system) a process used so far. */
const cpuSeconds = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / TICK;
};

interface Gw {
  workers: string;
  port: number;
  child: ChildProcess;
  pids: number[];
  log: () => string;
}

async function startGateway(workers: string, originPort: number): Promise<Gw> {
  const [spec, ...flags] = workers.split('@');
  const [n, runtime, main] = spec!.split(':');
  const dir = tmp('vigie-bench-cluster-');
  const port = await freePort();
  const cfgFile = join(dir, 'config.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      workers: Number(n),
      ...(runtime ? { workersRuntime: runtime } : {}),
      ...(main === 'coordinates' ? { mainThreadServes: false } : {}),
      connectPorts: [originPort],
      listen: [{ host: '127.0.0.1', port }],
      hosts: { 'origin.test': '127.0.0.1' },
      destinations: { allow: [{ network: '127.0.0.0/8' }] },
      dns: { servers: ['127.0.0.1:9'] },
      metrics: { listen: { host: '127.0.0.1', port: 0 } },
      supervision: { enabled: false },
      log: { level: 'info' },
    }),
  );
  const child = spawn(process.execPath, [...unitNodeFlags(), ...flags, join(ROOT, 'dist/cli.js'), 'start', '--config', cfgFile, '--data', join(dir, 'data')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const end = Date.now() + 120_000;
  while (!/gateway ready/.test(log)) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`gateway (workers ${workers}) did not start:\n${log.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const m = /gateway ready .*workers="?([\d,]+)/.exec(log);
  // Threads report the gateway's own pid: each process is counted once.
  const pids = [...new Set([child.pid!, ...(m ? m[1]!.split(',').map(Number) : [])])];
  return { workers, port, child, pids, log: () => log };
}

async function main() {
  const originPort = await freePort();
  const origin = await startSmallOrigin(originPort);
  const gateways: Gw[] = [];
  try {
    for (const w of WORKERS) gateways.push(await startGateway(w, originPort));
    const direct = `GET /small HTTP/1.1\r\nHost: origin.test:${originPort}\r\n\r\n`;
    const proxied = `GET http://origin.test:${originPort}/small HTTP/1.1\r\nHost: origin.test:${originPort}\r\n\r\n`;
    const phase = (port: number, request: string, seconds: number) => load({ port, request, connections: CONNECTIONS, seconds });

    await phase(originPort, direct, 1);
    for (const g of gateways) await phase(g.port, proxied, 2); // warm-up: JIT, keep-alive pools, decision cache
    const rows: { name: string; r: LoadResult; cpuPerK: number; primaryPerK: number }[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      rows.push({ name: 'direct', r: await phase(originPort, direct, SECONDS), cpuPerK: NaN, primaryPerK: NaN });
      for (const g of gateways) {
        const before = g.pids.reduce((s, p) => s + cpuSeconds(p), 0);
        const primaryBefore = cpuSeconds(g.pids[0]!);
        const r = await phase(g.port, proxied, SECONDS);
        const used = g.pids.reduce((s, p) => s + cpuSeconds(p), 0) - before;
        const primary = cpuSeconds(g.pids[0]!) - primaryBefore;
        const perK = (x: number) => (x * 1000 * 1000) / Math.max(1, r.requests);
        rows.push({ name: `workers ${g.workers}`, r, cpuPerK: perK(used), primaryPerK: perK(primary) });
      }
    }
    const names = ['direct', ...gateways.map((g) => `workers ${g.workers}`)];
    const best = (n: string) => rows.filter((x) => x.name === n).reduce((a, b) => (b.r.rps > a.r.rps ? b : a));
    const base = best(`workers ${WORKERS[0]}`).r.rps;
    const d = best('direct').r.rps;
    console.log(`\nVigie cluster benchmark — ${new Date().toISOString()} — node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
    console.log(`${CONNECTIONS} keep-alive connections, 200 B responses, ${SECONDS}s phases, best of ${ROUNDS}; origin, load generator and gateway share the machine (not pinned)\n`);
    // Each round runs every gateway back to back: the ratio within a round is the steadier figure
    // on a shared machine (the load moves between rounds, less within one).
    const roundRatios = (n: string, of: (name: string) => number[]) => median(of(n).map((x, i) => x / of(`workers ${WORKERS[0]}`)[i]!));
    const rpsOf = (n: string) => rows.filter((x) => x.name === n).map((x) => x.r.rps);
    console.log('| path | req/s | p50 ms | p99 ms | errors | ×direct | ×workers ' + WORKERS[0] + ' (best) | ×workers ' + WORKERS[0] + ' (median of rounds) | gateway CPU ms / 1k req (median) | of which primary |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const n of names) {
      const b = best(n);
      const cpu = rows.filter((x) => x.name === n).map((x) => x.cpuPerK).sort((a, c) => a - c);
      const med = cpu[Math.floor(cpu.length / 2)]!;
      const prim = rows.filter((x) => x.name === n).map((x) => x.primaryPerK).sort((a, c) => a - c)[Math.floor(cpu.length / 2)]!;
      console.log(`| ${n} | ${b.r.rps.toFixed(0)} | ${b.r.p50ms.toFixed(2)} | ${b.r.p99ms.toFixed(2)} | ${b.r.errors} | ${(b.r.rps / d).toFixed(2)} | ${n === 'direct' ? '' : (b.r.rps / base).toFixed(2)} | ${n === 'direct' ? '' : roundRatios(n, rpsOf).toFixed(2)} | ${Number.isNaN(med) ? '' : med.toFixed(0)} | ${Number.isNaN(prim) ? '' : prim.toFixed(0)} |`);
    }
    console.log(`\nall phases: ${rows.map((x) => `${x.name} ${x.r.rps.toFixed(0)}`).join(', ')}`);
    // Tunnel set-ups, alternated the same way (the first gateway is the baseline).
    const setups = new Map<string, number[]>();
    const setupCpu = new Map<string, number[]>();
    for (let i = 0; i < ROUNDS; i++) {
      for (const g of gateways) {
        const before = g.pids.reduce((s, p) => s + cpuSeconds(p), 0);
        const r = await tunnels(g.port, `origin.test:${originPort}`, SECONDS);
        const used = g.pids.reduce((s, p) => s + cpuSeconds(p), 0) - before;
        if (r.errors) console.log(`workers ${g.workers}: ${r.errors} tunnel set-ups failed`);
        setups.set(g.workers, [...(setups.get(g.workers) ?? []), r.rps]);
        setupCpu.set(g.workers, [...(setupCpu.get(g.workers) ?? []), (used * 1e6) / Math.max(1, r.rps * SECONDS)]);
      }
    }
    const first = Math.max(...setups.get(gateways[0]!.workers)!);
    const firstAll = setups.get(gateways[0]!.workers)!;
    console.log(`\n| path | tunnel set-ups/s (best of ${ROUNDS}, ${TUNNEL_LOOPS} loops) | ×workers ${WORKERS[0]} (best) | ×workers ${WORKERS[0]} (median of rounds) | gateway CPU ms / 1k set-ups (median) | all rounds |`);
    console.log('|---|---:|---:|---:|---:|---|');
    for (const g of gateways) {
      const all = setups.get(g.workers)!;
      console.log(`| workers ${g.workers} | ${Math.max(...all).toFixed(0)} | ${(Math.max(...all) / first).toFixed(2)} | ${median(all.map((x, i) => x / firstAll[i]!)).toFixed(2)} | ${median(setupCpu.get(g.workers)!).toFixed(0)} | ${all.map((x) => x.toFixed(0)).join(', ')} |`);
    }
  } finally {
    for (const g of gateways) g.child.kill('SIGTERM');
    origin.kill();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
