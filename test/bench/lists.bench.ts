/**
 * List engine figures (issue 3), one run, against a naive Set<string> baseline measured in the
 * same process: resident bytes per domain, build rate, compiled-file load time, lookup latency
 * (p50/p99, label walk + url check, realistic mix) and lookups/s on one core, plus the time a
 * policy recompile (academy/profile entries) takes with the full index loaded. Lookups are
 * measured on two streams of the same mix of kinds: a cold one (every lookup a new host, so
 * every one misses the CPU caches) and a working set (hosts repeat with Zipf popularity, as a
 * proxy's traffic does), each in 5 rounds: median and min-max.
 *
 * Also the expression pass per request, before (one backtracking RegExp per category) and after
 * (RE2), and the catastrophic `(a+)+$` on both.
 *
 * Data: the real lists of ../shared/lists/ut1 (read-only) plus a deterministic synthetic `adult`
 * category generated at run time with the real lists' shape (label counts, label lengths, TLD
 * mix), bringing the total to TARGET unique domains (default 6,000,000; adult/domains is
 * missing from the shared copy and is played at its real size).
 *
 *   npm run bench:lists                 (TARGET=2000000 for a quicker run; LOOKUPS=200000, WORKING_SET=2000)
 */
import { mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { resolveConfig } from '../../src/config/load.js';
import { Gateway } from '../../src/gateway.js';
import { readCompiled } from '../../src/lists/cache.js';
import { CompactIndexBuilder } from '../../src/lists/compact-builder.js';
import type { CompactIndex } from '../../src/lists/compact-index.js';
import { CategoryExpressions, ExpressionSet } from '../../src/lists/expressions.js';
import { loadAcademyLists } from '../../src/lists/load.js';
import type { EntryProblem } from '../../src/lists/map-index.js';
import { isIpLiteral, isValidHostEntry, normalizeHost, normalizeUrlEntry, stripWww } from '../../src/lists/normalize.js';
import { loadUt1Dir, type ListSink } from '../../src/lists/ut1.js';
import { createLogger } from '../../src/log.js';
import { BUNDLED_ACADEMY } from '../../src/paths.js';
import { buildSnapshot } from '../../src/policy/snapshot.js';
import { tmp } from '../helpers.js';

const TEMP_DIRS: string[] = [];
const benchTmp = (prefix: string): string => {
  const d = tmp(prefix);
  TEMP_DIRS.push(d);
  return d;
};

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const REAL = resolve(ROOT, '..', 'shared', 'lists', 'ut1');
const TARGET = Number(process.env.TARGET ?? 6_000_000);
const LOOKUPS = Number(process.env.LOOKUPS ?? 200_000);
const WORKING_SET = Number(process.env.WORKING_SET ?? 2_000);

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc (npm run bench:lists does)');
const settle = () => {
  for (let i = 0; i < 4; i++) gc();
};
const mem = () => {
  settle();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, ab: m.arrayBuffers, ext: m.external, rss: m.rss };
};
const ms = (t0: number) => performance.now() - t0;
/** CPU milliseconds of this thread's process since `c0`: robust when other jobs share the cores. */
const cpuMs = (c0: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(c0);
  return (d.user + d.system) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every real domain entry (lower-cased, de-duplicated), to copy the shape from and to query. */
async function realDomains(): Promise<string[]> {
  const all = new Set<string>();
  const sink: ListSink = {
    category: () => 0,
    addDomain: (_c, raw): EntryProblem => {
      const h = normalizeHost(raw.trim());
      if (h && isValidHostEntry(h)) all.add(h);
      return null;
    },
    addUrl: () => null,
    addExpression: () => null,
  };
  await loadUt1Dir(REAL, sink);
  return [...all];
}

const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';
const CHAR_CODES = Buffer.from(CHARS, 'latin1');
/** Writes a name shaped like `template` into buf at `at`; returns the new offset. */
function shapedInto(buf: Buffer, at: number, template: string, r: () => number): number {
  let label = 0;
  let inLast = template.lastIndexOf('.');
  if (inLast === -1) inLast = 0;
  for (let i = 0; i < template.length; i++) {
    const c = template.charCodeAt(i);
    if (i > inLast || c === 46) {
      buf[at++] = c; // the dots and the TLD are kept
      label = 0;
      continue;
    }
    const next = template.charCodeAt(i + 1);
    buf[at++] = label > 0 && next !== 46 && r() < 0.04 ? 45 : CHAR_CODES[Math.floor(r() * (r() < 0.9 ? 26 : 36))]!;
    label++;
  }
  buf[at++] = 10;
  return at;
}

/** A name shaped like a real entry: same label count and label lengths, same TLD, random letters. */
function shaped(template: string, r: () => number): string {
  const labels = template.split('.');
  let s = '';
  for (let i = 0; i < labels.length - 1; i++) {
    const len = labels[i]!.length;
    for (let k = 0; k < len; k++) {
      s += k > 0 && k < len - 1 && r() < 0.04 ? '-' : CHARS[Math.floor(r() * (r() < 0.9 ? 26 : 36))];
    }
    s += '.';
  }
  return s + labels[labels.length - 1];
}

/** The bench's list folder: the real categories (linked, read-only) plus a synthetic adult/domains. */
function assemble(real: string[], count: number): { dir: string; sample: string[] } {
  const dir = benchTmp('vigie-bench-lists-');
  for (const cat of readdirSync(REAL, { withFileTypes: true })) {
    if (!cat.isDirectory()) continue;
    mkdirSync(join(dir, cat.name));
    for (const f of readdirSync(join(REAL, cat.name))) symlinkSync(join(REAL, cat.name, f), join(dir, cat.name, f));
  }
  const hostnames = real.filter((h) => !isIpLiteral(h));
  const r = rng(42);
  const sample: string[] = [];
  const buf = Buffer.allocUnsafe(count * 260);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const from = at;
    at = shapedInto(buf, at, hostnames[Math.floor(r() * hostnames.length)]!, r);
    if (i % 50 === 0) sample.push(buf.toString('latin1', from, at - 1));
  }
  writeFileSync(join(dir, 'adult', 'domains'), buf.subarray(0, at));
  return { dir, sample };
}

