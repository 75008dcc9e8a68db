import { getHeapStatistics } from 'node:v8';

/** Where one process's or thread's memory goes, in MiB (SIGUSR2 logs it; docs/design/workers.md). */
export interface MemoryFigures {
  /** The whole process (threads share it). */
  rss: number;
  /** This isolate's JS heap: in use, and reserved by V8. */
  heapUsed: number;
  heapTotal: number;
  /** Buffers and typed arrays outside the heap, SharedArrayBuffers included (each thread counts those it views). */
  arrayBuffers: number;
  external: number;
}

const mib = (n: number): number => Math.round((n / 1048576) * 10) / 10;

export function memoryFigures(): MemoryFigures {
  // With node --expose-gc, figures after a full collection: what stays, not what waits for the GC.
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  const h = getHeapStatistics();
  return { rss: mib(m.rss), heapUsed: mib(h.used_heap_size), heapTotal: mib(h.total_heap_size), arrayBuffers: mib(m.arrayBuffers), external: mib(m.external) };
}
