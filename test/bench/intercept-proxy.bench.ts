/**
 * TLS interception, Vigie (`intercept: "full"`) against Squid `ssl_bump` (issue 24's "Done when"),
 * side by side in one run, both signing with the same school CA (ECDSA P-256 leaves), TLS
 * session resumption off on the client side, upstream resumption impossible (the origin has
 * no session cache nor tickets):
 *   keepalive  small GETs over 50 keep-alive intercepted TLS sessions;
 *   one-host   new intercepted connections (CONNECT + full TLS handshake with the client + a new
 *              upstream connection with a full handshake: the origin closes after each response);
 *   new-hosts  the same, each connection for a name never seen (a certificate to make each time).
 * The proxy runs on CPU 0; nginx and the Node client on CPU 1. Rates and proxy CPU per
 * request/connection (the client may cap the rates; CPU per operation is what each proxy spends).
 *
 *   flock /tmp/vigie-bench.lock npm run bench:intercept-proxy
 *   RUNS=1 PHASE_SECONDS=3 npm run bench:intercept-proxy     (quick check)
 *
 * Environment: RUNS (3), PHASE_SECONDS (10), CONNECTIONS (50), LOOPS (20), HOSTS (40000), VIGIE_WORKERS (1),
 * MEASURES (keep,one,new: the rows to run), VIGIE_PROFILE=1 (Vigie under `node --cpu-prof`, its
 * top frames by self time printed at the end; the profile covers the start too).
 * Needs squid-openssl (installed when missing; it replaces `squid`), nginx-light, openssl, taskset.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bumpKeepAlive, bumpSetupRate, type BumpTarget, type RateResult } from './proxy/intercept-clients.js';
import { BUMP_ORIGIN, CERTGEN, hostName, vigieBumpConfig, writeBumpOrigin, writeOriginCerts, writeSquidBump, type BumpPorts } from './proxy/intercept-setup.js';
import { freePort, killAllNow, pinSelf, startPinned, stop, stopAll, waitForOutput, waitForPort, withCpu, type Proc } from './proxy/procs.js';
import { topFrames } from './proxy/profile.js';
import { machine, versions } from './proxy/vigie.js';

const num = (name: string, dflt: number) => {
  const n = Number(process.env[name] || dflt);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}=${process.env[name]}: expected a positive number`);
  return n;
};
const RUNS = Math.floor(num('RUNS', 3));
const PHASE = num('PHASE_SECONDS', 10);
const CONNECTIONS = Math.floor(num('CONNECTIONS', 50));
const LOOPS = Math.floor(num('LOOPS', 20));
const HOSTS = Math.floor(num('HOSTS', 40_000));
const WORKERS = Math.floor(num('VIGIE_WORKERS', 1));
const MEASURES = new Set((process.env.MEASURES || 'keep,one,new').split(','));
const PROFILE = process.env.VIGIE_PROFILE === '1';
const ROOT = new URL('../..', import.meta.url).pathname;
const PROXY_CPU = 0;
const LOAD_CPU = 1;
const SETUPS = ['vigie', 'squid'] as const;
type Setup = (typeof SETUPS)[number];
const log = (s: string) => process.stderr.write(`[bench:intercept-proxy ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

let tmpDir = '';
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void stopAll().finally(() => process.exit(130)));

function ensureTools(): void {
  const has = (c: string) => {
    try {
      execFileSync('/bin/sh', ['-c', `command -v ${c}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  const missing = [...(existsSync(CERTGEN) ? [] : ['squid-openssl']), ...(has('nginx') ? [] : ['nginx-light']), ...(has('taskset') ? [] : ['util-linux'])];
  if (!missing.length) return;
  log(`installing ${missing.join(' ')} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '-o', 'DPkg::Lock::Timeout=300', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env });
  try {
    execFileSync('/bin/sh', ['-c', 'service squid stop; service nginx stop'], { stdio: 'ignore' });
  } catch {
    /* not running */
  }
}

const median = (xs: number[]) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

