import { collectDefaultMetrics, Registry } from 'prom-client';
import type { JournalHealth } from '../journal/types.js';
import type { CategoryIndex } from '../lists/types.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { AlertCounts } from '../alerts/engine.js';
import { MetricsObserver } from './observer.js';
import { CollectedMetric, type ExposedMetric, type Sample } from './samples.js';

/** What the metrics read from the gateway at scrape time; every part may be missing during start. */
export interface MetricsSource {
  readonly snapshot: PolicySnapshot | undefined;
  /** ms since the epoch; 0 = never. */
  readonly policyUpdates: { readonly lastSuccess: number; readonly lastFailure: number };
  readonly journal?: { health(): JournalHealth } | undefined;
  /** The list sets in use and the date of their data (ms since the epoch; null = unknown). */
  readonly listSources?: readonly { readonly source: string; readonly dataTime: number | null }[];
  /** Authentication checks by outcome, live sessions, directory size (src/auth/identity.ts). */
  readonly identity?: { readonly verifier: { readonly counts: Readonly<Record<string, number>> } | null; readonly sessions: { active(): number }; readonly userCount: number };
  readonly shipper?: { readonly status: { lagSeconds: number | null } } | null;
  /** Leaf certificates of TLS interception (src/tls/leaf.ts), workers' included; null: interception off. */
  leafCounts?(): { readonly issued: number; readonly hits: number; readonly size: number } | null;
  /** The alert engine's counters (src/alerts/engine.ts); null in a process without one. */
  readonly alerts?: { readonly counts: AlertCounts } | null;
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

/** The alert chain's metrics (deploy/prometheus/vigie-alerts.yml): raised alerts, open ones, deliveries, API sign-in failures. */
function alertMetrics(counts: () => AlertCounts | undefined): ExposedMetric[] {
  return [
    new CollectedMetric('vigie_alerts_raised_total', 'Alerts raised (deduplicated hits not counted) by kind (safeguarding, security), type and severity.', 'counter', () =>
      [...(counts()?.raised ?? [])].map(([k, value]) => {
        const [kind, type, severity] = k.split('|') as [string, string, string];
        return { value, labels: { kind, type, severity } };
      })),
    new CollectedMetric('vigie_alerts_open', 'Alerts waiting for the referent or the security contact (neither acknowledged nor dismissed), by kind.', 'gauge', () => {
      const c = counts();
      return c ? Object.entries(c.open()).map(([kind, value]) => ({ value, labels: { kind } })) : [];
    }),
    new CollectedMetric('vigie_alert_notifications_total', 'Alert deliveries by outcome: sent, failed (a channel refused or was unreachable), suppressed (alerts.maxPerHour).', 'counter', () => {
      const c = counts();
      return c ? [{ value: c.notified, labels: { outcome: 'sent' } }, { value: c.notifyFailed, labels: { outcome: 'failed' } }, { value: c.suppressed, labels: { outcome: 'suppressed' } }] : [];
    }),
    new CollectedMetric('vigie_api_auth_failures_total', 'Unknown or revoked tokens presented to the supervision API.', 'counter', () => one(counts()?.authFailures ?? NaN)),
  ];
}

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
    new CollectedMetric('vigie_lists_data_timestamp_seconds', 'Date of the data of each list set in use (Unix time): the tarball\'s Last-Modified, the bundled snapshot\'s date, or its files\' newest; not when it was loaded.', 'gauge', () =>
      (source()?.listSources ?? []).flatMap((s) => (s.dataTime === null ? [] : one(s.dataTime / 1000, { source: s.source })))),
    new CollectedMetric('vigie_list_category_empty', '1 for a category some profile blocks while no loaded list gives it a domain (it blocks next to nothing), 0 for the other blocked categories.', 'gauge', () => {
      const s = snapshot();
      if (!s?.listsLoaded) return [];
      const empty = new Set(s.emptyCategories.map((e) => e.category));
      return s.blockedCategories.map((category) => ({ value: empty.has(category) ? 1 : 0, labels: { category } }));
    }),
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
    new CollectedMetric('vigie_auth_checks_total', 'Proxy credential checks by result: ok (directory asked), cached, invalid, rate-limited, unavailable (directory unreachable).', 'counter', () => {
      const counts = source()?.identity?.verifier?.counts;
      return counts ? Object.entries(counts).map(([result, value]) => ({ value, labels: { result } })) : [];
    }),
    new CollectedMetric('vigie_sessions_active', 'Client addresses currently bound to a user (API or portal sessions).', 'gauge', () => one(source()?.identity?.sessions.active() ?? NaN)),
    new CollectedMetric('vigie_directory_users', 'Users of the academy directory held by the gateway.', 'gauge', () => one(source()?.identity?.userCount ?? NaN)),
    new CollectedMetric('vigie_journal_ship_lag_seconds', 'Age of the oldest journal entry the academy PostgreSQL has not acknowledged (0 = caught up; absent when shipping is off).', 'gauge', () => one(source()?.shipper?.status.lagSeconds ?? NaN)),
    new CollectedMetric('vigie_intercept_leaf_certificates_issued_total', 'Leaf certificates signed with the school CA for intercepted names (TLS interception), all workers.', 'counter', () => one(source()?.leafCounts?.()?.issued ?? NaN)),
    new CollectedMetric('vigie_intercept_leaf_cache_hits_total', 'Intercepted connections served a leaf certificate from the cache (no signing), all workers.', 'counter', () => one(source()?.leafCounts?.()?.hits ?? NaN)),
    new CollectedMetric('vigie_intercept_leaf_cache_size', 'Leaf certificates (with their TLS contexts) held in memory, summed over the workers (each has its own cache, at most interception.leafCacheSize).', 'gauge', () => one(source()?.leafCounts?.()?.size ?? NaN)),
    ...alertMetrics(() => source()?.alerts?.counts),
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
