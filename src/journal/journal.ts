import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionRecord, ProxyObserver } from '../proxy/events.js';
import { BatchEncoder } from './batch.js';
import { OWNER_ONLY } from './files.js';
import { LostRows } from './lost-rows.js';
import { logUncleanStop } from './marker.js';
import { paceWords } from './pacer.js';
import { JournalQuery } from './reader.js';
import type { JournalFilter, JournalHandle, JournalHealth, JournalOptions, ProfileSummary, SearchPage, StatsBucket, StatsRow } from './types.js';
import type { FromWorker, WriterPriority } from './worker.js';
import { WriterThread, type ReadyMessage } from './writer-thread.js';
import { WriterSchedule } from './writer-schedule.js';

export type { JournalHandle, JournalOptions, OverflowPolicy } from './types.js';

export const journalFile = (dir: string): string => join(dir, 'journal.db');

/**
 * Rows per message to the writer. Messages are transferred buffers (batch.ts), not copies; the
 * writer merges what waits into one transaction, so a deep queue makes bigger transactions.
 */
const BATCH_ROWS = 1024;
/** Records waiting that are worth a transaction of their own as soon as the writer is free. */
const SEND_AFTER_COMMIT = 256;
const MAX_IN_FLIGHT = 16;

/**
 * The connection journal as the proxy sees it: an observer that only appends a binary record to a
 * bounded queue (strings by number, batch.ts). Batches go to a worker thread that writes them in
 * SQLite transactions; the proxy thread never touches the disk to record. Reads go through a
 * separate read-only connection.
 */
export class Journal implements ProxyObserver, JournalHandle {
  private encoder = new BatchEncoder(BATCH_ROWS);
  private inFlightBatches = 0;
  private inFlightRows = 0;
  private nextId = 0;
  private ready = false;
  private closed = false;
  private exited = false;
  private readonly writer: WriterThread;
  private timer: NodeJS.Timeout | null = null;
  private tunnelIds = new WeakMap<ConnectionRecord, number>();
  /** Rows and tunnel ends committed (what flush() waits for); rowsWritten counts rows only. */
  private written = 0;
  private rowsWritten = 0;
  private enqueued = 0;
  private readonly lost: LostRows;
  private failing = false;
  private lastError: string | null = null;
  private waiters: { target: number; resolve: () => void }[] = [];
  private closedResolve: ((unwritten: number) => void) | null = null;
  private query: JournalQuery | null = null;
  /** The writer thread's id (Linux), for CPU accounting in benchmarks; null elsewhere. */
  writerTid: number | null = null;
  /** The writer thread's priority: background, boosted or hurried (writer-schedule.ts). */
  private readonly schedule: WriterSchedule;
  private pauses = 0;
  private restarts = 0;
  /** Starts that found the last run ended without closing the journal (marker.ts). */
  private uncleanStops = 0;
  private readonly run = randomUUID();
  /** When each batch in flight was sent (performance.now()), oldest first. */
  private sentAt: number[] = [];

  constructor(private readonly opts: JournalOptions) {
    this.schedule = new WriterSchedule(opts.log, opts.queueMax);
    const pace = paceWords();
    this.writer = new WriterThread(
      () => ({ file: this.file, retentionDays: opts.retentionDays, synchronous: opts.synchronous, retryMs: opts.retryMs, nice: opts.writerNice ?? null, pace, run: this.run, access: opts.access ?? OWNER_ONLY }),
      {
        ready: (m, replacing) => this.writerReady(m, replacing, pace),
        message: (m) => this.onMessage(m),
        died: (code, retryMs) => this.writerDied(code, retryMs),
        failed: (message) => this.fail(message),
        restarted: () => {
          this.lost.record();
          this.send();
        },
        exited: () => {
          this.exited = true;
          this.closedResolve?.(this.depth());
        },
      },
    );
    this.lost = new LostRows(
      opts.log,
      () => (!this.ready ? 'writer not running' : this.opts.overflow === 'allow' ? 'overflow policy "allow"' : 'journal closing'),
      () => this.depth(),
      (count) => {
        if (!this.writer.worker || !this.ready) return false;
        this.writer.post({ type: 'lost', count });
        return true;
      },
    );
  }

