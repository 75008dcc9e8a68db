import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import type { Severity } from '../config/types.js';

export const alertsFile = (dataDir: string) => join(dataDir, 'alerts.db');

/** `safeguarding` goes to the school's referent; `security` to the academy's security contact. */
export type AlertKind = 'safeguarding' | 'security';
export type AlertStatus = 'open' | 'acknowledged' | 'dismissed';

/** One request that made an alert fire: the host and the time, nothing else (no path, no query). */
export interface Evidence {
  host: string;
  time: number;
  category?: string | null;
  /** A watched term (terms rule only): the term, never the query it was found in. */
  term?: string;
}

export interface Alert {
  id: string;
  kind: AlertKind;
  /** What fired: `watch` (blocked watched categories), `terms`, `malware`, `bundle-refused`, `fail-closed`, `unclean-stop`, `ship-lag`, `auth-failures`, `config-changed`. */
  type: string;
  severity: Severity;
  profile: string | null;
  /** The client address, or `user:<pseudonym>` for a signed-in user; null for gateway-wide events. */
  subject: string | null;
  categories: string[];
  /** Hits taken by this alert (the threshold's, then the deduplicated ones). */
  count: number;
  /** Why it fired, in words: the rule and its parameters. */
  rule: string;
  /** The matching requests (at most MAX_EVIDENCE), or the event's facts. */
  evidence: Evidence[];
  details: Record<string, unknown>;
  created: number;
  updated: number;
  status: AlertStatus;
  /** The referent's step: who, when, why. */
  by: string | null;
  at: number | null;
  reason: string | null;
}

export const MAX_EVIDENCE = 20;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS alerts (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, type TEXT NOT NULL, severity TEXT NOT NULL,
  profile TEXT, subject TEXT, categories TEXT NOT NULL, count INTEGER NOT NULL, rule TEXT NOT NULL,
  evidence TEXT NOT NULL, details TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,
  status TEXT NOT NULL, by TEXT, at INTEGER, reason TEXT
);
CREATE INDEX IF NOT EXISTS alerts_updated ON alerts(updated);
CREATE INDEX IF NOT EXISTS alerts_status ON alerts(status, kind);
`;

type Row = Omit<Alert, 'categories' | 'evidence' | 'details'> & { categories: string; evidence: string; details: string };
const fromRow = (r: Row): Alert => ({ ...r, categories: JSON.parse(r.categories), evidence: JSON.parse(r.evidence), details: JSON.parse(r.details) });

/**
 * The alerts, in `<dataDir>/alerts.db` (0600: alerts name clients and pseudonymous users). Writes
 * are few (alerts are deduplicated and rate-limited upstream); reads are bounded by a limit.
 * Kept no longer than the journal's retention (purge()).
 */
export class AlertStore {
  private readonly db: Database.Database;

  constructor(readonly file: string) {
    mkdirSync(dirname(file), { recursive: true });
    // Created 0600 before SQLite opens it; the WAL and shm files follow the database's mode.
    closeSync(openSync(file, 'a', 0o600));
    chmodSync(file, 0o600);
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(SCHEMA);
  }

  insert(a: Omit<Alert, 'id' | 'status' | 'by' | 'at' | 'reason'>): Alert {
    const alert: Alert = { ...a, id: `al_${randomBytes(6).toString('hex')}`, status: 'open', by: null, at: null, reason: null };
    this.db
      .prepare('INSERT INTO alerts VALUES (@id,@kind,@type,@severity,@profile,@subject,@categories,@count,@rule,@evidence,@details,@created,@updated,@status,@by,@at,@reason)')
      .run({ ...alert, categories: JSON.stringify(alert.categories), evidence: JSON.stringify(alert.evidence.slice(-MAX_EVIDENCE)), details: JSON.stringify(alert.details) });
    return alert;
  }

  /** Adds deduplicated hits to an alert (count, newest evidence). */
  addHits(id: string, hits: number, evidence: Evidence[], categories: string[], at: number): void {
    const a = this.get(id);
    if (!a) return;
    const cats = [...new Set([...a.categories, ...categories])];
    this.db.prepare('UPDATE alerts SET count = count + ?, evidence = ?, categories = ?, updated = ? WHERE id = ?').run(hits, JSON.stringify([...a.evidence, ...evidence].slice(-MAX_EVIDENCE)), JSON.stringify(cats), at, id);
  }

  get(id: string): Alert | null {
    const r = this.db.prepare('SELECT * FROM alerts WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  /** The newest alerts first, filtered; `kinds` limits what a role may see. */
  list(q: { kinds: AlertKind[]; status?: AlertStatus; limit: number }): Alert[] {
    const kinds = q.kinds.map(() => '?').join(',');
    const sql = `SELECT * FROM alerts WHERE kind IN (${kinds})${q.status ? ' AND status = ?' : ''} ORDER BY updated DESC LIMIT ?`;
    const args: unknown[] = [...q.kinds, ...(q.status ? [q.status] : []), q.limit];
    return (this.db.prepare(sql).all(...args) as Row[]).map(fromRow);
  }

  countOpen(kinds: AlertKind[]): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM alerts WHERE status = 'open' AND kind IN (${kinds.map(() => '?').join(',')})`).get(...kinds) as { n: number }).n;
  }

  /** Open per kind, for the metrics. */
  openByKind(): Record<AlertKind, number> {
    const out: Record<AlertKind, number> = { safeguarding: 0, security: 0 };
    for (const r of this.db.prepare("SELECT kind, count(*) AS n FROM alerts WHERE status = 'open' GROUP BY kind").all() as { kind: AlertKind; n: number }[]) out[r.kind] = r.n;
    return out;
  }

  /** The open alert of this subject and type, if any was updated since `since` (deduplication). */
  openFor(kind: AlertKind, type: string, profile: string | null, subject: string | null, since: number): Alert | null {
    const r = this.db.prepare("SELECT * FROM alerts WHERE status = 'open' AND kind = ? AND type = ? AND profile IS ? AND subject IS ? AND updated >= ? ORDER BY updated DESC LIMIT 1").get(kind, type, profile, subject, since) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  step(id: string, status: Exclude<AlertStatus, 'open'>, by: string, reason: string, at: number): Alert | null {
    const changed = this.db.prepare('UPDATE alerts SET status = ?, by = ?, reason = ?, at = ? WHERE id = ?').run(status, by, reason, at, id).changes;
    return changed ? this.get(id) : null;
  }

  /** Drops alerts last updated more than `retentionDays` ago (the journal's retention). */
  purge(retentionDays: number, now = Date.now()): number {
    return this.db.prepare('DELETE FROM alerts WHERE updated < ?').run(now - retentionDays * 86_400_000).changes;
  }

  close(): void {
    this.db.close();
  }
}
