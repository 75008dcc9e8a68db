import { isValidHostEntry, normalizeHost, normalizeUrlEntry } from '../lists/normalize.js';

/** One academy list's entries, normalised, sorted into the three UT1 files. */
export interface ListEntries {
  domains: string[];
  urls: string[];
  expressions: string[];
}

export interface Problem {
  /** Where, as a JSON-pointer-like path into the request (`body/entries/3`). */
  field: string;
  message: string;
  entry?: string;
}

/** Refused input: every problem found, each naming its field; the policy is left as it was. */
export class PolicyValidationError extends Error {
  constructor(readonly problems: Problem[]) {
    super(problems.map((p) => `${p.field}: ${p.message}`).join('; '));
    this.name = 'PolicyValidationError';
  }
}

/** An academy list entry as the API takes it: a domain, a `host/path` prefix, or `{expression}`. */
export type EntryInput = string | { expression: string };

/** Long regexes are where catastrophic backtracking hides; the proxy runs these on every path. */
export const MAX_EXPRESSION_LENGTH = 512;

export function checkDomain(raw: string): { value: string } | { problem: string } {
  const host = normalizeHost(raw.trim());
  if (!host || !isValidHostEntry(host)) return { problem: 'not a hostname or IP address' };
  return { value: host };
}

export function checkUrl(raw: string): { value: string } | { problem: string } {
  const u = normalizeUrlEntry(raw);
  if (!u || !isValidHostEntry(u.host)) return { problem: 'not a url prefix (host/path)' };
  if (/\s/.test(u.path)) return { problem: 'url prefix holds white space' };
  return { value: u.host + u.path };
}

export function checkExpression(raw: string): { value: string } | { problem: string } {
  const src = raw.trim();
  if (!src) return { problem: 'empty regular expression' };
  if (src.length > MAX_EXPRESSION_LENGTH) return { problem: `regular expression longer than ${MAX_EXPRESSION_LENGTH} characters` };
  try {
    new RegExp(src, 'i');
  } catch (e) {
    return { problem: `invalid regular expression: ${(e as Error).message}` };
  }
  return { value: src };
}

/** Sorts API entries into the three UT1 files, normalised; problems name `field/index`. */
export function parseEntries(entries: readonly EntryInput[], field: string): { domains: string[]; urls: string[]; expressions: string[]; problems: Problem[] } {
  const out = { domains: [] as string[], urls: [] as string[], expressions: [] as string[], problems: [] as Problem[] };
  entries.forEach((e, i) => {
    const isExpr = typeof e === 'object' && e !== null;
    const raw = isExpr ? (e as { expression: string }).expression : (e as string);
    if (typeof raw !== 'string') return void out.problems.push({ field: `${field}/${i}`, message: 'must be a string or {"expression": string}' });
    const r = isExpr ? checkExpression(raw) : raw.includes('/') ? checkUrl(raw) : checkDomain(raw);
    if ('problem' in r) out.problems.push({ field: `${field}/${i}${isExpr ? '/expression' : ''}`, entry: raw.slice(0, 200), message: r.problem });
    else (isExpr ? out.expressions : raw.includes('/') ? out.urls : out.domains).push(r.value);
  });
  return out;
}

/** A list's entries in API form: what GET returns can be PUT back as it is. */
export function listEntries(l: ListEntries): EntryInput[] {
  return [...l.domains, ...l.urls, ...l.expressions.map((expression) => ({ expression }))];
}