/** The mix's kinds of lookup, in makeQueries' order (the per-kind breakdown's rows). */
const KINDS = ['miss, 3+ labels', 'deep subdomain of an entry', 'exact entry', 'host with url rules'] as const;

interface Query {
  host: string;
  bare: string;
  path: string;
  /** Index in KINDS. */
  kind: number;
}

/** Realistic traffic: mostly misses, deep subdomains of listed names, some hits, url-keyed hosts. */
function makeQueries(listed: string[], urlHosts: string[], real: string[], n: number, seed = 7): Query[] {
  const r = rng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const out: Query[] = [];
  const label = () => shaped(pick(real).split('.')[0] + '.x', r).split('.')[0]!;
  for (let i = 0; i < n; i++) {
    const roll = r();
    let host: string;
    const kind = roll < 0.6 ? 0 : roll < 0.8 ? 1 : roll < 0.9 ? 2 : 3;
    let path = pick(['/', '/index.html', '/api/v1/items?id=42', '/static/app.js', '/search?q=cours']);
    if (roll < 0.6) host = `${label()}.${label()}.${shaped(pick(real), r)}`; // miss, 3+ labels
    else if (roll < 0.8) host = `${label()}.${label()}.${label()}.${pick(listed)}`; // deep subdomain of an entry
    else if (roll < 0.9) host = pick(listed); // exact hit
    else {
      const u = pick(urlHosts); // host with url rules: the path decides
      host = u.slice(0, u.indexOf('/'));
      path = r() < 0.5 ? u.slice(u.indexOf('/')) + 'page.html' : '/other/path';
    }
    // Flat strings, as the proxy's parser hands them over (template literals make cons strings).
    const flat = Buffer.from(host, 'latin1').toString('latin1');
    out.push({ host: flat, bare: stripWww(flat), path: Buffer.from(path, 'latin1').toString('latin1'), kind });
  }
  return out;
}

/** The naive engine: one Set<string> of domains, a Map of url rules, the label walk with slice. */
class NaiveSet {
  readonly domains = new Set<string>();
  readonly urls = new Map<string, string[]>();
  check(q: Query): boolean {
    let s = q.host;
    for (;;) {
      if (this.domains.has(s)) return true;
      const dot = s.indexOf('.');
      if (dot === -1) break;
      s = s.slice(dot + 1);
    }
    const rules = this.urls.get(q.bare);
    if (rules) for (const p of rules) if (q.path.startsWith(p)) return true;
    return false;
  }
}

