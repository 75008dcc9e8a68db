import { setPriority } from 'node:os';
import type { Logger } from '../log.js';
import { setPaced } from './pacer.js';
import type { WriterPriority } from './worker.js';

/**
 * Where the journal's writer thread runs: at its own nice in the background (paced, pacer.ts), or
 * at the proxy's priority while records pile up (boost) or a batch is late (hurry). One renice and
 * one way to give up when the right to renice is lost, for both.
 */
/**
 * Records waiting beyond which a writer running nicer than the proxy is given the proxy's priority
 * (worker.ts), and below which it goes back: at nice 19, pausing in its transactions (pacer.ts), it
 * only keeps up while the proxy leaves it idle time. 16,384 records are ~0.4 s of a saturated
 * core's traffic, enough to ride out a stall of the host without a boost: a boosted writer shares
 * the core evenly with the proxy while it catches up, which costs the requests of that moment
 * more than the backlog does. Half of queueMax when that is smaller, so it still comes first.
 */
const BOOST_AT = 16_384;
const UNBOOST_AT = 512;

export class WriterSchedule {
  private priority: WriterPriority | null = null;
  /** The current writer thread's pacing words: paced exactly while it is boostable. */
  private pace: Int32Array | null = null;
  /** Set while a boost is possible and not in force: the one check on the recording path. */
  boostable = false;
  boosted = false;
  /** The writer has the proxy's priority until the batches late now are committed. */
  hurried = false;
  boosts = 0;
  hurries = 0;

  /** Records waiting at which the writer is boosted, and at which it goes back. */
  readonly boostAt: number;
  readonly unboostAt: number;

  constructor(
    private readonly log: Logger,
    queueMax: number,
  ) {
    this.boostAt = Math.max(1, Math.min(BOOST_AT, Math.floor(queueMax / 2)));
    this.unboostAt = Math.min(UNBOOST_AT, Math.floor(this.boostAt / 8));
  }

  /** The writer thread's priority as set at open (worker.ts); null before. */
  get current(): WriterPriority | null {
    return this.priority;
  }

  /** A new writer thread is ready: in the background (and paced) when it can be boosted back. */
  started(p: WriterPriority, pace: Int32Array): void {
    this.priority = p;
    this.pace = pace;
    this.boostable = p.canBoost && p.nice !== null && p.base !== null && p.nice > p.base;
    setPaced(pace, this.boostable);
  }

  /** The writer thread is gone: nothing to renice until the next one is ready. */
  stopped(): void {
    this.hurried = false;
    this.boosted = false;
    this.boostable = false;
  }

  /** The proxy's priority for a late batch (on), or the writer's own nice back once it is committed. */
  hurry(on: boolean): void {
    if (this.renice(on)) {
      this.hurried = on;
      if (on) this.hurries++;
    } else this.hurried = false;
  }

  /** The proxy's priority while records pile up (unpaced: it catches up), its own nice after (paced again). */
  boost(on: boolean): void {
    if (!this.renice(on)) {
      this.boosted = false;
      return;
    }
    this.boosted = on;
    this.boostable = !on;
    if (on) this.boosts++;
    setPaced(this.pace!, !on);
  }

  /** Sets the thread to the process's priority (true) or its own nice; on failure stops trying, unpaced. */
  private renice(toBase: boolean): boolean {
    const p = this.priority!;
    try {
      setPriority(p.tid!, toBase ? p.base! : p.nice!);
      return true;
    } catch (e) {
      // Lost the right to lower it (or the thread is gone): stay where it is and stop trying;
      // left in the background for good, it must not pause on top of that.
      this.boostable = false;
      setPaced(this.pace!, false);
      this.log.warn(`journal writer priority unchanged: ${(e as Error).message}`);
      return false;
    }
  }
}
