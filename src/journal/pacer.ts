/**
 * Keeps the journal writer's work in short slices while it runs in the background, so that on a
 * core shared with the proxy it never holds the core for long.
 *
 * A nice value only decides how often the scheduler picks a thread, not for how long: once picked,
 * even a nice-19 thread keeps the core until its slice ends (EEVDF protects a running slice; up
 * to one 4 ms tick here). `perf sched` on the pinned gateway at a fixed 23k req/s showed the writer
 * taking the core from a runnable proxy thread 5 to 45 times in 4 s, for 2.5–5.3 ms each time:
 * the requests then in flight wait that long. A writer that sleeps for an instant after every
 * ~0.2 ms of work hands the core back at that point; it takes up again when the proxy waits, or
 * for one short slice when the scheduler picks it.
 *
 * Only while the writer is in the background (nice 19, boostable): once boosted, because records
 * pile up (journal.ts), it works without pauses to catch up. A writer that cannot be boosted
 * never pauses, since it has to keep up unaided. The proxy's thread sets the mode in a shared
 * word, which the writer reads between rows.
 */

/** Index of the mode word in the shared array: PACED or UNPACED. */
const MODE = 0;
/** Index of the word the writer sleeps on (the proxy's thread wakes it when boosting). */
const REST = 1;
const UNPACED = 0;
const PACED = 1;

/** Work between two pauses: well under a scheduler slice, and ~100 rows' worth. */
const SLICE_MS = 0.2;
/** The pause asked for; the kernel's timer slack (50 µs by default) comes on top. */
const REST_MS = 0.02;
/** How many steps (rows, tunnel ends) between two looks at the clock. */
const CHECK_EVERY = 16;

/** The shared words for one writer thread; made by the journal, given to the thread in workerData. */
export function paceWords(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(2 * Int32Array.BYTES_PER_ELEMENT));
}

/** The proxy's side: background (paced) or catching up (unpaced), effective at the writer's next look. */
export function setPaced(words: Int32Array, paced: boolean): void {
  Atomics.store(words, MODE, paced ? PACED : UNPACED);
  if (!paced) Atomics.notify(words, REST);
}

/** The writer's side. */
export class Pacer {
  private since = 0;
  private rows = 0;
  /** Pauses taken (tests, and the writer's figures). */
  pauses = 0;

  constructor(
    private readonly words: Int32Array,
    private readonly sliceMs = SLICE_MS,
    private readonly restMs = REST_MS,
  ) {}

  /** A transaction starts: so does a slice (the writer was waiting for work until now). */
  start(): void {
    this.since = performance.now();
    this.rows = 0;
  }

  /** After each row or tunnel end: pauses when the slice is used up and the writer is in the background. */
  step(): void {
    if (++this.rows < CHECK_EVERY) return;
    this.rows = 0;
    const now = performance.now();
    if (now - this.since < this.sliceMs) return;
    if (Atomics.load(this.words, MODE) === PACED) {
      Atomics.wait(this.words, REST, 0, this.restMs);
      this.pauses++;
      this.since = performance.now();
    } else this.since = now;
  }
}