  /** The writer thread's priority as set at open (worker.ts); null before. */
  get writerPriority(): WriterPriority | null {
    return this.schedule.current;
  }

  /** Times a writer left behind by the scheduler was given the proxy's priority for its late batch (tick()). */
  get writerHurries(): number {
    return this.schedule.hurries;
  }

  /** Whether the writer thread works in short slices now (pacer.ts): while in the background. */
  get writerPaced(): boolean {
    return this.schedule.boostable;
  }

  get file(): string {
    return journalFile(this.opts.dir);
  }

  /** Starts the writer thread; resolves once the journal can record (ids continue the file's). */
  async open(): Promise<void> {
    await this.writer.start();
    const half = Math.max(1, Math.floor(this.opts.flushMs / 2));
    this.timer = setInterval(() => this.tick(half), half);
    this.timer.unref();
  }

  /**
   * Every half flushMs: what waits goes to the writer, and a writer that has left a batch
   * uncommitted for as long is hurried. At nice 19 the scheduler leaves it aside while the proxy
   * (or anything else on the host) keeps the core busy: rows would wait there for hundreds of
   * milliseconds, all lost by a crash. Hurried, it keeps pausing in its transactions (pacer.ts):
   * only its turn comes sooner.
   */
  private tick(lateMs: number): void {
    this.send();
    const s = this.schedule;
    if (s.boostable && !s.hurried && this.sentAt.length && performance.now() - this.sentAt[0]! >= lateMs) s.hurry(true);
  }

  /** The writer thread can write; see WriterEvents.ready. */
  private writerReady(m: ReadyMessage, replacing: boolean, pace: Int32Array): void {
    if (replacing) {
      this.restarts++;
      // Every id handed out is either in the file (below its next id) or was lost with the
      // thread that died: the difference is exact, whatever it had committed before dying.
      const lostRows = Math.max(0, this.nextId - m.nextId);
      this.opts.log.warn('journal writer restarted', { restarts: this.restarts, lostRows });
      if (lostRows > 0) this.lost.lose(lostRows);
      this.failing = false;
    }
    if (m.unclean) {
      this.uncleanStops++;
      logUncleanStop(this.opts.log, m.unclean);
    }
    this.nextId = m.nextId;
    this.writerTid = m.tid;
    // In the background (boostable), the writer works in short slices; see pacer.ts.
    this.schedule.started({ tid: m.tid, nice: m.nice, base: m.base, canBoost: m.canBoost }, pace);
    this.ready = true;
    this.opts.log.info('journal open', { file: this.file, head: `${m.head.id}:${m.head.hash.slice(0, 16)}`, writerNice: m.nice ?? 'unchanged', boost: m.canBoost ? 'yes' : 'no' });
    const asked = this.opts.writerNice ?? 0;
    if (m.nice !== null && asked > m.nice && !m.canBoost) {
      this.opts.log.warn(`journal writer at nice ${m.nice}, not ${asked}: this process may not raise its priority back when records pile up (give it CAP_SYS_NICE or LimitNICE=+0)`);
    }
  }

