import type { VigieConfig } from '../config/types.js';
import type { Gateway } from '../gateway.js';
import type { Fields, Logger } from '../log.js';
import type { Override } from '../policy/overrides.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { ProxyObserver } from '../proxy/events.js';
import type { FromWorker, PolicyNotice, ToWorker } from './protocol.js';
import { memoryFigures } from './memory.js';
import { RelayReceiver } from './relay.js';
import type { SharedLists } from './shared-lists.js';

/** One proxy worker as the primary sees it: a forked process or a worker thread. */
export interface Member {
  /** Who it is in log lines (pid, thread id). */
  readonly ids: Fields;
  /** The process id (threads: the gateway's own). */
  readonly pid: number;
  send(m: ToWorker): void;
  isDead(): boolean;
  /** Ends it now (stop did not finish in time, or it never started). */
  kill(): void;
}

/**
 * How proxy workers run: processes (node:cluster, every Node) or threads sharing one copy of the
 * lists (worker_threads with SO_REUSEPORT, Node ≥ 22.12). One is chosen at start (runtime.ts).
 */
export interface WorkerRuntime {
  readonly kind: 'processes' | 'threads';
  /** Before the gateway is made (e.g. fix the ports every thread must share). */
  prepare(config: VigieConfig): Promise<void>;
  spawn(onMessage: (m: FromWorker) => void, onExit: (code: number | null, signal: string | null) => void): Member;
  /** The lists a policy notice carries (threads: shared memory); undefined: workers read the disk. */
  shareLists(gateway: Gateway): SharedLists | null | undefined;
}

/** How often the primary looks at its journal's admit state besides after each event batch. */
const ADMIT_POLL_MS = 50;
/** A worker that dies sooner than this after its start is restarted after a pause, not at once. */
const QUICK_DEATH_MS = 5_000;
const RESTART_PAUSE_MS = 1_000;

/** Counts what the main thread's own proxy served (its stop line, as a worker's). */
export class ServedCount implements ProxyObserver {
  requests = 0;
  tunnels = 0;
  requestDone(): void {
    this.requests++;
  }
  tunnelOpened(): void {
    this.tunnels++;
  }
}

interface Slot {
  id: number;
  worker: Member;
  started: number;
  listening: boolean;
  /** Last policy notice this worker applied. */
  appliedSeq: number;
  stopped: boolean;
  /** Sent its init: later notices may follow. */
  inited: boolean;
  /** Called when it ends (stop waits on them). */
  exited: (() => void)[];
}

/**
 * The primary of `vigie start` with workers. It runs the only journal (so rows are numbered in
 * one order), the metrics, the API and the policy store; N workers (processes or threads, see
 * WorkerRuntime) share the proxy ports. With `mainServes` (threads) the main thread is worker 0:
 * its gateway listens beside `workers − 1` threads and records straight into its own observers.
 * It relays their events to its observers, pushes policy changes and the journal's admit state to
 * them, restarts a worker that dies, and stops them first on the way out.
 */
export class ClusterPrimary {
  private readonly slots = new Map<number, Slot>();
  private nextKey = 0;
  private readonly relay: RelayReceiver;
  private gateway: Gateway | null = null;
  private seq = 0;
  private listsGen = 0;
  private lastUt1: unknown = undefined;
  private started = false;
  private stopping = false;
  private admitState = false;
  private admitTimer: NodeJS.Timeout | null = null;
  private readonly admitLogged = [0, 0];
  private noticeQueued = false;
  private waiters: { check: () => boolean; resolve: () => void }[] = [];
  private firstListen: { resolve: (a: { host: string; port: number }[]) => void; reject: (e: Error) => void } | null = null;

  /** What the main thread's own proxy served (with `mainServes`): give it to the Gateway as a proxy observer. */
  readonly served = new ServedCount();

  constructor(
    private readonly count: number,
    private readonly log: Logger,
    readonly runtime: WorkerRuntime,
    /** The main thread serves too (threads runtime): `count − 1` workers are started. */
    readonly mainServes = false,
  ) {
    // Workers' LDAP checks count in this process's metrics, as their traffic does.
    this.relay = new RelayReceiver(() => this.gateway?.observers ?? [], (counts) => this.gateway?.identity.addRelayedCounts(counts));
  }

  /** Give this to the Gateway as `onSwap`: each new snapshot is announced to the workers. */
  readonly onSwap = (s: PolicySnapshot): void => {
    if (s.indexes.ut1 !== this.lastUt1) {
      this.lastUt1 = s.indexes.ut1;
      this.listsGen++;
    }
    if (!this.started || this.noticeQueued) return;
    // A reload swaps twice in a row (lists, then rules): one notice carries both. Its number is
    // taken now, so settled() called right after the change waits for it.
    this.noticeQueued = true;
    this.seq++;
    setImmediate(() => {
      this.noticeQueued = false;
      this.broadcastPolicy();
    });
  };

