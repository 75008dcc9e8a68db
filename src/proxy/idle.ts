/**
 * Inactivity limits for many connections at once, checked by one timer.
 *
 * `socket.setTimeout` gives each socket a timer that node refreshes on every read and write: four
 * refreshes per proxied request (client read, origin write, origin read, client write), and a
 * tunnel creates and cancels three timers. With both gateways pinned to one core at once (same
 * host noise), dropping them saved ~1.5 µs per small request at a fixed rate and ~5 µs per tunnel
 * setup. Here a connection notes its last activity in a field, from the sweeper's clock (no call),
 * and one sweep per tick ends those that stayed quiet past their limit.
 *
 * The clock is read at each sweep, so a note can be up to one tick old: a member is ended when
 * `now - since > limit + tick`, never before its limit, at most about two ticks after it.
 */
export interface IdleMember {
  /** The sweeper's clock at the last activity (`sweeper.now`). */
  idleSince: number;
  /** Milliseconds of inactivity allowed. */
  idleLimit: number;
  /**
   * Past the limit. Returns true when the member is done (it is dropped), false to be kept and
   * counted from now (say, an exchange is in progress and another limit applies to it).
   */
  onIdle(): boolean;
}

export class IdleSweeper {
  /** `performance.now()` as of the last sweep (or the first member). */
  now = performance.now();
  private readonly members = new Set<IdleMember>();
  private timer: NodeJS.Timeout | null = null;
  private tickUsed = 0;
  private stopped = false;

  /** `tickMs` is asked at each sweep: limits may change with a configuration reload. */
  constructor(private readonly tickMs: () => number) {}

  /** Watches `m` from now on with `limitMs` of inactivity allowed. */
  add(m: IdleMember, limitMs: number): void {
    if (this.timer === null) {
      if (this.stopped) return;
      this.now = performance.now();
      this.arm();
    }
    m.idleSince = this.now;
    m.idleLimit = limitMs;
    this.members.add(m);
  }

  delete(m: IdleMember): void {
    this.members.delete(m);
  }

  get size(): number {
    return this.members.size;
  }

  /** No more sweeps (the proxy is closing; its sockets are destroyed by their owners). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.members.clear();
  }

  private arm(): void {
    this.tickUsed = this.tickMs();
    this.timer = setTimeout(this.sweep, this.tickUsed);
    // The members' sockets keep the process alive, not this timer.
    this.timer.unref();
  }

  private readonly sweep = (): void => {
    this.timer = null;
    const now = (this.now = performance.now());
    const slack = this.tickUsed;
    for (const m of this.members) {
      if (now - m.idleSince <= m.idleLimit + slack) continue;
      let done = true;
      try {
        done = m.onIdle();
      } catch {
        // Dropped all the same: one member that throws must not stop the sweep for the others.
      }
      if (done) this.members.delete(m);
      else m.idleSince = now;
    }
    if (this.members.size > 0 && !this.stopped) this.arm();
  };
}

/** One tick per eighth of the shortest limit, between 10 ms and 1 s. */
export const tickFor = (...limitsMs: number[]): number => Math.min(1000, Math.max(10, Math.floor(Math.min(...limitsMs) / 8)));
