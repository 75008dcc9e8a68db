import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AlertEngine } from './alerts/engine.js';
import type { VigieConfig } from './config/types.js';
import { DailyBackup } from './journal/backup-schedule.js';
import { fileAccess } from './journal/files.js';
import { Journal, type JournalHandle } from './journal/journal.js';
import { JournalShipper, type FleetReport } from './journal/ship.js';
import { ListUpdateScheduler } from './lists/schedule.js';
import type { NewReport } from './proxy/report.js';
import { interceptionWanted } from './proxy/intercept.js';
import { ReportQueue, reportsFile } from './supervision/report-queue.js';
import type { LeafCounts } from './tls/leaf.js';
import { compilePolicy, ServingGateway, type ServingOptions } from './serving.js';

export { compilePolicy };

export interface GatewayOptions extends Omit<ServingOptions, 'worker'> {
  /**
   * false: no proxy listeners; "transparent": the transparent ones only (a cluster primary whose
   * workers take the explicit proxy ports: src/cluster/).
   */
  listen?: boolean | 'transparent';
}

/** The running version (package.json), told to the academy in fleet reports. */
const VERSION = '0.1.0';

/**
 * Busy: the journal's writer is behind (its queue holds more than a batch or two), or this
 * process's event loop was over 90 % busy in the last interval. Journal shipping waits meanwhile.
 */
function busyGateway(journal: Journal): () => boolean {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const elu = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return elu > 0.9 || journal.health().queueDepth > 2048;
  };
}

/**
 * One school gateway: what serves traffic (src/serving.ts), the proxy listening at once and
 * failing closed until the lists are loaded, plus what one process owns for the whole gateway:
 * the journal, the alerts, the report queue, the journal's backups and shipping, list updates.
 * Cluster workers are ServingGateways alone (src/cluster/worker.ts).
 */
export class Gateway extends ServingGateway {
  declare protected readonly opts: GatewayOptions;
  /** UT1 updates on a schedule, and reloads after `vigie lists update`. */
  listUpdates: ListUpdateScheduler | null = null;
  /** The connection journal (null when disabled): an observer of the proxy, opened before it listens. */
  private readonly journalWriter: Journal | null;
  /** `journal.backup`: the daily copy of the journal, once it is open. */
  backups: DailyBackup | null = null;
  /** Ships the journal to the academy's PostgreSQL (config `journal.ship`); null when off. */
  readonly shipper: JournalShipper | null;
  /** Reports from the block page and /report. */
  readonly reports: ReportQueue;
  /** Safeguarding and security alerts (src/alerts/). */
  readonly alerts: AlertEngine;
  /** The workers' leaf counts (set by the cluster primary, whose workers make the certificates). */
  relayedLeaves: (() => LeafCounts) | null = null;

  /** Leaf certificates of TLS interception, this process's and its workers'; null while no profile intercepts or has. */
  leafCounts(): LeafCounts | null {
    const own = this.proxy.interception.leafCounts();
    const r = this.relayedLeaves?.() ?? null;
    const sum = r === null ? own : { issued: own.issued + r.issued, hits: own.hits + r.hits, size: own.size + r.size };
    return sum.issued === 0 && !interceptionWanted(this.config) ? null : sum;
  }

  constructor(opts: GatewayOptions) {
    const jc = opts.config.journal;
    const journal = jc.enabled
      ? new Journal({ dir: join(opts.config.dataDir, 'journal'), retentionDays: jc.retentionDays, keepQuery: jc.keepQuery, overflow: jc.overflow, queueMax: jc.queueMax, flushMs: jc.flushMs, writerNice: jc.writerNice, access: fileAccess(jc.group), log: opts.log, timezone: opts.config.timezone })
      : null;
    const alerts = new AlertEngine(opts.config, opts.log, opts.now);
    super({ ...opts, admit: journal ? () => journal.admit() : opts.admit }, [...(journal ? [journal] : []), alerts]);
    this.journalWriter = journal;
    this.alerts = alerts;
    this.shipper = journal && jc.ship ? new JournalShipper({ ...jc.ship, file: journal.file, log: opts.log, busy: busyGateway(journal) }, () => this.fleetReport()) : null;
    this.reports = new ReportQueue(reportsFile(opts.config.dataDir), () => this.opts.config.reports.maxQueued);
  }

  protected override queueReport(r: NewReport): void {
    void this.reports.add(r).catch((e: Error) => this.opts.log.error(`report not queued: ${e.message}`));
  }

  protected override reconfigured(config: VigieConfig, changed: string[]): void {
    this.alerts.reconfigure(config);
    // The API changes the policy store, never the file: a changed file is a change made outside it.
    if (changed.length) this.alerts.securityEvent('config-changed', 'warning', 'the configuration file changed and was reloaded (SIGHUP): a change made outside the API', { keys: changed });
  }

