import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { BatchDecoder, type BatchMessage, type DecodedBatch } from './batch.js';
import { JournalWriter } from './writer.js';

/** Messages between the journal (proxy thread) and its writer thread. */
export type ToWorker =
  | ({ type: 'batch' } & BatchMessage)
  | { type: 'lost'; count: number }
  | { type: 'purge' }
  | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; nextId: number; head: { id: number; hash: string }; tid: number | null; nice: number | null }
  | { type: 'written'; count: number; rows: number; batches: number }
  | { type: 'error'; message: string }
  | { type: 'purged'; result: unknown }
  | { type: 'closed'; unwritten: number };

export interface WorkerConfig {
  file: string;
  retentionDays: number;
  synchronous?: 'FULL' | 'NORMAL' | 'OFF';
  retryMs?: number;
  /** Nice value of the writer thread (Linux: per thread); null leaves it as the process's. */
  nice?: number | null;
}

/**
 * On one core the writer's transactions would take the core from the proxy for milliseconds at a
 * time. A higher nice value for this thread alone lets the scheduler hand the core back to the
 * proxy as soon as it has work, while the writer still gets its share (at nice 5 about a quarter of
 * a contended core: CFS weights 335 against 1024; 50,000 rows/s at ~3.5 µs a row need 18 %).
 * Best effort: no Linux, no change.
 */
function lowerPriority(nice: number | null | undefined): { tid: number | null; nice: number | null } {
  let tid: number | null = null;
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return { tid: null, nice: null };
    // Only ever nicer: a process started at a higher nice value stays there.
    if (nice !== null && nice !== undefined && nice > getPriority(tid)) setPriority(tid, nice);
    return { tid, nice: getPriority(tid) };
  } catch {
    return { tid, nice: null };
  }
}

const cfg = workerData as WorkerConfig;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

let writer: JournalWriter;
try {
  writer = new JournalWriter(cfg.file, { synchronous: cfg.synchronous });
} catch (e) {
  post({ type: 'error', message: `cannot open ${cfg.file}: ${(e as Error).message}` });
  process.exit(1);
}

const decoder = new BatchDecoder();
const pending: DecodedBatch[] = [];
let retryTimer: NodeJS.Timeout | null = null;
let closing = false;

function purge(): void {
  try {
    post({ type: 'purged', result: writer.purge(cfg.retentionDays) });
  } catch (e) {
    post({ type: 'error', message: `purge failed: ${(e as Error).message}` });
  }
}

/**
 * Writes what waits in one transaction (batches that queued while the last one was written are
 * merged); on failure keeps it all and retries: nothing is dropped here.
 */
function pump(): void {
  while (pending.length && !retryTimer) {
    const batches = pending.length;
    let count = 0;
    let rows = 0;
    for (const b of pending) {
      count += b.n;
      rows += b.rows;
    }
    try {
      writer.writeBatches(pending);
    } catch (e) {
      post({ type: 'error', message: (e as Error).message });
      if (closing) break;
      retryTimer = setTimeout(() => {
        retryTimer = null;
        pump();
      }, cfg.retryMs ?? 1000);
      return;
    }
    pending.splice(0, batches);
    post({ type: 'written', count, rows, batches });
  }
  if (closing) finish();
}

function finish(): void {
  const unwritten = pending.reduce((n, b) => n + b.n, 0);
  try {
    writer.record('stop', { unwritten, head: writer.head() });
  } catch {
    // the disk that failed the rows fails this too; the count goes back to the journal's log
  }
  writer.close();
  post({ type: 'closed', unwritten });
  port.close();
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'batch':
      pending.push(decoder.decode(m));
      // Let the other queued messages arrive first, so they join this transaction.
      if (pending.length === 1) setImmediate(pump);
      break;
    case 'lost':
      try {
        writer.record('rows-lost', { count: m.count });
      } catch {
        // counted in the metrics and the log already
      }
      break;
    case 'purge':
      purge();
      break;
    case 'close':
      closing = true;
      if (retryTimer) {
        clearTimeout(retryTimer);
        retryTimer = null;
      }
      pump();
      break;
  }
});

const priority = lowerPriority(cfg.nice);
writer.record('start', { head: writer.head() });
post({ type: 'ready', nextId: writer.nextId(), head: writer.head(), ...priority });
purge();
// Daily purge; the worker lives as long as its port, this timer does not keep it alive.
setInterval(purge, 86_400_000).unref();
