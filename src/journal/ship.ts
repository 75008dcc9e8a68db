import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { FleetReport, FromShipper, ShipperConfig, ShipStatus, ToShipper } from './ship-worker.js';

export type { FleetReport, ShipStatus } from './ship-worker.js';

export interface ShipOptions {
  /** The journal's SQLite file (read only). */
  file: string;
  /** PostgreSQL connection URL of the academy's copy. */
  url: string;
  /** This gateway's name in the copy (unique in the academy). */
  gatewayId: string;
  /** Establishment (UAI) this gateway serves, for academy-wide filters. */
  uai?: string | null;
  /** Rows per PostgreSQL transaction (about: links are not split). */
  batchRows?: number;
  /** Lag beyond which the gateway reports itself degraded. */
  maxLagSeconds?: number;
  /** Seconds between fleet status reports (0: none). */
  fleetSeconds?: number;
  pollMs?: number;
  retryMs?: number;
  /** Nice value of the shipping thread (Linux); default 19, null to leave it. */
  nice?: number | null;
  /**
   * Whether the gateway is busy now (its journal queue deep, its event loop saturated): shipping
   * waits meanwhile, as long as its lag stays under half of maxLagSeconds. Asked every 250 ms.
   */
  busy?: () => boolean;
  log: Logger;
}

const RESTART_MS = 5000;

/**
 * Ships the journal to the academy's PostgreSQL from a worker thread of its own (ship-worker.ts):
 * it reads the SQLite file through a read-only connection and talks to PostgreSQL, so neither the
 * proxy's event loop nor the journal's writer thread waits for it. The file is the queue; where to
 * resume is PostgreSQL's to say (the last link it acknowledged), so a restart of either side loses
 * and duplicates nothing.
 */
export class JournalShipper {
  private worker: Worker | null = null;
  private closed = false;
  private closedWait: (() => void) | null = null;
  private fleetTimer: NodeJS.Timeout | null = null;
  private busyTimer: NodeJS.Timeout | null = null;
  private held = false;
  private restartTimer: NodeJS.Timeout | null = null;
  private wasConnected: boolean | null = null;
  private lagWarned = false;
  private current: ShipStatus = { connected: false, lagSeconds: null, acknowledged: null, rowsShipped: 0, batches: 0, lastError: null, lastSuccess: 0 };
  private shippedBefore = 0;
  readonly maxLagSeconds: number;
  /**
   * Told when the lag passes maxLagSeconds and when it is back under it (the gateway's security
   * event), as soon as the shipping thread reports it: at least every second while PostgreSQL is
   * away, every poll (1 s) while connected.
   */
  onLateChange: ((late: boolean, lagSeconds: number) => void) | null = null;

  constructor(
    private readonly opts: ShipOptions,
    /** The gateway's status for the fleet report, read every `fleetSeconds`. */
    private readonly fleetStatus: (() => FleetReport) | null = null,
  ) {
    this.maxLagSeconds = opts.maxLagSeconds ?? 300;
  }

  get status(): ShipStatus & { maxLagSeconds: number; late: boolean } {
    const s = this.current;
    return { ...s, rowsShipped: this.shippedBefore + s.rowsShipped, maxLagSeconds: this.maxLagSeconds, late: s.lagSeconds !== null && s.lagSeconds > this.maxLagSeconds };
  }

