import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { backupJournal, rotateBackups } from './backup.js';
import type { FileAccess } from './files.js';

export interface BackupJob {
  source: string;
  dir: string;
  keep: number;
  access: FileAccess;
}

/**
 * The gateway's daily backup, in a thread of its own at the lowest priority: the copy and its
 * verification are synchronous work on the whole journal, which must not wait in the proxy's
 * thread nor in the writer's.
 */
const job = workerData as BackupJob;
try {
  // This thread only (Linux: the nice value is per thread), never the proxy's.
  setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), 19);
} catch {
  // best effort: no Linux, no change
}
try {
  const r = await backupJournal(job.source, job.dir + '/', job.access);
  const removed = r.ok ? rotateBackups(job.dir, job.keep) : [];
  parentPort!.postMessage({ ok: true, result: r, removed });
} catch (e) {
  parentPort!.postMessage({ ok: false, message: (e as Error).message });
}
