/** Spread over runs, ratios to direct and to Squid, the issue's targets, and the markdown table. */

/**
 * `vigie` runs with the default `tunnels: "socket"`, `vigie-raw` with `tunnels: "raw"`, both
 * pinned to the proxy's CPU; `vigie-2w` is `vigie` with `workers: 2`, unpinned (issue 23).
 */
export const SETUPS = ['direct', 'vigie', 'vigie-raw', 'vigie-2w', 'node-floor', 'squid', 'tinyproxy'] as const;
export type Setup = (typeof SETUPS)[number];

export interface Sample {
  value: number;
  /** The proxy's CPU over the phase, % of one core (null for direct). */
  proxyCpu: number | null;
  /** Origin + load generator, % of one core: near 100 means the row is limited by the load side. */
  loadCpu: number | null;
  /** Busy % of the proxy's CPU and of the load CPU, whoever ran there (others' work on a shared machine). */
  busy: [number, number] | null;
  errors: number;
}

export interface Measure {
  key: string;
  label: string;
  unit: string;
  higherIsBetter: boolean;
  samples: Partial<Record<Setup, Sample[]>>;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export const spread = (xs: number[]): Spread | null => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return { median: v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2, min: v[0]!, max: v[v.length - 1]!, n: v.length };
};

export interface Target {
  measure: string;
  /** The row it is shown on (default vigie). */
  setup?: Setup;
  text: string;
  check: (m: Record<string, Partial<Record<Setup, Spread>>>) => { pass: boolean; detail: string } | null;
}

export interface Row {
  measure: string;
  unit: string;
  setup: Setup;
  median: number;
  min: number;
  max: number;
  runs: number;
  vsDirect: number | null;
  vsSquid: number | null;
  proxyCpu: number | null;
  loadCpu: number | null;
  busy0: number | null;
  busy1: number | null;
  errors: number;
  target: string;
}

const fmt = (x: number): string => {
  if (!Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  if (a >= 10000) return `${(x / 1000).toFixed(1)}k`;
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
};

export function summarize(measures: Measure[], targets: Target[]): { rows: Row[]; verdicts: { text: string; pass: boolean | null; detail: string }[] } {
  const medians: Record<string, Partial<Record<Setup, Spread>>> = {};
  for (const m of measures) {
    medians[m.key] = {};
    for (const s of SETUPS) {
      const sp = spread((m.samples[s] ?? []).map((x) => x.value));
      if (sp) medians[m.key]![s] = sp;
    }
  }
  const verdicts = targets.map((t) => {
    const r = t.check(medians);
    return { text: t.text, pass: r ? r.pass : null, detail: r ? r.detail : 'not measured' };
  });
  const rows: Row[] = [];
  for (const m of measures) {
    for (const s of SETUPS) {
      const sp = medians[m.key]![s];
      if (!sp) continue;
      const samples = m.samples[s] ?? [];
      const d = medians[m.key]!.direct?.median;
      const q = medians[m.key]!.squid?.median;
      const cpu = spread(samples.map((x) => x.proxyCpu ?? NaN));
      const load = spread(samples.map((x) => x.loadCpu ?? NaN));
      const busy0 = spread(samples.map((x) => x.busy?.[0] ?? NaN));
      const busy1 = spread(samples.map((x) => x.busy?.[1] ?? NaN));
      const targetHere = verdicts.filter((_, i) => targets[i]!.measure === m.key && (targets[i]!.setup ?? 'vigie') === s);
      rows.push({
        measure: m.label,
        unit: m.unit,
        setup: s,
        median: sp.median,
        min: sp.min,
        max: sp.max,
        runs: sp.n,
        vsDirect: d ? sp.median / d : null,
        vsSquid: q ? sp.median / q : null,
        proxyCpu: cpu ? cpu.median : null,
        loadCpu: load ? load.median : null,
        busy0: busy0 ? busy0.median : null,
        busy1: busy1 ? busy1.median : null,
        errors: samples.reduce((a, x) => a + x.errors, 0),
        target: targetHere.map((v) => `${v.pass === null ? '?' : v.pass ? 'PASS' : 'FAIL'} ${v.text} (${v.detail})`).join('; '),
      });
    }
  }
  return { rows, verdicts };
}

export function markdown(rows: Row[]): string {
  const out = [
    '| measure | setup | median | min–max | ×direct | ×squid | proxy CPU | load CPU | CPU0/CPU1 busy | errors | issue target |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    const range = r.runs > 1 ? `${fmt(r.min)}–${fmt(r.max)}` : '';
    const ratio = (x: number | null) => (x === null ? '' : x.toFixed(2));
    const pct = (x: number | null) => (x === null ? '' : `${x.toFixed(0)}%`);
    out.push(
      `| ${r.measure} (${r.unit}) | ${r.setup} | ${fmt(r.median)} | ${range} | ${ratio(r.vsDirect)} | ${ratio(r.vsSquid)} | ${pct(r.proxyCpu)} | ${pct(r.loadCpu)} | ${r.busy0 === null ? '' : `${pct(r.busy0)}/${pct(r.busy1)}`} | ${r.errors || ''} | ${r.target} |`,
    );
  }
  return out.join('\n');
}
