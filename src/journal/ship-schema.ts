import pg from 'pg';
import { monthOf, monthRange } from './schema.js';

/*
 * The academy's copy of the gateways' journals in PostgreSQL (15+), shared by the shipper (one per
 * gateway, src/journal/ship-worker.ts) and the academy service (src/academy/):
 * - `vigie_rows`: one row per connection, strings resolved (searchable as they are) and the
 *   gateway's dictionary ids kept beside them (chain format 2 hashes both), declaratively
 *   partitioned by month of the start time `t` (ms since the epoch): a purge drops partitions;
 * - `vigie_chain`: the gateways' chain links, partitioned by the month they cover (`p`, yyyymm);
 * - `vigie_anchors`: the hash before the first kept link of a gateway, once older links are gone;
 * - `vigie_ship`: per gateway, the last link PostgreSQL acknowledged (written in the same
 *   transaction as the rows: shipping resumes from there, and verify spots a cut tail);
 * - `vigie_gateways`, `vigie_fleet`: who ships (establishment UAI) and their last status report.
 * Row primary key (gateway, id, t): PostgreSQL wants the partition key in every unique index, and
 * a row's start time never changes, so this is the (gateway, row id) key that makes re-sending a
 * batch harmless.
 */

// bigint columns come back as numbers: ids, times (ms) and byte counts all stay below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export const ROW_COLUMNS = [
  'id', 't', 'client', 'client_ip', 'usr', 'profile', 'category', 'policy_version', 'method', 'scheme', 'host', 'port', 'path', 'status',
  'bytes_in', 'bytes_out', 'duration_ms', 'decision', 'rule', 'ended', 'dcl', 'dus', 'dcx', 'dmi', 'dho', 'dpa', 'dri',
] as const;
/** PostgreSQL array type of each column, in ROW_COLUMNS order (for `unnest` inserts). */
export const ROW_TYPES = [
  'bigint', 'bigint', 'text', 'inet', 'text', 'text', 'text', 'integer', 'text', 'text', 'text', 'integer', 'text', 'integer',
  'bigint', 'bigint', 'bigint', 'text', 'text', 'boolean', 'integer', 'integer', 'integer', 'integer', 'integer', 'integer', 'integer',
] as const;

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS vigie_rows (
  gateway text NOT NULL,
  id bigint NOT NULL,
  t bigint NOT NULL,
  client text NOT NULL,
  client_ip inet,
  usr text,
  profile text,
  category text,
  policy_version integer NOT NULL,
  method text NOT NULL,
  scheme text NOT NULL,
  host text NOT NULL,
  port integer NOT NULL,
  path text,
  status integer NOT NULL,
  bytes_in bigint NOT NULL,
  bytes_out bigint NOT NULL,
  duration_ms bigint NOT NULL,
  decision text NOT NULL,
  rule text NOT NULL,
  ended boolean NOT NULL,
  dcl integer NOT NULL, dus integer, dcx integer NOT NULL, dmi integer NOT NULL, dho integer NOT NULL, dpa integer, dri integer NOT NULL,
  PRIMARY KEY (gateway, id, t)
) PARTITION BY RANGE (t);
CREATE INDEX IF NOT EXISTS vigie_rows_client_t ON vigie_rows (client_ip, t);
CREATE INDEX IF NOT EXISTS vigie_rows_user_t ON vigie_rows (usr, t) WHERE usr IS NOT NULL;
CREATE INDEX IF NOT EXISTS vigie_rows_host_t ON vigie_rows ((reverse(host)) text_pattern_ops, t);
CREATE TABLE IF NOT EXISTS vigie_chain (
  gateway text NOT NULL,
  id bigint NOT NULL,
  p integer NOT NULL,
  lo bigint, hi bigint,
  n integer NOT NULL, ne integer NOT NULL,
  wt bigint NOT NULL,
  h bytea NOT NULL,
  ends bytea,
  f integer,
  PRIMARY KEY (gateway, id, p)
) PARTITION BY RANGE (p);
CREATE TABLE IF NOT EXISTS vigie_anchors (gateway text NOT NULL, id bigint NOT NULL, prev bytea NOT NULL, PRIMARY KEY (gateway, id));
CREATE TABLE IF NOT EXISTS vigie_ship (
  gateway text PRIMARY KEY,
  link bigint NOT NULL,
  hash bytea NOT NULL,
  rows bigint NOT NULL DEFAULT 0,
  shipped_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS vigie_gateways (gateway text PRIMARY KEY, uai text, first_seen timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS vigie_fleet (
  gateway text PRIMARY KEY,
  uai text,
  version text NOT NULL,
  policy_version integer,
  lists_loaded boolean NOT NULL,
  lists_age_seconds double precision,
  ship_lag_seconds double precision,
  status text NOT NULL,
  health jsonb NOT NULL,
  reported_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS vigie_purges (time timestamptz NOT NULL DEFAULT now(), months integer[] NOT NULL, retention_days integer NOT NULL);
`;

/** Serialises schema changes of several gateways and the academy service starting together. */
const SCHEMA_LOCK = 0x76696769;

type Queryable = pg.ClientBase;

/** Creates the tables and indexes (idempotent). */
export async function ensureSchema(c: Queryable): Promise<void> {
  await c.query('BEGIN');
  try {
    await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    await c.query(SCHEMA_SQL);
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** Table names of a month's partitions. */
export const partitionNames = (p: number): { rows: string; chain: string } => ({ rows: `vigie_rows_${p}`, chain: `vigie_chain_${p}` });

/**
 * Creates the month partitions of rows and links (idempotent; each in its own transaction under
 * the schema lock, since two gateways may reach a new month at the same moment).
 */
export async function ensurePartitions(c: Queryable, months: Iterable<number>): Promise<void> {
  for (const p of months) {
    const { start, end } = monthRange(p);
    const n = partitionNames(p);
    await c.query('BEGIN');
    try {
      await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      await c.query(`CREATE TABLE IF NOT EXISTS ${n.rows} PARTITION OF vigie_rows FOR VALUES FROM (${start}) TO (${end})`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${n.chain} PARTITION OF vigie_chain FOR VALUES FROM (${p}) TO (${nextMonth(p)})`);
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }
}

