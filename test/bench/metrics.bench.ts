/**
 * Metrics overhead (issue 6): proxied requests/s with metrics on and off, two gateways run side by
 * side from the same build and measured in rotating phases of the same run, plus a second gateway
 * without metrics as the noise floor; the "on" gateway is scraped every SCRAPE_MS during its phases
 * (Prometheus would every 15-60 s). Also the cost of one observer event in-process. Loopback only;
 * every phase is bounded in time.
 *
 *   npm run bench:metrics        (SECONDS=2 ROUNDS=12 CONNECTIONS=50 SCRAPE_MS=1000 to change them)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { MetricsObserver } from '../../src/metrics/observer.js';
import { createGatewayMetrics } from '../../src/metrics/registry.js';
import type { ConnectionRecord } from '../../src/proxy/events.js';
import { tmp } from '../helpers.js';
import { freePort, median, startSmallOrigin, waitFor } from './common.js';
import { load, type LoadResult } from './loadgen.js';

const SECONDS = Number(process.env.SECONDS_PER_PHASE ?? process.env.SECONDS ?? 2);
const ROUNDS = Number(process.env.ROUNDS ?? 12);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50);
const SCRAPE_MS = Number(process.env.SCRAPE_MS ?? 1000);
const ROOT = new URL('../..', import.meta.url).pathname;

function scrapeOnce(port: number): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(performance.now() - t0));
      })
      .on('error', reject);
  });
}

async function startGateway(dir: string, name: string, proxyPort: number, metricsPort: number, enabled: boolean): Promise<ChildProcess> {
  const cfgFile = join(dir, `${name}.json`);
  writeFileSync(
    cfgFile,
    JSON.stringify({
      listen: [{ host: '127.0.0.1', port: proxyPort }],
      metrics: { enabled, listen: { host: '127.0.0.1', port: metricsPort } },
      supervision: { enabled: false },
      hosts: { 'origin.test': '127.0.0.1' },
      destinations: { allow: [{ network: '127.0.0.0/8' }] },
      dns: { servers: ['127.0.0.1:9'] },
      log: { level: 'info' },
    }),
  );
  const gw = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), 'start', '--config', cfgFile, '--data', join(dir, `${name}-data`), '--grace', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  gw.stderr!.on('data', () => {});
  return gw;
}

/** ns per observer call, on the in-process observer (a cached decision, as decideCached gives). */
async function observerCost(): Promise<{ requestNs: number; tunnelNs: number; scrapeMs: number }> {
  const decision = { action: 'allow', profile: 'cycle3', category: null, rule: 'default', entry: null, matchKind: null, period: 'within', listVersion: 'x', policyVersion: 1 } as const;
  const rec: ConnectionRecord = { kind: 'request', time: Date.now(), client: '127.0.0.1', user: null, method: 'GET', scheme: 'http', host: 'origin.test', port: 80, path: '/', decision, status: 200, bytesIn: 120, bytesOut: 400, durationMs: 3, problem: null, decisionSeconds: 0.000004 };
  const obs = new MetricsObserver();
  const N = 2_000_000;
  for (let i = 0; i < 100_000; i++) obs.requestDone(rec);
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) obs.requestDone(rec);
  const requestNs = Number(process.hrtime.bigint() - t0) / N;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    obs.tunnelOpened(rec);
    obs.tunnelClosed(rec);
  }
  const tunnelNs = Number(process.hrtime.bigint() - t0) / N;
  const m = createGatewayMetrics();
  const s0 = performance.now();
  await m.registry.metrics();
  return { requestNs, tunnelNs, scrapeMs: performance.now() - s0 };
}

interface Phase extends LoadResult {
  scrapes: number;
  scrapeMaxMs: number;
  /** Gateway CPU time (user + system) per proxied request, in µs: steadier than req/s when other
   * processes share the cores, since it does not count the time the gateway waited for a core. */
  cpuUsPerReq: number;
}

