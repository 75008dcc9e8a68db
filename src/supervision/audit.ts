import { createReadStream } from 'node:fs';
import { appendFile, mkdir } from 'node:fs/promises';
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

/**
 * Append-only JSON lines under `<dataDir>/audit.jsonl`. Every line is written before the API
 * answers, so an action whose record could not be written is reported as failed to the caller.
 */
export class AuditLog {
  private chain: Promise<unknown> = Promise.resolve();
  readonly file: string;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'audit.jsonl');
  }

  record(entry: Omit<AuditEntry, 'time'>): Promise<void> {
    const line = JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n';
    const run = async () => {
      await mkdir(dirname(this.file), { recursive: true });
      await appendFile(this.file, line, { mode: 0o600 });
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
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