  /** Give this to the Gateway as `onOverrides`: every worker gets the new list at once. */
  readonly onOverrides = (list: readonly Override[]): void => {
    for (const s of this.slots.values()) if (s.inited) this.post(s, { t: 'overrides', list });
  };

  /** Starts the workers; resolves with the addresses once every one of them listens. */
  async listen(gateway: Gateway): Promise<{ host: string; port: number }[]> {
    this.gateway = gateway;
    // Leaf certificates are made in the workers: their counts are the gateway's.
    gateway.relayedLeaves = () => this.relay.leafCounts();
    this.admitState = gateway.admit();
    // Sessions are declared to the primary (API): every worker identifies clients with the same ones.
    gateway.identity.sessions.onChange((c) => {
      for (const s of this.slots.values()) if (s.inited) this.post(s, { t: 'sessions', changes: [c] });
    });
    // Failed LDAP checks are counted here for every worker: an address over the limit is refused by all.
    const verifier = gateway.identity.verifier;
    if (verifier) verifier.onLimited = (client, until) => this.toInited({ t: 'auth-limits', list: [[client, until]] });
    this.admitTimer = setInterval(() => this.pushAdmit(), ADMIT_POLL_MS);
    this.admitTimer.unref();
    const listening = new Promise<{ host: string; port: number }[]>((resolve, reject) => (this.firstListen = { resolve, reject }));
    for (let id = 1; id <= this.count - (this.mainServes ? 1 : 0); id++) this.fork(id);
    return listening;
  }

  /** The gateway serves its full policy: workers get it; resolves once they all apply it. */
  async policyReady(): Promise<void> {
    this.started = true;
    this.seq++;
    this.broadcastPolicy();
    await this.settled();
  }

