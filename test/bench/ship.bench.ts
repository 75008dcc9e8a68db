/**
 * Journal shipping to PostgreSQL (`flock /tmp/vigie-bench.lock npm run bench:ship`).
 *
 * 1. Rows shipped per second: a journal of ROWS rows (written with JournalWriter, ten-row links
 *    and thousand-row links) shipped from scratch by the shipper's worker thread into a throw-away
 *    PostgreSQL (test/pg-helpers.ts), for two batch sizes.
 * 2. The proxy's small-request rate with shipping on against off, in the same run: two gateways
 *    built from this tree (dist/), both pinned to CPU 0, one shipping its journal to PostgreSQL and
 *    one not; nginx, wrk, PostgreSQL and this process on CPU 1. wrk (50 connections, SECONDS)
 *    loads one gateway at a time, alternating, ROUNDS times; before each phase the shipping one has
 *    caught up (lag 0), so neither phase pays for the other's backlog. Printed: req/s per phase,
 *    the ratio of medians, the lag at the end of each shipping phase and how fast it caught up.
 * PostgreSQL (another machine in production) runs at nice 19 on CPU 1, so it only gets the time the
 * load generator leaves. Knobs: ROWS (200,000), ROUNDS (3), SECONDS (10).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JournalShipper } from '../../src/journal/ship.js';
import { JournalWriter } from '../../src/journal/writer.js';
import { silentLogger } from '../../src/log.js';
import { startPostgres } from '../pg-helpers.js';
import { shipRows } from '../ship-helpers.js';
import { freePort, killAllNow, sleep, startPinned, stopAll, waitForOutput, waitForPort } from './proxy/procs.js';
import { ORIGIN_HOST, ensureTools, vigieConfig, writeOrigin, type Ports } from './proxy/setup.js';
import { wrk, writeWrkScript } from './proxy/wrk.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const ROWS = Number(process.env.ROWS ?? 200_000);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SECONDS = Number(process.env.SECONDS ?? 10);
const log = (s: string) => process.stderr.write(`[bench:ship ${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const tmp = mkdtempSync(join(tmpdir(), 'vigie-ship-bench-'));
const db = await startPostgres();
process.on('exit', killAllNow);
// PostgreSQL forks its backends from the postmaster: pinning it pins them all, away from the proxy's core.
const postmaster = readFileSync(join(db.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]!;
execFileSync('taskset', ['-a', '-p', '-c', '1', postmaster], { stdio: 'ignore' });
// The academy's PostgreSQL is another machine: here it only gets what CPU 1's load leaves (nice 19,
// inherited by the backends it forks later), so its work does not slow the load generator.
for (const pid of [postmaster, ...execFileSync('pgrep', ['-P', postmaster], { encoding: 'utf8' }).split('\n').filter(Boolean)]) execFileSync('renice', ['-n', '19', '-p', pid], { stdio: 'ignore' });
const out: string[] = [];
try {
  // 1. Throughput of the shipper alone.
  out.push(`Rows shipped into PostgreSQL ${(await db.query('SHOW server_version')).rows[0].server_version} (from scratch, one worker thread, loopback; ${ROWS.toLocaleString('en')} rows)`, '', '| rows per link | batchRows | seconds | rows/s |', '|---:|---:|---:|---:|');
  for (const [perLink, batchRows] of [[10, 5000], [1000, 5000], [1000, 20000]] as const) {
    const file = join(tmp, `j-${perLink}-${batchRows}.db`);
    const w = new JournalWriter(file, { synchronous: 'OFF' });
    const t0 = Date.now() - 40 * 86_400_000;
    for (let i = 1; i <= ROWS; i += 10_000) {
      const rows = shipRows(i, Math.min(10_000, ROWS - i + 1), t0 + i * 10);
      for (let k = 0; k < rows.length; k += perLink) w.write(rows.slice(k, k + perLink), [], t0 + (i + k) * 10);
    }
    const head = w.head().id;
    w.close();
    const gateway = `bench-${perLink}-${batchRows}`;
    const s = new JournalShipper({ file, url: db.url, gatewayId: gateway, batchRows, pollMs: 20, retryMs: 200, nice: null, fleetSeconds: 0, log: silentLogger });
    const t1 = performance.now();
    s.start();
    await s.waitFor(head, 600_000);
    const secs = (performance.now() - t1) / 1000;
    await s.close();
    const n = Number((await db.query('SELECT count(*) AS n FROM vigie_rows WHERE gateway = $1', [gateway])).rows[0].n);
    if (n !== ROWS) throw new Error(`${gateway}: ${n} rows in PostgreSQL, expected ${ROWS}`);
    out.push(`| ${perLink} | ${batchRows} | ${secs.toFixed(2)} | ${Math.round(ROWS / secs).toLocaleString('en')} |`);
    log(`shipped ${ROWS} rows (${perLink} per link, batchRows ${batchRows}) in ${secs.toFixed(2)} s`);
  }
  await db.query('TRUNCATE vigie_rows, vigie_chain, vigie_ship');

  // 2. The proxy with shipping on against off.
  ensureTools(log);
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });
  const base: Ports = { plain: await freePort(), tls: await freePort(), vigie: 0, vigieMetrics: 0, squid: 0, tinyproxy: 0, floor: 0 };
  const nginx = startPinned('nginx', 1, ['nginx', '-e', join(tmp, 'nginx-error.log'), '-p', tmp, '-c', writeOrigin(tmp, base, 16)]);
  await waitForPort(nginx, base.plain, 10_000);
  const sides = {} as Record<'off' | 'on', { port: number; metrics: number }>;
  for (const side of ['off', 'on'] as const) {
    const ports = { ...base, vigie: await freePort(), vigieMetrics: await freePort() };
    const dir = join(tmp, side);
    mkdirSync(dir);
    const cfg = vigieConfig(ports, { journal: true, workers: 1 });
    if (side === 'on') cfg.journal = { enabled: true, ship: { url: db.url, gatewayId: 'bench-proxy', batchRows: 5000, fleetSeconds: 0 } };
    writeFileSync(join(dir, 'vigie.json'), JSON.stringify(cfg, null, 2));
    const proc = startPinned(`vigie ${side}`, 0, [process.execPath, join(ROOT, 'dist', 'cli.js'), 'start', '--config', join(dir, 'vigie.json'), '--data', join(dir, 'data')], { cwd: dir });
    await waitForOutput(proc, /gateway ready/, 180_000);
    sides[side] = { port: ports.vigie, metrics: ports.vigieMetrics };
  }
  const lag = () =>
    new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: sides.on.metrics, path: '/metrics' }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve(Number(/^vigie_journal_ship_lag_seconds (\S+)$/m.exec(text)?.[1] ?? NaN)));
      }).on('error', reject);
    });
  const shipped = async () => Number((await db.query(`SELECT count(*) AS n FROM vigie_rows WHERE gateway = 'bench-proxy'`)).rows[0].n);
  const caughtUp = async () => {
    const t0 = performance.now();
    const rows0 = await shipped();
    while ((await lag()) !== 0) await sleep(100);
    const secs = (performance.now() - t0) / 1000;
    return { secs, rows: (await shipped()) - rows0 };
  };
  const script = writeWrkScript(tmp);
  const host = `${ORIGIN_HOST}:${base.plain}`;
  const load = (port: number, seconds: number) => wrk({ script, connectTo: `http://127.0.0.1:${port}`, target: `http://${host}/small`, hostHeader: host, connections: 50, seconds });
  log('warm-up');
  await load(sides.off.port, 2);
  await load(sides.on.port, 2);
  await caughtUp();
  const rates = { off: [] as number[], on: [] as number[] };
  const lagRows: string[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    for (const side of r % 2 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      await caughtUp();
      await sleep(1000);
      const res = await load(sides[side].port, SECONDS);
      if (res.errors + res.badStatus > 0) log(`${side}: ${res.errors} errors, ${res.badStatus} bad answers`);
      rates[side].push(res.rps);
      log(`round ${r}: shipping ${side}: ${Math.round(res.rps)} req/s`);
      if (side === 'on') {
        const end = await lag();
        const c = await caughtUp();
        lagRows.push(`| ${r} | ${Math.round(res.rps * SECONDS).toLocaleString('en')} | ${end.toFixed(1)} | ${c.secs.toFixed(1)} | ${c.secs > 0 ? Math.round(c.rows / c.secs).toLocaleString('en') : '–'} |`);
      }
    }
  }
  out.push(
    '',
    `Small requests through the proxy (wrk, 50 connections, ${SECONDS} s a phase, gateways alternating on CPU 0, ${ROUNDS} rounds): req/s`,
    '',
    '| journal shipping | rounds | median | ratio on/off |',
    '|---|---|---:|---:|',
    `| off | ${rates.off.map(Math.round).join(', ')} | ${Math.round(median(rates.off))} | |`,
    `| on | ${rates.on.map(Math.round).join(', ')} | ${Math.round(median(rates.on))} | ${(median(rates.on) / median(rates.off)).toFixed(3)} |`,
    '',
    'The shipping gateway after each of its phases (its shipper runs at nice 19: under saturation it yields the core and catches up after):',
    '',
    '| round | rows recorded in the phase | lag at its end (s) | catch-up (s) | rows/s shipped while catching up |',
    '|---:|---:|---:|---:|---:|',
    ...lagRows,
    '',
  );
  process.stdout.write(out.join('\n'));
} finally {
  await stopAll();
  await db.destroy();
  rmSync(tmp, { recursive: true, force: true });
}