const nextMonth = (p: number): number => monthOf(monthRange(p).end);

/** Months that have partitions, oldest first (from the catalog, so a dropped one is gone). */
export async function monthsPresent(c: Queryable): Promise<number[]> {
  const r = await c.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'vigie_rows'`,
  );
  return r.rows.map((x) => Number(/^vigie_rows_(\d{6})$/.exec(x.name)?.[1])).filter((p) => Number.isInteger(p) && p > 0).sort((a, b) => a - b);
}

export interface CopyPurge {
  months: number[];
  rows: number;
}

/**
 * The copy's retention, as the gateways apply it to their own journals (writer.ts): a month goes
 * whole once it ended more than `retentionDays` ago, by dropping its partitions. The hash of each
 * gateway's last dropped link is kept as an anchor, so verify still walks what remains.
 */
export async function purgeCopy(c: Queryable, retentionDays: number, now = Date.now()): Promise<CopyPurge> {
  const cutoff = now - retentionDays * 86_400_000;
  const old = (await monthsPresent(c)).filter((p) => monthRange(p).end <= cutoff);
  let rows = 0;
  for (const p of old) {
    const n = partitionNames(p);
    await c.query('BEGIN');
    try {
      await c.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      rows += Number((await c.query(`SELECT coalesce(sum(n), 0) AS n FROM ${n.chain}`)).rows[0].n);
      // The successor of each gateway's last link of the month, if it stays, starts from its hash.
      await c.query(
        `INSERT INTO vigie_anchors (gateway, id, prev)
         SELECT c.gateway, c.id + 1, c.h FROM ${n.chain} c
         WHERE NOT EXISTS (SELECT 1 FROM ${n.chain} d WHERE d.gateway = c.gateway AND d.id = c.id + 1)
         ON CONFLICT (gateway, id) DO UPDATE SET prev = excluded.prev`,
      );
      await c.query(`DELETE FROM vigie_anchors a USING ${n.chain} c WHERE a.gateway = c.gateway AND a.id = c.id`);
      await c.query(`DROP TABLE IF EXISTS ${n.rows}`);
      await c.query(`DROP TABLE IF EXISTS ${n.chain}`);
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }
  if (old.length) await c.query('INSERT INTO vigie_purges (months, retention_days) VALUES ($1, $2)', [old, retentionDays]);
  return { months: old, rows };
}
