import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createGatewayMetrics } from '../src/metrics/registry.js';
import { tmp } from './helpers.js';
import { REPO } from './service-cli.js';

const deploy = (...p: string[]) => join(REPO, 'deploy', ...p);
const dashboard = JSON.parse(readFileSync(deploy('grafana', 'vigie-dashboard.json'), 'utf8')) as {
  uid: string;
  title: string;
  templating: { list: { name: string; type: string }[] };
  panels: { id: number; type: string; title: string; gridPos: { x: number; y: number; w: number; h: number }; datasource?: { uid: string }; targets?: { expr: string; refId: string; datasource?: { uid: string } }[] }[];
};
const alerts = readFileSync(deploy('prometheus', 'vigie-alerts.yml'), 'utf8');

/** Every series name the gateway's registry can expose (histograms with their suffixes). */
function exposedNames(): Set<string> {
  const names = new Set<string>(['up']);
  for (const m of createGatewayMetrics().registry.getMetricsAsArray() as unknown as { name: string; type?: string; get(): unknown }[]) {
    const type = m.type ?? (m.get() as { type: string }).type;
    names.add(m.name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
  }
  return names;
}

const referenced = (text: string): string[] => [...new Set(text.match(/\b(?:vigie|nodejs|process)_[a-z0-9_]+\b/g) ?? [])];
const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((x) => x.expr));

t.test('the dashboard is a well-formed Grafana dashboard', async (t) => {
  t.equal(dashboard.uid, 'vigie-gateways');
  const ids = dashboard.panels.map((p) => p.id);
  t.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const vars = new Set(dashboard.templating.list.map((v) => v.name));
  t.ok(vars.has('datasource') && vars.has('instance'), 'datasource and gateway variables');
  const cells = new Set<string>();
  for (const p of dashboard.panels) {
    const g = p.gridPos;
    t.ok(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, `${p.title}: inside the 24-column grid`);
    for (let x = g.x; x < g.x + g.w; x++)
      for (let y = g.y; y < g.y + g.h; y++) {
        const k = `${x},${y}`;
        if (cells.has(k)) t.fail(`${p.title} overlaps another panel at ${k}`);
        cells.add(k);
      }
    if (p.type === 'row') continue;
    t.ok(p.targets?.length, `${p.title}: has queries`);
    t.equal(p.datasource?.uid, '${datasource}', `${p.title}: uses the datasource variable`);
    for (const target of p.targets ?? []) {
      t.ok(target.expr.trim(), `${p.title} ${target.refId}: expression`);
      for (const v of target.expr.match(/\$(\w+)/g) ?? []) t.ok(vars.has(v.slice(1)) || v.startsWith('$__'), `${p.title}: ${v} is defined`);
    }
  }
  const text = exprs.join('\n');
  for (const want of ['vigie_requests_total', 'vigie_request_duration_seconds_bucket', 'vigie_upstream_errors_total', 'vigie_journal_queue_depth', 'vigie_journal_rows_lost_total', 'vigie_policy_last_success_timestamp_seconds', 'vigie_list_entries']) {
    t.ok(text.includes(want), `dashboard shows ${want}`);
  }
});

t.test('dashboard and alerts only use metrics the gateway exposes', async (t) => {
  const names = exposedNames();
  for (const n of referenced(exprs.join('\n'))) t.ok(names.has(n), `dashboard: ${n} is exposed`);
  for (const n of referenced(alerts)) t.ok(names.has(n), `alerts: ${n} is exposed`);
  for (const a of ['VigieGatewayDown', 'VigieJournalLosingRows', 'VigiePolicyStale', 'VigieUpstreamErrorRate']) t.match(alerts, new RegExp(`alert: ${a}\\b`), `${a} defined`);
});

t.test('promtool accepts the config, the rules, their unit tests and the dashboard queries', async (t) => {
  if (spawnSync('promtool', ['--version']).error) {
    t.pass('promtool checks', { skip: 'promtool not installed (apt-get install prometheus): rules and queries not checked by Prometheus itself' });
    return;
  }
  const run = (...args: string[]) => spawnSync('promtool', args, { cwd: deploy('prometheus'), encoding: 'utf8' });
  for (const args of [['check', 'config', 'prometheus.yml'], ['check', 'rules', 'vigie-alerts.yml'], ['test', 'rules', 'vigie-alerts.test.yml']]) {
    const r = run(...args);
    t.equal(r.status, 0, `promtool ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  }
  // Grafana's variables replaced by what they expand to; each query becomes a recording rule,
  // which promtool parses as PromQL.
  const dir = tmp();
  const rules = ['groups:', '  - name: dashboard', '    rules:', ...exprs.flatMap((e, i) => [`      - record: dashboard:q${i}`, `        expr: ${JSON.stringify(e.replaceAll('$__rate_interval', '5m').replaceAll('$__range', '1d').replaceAll('$instance', '.*'))}`])];
  writeFileSync(join(dir, 'dashboard.rules.yml'), rules.join('\n') + '\n');
  const r = spawnSync('promtool', ['check', 'rules', 'dashboard.rules.yml'], { cwd: dir, encoding: 'utf8' });
  t.equal(r.status, 0, `dashboard queries parse as PromQL\n${r.stdout}${r.stderr}`);
  t.match(r.stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`));
});
