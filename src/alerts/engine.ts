import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import type { AlertThreshold, Severity, VigieConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import type { ConnectionRecord, ProxyObserver } from '../proxy/events.js';
import { notify } from '../supervision/notify.js';
import { AlertStore, alertsFile, MAX_EVIDENCE, type Alert, type AlertKind, type AlertStatus, type Evidence } from './store.js';
import { loadTerms, matchTerms, searchQueryOf, type TermSet } from './terms.js';
import { alertText } from './text.js';

/** Clients or users with a window open at once; past this the least recently seen are forgotten. */
const MAX_WINDOWS = 20_000;
const FLUSH_MS = 5_000;
const DAY = 86_400_000;

/** What the metrics read (src/metrics/registry.ts). */
export interface AlertCounts {
  /** Alerts raised, by kind, type and severity ("k|t|s" → n). */
  raised: Map<string, number>;
  notified: number;
  notifyFailed: number;
  /** Alerts kept in the queue but not notified (alerts.maxPerHour). */
  suppressed: number;
  /** Unknown or revoked tokens presented to the API (src/supervision/signin.ts). */
  authFailures: number;
  open(): Record<AlertKind, number>;
}

interface Watch {
  set: ReadonlySet<string>;
  threshold: AlertThreshold;
}

/** The hits of one client or user in the last `threshold.minutes`, at most `threshold.count` kept. */
type Window = Evidence[];

/**
 * Safeguarding signals and security events. A proxy observer in the first process (it sees every
 * record the journal does, the cluster workers' included, through gateway.observers): for a
 * blocked request it does a Set lookup, and only for a watched category any more work. Alerts are
 * deduplicated (an open alert of the same subject and type takes the hits for `dedupMinutes`),
 * notifications rate-limited (`maxPerHour`), and kept in SQLite as long as the journal's rows.
 */
export class AlertEngine implements ProxyObserver {
  private store: AlertStore | null = null;
  private readonly windows = new LRUCache<string, Window>({ max: MAX_WINDOWS });
  /** Open alerts taking the hits of their subject and type (deduplication), by "kind|type|profile|subject". */
  private readonly recent = new LRUCache<string, string>({ max: MAX_WINDOWS, ttl: 3_600_000 });
  /** Hits taken by open alerts since the last flush, by alert id. */
  private pending = new Map<string, { hits: number; evidence: Evidence[]; categories: Set<string> }>();
  private watches = new Map<string, Watch | null>();
  private defaultWatch: Watch | null = null;
  private security = new Set<string>();
  private terms: TermSet | null = null;
  private key: Buffer = Buffer.alloc(0);
  private hour = { start: 0, sent: 0 };
  private timers: NodeJS.Timeout[] = [];
  /** Deliveries in flight (tests and stop() wait for them). */
  private inFlight = new Set<Promise<unknown>>();
  readonly counts: AlertCounts = { raised: new Map(), notified: 0, notifyFailed: 0, suppressed: 0, authFailures: 0, open: () => this.store?.openByKind() ?? { safeguarding: 0, security: 0 } };

  constructor(
    private config: VigieConfig,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.reconfigure(config);
  }

  /** Watched categories and thresholds per profile, security categories, terms: from the config. */
  reconfigure(config: VigieConfig): void {
    this.config = config;
    const a = config.alerts;
    // Profiles named in alerts.profiles get their own; every other one (those created over the
    // API too) the default watch.
    const watchOf = (watch: string[], threshold: AlertThreshold): Watch | null => (a.enabled && watch.length ? { set: new Set(watch), threshold } : null);
    this.defaultWatch = watchOf(a.watch, a.threshold);
    this.watches = new Map(Object.entries(a.profiles).map(([id, p]) => [id, watchOf(p.watch ?? a.watch, p.threshold ?? a.threshold)]));
    this.security = new Set(a.enabled ? a.security?.categories ?? ['malware', 'phishing'] : []);
    try {
      this.terms = a.terms ? loadTerms(a.terms) : null;
    } catch (e) {
      this.terms = null;
      this.log.error(`alerts: watched terms not loaded: ${(e as Error).message}`, { file: a.terms });
    }
  }

  /** Opens the store (0600) and the pseudonym key, starts the flush and the daily purge. */
  open(): void {
    const dir = this.config.dataDir;
    this.store = new AlertStore(alertsFile(dir));
    const keyFile = join(dir, 'alerts.key');
    try {
      this.key = readFileSync(keyFile);
    } catch {
      this.key = randomBytes(32);
      writeFileSync(keyFile, this.key, { mode: 0o600, flag: 'wx' });
    }
    const purge = () => {
      const n = this.store?.purge(this.config.journal.retentionDays, this.now()) ?? 0;
      if (n) this.log.info('alerts purge', { removed: n, retentionDays: this.config.journal.retentionDays });
    };
    purge();
    this.timers.push(setInterval(() => this.flush(), FLUSH_MS), setInterval(purge, DAY));
    for (const t of this.timers) t.unref();
  }

  get alerts(): AlertStore | null {
    return this.store;
  }

  /** A stable pseudonym of a user for this gateway (HMAC with a key of its own): alerts never carry logins. */
  pseudonym(user: string): string {
    return `user:${createHmac('sha256', this.key).update(user).digest('hex').slice(0, 12)}`;
  }

  requestDone(rec: ConnectionRecord): void {
    // Only requests read inside TLS interception (`intercept: "full"`, the only mode that makes
    // them) have their search queries looked at; everything else keeps its query unread.
    if (rec.mode === 'intercepted' && this.terms !== null && rec.decision.profile !== null) {
      const q = searchQueryOf(rec.path);
      if (q !== null) this.searchQuery({ client: rec.client, user: rec.user, profile: rec.decision.profile, host: rec.host, time: rec.time }, q);
    }
    if (rec.decision.action === 'block' && rec.decision.category !== null) this.blocked(rec);
  }

  tunnelOpened(rec: ConnectionRecord): void {
    if (rec.decision.action === 'block' && rec.decision.category !== null) this.blocked(rec);
  }

  private blocked(rec: ConnectionRecord): void {
    const d = rec.decision;
    const category = d.category!;
    if (this.security.has(category)) {
      this.raise({ kind: 'security', type: 'malware', severity: 'error', profile: d.profile, subject: rec.client, categories: [category], rule: `a ${category} site was asked for by this device (alerts.security.categories)`, evidence: [{ host: rec.host, time: rec.time, category }] });
      return;
    }
    const w = d.profile === null ? null : this.watches.has(d.profile) ? this.watches.get(d.profile)! : this.defaultWatch;
    if (!w || !w.set.has(category)) return;
    const subject = rec.user ? this.pseudonym(rec.user) : rec.client;
    const hit: Evidence = { host: rec.host, time: rec.time, category };
    // An open alert of this subject takes the hit (deduplication), without a window.
    const openId = this.recent.get(`safeguarding|watch|${d.profile}|${subject}`);
    if (openId) return this.addPending(openId, 1, [hit], [category]);
    const key = `${d.profile}\n${subject}`;
    const span = w.threshold.minutes * 60_000;
    let win = this.windows.get(key);
    if (!win) this.windows.set(key, (win = []));
    win.push(hit);
    while (win.length && (win.length > w.threshold.count || win[0]!.time < rec.time - span)) win.shift();
    if (win.length < w.threshold.count) return;
    this.windows.delete(key);
    const categories = [...new Set(win.map((e) => e.category!))];
    this.raise({ kind: 'safeguarding', type: 'watch', severity: 'warning', profile: d.profile, subject, categories, count: win.length, rule: `${w.threshold.count} blocked requests in watched categories within ${w.threshold.minutes} minutes (alerts.threshold)`, evidence: win });
  }

  /**
   * A search query seen by interception (`full` only): a watched term in it counts as a watched
   * hit of category `terms`. The query is matched and dropped; only the term is kept.
   */
  searchQuery(rec: { client: string; user: string | null; profile: string; host: string; time: number }, query: string): string | null {
    if (!this.terms || !this.config.alerts.enabled) return null;
    const term = matchTerms(this.terms, query);
    if (!term) return null;
    const subject = rec.user ? this.pseudonym(rec.user) : rec.client;
    this.raise({ kind: 'safeguarding', type: 'terms', severity: 'warning', profile: rec.profile, subject, categories: ['terms'], rule: 'a search used a term of the academy list (alerts.terms)', evidence: [{ host: rec.host, time: rec.time, term }] });
    return term;
  }

  /** A security event of the gateway itself (bundle refused, failing closed, unclean stop...). */
  securityEvent(type: string, severity: Severity, rule: string, details: Record<string, unknown> = {}, subject: string | null = null): Alert | null {
    return this.raise({ kind: 'security', type, severity, profile: null, subject, categories: [], rule, evidence: [], details });
  }

  private raise(a: { kind: AlertKind; type: string; severity: Severity; profile: string | null; subject: string | null; categories: string[]; count?: number; rule: string; evidence: Evidence[]; details?: Record<string, unknown> }): Alert | null {
    const store = this.store;
    if (!store) return null;
    const now = this.now();
    const dedupMs = this.config.alerts.dedupMinutes * 60_000;
    const key = `${a.kind}|${a.type}|${a.profile}|${a.subject}`;
    // Memory first (a device hammering a malware host costs no query); the store after a restart.
    let openId = this.recent.get(key);
    if (openId === undefined) {
      openId = store.openFor(a.kind, a.type, a.profile, a.subject, now - dedupMs)?.id;
      if (openId) this.recent.set(key, openId, { ttl: dedupMs });
    }
    if (openId) {
      this.addPending(openId, a.count ?? 1, a.evidence, a.categories);
      return null;
    }
    const alert = store.insert({ kind: a.kind, type: a.type, severity: a.severity, profile: a.profile, subject: a.subject, categories: a.categories, count: a.count ?? 1, rule: a.rule, evidence: a.evidence, details: a.details ?? {}, created: now, updated: now });
    this.recent.set(key, alert.id, { ttl: dedupMs });
    const k = `${a.kind}|${a.type}|${a.severity}`;
    this.counts.raised.set(k, (this.counts.raised.get(k) ?? 0) + 1);
    this.log.warn(`alert raised: ${a.kind} ${a.type}`, { id: alert.id, profile: a.profile ?? undefined, subject: a.subject ?? undefined, count: alert.count, severity: a.severity });
    if (now - this.hour.start >= 3_600_000) this.hour = { start: now, sent: 0 };
    if (this.hour.sent >= this.config.alerts.maxPerHour) {
      this.counts.suppressed++;
      this.log.warn('alerts: notification not sent (alerts.maxPerHour reached); the alert is in the console queue', { id: alert.id });
      return alert;
    }
    this.hour.sent++;
    this.deliver(alert);
    return alert;
  }

  private deliver(a: Alert): void {
    const who = a.subject?.startsWith('user:') ? { user: a.subject } : { client: a.subject };
    const { title, text } = alertText(a);
    const event = { kind: `alert.${a.kind}`, severity: a.severity, id: a.id, type: a.type, title, text, category: a.categories[0] ?? null, categories: a.categories, profile: a.profile, ...who, count: a.count, rule: a.rule, evidence: a.evidence.map((e) => ({ host: e.host, time: new Date(e.time).toISOString(), ...(e.term ? { term: e.term } : {}) })), details: a.details };
    const p = notify(this.config, event).then((out) => {
      for (const d of out) {
        if (d.ok) this.counts.notified++;
        else {
          this.counts.notifyFailed++;
          this.log.error('alerts: notification failed', { id: a.id, channel: d.url, status: d.status, error: d.error });
        }
      }
    });
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  /**
   * The referent's step on an alert: acknowledged (seen, being handled) or dismissed (with a
   * reason). Either way the alert stops taking new hits: the next ones raise a new alert, so a
   * dismissal never silences a subject.
   */
  step(id: string, status: Exclude<AlertStatus, 'open'>, by: string, reason: string): Alert | null {
    this.flush();
    const a = this.store?.step(id, status, by, reason, this.now()) ?? null;
    if (a) this.recent.delete(`${a.kind}|${a.type}|${a.profile}|${a.subject}`);
    return a;
  }

  /** Waits for the notifications in flight. */
  async settled(): Promise<void> {
    while (this.inFlight.size) await Promise.all([...this.inFlight]);
  }

  private addPending(id: string, hits: number, evidence: Evidence[], categories: string[]): void {
    let p = this.pending.get(id);
    if (!p) this.pending.set(id, (p = { hits: 0, evidence: [], categories: new Set<string>() }));
    p.hits += hits;
    if (p.evidence.length < MAX_EVIDENCE) p.evidence.push(...evidence);
    for (const c of categories) p.categories.add(c);
  }

  /** Writes the hits the open alerts took since the last flush (every FLUSH_MS, and before reads). */
  flush(): void {
    if (!this.pending.size || !this.store) return;
    const now = this.now();
    for (const [id, p] of this.pending) this.store.addHits(id, p.hits, p.evidence, [...p.categories], now);
    this.pending = new Map();
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.flush();
    await this.settled();
    this.store?.close();
    this.store = null;
  }
}
