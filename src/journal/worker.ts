import { parentPort, workerData } from 'node:worker_threads';
import type { WireEnd, WireRow } from './row.js';
import { JournalWriter } from './writer.js';

/** Messages between the journal (proxy thread) and its writer thread. */
export type ToWorker =
  | { type: 'batch'; rows: WireRow[]; ends: WireEnd[] }
  | { type: 'lost'; count: number }
  | { type: 'purge' }
  | { type: 'close' };

export type FromWorker =
  | { type: 'ready'; nextId: number; head: { id: number; hash: string } }
  | { type: 'written'; count: number; rows: number; batches: number }
  | { type: 'error'; message: string }
  | { type: 'purged'; result: unknown }
  | { type: 'closed'; unwritten: number };

export interface WorkerConfig {
  file: string;
  retentionDays: number;
  synchronous?: 'FULL' | 'NORMAL' | 'OFF';
  retryMs?: number;
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

const pending: { rows: WireRow[]; ends: WireEnd[] }[] = [];
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
    const b = batches === 1 ? pending[0]! : { rows: pending.flatMap((p) => p.rows), ends: pending.flatMap((p) => p.ends) };
    try {
      writer.write(b.rows, b.ends);
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
    post({ type: 'written', count: b.rows.length + b.ends.length, rows: b.rows.length, batches });
  }
  if (closing) finish();
}

function finish(): void {
  const unwritten = pending.reduce((n, b) => n + b.rows.length + b.ends.length, 0);
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
      pending.push(m);
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

writer.record('start', { head: writer.head() });
post({ type: 'ready', nextId: writer.nextId(), head: writer.head() });
purge();
// Daily purge; the worker lives as long as its port, this timer does not keep it alive.
setInterval(purge, 86_400_000).unref();
