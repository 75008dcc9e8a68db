import type { Worker } from 'node:worker_threads';
import { siblingModule, startWorker } from '../worker-thread.js';
import type { FromWorker, ToWorker, WorkerConfig } from './worker.js';

/** A writer thread that died is started again after this long, doubling while it keeps failing. */
const RESTART_FIRST_MS = 1000;
const RESTART_MAX_MS = 60_000;

export type ReadyMessage = Extract<FromWorker, { type: 'ready' }>;

/** What the journal does at each turn of its writer thread's life. */
export interface WriterEvents {
  /**
   * The thread can write (`replacing`: it takes over from one that died). Runs inside the thread's
   * own message event, before any other message of it is handled, so counters set here are in
   * place for its first `written`.
   */
  ready(m: ReadyMessage, replacing: boolean): void;
  /** Any later message of the thread. */
  message(m: FromWorker): void;
  /** The thread died while the journal is open; a new one is tried in `retryMs`. */
  died(code: number, retryMs: number): void;
  /** The thread crashed, or a new one could not start (`retryMs`: when the next try is). */
  failed(message: string): void;
  /** A thread that replaces a dead one runs. */
  restarted(): void;
  /** The thread exited after stop(). */
  exited(): void;
}

/**
 * The journal's writer thread through its life: start, death while open, restart with a doubling
 * delay (reset by each written batch), and exit once stopped. The thread's messages and its fate
 * go to `events`; what it held (queues, counters) is the journal's business.
 */
export class WriterThread {
  worker: Worker | null = null;
  private stopping = false;
  private restartMs = RESTART_FIRST_MS;
  private restartTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: () => WorkerConfig,
    private readonly events: WriterEvents,
  ) {}

  /** Starts a thread; resolves once it is ready (after events.ready), rejects if it fails first. */
  async start(replacing = false): Promise<void> {
    const worker = startWorker(siblingModule(import.meta.url, 'worker'), { workerData: this.config() });
    this.worker = worker;
    await new Promise<void>((resolve, reject) => {
      let ready = false;
      const onError = (e: Error) => reject(new Error(`journal writer failed to start: ${e.message}`));
      const onExit = (code: number) => reject(new Error(`journal writer exited while starting (code ${code})`));
      worker.once('error', onError);
      worker.once('exit', onExit);
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          worker.off('error', onError);
          worker.off('exit', onExit);
          ready = true;
          this.events.ready(m, replacing);
          resolve();
        } else if (m.type === 'error' && !ready) reject(new Error(m.message));
        else this.events.message(m);
      });
    });
    worker.on('error', (e) => {
      if (this.worker === worker) this.events.failed(`journal writer crashed: ${e.message}`);
    });
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      if (this.stopping) return this.events.exited();
      this.worker = null;
      this.events.died(code, this.restartMs);
      this.scheduleRestart();
    });
    // The proxy's sockets keep the process alive, not the journal; flush() and close() hold it
    // while they wait for the writer, so no row is left behind on the way out.
    worker.unref();
  }

  post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    this.worker?.postMessage(m, transfer);
  }

  /** A batch was written: the thread works, so the next death is retried soon again. */
  wrote(): void {
    this.restartMs = RESTART_FIRST_MS;
  }

  /** No more restarts; the running thread's exit now goes to events.exited(). */
  stop(): void {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
  }

  /** The next attempt after `restartMs`, which doubles for the one after. */
  private scheduleRestart(): void {
    this.restartTimer = setTimeout(() => void this.restart(), this.restartMs);
    this.restartTimer.unref();
    this.restartMs = Math.min(RESTART_MAX_MS, this.restartMs * 2);
  }

  private async restart(): Promise<void> {
    this.restartTimer = null;
    if (this.stopping) return;
    try {
      await this.start(true);
    } catch (e) {
      this.worker = null;
      this.events.failed(`journal writer could not start again: ${(e as Error).message}; next try in ${this.restartMs / 1000} s`);
      this.scheduleRestart();
      return;
    }
    if (this.stopping) {
      await this.worker?.terminate();
      return;
    }
    this.events.restarted();
  }
}