  /**
   * The writer thread is gone while the journal is open. Failing closed until a new one runs
   * (under `block`, new work is refused meanwhile), then starting one: a thread that died must not
   * leave a school without internet until someone restarts the service. What it held cannot be
   * sent again (batches are transferred, and number strings against its tables): the new
   * thread starts from fresh tables, and the rows lost are counted once it tells where the file
   * ends. Tunnels open at that moment keep their opening row without its end.
   */
  private writerDied(code: number, retryMs: number): void {
    this.ready = false;
    this.fail(`journal writer exited (code ${code}); restarting it in ${retryMs / 1000} s`);
    this.encoder = new BatchEncoder(BATCH_ROWS);
    this.inFlightBatches = 0;
    this.inFlightRows = 0;
    this.sentAt = [];
    this.tunnelIds = new WeakMap();
    this.schedule.stopped();
    // What flush() callers waited for will not come: settled as lost, not left hanging.
    this.written = this.enqueued;
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  private fail(message: string): void {
    this.failing = true;
    this.lastError = message;
    this.opts.log.error(message);
    this.closedResolve?.(this.depth());
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'written':
        this.writer.wrote();
        this.inFlightBatches -= m.batches;
        this.inFlightRows -= m.count;
        this.sentAt.splice(0, m.batches);
        if (this.schedule.hurried && !this.schedule.boosted) this.schedule.hurry(false);
        this.written += m.count;
        this.rowsWritten += m.rows;
        this.pauses += m.pauses;
        if (this.failing) {
          this.failing = false;
          this.opts.log.warn('journal writes again', { queued: this.depth() });
        }
        this.waiters = this.waiters.filter((w) => (this.written >= w.target ? (w.resolve(), false) : true));
        if (this.schedule.boosted && this.depth() <= this.schedule.unboostAt) this.schedule.boost(false);
        // What waits goes on when there is enough of it to amortise a commit (and its fsync), else
        // at the flush timer or a flush(). Sending whatever trickled in after each commit made
        // many tiny transactions: a tunnel cost the writer ~38 µs a row that way, against ~5.
        // Not waiting for full batches keeps each transaction short on a shared core.
        if (this.encoder.records >= SEND_AFTER_COMMIT || this.encoder.hasSealed || (this.waiters.length && this.encoder.records)) this.send();
        break;
      case 'error':
        if (!this.failing) this.opts.log.error(`journal cannot write: ${m.message}`, { policy: this.opts.overflow });
        this.failing = true;
        this.lastError = m.message;
        break;
      case 'purged': {
        const r = m.result as { partitions: number[]; rows: number; retentionDays: number };
        this.opts.log.info('journal purge', { retentionDays: r.retentionDays, months: r.partitions.join(',') || 'none', rows: r.rows });
        break;
      }
      case 'closed':
        this.closedResolve?.(m.unwritten);
        break;
    }
  }

  private depth(): number {
    return this.encoder.records + this.inFlightRows;
  }

  /** Posts the queued rows to the writer (a bounded number of messages in flight: back-pressure shows as depth). */
  private send(all = false): void {
    if (!this.writer.worker) return;
    while (all || this.inFlightBatches < MAX_IN_FLIGHT) {
      const m = this.encoder.next();
      if (!m) return;
      this.inFlightBatches++;
      this.inFlightRows += m.n;
      this.sentAt.push(performance.now());
      this.writer.post({ type: 'batch', ...m }, [m.buf]);
    }
  }

  /** The proxy asks before taking new work; false under the `block` policy when rows cannot be recorded. */
  admit(): boolean {
    if (this.opts.overflow === 'allow') return true;
    return this.ready && !this.closed && !this.failing && this.depth() < this.opts.queueMax;
  }

  /** Whether a row can be queued now; counts it lost when not. */
  private room(): boolean {
    const full = !this.ready || this.closed || this.depth() >= this.opts.queueMax;
    // Under `block`, connections already admitted are still recorded: the queue's overshoot is
    // bounded by the connections in progress, and admit() refuses new ones meanwhile.
    if (full && (this.opts.overflow === 'allow' || !this.ready || this.closed)) {
      this.lost.lose(1);
      return false;
    }
    return true;
  }

  private queued(): void {
    this.enqueued++;
    if (this.encoder.hasSealed) this.send();
    if (this.schedule.boostable && this.depth() >= this.schedule.boostAt) this.schedule.boost(true);
  }

