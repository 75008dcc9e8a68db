import type Database from 'better-sqlite3';
import { BLOCK_SQL, monthRange } from './schema.js';

/**
 * Counters kept beside the rows, so statistics never read the rows of full hours:
 * - `agg_hour`: requests and blocks per hour (of the row's start time) and decision context
 *   (`cx`: profile, category, policy version);
 * - `agg_host`: per hour, context and host, the blocked requests and the requests opened by a
 *   teacher's unblock (rule "override"); only hosts with either.
 * The writer adds to them in the transaction that writes the rows (exact, whatever crashes),
 * purge deletes the hours of the months it drops, and a file written before they existed is
 * counted once when a writer opens it (meta `agg`). Readers use them only once `agg` is set.
 */
export const HOUR = 3_600_000;

export function createAggregates(db: Database.Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS agg_hour (h INTEGER NOT NULL, cx INTEGER NOT NULL, n INTEGER NOT NULL, b INTEGER NOT NULL, PRIMARY KEY (h, cx)) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS agg_host (h INTEGER NOT NULL, cx INTEGER NOT NULL, ho INTEGER NOT NULL, b INTEGER NOT NULL, o INTEGER NOT NULL, PRIMARY KEY (h, cx, ho)) WITHOUT ROWID;
  `);
}

/** Whether the counters cover the whole file (set once a writer has counted what was there). */
export function hasAggregates(db: Database.Database): boolean {
  try {
    return db.prepare(`SELECT v FROM meta WHERE k = 'agg'`).pluck().get() === 1;
  } catch {
    return false;
  }
}

/**
 * Counts the rows of a file that has none of the counters yet (a journal written by an earlier
 * version), in one transaction: a few seconds per million rows, once.
 */
export function backfillAggregates(db: Database.Database): number {
  if (hasAggregates(db)) return 0;
  let rows = 0;
  db.transaction(() => {
    createAggregates(db);
    db.exec('DELETE FROM agg_hour; DELETE FROM agg_host;');
    const override = (db.prepare(`SELECT id FROM d_rule WHERE v = 'override'`).pluck().get() as number | undefined) ?? -1;
    for (const { p, base } of db.prepare('SELECT p, base FROM parts').all() as { p: number; base: number }[]) {
      rows += db.prepare(`INSERT INTO agg_hour (h, cx, n, b) SELECT (c.t + ${base}) / ${HOUR} AS h, c.cx, count(*), sum(${BLOCK_SQL}) FROM c_${p} c GROUP BY h, c.cx`).run().changes;
      db.prepare(
        `INSERT INTO agg_host (h, cx, ho, b, o) SELECT h, cx, ho, sum(bl), sum(ov) FROM (
           SELECT (c.t + ${base}) / ${HOUR} AS h, c.cx AS cx, c.ho AS ho, ${BLOCK_SQL} AS bl, (((c.k / 8192) % 256) = ${override} AND ${BLOCK_SQL} = 0) AS ov
           FROM c_${p} c) WHERE bl OR ov GROUP BY h, cx, ho`,
      ).run();
    }
    db.prepare(`INSERT OR REPLACE INTO meta (k, v) VALUES ('agg', 1)`).run();
  }).immediate();
  return rows;
}

/** Deletes the counters of a purged month (in purge's transaction). */
export function purgeAggregates(db: Database.Database, p: number): void {
  const { start, end } = monthRange(p);
  const lo = Math.floor(start / HOUR);
  const hi = Math.floor(end / HOUR);
  db.prepare('DELETE FROM agg_hour WHERE h >= ? AND h < ?').run(lo, hi);
  db.prepare('DELETE FROM agg_host WHERE h >= ? AND h < ?').run(lo, hi);
}

/**
 * One transaction's additions, summed in memory as rows are written and added to the tables at
 * its end: a few upserts per transaction (rows of one batch share their hours and contexts).
 */
export class AggregateTally {
  private readonly hours = new Map<number, Map<number, [number, number]>>();
  private readonly hosts = new Map<number, Map<number, Map<number, [number, number]>>>();
  private readonly addHour: Database.Statement;
  private readonly addHost: Database.Statement;

  constructor(db: Database.Database) {
    createAggregates(db);
    this.addHour = db.prepare('INSERT INTO agg_hour (h, cx, n, b) VALUES (?, ?, ?, ?) ON CONFLICT (h, cx) DO UPDATE SET n = n + excluded.n, b = b + excluded.b');
    this.addHost = db.prepare('INSERT INTO agg_host (h, cx, ho, b, o) VALUES (?, ?, ?, ?, ?) ON CONFLICT (h, cx, ho) DO UPDATE SET b = b + excluded.b, o = o + excluded.o');
  }

  row(time: number, cx: number, ho: number, block: boolean, overridden: boolean): void {
    const h = Math.floor(time / HOUR);
    let byCx = this.hours.get(h);
    if (!byCx) this.hours.set(h, (byCx = new Map()));
    const v = byCx.get(cx);
    if (v) {
      v[0]++;
      if (block) v[1]++;
    } else byCx.set(cx, [1, block ? 1 : 0]);
    if (!block && !overridden) return;
    let c = this.hosts.get(h);
    if (!c) this.hosts.set(h, (c = new Map()));
    let byHo = c.get(cx);
    if (!byHo) c.set(cx, (byHo = new Map()));
    const x = byHo.get(ho);
    if (x) {
      if (block) x[0]++;
      else x[1]++;
    } else byHo.set(ho, block ? [1, 0] : [0, 1]);
  }

  /** Adds what was tallied to the tables (inside the rows' transaction) and starts over. */
  commit(): void {
    for (const [h, byCx] of this.hours) for (const [cx, [n, b]] of byCx) this.addHour.run(h, cx, n, b);
    for (const [h, c] of this.hosts) for (const [cx, byHo] of c) for (const [ho, [b, o]] of byHo) this.addHost.run(h, cx, ho, b, o);
    this.clear();
  }

  /** Forgets a rolled-back transaction's tally. */
  clear(): void {
    this.hours.clear();
    this.hosts.clear();
  }
}
