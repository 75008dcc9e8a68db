import { parentPort, workerData } from 'node:worker_threads';
import { buildUt1Bytes, type BuildRequest } from './compile.js';

/** Worker entry: compiles a UT1 folder off the gateway's event loop and hands the bytes back. */
const req = workerData as BuildRequest;
try {
  const { bytes, report } = await buildUt1Bytes(req.dir);
  // Shared memory: the gateway gets the same bytes, not a copy (nor a transfer, which it cannot be).
  parentPort!.postMessage({ ok: true, report, bytes });
} catch (e) {
  parentPort!.postMessage({ ok: false, message: (e as Error).message });
}
