import { join } from 'node:path';
import { AlertEngine } from './alerts/engine.js';
import { Identity } from './auth/identity.js';
import { performance } from 'node:perf_hooks';
import type { VigieConfig } from './config/types.js';
import { DailyBackup } from './journal/backup-schedule.js';
import { fileAccess } from './journal/files.js';
import { Journal, type JournalHandle } from './journal/journal.js';
import { JournalShipper, type FleetReport } from './journal/ship.js';
import { loadAcademyLists } from './lists/load.js';
import { ListUpdateScheduler } from './lists/schedule.js';
import { loadListSet, type ListSet } from './lists/set.js';
import { resolveUt1Dir } from './lists/update.js';
import type { ListSourceInfo } from './lists/sources.js';
import type { CategoryIndex } from './lists/types.js';
import type { Logger } from './log.js';
import { BUNDLED_ACADEMY } from './paths.js';
import { buildSnapshot, type ExtraLists, type PolicySnapshot } from './policy/snapshot.js';
import { PolicyStore } from './policy/store.js';
import type { ProxyObserver } from './proxy/events.js';
import { HostResolver } from './proxy/resolver.js';
import { pacHandler } from './proxy/pac.js';
import { reportHandler, type NewReport, type ReportSink } from './proxy/report.js';
import { OverrideStore, overridesFile } from './policy/override-store.js';
import type { Override } from './policy/overrides.js';
import { ReportQueue, reportsFile } from './supervision/report-queue.js';
import { ProxyServer, type ProxyDeps } from './proxy/server.js';
import type { TransparentBound } from './proxy/transparent.js';
import type { LeafCounts } from './tls/leaf.js';
import { interceptionWanted } from './proxy/intercept.js';

