/**
 * The whole gateway's memory (issue 23): `vigie start` from dist/ with the lists at national scale
 * (the real UT1 lists of ../shared/lists/ut1, read-only, plus SYNTHETIC deterministic adult
 * domains) or the bundled lists (SYNTHETIC=0), for each WORKERS entry (`n` or `n:runtime`). Per
 * gateway: the time to the first blocked answer from a list entry, cold (compiled from the text
 * lists) and warm (from the compiled index), then PSS summed over its processes (smaps_rollup)
 * after it idles, and its peak (VmHWM, per process), the gateway on a private copy of node (NODE)
 * with the node flags of the systemd unit (UNIT_FLAGS: what a school box runs).
 * Loopback only; one gateway at a time.
 *
 *   npm run build && node --import tsx test/bench/memory.bench.ts
 *   (WORKERS=1,2:threads,2:processes SYNTHETIC=4600000 UT1=/work/shared/lists/ut1 IDLE_SECONDS=5
 *    SETTLED_SECONDS=30)
 * Two readings of the compiled start: IDLE_SECONDS after the first blocked answer (start-up's
 * pages still held) and SETTLED_SECONDS after it (0: skipped), once each thread, quiet for a whole
 * period, has handed its spare heap back (src/heap-release.ts: within 20 s of the last work).
 * `n:threads:coordinates`: `mainThreadServes: false` (n threads beside a main thread that serves
 * nothing; plain `n:threads` = the main thread serving beside n − 1 threads).
 * `@flag` after an entry gives node that flag, e.g. `2:threads@--semi-space-growth-factor=2` (V8's
 * default young generation, against Vigie's small one: src/heap.ts).
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { tmp } from '../helpers.js';
import { freePort, unitNodeFlags } from './common.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const SYNTHETIC = Number(process.env.SYNTHETIC ?? 4_600_000);
const UT1 = process.env.UT1 ?? join(ROOT, '../../shared/lists/ut1');
const WORKERS = (process.env.WORKERS ?? '1,2').split(',');
const IDLE_SECONDS = Number(process.env.IDLE_SECONDS ?? 5);
const SETTLED_SECONDS = Number(process.env.SETTLED_SECONDS ?? 30);
const PROBE = 'probe-listed.test';
/**
 * The gateway runs on its own copy of node: PSS divides a file's resident pages between the
 * processes that map it, and this bench (node too) would otherwise take half of node's 50-odd MiB
 * of code off the gateway's figure. On a school box nothing else runs that binary.
 */
const NODE = (() => {
  const copy = join(tmp('vigie-bench-memory-node-'), 'node');
  copyFileSync(process.execPath, copy);
  return copy;
})();
/** What the systemd unit gives node (a school box's gateway). */
const UNIT_FLAGS = unitNodeFlags();
/** A bundled adult entry (the extra lists'), for SYNTHETIC=0. */
const BUNDLED_PROBE = gunzipSync(readFileSync(join(ROOT, 'lists/extra/porn-sinfonietta/domains.gz'))).toString('latin1').split('\n')[1]!.trim();

/** A list folder: the real categories linked, adult/domains with the synthetic names and PROBE. */
function nationalLists(): string {
  const dir = tmp('vigie-bench-memory-');
  for (const cat of readdirSync(UT1, { withFileTypes: true })) {
    if (!cat.isDirectory()) continue;
    mkdirSync(join(dir, cat.name));
    for (const f of readdirSync(join(UT1, cat.name))) if (!(cat.name === 'adult' && f === 'domains')) symlinkSync(join(UT1, cat.name, f), join(dir, cat.name, f));
  }
  mkdirSync(join(dir, 'adult'), { recursive: true });
  const real = existsSync(join(UT1, 'adult', 'domains')) ? readFileSync(join(UT1, 'adult', 'domains')) : Buffer.alloc(0);
  const tlds = ['com', 'net', 'org', 'fr', 'xxx', 'info', 'ru', 'de', 'io', 'co.uk'];
  let seed = 42;
  const r = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
  const buf = Buffer.allocUnsafe(SYNTHETIC * 40 + 64);
  let at = buf.write(`${PROBE}\n`, 0, 'latin1');
  for (let i = 0; i < SYNTHETIC; i++) {
    const labels = r() < 0.2 ? 2 : 1;
    for (let l = 0; l < labels; l++) {
      const len = 5 + Math.floor(r() * 14);
      for (let k = 0; k < len; k++) buf[at++] = 97 + Math.floor(r() * 26);
      buf[at++] = 46;
    }
    at += buf.write(`${tlds[Math.floor(r() * tlds.length)]}\n`, at, 'latin1');
  }
  writeFileSync(join(dir, 'adult', 'domains'), Buffer.concat([real, Buffer.from('\n'), buf.subarray(0, at)]));
  return dir;
}

