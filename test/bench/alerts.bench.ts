/**
 * The proxy with the alert engine off and on, in the same run (`npm run bench:alerts`).
 *
 * Two gateways from this tree's build run at once, pinned to CPU 0 (A: `alerts.enabled: false`,
 * B: the defaults, alerts on), each with its own identical open-loop load from this process on
 * CPU 1, nginx as the origin there too; both see the same host, so their ratio is what the
 * engine costs (see ab.bench.ts for why side by side). Two loads:
 *   allowed  — small plain-HTTP requests to the origin (the engine looks at the decision, no more);
 *   watched  — small requests to a host of UT1 `agressif`, blocked (the engine's window, then the
 *              open alert's deduplicated hits: its whole path, at a rate no pupil reaches).
 * Reported: CPU per request of each gateway (µs), the requests per second one core would take at
 * that cost, and p99 (two gateways share the core, so latency is indicative only).
 *
 * Knobs: ROUNDS (3), SECONDS (6, per phase), RATE (4000 requests/s to each gateway).
 * Run under the machine's bench lock: flock /tmp/vigie-bench.lock npm run bench:alerts
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixedRate, type Target } from './proxy/clients.js';
import { cpuTicks, freePort, killAllNow, startPinned, stopAll, waitForOutput, waitForPort, type Proc } from './proxy/procs.js';
import { ORIGIN_HOST, ensureTools, vigieConfig, writeOrigin, type Ports } from './proxy/setup.js';
import { median } from './common.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const num = (name: string, dflt: number) => Number(process.env[name] || dflt);
const ROUNDS = Math.floor(num('ROUNDS', 3));
const SECONDS = num('SECONDS', 6);
const RATE = num('RATE', 4000);
/** A domain of the bundled UT1 `agressif` list (watched by default); it is blocked, never resolved. */
const WATCHED_HOST = '14words.com';
const log = (s: string) => process.stderr.write(`[bench:alerts ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2));

async function main(): Promise<void> {
  ensureTools(log);
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  const head = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  const tmp = mkdtempSync(join(tmpdir(), 'vigie-alerts-bench-'));
  process.on('exit', killAllNow);
  try {
    const base: Ports = { plain: await freePort(), tls: await freePort(), vigie: 0, vigieMetrics: 0, squid: 0, tinyproxy: 0, floor: 0 };
    const nginx = startPinned('nginx', 1, ['nginx', '-e', join(tmp, 'nginx-error.log'), '-p', tmp, '-c', writeOrigin(tmp, base, 16)]);
    await waitForPort(nginx, base.plain, 10_000);
    const sides = { A: { alerts: { enabled: false } }, B: {} } as const;
    const gw: Record<'A' | 'B', { proc: Proc; port: number }> = {} as never;
    for (const side of ['A', 'B'] as const) {
      const ports = { ...base, vigie: await freePort(), vigieMetrics: await freePort() };
      const dir = join(tmp, side);
      mkdirSync(dir);
      const cfg = { ...vigieConfig(ports, { journal: true, workers: 1 }), ...sides[side] };
      writeFileSync(join(dir, 'vigie.json'), JSON.stringify(cfg, null, 2));
      const proc = startPinned(`vigie ${side}`, 0, [process.execPath, join(ROOT, 'dist', 'cli.js'), 'start', '--config', join(dir, 'vigie.json'), '--data', join(dir, 'data')], { cwd: dir });
      await waitForOutput(proc, /gateway ready/, 180_000);
      gw[side] = { proc, port: ports.vigie };
    }
    const target = (side: 'A' | 'B', host: string): Target => ({ port: gw[side].port, viaProxy: true, originHost: host, originPort: base.plain });
    const rows = new Map<string, { a: number[]; b: number[] }>();
    const add = (k: string, a: number, b: number) => {
      const r = rows.get(k) ?? { a: [], b: [] };
      r.a.push(a);
      r.b.push(b);
      rows.set(k, r);
    };
    const both = async (host: string, seconds: number) => {
      const pids = [gw.A.proc.pid, gw.B.proc.pid];
      const before = pids.map(cpuTicks);
      const [ra, rb] = await Promise.all([fixedRate(target('A', host), RATE, 50, seconds), fixedRate(target('B', host), RATE, 50, seconds)]);
      const after = pids.map(cpuTicks);
      const us = (i: number, n: number) => ((after[i]! - before[i]!) / CLK_TCK / Math.max(1, n)) * 1e6;
      return { ra: ra!, rb: rb!, usA: us(0, ra!.answered), usB: us(1, rb!.answered) };
    };
    log('warm-up');
    await both(ORIGIN_HOST, 2);
    await both(WATCHED_HOST, 2);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const [name, host] of [['allowed', ORIGIN_HOST], ['watched', WATCHED_HOST]] as const) {
        log(`round ${round}/${ROUNDS}: ${name}, ${RATE} req/s to each, ${SECONDS} s`);
        const r = await both(host, SECONDS);
        add(`${name} | CPU per request (µs)`, r.usA, r.usB);
        add(`${name} | requests/s per core at that cost`, 1e6 / r.usA, 1e6 / r.usB);
        add(`${name} | p99 of 200 answers, core shared (ms)`, r.ra.p99ms, r.rb.p99ms);
        add(`${name} | answers other than 200 (watched: all, blocked)`, r.ra.errors, r.rb.errors);
      }
    }
    const lines = [
      `${head}: A = alerts off, B = alerts on (defaults); ${RATE} req/s to each, ${ROUNDS} rounds of ${SECONDS} s, median [min–max]`,
      '',
      '| load | measure | A: alerts off | B: alerts on | B/A |',
      '|---|---|---:|---:|---:|',
      ...[...rows].map(([k, r]) => `| ${k} | ${fmt(median(r.a))} [${fmt(Math.min(...r.a))}–${fmt(Math.max(...r.a))}] | ${fmt(median(r.b))} [${fmt(Math.min(...r.b))}–${fmt(Math.max(...r.b))}] | ${median(r.a) ? (median(r.b) / median(r.a)).toFixed(3) : '–'} |`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
