import type { AddressInfo } from 'node:net';
import swagger from '@fastify/swagger';
import { Ajv } from '../ajv.js';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { Gateway } from '../gateway.js';
import type { Logger } from '../log.js';
import { PolicyValidationError } from '../policy/store.js';
import { AuditLog } from './audit.js';
import { audit, problem, type ApiContext, type AuditContext } from './context.js';
import { FleetPuller } from './fleet.js';
import { registerAlertRoutes } from './routes/alerts.js';
import { registerConsoleRoutes } from './routes/console.js';
import { registerJournalRoutes } from './routes/journal.js';
import { registerPolicyRoutes } from './routes/policy.js';
import { registerOverrideRoutes } from './routes/overrides.js';
import { registerProfileRoutes } from './routes/profiles.js';
import { registerSessionRoutes } from './routes/sessions.js';
import { registerReportRoutes } from './routes/reports.js';
import { registerWeeklyRoutes } from './routes/weekly.js';
import { registerSystemRoutes } from './routes/system.js';
import { registerUserRoutes } from './routes/users.js';
import { BODY_LIMIT } from './limits.js';
import { RefusalAudit, signInHook } from './signin.js';
import { loadOrCreateCertificate } from './tls.js';
import { TokenStore } from './tokens.js';
import { ownListeners } from '../net/own-listeners.js';


export interface SupervisionServer {
  app: FastifyInstance;
  host: string;
  port: number;
  /** The certificate clients must trust (self-signed unless configured). */
  cert: string;
  fleet: FleetPuller | null;
  tokens: TokenStore;
  audit: AuditLog;
  /** Refused requests on their way to the audit log (rate-limited). */
  refusals: RefusalAudit;
  close(): Promise<void>;
}

export interface SupervisionOptions {
  gateway: Gateway;
  log: Logger;
  /** The gateway's metrics registry, for the fleet counter. */
  registry?: Registry;
}

export { AUTH_FAILURES_PER_MINUTE } from './signin.js';

/**
 * TLS 1.2 with forward-secret AEAD suites only (ECDHE with AES-GCM or ChaCha20-Poly1305), and
 * TLS 1.3 (whose suites all are): no CBC, no static RSA key exchange.
 */
export const TLS_OPTIONS = {
  minVersion: 'TLSv1.2',
  ciphers: [
    'TLS_AES_128_GCM_SHA256',
    'TLS_AES_256_GCM_SHA384',
    'TLS_CHACHA20_POLY1305_SHA256',
    'ECDHE-ECDSA-AES128-GCM-SHA256',
    'ECDHE-RSA-AES128-GCM-SHA256',
    'ECDHE-ECDSA-AES256-GCM-SHA384',
    'ECDHE-RSA-AES256-GCM-SHA384',
    'ECDHE-ECDSA-CHACHA20-POLY1305',
    'ECDHE-RSA-CHACHA20-POLY1305',
  ].join(':'),
  honorCipherOrder: true,
} as const;

/** Maps an ajv error to the field it is about (`body/entries/3`, `querystring/reference`). */
function fieldOf(context: string, e: { instancePath: string; keyword: string; params: Record<string, unknown> }): string {
  let path = `${context}${e.instancePath}`;
  if (e.keyword === 'required') path += `/${String(e.params.missingProperty)}`;
  if (e.keyword === 'additionalProperties') path += `/${String(e.params.additionalProperty)}`;
  return path;
}

/** Builds the API (routes, auth, validation, OpenAPI) without listening. */
export async function buildSupervisionApp(ctx: ApiContext, https: { key: string; cert: string } | null, refusals = new RefusalAudit(ctx)): Promise<FastifyInstance> {
  const app = await buildApiApp(ctx, https, { title: 'Vigie supervision API', description: 'Remote administration of a Vigie gateway: profiles, academy lists, versioned policy, journal, statistics, audit.' }, refusals);
  registerSystemRoutes(app, ctx);
  registerProfileRoutes(app, ctx);
  registerPolicyRoutes(app, ctx);
  registerJournalRoutes(app, ctx);
  registerSessionRoutes(app, ctx);
  registerUserRoutes(app, ctx);
  registerOverrideRoutes(app, ctx);
  registerWeeklyRoutes(app, ctx);
  registerReportRoutes(app, ctx);
  registerAlertRoutes(app, ctx);
  await registerConsoleRoutes(app);
  return app;
}

/**
 * What every Vigie API shares (a gateway's, the academy's, src/academy/): bearer tokens and
 * roles, sign-in limits and refused-request audit, ajv validation naming the field, problem
 * answers, OpenAPI, modern TLS. The caller registers its routes.
 */