  private record(rec: ConnectionRecord, id: number): void {
    let path: string | null = null;
    if (rec.scheme === 'http') {
      path = rec.path;
      if (!this.opts.keepQuery) {
        const q = path.indexOf('?');
        if (q !== -1) path = path.slice(0, q);
      }
    }
    const tunnel = rec.kind === 'tunnel';
    this.encoder.row(id, rec.time, rec.scheme === 'connect', rec.client, rec.user, rec.decision, rec.method, rec.host, rec.port, path, rec.status, tunnel ? 0 : rec.bytesIn, tunnel ? 0 : rec.bytesOut, tunnel ? 0 : rec.durationMs);
    this.queued();
  }

  requestDone(rec: ConnectionRecord): void {
    if (!this.room()) return;
    this.record(rec, this.nextId++);
  }

  tunnelOpened(rec: ConnectionRecord): void {
    if (!this.room()) return;
    const id = this.nextId++;
    this.record(rec, id);
    if (rec.status === 200) this.tunnelIds.set(rec, id);
  }

  tunnelClosed(rec: ConnectionRecord): void {
    const id = this.tunnelIds.get(rec);
    if (id === undefined) return;
    this.tunnelIds.delete(rec);
    if (this.closed) return this.lost.lose(1);
    this.encoder.end(id, rec.time, rec.bytesIn, rec.bytesOut, rec.durationMs);
    this.queued();
  }

  /** Cheap: counters only. */
  health(): JournalHealth {
    return {
      writable: this.ready && !this.closed && !this.failing,
      queueDepth: this.depth(),
      rowsWritten: this.rowsWritten,
      rowsLost: this.lost.total,
      writerBoosts: this.schedule.boosts,
      writerPauses: this.pauses,
      writerRestarts: this.restarts,
      uncleanStops: this.uncleanStops,
      lastError: this.lastError,
    };
  }

  /** Resolves once every row recorded so far is committed. */
  flush(): Promise<void> {
    const target = this.enqueued;
    const worker = this.writer.worker;
    if (this.written >= target || !worker || this.exited) return Promise.resolve();
    worker.ref();
    return new Promise((resolve) => {
      this.waiters.push({
        target,
        resolve: () => {
          if (this.waiters.length <= 1 && !this.closed) this.writer.worker?.unref();
          resolve();
        },
      });
      this.send();
    });
  }

  /** Writes what is queued, stops the writer and closes the reader. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.lost.stop();
    this.writer.stop();
    const worker = this.writer.worker;
    if (worker && !this.exited) {
      worker.ref();
      const unwritten = await new Promise<number>((resolve) => {
        this.closedResolve = resolve;
        // Everything left goes now, whatever is in flight; the worker writes it before closing.
        this.send(true);
        const unrecorded = this.lost.unrecorded();
        if (unrecorded > 0) this.writer.post({ type: 'lost', count: unrecorded });
        this.writer.post({ type: 'close' });
      });
      if (unwritten) this.opts.log.error('journal closed with rows it could not write', { count: unwritten });
      await worker.terminate();
    }
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
    this.query?.close();
    this.query = null;
  }

  private reader(): JournalQuery {
    if (!this.query) {
      if (!existsSync(this.file)) throw new Error(`no journal at ${this.file}`);
      // Small export pages: each one is a synchronous query on the proxy's thread.
      this.query = new JournalQuery(this.file, { timezone: this.opts.timezone, pageRows: 500 });
    }
    return this.query;
  }

  search(filter: JournalFilter, page: { limit: number; cursor?: string | null; order?: 'asc' | 'desc' }): SearchPage {
    return this.reader().search(filter, page);
  }

  export(filter: JournalFilter, format: 'csv' | 'jsonl'): AsyncIterable<string> {
    return this.reader().export(filter, format);
  }

  stats(filter: JournalFilter, bucket: StatsBucket): StatsRow[] {
    return this.reader().stats(filter, bucket);
  }

  summary(filter: JournalFilter, top: number): Promise<ProfileSummary[]> {
    return this.reader().summary(filter, top);
  }
}
