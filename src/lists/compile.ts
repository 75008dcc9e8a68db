import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readShared } from './shared-file.js';
import { siblingModule } from '../worker-thread.js';
import { CompactIndexBuilder } from './compact-builder.js';
import { loadUt1Dir, type LoadReport } from './ut1.js';

export interface BuildRequest {
  dir: string;
}

export interface BuildResult {
  bytes: Uint8Array;
  report: LoadReport;
}

/**
 * Reads and compiles a UT1-layout folder into the compiled-file bytes (on the calling thread), in
 * a SharedArrayBuffer: the gateway's proxy threads view that one copy (src/cluster/threads.ts).
 */
export async function buildUt1Bytes(dir: string, shared = true): Promise<BuildResult> {
  const builder = new CompactIndexBuilder();
  const report = await loadUt1Dir(dir, builder);
  if (report.categories.length === 0) throw new Error(`${dir}: no category folder (expected UT1 layout: CATEGORY/domains, urls, expressions)`);
  return { bytes: builder.build(report.version).serialize(shared), report };
}

/**
 * Same, in a child process that writes the compiled file to a private temporary folder and exits;
 * the bytes are then read into shared memory here. A build takes several times the index's size
 * while it runs, and a thread's leftovers stay with the gateway's allocator (national scale, 2
 * proxy threads: 362 MiB PSS after a build in a thread against 274 from the compiled file); a
 * process's all go back to the system when it exits.
 */
export async function buildUt1InProcess(req: BuildRequest): Promise<BuildResult> {
  const tmp = await mkdtemp(join(tmpdir(), 'vigie-build-'));
  const out = join(tmp, 'ut1.idx');
  try {
    // The gateway's node flags (tsx's loader from source) are the child's too, but for
    // --no-node-snapshot: it saves a long-lived isolate memory, and made a national build ~1 s slower.
    const execArgv = process.execArgv.filter((a) => a !== '--no-node-snapshot');
    const child = fork(fileURLToPath(siblingModule(import.meta.url, 'build-process')), [req.dir, out], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    const report = await new Promise<LoadReport>((resolve, reject) => {
      let answer: { ok: true; report: LoadReport } | { ok: false; message: string } | null = null;
      child.once('message', (m: typeof answer) => (answer = m));
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        if (answer?.ok) resolve(answer.report);
        else reject(new Error(answer ? answer.message : `list compiler process exited (code ${code}, signal ${signal}) without a result`));
      });
    });
    return { bytes: await readShared(out), report };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
