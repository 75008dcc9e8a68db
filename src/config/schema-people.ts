// JSON schema of the config's sections for people and their signals: the directory and logins,
// teachers' unblocks, notifications, reports and alerts (spread into configSchema, schema.ts).
import { listenAddress, name } from './schema-common.js';

/** Event severities (RFC 5424 names), least grave first. */
const severity = { enum: ['info', 'notice', 'warning', 'error', 'critical'] } as const;

/** A safeguarding threshold: this many watched blocks within that many minutes. */
const alertThreshold = {
  type: 'object',
  additionalProperties: false,
  required: ['count', 'minutes'],
  properties: { count: { type: 'integer', minimum: 1, maximum: 1000 }, minutes: { type: 'integer', minimum: 1, maximum: 1440 } },
} as const;

export const peopleSections = {
  directory: {
    type: 'object',
    additionalProperties: false,
    properties: {
      levels: { type: 'object', propertyNames: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$' }, additionalProperties: name },
      classes: { type: 'object', propertyNames: { type: 'string', pattern: '^[^$\\s]{1,64}\\$[^$\\s]{1,64}$' }, additionalProperties: name },
      watch: { type: ['string', 'null'] },
    },
  },
  auth: {
    type: 'object',
    additionalProperties: false,
    properties: {
      realm: { type: 'string', pattern: '^[^"\\\\\\x00-\\x1f]{1,64}$' },
      ldap: {
        type: ['object', 'null'],
        additionalProperties: false,
        required: ['url'],
        properties: {
          url: { type: 'string', pattern: '^ldaps?://' },
          bindDn: { type: 'string', pattern: '\\{login\\}' },
          searchBase: { type: 'string', minLength: 1 },
          searchFilter: { type: 'string', pattern: '^\\(.*\\{login\\}.*\\)$' },
          searchBindDn: { type: 'string', minLength: 1 },
          searchBindPasswordFile: { type: 'string', minLength: 1 },
          idAttribute: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9-]{0,63}$' },
          startTls: { type: 'boolean' },
          caFile: { type: 'string', minLength: 1 },
          timeoutMs: { type: 'integer', minimum: 100, maximum: 60_000 },
        },
      },
      cacheSeconds: { type: 'integer', minimum: 0, maximum: 3600 },
      cacheMax: { type: 'integer', minimum: 1, maximum: 1_000_000 },
      failuresPerMinute: { type: 'integer', minimum: 1, maximum: 10_000 },
      portal: {
        type: ['object', 'null'],
        additionalProperties: false,
        required: ['listen'],
        properties: {
          listen: listenAddress,
          url: { type: ['string', 'null'], pattern: '^https://[^/?#\\s]+$' },
          idleMinutes: { type: 'number', exclusiveMinimum: 0, maximum: 1440 },
          explicit: { enum: ['challenge', 'portal'] },
          cert: { type: ['string', 'null'], minLength: 1 },
          key: { type: ['string', 'null'], minLength: 1 },
        },
      },
    },
  },
  overrides: {
    type: 'object',
    additionalProperties: false,
    properties: {
      maxMinutes: { type: 'integer', minimum: 1, maximum: 1440 },
      nonOverridable: { type: 'array', items: { type: 'string', minLength: 1 } },
      consoleUrl: { type: ['string', 'null'], pattern: '^https?://' },
    },
  },
  notifications: {
    type: 'object',
    additionalProperties: false,
    properties: {
      webhooks: { type: 'array', maxItems: 20, items: { type: 'string', pattern: '^https?://' } },
      smtp: {
        type: ['object', 'null'],
        additionalProperties: false,
        required: ['host', 'port', 'from', 'to'],
        properties: {
          host: { type: 'string', minLength: 1 },
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          secure: { type: 'boolean' },
          requireTls: { type: 'boolean' },
          caFile: { type: 'string', minLength: 1 },
          user: { type: 'string', minLength: 1 },
          passwordFile: { type: 'string', minLength: 1 },
          from: { type: 'string', pattern: '^[^\\s@<>]+@[^\\s@<>]+$' },
          to: { type: 'array', minItems: 1, maxItems: 20, items: { type: 'string', pattern: '^[^\\s@<>,]+@[^\\s@<>,]+$' } },
          minSeverity: severity,
        },
      },
      syslog: {
        type: ['object', 'null'],
        additionalProperties: false,
        required: ['host', 'port', 'protocol'],
        properties: {
          host: { type: 'string', minLength: 1 },
          port: { type: 'integer', minimum: 1, maximum: 65535 },
          protocol: { enum: ['udp', 'tcp'] },
          facility: { type: 'integer', minimum: 0, maximum: 23 },
          minSeverity: severity,
        },
      },
    },
  },
  reports: {
    type: 'object',
    additionalProperties: false,
    properties: {
      perClientPerHour: { type: 'integer', minimum: 1, maximum: 10000 },
      maxQueued: { type: 'integer', minimum: 10, maximum: 1000000 },
      url: { type: ['string', 'null'], pattern: '^https?://' },
    },
  },
  alerts: {
    type: 'object',
    additionalProperties: false,
    properties: {
      enabled: { type: 'boolean' },
      watch: { type: 'array', maxItems: 200, items: name },
      threshold: alertThreshold,
      profiles: {
        type: 'object',
        propertyNames: name,
        additionalProperties: { type: 'object', additionalProperties: false, properties: { watch: { type: 'array', maxItems: 200, items: name }, threshold: alertThreshold } },
      },
      terms: { type: ['string', 'null'], minLength: 1 },
      dedupMinutes: { type: 'integer', minimum: 1, maximum: 10_080 },
      maxPerHour: { type: 'integer', minimum: 1, maximum: 10_000 },
      security: {
        type: 'object',
        additionalProperties: false,
        properties: {
          categories: { type: 'array', maxItems: 50, items: name },
          authFailuresPerMinute: { type: 'integer', minimum: 1, maximum: 10 },
        },
      },
    },
  },
} as const;
