import { PolicyValidationError } from '../../policy/store.js';

/** A time parameter: ms since the epoch or ISO 8601; a bad one is a 400 naming the field. */
export function timeField(v: string | undefined, field: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  const t = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(t)) throw new PolicyValidationError([{ field, message: 'must be an ISO 8601 time or milliseconds since the epoch' }]);
  return t;
}
