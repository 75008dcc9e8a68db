import { createHash } from 'node:crypto';
import type { JournalDecision, JournalRow } from './types.js';

/**
 * A row as a flat tuple in JournalRow field order: what JournalWriter.write() takes in tests and
 * tools; the proxy's path encodes rows into binary batches instead (batch.ts).
 */
export type WireRow = [
  id: number,
  time: number,
  client: string,
  user: string | null,
  profile: string | null,
  method: string,
  scheme: 'http' | 'connect',
  host: string,
  port: number,
  path: string | null,
  status: number,
  bytesIn: number,
  bytesOut: number,
  durationMs: number,
  decision: JournalDecision,
  category: string | null,
  rule: string,
  policyVersion: number,
];

/** The end of a tunnel: [row id, row start time (picks the partition), bytes in, bytes out, duration]. */
export type WireEnd = [id: number, time: number, bytesIn: number, bytesOut: number, durationMs: number];

/** Chain format 1 (links written before format 2 existed): each row's JSON tuple, then '\n'. Verify only. */
export const rowLine = (r: WireRow): string => JSON.stringify(r);
export const endLine = (id: number, bytesIn: number, bytesOut: number, durationMs: number): string => JSON.stringify(['end', id, bytesIn, bytesOut, durationMs]);

/**
 * Chain format 2: what a link hashes, cheap to build because it is mostly the numbers the writer
 * stores anyway; each string is hashed once per link, not once per row. A link hashes SHA-256 over:
 *   1. the previous link's hash (32 bytes);
 *   2. two numbers: its row count and its tunnel-end count;
 *   3. per row, in id order, ROW_NUMBERS numbers: id, time, scheme (1 http, 2 connect), port,
 *      status, bytesIn, bytesOut, durationMs, decision (0 allow, 1 block), then the dictionary ids
 *      of client, user, ctx, method, host, path and rule (-1 for a null user or path);
 *   4. per tunnel end, in id order, END_NUMBERS numbers: id, bytesIn, bytesOut, durationMs;
 *   5. the strings behind those ids: walking the rows in id order and each row's ids in the order
 *      above, every (dictionary, id) seen for the first time in the link adds
 *      `<letter><id>=<UTF-8 byte length>:<text>` (letters DICT_LETTERS), nothing in between, as UTF-8.
 * Numbers are IEEE-754 binary64, little-endian. Counts first, fixed-size numbers, then
 * self-delimiting strings: two different sets of rows never give the same bytes. An edited
 * dictionary entry changes every link that uses it; an id pointed elsewhere changes its row.
 */
export const CHAIN_FORMAT = 2;
export const ROW_NUMBERS = 16;
export const END_NUMBERS = 4;
/** Section 5 letters, in row order: client, user, ctx, method, host, path, rule. */
export const DICT_LETTERS = 'cuxmhpr';

/** One section-5 entry. */
export const dictEntry = (letter: string, id: number, v: string): string => `${letter}${id}=${Buffer.byteLength(v)}:${v}`;

const bigEndian = new Uint8Array(new Float64Array([1]).buffer)[7] === 0;

/** Hashes a format-2 link; `rows` and `ends` are the number blocks (3 and 4), `text` section 5. */
export function hashLink2(prev: Buffer, rowCount: number, rows: Float64Array, endCount: number, ends: Float64Array, text: string): Buffer {
  const head = new Float64Array([rowCount, endCount]);
  const bytes = (a: Float64Array) => {
    const b = Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    // Little-endian on every machine: a copy swapped on the rare big-endian one.
    return bigEndian ? Buffer.from(b).swap64() : b;
  };
  return createHash('sha256').update(prev).update(bytes(head)).update(bytes(rows)).update(bytes(ends)).update(text).digest();
}

export const toWire = (r: JournalRow): WireRow => [r.id, r.time, r.client, r.user, r.profile, r.method, r.scheme, r.host, r.port, r.path, r.status, r.bytesIn, r.bytesOut, r.durationMs, r.decision, r.category, r.rule, r.policyVersion];

export const fromWire = (w: WireRow): JournalRow => ({
  id: w[0],
  time: w[1],
  client: w[2],
  user: w[3],
  profile: w[4],
  method: w[5],
  scheme: w[6],
  host: w[7],
  port: w[8],
  path: w[9],
  status: w[10],
  bytesIn: w[11],
  bytesOut: w[12],
  durationMs: w[13],
  decision: w[14],
  category: w[15],
  rule: w[16],
  policyVersion: w[17],
  // Format-1 tuples predate SafeSearch: no retarget.
  retarget: null,
});
