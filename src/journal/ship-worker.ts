import { existsSync, readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import { ShipReader, type ShipBatch } from './ship-read.js';
import { ensurePartitions, ensureSchema, ROW_COLUMNS, ROW_TYPES } from './ship-schema.js';

/** Messages between the shipper handle (ship.ts) and this thread. */
export type ToShipper = { type: 'fleet'; report: FleetReport } | { type: 'hold'; on: boolean } | { type: 'close' };
export type FromShipper = { type: 'status'; status: ShipStatus } | { type: 'closed' };

export interface ShipperConfig {
  file: string;
  url: string;
  gatewayId: string;
  uai: string | null;
  batchRows: number;
  /** Held back (busy gateway) only while the lag stays under half of this. */
  maxLagSeconds: number;
  /** Wait between looks at the journal once caught up. */
  pollMs: number;
  /** First wait after a failure (doubles up to 30 s). */
  retryMs: number;
  /** Nice value of this thread (Linux); null leaves it. */
  nice: number | null;
}

export interface ShipStatus {
  connected: boolean;
  /** Age of the oldest journal link PostgreSQL has not acknowledged (0 = caught up); null before the first look. */
  lagSeconds: number | null;
  /** Last link PostgreSQL acknowledged; null before the first contact. */
  acknowledged: number | null;
  rowsShipped: number;
  batches: number;
  lastError: string | null;
  lastSuccess: number;
}

/** What a gateway tells the academy every minute (vigie_fleet). */
export interface FleetReport {
  version: string;
  policyVersion: number | null;
  listsLoaded: boolean;
  listsAgeSeconds: number | null;
  status: string;
  health: Record<string, unknown>;
}

const cfg = workerData as ShipperConfig;
const status: ShipStatus = { connected: false, lagSeconds: null, acknowledged: null, rowsShipped: 0, batches: 0, lastError: null, lastSuccess: 0 };
let closing = false;
let wake: (() => void) | null = null;
let pendingFleet: FleetReport | null = null;
/** The gateway is busy (ship.ts): no new batch until it says so, unless the lag reaches half its limit. */
let holding = false;

const post = (m: FromShipper) => parentPort!.postMessage(m);
const report = () => post({ type: 'status', status: { ...status } });

parentPort!.on('message', (m: ToShipper) => {
  if (m.type === 'close') closing = true;
  else if (m.type === 'fleet') pendingFleet = m.report;
  else if (m.type === 'hold') holding = m.on;
  wake?.();
});

/** Sleeps `ms`, or less when a message arrives. */
const nap = (ms: number) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      wake = null;
      resolve();
    }
    wake = done;
  });

// Shipping is background work: on a shared core the proxy comes first (best effort, Linux only).
if (cfg.nice !== null) {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0 && cfg.nice > getPriority(tid)) setPriority(tid, cfg.nice);
  } catch {
    // not Linux: the thread keeps the process's priority
  }
}

const insertRows = `INSERT INTO vigie_rows (gateway, ${ROW_COLUMNS.join(', ')})
  SELECT $1, * FROM unnest(${ROW_TYPES.map((t, i) => `$${i + 2}::${t}[]`).join(', ')})
  ON CONFLICT DO NOTHING`;
const applyEnds = `UPDATE vigie_rows r SET bytes_in = e.bi, bytes_out = e.bo, duration_ms = e.du, ended = true
  FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS e(id, t, bi, bo, du)
  WHERE r.gateway = $1 AND r.id = e.id AND r.t = e.t`;
const insertLinks = `INSERT INTO vigie_chain (gateway, id, p, lo, hi, n, ne, wt, h, ends, f)
  SELECT $1, * FROM unnest($2::bigint[], $3::integer[], $4::bigint[], $5::bigint[], $6::integer[], $7::integer[], $8::bigint[], $9::bytea[], $10::bytea[], $11::integer[])
  ON CONFLICT DO NOTHING`;