/** utime + stime of a process, in ms (USER_HZ = 100 on Linux). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}


async function main() {
  const micro = await observerCost();
  const ports = await Promise.all(Array.from({ length: 7 }, freePort));
  const [originPort, onPort, offPort, off2Port, metricsPort, unused1, unused2] = ports as [number, number, number, number, number, number, number];
  const origin = await startSmallOrigin(originPort);
  const dir = tmp('vigie-bench-metrics-');
  // Two gateways without metrics: the second measures how far apart two identical gateways land
  // on this machine (the noise floor the on/off ratio must be read against).
  const gws = {
    on: await startGateway(dir, 'on', onPort, metricsPort, true),
    off: await startGateway(dir, 'off', offPort, unused1, false),
    off2: await startGateway(dir, 'off2', off2Port, unused2, false),
  };
  const children = [origin, ...Object.values(gws)];
  process.once('exit', () => children.forEach((c) => c.kill('SIGKILL')));
  // All read the full bundled lists: the decision path is the real one.
  await Promise.all(Object.values(gws).map((g) => waitFor(g, /gateway ready/, 180_000)));

  const viaProxy = `GET http://origin.test:${originPort}/small HTTP/1.1\r\nHost: origin.test:${originPort}\r\n\r\n`;
  const portOf = { on: onPort, off: offPort, off2: off2Port };
  const phase = async (name: keyof typeof portOf, seconds: number): Promise<Phase> => {
    let scrapes = 0;
    let scrapeMaxMs = 0;
    const timer =
      name === 'on'
        ? setInterval(() => {
            scrapeOnce(metricsPort).then((ms) => {
              scrapes++;
              scrapeMaxMs = Math.max(scrapeMaxMs, ms);
            }, () => {});
          }, SCRAPE_MS)
        : null;
    const pid = gws[name].pid!;
    const cpu0 = cpuMs(pid);
    const r = await load({ port: portOf[name], request: viaProxy, connections: CONNECTIONS, seconds });
    if (timer) clearInterval(timer);
    const cpuUsPerReq = ((cpuMs(pid) - cpu0) * 1000) / Math.max(1, r.requests);
    return { ...r, scrapes, scrapeMaxMs, cpuUsPerReq };
  };

  for (const name of ['on', 'off', 'off2'] as const) await phase(name, 2); // warm-up: JIT, pools, decision cache
  const order = ['on', 'off', 'off2'] as const;
  const rounds: Record<(typeof order)[number], Phase>[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Rotate the order so drift (heat, other tenants of the machine) spreads over all three.
    const round = {} as Record<(typeof order)[number], Phase>;
    for (let k = 0; k < order.length; k++) {
      const name = order[(i + k) % order.length]!;
      round[name] = await phase(name, SECONDS);
    }
    rounds.push(round);
  }
  const finalScrape = await new Promise<string>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: metricsPort, path: '/metrics', agent: false }, (res) => {
        let s = '';
        res.on('data', (c: Buffer) => (s += c.toString()));
        res.on('end', () => resolve(s));
      })
      .on('error', reject);
  });
  const counted = Number(/^vigie_requests_total\{[^}]*decision="allow"[^}]*\} (\d+)/m.exec(finalScrape)?.[1] ?? NaN);
  for (const g of Object.values(gws)) g.kill('SIGTERM');
  origin.kill();

  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const rate = (name: (typeof order)[number]) => sum(rounds.map((r) => r[name].requests)) / sum(rounds.map((r) => r[name].seconds));
  const onOff = rounds.map((r) => r.on.rps / r.off.rps);
  const noise = rounds.map((r) => r.off2.rps / r.off.rps);
  const cpu = (name: (typeof order)[number]) => median(rounds.map((r) => r[name].cpuUsPerReq));
  console.log(`\nVigie metrics overhead — ${new Date().toISOString()} — node ${process.version}, ${CONNECTIONS} keep-alive connections, ${SECONDS}s phases × ${ROUNDS} rounds, bundled lists, /metrics scraped every ${SCRAPE_MS} ms during "on" phases`);
  console.log(`\n| round | off req/s | on req/s | off2 req/s | on/off | off2/off (noise) | CPU µs/req off / on / off2 | on p99 ms | off p99 ms | scrapes (max ms) | errors |`);
  console.log(`|------:|----------:|---------:|-----------:|-------:|-----------------:|---------------------------:|----------:|-----------:|-----------------:|-------:|`);
  rounds.forEach((r, i) =>
    console.log(
      `| ${i + 1} | ${r.off.rps.toFixed(0)} | ${r.on.rps.toFixed(0)} | ${r.off2.rps.toFixed(0)} | ${onOff[i]!.toFixed(3)} | ${noise[i]!.toFixed(3)} | ${r.off.cpuUsPerReq.toFixed(1)} / ${r.on.cpuUsPerReq.toFixed(1)} / ${r.off2.cpuUsPerReq.toFixed(1)} | ${r.on.p99ms.toFixed(2)} | ${r.off.p99ms.toFixed(2)} | ${r.on.scrapes} (${r.on.scrapeMaxMs.toFixed(1)}) | ${r.on.errors + r.off.errors + r.off2.errors} |`,
    ),
  );
  console.log(`| all | ${rate('off').toFixed(0)} | ${rate('on').toFixed(0)} | ${rate('off2').toFixed(0)} | ${(rate('on') / rate('off')).toFixed(3)} | ${(rate('off2') / rate('off')).toFixed(3)} | | | | | |`);
  console.log(`\nmedian of per-round ratios: on/off **${median(onOff).toFixed(3)}**, off2/off (two identical gateways) ${median(noise).toFixed(3)}`);
  console.log(`on/off against the mean of both metric-less gateways: ${(rate('on') / ((rate('off') + rate('off2')) / 2)).toFixed(3)}`);
  console.log(`gateway CPU per request, median of rounds: off ${cpu('off').toFixed(1)} µs, on ${cpu('on').toFixed(1)} µs, off2 ${cpu('off2').toFixed(1)} µs; on/off **${(cpu('on') / cpu('off')).toFixed(3)}**, off2/off ${(cpu('off2') / cpu('off')).toFixed(3)}`);
  console.log(`requests counted by vigie_requests_total{decision="allow"} on the "on" gateway: ${counted} (measured phases sent ${sum(rounds.map((r) => r.on.requests))}, plus warm-up)`);
  console.log(`\nin-process: observer.requestDone ${micro.requestNs.toFixed(1)} ns/call; tunnelOpened+tunnelClosed ${micro.tunnelNs.toFixed(1)} ns/pair; first registry.metrics() ${micro.scrapeMs.toFixed(1)} ms`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
