import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { OverrideTable, type Override } from './overrides.js';

export const overridesFile = (dataDir: string) => join(dataDir, 'overrides.json');

export interface OverrideStoreOptions {
  /** `<dataDir>/overrides.json` (0600); null = kept in memory only (a cluster worker: the primary persists). */
  file: string | null;
  /** The clock expiries are measured on (tests inject one). */
  now?: () => number;
}

/**
 * Teachers' unblocks in force, persisted so they survive a restart until they expire. Every change
 * builds a new OverrideTable (what the gate reads) and tells the listeners (the cluster primary
 * passes it to its workers). An expired override is dropped at its expiry by a timer, and is never
 * honoured past it in between (the table checks the time of each request).
 */
export class OverrideStore {
  private current = OverrideTable.EMPTY;
  private readonly listeners: ((list: readonly Override[]) => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  readonly now: () => number;

  constructor(private readonly opts: OverrideStoreOptions) {
    this.now = opts.now ?? Date.now;
  }

  get table(): OverrideTable {
    return this.current;
  }

  /** Active overrides, soonest to expire first. */
  list(): Override[] {
    const now = this.now();
    return this.current.list.filter((o) => o.expires > now).sort((a, b) => a.expires - b.expires);
  }

  onChange(fn: (list: readonly Override[]) => void): void {
    this.listeners.push(fn);
  }

  /** Reads the file (a missing one is an empty list); expired entries are dropped. */
  async load(): Promise<void> {
    if (!this.opts.file) return;
    let doc: { overrides?: Override[] } = {};
    try {
      doc = JSON.parse(await readFile(this.opts.file, 'utf8')) as typeof doc;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${this.opts.file}: ${(e as Error).message}`);
    }
    const now = this.now();
    const valid = (Array.isArray(doc.overrides) ? doc.overrides : []).filter((o) => o && typeof o.id === 'string' && typeof o.host === 'string' && typeof o.network === 'string' && typeof o.expires === 'number' && o.expires > now);
    this.set(valid);
  }

  /** Replaces the whole list (a worker told by its primary). */
  replace(list: readonly Override[]): void {
    this.set(list);
  }

  add(o: Omit<Override, 'id' | 'created' | 'expires'> & { durationMs: number }): Promise<Override> {
    return this.serial(async () => {
      const now = this.now();
      const { durationMs, ...rest } = o;
      const made: Override = Object.freeze({ id: `ov_${randomBytes(6).toString('hex')}`, ...rest, created: now, expires: now + durationMs });
      const next = [...this.list(), made];
      await this.save(next);
      this.set(next);
      return made;
    });
  }

  /** Ends an override before its time; null when there is no active one with that id. */
  revoke(id: string): Promise<Override | null> {
    return this.serial(async () => {
      const active = this.list();
      const hit = active.find((o) => o.id === id) ?? null;
      if (!hit) return null;
      const next = active.filter((o) => o !== hit);
      await this.save(next);
      this.set(next);
      return hit;
    });
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async save(list: readonly Override[]): Promise<void> {
    const file = this.opts.file;
    if (!file) return;
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify({ overrides: list }, null, 1) + '\n', { mode: 0o600 });
    await rename(tmp, file);
  }

  private set(list: readonly Override[]): void {
    this.current = new OverrideTable(list);
    for (const fn of this.listeners) fn(list);
    this.arm();
  }

  /** Wakes at the next expiry to drop what expired (and rewrite the file). */
  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.current.size) return;
    const next = Math.min(...this.current.list.map((o) => o.expires));
    const wait = Math.min(Math.max(next - this.now(), 0) + 5, 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.serial(async () => {
        const active = this.list();
        if (active.length === this.current.size) return this.arm();
        await this.save(active).catch(() => undefined);
        this.set(active);
      });
    }, wait);
    this.timer.unref();
  }
}
