import { createRequire } from 'node:module';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/**
 * Hands a thread's spare heap pages back to the system once it has gone quiet after work (its
 * start-up, a list reload, a burst of traffic). V8 keeps the pages a full GC frees in a pool for
 * later use and only returns them in a memory-reducing GC, which its own memory reducer runs about
 * 100 s after the last full GC at best, and not at all while a trickle of allocation looks "high":
 * a gateway idled at 125 MiB (bundled lists, 2 workers, Node 24) and fell to 114 only when that
 * happened, one start in two (docs/design/workers.md).
 *
 * The only public way to ask for that GC is the inspector's `HeapProfiler.collectGarbage`
 * (node:inspector, in-process; no port is opened): a full, memory-reducing GC of this thread's
 * isolate, 10–20 ms for a gateway's heap. It runs at most once per quiet spell: after a period
 * during which the event loop was busy more than BUSY of the time, at the end of the first period
 * that was not. A trickle of requests never triggers it; a node built without the inspector skips it.
 */
const BUSY = 0.01;

export function releaseHeapWhenIdle(periodMs = 10_000, onReleased?: () => void): () => void {
  // Loaded at the first release, not before: most starts of the CLI never need it.
  let Session: (new () => { connect(): void; post(method: string, cb: () => void): void; disconnect(): void }) | null = null;
  let worked = true; // start-up is work
  let last: EventLoopUtilization = performance.eventLoopUtilization();
  // The period a release ran in is not judged: the GC and V8's sweeping after it would count as
  // the thread's work (20–40 ms for a large heap).
  let released = false;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization > BUSY;
    last = now;
    if (released) {
      released = false;
      return;
    }
    if (busy) worked = true;
    if (busy || !worked) return;
    worked = false;
    try {
      Session ??= (createRequire(import.meta.url)('node:inspector') as { Session: NonNullable<typeof Session> }).Session;
      const s = new Session();
      s.connect();
      released = true;
      s.post('HeapProfiler.collectGarbage', () => {
        // Not from inside the callback: disconnecting there blocks the thread for good (Node 20–24).
        setImmediate(() => s.disconnect());
        onReleased?.();
      });
    } catch {
      // No inspector in this node build: V8's own memory reducer stays the only one.
      clearInterval(timer);
    }
  }, periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