export async function buildApiApp(ctx: AuditContext, https: { key: string; cert: string } | null, info: { title: string; description: string }, refusals = new RefusalAudit(ctx)): Promise<FastifyInstance> {
  const app = (Fastify as unknown as (o: object) => FastifyInstance)({
    ...(https ? { https: { ...https, ...TLS_OPTIONS } } : {}),
    logger: false,
    bodyLimit: BODY_LIMIT,
    requestTimeout: 60_000,
    connectionTimeout: 30_000,
    trustProxy: false,
  });
  // Query strings and path parameters are text and need coercion; a JSON body must mean what it says
  // (`"categories": 1` is an error, not ["1"]).
  const strictAjv = new Ajv({ allErrors: true, strict: false, useDefaults: true, coerceTypes: false, allowUnionTypes: true });
  const coercingAjv = new Ajv({ allErrors: true, strict: false, useDefaults: true, coerceTypes: 'array', allowUnionTypes: true });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strictAjv : coercingAjv).compile(schema));
  app.decorateRequest('principal', null);

  app.addHook('onRequest', signInHook(ctx, refusals));

  app.setErrorHandler(async (err: FastifyError & { validationContext?: string }, req, reply) => {
    if (err.validation) {
      const problems = err.validation.map((e) => ({ field: fieldOf(err.validationContext ?? 'body', e as never), message: e.message ?? 'invalid' }));
      if (req.principal && req.method !== 'GET') await audit(ctx, req, 'request.invalid', `${req.method} ${req.routeOptions.url}`, { problems }, 'refused', 400).catch(() => undefined);
      return problem(reply, 400, problems.map((p) => `${p.field} ${p.message}`).join('; '), { problems });
    }
    if (err instanceof PolicyValidationError) {
      await audit(ctx, req, 'request.invalid', `${req.method} ${req.routeOptions.url}`, { problems: err.problems.slice(0, 50) }, 'refused', 400).catch(() => undefined);
      return problem(reply, 400, err.message.slice(0, 2000), { problems: err.problems });
    }
    const status = err.statusCode ?? 500;
    if (status < 500) return problem(reply, status, err.message);
    ctx.log.error(`supervision: ${req.method} ${req.url} failed: ${err.message}`);
    return problem(reply, 500, 'internal error (see the gateway log)');
  });
  app.setNotFoundHandler((req, reply) => problem(reply, 404, `no route ${req.method} ${req.url.split('?')[0]}`));

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { ...info, version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}

/** Starts the HTTPS API of a running gateway (config `supervision`). */
export async function startSupervision(opts: SupervisionOptions): Promise<SupervisionServer> {
  const { gateway, log } = opts;
  const config = gateway.config;
  const s = config.supervision;
  const tokens = await TokenStore.open(config.dataDir);
  await tokens.ensureAdmin(config.dataDir, log);
  // Kept as long as the journal rows whose searches and exports it records, not longer.
  const auditLog = new AuditLog(config.dataDir, config.journal.retentionDays);
  const purgeAudit = () =>
    auditLog.purge().then(
      (removed) => {
        if (removed) log.info('audit purge', { removed, retentionDays: config.journal.retentionDays });
      },
      (e: Error) => log.error(`audit purge failed: ${e.message}`),
    );
  void purgeAudit();
  const auditTimer = setInterval(purgeAudit, 86_400_000);
  auditTimer.unref();
  const fleet = s.fleet ? new FleetPuller(gateway, log, s.fleet) : null;
  if (fleet && opts.registry) opts.registry.registerMetric(fleet.metric);
  const tls = await loadOrCreateCertificate(config, log);
  const ctx: ApiContext = { gateway, tokens, audit: auditLog, log, fleet };
  const refusals = new RefusalAudit(ctx);
  const app = await buildSupervisionApp(ctx, tls, refusals);
  await app.listen({ host: s.listen.host, port: s.listen.port });
  const addr = app.server.address() as AddressInfo;
  // The proxy never takes a client here, whatever its destination policy allows.
  const forget = ownListeners.add(addr.address, addr.port);
  log.info('supervision API listening', { address: `https://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}/api/v1/`, cert: tls.file });
  fleet?.start();
  return {
    app,
    host: addr.address,
    port: addr.port,
    cert: tls.cert,
    fleet,
    tokens,
    audit: auditLog,
    refusals,
    close: async () => {
      forget();
      clearInterval(auditTimer);
      fleet?.stop();
      await app.close();
      await refusals.flush();
    },
  };
}
