import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { BatchDecoder, type BatchMessage, type DecodedBatch } from './batch.js';
import type { FileAccess } from './files.js';
import { findUncleanStop, HEARTBEAT_MS, removeMarker, touchMarker, writeMarker, type UncleanStop } from './marker.js';
import { Pacer } from './pacer.js';
import { JournalWriter } from './writer.js';
import { releaseHeapWhenIdle } from '../heap-release.js';

/** Messages between the journal (proxy thread) and its writer thread. */
export type ToWorker =
  | ({ type: 'batch' } & BatchMessage)
  | { type: 'lost'; count: number }
  | { type: 'purge' }
  | { type: 'close' };

export type FromWorker =
  /** unclean: the last run ended without closing the journal (marker.ts); recorded as an `unclean-stop` event. */
  | ({ type: 'ready'; nextId: number; head: { id: number; hash: string }; unclean: UncleanStop | null } & WriterPriority)
  /** pauses: the writer's pauses (pacer.ts) since its last report. */
  | { type: 'written'; count: number; rows: number; batches: number; pauses: number }
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
  /** The words the journal sets to pace the writer (pacer.ts); absent: never paced. */
  pace?: Int32Array;
  /** This process's run (marker.ts): a writer started again in the same run is no unclean stop. */
  run: string;
  /** Mode and group of the journal's files (files.ts). */
  access: FileAccess;
}

/** The highest nice a writer that cannot be boosted back is given: it must keep up unaided. */
export const UNBOOSTED_NICE_MAX = 5;

export interface WriterPriority {
  /** The writer thread's id (Linux), null elsewhere. */
  tid: number | null;
  /** Its nice value now, null when unknown. */
  nice: number | null;
  /** The process's own nice: what a boost gives the writer. */
  base: number | null;
  /** Whether this process may lower the writer's nice again (root, CAP_SYS_NICE, RLIMIT_NICE). */
  canBoost: boolean;
}

/**
 * On one core the writer's transactions would take the core from the proxy for milliseconds at a
 * time (the scheduler runs a picked thread for a whole slice, up to a 4 ms tick here). A higher
 * nice value for this thread alone makes the scheduler pick it far less often while the proxy has
 * work: at nice 19 the writer runs mostly when the proxy waits, and when it is picked anyway its
 * pauses (pacer.ts) bound how long it keeps the core. On a saturated core it would get ~1.5 % and
 * fall behind, so nice 19 is only used when the journal can boost it back to the process's
 * priority when records pile up (journal.ts). A process that may not lower a nice value again (no root, CAP_SYS_NICE or
 * RLIMIT_NICE: systemd `LimitNICE=+0`) caps the writer at nice 5: about a quarter of a contended
 * core (weights 335 against 1024), above the ~18 % that 50,000 rows/s at ~3.5 µs need.
 * Best effort: no Linux, no change.
 */
function setWriterPriority(nice: number | null | undefined): WriterPriority {
  let tid: number | null = null;
  try {
    tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isInteger(tid) || tid <= 0) return { tid: null, nice: null, base: null, canBoost: false };
    const base = getPriority(tid);
    let canBoost = false;
    if (nice !== null && nice !== undefined && nice > base) {
      // The probe: one step nicer, then back. Failing leaves the thread one step nicer, harmless.
      try {
        setPriority(tid, base + 1);
        setPriority(tid, base);
        canBoost = true;
      } catch {
        canBoost = false;
      }
      const target = canBoost ? nice : Math.min(nice, UNBOOSTED_NICE_MAX);
      // Only ever nicer: a process started at a higher nice value stays there.
      if (target > getPriority(tid)) setPriority(tid, target);
    }
    return { tid, nice: getPriority(tid), base, canBoost };
  } catch {
    return { tid, nice: null, base: null, canBoost: false };
  }
}

const cfg = workerData as WorkerConfig;
releaseHeapWhenIdle();
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

const pacer = cfg.pace ? new Pacer(cfg.pace) : null;
let pausesReported = 0;
let writer: JournalWriter;
try {
  writer = new JournalWriter(cfg.file, { synchronous: cfg.synchronous, pacer: pacer ?? undefined, access: cfg.access });
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
    const pauses = pacer ? pacer.pauses - pausesReported : 0;
    pausesReported += pauses;
    post({ type: 'written', count, rows, batches, pauses });
  }
  if (closing) finish();
}

function finish(): void {
  const unwritten = pending.reduce((n, b) => n + b.n, 0);
  let recorded = false;
  try {
    writer.record('stop', { unwritten, head: writer.head(), lastId: writer.nextId() - 1 });
    recorded = true;
  } catch {
    // the disk that failed the rows fails this too; the count goes back to the journal's log
  }
  writer.close();
  // A stop the file does not tell of is left to the next start to record, as an unclean one.
  if (recorded) removeMarker(cfg.file);
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

const priority = setWriterPriority(cfg.nice);
let unclean: UncleanStop | null = null;
try {
  unclean = findUncleanStop(cfg.file, writer.db, cfg.run);
  if (unclean) writer.record('unclean-stop', unclean);
  writeMarker(cfg.file, cfg.run, cfg.access);
  writer.record('start', { head: writer.head(), lastId: writer.nextId() - 1 });
} catch (e) {
  post({ type: 'error', message: `cannot record the start in ${cfg.file}: ${(e as Error).message}` });
  process.exit(1);
}
post({ type: 'ready', nextId: writer.nextId(), head: writer.head(), unclean, ...priority });
// Says until when this run was alive, should it end without closing the journal.
setInterval(() => touchMarker(cfg.file), HEARTBEAT_MS).unref();
purge();
// Daily purge; the worker lives as long as its port, this timer does not keep it alive.
setInterval(purge, 86_400_000).unref();
