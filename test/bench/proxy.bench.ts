/**
 * Vigie against Squid, tinyproxy and direct access (issue 7), side by side in one run; Vigie twice,
 * with each tunnel mode (`vigie`: `tunnels: "socket"`, the default; `vigie-raw`: `"raw"`, issue 21),
 * and with two workers, unpinned (`vigie-2w`, issue 23: judged against `vigie`, one worker pinned).
 *
 *   npm run bench:proxy
 *   RUNS=1 PHASE_SECONDS=3 npm run bench:proxy        (quick check)
 *
 * Everything is on 127.0.0.1 with free ports and lives in a temp dir: nginx as the origin (200 B,
 * 1 MiB, a large sparse file, TLS), the Vigie gateway (full bundled lists, metrics on, the
 * journal on when the config has it), Squid (no cache, no access log) and tinyproxy. The proxy
 * under test runs on CPU 0; nginx, wrk, curl and this process (the Node load generators) on CPU 1.
 * Debian packages are installed when missing. Every phase is bounded in time; every process is
 * stopped at the end, on error and on SIGINT/SIGTERM.
 *
 * Environment: RUNS (3), PHASE_SECONDS (10), CONNECTIONS (50), MIB_CONNECTIONS (10),
 * TUNNEL_LOOPS (50), BIG_MIB (1024), IDLE_TUNNELS (10000), SETUPS (direct,vigie,vigie-raw,vigie-2w,node-floor,squid,tinyproxy),
 * VIGIE_WORKERS (1, used once the config has `workers`), KEEP_TMP=1 to keep the temp dir,
 * VIGIE_PROFILE=1 to run Vigie under `node --cpu-prof` and print its top frames by self time,
 * PHASES (small,mib,bulk,setup,fixed,idle,tls,intercept) to run only some phases, TLS_LOOPS (20).
 * `tls` (issue 22) is Vigie only: HTTPS set-up, CONNECT + TLS against the transparent listener + TLS:
 *   SETUPS=direct,vigie,squid PHASES=tls RUNS=3 PHASE_SECONDS=3 npm run bench:proxy
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { bulkDownload, fixedRate, LEAD_IN_S, openIdleTunnels, probe, tunnelSetupRate, type Target as ClientTarget } from './proxy/clients.js';
import { freePort, killAllNow, maxOpenFiles, memMiB, pinSelf, sleep, startPinned, stop, stopAll, waitForPort, withCpu, type PhaseCpu, type Proc } from './proxy/procs.js';
import { topFrames, type Frame } from './proxy/profile.js';
import { SETUPS, markdown, summarize, type Measure, type Sample, type Setup } from './proxy/report.js';
import { ORIGIN_ADDRESSES, ORIGIN_HOST, ensureTools, writeOrigin, writeSquid, writeTinyproxy, type Ports } from './proxy/setup.js';
import { issueTargets, type IdleResult } from './proxy/targets.js';
import { buildSetupLoop } from './proxy/setup-loop.js';
import { tlsSetupRate } from './proxy/tls-setup.js';
import { machine, startVigie, versions } from './proxy/vigie.js';
import { wrk, writeWrkScript } from './proxy/wrk.js';

const num = (name: string, dflt: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v}: expected a non-negative number`);
  return n;
};
const RUNS = Math.max(1, Math.floor(num('RUNS', 3)));
const PHASE = Math.max(1, num('PHASE_SECONDS', 10));
const CONNECTIONS = Math.max(1, num('CONNECTIONS', 50));
const MIB_CONNECTIONS = Math.max(1, num('MIB_CONNECTIONS', 10));
const TUNNEL_LOOPS = Math.max(1, num('TUNNEL_LOOPS', 50));
const BIG_MIB = Math.max(16, num('BIG_MIB', 1024));
const IDLE_TUNNELS = Math.floor(num('IDLE_TUNNELS', 10_000));
// Load at the fixed rate before its measured window, as wrk2's 10 s calibration (see fixedRate).
const FIXED_WARMUP = Math.max(LEAD_IN_S, num('FIXED_WARMUP', 10));
const VIGIE_WORKERS = Math.max(1, num('VIGIE_WORKERS', 1));
const PROFILE = process.env.VIGIE_PROFILE === '1';
const PHASE_NAMES = ['small', 'mib', 'bulk', 'setup', 'fixed', 'idle', 'tls'] as const;
const PHASES = new Set((process.env.PHASES || [...PHASE_NAMES, 'intercept'].join(',')).split(',').map((s) => s.trim()));
// `intercept`: TLS interception against Squid's ssl_bump (intercept-proxy.bench.ts, its own
// Squid, origin and CA), run after the other phases with the same RUNS and PHASE_SECONDS.
const INTERCEPT = PHASES.delete('intercept');
for (const p of PHASES) if (!(PHASE_NAMES as readonly string[]).includes(p)) throw new Error(`PHASES: unknown phase ${p} (known: ${PHASE_NAMES.join(', ')}, intercept)`);
const TLS_LOOPS = Math.max(1, num('TLS_LOOPS', 20));
const WANTED = (process.env.SETUPS ?? SETUPS.join(',')).split(',').map((s) => s.trim()) as Setup[];
for (const s of WANTED) if (!SETUPS.includes(s)) throw new Error(`SETUPS: unknown setup ${s} (known: ${SETUPS.join(', ')})`);
if (!WANTED.includes('direct') || !WANTED.includes('squid')) throw new Error('SETUPS must include direct and squid: they are the baselines');

const ROOT = new URL('../..', import.meta.url).pathname;
const PROXY_CPU = 0;
const LOAD_CPU = 1;
const log = (s: string) => process.stderr.write(`[bench:proxy ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const notes: string[] = [];

let tmpDir = '';
const profileDir = join(ROOT, 'bench-results', `vigie-profile-${new Date().toISOString().replace(/[:.]/g, '-')}`);
const cleanup = async () => {
  await stopAll();
  if (tmpDir && !process.env.KEEP_TMP) rmSync(tmpDir, { recursive: true, force: true });
};
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping everything`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main() {
  if (PHASES.size) await proxyPhases();
  if (INTERCEPT) {
    log('phase intercept: npm run bench:intercept-proxy');
    const r = spawnSync(process.execPath, [...process.execArgv, join(ROOT, 'test/bench/intercept-proxy.bench.ts')], { stdio: 'inherit', env: process.env });
    if (r.status !== 0) throw new Error(`intercept phase failed (${r.status ?? r.signal})`);
  }
}

async function proxyPhases() {
  ensureTools(log);
  if (os.cpus().length < 2) notes.push('fewer than 2 CPUs: proxy and load share one core');
  pinSelf(LOAD_CPU, 65536);
  tmpDir = mkdtempSync(join(os.tmpdir(), 'vigie-proxy-bench-'));
  // Squid and tinyproxy drop to unprivileged users and must reach their files in here.
  chmodSync(tmpDir, 0o755);
  const transparentTls = await freePort();
  const ports: Ports = { plain: await freePort(), tls: await freePort(), vigie: await freePort(), vigieMetrics: await freePort(), vigieRaw: await freePort(), vigieRawMetrics: await freePort(), vigie2w: await freePort(), vigie2wMetrics: await freePort(), squid: await freePort(), tinyproxy: await freePort(), floor: await freePort(), transparentTls };

  const nginxConf = writeOrigin(tmpDir, ports, BIG_MIB);
  const nginx = startPinned('nginx', LOAD_CPU, ['nginx', '-e', join(tmpDir, 'nginx-error.log'), '-p', tmpDir, '-c', nginxConf]);
  await waitForPort(nginx, ports.plain, 15_000);
  await waitForPort(nginx, ports.tls, 15_000);

  const procs: Partial<Record<Setup, Proc>> = {};
  if (WANTED.includes('squid')) {
    procs.squid = startPinned('squid', PROXY_CPU, ['squid', '-N', '-f', writeSquid(tmpDir, ports)]);
    await waitForPort(procs.squid, ports.squid, 30_000);
  }
  if (WANTED.includes('tinyproxy')) {
    procs.tinyproxy = startPinned('tinyproxy', PROXY_CPU, ['tinyproxy', '-d', '-c', writeTinyproxy(tmpDir, ports)]);
    await waitForPort(procs.tinyproxy, ports.tinyproxy, 15_000);
  }
  if (WANTED.includes('node-floor')) {
    procs['node-floor'] = startPinned('node-floor', PROXY_CPU, [process.execPath, '--import', 'tsx', join(ROOT, 'test/bench/proxy/node-floor.ts'), String(ports.floor), String(ports.plain)], { cwd: ROOT });
    await waitForPort(procs['node-floor'], ports.floor, 30_000);
  }
  if (WANTED.includes('vigie')) {
    procs.vigie = await startVigie(tmpDir, { ...ports, originAddress: ORIGIN_ADDRESSES.vigie }, { name: 'vigie', tunnels: 'socket', workers: VIGIE_WORKERS, cpu: PROXY_CPU, profileDir: PROFILE ? profileDir : null, notes, log });
    const r = await fetch(`http://127.0.0.1:${ports.vigieMetrics}/metrics`).catch((e: Error) => e);
    notes.push(r instanceof Response && r.ok ? 'metrics: on, /metrics answered' : `metrics: /metrics did not answer (${r instanceof Response ? r.status : r.message})`);
    if (r instanceof Response) await r.arrayBuffer();
  }
  if (WANTED.includes('vigie-raw')) {
    // The same gateway with tunnels on raw handles; the transparent listener is the first one's.
    const own = { ...ports, vigie: ports.vigieRaw!, vigieMetrics: ports.vigieRawMetrics!, transparentTls: undefined, originAddress: ORIGIN_ADDRESSES['vigie-raw'] };
    procs['vigie-raw'] = await startVigie(tmpDir, own, { name: 'vigie-raw', tunnels: 'raw', workers: VIGIE_WORKERS, cpu: PROXY_CPU, profileDir: null, notes, log });
  }
  if (WANTED.includes('vigie-2w')) {
    // Issue 23: a second worker must not cost throughput. Both CPUs, as the scheduler likes: the
    // load side keeps CPU 1, so the second worker only has what nginx and wrk leave there.
    const own = { ...ports, vigie: ports.vigie2w!, vigieMetrics: ports.vigie2wMetrics!, transparentTls: undefined, originAddress: ORIGIN_ADDRESSES['vigie-2w'] };
    procs['vigie-2w'] = await startVigie(tmpDir, own, { name: 'vigie-2w', tunnels: 'socket', workers: 2, cpu: `${PROXY_CPU},${LOAD_CPU}`, profileDir: null, notes, log });
  }

  // tinyproxy has no hosts table and would ask the system resolver for origin.test: it gets the address.
  const targets: Partial<Record<Setup, ClientTarget>> = {
    direct: { port: ports.plain, viaProxy: false, originHost: ORIGIN_HOST, originPort: ports.plain },
    vigie: { port: ports.vigie, viaProxy: true, originHost: ORIGIN_HOST, originPort: ports.plain },
    'vigie-raw': { port: ports.vigieRaw!, viaProxy: true, originHost: ORIGIN_HOST, originPort: ports.plain },
    'vigie-2w': { port: ports.vigie2w!, viaProxy: true, originHost: ORIGIN_HOST, originPort: ports.plain },
    // It has no hosts table and no resolver: every request goes to the one origin.
    'node-floor': { port: ports.floor, viaProxy: true, originHost: ORIGIN_HOST, originPort: ports.plain },
    squid: { port: ports.squid, viaProxy: true, originHost: ORIGIN_HOST, originPort: ports.plain },
    tinyproxy: { port: ports.tinyproxy, viaProxy: true, originHost: '127.0.0.1', originPort: ports.plain },
  };
  if (WANTED.includes('tinyproxy')) notes.push('tinyproxy is asked for 127.0.0.1 rather than origin.test (it has no hosts table of its own)');
  const setups = SETUPS.filter((s) => WANTED.includes(s));
  for (const s of setups) {
    let p = await probe(targets[s]!);
    for (let i = 0; i < 5 && (p.http !== 200 || p.tunnel !== 200); i++) {
      await sleep(1000);
      p = await probe(targets[s]!);
    }
    if (p.http !== 200 || p.tunnel !== 200) throw new Error(`${s}: probe failed (plain ${p.http}, tunnel ${p.tunnel}): ${p.detail}\n${procs[s]?.tail() ?? ''}`);
  }
  log(`all setups answer (${setups.join(', ')}); ports ${JSON.stringify(ports)}`);

  const script = writeWrkScript(tmpDir);
  if (PHASES.has('setup') && buildSetupLoop(tmpDir, log)) notes.push('tunnel set-ups: the C client (test/bench/proxy/setup-loop.c; BENCH_NODE_SETUP_CLIENT=1 for the Node one)');
  const wrkFor = (s: Setup, path: string, connections: number, seconds: number) => {
    const t = targets[s]!;
    const host = `${t.originHost}:${t.originPort}`;
    return wrk({
      script,
      connectTo: `http://127.0.0.1:${t.port}`,
      target: t.viaProxy ? `http://${host}${path}` : path,
      hostHeader: host,
      connections,
      seconds,
    });
  };
  const pidOf = (s: Setup) => procs[s]?.pid ?? null;
  /** CPU microseconds per operation, from the proxy's CPU % of one core and the rate it served. */
  const cpuPerOp = (cpuPercent: number, perSecond: number) => (perSecond > 0 ? (cpuPercent / 100) * 1e6 / perSecond : NaN);
  const measures: Record<string, Measure> = {};
  const measure = (key: string, label: string, unit: string, higherIsBetter: boolean) =>
    (measures[key] ??= { key, label, unit, higherIsBetter, samples: {} });
  const record = (key: string, s: Setup, sample: Sample) => ((measures[key]!.samples[s] ??= []).push(sample));
  const sampleOf = (value: number, errors: number, cpu: PhaseCpu): Sample => ({
    value,
    errors,
    proxyCpu: cpu.proxyCpu,
    loadCpu: cpu.loadCpu,
    busy: [cpu.cpuBusy[PROXY_CPU] ?? NaN, cpu.cpuBusy[LOAD_CPU] ?? NaN],
  });
  const phase = async <T>(s: Setup, fn: () => Promise<T>) => {
    const r = await withCpu(pidOf(s), nginx.pid, fn);
    // A proxy that died mid-run would otherwise show as a row of errors with no reason.
    for (const p of [procs[s], nginx]) {
      if (p && (p.child.exitCode !== null || p.child.signalCode !== null)) throw new Error(`${p.name} exited (${p.child.exitCode ?? p.child.signalCode}) during a ${s} phase:\n${p.tail()}`);
    }
    return r;
  };

  measure('small_rps', 'small requests', 'req/s', true);
  measure('small_p50', 'small p50 at 50 conns', 'ms', false);
  measure('small_p99', 'small p99 at 50 conns', 'ms', false);
  measure('mib_rate', '1 MiB transfers', 'MiB/s', true);
  measure('bulk', 'CONNECT bulk, 1 tunnel', 'MiB/s', true);
  measure('small_cpu', 'proxy CPU per small request', 'µs', false);
  measure('setup', 'tunnel setup', 'tunnels/s', true);
  measure('setup_cpu', 'proxy CPU per tunnel setup', 'µs', false);
  measure('fixed_p99', 'p99 at ½ Vigie max', 'ms', false);
  if (FIXED_WARMUP > LEAD_IN_S) measure('fixed_warm_p99', `p99 at ½ Vigie max, its first ${FIXED_WARMUP} s from idle`, 'ms', false);
  measure('fixed_rate', 'rate achieved at ½ Vigie max', 'req/s', true);
  measure('peak_rss', 'peak RSS after load phases', 'MiB', false);
  measure('idle_rss', `RSS, ${IDLE_TUNNELS} idle tunnels`, 'MiB', false);

  measure('tls_explicit', 'HTTPS set-up, CONNECT + TLS + GET', 'conns/s', true);
  measure('tls_transparent', 'HTTPS set-up, transparent + TLS + GET', 'conns/s', true);
  measure('tls_explicit_cpu', 'proxy CPU per HTTPS set-up, CONNECT', 'µs', false);
  measure('tls_transparent_cpu', 'proxy CPU per HTTPS set-up, transparent', 'µs', false);

  const only = (p: (typeof PHASE_NAMES)[number]) => PHASES.has(p);
  log('warm-up (JIT, keep-alive pools, decision cache)');
  for (const s of PHASES.size === 1 && only('tls') ? [] : setups) {
    await wrkFor(s, '/small', CONNECTIONS, 2);
    await tunnelSetupRate(targets[s]!, 8, 1);
  }

  if (only('tls') && procs.vigie) {
    for (const mode of ['explicit', 'transparent'] as const) {
      const w = await tlsSetupRate({ mode, port: mode === 'explicit' ? ports.vigie : transparentTls, originTlsPort: ports.tls }, 4, 1);
      if (w.done === 0) throw new Error(`HTTPS set-up (${mode}) never succeeded (${w.errors} errors):\n${procs.vigie.tail()}`);
    }
  }
  const raw: unknown[] = [];
  for (let run = 1; run <= RUNS; run++) {
    if (only('small')) log(`run ${run}/${RUNS}: small requests, ${CONNECTIONS} connections, ${PHASE} s each`);
    let vigieMax = NaN;
    for (const s of only('small') ? setups : []) {
      const r = await phase(s, () => wrkFor(s, '/small', CONNECTIONS, PHASE));
      record('small_rps', s, sampleOf(r.value.rps, r.value.errors + r.value.badStatus, r));
      record('small_p50', s, sampleOf(r.value.p50ms, 0, r));
      record('small_p99', s, sampleOf(r.value.p99ms, 0, r));
      // What each proxy spends per request, whoever limited the rate (load side or proxy).
      if (r.proxyCpu !== null) record('small_cpu', s, sampleOf(cpuPerOp(r.proxyCpu, r.value.rps), 0, r));
      raw.push({ run, phase: 'small', setup: s, ...r });
      // wrk counts each connection the server closes as a read error: one per request means no keep-alive.
      const note = `${s} closes the client connection after every response: its wrk rows are one connection per request (wrk counts each close as an error)`;
      if (r.value.requests > 0 && r.value.errors >= 0.9 * r.value.requests && !notes.includes(note)) notes.push(note);
      if (s === 'vigie') vigieMax = r.value.rps;
    }
    if (only('mib')) log(`run ${run}/${RUNS}: 1 MiB transfers, ${MIB_CONNECTIONS} connections`);
    for (const s of only('mib') ? setups : []) {
      const r = await phase(s, () => wrkFor(s, '/1m', MIB_CONNECTIONS, PHASE));
      record('mib_rate', s, sampleOf(r.value.mibps, r.value.errors + r.value.badStatus, r));
      raw.push({ run, phase: '1mib', setup: s, ...r });
    }
    if (only('bulk')) log(`run ${run}/${RUNS}: one ${BIG_MIB} MiB HTTPS download through one tunnel`);
    for (const s of only('bulk') ? setups : []) {
      const r = await phase(s, () => bulkDownload({ ...targets[s]!, tlsPort: ports.tls }, Math.max(30, PHASE * 3)));
      record('bulk', s, sampleOf(r.value.ok ? r.value.mibps : NaN, r.value.ok ? 0 : 1, r));
      raw.push({ run, phase: 'bulk', setup: s, ...r });
    }
    if (only('setup')) log(`run ${run}/${RUNS}: tunnel setup, ${TUNNEL_LOOPS} parallel loops`);
    for (const s of only('setup') ? setups : []) {
      const r = await phase(s, () => tunnelSetupRate(targets[s]!, TUNNEL_LOOPS, PHASE));
      record('setup', s, sampleOf(r.value.perSecond, r.value.errors, r));
      if (r.proxyCpu !== null) record('setup_cpu', s, sampleOf(cpuPerOp(r.proxyCpu, r.value.perSecond), 0, r));
      raw.push({ run, phase: 'setup', setup: s, ...r });
    }
    // Half of Vigie's closed-loop maximum of this run, offered at a fixed rate to each setup.
    const rate = Number.isFinite(vigieMax) ? Math.max(100, Math.round(vigieMax / 2)) : NaN;
    if (only('fixed') && Number.isFinite(rate)) {
      log(`run ${run}/${RUNS}: fixed rate ${rate} req/s (½ of Vigie's ${vigieMax.toFixed(0)})`);
      for (const s of setups.filter((x) => x !== 'tinyproxy')) {
        const r = await phase(s, () => fixedRate(targets[s]!, rate, CONNECTIONS, PHASE, FIXED_WARMUP));
        record('fixed_p99', s, sampleOf(r.value.p99ms, r.value.errors, r));
        if (FIXED_WARMUP > LEAD_IN_S) record('fixed_warm_p99', s, sampleOf(r.value.warmupP99ms, 0, r));
        record('fixed_rate', s, sampleOf(r.value.achieved, r.value.errors, r));
        raw.push({ run, phase: 'fixed', setup: s, ...r });
      }
    }
    // Issue 22: the same work, a fresh TCP connection and full TLS handshake with the origin, by
    // both paths into Vigie; the two alternate within a run so machine noise hits both alike.
    if (only('tls') && procs.vigie) {
      log(`run ${run}/${RUNS}: HTTPS set-up, explicit then transparent, ${TLS_LOOPS} loops`);
      for (const mode of ['explicit', 'transparent'] as const) {
        const port = mode === 'explicit' ? ports.vigie : transparentTls;
        const r = await phase('vigie', () => tlsSetupRate({ mode, port, originTlsPort: ports.tls }, TLS_LOOPS, PHASE));
        record(`tls_${mode}`, 'vigie', sampleOf(r.value.perSecond, r.value.errors, r));
        if (r.proxyCpu !== null) record(`tls_${mode}_cpu`, 'vigie', sampleOf(cpuPerOp(r.proxyCpu, r.value.perSecond), 0, r));
        raw.push({ run, phase: `tls_${mode}`, setup: 'vigie', ...r });
      }
    }
  }

  for (const s of setups) {
    const pid = pidOf(s);
    if (pid !== null) record('peak_rss', s, { value: memMiB(pid, 'VmHWM'), proxyCpu: null, loadCpu: null, busy: null, errors: 0 });
  }

  // Each tunnel costs the proxy two descriptors (client and origin side). Where the fd ceiling
  // cannot hold IDLE_TUNNELS (a container without CAP_SYS_RESOURCE), as many as fit are opened
  // and the RSS for IDLE_TUNNELS is projected from the measured cost per tunnel.
  const idleResults: Partial<Record<Setup, IdleResult>> = {};
  if (only('idle') && IDLE_TUNNELS > 0) {
    for (const s of setups.filter((x) => x === 'vigie' || x === 'squid')) {
      const pid = pidOf(s)!;
      const fdLimit = maxOpenFiles(pid);
      const count = Math.min(IDLE_TUNNELS, Math.floor((fdLimit - 300) / 2));
      if (count < IDLE_TUNNELS) notes.push(`${s}: open-file limit ${fdLimit} (the hard limit, not raisable here) holds ${count} tunnels, not ${IDLE_TUNNELS}: RSS for 10,000 projected linearly`);
      measures.idle_rss!.label = `RSS, ${count} idle tunnels`;
      log(`${s}: opening ${count} idle tunnels`);
      await sleep(1000);
      const rssBefore = memMiB(pid, 'VmRSS');
      const t = await openIdleTunnels(targets[s]!, count, 200, Math.max(60, PHASE * 6));
      await sleep(2000);
      const rss = memMiB(pid, 'VmRSS');
      t.close();
      const projected = t.opened > 0 ? rssBefore + ((rss - rssBefore) * 10_000) / t.opened : NaN;
      idleResults[s] = { wanted: count, opened: t.opened, failed: t.failed, aliveOk: t.aliveOk, aliveChecked: t.aliveChecked, rssBefore, rss, projected, fdLimit };
      log(`${s}: ${t.opened} open (${t.failed} failed), ${t.aliveOk}/${t.aliveChecked} sampled still carry a request, RSS ${rssBefore.toFixed(0)} -> ${rss.toFixed(0)} MiB`);
      record('idle_rss', s, { value: rss, proxyCpu: null, loadCpu: null, busy: null, errors: t.failed + (t.aliveChecked - t.aliveOk) });
      raw.push({ phase: 'idle', setup: s, ...idleResults[s] });
      await sleep(2000);
    }
  }
  const idle = idleResults.vigie;

  const targetsOfIssue = issueTargets(idle);

  // The profile is written when Vigie exits: stop it now, gracefully (nothing is in flight).
  let frames: Frame[] = [];
  if (PROFILE && procs.vigie) {
    await stop(procs.vigie, 30_000);
    frames = topFrames(profileDir);
    notes.push(`profile: ${profileDir} (covers start with list loading, then every phase)`);
  }

  const { rows, verdicts } = summarize(Object.values(measures), targetsOfIssue);
  const when = new Date().toISOString();
  const ver = versions();
  const header = [
    `Vigie proxy benchmark — ${when.slice(0, 16).replace('T', ' ')} UTC — ${machine()}`,
    `${RUNS} run(s), ${PHASE} s phases, wrk -t1 -c${CONNECTIONS} (1 MiB: -c${MIB_CONNECTIONS}), ${TUNNEL_LOOPS} tunnel-setup loops, ${BIG_MIB} MiB bulk; proxy on CPU ${PROXY_CPU} (vigie-2w: CPUs ${PROXY_CPU}–${LOAD_CPU}), nginx + load on CPU ${LOAD_CPU}`,
    `vigie ${ver.vigie}, ${ver.node}; ${ver.squid}; ${ver.tinyproxy}; ${ver.nginx}; ${ver.wrk}`,
    ...notes.map((n) => `note: ${n}`),
  ];
  const table = markdown(rows);
  console.log(`\n${header.join('\n')}\n\n${table}\n`);
  console.log('Targets (issue 7; HTTPS set-up: issue 22):');
  for (const v of verdicts) console.log(`- ${v.pass === null ? '?' : v.pass ? 'PASS' : 'FAIL'} ${v.text}: ${v.detail}`);

  if (frames.length) {
    console.log('\nVigie, top frames by self time (node --cpu-prof; % of each thread\'s busy samples):');
    for (const f of frames) console.log(`- ${f.thread}: ${f.selfPercent.toFixed(1).padStart(5)} % ${f.frame}`);
  }
  const outDir = join(ROOT, 'bench-results');
  mkdirSync(outDir, { recursive: true });
  const json = {
    when,
    machine: machine(),
    versions: ver,
    params: { PHASES: [...PHASES], TLS_LOOPS, RUNS, PHASE, CONNECTIONS, MIB_CONNECTIONS, TUNNEL_LOOPS, BIG_MIB, IDLE_TUNNELS, VIGIE_WORKERS, setups, proxyCpu: PROXY_CPU, loadCpu: LOAD_CPU },
    notes,
    rows,
    targets: verdicts,
    profile: frames,
    raw,
  };
  const file = join(outDir, `proxy-${when.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(json, null, 2));
  writeFileSync(join(outDir, 'proxy-latest.json'), JSON.stringify(json, null, 2));
  writeFileSync(join(outDir, 'proxy-latest.md'), `${header.join('\n\n')}\n\n${table}\n`);
  log(`wrote ${file}`);
}

main()
  .then(cleanup, async (e) => {
    console.error(e instanceof Error ? e.stack ?? e.message : e);
    await cleanup();
    process.exit(1);
  })
  .then(() => process.exit(0));
