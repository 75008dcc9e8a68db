/**
 * A value looked up by a name that came from outside (a URL, a request body, a config file):
 * only the object's own keys count, so `constructor`, `toString` or `__proto__` never reach
 * `Object.prototype` and its members.
 */
export function own<T>(record: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

/** Names a record key must never take: assigning them would change the record's prototype. */
export const RESERVED_NAMES: readonly string[] = ['__proto__'];