async function main() {
  ensureTools();
  pinSelf(LOAD_CPU, 65536);
  tmpDir = mkdtempSync(join(os.tmpdir(), 'vigie-intercept-bench-'));
  chmodSync(tmpDir, 0o755);
  const ports: BumpPorts = { keep: await freePort(), close: await freePort(), squid: await freePort(), vigie: await freePort(), vigieMetrics: await freePort() };
  const certs = writeOriginCerts(tmpDir);
  const nginx = startPinned('nginx', LOAD_CPU, ['nginx', '-e', join(tmpDir, 'nginx-bump-error.log'), '-p', tmpDir, '-c', writeBumpOrigin(tmpDir, ports, certs)]);
  await waitForPort(nginx, ports.keep, 15_000);

  // The school CA, made by the real CLI; both proxies sign with it.
  const data = join(tmpDir, 'vigie-data');
  execFileSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'ca', 'init', '--name', 'Bench school CA', '--data', data], { stdio: 'ignore' });
  const caDir = join(data, 'ca');
  const ca = readFileSync(join(caDir, 'ca.cert.pem'), 'utf8');

  const procs: Record<Setup, Proc> = {} as Record<Setup, Proc>;
  procs.squid = startPinned('squid', PROXY_CPU, ['squid', '-N', '-f', writeSquidBump(tmpDir, ports, caDir, certs.caFile, HOSTS)]);
  await waitForPort(procs.squid, ports.squid, 30_000);
  const { defaultConfig } = (await import(pathToFileURL(join(ROOT, 'dist/config/defaults.js')).href)) as typeof import('../../src/config/defaults.js');
  const cfgFile = join(tmpDir, 'vigie.json');
  writeFileSync(cfgFile, JSON.stringify(vigieBumpConfig(ports, caDir, certs.caFile, HOSTS, defaultConfig().profiles.college, WORKERS)));
  const profileDir = join(tmpDir, 'profile');
  const prof = PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  procs.vigie = startPinned('vigie', PROXY_CPU, [process.execPath, ...prof, join(ROOT, 'dist/cli.js'), 'start', '--config', cfgFile, '--data', data]);
  await waitForOutput(procs.vigie, /gateway ready/, 180_000);

  const target = (s: Setup, originPort: number): BumpTarget => ({ port: s === 'vigie' ? ports.vigie : ports.squid, originPort, ca });
  const next: Record<Setup, number> = { vigie: 0, squid: 0 };
  const newHost = (s: Setup) => () => {
    if (next[s] >= HOSTS) throw new Error(`HOSTS=${HOSTS} names used up by ${s}: raise HOSTS`);
    return hostName(next[s]++);
  };
  log('warm-up and probe (each proxy must intercept: the client verifies the school CA and the name)');
  for (const s of SETUPS) {
    const w = await bumpSetupRate(target(s, ports.close), () => BUMP_ORIGIN, 4, 2);
    const k = await bumpKeepAlive(target(s, ports.keep), BUMP_ORIGIN, 4, 1);
    if (w.done === 0 || k.done === 0) throw new Error(`${s}: no intercepted request succeeded:\n${procs[s].tail()}`);
    await bumpSetupRate(target(s, ports.close), newHost(s), 4, 1);
  }

  type Row = { label: string; unit: string; higher: boolean; v: Record<Setup, number[]>; errors: Record<Setup, number> };
  const rows: Record<string, Row> = {};
  const add = (key: string, label: string, unit: string, higher: boolean, s: Setup, value: number, errors: number) => {
    const r = (rows[key] ??= { label, unit, higher, v: { vigie: [], squid: [] }, errors: { vigie: 0, squid: 0 } });
    r.v[s].push(value);
    r.errors[s] += errors;
  };
  const phase = async (s: Setup, fn: () => Promise<RateResult>) => {
    const r = await withCpu(procs[s].pid, nginx.pid, fn);
    for (const p of [procs[s], nginx]) if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`${p.name} exited:\n${p.tail()}`);
    return { ...r.value, cpuUs: r.proxyCpu !== null && r.value.perSecond > 0 ? ((r.proxyCpu / 100) * 1e6) / r.value.perSecond : NaN, loadCpu: r.loadCpu };
  };
  for (let run = 1; run <= RUNS; run++) {
    log(`run ${run}/${RUNS}`);
    for (const s of MEASURES.has('keep') ? SETUPS : []) {
      const k = await phase(s, () => bumpKeepAlive(target(s, ports.keep), BUMP_ORIGIN, CONNECTIONS, PHASE));
      add('keep', `small requests, ${CONNECTIONS} keep-alive intercepted sessions`, 'req/s', true, s, k.perSecond, k.errors);
      add('keep_cpu', 'proxy CPU per request', 'µs', false, s, k.cpuUs, 0);
      add('keep_load', 'load-side CPU (nginx + client)', '% core', false, s, k.loadCpu, 0);
    }
    for (const s of MEASURES.has('one') ? SETUPS : []) {
      const o = await phase(s, () => bumpSetupRate(target(s, ports.close), () => BUMP_ORIGIN, LOOPS, PHASE));
      add('one', `new intercepted connections, one host, ${LOOPS} loops`, 'conns/s', true, s, o.perSecond, o.errors);
      add('one_cpu', 'proxy CPU per connection, one host', 'µs', false, s, o.cpuUs, 0);
      add('one_load', 'load-side CPU (nginx + client)', '% core', false, s, o.loadCpu, 0);
    }
    for (const s of MEASURES.has('new') ? SETUPS : []) {
      const n = await phase(s, () => bumpSetupRate(target(s, ports.close), newHost(s), LOOPS, PHASE));
      add('new', `new intercepted connections, a new host each, ${LOOPS} loops`, 'conns/s', true, s, n.perSecond, n.errors);
      add('new_cpu', 'proxy CPU per connection, new host', 'µs', false, s, n.cpuUs, 0);
      add('new_load', 'load-side CPU (nginx + client)', '% core', false, s, n.loadCpu, 0);
    }
  }

  const ver = versions();
  const header = [
    `Vigie interception benchmark — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC — ${machine()}`,
    `${RUNS} run(s) of ${PHASE} s, medians; proxy on CPU ${PROXY_CPU}, nginx + Node client on CPU ${LOAD_CPU}; leaves ECDSA P-256 (one school CA), no client resumption, origin without session cache/tickets`,
    `vigie ${ver.vigie} (intercept: full, college profile, full bundled lists, journal on, workers: ${WORKERS}), ${ver.node}; ${ver.squid} (ssl_bump peek+bump, security_file_certgen); ${ver.nginx}`,
  ];
  const lines = ['| measure | unit | vigie | squid ssl_bump | vigie vs squid | errors v/s |', '|---|---|---:|---:|---:|---:|'];
  const verdicts: string[] = [];
  for (const [key, r] of Object.entries(rows)) {
    const v = median(r.v.vigie);
    const q = median(r.v.squid);
    const ratio = key.endsWith('_load') ? NaN : r.higher ? v / q : q / v;
    const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
    lines.push(`| ${r.label} | ${r.unit} | ${f(v)} | ${f(q)} | ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : ''} | ${r.errors.vigie}/${r.errors.squid} |`);
    if (Number.isFinite(ratio)) verdicts.push(`- ${ratio >= 1.2 ? 'PASS' : 'FAIL'} ${r.label}: ${ratio.toFixed(2)}× Squid (target ≥ 1.2×; ${r.higher ? 'rate' : 'CPU, lower is better'})`);
  }
  let profile = '';
  if (PROFILE) {
    // The profile is written when Vigie exits.
    await stop(procs.vigie, 30_000);
    profile = `\nVigie, top frames by self time (node --cpu-prof; % of busy samples; start included):\n${topFrames(profileDir, 25)
      .map((f) => `- ${f.thread}: ${f.selfPercent.toFixed(1).padStart(5)} % ${f.frame}`)
      .join('\n')}\nprofile: ${profileDir} (KEEP_TMP=1 keeps it)\n`;
  }
  const out = `${header.join('\n')}\n\n${lines.join('\n')}\n\nTargets (issue 24):\n${verdicts.join('\n')}\n${profile}`;
  console.log(`\n${out}`);
  const dir = join(ROOT, 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'intercept-proxy-latest.md'), out);
  writeFileSync(join(dir, 'intercept-proxy-latest.json'), JSON.stringify({ params: { RUNS, PHASE, CONNECTIONS, LOOPS, HOSTS }, versions: ver, rows }, null, 2));
}

main()
  .then(
    () => 0,
    (e) => {
      console.error(e instanceof Error ? (e.stack ?? e.message) : e);
      return 1;
    },
  )
  .then(async (code) => {
    await stopAll();
    if (tmpDir && !process.env.KEEP_TMP) rmSync(tmpDir, { recursive: true, force: true });
    process.exit(code);
  });
