import type { JournalDecision, JournalRow } from './types.js';

/**
 * A row on its way to the writer, as a flat tuple in JournalRow field order: cheap to build on the
 * proxy's path, cheap to post to the worker, and its JSON is the canonical text the hash chain covers.
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

export const rowLine = (r: WireRow): string => JSON.stringify(r);
export const endLine = (id: number, bytesIn: number, bytesOut: number, durationMs: number): string => JSON.stringify(['end', id, bytesIn, bytesOut, durationMs]);

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
});
