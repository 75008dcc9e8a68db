// Console figures on a journal of ROWS rows (default 1 M) over the last 30 days: first load to a
// rendered dashboard in Chromium, and a search for one device over one day through the API and
// through the console. Baselines in the same run: the same dashboard on an empty journal, and the
// API search for the console search. Also: the longest stall of the gateway's event loop (which the
// proxy shares) while the dashboards load, and the one-time count of a journal written before the
// statistics counters (src/journal/aggregate.ts). Run: flock /tmp/vigie-bench.lock npm run bench:console
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { copyFileSync } from 'node:fs';
import { backfillAggregates } from '../../src/journal/aggregate.js';
import { chromium, type Page } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { PACKAGE_ROOT } from '../../src/paths.js';
import type { WireEnd, WireRow } from '../../src/journal/row.js';
import { JournalWriter } from '../../src/journal/writer.js';
import { tmp } from '../helpers.js';
import { startApi, type ApiHandle } from '../supervision-helpers.js';

const ROWS = Number(process.env.ROWS ?? 1_000_000);
const DAY = 86_400_000;
const CLIENTS = Array.from({ length: 800 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
const HOSTS = Array.from({ length: 5000 }, (_, i) => `www.site${i}.example`);
const PROFILES = ['cycle1', 'cycle2', 'cycle3', 'college', 'staff'];
const CATEGORIES = ['adult', 'games', 'social_networks', 'malware', 'chat', 'audio-video'];
let seed = 12345;
const rnd = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};

function fill(dataDir: string, rows: number, end: number): void {
  const w = new JournalWriter(join(dataDir, 'journal', 'journal.db'), { synchronous: 'OFF' });
  let id = w.nextId();
  const start = end - 30 * DAY;
  const none: WireEnd[] = [];
  for (let done = 0; done < rows; done += 5000) {
    const batch: WireRow[] = [];
    for (let i = 0; i < 5000 && done + i < rows; i++) {
      const block = rnd() < 0.1;
      const client = CLIENTS[Math.floor(rnd() * CLIENTS.length)]!;
      batch.push([id++, start + Math.floor(((done + i) / rows) * 30 * DAY), client, null, PROFILES[client.charCodeAt(client.length - 1) % 5]!, 'CONNECT', 'connect',
        HOSTS[Math.floor(HOSTS.length * rnd() ** 3)]!, 443, null, block ? 403 : 200, 0, 0, 0, block ? 'block' : 'allow', block ? CATEGORIES[Math.floor(rnd() * 6)]! : null, block ? 'category' : 'default', 1]);
    }
    w.write(batch, none, batch[batch.length - 1]![1] + 300);
  }
  w.close();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function dashboardLoad(page: Page, base: string, token: string): Promise<number> {
  await page.goto(base);
  await page.evaluate(`sessionStorage.setItem('vigie-token', ${JSON.stringify(token)})`);
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const s = performance.now();
    await page.goto(base);
    await page.locator('#health').waitFor();
    await page.locator('figure.chart').nth(1).waitFor();
    times.push(performance.now() - s);
  }
  // Where the last load spent its time: the API answers, slowest first.
  const slow = (await page.evaluate(`performance.getEntriesByType('resource').map((e) => [e.name.replace(/^https:\\/\\/[^/]+/, '').slice(0, 70), Math.round(e.duration)])`)) as [string, number][];
  console.log(`  ${base.includes(String(process.env.NOPE)) ? '' : ''}slowest requests: ${slow.sort((a, b) => b[1] - a[1]).slice(0, 4).map(([n, d]) => `${n} ${d} ms`).join('; ')}`);
  return median(times);
}

async function main() {
  execFileSync(process.execPath, [join(PACKAGE_ROOT, 'scripts/build-console.mjs')]);
  const now = Date.now();
  const full = tmp('vigie-bench-console-');
  let s = performance.now();
  fill(full, ROWS, now);
  const tFill = performance.now() - s;
  const empty = await startApi({ dataDir: tmp('vigie-bench-console-empty-') });
  const big = await startApi({ dataDir: full });
  const browser = await chromium.launch({
    executablePath: process.env.VIGIE_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, locale: 'fr-FR' });
  const page = await ctx.newPage();
  const base = (h: ApiHandle) => `https://127.0.0.1:${h.sup.port}/admin/`;
  const supEmpty = await empty.tokenFor('supervisor');
  const sup = await big.tokenFor('supervisor');
  // The gateway's event loop (the proxy's, too) while each dashboard loads: its longest stall.
  const stall = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const r = await fn();
    loop.disable();
    return [r, loop.max / 1e6];
  };
  const [dashEmpty, stallEmpty] = await stall(() => dashboardLoad(page, base(empty), supEmpty));
  const [dashBig, stallMs] = await stall(() => dashboardLoad(page, base(big), sup));

  const client = CLIENTS[123]!;
  const from = now - DAY;
  const api: number[] = [];
  let found = 0;
  for (let i = 0; i < 10; i++) {
    s = performance.now();
    const r = await big.api('GET', `/api/v1/journal?client=${client}&from=${from}&to=${now}&limit=50`, { token: sup });
    api.push(performance.now() - s);
    found = r.json.rows.length;
  }
  await page.locator('#nav-journal').click();
  await page.getByLabel('Poste (adresse)').fill(client);
  const ui: number[] = [];
  for (let i = 0; i < 5; i++) {
    s = performance.now();
    const answered = page.waitForResponse((r) => r.url().includes('/api/v1/journal?'));
    await page.getByRole('button', { name: 'Rechercher' }).click();
    await answered;
    // The rows are on screen once the next frame is painted after the answer.
    await page.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');
    await page.locator('#journal-count').waitFor();
    ui.push(performance.now() - s);
  }
  await browser.close();
  await big.close();
  await empty.close();
  // A journal of an earlier version: the same file without its counters, counted once at open.
  const legacy = join(tmp('vigie-bench-console-legacy-'), 'journal.db');
  copyFileSync(join(full, 'journal', 'journal.db'), legacy);
  const ldb = new Database(legacy);
  ldb.exec(`DROP TABLE agg_hour; DROP TABLE agg_host; DELETE FROM meta WHERE k = 'agg'`);
  s = performance.now();
  backfillAggregates(ldb);
  const tBackfill = performance.now() - s;
  ldb.close();

  console.log(`\nVigie console — journal of ${ROWS.toLocaleString('en-US')} rows over 30 days (filled in ${(tFill / 1000).toFixed(1)} s), Chromium headless, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log('\n| figure | ms (median) | baseline | ratio | target |\n|---|---:|---:|---:|---|');
  console.log(`| first load → dashboard rendered (5 loads) | **${dashBig.toFixed(0)}** | ${dashEmpty.toFixed(0)} (empty journal) | ${(dashBig / dashEmpty).toFixed(2)}× | ≤ 1000 |`);
  console.log(`| longest event-loop stall of the gateway during those loads | **${stallMs.toFixed(0)}** | ${stallEmpty.toFixed(0)} (empty journal) | ${(stallMs / stallEmpty).toFixed(2)}× | — |`);
  console.log(`| counting a journal of an earlier version once (at the writer's open) | **${tBackfill.toFixed(0)}** | — | — | — |`);
  console.log(`| API: one device, one day (${found} rows, 10 calls) | **${median(api).toFixed(1)}** | — | — | ≤ 200 |`);
  console.log(`| console: same search, click → rows shown (5) | **${median(ui).toFixed(1)}** | ${median(api).toFixed(1)} (API) | ${(median(ui) / median(api)).toFixed(2)}× | ≤ 200 |`);
}

await main();