  start(): void {
    const o = this.opts;
    const cfg: ShipperConfig = {
      file: o.file,
      url: o.url,
      gatewayId: o.gatewayId,
      uai: o.uai ?? null,
      batchRows: o.batchRows ?? 5000,
      maxLagSeconds: this.maxLagSeconds,
      pollMs: o.pollMs ?? 1000,
      retryMs: o.retryMs ?? 1000,
      nice: o.nice === undefined ? 19 : o.nice,
    };
    const here = import.meta.url;
    const worker = here.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(new URL('./ship-worker.ts', here).href)}); })`, { eval: true, workerData: cfg })
      : new Worker(new URL('./ship-worker.js', here), { workerData: cfg });
    this.worker = worker;
    worker.on('message', (m: FromShipper) => {
      if (m.type === 'status') this.onStatus(m.status);
      else if (m.type === 'closed') this.closedWait?.();
    });
    worker.on('error', (e) => o.log.error(`journal shipping thread failed: ${e.message}`));
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.closedWait?.();
      if (this.closed) return;
      // Counted so far stays counted; the new thread resumes from PostgreSQL's acknowledgement.
      this.shippedBefore += this.current.rowsShipped;
      this.current = { ...this.current, rowsShipped: 0, connected: false };
      o.log.error(`journal shipping thread exited; restarting it in ${RESTART_MS / 1000} s`);
      this.restartTimer = setTimeout(() => this.start(), RESTART_MS);
      this.restartTimer.unref();
    });
    worker.unref();
    this.held = false;
    if (o.busy && !this.busyTimer) {
      this.busyTimer = setInterval(() => {
        const busy = o.busy!();
        if (busy !== this.held) {
          this.held = busy;
          this.post({ type: 'hold', on: busy });
        }
      }, 250);
      this.busyTimer.unref();
    }
    if (this.fleetStatus && (o.fleetSeconds ?? 60) > 0 && !this.fleetTimer) {
      const send = () => {
        try {
          this.post({ type: 'fleet', report: this.fleetStatus!() });
        } catch (e) {
          o.log.warn(`fleet report not sent: ${(e as Error).message}`);
        }
      };
      send();
      this.fleetTimer = setInterval(send, (o.fleetSeconds ?? 60) * 1000);
      this.fleetTimer.unref();
    }
  }

  /** Sends a fleet report now (tests; the timer does it every `fleetSeconds`). */
  reportNow(): void {
    if (this.fleetStatus) this.post({ type: 'fleet', report: this.fleetStatus() });
  }

  private post(m: ToShipper): void {
    this.worker?.postMessage(m);
  }

  private onStatus(s: ShipStatus): void {
    const log = this.opts.log;
    this.current = s;
    if (s.connected !== this.wasConnected) {
      if (s.connected) log.info('journal shipping to PostgreSQL', { gateway: this.opts.gatewayId, acknowledged: s.acknowledged ?? 0 });
      else if (s.lastError) log.error(`journal shipping: PostgreSQL unreachable or failing, retrying: ${s.lastError}`, { gateway: this.opts.gatewayId });
      this.wasConnected = s.connected;
    }
    const late = s.lagSeconds !== null && s.lagSeconds > this.maxLagSeconds;
    if (late !== this.lagWarned) {
      if (late) log.warn('journal shipping lags behind', { lagSeconds: Math.round(s.lagSeconds!), maxLagSeconds: this.maxLagSeconds });
      else log.info('journal shipping caught up', { lagSeconds: Math.round(s.lagSeconds ?? 0) });
      this.lagWarned = late;
      this.onLateChange?.(late, s.lagSeconds ?? 0);
    }
  }

  /** Resolves once PostgreSQL acknowledged every link up to `link` (tests and benchmarks). */
  async waitFor(link: number, timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while ((this.current.acknowledged ?? -1) < link) {
      if (Date.now() > until) throw new Error(`journal shipping: link ${link} not acknowledged within ${timeoutMs} ms (at ${this.current.acknowledged}; ${this.current.lastError ?? 'no error'})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Finishes the batch in progress and stops. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.fleetTimer) clearInterval(this.fleetTimer);
    if (this.busyTimer) clearInterval(this.busyTimer);
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const worker = this.worker;
    if (!worker) return;
    worker.ref();
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 15_000);
      this.closedWait = () => {
        clearTimeout(t);
        resolve();
      };
      worker.postMessage({ type: 'close' } satisfies ToShipper);
    });
    await worker.terminate();
    this.worker = null;
  }
}
