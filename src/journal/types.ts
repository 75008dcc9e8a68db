import type { Logger } from '../log.js';
import type { FileAccess } from './files.js';

/**
 * The journal's contract with the rest of the gateway (CLI, supervision API, metrics).
 * The implementation lives beside this file; consumers depend on these types only.
 */

export type JournalDecision = 'allow' | 'block';

/** Filters shared by search, export and stats. Times are ms since the epoch, [from, to). */
export interface JournalFilter {
  from?: number;
  to?: number;
  client?: string;
  user?: string;
  /** Exact host, or a parent domain: `example.org` also finds `www.example.org`. */
  host?: string;
  decision?: JournalDecision;
  profile?: string;
  category?: string;
}

/** One connection as the law asks to keep it: who, when, where, what decision. */
export interface JournalRow {
  /** Stable, increasing identifier (cursor material). */
  id: number;
  /** Start time, ms since the epoch. */
  time: number;
  client: string;
  user: string | null;
  profile: string | null;
  method: string;
  scheme: 'http' | 'connect';
  host: string;
  port: number;
  /** Path for plain HTTP (query dropped unless configured); null for tunnels. */
  path: string | null;
  status: number;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  decision: JournalDecision;
  category: string | null;
  rule: string;
  policyVersion: number;
  /** The enforcing host SafeSearch connected to instead of `host` (src/policy/safesearch.ts); null: none. */
  retarget: string | null;
}

export interface SearchPage {
  rows: JournalRow[];
  /** Opaque; pass back to get the next page, null at the end. */
  nextCursor: string | null;
}

export type StatsBucket = 'hour' | 'day';

export interface StatsRow {
  /** Bucket start, ms since the epoch. */
  bucket: number;
  profile: string | null;
  category: string | null;
  requests: number;
  blocked: number;
}

/** A profile's week (or any range): what was blocked, what was opened by teachers' unblocks. */
export interface ProfileSummary {
  profile: string | null;
  requests: number;
  blocked: number;
  /** Blocked requests by category (null: no category, e.g. allowlist-only), most first. */
  blockedByCategory: { category: string | null; blocked: number }[];
  /** The most blocked hosts, most first. */
  topBlockedHosts: { host: string; blocked: number }[];
  /** Requests allowed by a teacher's unblock (rule "override"), by host, most first. */
  overridden: { host: string; requests: number }[];
}

export interface JournalHealth {
  writable: boolean;
  queueDepth: number;
  rowsWritten: number;
  rowsLost: number;
  /** Times the writer was given the proxy's priority because records piled up (journal.ts). */
  writerBoosts: number;
  /** Pauses the writer made to hand the core back to the proxy (pacer.ts). */
  writerPauses: number;
  /** Times the writer thread died and was started again (rows lost meanwhile are in rowsLost). */
  writerRestarts: number;
  /** Starts that found the last run had not closed the journal (`unclean-stop` events). */
  uncleanStops: number;
  lastError: string | null;
}

export interface JournalReader {
  /** Rows in recording order (month by month, id within a month); `order: 'desc'` gives the newest first. */
  search(filter: JournalFilter, page: { limit: number; cursor?: string | null; order?: 'asc' | 'desc' }): SearchPage;
  /** Streams matching rows, oldest first, as CSV (with a header line) or JSON lines. */
  export(filter: JournalFilter, format: 'csv' | 'jsonl'): AsyncIterable<string>;
  stats(filter: JournalFilter, bucket: StatsBucket): StatsRow[];
  /** Per profile over the filter's range, read in slices that yield to the event loop (the proxy keeps serving). */
  summary(filter: JournalFilter, top: number): Promise<ProfileSummary[]>;
  health(): JournalHealth;
}

export type OverflowPolicy = 'block' | 'allow';

export interface JournalOptions {
  /** Folder of the journal (`<dataDir>/journal`). */
  dir: string;
  retentionDays: number;
  keepQuery: boolean;
  overflow: OverflowPolicy;
  /** Rows waiting to be written (queued, in flight, or failing) beyond which the policy applies. */
  queueMax: number;
  /**
   * About the longest time a row waits in memory before it is committed (what a crash can lose):
   * queued rows go to the writer every half of it, and a batch the writer has not committed
   * after the other half gets the proxy's priority until it is (hurry()).
   */
  flushMs: number;
  log: Logger;
  timezone?: string;
  /** Test and benchmark knob: SQLite durability of each batch (FULL by default). */
  synchronous?: 'FULL' | 'NORMAL' | 'OFF';
  /** Delay before a failed batch is retried. */
  retryMs?: number;
  /** Nice value of the writer thread (0 = the process's own); see worker.ts. */
  writerNice?: number;
  /** Mode and group of the journal's files (files.ts); owner only by default. */
  access?: FileAccess;
}

/** What the gateway exposes: the reader contract, plus flush and close. */
export interface JournalHandle extends JournalReader {
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** What `verify` finds wrong in the journal or an academy copy. */
export type ProblemKind = 'changed' | 'removed' | 'added' | 'chain';

export interface VerifyProblem {
  kind: ProblemKind;
  /** Chain link concerned, when there is one. */
  entry: number | null;
  /** Row ids and start times affected (inclusive), when known. */
  firstId: number | null;
  lastId: number | null;
  from: number | null;
  to: number | null;
  message: string;
}
