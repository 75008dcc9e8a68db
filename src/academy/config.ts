import { readFileSync } from 'node:fs';
import AjvModule from 'ajv';
import { ConfigError } from '../config/load.js';
import type { ListenAddress } from '../config/types.js';

// ajv ships CommonJS; under NodeNext its default export is the module object.
const Ajv = AjvModule.default ?? AjvModule;

/** `vigie academy start --config FILE`: the academy service over the PostgreSQL copy. */
export interface AcademyConfig {
  /** The HTTPS API (same routes, roles and audit as a gateway's journal routes). */
  listen: ListenAddress;
  /** DNS names and addresses put in a generated certificate. */
  names: string[];
  /** PEM files; both null = a self-signed pair generated once under dataDir. */
  cert: string | null;
  key: string | null;
  /** Tokens, audit log, generated certificate: the academy's own, not a gateway's. */
  dataDir: string;
  postgres: { url: string; poolSize: number };
  /** The copy keeps what the gateways keep: months are dropped once they ended this long ago. */
  retentionDays: number;
  /** Time zone of the `day` buckets of stats. */
  timezone: string;
  fleet: {
    /** A gateway that has not reported for this long is stale. */
    staleSeconds: number;
    /** A gateway whose shipping lags more than this is unhealthy. */
    maxLagSeconds: number;
  };
  metrics: { enabled: boolean; listen: ListenAddress };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
}

export const defaultAcademyConfig = (): AcademyConfig => ({
  listen: { host: '0.0.0.0', port: 8444 },
  names: ['localhost'],
  cert: null,
  key: null,
  dataDir: '/var/lib/vigie-academy',
  postgres: { url: 'postgres://vigie@127.0.0.1:5432/vigie', poolSize: 8 },
  retentionDays: 365,
  timezone: 'Europe/Paris',
  fleet: { staleSeconds: 180, maxLagSeconds: 300 },
  metrics: { enabled: true, listen: { host: '127.0.0.1', port: 9465 } },
  log: { level: 'info' },
});

const listen = {
  type: 'object',
  additionalProperties: false,
  required: ['host', 'port'],
  properties: { host: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 0, maximum: 65535 } },
} as const;

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['postgres', 'dataDir'],
  properties: {
    $schema: { type: 'string' },
    listen,
    names: { type: 'array', items: { type: 'string', minLength: 1 } },
    cert: { type: ['string', 'null'] },
    key: { type: ['string', 'null'] },
    dataDir: { type: 'string', minLength: 1 },
    postgres: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: { url: { type: 'string', pattern: '^postgres(ql)?://' }, poolSize: { type: 'integer', minimum: 1, maximum: 100 } },
    },
    retentionDays: { type: 'integer', minimum: 1, maximum: 3660 },
    timezone: { type: 'string', minLength: 1 },
    fleet: {
      type: 'object',
      additionalProperties: false,
      properties: { staleSeconds: { type: 'integer', minimum: 1 }, maxLagSeconds: { type: 'integer', minimum: 1 } },
    },
    metrics: { type: 'object', additionalProperties: false, properties: { enabled: { type: 'boolean' }, listen } },
    log: { type: 'object', additionalProperties: false, properties: { level: { enum: ['debug', 'info', 'warn', 'error'] } } },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);

/** Validates a parsed academy config; throws ConfigError naming each problem's JSON path. */
export function resolveAcademyConfig(doc: unknown, file = '<academy config>'): AcademyConfig {
  if (!validate(doc)) {
    throw new ConfigError(
      file,
      (validate.errors ?? []).map((e) => ({
        path: e.instancePath + (e.keyword === 'required' ? `/${String(e.params.missingProperty)}` : ''),
        message: e.keyword === 'additionalProperties' ? `unknown key "${String(e.params.additionalProperty)}"` : (e.message ?? 'invalid'),
      })),
    );
  }
  const d = doc as Partial<AcademyConfig> & Record<string, unknown>;
  const base = defaultAcademyConfig();
  const cfg: AcademyConfig = {
    ...base,
    ...(d as object),
    postgres: { ...base.postgres, ...d.postgres },
    fleet: { ...base.fleet, ...d.fleet },
    metrics: { ...base.metrics, ...d.metrics },
    log: { ...base.log, ...d.log },
  } as AcademyConfig;
  delete (cfg as unknown as Record<string, unknown>).$schema;
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: cfg.timezone });
  } catch {
    throw new ConfigError(file, [{ path: '/timezone', message: `unknown time zone "${cfg.timezone}"` }]);
  }
  if (!cfg.cert !== !cfg.key) throw new ConfigError(file, [{ path: cfg.cert ? '/key' : '/cert', message: 'set both "cert" and "key", or neither (a self-signed pair is then generated)' }]);
  return cfg;
}

export function loadAcademyConfig(file: string): AcademyConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(file, [{ path: '', message: `cannot read as JSON: ${(e as Error).message}` }]);
  }
  return resolveAcademyConfig(doc, file);
}
