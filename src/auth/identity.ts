import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { VigieConfig } from '../config/types.js';
import type { DirectoryWatcher } from '../directory/import.js';
import { levelTable, profileForUser, type DirectoryUser } from '../directory/levels.js';
import { Directory, directoryFile } from '../directory/store.js';
import type { Logger } from '../log.js';
import { IdleTracker } from './idle.js';
import { LdapVerifier, type AuthOutcome } from './ldap.js';
import { PortalLinks } from './portal-link.js';
import { SessionStore } from './sessions.js';

/**
 * Who a client is, for the gate: the directory held in memory (loaded from `directory.db` at start
 * and again when an import changed it, so no request reads the disk), the LDAP verifier when one is
 * configured, and the address ↔ user sessions.
 */
export class Identity {
  readonly sessions = new SessionStore();
  readonly verifier: LdapVerifier | null;
  /** Where the captive portal is and the key of its signed links (src/auth/portal-link.ts). */
  readonly portal = new PortalLinks();
  /** Give this to the proxy's observers where the sessions live: traffic keeps portal logins alive. */
  readonly idle = new IdleTracker(this.sessions);
  private users = new Map<string, DirectoryUser>();
  private logins = new Map<string, string>();
  private levels: Record<string, string>;
  private loadedMtime = -1;
  private timer: NodeJS.Timeout | null = null;
  private watcher: DirectoryWatcher | null = null;
  /** The watched folder's imports write through this (opened at the first one). */
  private writer: Directory | null = null;

  constructor(
    private config: VigieConfig,
    private readonly log: Logger,
  ) {
    this.levels = levelTable(config.directory);
    this.verifier = config.auth.ldap ? new LdapVerifier(config.auth.ldap, config.auth, log) : null;
  }

  /** Reads the whole directory into memory (at start, and after imports). */
  loadDirectory(): number {
    const file = directoryFile(this.config.dataDir);
    if (!existsSync(file)) return 0;
    const dir = Directory.open(this.config.dataDir, { readonly: true });
    try {
      const users = new Map<string, DirectoryUser>();
      const logins = new Map<string, string>();
      for (const u of dir.all()) {
        users.set(u.id, u);
        if (u.login) logins.set(u.login.toLowerCase(), u.id);
      }
      this.users = users;
      this.logins = logins;
      return users.size;
    } finally {
      dir.close();
    }
  }

  /** A config reload: new level and class mappings apply to the next lookups. */
  reconfigure(config: VigieConfig): void {
    this.config = config;
    this.levels = levelTable(config.directory);
  }

  /** A worker's checks, relayed to the primary (src/cluster/relay.ts): its metrics count them all. */
  addRelayedCounts(delta: Partial<Record<AuthOutcome, number>>): void {
    const counts = this.verifier?.counts;
    if (!counts) return;
    for (const [k, n] of Object.entries(delta) as [AuthOutcome, number][]) if (k in counts) counts[k] += n;
  }

  /** Whether anyone can be identified at all: else the gate skips the step. */
  get active(): boolean {
    return this.verifier !== null || this.sessions.size > 0;
  }

  get userCount(): number {
    return this.users.size;
  }

  /** A present user by AAF id or login. */
  user(idOrLogin: string): DirectoryUser | null {
    return this.users.get(idOrLogin) ?? this.users.get(this.logins.get(idOrLogin.toLowerCase()) ?? '') ?? null;
  }

  /**
   * What the journal records for someone who logged in: the AAF id (from the LDAP entry, or the
   * directory by login); the login itself when the directory does not know them.
   */
  userIdFor(login: string, ldapId: string | null): string {
    if (ldapId && this.users.has(ldapId)) return ldapId;
    return this.logins.get(login.toLowerCase()) ?? ldapId ?? login;
  }

  /** The profile the directory gives a user; null = unknown or unmapped (the network's profile applies). */
  profileOf(userId: string): string | null {
    const u = this.users.get(userId);
    return u ? profileForUser(u, this.config.directory, this.levels) : null;
  }

  /** Loads the directory, starts the watched folder (config `directory.watch`) and notices imports made by the CLI. */
  async start(opts: { watch: boolean } = { watch: true }): Promise<void> {
    await this.refresh(true);
    if (this.config.directory.watch && opts.watch) {
      // Imported here: only the process that watches the folder runs the AAF import.
      const { DirectoryWatcher } = await import('../directory/import.js');
      this.watcher = new DirectoryWatcher(this.config.directory.watch, () => (this.writer ??= Directory.open(this.config.dataDir)), this.log, () => void this.refresh(true));
      this.watcher.start();
    }
    // Portal logins end after `idleMinutes` without traffic: looked at four times per period (30 s at most).
    const idleMs = (this.config.auth.portal?.idleMinutes ?? 30) * 60_000;
    let refreshed = Date.now();
    this.timer = setInterval(() => {
      const now = Date.now();
      if (now - refreshed >= 30_000) {
        refreshed = now;
        void this.refresh(false);
      }
      this.sessions.sweep(now, this.idle.busy);
    }, Math.max(250, Math.min(30_000, idleMs / 4)));
    this.timer.unref();
  }

  /** Reloads the directory when its files changed since the last load. */
  async refresh(force: boolean): Promise<void> {
    const file = directoryFile(this.config.dataDir);
    const m = await Promise.all([file, `${file}-wal`].map((f) => stat(f).then((s) => s.mtimeMs, () => 0)));
    const mtime = Math.max(...m);
    if (!force && mtime === this.loadedMtime) return;
    this.loadedMtime = mtime;
    try {
      const n = this.loadDirectory();
      if (n || this.loadedMtime > 0) this.log.info('directory loaded', { users: n });
    } catch (e) {
      this.log.error(`directory: cannot reload, keeping the previous one: ${(e as Error).message}`);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.watcher?.stop();
    this.writer?.close();
    this.writer = null;
  }
}
