import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import '../journal/ship-schema.js';

export interface FleetGateway {
  gateway: string;
  uai: string | null;
  version: string | null;
  policyVersion: number | null;
  listsLoaded: boolean | null;
  listsAgeSeconds: number | null;
  /** Shipping lag as the gateway last reported it. */
  shipLagSeconds: number | null;
  /** The gateway's own word on its health (`ok`, `degraded`), null if it never reported. */
  status: string | null;
  reportedAt: string | null;
  /** Seconds since its last report (null: never). */
  reportAgeSeconds: number | null;
  /** Last link PostgreSQL acknowledged from it, and when. */
  acknowledged: number | null;
  shippedAt: string | null;
  stale: boolean;
  unhealthy: boolean;
  /** Why it is stale or unhealthy, for people. */
  reasons: string[];
}

export interface FleetLimits {
  staleSeconds: number;
  maxLagSeconds: number;
}

/**
 * The academy's view of its gateways, from what they wrote into the same PostgreSQL: their
 * minute reports (vigie_fleet) and their shipping acknowledgements (vigie_ship). A gateway is
 * stale when its last report is older than `staleSeconds` (stopped, cut off, or its shipping
 * thread is stuck), unhealthy when it says so, runs without lists, or ships too late.
 */
export async function fleetStatus(pool: pg.Pool, limits: FleetLimits, now = Date.now()): Promise<FleetGateway[]> {
  const r = await pool.query(
    `SELECT g.gateway, coalesce(f.uai, g.uai) AS uai, f.version, f.policy_version, f.lists_loaded, f.lists_age_seconds, f.ship_lag_seconds, f.status,
       (extract(epoch FROM f.reported_at) * 1000)::bigint AS reported, s.link, (extract(epoch FROM s.shipped_at) * 1000)::bigint AS shipped
     FROM vigie_gateways g LEFT JOIN vigie_fleet f ON f.gateway = g.gateway LEFT JOIN vigie_ship s ON s.gateway = g.gateway
     ORDER BY g.gateway`,
  );
  return r.rows.map((x): FleetGateway => {
    const reported = x.reported === null ? null : Number(x.reported);
    const age = reported === null ? null : Math.max(0, (now - reported) / 1000);
    const reasons: string[] = [];
    const stale = age === null || age > limits.staleSeconds;
    if (age === null) reasons.push('never reported');
    else if (stale) reasons.push(`no report for ${Math.round(age)} s (limit ${limits.staleSeconds} s)`);
    if (x.status && x.status !== 'ok') reasons.push(`reports itself ${x.status}`);
    if (x.lists_loaded === false) reasons.push('no lists loaded (fails closed)');
    if (x.ship_lag_seconds !== null && x.ship_lag_seconds > limits.maxLagSeconds) reasons.push(`journal shipping lags ${Math.round(x.ship_lag_seconds)} s (limit ${limits.maxLagSeconds} s)`);
    const unhealthy = reasons.length > (stale ? 1 : 0);
    return {
      gateway: x.gateway,
      uai: x.uai,
      version: x.version,
      policyVersion: x.policy_version,
      listsLoaded: x.lists_loaded,
      listsAgeSeconds: x.lists_age_seconds,
      shipLagSeconds: x.ship_lag_seconds,
      status: x.status,
      reportedAt: reported === null ? null : new Date(reported).toISOString(),
      reportAgeSeconds: age,
      acknowledged: x.link,
      shippedAt: x.shipped === null ? null : new Date(Number(x.shipped)).toISOString(),
      stale,
      unhealthy,
      reasons,
    };
  });
}

/** Fleet gauges, read from PostgreSQL when Prometheus scrapes. */
export function registerFleetMetrics(registry: Registry, pool: pg.Pool, limits: FleetLimits): void {
  let last: Promise<FleetGateway[]> | null = null;
  // One query per scrape, shared by the gauges below.
  const read = () => {
    last ??= fleetStatus(pool, limits).finally(() => setTimeout(() => (last = null), 1000).unref());
    return last;
  };
  new Gauge({
    name: 'vigie_academy_gateways',
    help: 'Gateways known to the academy by state (ok, stale: no report lately, unhealthy: reports a problem).',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      const all = await read();
      this.reset();
      this.set({ state: 'ok' }, all.filter((g) => !g.stale && !g.unhealthy).length);
      this.set({ state: 'stale' }, all.filter((g) => g.stale).length);
      this.set({ state: 'unhealthy' }, all.filter((g) => g.unhealthy).length);
    },
  });
  new Gauge({
    name: 'vigie_academy_gateway_up',
    help: '1 when the gateway reported lately and healthy, 0 when stale or unhealthy.',
    labelNames: ['gateway', 'uai'],
    registers: [registry],
    async collect() {
      const all = await read();
      this.reset();
      for (const g of all) this.set({ gateway: g.gateway, uai: g.uai ?? '' }, g.stale || g.unhealthy ? 0 : 1);
    },
  });
  new Gauge({
    name: 'vigie_academy_gateway_report_age_seconds',
    help: 'Seconds since the gateway last reported its status.',
    labelNames: ['gateway'],
    registers: [registry],
    async collect() {
      const all = await read();
      this.reset();
      for (const g of all) if (g.reportAgeSeconds !== null) this.set({ gateway: g.gateway }, g.reportAgeSeconds);
    },
  });
  new Gauge({
    name: 'vigie_academy_gateway_ship_lag_seconds',
    help: 'Journal shipping lag the gateway last reported.',
    labelNames: ['gateway'],
    registers: [registry],
    async collect() {
      const all = await read();
      this.reset();
      for (const g of all) if (g.shipLagSeconds !== null) this.set({ gateway: g.gateway }, g.shipLagSeconds);
    },
  });
}
