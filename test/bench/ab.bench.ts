/**
 * Two builds of Vigie side by side, at the same time, on the same core (`npm run bench:ab`).
 *
 * This machine's speed drifts by up to 2× between runs, so a build measured after another differs
 * from it by more than most changes do. Here both gateways run at once, pinned to CPU 0, each
 * with its own identical load from this process on CPU 1 (nginx as the origin there too): both
 * see the same host. Two runs of the same build agree within ~1 % this way. It reports each
 * gateway's CPU per request (fixed rate) and per tunnel setup, which is what a change to the data
 * path moves; latency and rates are printed too, but two gateways sharing a core disturb each
 * other's.
 *
 *   npm run bench:ab                       # A = HEAD, B = the working tree
 *   A=main~3 B=main ROUNDS=5 npm run bench:ab
 *
 * Knobs: A, B (git revisions, or "worktree"), ROUNDS (3), SECONDS (8, per phase), RATE (8000
 * requests/s to each gateway), MODES (fixed,tunnel), A_JOURNAL / B_JOURNAL (JSON merged into that
 * side's `journal` config: one build, two settings, e.g.
 * `A=worktree B=worktree A_JOURNAL='{"flushMs":250}' npm run bench:ab`). Each revision is built once into
 * .bench-ab/<commit>/ (git archive + tsc) and kept for the next run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fixedRate, tunnelSetupRate, type Target } from './proxy/clients.js';
import { cpuTicks, freePort, startPinned, stopAll, killAllNow, waitForOutput, waitForPort, type Proc } from './proxy/procs.js';
import { ORIGIN_HOST, ensureTools, vigieConfig, writeOrigin, type Ports } from './proxy/setup.js';
import { median } from './common.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
const env = (name: string, dflt: string) => process.env[name] || dflt;
const num = (name: string, dflt: number) => {
  const n = Number(env(name, String(dflt)));
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: expected a positive number`);
  return n;
};
const REVS = { A: env('A', 'HEAD'), B: env('B', 'worktree') };
const JOURNAL = { A: JSON.parse(env('A_JOURNAL', '{}')) as Record<string, unknown>, B: JSON.parse(env('B_JOURNAL', '{}')) as Record<string, unknown> };
const ROUNDS = Math.floor(num('ROUNDS', 3));
const SECONDS = num('SECONDS', 8);
const RATE = num('RATE', 8000);
const MODES = env('MODES', 'fixed,tunnel').split(',').map((m) => m.trim());
for (const m of MODES) if (m !== 'fixed' && m !== 'tunnel') throw new Error(`MODES: unknown mode ${m} (fixed, tunnel)`);
const log = (s: string) => process.stderr.write(`[bench:ab ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

/** The dist/ directory of a revision: the working tree's own, or a cached build of a commit. */
function build(rev: string): { dist: string; label: string } {
  if (rev === 'worktree') {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim() !== '';
    const head = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    return { dist: join(ROOT, 'dist'), label: `worktree (${head}${dirty ? '+changes' : ''})` };
  }
  const sha = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', `${rev}^{commit}`], { encoding: 'utf8' }).trim();
  // Under the package, so that node_modules resolves from it; lists/ is shared (PACKAGE_ROOT).
  const dir = join(ROOT, '.bench-ab', sha);
  if (!existsSync(join(dir, 'dist', 'cli.js'))) {
    log(`building ${rev} (${sha}) into .bench-ab/${sha}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execFileSync('/bin/sh', ['-c', `git -C '${ROOT}' archive ${sha} src tsconfig.json tsconfig.build.json package.json | tar -x -C '${dir}'`]);
    symlinkSync(join(ROOT, 'lists'), join(dir, 'lists'));
    execFileSync(join(ROOT, 'node_modules', '.bin', 'tsc'), ['-p', join(dir, 'tsconfig.build.json')], { stdio: 'inherit' });
  }
  return { dist: join(dir, 'dist'), label: `${rev} (${sha})` };
}

/**
 * The bench's config as a build reads it: top-level keys an older build does not know (it would
 * refuse the file) are left out, since that build could not use them anyway.
 */
async function configFor(dist: string, cfg: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { resolveConfig } = (await import(pathToFileURL(join(dist, 'config', 'load.js')).href)) as typeof import('../../src/config/load.js');
  const doc = { ...cfg };
  for (;;) {
    try {
      resolveConfig({ ...doc, dataDir: tmpdir() });
      return doc;
    } catch (e) {
      const unknown = /^ {2}\/: unknown key "([^"]+)"$/m.exec((e as Error).message);
      if (!unknown || !(unknown[1]! in doc)) throw e;
      log(`${dist}: leaves out "${unknown[1]}", a key it does not know`);
      delete doc[unknown[1]!];
    }
  }
}

interface Row {
  mode: string;
  measure: string;
  unit: string;
  a: number[];
  b: number[];
}

const fmt = (x: number) => (Number.isFinite(x) ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2)) : '–');

async function main(): Promise<void> {
  ensureTools(log);
  const builds = { A: build(REVS.A), B: REVS.B === REVS.A ? build(REVS.A) : build(REVS.B) };
  for (const side of ['A', 'B'] as const) if (Object.keys(JOURNAL[side]).length) builds[side] = { ...builds[side], label: `${builds[side].label} journal ${JSON.stringify(JOURNAL[side])}` };
  const tmp = mkdtempSync(join(tmpdir(), 'vigie-ab-'));
  const cleanup = async () => {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.on('exit', killAllNow);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void cleanup().finally(() => process.exit(130)));
  try {
    const base: Ports = { plain: await freePort(), tls: await freePort(), vigie: 0, vigieMetrics: 0, squid: 0, tinyproxy: 0, floor: 0 };
    const nginx = startPinned('nginx', 1, ['nginx', '-e', join(tmp, 'nginx-error.log'), '-p', tmp, '-c', writeOrigin(tmp, base, 16)]);
    await waitForPort(nginx, base.plain, 10_000);

    const gateways: Record<'A' | 'B', { proc: Proc; target: Target }> = {} as never;
    for (const side of ['A', 'B'] as const) {
      const ports = { ...base, vigie: await freePort(), vigieMetrics: await freePort() };
      const dir = join(tmp, side);
      mkdirSync(dir);
      const file = join(dir, 'vigie.json');
      const cfg = vigieConfig(ports, { journal: true, workers: 1 });
      cfg.journal = { ...(cfg.journal as object), ...JOURNAL[side] };
      writeFileSync(file, JSON.stringify(await configFor(builds[side].dist, cfg), null, 2));
      const proc = startPinned(`vigie ${side}`, 0, [process.execPath, join(builds[side].dist, 'cli.js'), 'start', '--config', file, '--data', join(dir, 'data')], { cwd: dir });
      await waitForOutput(proc, /gateway ready/, 180_000);
      gateways[side] = { proc, target: { port: ports.vigie, viaProxy: true, originHost: ORIGIN_HOST, originPort: base.plain } };
    }
    log(`A = ${builds.A.label}, B = ${builds.B.label}; both pinned to CPU 0, loads on CPU 1`);

    const rows: Row[] = [];
    /** One round's value of a measure for each build. */
    const add = (mode: string, measure: string, unit: string, a: number, b: number) => {
      let r = rows.find((x) => x.mode === mode && x.measure === measure);
      if (!r) rows.push((r = { mode, measure, unit, a: [], b: [] }));
      r.a.push(a);
      r.b.push(b);
    };
    /** Runs `load` against both gateways at once; CPU per operation of each over the same span. */
    const both = async <T>(load: (t: Target) => Promise<T>, ops: (r: T) => number) => {
      const pids = [gateways.A.proc.pid, gateways.B.proc.pid];
      const before = pids.map(cpuTicks);
      const [ra, rb] = await Promise.all([load(gateways.A.target), load(gateways.B.target)]);
      const after = pids.map(cpuTicks);
      const us = (i: number, r: T) => ((after[i]! - before[i]!) / CLK_TCK / Math.max(1, ops(r))) * 1e6;
      return { ra: ra!, rb: rb!, usA: us(0, ra!), usB: us(1, rb!) };
    };

    log('warm-up');
    await both((t) => fixedRate(t, RATE, 50, 2), (r) => r.answered);
    await both((t) => tunnelSetupRate(t, 20, 2), (r) => r.ok);
    for (let round = 1; round <= ROUNDS; round++) {
      if (MODES.includes('fixed')) {
        log(`round ${round}/${ROUNDS}: fixed ${RATE} req/s to each, ${SECONDS} s`);
        const r = await both((t) => fixedRate(t, RATE, 50, SECONDS), (x) => x.answered);
        add('fixed', 'CPU per request', 'µs', r.usA, r.usB);
        add('fixed', 'p99 (cores shared)', 'ms', r.ra.p99ms, r.rb.p99ms);
        add('fixed', 'errors', '', r.ra.errors, r.rb.errors);
      }
      if (MODES.includes('tunnel')) {
        log(`round ${round}/${ROUNDS}: tunnel setups, 50 loops each, ${SECONDS} s`);
        const r = await both((t) => tunnelSetupRate(t, 50, SECONDS), (x) => x.ok);
        add('tunnel', 'CPU per setup', 'µs', r.usA, r.usB);
        add('tunnel', 'setups/s (core shared)', '/s', r.ra.perSecond, r.rb.perSecond);
        add('tunnel', 'errors', '', r.ra.errors, r.rb.errors);
      }
    }

    const lines = [
      `A = ${builds.A.label}, B = ${builds.B.label}; ${ROUNDS} rounds, median [min–max]`,
      '',
      '| mode | measure | A | B | B/A |',
      '|---|---|---:|---:|---:|',
      ...rows.map((r) => {
        const span = (xs: number[]) => `${fmt(median(xs))} [${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}]`;
        const ratio = median(r.b) / median(r.a);
        return `| ${r.mode} | ${r.measure}${r.unit ? ` (${r.unit})` : ''} | ${span(r.a)} | ${span(r.b)} | ${Number.isFinite(ratio) ? ratio.toFixed(3) : '–'} |`;
      }),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    const out = join(ROOT, 'bench-results');
    mkdirSync(out, { recursive: true });
    const file = join(out, `ab-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, JSON.stringify({ a: builds.A.label, b: builds.B.label, rounds: ROUNDS, seconds: SECONDS, rate: RATE, rows }, null, 2));
    log(`wrote ${file}`);
  } finally {
    await cleanup();
  }
}

await main();