async function buildNaive(dir: string): Promise<NaiveSet> {
  const n = new NaiveSet();
  await loadUt1Dir(dir, {
    category: () => 0,
    addDomain: (_c, raw) => {
      const h = normalizeHost(raw.trim());
      if (!h || !isValidHostEntry(h)) return 'bad';
      n.domains.add(h);
      return null;
    },
    addUrl: (_c, raw) => {
      const u = normalizeUrlEntry(raw);
      if (!u) return 'bad';
      const l = n.urls.get(u.host);
      if (l) l.push(u.path);
      else n.urls.set(u.host, [u.path]);
      return null;
    },
    addExpression: () => null,
  });
  return n;
}

/**
 * A proxy's lookups repeat: a page pulls many resources from the same hosts, and a school's
 * classes visit the same sites. `n` lookups over `hosts` distinct queries (the same mix of kinds
 * as the cold set, another seed) with Zipf(1) popularity: the most popular host comes back most.
 */
function workingSet(listed: string[], urlHosts: string[], real: string[], hosts: number, n: number): Query[] {
  const set = makeQueries(listed, urlHosts, real, hosts, 11);
  const cum = new Float64Array(hosts);
  for (let i = 0, t = 0; i < hosts; i++) cum[i] = t += 1 / (i + 1);
  const r = rng(13);
  const out: Query[] = [];
  for (let k = 0; k < n; k++) {
    const x = r() * cum[hosts - 1]!;
    let lo = 0;
    let hi = hosts - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    out.push(set[lo]!);
  }
  return out;
}

interface Figures {
  /** Median over the rounds, and the extremes. */
  p50: number;
  p50Min: number;
  p50Max: number;
  p99: number;
  perSec: number;
  perSecMin: number;
  perSecMax: number;
  hits: number;
  /** Per kind (KINDS): share of the lookups, and p50 (median over the rounds). */
  kindShare: number[];
  kindP50: number[];
}

const ROUNDS = 5;

/**
 * Per-lookup latency (timer overhead subtracted) and tight-loop throughput on this thread, in
 * ROUNDS rounds timed one by one: a burst from another job on the shared cores moves a round,
 * not the median; the spread says how noisy the machine was.
 */
function measure(check: (q: Query) => unknown, qs: Query[]): Figures {
  let hits = 0;
  for (let w = 0; w < 3; w++) for (const q of qs) if (check(q)) hits++; // warm up (JIT)
  hits = 0;
  for (const q of qs) if (check(q)) hits++;
  const overhead: number[] = [];
  for (let i = 0; i < 20000; i++) {
    const a = process.hrtime.bigint();
    overhead.push(Number(process.hrtime.bigint() - a));
  }
  const base = median(overhead);
  const lat = new Float64Array(qs.length);
  // Where the overall p50 sits: each kind's own p50 (computed outside the timed loop).
  const kindCount = KINDS.map((_, k) => qs.reduce((n, q) => n + (q.kind === k ? 1 : 0), 0));
  const kindLat = kindCount.map((n) => new Float64Array(n));
  const kindP50s: number[][] = KINDS.map(() => []);
  const p50s: number[] = [];
  const p99s: number[] = [];
  const rates: number[] = [];
  for (let k = 0; k < ROUNDS; k++) {
    for (let i = 0; i < qs.length; i++) {
      const q = qs[i]!;
      const a = process.hrtime.bigint();
      check(q);
      lat[i] = Number(process.hrtime.bigint() - a) - base;
    }
    const fill = KINDS.map(() => 0);
    for (let i = 0; i < qs.length; i++) {
      const kind = qs[i]!.kind;
      kindLat[kind]![fill[kind]!++] = lat[i]!;
    }
    kindLat.forEach((l, kind) => {
      l.sort();
      if (l.length) kindP50s[kind]!.push(Math.max(0, l[Math.floor(l.length * 0.5)]!));
    });
    lat.sort();
    p50s.push(Math.max(0, lat[Math.floor(lat.length * 0.5)]!));
    p99s.push(Math.max(0, lat[Math.floor(lat.length * 0.99)]!));
    const c0 = process.cpuUsage();
    let sink = 0;
    for (const q of qs) if (check(q)) sink++;
    rates.push(qs.length / (cpuMs(c0) / 1000));
    if (sink !== hits) throw new Error('non-deterministic lookups');
  }
  return {
    p50: median(p50s), p50Min: Math.min(...p50s), p50Max: Math.max(...p50s), p99: median(p99s),
    perSec: median(rates), perSecMin: Math.min(...rates), perSecMax: Math.max(...rates), hits,
    kindShare: kindCount.map((n) => n / qs.length), kindP50: kindP50s.map((xs) => (xs.length ? median(xs) : NaN)),
  };
}

