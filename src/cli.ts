#!/usr/bin/env node
/**
 * The `vigie` entry. V8's heap flags (src/heap.ts) are set here, before the rest of the program
 * is even read: with static imports, node parses and links the whole module graph first, and the
 * main thread's young generation had sometimes grown to 8 MiB by then (a gateway then idled at
 * ~141 MiB instead of ~131 in memory.bench.ts, one start in two).
 */
import './heap.js';

await import('./cli/program.js');
