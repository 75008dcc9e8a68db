import { Identity } from './auth/identity.js';
import type { VigieConfig } from './config/types.js';
import { resolveUt1Dir } from './lists/installed.js';
import type { ListSet } from './lists/set.js';
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
import { ProxyServer, type ProxyDeps } from './proxy/server.js';
import type { TransparentBound } from './proxy/transparent.js';

export interface ServingOptions {
  config: VigieConfig;
  log: Logger;
  observers?: ProxyObserver[];
  /** Observers of this gateway's own proxy only, not of what a cluster primary relays from its workers. */
  proxyObservers?: ProxyObserver[];
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

/** Builds the policy snapshot for a config and a UT1 index (null: fail closed), with the extra lists. */
export async function compilePolicy(config: VigieConfig, ut1: CategoryIndex | null, policyVersion: number, log?: Logger, store?: PolicyStore, extra: ExtraLists | null = null): Promise<PolicySnapshot> {
  // With a store, profiles and academy lists come from its current version (no disk read), and
  // the snapshot carries that version so decisions and the journal name what the API shows.
  // Without one (`vigie check`), the academy folder is read, with the loaders of the text lists.
  const academy = store ? { builder: store.academyBuilder(), report: { badLines: [] } } : await (await import('./lists/load.js')).loadAcademyLists(config.lists.academy ?? BUNDLED_ACADEMY);
  for (const b of academy.report.badLines) log?.warn('academy list: line ignored', { list: b.category, file: b.file, line: b.line, reason: b.reason });
  const snapshot = store
    ? buildSnapshot({ config: store.effectiveConfig(config), ut1, extra, academy: academy.builder, policyVersion: store.version })
    : buildSnapshot({ config, ut1, extra, academy: academy.builder, policyVersion });
  for (const w of snapshot.warnings) log?.warn('policy: ' + w.message, { profile: w.profile });
  return snapshot;
}

/**
 * What serves traffic: the proxy, the policy it applies (store, lists, compiled snapshot), who
 * is browsing, the overrides in force. A cluster worker (process or thread) is this alone, so it
 * loads no code it never runs; the gateway that owns the journal, the alerts, the reports and the
 * list updates (src/gateway.ts) adds them around it. Policy changes replace the snapshot whole.
 */
export class ServingGateway {
  readonly proxy: ProxyServer;
  /** Profiles and academy lists, versioned (changed by the supervision API and fleet pulls). */
  readonly policy: PolicyStore;
  protected current!: PolicySnapshot;
  private ut1: CategoryIndex | null = null;
  private extra: ExtraLists | null = null;
  /** The list set in use (null until the first load): proxy threads view its compiled files. */
  private lists: ListSet | null = null;
  /** The list sets in use (UT1, each extra list): counts, versions, data dates (metrics, status). */
  listSources: readonly ListSourceInfo[] = [];
  protected version = 0;
  readonly listening: { host: string; port: number }[] = [];
  /** The transparent listeners (config `transparent`), with the port each stands for. */
  readonly transparentListening: TransparentBound[] = [];
  /** When the lists last loaded and last failed to (ms since the epoch, 0 = never): policy freshness. */
  readonly policyUpdates = { lastSuccess: 0, lastFailure: 0 };
  /** Kept so a reload can hand the proxy a new config and resolver (it reads both per request). */
  protected readonly proxyDeps: ProxyDeps;
  /** Who hears of every record, this proxy's and (cluster primary) its workers' relayed ones. */
  private readonly recordObservers: ProxyObserver[];
  /** Who is browsing: the directory in memory, the LDAP verifier, address ↔ user sessions. */
  readonly identity: Identity;
  /** Teachers' unblocks in force (src/policy/override-store.ts); the gate reads its table. */
  readonly overrides: OverrideStore;

  /** `records`: the owner's observers of every record after the sessions' (journal, alerts). */
  constructor(
    protected readonly opts: ServingOptions,
    records: ProxyObserver[] = [],
  ) {
    this.policy = new PolicyStore(opts.config, opts.log);
    this.identity = new Identity(opts.config, opts.log);
    this.overrides = new OverrideStore({ file: opts.worker ? null : overridesFile(opts.config.dataDir), now: opts.now });
    if (opts.onOverrides) this.overrides.onChange(opts.onOverrides);
    const sink: ReportSink = opts.worker?.reports ?? ((r: NewReport) => this.queueReport(r));
    const pac = pacHandler(() => this.opts.config);
    const report = reportHandler({ config: () => this.opts.config, snapshot: () => this.current, sink });
    // The first process's observers see every record (its workers' relayed ones too): the journal
    // and the alerts; where the sessions live (not in a cluster worker), traffic keeps portal logins alive.
    this.recordObservers = [...(opts.observers ?? []), ...(opts.worker ? [] : [this.identity.idle]), ...records];
    this.proxyDeps = {
      config: opts.config,
      snapshot: () => this.current,
      resolver: new HostResolver(opts.config),
      observers: [...this.recordObservers, ...(opts.proxyObservers ?? [])],
      overrides: () => this.overrides.table,
      local: (req, res) => pac(req, res) || report(req, res),
      admit: opts.admit,
      rawTunnels: opts.rawTunnels,
      identity: this.identity,
      reusePort: opts.reusePort,
    };
    this.proxy = new ProxyServer(this.proxyDeps);
  }

  /** Where a report from the block page goes when this gateway keeps the queue (src/gateway.ts). */
  protected queueReport(r: NewReport): void {
    this.opts.log.error('report not queued: this gateway keeps no report queue', { host: r.host });
  }

  /** Told a re-read config, with the top-level keys that changed, before the policy is rebuilt. */
  protected reconfigured(_config: VigieConfig, _changed: string[]): void {}

  /** Told that the lists could not be loaded while no policy serves (fail closed). */
  protected failedClosed(_dir: string, _error: Error): void {}

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

  /** (Re)loads the UT1 lists; on failure the previous policy stays, and it says so. */
  async loadLists(): Promise<boolean> {
    const { config, log } = this.opts;
    const dir = await resolveUt1Dir(config);
    try {
      // Compiling lists from the disk is for who has no shared copy to view (src/cluster/worker.ts).
      const set = await (this.opts.listSet ?? (await import('./lists/set.js')).loadListSet)(config, log, dir);
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
      if (failClosed) this.failedClosed(dir, e as Error);
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
    this.reconfigured(config, (Object.keys(next) as (keyof VigieConfig)[]).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(prev[k])));
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

  /** Stops accepting and lets in-flight work finish (cut after `graceMs`), `others` meanwhile. */
  async stop(graceMs = 0, others: Promise<void> = Promise.resolve()): Promise<void> {
    this.identity.stop();
    this.overrides.stop();
    await Promise.all([this.proxy.close(graceMs), others]);
  }
}
