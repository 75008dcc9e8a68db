/**
 * What a forked proxy worker runs: only the gateway's modules, not the whole CLI (the API, the
 * journal reader, commander...), so workers start listening sooner.
 */
import { runProxyWorker } from './worker.js';

runProxyWorker();