/**
 * Nanoseconds of one dependent random read (pointer chase, one per 64-byte line) in a `mib` MiB
 * array: what a lookup pays for each table or filter line that is not in the CPU caches.
 */
function memoryLatency(mib: number): number {
  const n = (mib * 1048576) / 4;
  const a = new Int32Array(n);
  const lines = n / 16;
  const order = new Int32Array(lines);
  for (let i = 0; i < lines; i++) order[i] = i;
  const r = rng(3);
  for (let i = lines - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  for (let i = 0; i < lines; i++) a[order[i]! * 16] = order[(i + 1) % lines]! * 16;
  // Warmed up until optimised, or the interpreter's cost would be measured instead.
  let x = 0;
  for (let k = 0; k < 20; k++) x = chase(a, x, 50_000);
  const t0 = process.hrtime.bigint();
  x = chase(a, x, 1_000_000);
  return Number(process.hrtime.bigint() - t0) / 1_000_000 + (x === -1 ? 1 : 0);
}

function chase(a: Int32Array, x: number, steps: number): number {
  for (let i = 0; i < steps; i++) x = a[x]!;
  return x;
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const spreadNs = (f: Figures) => `${fmt(f.p50Min)}-${fmt(f.p50Max)}`;
const spreadM = (f: Figures) => `${fmt(f.perSecMin / 1e6, 2)}-${fmt(f.perSecMax / 1e6, 2)}`;

/** The table rows of one query stream: the Set baseline against the compact engine. */
function streamRows(title: string, n: Figures, c: Figures, lookups: number): [string, string, string, string][] {
  return [
    [title, '', '', ''],
    ['  lookup p50, ns (walk + url check)', fmt(n.p50), fmt(c.p50), `${(n.p50 / Math.max(1, c.p50)).toFixed(1)}x`],
    ['    rounds min-max', spreadNs(n), spreadNs(c), ''],
    ['  lookup p99, ns', fmt(n.p99), fmt(c.p99), `${(n.p99 / Math.max(1, c.p99)).toFixed(1)}x`],
    ['  lookups per CPU second, one thread', fmt(n.perSec), fmt(c.perSec), `${(c.perSec / n.perSec).toFixed(1)}x`],
    ['    rounds min-max, M/s', spreadM(n), spreadM(c), ''],
    ['  hits in the mix', fmt(n.hits), fmt(c.hits), `of ${fmt(lookups)}`],
    ...byKind(n, c),
  ];
}

/** Table rows: each kind's share of the mix and p50, to see which kinds sit around the overall p50. */
const byKind = (set: Figures, compact: Figures): [string, string, string, string][] => [
  ['  p50 by kind, ns (share of the mix):', '', '', ''],
  ...KINDS.map((name, k): [string, string, string, string] => [
    `    ${name} (${fmt(compact.kindShare[k]! * 100)} %)`, fmt(set.kindP50[k]!), fmt(compact.kindP50[k]!), `${(set.kindP50[k]! / Math.max(1, compact.kindP50[k]!)).toFixed(1)}x`,
  ]),
];

/**
 * The expression pass per request, before and after (issue 19): each wanted category's
 * expressions joined into one backtracking `RegExp` (what the engine did before) against the
 * same sources on RE2 (ExpressionSet), over the URLs of the query mix. Then the catastrophic case:
 * `(a+)+$` on `/` + n `a`s + `!`, which doubles in time with each `a` on a backtracking engine.
 */
function expressionRows(expressions: string[][], qs: Query[]): [string, string, string, string][] {
  const lists = expressions.filter((l) => l.length);
  // Before: what matchExpression did, one backtracking RegExp per wanted category.
  const before = lists.map((l) => new RegExp(l.map((x) => `(?:${x})`).join('|'), 'i'));
  // After: the index's CategoryExpressions, every category wanted (one RE2 call per request).
  const after = new CategoryExpressions(lists);
  const want = new Uint8Array(lists.length).fill(1);
  const sample = qs.slice(0, 50_000);
  const urls = sample.map((q) => q.host + q.path);
  const b = measure((q) => {
    const url = q.host + q.path;
    for (let i = 0; i < before.length; i++) if (before[i]!.test(url)) return true;
    return false;
  }, sample);
  const a = measure((q) => after.match(q.host + q.path, want) !== null, sample);
  if (a.hits !== b.hits) process.stderr.write(`note: expression hits differ (RegExp ${b.hits}, RE2 ${a.hits})\n`);
  const evil = (n: number, test: (s: string) => boolean): number => {
    const url = 'origin.test/' + 'a'.repeat(n) + '!';
    const t0 = performance.now();
    test(url);
    return performance.now() - t0;
  };
  const evilRe = /(a+)+$/i;
  const evil2 = new ExpressionSet(['(a+)+$']);
  return [
    [`expression pass per request (${lists.length} categories, ${lists.reduce((n, l) => n + l.length, 0)} expressions):`, 'RegExp (before)', 'RE2 (after)', ''],
    ['  p50, ns', fmt(b.p50), fmt(a.p50), `${(a.p50 / Math.max(1, b.p50)).toFixed(2)}x`],
    ['    rounds min-max', spreadNs(b), spreadNs(a), ''],
    ['  p99, ns', fmt(b.p99), fmt(a.p99), `${(a.p99 / Math.max(1, b.p99)).toFixed(2)}x`],
    ['  hits', fmt(b.hits), fmt(a.hits), `of ${fmt(urls.length)}`],
    ['  (a+)+$ on /+20 a+!, ms', fmt(evil(20, (u) => evilRe.test(u)), 1), fmt(evil(20, (u) => evil2.test(u)), 3), ''],
    ['  (a+)+$ on /+24 a+!, ms', fmt(evil(24, (u) => evilRe.test(u)), 1), fmt(evil(24, (u) => evil2.test(u)), 3), 'x2 per a before'],
    ['  (a+)+$ on /+30 a+!, ms', '(~15 s, not run)', fmt(evil(30, (u) => evil2.test(u)), 3), ''],
    ['  (a+)+$ on /+10,000 a+!, ms', '(not run)', fmt(evil(10_000, (u) => evil2.test(u)), 3), ''],
  ];
}

const loadStart = loadavg().map((x) => x.toFixed(1)).join(' ');

async function main() {
  const t00 = performance.now();
  const real = await realDomains();
  const synthetic = Math.max(0, TARGET - real.length);
  const { dir, sample } = assemble(real, synthetic);
  process.stderr.write(`data: ${fmt(real.length)} real unique domains + ${fmt(synthetic)} synthetic (adult) in ${(ms(t00) / 1000).toFixed(1)} s: ${dir}\n`);

  // --- compact engine: build (the worker's code, timed on this thread), save, load ---
  let t0 = performance.now();
  let c0 = process.cpuUsage();
  const builder = new CompactIndexBuilder();
  const report = await loadUt1Dir(dir, builder);
  const tParse = cpuMs(c0);
  let index: CompactIndex | null = builder.build(report.version);
  const tBuild = cpuMs(c0);
  const tBuildWall = ms(t0);
  const domainLines = (await Promise.all(report.categories.map((c) => readFile(join(dir, c, 'domains')).then((b) => b.toString('latin1').split('\n').filter((l) => l.trim() && !l.startsWith('#')).length, () => 0)))).reduce((a, b) => a + b, 0);
  const unique = index.domains;
  const file = join(benchTmp('vigie-bench-idx-'), 'ut1.idx');
  writeFileSync(file, index.serialize());
  const structural = index.tableBytes;
  index = null;
  process.stderr.write(`compact built: ${fmt(unique)} unique domains from ${fmt(domainLines)} lines in ${fmt(tBuild)} ms\n`);

  const loads: number[] = [];
  const loadsCpu: number[] = [];
  for (let i = 0; i < 5; i++) {
    settle();
    t0 = performance.now();
    c0 = process.cpuUsage();
    const x = await readCompiled(file);
    loads.push(ms(t0));
    loadsCpu.push(cpuMs(c0));
    if (x.domains !== unique) throw new Error('reload mismatch');
  }
  const m0 = mem();
  const compact = await readCompiled(file);
  const m1 = mem();
  const compactBytes = m1.heap - m0.heap + (m1.ab - m0.ab);
  const compactRss = m1.rss - m0.rss;

  const urlHosts: string[] = [];
  for (const c of report.categories) {
    try {
      for (const l of (await readFile(join(dir, c, 'urls'), 'utf8')).split('\n')) {
        const u = normalizeUrlEntry(l);
        if (u) urlHosts.push(u.host + u.path);
      }
    } catch {
      // category without urls
    }
  }
  const listed = [...real.filter((_, i) => i % 5 === 0), ...sample];
  const qs = makeQueries(listed, urlHosts, real, LOOKUPS);
  const ws = workingSet(listed, urlHosts, real, WORKING_SET, LOOKUPS);
  const want = new Uint8Array(compact.categories.length).fill(1);
  // What decide() asks for each filter: domain entries, then url entries of the www-stripped host.
  const checkCompact = (q: Query) => compact.matchHostAndUrl(q.host, q.path, want);
  const lc = measure(checkCompact, qs);
  const wc = measure(checkCompact, ws);
  // How fast this machine is right now (other jobs share the cores): a fixed loop reading every
  // character of each query host once, the floor of any label walk.
  const calib = measure((q) => {
    let x = 0;
    for (let i = q.host.length - 1; i >= 0; i--) x = (x + q.host.charCodeAt(i)) | 0;
    return x === 1;
  }, qs);
  process.stderr.write(`compact lookups: cold mix p50 ${lc.p50} ns, ${fmt(lc.perSec)}/s; working set p50 ${wc.p50} ns, ${fmt(wc.perSec)}/s\n`);
  // The real lists' expressions (UT1's categories that have some), on the cold mix's URLs.
  const exprRows = expressionRows(compact.parts.expressions, qs);

  // --- academy / profile entries: a policy recompile with the full index loaded ---
  const config = resolveConfig({});
  const recompiles: number[] = [];
  for (let i = 0; i < 15; i++) {
    t0 = performance.now();
    const academy = await loadAcademyLists(BUNDLED_ACADEMY);
    academy.builder.addDomain(academy.builder.category('academy-deny'), `added-${i}.test`);
    buildSnapshot({ config, ut1: compact, academy: academy.builder, policyVersion: i + 1 });
    recompiles.push(ms(t0));
  }
  // The same through a running Gateway: cold start builds in the worker, the restart reads the compiled file.
  let gwCold = NaN;
  let gwWarm = NaN;
  let gwRecompile = NaN;
  try {
    const dataDir = benchTmp('vigie-bench-data-');
    const cfg = resolveConfig({ listen: [{ host: '127.0.0.1', port: 0 }], dns: { servers: ['127.0.0.1:9'] }, dataDir, lists: { ut1: dir } });
    const errors: string[] = [];
    const log = createLogger('error', (l) => errors.push(l));
    let gw = new Gateway({ config: cfg, log });
    t0 = performance.now();
    await gw.start();
    gwCold = ms(t0);
    if (!gw.snapshot.listsLoaded) throw new Error(`gateway did not load the lists: ${errors.join(' ')}`);
    await gw.stop();
    gw = new Gateway({ config: cfg, log });
    t0 = performance.now();
    await gw.start();
    gwWarm = ms(t0);
    if (!gw.snapshot.listsLoaded) throw new Error(`gateway did not load the lists: ${errors.join(' ')}`);
    const times: number[] = [];
    for (let i = 0; i < 15; i++) {
      t0 = performance.now();
      await gw.recompile();
      times.push(ms(t0));
    }
    gwRecompile = median(times);
    await gw.stop();
  } catch (e) {
    process.stderr.write(`gateway phase skipped: ${(e as Error).message}\n`);
  }

  // --- naive baseline: Set<string> ---
  settle();
  const n0 = mem();
  t0 = performance.now();
  c0 = process.cpuUsage();
  const naive = await buildNaive(dir);
  const tNaive = cpuMs(c0);
  const tNaiveWall = ms(t0);
  const n1 = mem();
  const naiveBytes = n1.heap - n0.heap + (n1.ab - n0.ab);
  const ln = measure((q) => naive.check(q), qs);
  const wn = measure((q) => naive.check(q), ws);
  if (wn.hits !== wc.hits) process.stderr.write(`note: working-set hit counts differ (set ${wn.hits}, compact ${wc.hits})\n`);
  if (ln.hits !== lc.hits) process.stderr.write(`note: hit counts differ (set ${ln.hits}, compact ${lc.hits}): the set ignores categories\n`);

  const rows: [string, string, string, string][] = [
    ['unique domains', fmt(naive.domains.size), fmt(unique), ''],
    ['resident bytes / domain (heap+buffers)', fmt(naiveBytes / naive.domains.size, 1), fmt(compactBytes / unique, 1), `${(naiveBytes / compactBytes).toFixed(1)}x smaller`],
    ['resident total, MiB', fmt(naiveBytes / 1048576, 1), fmt(compactBytes / 1048576, 1), ''],
    ['RSS growth on load, MiB', fmt((n1.rss - n0.rss) / 1048576, 1), fmt(compactRss / 1048576, 1), ''],
    ['table bytes / domain (structural, incl. urls)', '', fmt(structural / unique, 1), ''],
    ['build from text, CPU s (wall s)', `${fmt(tNaive / 1000, 2)} (${fmt(tNaiveWall / 1000, 1)})`, `${fmt(tBuild / 1000, 2)} (${fmt(tBuildWall / 1000, 1)})`, `${(tNaive / tBuild).toFixed(1)}x faster`],
    ['build rate, domain lines per CPU s', fmt(domainLines / (tNaive / 1000)), fmt(domainLines / (tBuild / 1000)), `(parse ${fmt(tParse)} + layout ${fmt(tBuild - tParse)} ms)`],
    ['compiled file load, wall ms (CPU ms), median of 5', 'n/a (rebuild)', `${fmt(median(loads), 1)} (${fmt(median(loadsCpu), 1)})`, `file ${fmt(structural / 1048576, 1)} MiB`],
    ...streamRows('cold mix (every lookup a new host):', ln, lc, qs.length),
    ...streamRows(`working set (${fmt(WORKING_SET)} hosts, Zipf):`, wn, wc, ws.length),
    ...exprRows,
  ];
  const w = [50, 16, 18, 30];
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ');
  console.log(`\nList engine, ${fmt(unique)} domains (${fmt(real.length)} real + synthetic adult), node ${process.version}, ${cpus().length} cores, load average ${loadStart} at start, ${loadavg().map((x) => x.toFixed(1)).join(' ')} at end\n`);
  console.log(line(['', 'Set<string>', 'compact', 'ratio']));
  for (const r of rows) console.log(line(r));
  console.log(`\nCold mix: ${fmt(qs.length)} distinct hosts, each looked up once a round: every lookup misses the CPU caches (the worst case).`);
  console.log(`Working set: ${fmt(ws.length)} lookups over ${fmt(WORKING_SET)} hosts of the same kinds, Zipf(1) popularity, as a proxy sees them`);
  console.log(`(a page pulls many resources from the same hosts). Both: ${ROUNDS} rounds, median (p50, lookups/s) and min-max.`);
  console.log(`\nMachine check (same run): reading each query host's characters once costs ${fmt(1e9 / calib.perSec)} ns per host (CPU time);`);
  console.log(`one dependent random read costs ${fmt(memoryLatency(1), 1)} ns in 1 MiB, ${fmt(memoryLatency(4), 1)} ns in 4 MiB (the Bloom filter's size), ${fmt(memoryLatency(64), 1)} ns in 64 MiB (the table's).`);
  console.log(`\nPolicy recompile with the full index loaded (academy/profile entries, no UT1 rebuild):`);
  console.log(`  loadAcademyLists + buildSnapshot: median ${fmt(median(recompiles), 1)} ms (15 runs)`);
  console.log(`  Gateway.recompile():              median ${fmt(gwRecompile, 1)} ms (15 runs)`);
  console.log(`  Gateway.start(), no compiled file (worker build): ${fmt(gwCold)} ms; restart from the compiled file: ${fmt(gwWarm)} ms`);
  console.log(`\nTargets: <= 16 B/domain, build >= 1 M entries/s, load <= 300 ms, p50 <= 300 ns, >= 2 M lookups/s.`);
}

try {
  await main();
} finally {
  // The synthetic lists and compiled files take ~100 MB a run.
  for (const d of TEMP_DIRS) rmSync(d, { recursive: true, force: true });
}
