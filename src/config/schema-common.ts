// Schema pieces shared by the config's sections (src/config/schema.ts, schema-people.ts).

export const stringList = { type: 'array', items: { type: 'string', minLength: 1 } } as const;
/** Where a listener binds: the proxy (several), the metrics, the API and the portal (one each). */
export const listenAddress = {
  type: 'object',
  additionalProperties: false,
  required: ['host', 'port'],
  properties: { host: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 0, maximum: 65535 } },
} as const;
// `__proto__` is refused: as a key it would change an object's prototype.
export const name = { type: 'string', pattern: '^(?!__proto__$)[A-Za-z0-9_.-]{1,64}$' } as const;
