import { createReadStream } from 'node:fs';
import { appendFile, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

export interface AuditEntry {
  /** ISO 8601. */
  time: string;
  /** Token name and id (`who`); `-` when none. */
  actor: string;
  tokenId: string | null;
  role: string | null;
  /** Client address of the API call (`from where`). */
  source: string;
  /** What: `lists.replace`, `journal.search`, `journal.export`, `token.create`, ... */
  action: string;
  target: string | null;
  outcome: 'ok' | 'refused' | 'failed';
  status: number;
  details?: Record<string, unknown>;
}

export interface AuditQuery {
  limit: number;
  from?: number;
  to?: number;
  action?: string;
  actor?: string;
}

const lineOf = (entry: Omit<AuditEntry, 'time'>, time: Date): string => JSON.stringify({ time: time.toISOString(), ...entry }) + '\n';

/**
 * Append-only JSON lines under `<dataDir>/audit.jsonl`. Every line is written before the API
 * answers, so an action whose record could not be written is reported as failed to the caller.
 * Entries older than the retention are purged (`purge`): they name the pupils' addresses and hosts
 * that supervisors searched for, so they are kept as long as the journal rows, not longer.
 */
export class AuditLog {
  private chain: Promise<unknown> = Promise.resolve();
  readonly file: string;

  constructor(
    dataDir: string,
    private readonly retentionDays?: number,
  ) {
    this.file = join(dataDir, 'audit.jsonl');
  }

  record(entry: Omit<AuditEntry, 'time'>): Promise<void> {
    const line = lineOf(entry, new Date());
    return this.serial(() => this.append(line));
  }

  private async append(line: string): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true });
    await appendFile(this.file, line, { mode: 0o600 });
  }

  /** Runs `fn` after every append and purge already asked for, so none of them interleave. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /**
   * Drops the entries older than the retention and records that it did (`audit.purge`); returns
   * how many lines went. Entries are appended in time order, so the file is cut before its first
   * line within the retention: an unreadable line among expired ones goes with them, everything
   * after the cut stays as it is. The rest is copied to a new file that replaces the old one.
   */
  purge(now = Date.now()): Promise<number> {
    const days = this.retentionDays;
    if (days === undefined) return Promise.resolve(0);
    const cutoff = now - days * 86_400_000;
    return this.serial(async () => {
      let cut: { offset: number; lines: number };
      try {
        cut = await this.cutOffset(cutoff);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
        throw e;
      }
      if (cut.offset === 0) return 0;
      const tmp = `${this.file}.purge`;
      try {
        await this.copyFrom(cut.offset, tmp);
        await rename(tmp, this.file);
      } catch (e) {
        await rm(tmp, { force: true });
        throw e;
      }
      const details = { removed: cut.lines, retentionDays: days, before: new Date(cutoff).toISOString() };
      await this.append(lineOf({ actor: 'vigie', tokenId: null, role: null, source: 'retention', action: 'audit.purge', target: null, outcome: 'ok', status: 0, details }, new Date(now)));
      return cut.lines;
    });
  }

  /** Copies the file from `offset` to its end into `to` (synced). */
  private async copyFrom(offset: number, to: string): Promise<void> {
    const out = await open(to, 'w', 0o600);
    try {
      const src = await open(this.file, 'r');
      try {
        // From the cut to the end as it is then, and on to whatever another process (the token
        // CLI) appended meanwhile, just before the new file takes the old one's place.
        const buf = Buffer.allocUnsafe(1 << 20);
        let pos = offset;
        for (;;) {
          const size = (await src.stat()).size;
          if (pos >= size) break;
          const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - pos), pos);
          if (bytesRead === 0) break;
          await out.write(buf, 0, bytesRead);
          pos += bytesRead;
        }
      } finally {
        await src.close();
      }
      await out.sync();
    } finally {
      await out.close();
    }
  }

  /** Where the first entry at or after `cutoff` starts (the file's length if none), and how many lines precede it. */
  private async cutOffset(cutoff: number): Promise<{ offset: number; lines: number }> {
    const stream = createReadStream(this.file);
    await new Promise<void>((resolve, reject) => {
      stream.once('open', () => resolve());
      stream.once('error', reject);
    });
    let offset = 0;
    let lines = 0;
    let pending: Buffer = Buffer.alloc(0);
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
        let nl: number;
        while ((nl = pending.indexOf(10)) !== -1) {
          const text = pending.toString('utf8', 0, nl);
          let t = NaN;
          try {
            t = Date.parse((JSON.parse(text) as AuditEntry).time);
          } catch {
            // unreadable: goes with the expired lines around it
          }
          if (t >= cutoff) return { offset, lines };
          offset += nl + 1;
          lines++;
          pending = pending.subarray(nl + 1);
        }
      }
    } finally {
      stream.destroy();
    }
    // No entry within the retention; a last line without its newline stays (it may be being written).
    return { offset, lines };
  }

  /** Newest first; reads the file as a stream and keeps only the last `limit` matches. */
  async query(q: AuditQuery): Promise<AuditEntry[]> {
    const kept: AuditEntry[] = [];
    let stream;
    try {
      stream = createReadStream(this.file, { encoding: 'utf8' });
      await new Promise<void>((resolve, reject) => {
        stream!.once('open', () => resolve());
        stream!.once('error', reject);
      });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
      if (!line) continue;
      let e: AuditEntry;
      try {
        e = JSON.parse(line) as AuditEntry;
      } catch {
        continue;
      }
      const t = Date.parse(e.time);
      if (q.from !== undefined && t < q.from) continue;
      if (q.to !== undefined && t >= q.to) continue;
      if (q.action && e.action !== q.action && !e.action.startsWith(q.action + '.')) continue;
      if (q.actor && e.actor !== q.actor && e.tokenId !== q.actor) continue;
      kept.push(e);
      if (kept.length > q.limit) kept.shift();
    }
    return kept.reverse();
  }
}