  /** Resolves once every live worker applied the latest policy notice (bounded wait). */
  settled(timeoutMs = 30_000): Promise<void> {
    const check = () => [...this.slots.values()].every((s) => !s.listening || s.stopped || s.appliedSeq >= this.seq);
    if (check()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        this.log.warn('cluster: not every worker applied the latest policy in time', { seq: this.seq, waitedMs: timeoutMs });
        resolve();
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push({ check, resolve: done });
    });
  }

  /** The main thread's own proxy listens (with `mainServes`): said as a worker's listening is. */
  mainListening(addresses: readonly { host: string; port: number }[]): void {
    this.log.debug('proxy worker listening', { worker: 0, pid: process.pid, thread: 0, addresses: addresses.map((a) => `${a.host}:${a.port}`).join(',') });
  }

  /** The main thread's own proxy stopped (with `mainServes`): its line, as a worker's. */
  mainStopped(): void {
    if (this.mainServes) this.log.info('proxy worker stopped', { worker: 0, pid: process.pid, thread: 0, requests: this.served.requests, tunnels: this.served.tunnels });
  }

  /** Logs this process's memory figures, then each worker's as it answers (SIGUSR2). */
  logMemory(): void {
    this.log.info('memory (MiB)', { worker: 'primary', pid: process.pid, ...memoryFigures() });
    for (const s of this.slots.values()) if (s.inited) this.post(s, { t: 'memory' });
  }

  /** The workers' process ids (threads: the gateway's own pid, once per thread). */
  get workerPids(): number[] {
    return [...this.slots.values()].map((s) => s.worker.pid);
  }

  private fork(id: number): void {
    const key = ++this.nextKey;
    const slot: Slot = { id, worker: null as unknown as Member, started: Date.now(), listening: false, appliedSeq: 0, stopped: false, inited: false, exited: [] };
    this.slots.set(key, slot);
    slot.worker = this.runtime.spawn(
      (m) => this.onMessage(key, slot, m),
      (code, signal) => this.onExit(key, code, signal),
    );
  }

  private toInited(m: ToWorker): void {
    for (const s of this.slots.values()) if (s.inited) this.post(s, m);
  }

  private post(slot: Slot, m: ToWorker): void {
    slot.worker.send(m);
  }

  private onMessage(key: number, slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'hello':
        slot.inited = true;
        this.post(slot, { t: 'init', id: slot.id, config: this.gateway!.config, admit: this.admitState, policy: this.started ? this.notice() : null, overrides: this.gateway!.overrides.list(), portal: { base: this.gateway!.identity.portal.base, key: this.gateway!.identity.portal.key.toString('base64') } });
        this.post(slot, { t: 'sessions', changes: this.gateway!.identity.sessions.list().map((session) => ({ t: 'open' as const, session })) });
        if (this.gateway!.identity.verifier) this.post(slot, { t: 'auth-limits', list: this.gateway!.identity.verifier.limits() });
        break;
      case 'auth-failed':
        this.gateway?.identity.verifier?.countFailure(m.client);
        break;
      case 'ev':
        this.relay.receive(key, m.b);
        this.pushAdmit();
        break;
      case 'listening':
        slot.listening = true;
        if (this.started && slot.appliedSeq < this.seq) this.post(slot, this.notice());
        if (this.firstListen && [...this.slots.values()].every((s) => s.listening)) {
          this.firstListen.resolve(m.addresses);
          this.firstListen = null;
        }
        break;
      case 'listen-failed':
        if (this.firstListen) {
          this.firstListen.reject(new Error(m.message));
          this.firstListen = null;
        } else this.log.error(`proxy worker cannot listen: ${m.message}`, { worker: slot.id });
        break;
      case 'applied':
        slot.appliedSeq = Math.max(slot.appliedSeq, m.seq);
        if (m.error) this.log.error(`proxy worker kept its previous policy: ${m.error}`, { worker: slot.id });
        this.waiters = this.waiters.filter((w) => (w.check() ? (w.resolve(), false) : true));
        break;
      case 'stopped':
        slot.stopped = true;
        break;
      case 'memory':
        this.log.info('memory (MiB)', { worker: slot.id, ...slot.worker.ids, ...m.m });
        break;
      case 'report':
        this.gateway?.reports?.add(m.r).catch((e: Error) => this.log.error(`report not queued: ${e.message}`));
        break;
    }
  }

  private onExit(key: number, code: number | null, signal: string | null): void {
    const slot = this.slots.get(key);
    if (!slot) return;
    this.slots.delete(key);
    this.relay.forget(key);
    this.gateway?.identity.idle.reset();
    for (const f of slot.exited.splice(0)) f();
    this.waiters = this.waiters.filter((w) => (w.check() ? (w.resolve(), false) : true));
    if (this.stopping) return;
    const quick = Date.now() - slot.started < QUICK_DEATH_MS;
    this.log.error('proxy worker died, starting another', { worker: slot.id, ...slot.worker.ids, code, signal, inMs: quick ? RESTART_PAUSE_MS : 0 });
    if (this.firstListen && !slot.listening) {
      this.firstListen.reject(new Error(`proxy worker ${slot.id} exited before listening (code ${code}, signal ${signal})`));
      this.firstListen = null;
      return;
    }
    setTimeout(() => !this.stopping && this.fork(slot.id), quick ? RESTART_PAUSE_MS : 0).unref();
  }

  private notice(): PolicyNotice {
    const shared = this.runtime.shareLists(this.gateway!);
    return { t: 'policy', seq: this.seq, config: this.gateway!.config, lists: this.listsGen, ...(shared === undefined ? {} : { shared }) };
  }

  private broadcastPolicy(): void {
    const n = this.notice();
    for (const s of this.slots.values()) if (s.listening) this.post(s, n);
  }

  private pushAdmit(): void {
    const ok = this.gateway ? this.gateway.admit() : false;
    if (ok === this.admitState) return;
    this.admitState = ok;
    // A journal at its limit flips this at every batch: one line per state and 10 s is enough.
    const now = Date.now();
    if (now - this.admitLogged[ok ? 1 : 0] > 10_000) {
      this.admitLogged[ok ? 1 : 0] = now;
      if (!ok) this.log.warn('cluster: workers refuse new connections while the journal cannot record them');
      else this.log.info('cluster: workers take new connections again');
    }
    for (const s of this.slots.values()) if (s.inited) this.post(s, { t: 'admit', ok });
  }

  /** Workers stop accepting, finish in flight (cut after `graceMs`), send their last events, exit. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.admitTimer) clearInterval(this.admitTimer);
    const live = [...this.slots.values()];
    const exits = live.map((s) => new Promise<void>((resolve) => (s.worker.isDead() ? resolve() : s.exited.push(resolve))));
    // One still starting serves nothing yet and may not read messages yet.
    for (const s of live) if (s.inited) this.post(s, { t: 'stop', graceMs });
    else s.worker.kill();
    // A worker that does not finish well after its grace period is killed: its last events are lost.
    const deadline = setTimeout(() => {
      for (const s of live) if (!s.worker.isDead()) {
        this.log.error('proxy worker did not stop in time, killing it', { worker: s.id, ...s.worker.ids });
        s.worker.kill();
      }
    }, graceMs + 10_000);
    await Promise.all(exits);
    clearTimeout(deadline);
  }
}
