import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { Registry } from 'prom-client';
import type { VigieConfig } from '../config/types.js';
import { ensureSchema, purgeCopy } from '../journal/ship-schema.js';
import type { Logger } from '../log.js';
import { startMetricsServer, type MetricsServer } from '../metrics/server.js';
import { AuditLog } from '../supervision/audit.js';
import { buildApiApp } from '../supervision/server.js';
import { loadOrCreateCertificate } from '../supervision/tls.js';
import { TokenStore } from '../supervision/tokens.js';
import type { AcademyConfig } from './config.js';
import { registerFleetMetrics } from './fleet.js';
import { registerAcademyRoutes } from './routes.js';
import { AcademyJournal } from './store.js';

export interface AcademyServer {
  app: FastifyInstance;
  port: number;
  cert: string;
  pool: pg.Pool;
  tokens: TokenStore;
  audit: AuditLog;
  metrics: MetricsServer | null;
  /** Drops the copy's months past retention now (also runs daily). */
  purge(now?: number): Promise<{ months: number[]; rows: number }>;
  close(): Promise<void>;
}

/**
 * The academy service: the supervision API's journal routes over the PostgreSQL copy that the
 * gateways ship to, with its own token store, audit log and certificate under its dataDir, the
 * fleet's status, and the copy's retention.
 */
export async function startAcademy(config: AcademyConfig, log: Logger): Promise<AcademyServer> {
  const pool = new pg.Pool({ connectionString: config.postgres.url, max: config.postgres.poolSize, application_name: 'vigie-academy', connectionTimeoutMillis: 10_000 });
  // An idle connection that breaks is dropped by the pool; this keeps it from being an uncaught error.
  pool.on('error', (e) => log.warn(`academy: PostgreSQL connection lost: ${e.message}`));
  const c = await pool.connect();
  try {
    await ensureSchema(c);
  } finally {
    c.release();
  }
  const tokens = await TokenStore.open(config.dataDir);
  await tokens.ensureAdmin(config.dataDir, log);
  const auditLog = new AuditLog(config.dataDir, config.retentionDays);
  const purge = async (now = Date.now()) => {
    const client = await pool.connect();
    try {
      const r = await purgeCopy(client, config.retentionDays, now);
      if (r.months.length) log.info('academy copy purge', { months: r.months.join(','), rows: r.rows, retentionDays: config.retentionDays });
      await auditLog.purge(now);
      return r;
    } finally {
      client.release();
    }
  };
  const daily = () => void purge().catch((e: Error) => log.error(`academy copy purge failed: ${e.message}`));
  daily();
  const purgeTimer = setInterval(daily, 86_400_000);
  purgeTimer.unref();
  // The certificate helper reads a gateway's config: the academy's listener and names take its place.
  const tls = await loadOrCreateCertificate({ dataDir: config.dataDir, supervision: { listen: config.listen, names: config.names, cert: config.cert, key: config.key } } as unknown as VigieConfig, log);
  const app = await buildApiApp({ tokens, audit: auditLog, log }, tls, { title: 'Vigie academy API', description: 'Every gateway\'s journal in the academy\'s PostgreSQL copy: search, requisition exports, statistics, chain verification, fleet status.' });
  registerAcademyRoutes(app, { tokens, audit: auditLog, log, pool, journal: new AcademyJournal(pool, config.timezone), config });
  await app.listen({ host: config.listen.host, port: config.listen.port });
  const addr = app.server.address() as AddressInfo;
  log.info('academy API listening', { address: `https://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}/api/v1/`, cert: tls.file });
  let metrics: MetricsServer | null = null;
  if (config.metrics.enabled) {
    const registry = new Registry();
    registerFleetMetrics(registry, pool, config.fleet);
    try {
      metrics = await startMetricsServer(registry, config.metrics.listen);
      log.info('academy metrics listening', { address: `${metrics.address.host}:${metrics.address.port}`, path: '/metrics' });
    } catch (e) {
      log.error(`academy metrics: cannot listen on ${config.metrics.listen.host}:${config.metrics.listen.port} (${(e as Error).message})`);
    }
  }
  return {
    app,
    port: addr.port,
    cert: tls.cert,
    pool,
    tokens,
    audit: auditLog,
    metrics,
    purge,
    close: async () => {
      clearInterval(purgeTimer);
      await app.close();
      await metrics?.close();
      await pool.end();
    },
  };
}
