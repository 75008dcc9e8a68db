/** JSON schema of the config file. Every key is optional: what is absent comes from the defaults. */
import { listenAddress, name, stringList } from './schema-common.js';
import { peopleSections } from './schema-people.js';

/** A transparent listener: where it binds, and the port the redirected clients meant (lost in a redirect). */
const transparentListener = {
  ...listenAddress,
  properties: { ...listenAddress.properties, targetPort: { type: 'integer', minimum: 1, maximum: 65535 } },
} as const;

/** A profile's SafeSearch switches (src/policy/safesearch.ts); absent keys get the profile's default. */
const safeSearch = {
  type: 'object',
  additionalProperties: false,
  properties: {
    google: { type: 'boolean' },
    bing: { type: 'boolean' },
    duckduckgo: { type: 'boolean' },
    youtube: { enum: ['strict', 'moderate', 'off'] },
  },
} as const;

const ruleSet = {
  type: 'object',
  additionalProperties: false,
  properties: {
    mode: { enum: ['blocklist', 'allowlist'] },
    categories: stringList,
    allow: stringList,
    deny: stringList,
    allowLists: { type: 'array', items: name },
    denyLists: { type: 'array', items: name },
  },
} as const;

export const configSchema = {
  $id: 'vigie-config',
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    listen: {
      type: 'array',
      minItems: 1,
      items: listenAddress,
    },
    transparent: {
      type: 'object',
      additionalProperties: false,
      properties: {
        http: { type: 'array', items: transparentListener },
        https: { type: 'array', items: transparentListener },
      },
    },
    clients: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['network', 'profile'],
        properties: { network: { type: 'string' }, profile: name, name: { type: 'string' }, auth: { enum: ['none', 'required'] }, unauthenticatedProfile: name },
      },
    },
    profiles: {
      type: 'object',
      propertyNames: name,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['mode'],
        properties: {
          ...ruleSet.properties,
          description: { type: 'string' },
          safeSearch,
          intercept: { enum: ['off', 'block-pages', 'full'] },
          schedule: {
            type: 'object',
            additionalProperties: false,
            required: ['within', 'otherwise'],
            properties: { within: name, otherwise: { ...ruleSet, required: ['mode'] } },
          },
        },
      },
    },
    times: {
      type: 'object',
      propertyNames: name,
      properties: {
        holidays: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['from', 'to'],
            properties: {
              from: { type: 'string', pattern: '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' },
              to: { type: 'string', pattern: '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' },
              name: { type: 'string' },
            },
          },
        },
      },
      additionalProperties: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['days', 'from', 'to'],
          properties: {
            days: { type: 'array', minItems: 1, items: { enum: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] } },
            from: { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' },
            to: { type: 'string', pattern: '^([01][0-9]|2[0-4]):[0-5][0-9]$' },
          },
        },
      },
    },
    timezone: { type: 'string', minLength: 1 },
    connectPorts: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 65535 } },
    httpPorts: { type: 'array', items: { anyOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { type: 'string', pattern: '^[0-9]{1,5}-[0-9]{1,5}$' }] } },
    destinations: {
      type: 'object',
      additionalProperties: false,
      properties: {
        allow: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['network'],
            properties: { network: { type: 'string', minLength: 1 }, ports: { type: 'array', minItems: 1, items: { type: 'integer', minimum: 1, maximum: 65535 } } },
          },
        },
      },
    },
    hosts: { type: 'object', additionalProperties: { type: 'string' } },
    dns: {
      type: 'object',
      additionalProperties: false,
      properties: {
        servers: { anyOf: [{ type: 'null' }, { type: 'array', items: { type: 'string', minLength: 1 } }] },
        timeoutMs: { type: 'integer', minimum: 1 },
        maxTtlSeconds: { type: 'integer', minimum: 0 },
        negativeTtlSeconds: { type: 'integer', minimum: 0 },
      },
    },
    lists: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ut1: { type: ['string', 'null'] },
        academy: { type: ['string', 'null'] },
        extra: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 1 }, { const: false }] },
        updateUrl: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^https?://' }] },
        checksumUrl: { anyOf: [{ type: 'null' }, { type: 'string', pattern: '^https?://' }] },
        updateIntervalHours: { type: 'number', minimum: 0, maximum: 8760 },
        maxDownloadBytes: { type: 'integer', minimum: 1024 },
        maxExtractBytes: { type: 'integer', minimum: 1024 },
      },
    },
    dataDir: { type: 'string', minLength: 1 },
    timeouts: {
      type: 'object',
      additionalProperties: false,
      properties: {
        connectMs: { type: 'integer', minimum: 1 },
        headersMs: { type: 'integer', minimum: 1 },
        upstreamResponseMs: { type: 'integer', minimum: 1 },
        idleMs: { type: 'integer', minimum: 1 },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        maxHeaderBytes: { type: 'integer', minimum: 1024, maximum: 1048576 },
        maxSocketsPerOrigin: { type: 'integer', minimum: 1 },
        decisionCacheSize: { type: 'integer', minimum: 0 },
      },
    },
    proxyName: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,64}$' },
    tunnels: { enum: ['socket', 'raw'] },
    interception: {
      type: 'object',
      additionalProperties: false,
      properties: {
        ca: { type: ['string', 'null'], minLength: 1 },
        exclude: {
          type: 'object',
          additionalProperties: false,
          properties: { categories: stringList, domains: stringList, shipped: { type: 'boolean' } },
        },
        extraRoots: stringList,
        leafHours: { type: 'integer', minimum: 1, maximum: 720 },
        leafCacheSize: { type: 'integer', minimum: 16, maximum: 1000000 },
      },
    },
    workers: { type: 'integer', minimum: 1, maximum: 64 },
    workersRuntime: { enum: ['auto', 'threads', 'processes'] },
    mainThreadServes: { type: 'boolean' },
    log: {
      type: 'object',
      additionalProperties: false,
      properties: { level: { enum: ['debug', 'info', 'warn', 'error'] } },
    },
    supervision: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        listen: listenAddress,
        names: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
        cert: { type: ['string', 'null'] },
        key: { type: ['string', 'null'] },
        fleet: {
          anyOf: [
            { type: 'null' },
            {
              type: 'object',
              additionalProperties: false,
              required: ['url', 'publicKey'],
              properties: {
                url: { type: 'string', pattern: '^https?://' },
                publicKey: { type: 'string', minLength: 1 },
                intervalSeconds: { type: 'integer', minimum: 5, maximum: 86400 },
              },
            },
          ],
        },
      },
    },
    metrics: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        listen: listenAddress,
      },
    },
    journal: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        retentionDays: { type: 'integer', minimum: 1, maximum: 3660 },
        keepQuery: { type: 'boolean' },
        overflow: { enum: ['block', 'allow'] },
        queueMax: { type: 'integer', minimum: 1, maximum: 10_000_000 },
        flushMs: { type: 'integer', minimum: 10, maximum: 250 },
        writerNice: { type: 'integer', minimum: 0, maximum: 19 },
        maxExportDays: { type: 'integer', minimum: 1, maximum: 3660 },
        group: { anyOf: [{ type: 'null' }, { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*\\$?$' }, { type: 'integer', minimum: 0 }] },
        backup: {
          anyOf: [
            { type: 'null' },
            {
              type: 'object',
              additionalProperties: false,
              required: ['dir'],
              properties: {
                dir: { type: 'string', minLength: 1 },
                hour: { type: 'integer', minimum: 0, maximum: 23 },
                keep: { type: 'integer', minimum: 1, maximum: 3660 },
              },
            },
          ],
        },
        ship: {
          type: ['object', 'null'],
          additionalProperties: false,
          required: ['url', 'gatewayId'],
          properties: {
            url: { type: 'string', pattern: '^postgres(ql)?://' },
            gatewayId: name,
            uai: { type: ['string', 'null'], pattern: '^[0-9]{7}[A-Z]$' },
            batchRows: { type: 'integer', minimum: 1, maximum: 100_000 },
            maxLagSeconds: { type: 'integer', minimum: 1, maximum: 31_536_000 },
            fleetSeconds: { type: 'integer', minimum: 0, maximum: 86_400 },
          },
        },
      },
    },
    ...peopleSections,
  },
} as const;