  protected override failedClosed(dir: string, e: Error): void {
    this.alerts.securityEvent('fail-closed', 'critical', 'the lists could not be loaded: every request is blocked but the allow lists', { dir, error: e.message.slice(0, 300) });
  }

  /** The journal's reader, health, flush and close; undefined when the journal is disabled. */
  get journal(): JournalHandle | undefined {
    return this.journalWriter ?? undefined;
  }

  /** Listens (failing closed), then loads the lists; resolves once the full policy serves. */
  async start(): Promise<void> {
    const { config, log } = this.opts;
    await this.policy.load();
    // The watched AAF folder is imported here (one process), read by every cluster worker.
    await this.identity.start({ watch: true });
    await this.overrides.load();
    await this.reports.load();
    this.alerts.open();
    // The journal's writer thread starts while the first policy compiles.
    const journalOpened = this.journalWriter?.open().then(
      () => null,
      (e: Error) => e,
    );
    this.current = await compilePolicy(config, null, ++this.version, log, this.policy);
    const journalError = await journalOpened;
    if (journalError) {
      // Recording is a legal duty: under `block` no connection is served unrecorded.
      if (config.journal.overflow === 'block') throw new Error(`journal: ${journalError.message}`);
      log.error(`journal unavailable, connections are served unrecorded (overflow "allow"): ${journalError.message}`);
    } else {
      this.shipper?.start();
      const unclean = this.journalWriter?.health().uncleanStops ?? 0;
      if (unclean) this.alerts.securityEvent('unclean-stop', 'warning', 'the last run ended without closing the journal (crash, kill -9, power loss): the rows of its last moments are missing', { uncleanStops: unclean });
    }
    if (this.shipper) this.watchShipLag(this.shipper, this.alerts);
    const jc = config.journal;
    if (this.journalWriter && jc.backup) {
      this.backups = new DailyBackup({ source: this.journalWriter.file, dir: jc.backup.dir, hour: jc.backup.hour ?? 2, keep: jc.backup.keep ?? 14, timezone: config.timezone, access: fileAccess(jc.group), log }).start();
    }
    if (this.opts.listen !== false) {
      const explicit = this.opts.listen !== 'transparent';
      if (explicit) this.listening.push(...(await this.proxy.listen()));
      this.transparentListening.push(...(await this.proxy.listenTransparent()));
      for (const l of this.transparentListening) log.info(`transparent ${l.kind} listening`, { address: l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`, targetPort: l.targetPort });
      if (explicit) {
        log.warn('policy not loaded yet: every request is blocked except the allow lists (fail closed)');
        if (this.proxy.rawProblem) log.warn(`tunnels on net.Socket: ${this.proxy.rawProblem}`);
        const tunnels = this.proxy.rawTunnels ? 'raw handles' : 'net.Socket';
        for (const l of this.listening) log.info('proxy listening', { address: l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`, tunnels });
      }
    }
    await this.loadLists();
    this.listUpdates = new ListUpdateScheduler(this, config, log);
    await this.listUpdates.start();
  }

  /**
   * Stops accepting, lets in-flight work finish (cut after `graceMs`), then closes the journal.
   * `others`: a cluster primary's workers stopping meanwhile; their last events are journaled first.
   */
  override async stop(graceMs = 0, others: Promise<void> = Promise.resolve()): Promise<void> {
    this.listUpdates?.stop();
    this.backups?.stop();
    await super.stop(graceMs, others);
    await this.alerts.close();
    await this.journalWriter?.close();
    await this.shipper?.close();
  }

  /**
   * A security event when journal shipping falls behind its bound (journal.ship.maxLagSeconds),
   * once per episode, as soon as the shipping thread reports the lag past it (within about a
   * second: it reports at least every second while PostgreSQL is away).
   */
  private watchShipLag(shipper: JournalShipper, alerts: AlertEngine): void {
    shipper.onLateChange = (late, lagSeconds) => {
      if (late) alerts.securityEvent('ship-lag', 'warning', `journal shipping lags more than ${shipper.maxLagSeconds} s behind (journal.ship.maxLagSeconds)`, { lagSeconds: Math.round(lagSeconds) });
    };
  }

  /** What this gateway tells the academy every minute through the shipper (fleet status). */
  fleetReport(): FleetReport {
    const snap = this.current;
    const journal = this.journalWriter?.health() ?? null;
    const ship = this.shipper?.status ?? null;
    const degraded = !snap?.listsLoaded || (journal !== null && !journal.writable) || ship?.late === true;
    const loaded = this.policyUpdates.lastSuccess;
    return {
      version: VERSION,
      policyVersion: this.policy.version,
      listsLoaded: snap?.listsLoaded ?? false,
      listsAgeSeconds: loaded ? (Date.now() - loaded) / 1000 : null,
      status: degraded ? 'degraded' : 'ok',
      health: { listVersion: snap?.listVersion ?? 'none', journal },
    };
  }
}