/** One transaction: rows, tunnel ends, links, anchors and the acknowledged link together. */
async function ship(c: pg.Client, b: ShipBatch, known: Set<number>): Promise<void> {
  const fresh = [...b.months].filter((p) => !known.has(p));
  if (fresh.length) {
    await ensurePartitions(c, fresh);
    for (const p of fresh) known.add(p);
  }
  const last = b.links[b.links.length - 1]!;
  const L = b.links;
  await c.query('BEGIN');
  try {
    if (b.rowCount) await c.query(insertRows, [cfg.gatewayId, ...b.rows]);
    if (b.ends[0].length) await c.query(applyEnds, [cfg.gatewayId, ...b.ends]);
    await c.query(insertLinks, [cfg.gatewayId, L.map((l) => l.id), L.map((l) => l.p), L.map((l) => l.lo), L.map((l) => l.hi), L.map((l) => l.n), L.map((l) => l.ne), L.map((l) => l.wt), L.map((l) => l.h), L.map((l) => l.ends), L.map((l) => l.f)]);
    for (const a of b.anchors) await c.query('INSERT INTO vigie_anchors (gateway, id, prev) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [cfg.gatewayId, a.id, a.prev]);
    await c.query(
      `INSERT INTO vigie_ship (gateway, link, hash, rows, shipped_at) VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (gateway) DO UPDATE SET link = excluded.link, hash = excluded.hash, rows = vigie_ship.rows + excluded.rows, shipped_at = now()
       WHERE vigie_ship.link < excluded.link`,
      [cfg.gatewayId, last.id, last.h, b.rowCount],
    );
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

async function sendFleet(c: pg.Client): Promise<void> {
  const r = pendingFleet;
  if (!r) return;
  pendingFleet = null;
  await c.query(
    `INSERT INTO vigie_fleet (gateway, uai, version, policy_version, lists_loaded, lists_age_seconds, ship_lag_seconds, status, health, reported_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
     ON CONFLICT (gateway) DO UPDATE SET uai = excluded.uai, version = excluded.version, policy_version = excluded.policy_version, lists_loaded = excluded.lists_loaded,
       lists_age_seconds = excluded.lists_age_seconds, ship_lag_seconds = excluded.ship_lag_seconds, status = excluded.status, health = excluded.health, reported_at = now()`,
    [cfg.gatewayId, cfg.uai, r.version, r.policyVersion, r.listsLoaded, r.listsAgeSeconds, status.lagSeconds, r.status, JSON.stringify({ ...r.health, ship: { ...status } })],
  );
}

function updateLag(reader: ShipReader | null): void {
  if (!reader || status.acknowledged === null) return;
  const wt = reader.oldestAfter(status.acknowledged);
  status.lagSeconds = wt === null ? 0 : Math.max(0, (Date.now() - wt) / 1000);
}

async function main(): Promise<void> {
  let reader: ShipReader | null = null;
  let client: pg.Client | null = null;
  let retryMs = cfg.retryMs;
  const known = new Set<number>();
  while (!closing) {
    try {
      if (!reader) {
        if (!existsSync(cfg.file)) {
          await nap(cfg.pollMs);
          continue;
        }
        reader = new ShipReader(cfg.file);
      }
      if (!client) {
        const c = new pg.Client({ connectionString: cfg.url, application_name: `vigie-ship ${cfg.gatewayId}`, connectionTimeoutMillis: 10_000, keepAlive: true, query_timeout: 120_000 });
        // A broken connection surfaces on the next query; this keeps it from being an uncaught error.
        c.on('error', () => undefined);
        await c.connect();
        client = c;
        await ensureSchema(c);
        await c.query('INSERT INTO vigie_gateways (gateway, uai) VALUES ($1, $2) ON CONFLICT (gateway) DO UPDATE SET uai = excluded.uai', [cfg.gatewayId, cfg.uai]);
        // Resume from what PostgreSQL acknowledged, whatever this process thought before.
        status.acknowledged = Number((await c.query('SELECT link FROM vigie_ship WHERE gateway = $1', [cfg.gatewayId])).rows[0]?.link ?? 0);
        status.connected = true;
        status.lastError = null;
      }
      await sendFleet(client);
      if (holding && (status.lagSeconds ?? 0) < cfg.maxLagSeconds / 2) {
        updateLag(reader);
        report();
        await nap(cfg.pollMs);
        continue;
      }
      const batch = reader.read(status.acknowledged!, cfg.batchRows);
      if (batch) {
        await ship(client, batch, known);
        status.acknowledged = batch.links[batch.links.length - 1]!.id;
        status.rowsShipped += batch.rowCount;
        status.batches++;
        status.lastSuccess = Date.now();
        retryMs = cfg.retryMs;
        updateLag(reader);
        report();
        // A full batch: more is waiting. A partial one: wait for rows to gather, so a busy gateway
        // sends one transaction a poll interval instead of many small ones.
        if (batch.rowCount < cfg.batchRows) await nap(cfg.pollMs);
        continue;
      }
      status.lastSuccess = Date.now();
      updateLag(reader);
      report();
      await nap(cfg.pollMs);
    } catch (e) {
      status.connected = false;
      status.lastError = (e as Error).message;
      await client?.end().catch(() => undefined);
      client = null;
      known.clear();
      // The journal file may have been replaced (restore): read it afresh.
      reader?.close();
      reader = null;
      try {
        reader = existsSync(cfg.file) ? new ShipReader(cfg.file) : null;
      } catch {
        reader = null;
      }
      updateLag(reader);
      report();
      const until = Date.now() + retryMs;
      // Lag keeps growing while PostgreSQL is away: tell it every second.
      while (!closing && Date.now() < until) {
        await nap(Math.min(1000, until - Date.now()));
        updateLag(reader);
        report();
      }
      retryMs = Math.min(30_000, retryMs * 2);
    }
  }
  await client?.end().catch(() => undefined);
  reader?.close();
  post({ type: 'closed' });
}

void main().catch((e: Error) => {
  status.lastError = `shipper stopped: ${e.message}`;
  report();
  post({ type: 'closed' });
});
