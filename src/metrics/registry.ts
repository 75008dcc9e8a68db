import { collectDefaultMetrics, Registry } from 'prom-client';
import type { JournalHealth } from '../journal/types.js';
import type { CategoryIndex } from '../lists/types.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { MetricsObserver } from './observer.js';
import { CollectedMetric, type ExposedMetric, type Sample } from './samples.js';

/** What the metrics read from the gateway at scrape time; every part may be missing during start. */
export interface MetricsSource {
  readonly snapshot: PolicySnapshot | undefined;
  /** ms since the epoch; 0 = never. */
  readonly policyUpdates: { readonly lastSuccess: number; readonly lastFailure: number };
  readonly journal?: { health(): JournalHealth } | undefined;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  /** Give this to the proxy: it counts the traffic. */
  readonly observer: MetricsObserver;
  /** Points the scrape-time metrics at the gateway once it exists. */
  bind(source: () => MetricsSource | undefined): void;
}

const VERSION = '0.1.0';

const one = (value: number, labels: Record<string, string> = {}): Sample[] => (Number.isFinite(value) ? [{ value, labels }] : []);

/**
 * The gateway's registry: traffic counters fed by the proxy observer, plus gauges read when
 * Prometheus scrapes (policy freshness, list sizes, journal health, process and event loop).
 */
export function createGatewayMetrics(): GatewayMetrics {
  const registry = new Registry();
  const observer = new MetricsObserver();
  let source: () => MetricsSource | undefined = () => undefined;
  const health = (): JournalHealth | undefined => source()?.journal?.health();
  const snapshot = () => source()?.snapshot;

  // counts() walks the index; an index is immutable, so its sizes are computed once per index.
  const entriesOf = new WeakMap<CategoryIndex, Sample[]>();
  const listEntries = (): Sample[] => {
    const index = snapshot()?.indexes.ut1;
    if (!index || !snapshot()?.listsLoaded) return [];
    let samples = entriesOf.get(index);
    if (!samples) {
      samples = [];
      for (const c of index.counts()) {
        samples.push({ value: c.domains, labels: { category: c.name, kind: 'domains' } });
        samples.push({ value: c.urls, labels: { category: c.name, kind: 'urls' } });
        samples.push({ value: c.expressions, labels: { category: c.name, kind: 'expressions' } });
      }
      entriesOf.set(index, samples);
    }
    return samples;
  };

  const collected: ExposedMetric[] = [
    ...observer.metrics,
    new CollectedMetric('vigie_active_connections', 'Open client connections and CONNECT tunnels.', 'gauge', () => [
      { value: observer.active.client, labels: { kind: 'client' } },
      { value: observer.active.tunnel, labels: { kind: 'tunnel' } },
    ]),
    new CollectedMetric('vigie_policy_version', 'Version number of the policy in force (increases at each recompilation).', 'gauge', () => one(snapshot()?.policyVersion ?? NaN)),
    new CollectedMetric('vigie_policy_lists_loaded', '1 when a UT1 list set is loaded; 0 means the gateway fails closed (blocks all but allow lists).', 'gauge', () => {
      const s = snapshot();
      return s ? one(s.listsLoaded ? 1 : 0) : [];
    }),
    new CollectedMetric('vigie_policy_last_success_timestamp_seconds', 'When the lists were last loaded successfully (Unix time; 0 = never).', 'gauge', () => one((source()?.policyUpdates.lastSuccess ?? NaN) / 1000)),
    new CollectedMetric('vigie_policy_last_failure_timestamp_seconds', 'When loading the lists last failed (Unix time; 0 = never).', 'gauge', () => one((source()?.policyUpdates.lastFailure ?? NaN) / 1000)),
    new CollectedMetric('vigie_list_entries', 'Entries of the loaded UT1 lists by category and kind.', 'gauge', listEntries),
    new CollectedMetric('vigie_journal_queue_depth', 'Connection records waiting to be written to the journal.', 'gauge', () => one(health()?.queueDepth ?? NaN)),
    new CollectedMetric('vigie_journal_rows_written_total', 'Connection records written to the journal.', 'counter', () => one(health()?.rowsWritten ?? NaN)),
    new CollectedMetric('vigie_journal_rows_lost_total', 'Connection records the journal could not keep (queue full or write errors).', 'counter', () => one(health()?.rowsLost ?? NaN)),
    new CollectedMetric('vigie_journal_writer_restarts_total', 'Times the journal writer thread died and was started again.', 'counter', () => one(health()?.writerRestarts ?? NaN)),
    new CollectedMetric('vigie_journal_unclean_stops_total', 'Starts that found the last run had not closed the journal (rows it held in memory lost; an unclean-stop event records it).', 'counter', () => one(health()?.uncleanStops ?? NaN)),
    new CollectedMetric('vigie_journal_writer_pauses_total', 'Pauses the journal writer made in its transactions to hand the core back to the proxy (while in the background).', 'counter', () => one(health()?.writerPauses ?? NaN)),
    new CollectedMetric('vigie_journal_writer_boosts_total', 'Times the journal writer was given the proxy\'s priority because records piled up.', 'counter', () => one(health()?.writerBoosts ?? NaN)),
    new CollectedMetric('vigie_journal_writable', '1 when the journal database accepts writes.', 'gauge', () => {
      const h = health();
      return h ? one(h.writable ? 1 : 0) : [];
    }),
    new CollectedMetric('vigie_build_info', 'Always 1; labels tell the running version.', 'gauge', () => one(1, { version: VERSION, nodejs: process.version })),
  ];
  // The registry only calls get()/reset() on what it holds; the prom-client types want its own classes.
  for (const m of collected) registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });

  return {
    registry,
    observer,
    bind(s) {
      source = s;
    },
  };
}
