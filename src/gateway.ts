import type { VigieConfig } from './config/types.js';
import { loadAcademyLists, loadUt1Index } from './lists/load.js';
import type { CategoryIndex } from './lists/types.js';
import type { Logger } from './log.js';
import { BUNDLED_ACADEMY, BUNDLED_UT1 } from './paths.js';
import { buildSnapshot, type PolicySnapshot } from './policy/snapshot.js';
import type { ProxyObserver } from './proxy/events.js';
import { HostResolver } from './proxy/resolver.js';
import { ProxyServer } from './proxy/server.js';

export interface GatewayOptions {
  config: VigieConfig;
  log: Logger;
  observers?: ProxyObserver[];
}

/** Builds the policy snapshot for a config and a UT1 index (null: fail closed). */
export async function compilePolicy(config: VigieConfig, ut1: CategoryIndex | null, policyVersion: number, log?: Logger): Promise<PolicySnapshot> {
  const academy = await loadAcademyLists(config.lists.academy ?? BUNDLED_ACADEMY);
  for (const b of academy.report.badLines) log?.warn('academy list: line ignored', { list: b.category, file: b.file, line: b.line, reason: b.reason });
  const snapshot = buildSnapshot({ config, ut1, academy: academy.builder, policyVersion });
  for (const w of snapshot.warnings) log?.warn('policy: ' + w.message, { profile: w.profile });
  return snapshot;
}

/**
 * One school gateway: the proxy listening at once, failing closed until the lists are loaded,
 * then serving the compiled policy. Policy changes replace the snapshot whole.
 */
export class Gateway {
  readonly proxy: ProxyServer;
  private current!: PolicySnapshot;
  private ut1: CategoryIndex | null = null;
  private version = 0;
  readonly listening: { host: string; port: number }[] = [];

  constructor(private readonly opts: GatewayOptions) {
    this.proxy = new ProxyServer({
      config: opts.config,
      snapshot: () => this.current,
      resolver: new HostResolver(opts.config),
      observers: opts.observers,
    });
  }

  get snapshot(): PolicySnapshot {
    return this.current;
  }

  get config(): VigieConfig {
    return this.opts.config;
  }

  /** Listens (failing closed), then loads the lists; resolves once the full policy serves. */
  async start(): Promise<void> {
    const { config, log } = this.opts;
    this.current = await compilePolicy(config, null, ++this.version, log);
    this.listening.push(...(await this.proxy.listen()));
    log.warn('policy not loaded yet: every request is blocked except the allow lists (fail closed)');
    for (const l of this.listening) log.info('proxy listening', { address: l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}` });
    await this.loadLists();
  }

  /** (Re)loads the UT1 lists; on failure the previous policy stays, and it says so. */
  async loadLists(): Promise<boolean> {
    const { config, log } = this.opts;
    const dir = config.lists.ut1 ?? BUNDLED_UT1;
    try {
      const { index, report, seconds } = await loadUt1Index(dir);
      if (report.badLineCount) log.warn('lists: lines ignored', { count: report.badLineCount, first: report.badLines[0] && `${report.badLines[0].category}/${report.badLines[0].file}:${report.badLines[0].line} ${report.badLines[0].reason}` });
      this.ut1 = index;
      this.swap(await compilePolicy(config, index, ++this.version, log));
      log.info('lists loaded', { dir, categories: report.categories.length, entries: report.entries, version: report.version, seconds: seconds.toFixed(2) });
      return true;
    } catch (e) {
      const failClosed = !this.current.listsLoaded;
      log.error(`lists could not be loaded: ${(e as Error).message}; ${failClosed ? 'NO POLICY: blocking everything but the allow lists (fail closed)' : 'keeping the previous lists'}`, { dir });
      return false;
    }
  }

  /** Recompiles the policy from the config and the loaded lists (e.g. after an academy list changed). */
  async recompile(): Promise<PolicySnapshot> {
    this.swap(await compilePolicy(this.opts.config, this.ut1, ++this.version, this.opts.log));
    return this.current;
  }

  private swap(next: PolicySnapshot): void {
    this.current = next;
  }

  async stop(graceMs = 0): Promise<void> {
    await this.proxy.close(graceMs);
  }
}
