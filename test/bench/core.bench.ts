/**
 * Gateway core figures (issue 2): time from start to serving with the full bundled lists, RSS
 * after load, and small-response requests/s through the proxy against direct to the origin,
 * measured in the same run. Loopback only; every phase is bounded in time.
 *
 *   npm run bench:core            (SECONDS_PER_PHASE=5 ROUNDS=2 CONNECTIONS=50 WORKERS=n to change them)
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmp } from '../helpers.js';
import { freePort, startSmallOrigin, treeRssMiB, unitNodeFlags, waitFor } from './common.js';
import { load, type LoadResult } from './loadgen.js';

const SECONDS = Number(process.env.SECONDS_PER_PHASE ?? process.env.SECONDS ?? 5);
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50);
const ROOT = new URL('../..', import.meta.url).pathname;

async function main() {
  const originPort = await freePort();
  const proxyPort = await freePort();
  const origin = await startSmallOrigin(originPort);

  const dir = tmp('vigie-bench-');
  const cfgFile = join(dir, 'config.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      listen: [{ host: '127.0.0.1', port: proxyPort }],
      hosts: { 'origin.test': '127.0.0.1' },
      destinations: { allow: [{ network: '127.0.0.0/8' }] },
      dns: { servers: ['127.0.0.1:9'] },
      log: { level: 'info' },
      // WORKERS=1 for one process; by default the gateway runs one proxy worker per core.
      ...(process.env.WORKERS ? { workers: Number(process.env.WORKERS) } : {}),
    }),
  );
  const t0 = performance.now();
  const gw = spawn(process.execPath, [...unitNodeFlags(), join(ROOT, 'dist/cli.js'), 'start', '--config', cfgFile, '--data', join(dir, 'data')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let gwLog = '';
  gw.stderr!.on('data', (d: Buffer) => (gwLog += d.toString()));
  await waitFor(gw, /proxy listening/, 30_000);
  const listenMs = performance.now() - t0;
  await waitFor(gw, /gateway ready[^\n]*/, 120_000);
  const readyMs = performance.now() - t0;
  const rssReady = treeRssMiB(gw.pid!);

  const direct = `GET /small HTTP/1.1\r\nHost: origin.test:${originPort}\r\n\r\n`;
  const viaProxy = `GET http://origin.test:${originPort}/small HTTP/1.1\r\nHost: origin.test:${originPort}\r\n\r\n`;
  const phase = (port: number, request: string, seconds: number) => load({ port, request, connections: CONNECTIONS, seconds });

  await phase(originPort, direct, 1);
  await phase(proxyPort, viaProxy, 2); // warm-up: JIT, keep-alive pools, decision cache
  const results: { name: string; r: LoadResult }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    results.push({ name: 'direct', r: await phase(originPort, direct, SECONDS) });
    results.push({ name: 'vigie', r: await phase(proxyPort, viaProxy, SECONDS) });
  }
  const rssAfter = treeRssMiB(gw.pid!);
  gw.kill('SIGTERM');
  origin.kill();

  const best = (name: string) => results.filter((x) => x.name === name).reduce((a, b) => (b.r.rps > a.r.rps ? b : a)).r;
  const d = best('direct');
  const v = best('vigie');
  const row = (name: string, r: LoadResult) =>
    `| ${name.padEnd(8)} | ${r.rps.toFixed(0).padStart(8)} | ${r.p50ms.toFixed(2).padStart(6)} | ${r.p99ms.toFixed(2).padStart(6)} | ${String(r.errors).padStart(6)} | ${(r.rps / d.rps).toFixed(2).padStart(5)} |`;
  console.log(`\nVigie core benchmark — ${new Date().toISOString()} — node ${process.version}, ${CONNECTIONS} keep-alive connections, ${SECONDS}s phases, best of ${ROUNDS}, workers ${process.env.WORKERS ?? 'default (one per core)'}`);
  console.log(`\n| start: listening (fail closed) | ${listenMs.toFixed(0)} ms |\n| start: full bundled lists serving | ${readyMs.toFixed(0)} ms |\n| RSS after lists loaded (all processes) | ${rssReady.toFixed(0)} MiB |\n| RSS after load (all processes) | ${rssAfter.toFixed(0)} MiB |`);
  console.log(`\n| path     |    req/s |  p50ms |  p99ms | errors | ×direct |\n|----------|---------:|-------:|-------:|-------:|------:|`);
  console.log(row('direct', d));
  console.log(row('vigie', v));
  console.log(`\nall phases: ${results.map((x) => `${x.name} ${x.r.rps.toFixed(0)}`).join(', ')}`);
  if (process.env.VERBOSE) console.log(gwLog);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