/** Status of one GET through the proxy, or 0 when it could not connect. */
function status(port: number, host: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: `http://${host}/`, agent: false, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

const kib = (pid: number, file: string, key: string): number => {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
};

const children = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

interface Row {
  name: string;
  coldS: number;
  warmS: number;
  pss: number;
  settled: number;
  peak: number;
  runtime: string;
}

/** Starts a gateway on `data`, times its first 403 for PROBE, measures it idle, stops it. */
async function run(spec: string, lists: string | null, data: string, settle: boolean): Promise<{ s: number; pss: number; settled: number; peak: number; runtime: string }> {
  const [workers, ...flags] = spec.split('@');
  const [n, runtime, main] = workers!.split(':');
  const dir = tmp('vigie-bench-memory-gw-');
  const port = await freePort();
  const cfg = join(dir, 'config.json');
  writeFileSync(cfg, JSON.stringify({
    workers: Number(n), ...(runtime ? { workersRuntime: runtime } : {}), ...(main === 'coordinates' ? { mainThreadServes: false } : {}),
    listen: [{ host: '127.0.0.1', port }], hosts: { [PROBE]: '127.0.0.1', [BUNDLED_PROBE]: '127.0.0.1' }, dns: { servers: ['127.0.0.1:9'] },
    metrics: { listen: { host: '127.0.0.1', port: 0 } }, supervision: { enabled: false }, log: { level: 'info' },
    ...(lists ? { lists: { ut1: lists } } : {}),
  }));
  const t0 = performance.now();
  const child = spawn(NODE, [...UNIT_FLAGS, ...flags, join(ROOT, 'dist/cli.js'), 'start', '--config', cfg, '--data', data], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  try {
    // The bundled lists have no PROBE: their first adult entry answers instead.
    const host = lists ? PROBE : BUNDLED_PROBE;
    for (;;) {
      if (child.exitCode !== null || performance.now() - t0 > 300_000) throw new Error(`gateway ${spec} did not block ${host}:\n${log.slice(-2000)}`);
      if ((await status(port, host)) === 403 && /gateway ready/.test(log)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const s = (performance.now() - t0) / 1000;
    const pids = [child.pid!, ...children(child.pid!)];
    const pssNow = () => pids.reduce((x, p) => x + kib(p, 'smaps_rollup', 'Pss'), 0) / 1024;
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const pss = pssNow();
    let settled = NaN;
    if (settle && SETTLED_SECONDS > IDLE_SECONDS) {
      await new Promise((r) => setTimeout(r, (SETTLED_SECONDS - IDLE_SECONDS) * 1000));
      settled = pssNow();
    }
    const peak = pids.reduce((x, p) => x + kib(p, 'status', 'VmHWM'), 0) / 1024;
    return { s, pss, settled, peak, runtime: /runtime=(\w+)/.exec(log)?.[1] ?? 'one process' };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const t0 = performance.now();
  const lists = SYNTHETIC > 0 ? nationalLists() : null;
  if (lists) process.stderr.write(`lists: ${UT1} + ${SYNTHETIC} synthetic adult domains in ${lists} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  const rows: Row[] = [];
  for (const spec of WORKERS) {
    const data = tmp('vigie-bench-memory-data-');
    const cold = await run(spec, lists, data, false);
    const warm = await run(spec, lists, data, true);
    rows.push({ name: spec, coldS: cold.s, warmS: warm.s, pss: warm.pss, settled: warm.settled, peak: Math.max(cold.peak, warm.peak), runtime: warm.runtime });
    process.stderr.write(`${spec}: cold ${cold.s.toFixed(2)} s, warm ${warm.s.toFixed(2)} s, PSS idle ${warm.pss.toFixed(0)} MiB (cold start's: ${cold.pss.toFixed(0)}), settled ${warm.settled.toFixed(0)} MiB, peak ${cold.peak.toFixed(0)} MiB\n`);
    rmSync(data, { recursive: true, force: true });
  }
  console.log(`\nVigie memory — ${new Date().toISOString()} — node ${process.version}, ${cpus().length} CPUs, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`lists: ${lists ? `UT1 (${UT1}) + ${SYNTHETIC} synthetic adult domains` : 'bundled'}; PSS ${IDLE_SECONDS} s and ${SETTLED_SECONDS} s (settled) after the first blocked answer, no traffic; PSS summed over the gateway's processes, node's code included (a private copy); node flags of the unit: ${UNIT_FLAGS.join(' ') || 'none'}\n`);
  console.log(`| workers | runtime | first block, cold (s) | first block, compiled (s) | PSS at ${IDLE_SECONDS} s (MiB) | PSS settled, ${SETTLED_SECONDS} s (MiB) | peak, sum of VmHWM (MiB) |`);
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.name} | ${r.runtime} | ${r.coldS.toFixed(2)} | ${r.warmS.toFixed(2)} | ${r.pss.toFixed(0)} | ${Number.isNaN(r.settled) ? '–' : r.settled.toFixed(0)} | ${r.peak.toFixed(0)} |`);
  if (lists) rmSync(lists, { recursive: true, force: true });
  rmSync(join(NODE, '..'), { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