export interface GatewayOptions {
  config: VigieConfig;
  log: Logger;
  observers?: ProxyObserver[];
  /** Observers of this gateway's own proxy only, not of what a cluster primary relays from its workers. */
  proxyObservers?: ProxyObserver[];
  /**
   * false: no proxy listeners; "transparent": the transparent ones only (a cluster primary whose
   * workers take the explicit proxy ports: src/cluster/).
   */
  listen?: boolean | 'transparent';
  /** false: no journal even when the config enables one (cluster workers: the primary records). */
  journal?: boolean;
  /** Asked before new work when this gateway has no journal of its own (cluster workers). */
  admit?: () => boolean;
  /** Called with every new policy snapshot (the cluster primary passes it on to its workers). */
  onSwap?: (snapshot: PolicySnapshot) => void;
  /** false: every connection on `net.Socket`, tunnels included (see ProxyDeps.rawTunnels). */
  rawTunnels?: boolean;
  /**
   * A cluster worker: reports go to this sink (the primary's queue) and overrides are kept in
   * memory, as the primary sends them; absent = this process owns both files in the data dir.
   */
  worker?: { reports: ReportSink };
  /** Told the overrides in force after every change (the cluster primary passes them on). */
  onOverrides?: (list: readonly Override[]) => void;
  /** The clock of the overrides' expiries (tests). */
  now?: () => number;
  /** Listen with SO_REUSEPORT: a proxy thread beside others on the same ports (src/cluster/threads.ts). */
  reusePort?: boolean;
  /**
   * Where the lists come from instead of the disk (a proxy thread: the main thread's compiled
   * lists, in shared memory); the same contract as loadListSet (throws = keep the previous ones).
   */
  listSet?: (config: VigieConfig, log: Logger, dir: string) => Promise<ListSet>;
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

/** Builds the policy snapshot for a config and a UT1 index (null: fail closed), with the extra lists. */
export async function compilePolicy(config: VigieConfig, ut1: CategoryIndex | null, policyVersion: number, log?: Logger, store?: PolicyStore, extra: ExtraLists | null = null): Promise<PolicySnapshot> {
  // With a store, profiles and academy lists come from its current version (no disk read), and
  // the snapshot carries that version so decisions and the journal name what the API shows.
  const academy = store ? { builder: store.academyBuilder(), report: { badLines: [] } } : await loadAcademyLists(config.lists.academy ?? BUNDLED_ACADEMY);
  for (const b of academy.report.badLines) log?.warn('academy list: line ignored', { list: b.category, file: b.file, line: b.line, reason: b.reason });
  const snapshot = store
    ? buildSnapshot({ config: store.effectiveConfig(config), ut1, extra, academy: academy.builder, policyVersion: store.version })
    : buildSnapshot({ config, ut1, extra, academy: academy.builder, policyVersion });
  for (const w of snapshot.warnings) log?.warn('policy: ' + w.message, { profile: w.profile });
  return snapshot;
}

/**
 * One school gateway: the proxy listening at once, failing closed until the lists are loaded,
 * then serving the compiled policy. Policy changes replace the snapshot whole.
 */
export class Gateway {
  readonly proxy: ProxyServer;
  /** Profiles and academy lists, versioned (changed by the supervision API and fleet pulls). */
  readonly policy: PolicyStore;
  private current!: PolicySnapshot;
  private ut1: CategoryIndex | null = null;
  private extra: ExtraLists | null = null;
  /** The list set in use (null until the first load): proxy threads view its compiled files. */
  private lists: ListSet | null = null;
  /** The list sets in use (UT1, each extra list): counts, versions, data dates (metrics, status). */
  listSources: readonly ListSourceInfo[] = [];
  /** UT1 updates on a schedule, and reloads after `vigie lists update`. */
  listUpdates: ListUpdateScheduler | null = null;
  private version = 0;
  readonly listening: { host: string; port: number }[] = [];
  /** The transparent listeners (config `transparent`), with the port each stands for. */
  readonly transparentListening: TransparentBound[] = [];
  /** When the lists last loaded and last failed to (ms since the epoch, 0 = never): policy freshness. */
  readonly policyUpdates = { lastSuccess: 0, lastFailure: 0 };
  /** Kept so a reload can hand the proxy a new config and resolver (it reads both per request). */
  private readonly proxyDeps: ProxyDeps;
  /** Who hears of every record, this proxy's and (cluster primary) its workers' relayed ones. */
  private readonly recordObservers: ProxyObserver[];
  /** The connection journal (null when disabled): an observer of the proxy, opened before it listens. */
  private readonly journalWriter: Journal | null;
  /** `journal.backup`: the daily copy of the journal, once it is open. */
  backups: DailyBackup | null = null;
  /** Who is browsing: the directory in memory, the LDAP verifier, address ↔ user sessions. */
  readonly identity: Identity;
  /** Ships the journal to the academy's PostgreSQL (config `journal.ship`); null when off. */
  readonly shipper: JournalShipper | null;
  /** Teachers' unblocks in force (src/policy/override-store.ts); the gate reads its table. */
  readonly overrides: OverrideStore;
  /** Reports from the block page and /report; null in a cluster worker (the primary keeps them). */
  readonly reports: ReportQueue | null;
  /** Safeguarding and security alerts (src/alerts/); null in a cluster worker (the first process keeps them). */
  readonly alerts: AlertEngine | null;
  /** The workers' leaf counts (set by the cluster primary, whose workers make the certificates). */
  relayedLeaves: (() => LeafCounts) | null = null;

  /** Leaf certificates of TLS interception, this process's and its workers'; null while no profile intercepts or has. */
  leafCounts(): LeafCounts | null {
    const own = this.proxy.interception.leafCounts();
    const r = this.relayedLeaves?.() ?? null;
    const sum = r === null ? own : { issued: own.issued + r.issued, hits: own.hits + r.hits, size: own.size + r.size };
    return sum.issued === 0 && !interceptionWanted(this.config) ? null : sum;
  }

