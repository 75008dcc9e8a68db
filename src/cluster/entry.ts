/**
 * What a forked proxy worker runs: only the gateway's modules, not the whole CLI (the API, the
 * journal reader, commander...), so workers start listening sooner.
 */
// First: the gateway's V8 heap settings, as in the CLI (src/heap.ts), before the rest is even read.
import '../heap.js';

const { runProxyWorker } = await import('./worker.js');
runProxyWorker();
