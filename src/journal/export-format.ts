import type { JournalRow } from './types.js';

/** How exported rows are written: CSV columns and cells, and the trailer that ends every export. */
export const CSV_COLUMNS = ['id', 'time', 'client', 'user', 'profile', 'method', 'scheme', 'host', 'port', 'path', 'status', 'bytesIn', 'bytesOut', 'durationMs', 'decision', 'category', 'rule', 'policyVersion', 'retarget'] as const;

/** One CSV cell (RFC 4180), also used by the weekly summary. */
export const csvCell = (v: unknown): string => {
  if (v === null || v === undefined) return '';
  const s = String(v);
  // RFC 4180 quoting; cells a spreadsheet would read as a formula are quoted too (values stay exact).
  return /[",\r\n]/.test(s) || /^[=+\-@\t]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export const csvLine = (r: JournalRow): string =>
  [r.id, new Date(r.time).toISOString(), r.client, r.user, r.profile, r.method, r.scheme, r.host, r.port, r.path, r.status, r.bytesIn, r.bytesOut, r.durationMs, r.decision, r.category, r.rule, r.policyVersion, r.retarget].map(csvCell).join(',');

/**
 * The export's last line: the chain head it reached, the rows it holds, when. A CSV comment line
 * (`#`, no comma: one cell for a spreadsheet), or a JSON line without an `id` (not a row).
 */
export const exportTrailer = (format: 'csv' | 'jsonl', head: string, rows: number, at: number): string =>
  format === 'csv' ? `# chain head ${head} - ${rows} rows - exported ${new Date(at).toISOString()}\n` : JSON.stringify({ chainHead: head, rows, exportedAt: new Date(at).toISOString() }) + '\n';