  constructor(private readonly opts: GatewayOptions) {
    this.policy = new PolicyStore(opts.config, opts.log);
    const jc = opts.config.journal;
    const journal = jc.enabled && opts.journal !== false
      ? new Journal({ dir: join(opts.config.dataDir, 'journal'), retentionDays: jc.retentionDays, keepQuery: jc.keepQuery, overflow: jc.overflow, queueMax: jc.queueMax, flushMs: jc.flushMs, writerNice: jc.writerNice, access: fileAccess(jc.group), log: opts.log, timezone: opts.config.timezone })
      : null;
    this.journalWriter = journal;
    this.alerts = opts.journal === false ? null : new AlertEngine(opts.config, opts.log, opts.now);
    this.identity = new Identity(opts.config, opts.log);
    this.shipper = journal && jc.ship ? new JournalShipper({ ...jc.ship, file: journal.file, log: opts.log, busy: busyGateway(journal) }, () => this.fleetReport()) : null;
    this.overrides = new OverrideStore({ file: opts.worker ? null : overridesFile(opts.config.dataDir), now: opts.now });
    if (opts.onOverrides) this.overrides.onChange(opts.onOverrides);
    this.reports = opts.worker ? null : new ReportQueue(reportsFile(opts.config.dataDir), () => this.opts.config.reports.maxQueued);
    const sink: ReportSink = opts.worker?.reports ?? ((r: NewReport) => void this.reports!.add(r).catch((e: Error) => opts.log.error(`report not queued: ${e.message}`)));
    const pac = pacHandler(() => this.opts.config);
    const report = reportHandler({ config: () => this.opts.config, snapshot: () => this.current, sink });
    // The first process's observers see every record (its workers' relayed ones too): the journal
    // and the alerts; where the sessions live (not in a cluster worker), traffic keeps portal logins alive.
    this.recordObservers = [...(opts.observers ?? []), ...(opts.worker ? [] : [this.identity.idle]), ...(journal ? [journal] : []), ...(this.alerts ? [this.alerts] : [])];
    this.proxyDeps = {
      config: opts.config,
      snapshot: () => this.current,
      resolver: new HostResolver(opts.config),
      observers: [...this.recordObservers, ...(opts.proxyObservers ?? [])],
      overrides: () => this.overrides.table,
      local: (req, res) => pac(req, res) || report(req, res),
      admit: journal ? () => journal.admit() : opts.admit,
      rawTunnels: opts.rawTunnels,
      identity: this.identity,
      reusePort: opts.reusePort,
    };
    this.proxy = new ProxyServer(this.proxyDeps);
  }

  get snapshot(): PolicySnapshot {
    return this.current;
  }

  get config(): VigieConfig {
    return this.opts.config;
  }

  /** The list set in use (null before the first load). */
  get loadedLists(): ListSet | null {
    return this.lists;
  }

  /** What the proxy reports to (metrics, journal): a cluster primary feeds them its workers' events. */
  get observers(): readonly ProxyObserver[] {
    return this.recordObservers;
  }

  /** Whether new connections may be taken (false under journal overflow `block` when it cannot record). */
  admit(): boolean {
    return this.proxyDeps.admit ? this.proxyDeps.admit() : true;
  }

  /** The journal's reader, health, flush and close; undefined when the journal is disabled. */
  get journal(): JournalHandle | undefined {
    return this.journalWriter ?? undefined;
  }

  /** Listens (failing closed), then loads the lists; resolves once the full policy serves. */
  async start(): Promise<void> {
    const { config, log } = this.opts;
    await this.policy.load();
    // The watched AAF folder is imported where the journal is (one process), read everywhere.
    await this.identity.start({ watch: this.opts.journal !== false });
    await this.overrides.load();
    await this.reports?.load();
    this.alerts?.open();
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
      if (unclean) this.alerts?.securityEvent('unclean-stop', 'warning', 'the last run ended without closing the journal (crash, kill -9, power loss): the rows of its last moments are missing', { uncleanStops: unclean });
    }
    if (this.shipper && this.alerts) this.watchShipLag(this.shipper, this.alerts);
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

  /** (Re)loads the UT1 lists; on failure the previous policy stays, and it says so. */
  async loadLists(): Promise<boolean> {
    const { config, log } = this.opts;
    const dir = await resolveUt1Dir(config);
    try {
      const set = await (this.opts.listSet ?? loadListSet)(config, log, dir);
      const { report, seconds, source } = set;
      if (report.badLineCount) log.warn('lists: lines ignored', { count: report.badLineCount, first: report.badLines[0] && `${report.badLines[0].category}/${report.badLines[0].file}:${report.badLines[0].line} ${report.badLines[0].reason}` });
      this.ut1 = set.ut1;
      this.extra = set.extra;
      this.lists = set;
      this.swap(await compilePolicy(config, set.ut1, ++this.version, log, this.policy, set.extra));
      this.listSources = set.sources;
      this.policyUpdates.lastSuccess = Date.now();
      log.info('lists loaded', { dir, source, categories: report.categories.length, entries: report.entries, version: report.version, seconds: seconds.toFixed(2), extra: set.extra ? set.extra.sources.map((x) => x.source).join(' ') : 'none' });
      // Loud, at every load: a category profiles block that no list fills blocks next to nothing.
      for (const e of this.current.emptyCategories) {
        log.warn(`lists: category "${e.category}" has no domains entries, so profiles ${e.profiles.join(', ')} that block it block almost none of its sites: install full lists (vigie lists update) or extra lists`, { category: e.category, profiles: e.profiles.join(','), dir });
      }
      return true;
    } catch (e) {
      this.policyUpdates.lastFailure = Date.now();
      const failClosed = !this.current.listsLoaded;
      log.error(`lists could not be loaded: ${(e as Error).message}; ${failClosed ? 'NO POLICY: blocking everything but the allow lists (fail closed)' : 'keeping the previous lists'}`, { dir });
      if (failClosed) this.alerts?.securityEvent('fail-closed', 'critical', 'the lists could not be loaded: every request is blocked but the allow lists', { dir, error: (e as Error).message.slice(0, 300) });
      return false;
    }
  }

