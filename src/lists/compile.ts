import { siblingModule, startWorker } from '../worker-thread.js';
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
export async function buildUt1Bytes(dir: string): Promise<BuildResult> {
  const builder = new CompactIndexBuilder();
  const report = await loadUt1Dir(dir, builder);
  if (report.categories.length === 0) throw new Error(`${dir}: no category folder (expected UT1 layout: CATEGORY/domains, urls, expressions)`);
  return { bytes: builder.build(report.version).serialize(true), report };
}

/**
 * Same, in a worker thread: parsing millions of lines takes seconds, and the gateway keeps
 * proxying meanwhile.
 */
export function buildUt1InWorker(req: BuildRequest): Promise<BuildResult> {
  const worker = startWorker(siblingModule(import.meta.url, 'build-worker'), { workerData: req });
  return new Promise((resolve, reject) => {
    let settled = false;
    worker.once('message', (m: { ok: true; report: LoadReport; bytes: Uint8Array } | { ok: false; message: string }) => {
      settled = true;
      if (m.ok) resolve({ bytes: m.bytes, report: m.report });
      else reject(new Error(m.message));
      void worker.terminate();
    });
    worker.once('error', (e) => {
      if (!settled) reject(e);
      settled = true;
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`list compiler thread exited (code ${code}) without a result`));
      settled = true;
    });
  });
}
