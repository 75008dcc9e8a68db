/**
 * SafeSearch inside `intercept: "full"`: the query parameters and headers a provider needs
 * besides its enforcing address (lists/safesearch.json `intercepted`, compiled by
 * src/policy/safesearch.ts), set on the request forwarded to the origin. The client's own value
 * of a parameter or header is replaced, never kept beside ours (`safe=off&safe=active` would
 * leave the provider to choose). Only intercepted requests come here.
 */
import type { InsideRules } from '../policy/safesearch.js';

/** `path` with each of `query` set: earlier occurrences of the name removed, ours appended. */
export function pathWith(path: string, query: InsideRules['query']): string {
  if (query.length === 0) return path;
  const hash = path.indexOf('#');
  const bare = hash < 0 ? path : path.slice(0, hash);
  const q = bare.indexOf('?');
  const base = q < 0 ? bare : bare.slice(0, q);
  const kept: string[] = [];
  if (q >= 0) {
    for (const part of bare.slice(q + 1).split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const rawName = eq < 0 ? part : part.slice(0, eq);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        // Not valid percent-encoding: compared as it is.
      }
      if (!query.some(([n]) => n === name)) kept.push(part);
    }
  }
  for (const [n, v] of query) kept.push(`${n}=${v}`);
  return `${base}?${kept.join('&')}`;
}

/** Whether `set` replaces the header called `name`. */
const replaced = (set: InsideRules['headers'], name: string): boolean => {
  const lower = name.toLowerCase();
  return set.some(([n]) => n.toLowerCase() === lower);
};

/** Flat raw `headers` (name, value, ...) with each of `set` replacing any header of that name. */
export function headersWith(headers: string[], set: InsideRules['headers']): string[] {
  if (set.length === 0) return headers;
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (!replaced(set, headers[i]!)) out.push(headers[i]!, headers[i + 1]!);
  for (const [n, v] of set) out.push(n, v);
  return out;
}

/** Header `lines` (`Name: value` CRLF each, the fast path's form) with each of `set` replacing any header of that name. */
export function linesWith(lines: string, set: InsideRules['headers']): string {
  if (set.length === 0) return lines;
  let out = '';
  for (let s = 0; s < lines.length; ) {
    const e = lines.indexOf('\r\n', s);
    const end = e === -1 ? lines.length : e;
    if (!replaced(set, lines.slice(s, lines.indexOf(':', s)))) out += lines.slice(s, end) + '\r\n';
    s = end + 2;
  }
  for (const [n, v] of set) out += `${n}: ${v}\r\n`;
  return out;
}