  /** Recompiles the policy from the config and the loaded lists (e.g. after an academy list changed). */
  async recompile(): Promise<PolicySnapshot> {
    this.swap(await compilePolicy(this.opts.config, this.ut1, ++this.version, this.opts.log, this.policy, this.extra));
    return this.current;
  }

  /**
   * Applies a re-read config without dropping connections: the policy (clients, times, lists) is
   * rebuilt and swapped, names and per-request timeouts apply to the next requests. Returns the
   * top-level keys that only a restart applies (listen addresses, server limits, ...), and the
   * file's profiles that the policy managed over the API or the fleet overrides.
   */
  async reload(next: VigieConfig): Promise<{ restartNeeded: string[]; listsLoaded: boolean; overriddenProfiles: string[] }> {
    const prev = this.opts.config;
    const live = new Set(['clients', 'profiles', 'times', 'timezone', 'connectPorts', 'httpPorts', 'destinations', 'hosts', 'dns', 'lists', 'log', 'timeouts', 'directory', 'alerts', 'notifications']);
    const restartNeeded = (Object.keys(next) as (keyof VigieConfig)[]).filter((k) => !live.has(k) && JSON.stringify(next[k]) !== JSON.stringify(prev[k]));
    // Keys that need a restart keep their running values, so the config read back is what runs.
    const applied = { ...next } as Record<string, unknown>;
    for (const k of restartNeeded) applied[k] = prev[k];
    const config = applied as unknown as VigieConfig;
    this.opts.config = config;
    this.proxyDeps.config = config;
    // Profiles from the file apply while the policy store has not taken them over (API, fleet).
    const overriddenProfiles = this.policy.reconfigure(config);
    this.identity.reconfigure(config);
    this.alerts?.reconfigure(config);
    const changed = (Object.keys(next) as (keyof VigieConfig)[]).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(prev[k]));
    // The API changes the policy store, never the file: a changed file is a change made outside it.
    if (changed.length) this.alerts?.securityEvent('config-changed', 'warning', 'the configuration file changed and was reloaded (SIGHUP): a change made outside the API', { keys: changed });
    // A profile that starts intercepting needs the school CA now: say so loudly when it cannot.
    if (this.proxy.interception.interceptor === null && this.proxy.interception.problem) this.opts.log.error(`TLS interception stays off: ${this.proxy.interception.problem}`);
    if (JSON.stringify(next.hosts) !== JSON.stringify(prev.hosts) || JSON.stringify(next.dns) !== JSON.stringify(prev.dns)) this.proxyDeps.resolver = new HostResolver(config);
    const listsLoaded = await this.loadLists();
    // Lists that fail to load keep the previous ones; the new rules still apply over them.
    if (!listsLoaded) await this.recompile();
    return { restartNeeded, listsLoaded, overriddenProfiles };
  }

  private swap(next: PolicySnapshot): void {
    this.current = next;
    this.opts.onSwap?.(next);
  }

  /**
   * Stops accepting, lets in-flight work finish (cut after `graceMs`), then closes the journal.
   * `others`: a cluster primary's workers stopping meanwhile; their last events are journaled first.
   */
  async stop(graceMs = 0, others: Promise<void> = Promise.resolve()): Promise<void> {
    this.listUpdates?.stop();
    this.backups?.stop();
    this.identity.stop();
    this.overrides.stop();
    await Promise.all([this.proxy.close(graceMs), others]);
    await this.alerts?.close();
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
