import type Database from 'better-sqlite3';
import { purgeAggregates } from './aggregate.js';
import { monthRange } from './schema.js';

export interface PurgeResult {
  time: number;
  retentionDays: number;
  cutoff: number;
  partitions: number[];
  rows: number;
  entries: number;
}

/**
 * Drops every month that ended more than `retentionDays` ago (DROP TABLE, never a large DELETE),
 * keeps the anchors verify needs, deletes the months' counters (aggregate.ts) in the same
 * transaction, and records the purge.
 */
export function purgeMonths(db: Database.Database, retentionDays: number, now: number): PurgeResult {
  const cutoff = now - retentionDays * 86_400_000;
  const old = (db.prepare('SELECT p FROM parts ORDER BY p').pluck().all() as number[]).filter((p) => monthRange(p).end <= cutoff);
  const result: PurgeResult = { time: now, retentionDays, cutoff, partitions: old, rows: 0, entries: 0 };
  db.transaction(() => {
    for (const p of old) {
      const s = db.prepare('SELECT count(*) AS entries, coalesce(sum(n), 0) AS rows FROM chain WHERE p = ?').get(p) as { entries: number; rows: number };
      result.rows += s.rows;
      result.entries += s.entries;
      // Keep the link of each purged entry whose successor stays, so verify can still walk the chain.
      db.prepare('DELETE FROM anchors WHERE id IN (SELECT id FROM chain WHERE p = ?)').run(p);
      db.prepare('INSERT OR REPLACE INTO anchors (id, prev) SELECT c.id + 1, c.h FROM chain c WHERE c.p = ? AND NOT EXISTS (SELECT 1 FROM chain d WHERE d.id = c.id + 1 AND d.p = ?)').run(p, p);
      db.prepare('DELETE FROM chain WHERE p = ?').run(p);
      db.exec(`DROP TABLE IF EXISTS c_${p}`);
      db.prepare('DELETE FROM parts WHERE p = ?').run(p);
      purgeAggregates(db, p);
    }
    db.prepare(`INSERT INTO events (time, kind, detail) VALUES (?, 'purge', ?)`).run(now, JSON.stringify(result));
  }).immediate();
  if (old.length) db.pragma('incremental_vacuum');
  return result;
}
