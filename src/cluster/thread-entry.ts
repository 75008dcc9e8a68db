import { parentPort, threadId } from 'node:worker_threads';
import type { FromWorker, ToWorker } from './protocol.js';
import { runProxyMember, type Channel } from './worker.js';

/**
 * What a proxy thread runs (threads.ts): the same worker as a forked process, on the thread's port.
 * Messages are structured clones within one process; the lists' SharedArrayBuffers pass as handles.
 */
const port = parentPort!;
let open = true;
port.once('close', () => (open = false));

const channel: Channel = {
  kind: 'thread',
  send: (m: FromWorker, done?: () => void) => {
    if (open) port.postMessage(m);
    if (done) setImmediate(done);
  },
  on: (h: (m: ToWorker) => void) => port.on('message', h),
  off: (h: (m: ToWorker) => void) => port.off('message', h),
  connected: () => open,
  // process.exit() in a worker thread ends that thread only.
  exit: (code: number) => process.exit(code),
  ids: { pid: process.pid, thread: threadId },
};

runProxyMember(channel);
