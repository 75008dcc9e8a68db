import cluster from 'node:cluster';
import { setFlagsFromString } from 'node:v8';

/**
 * Imported first by the CLI and by a process worker's entry (src/cluster/entry.ts): for `vigie start`, V8's young generation keeps its initial size
 * (1 MiB semi-spaces) instead of growing to 16–64 MiB per isolate after the lists' build and
 * load, which it then keeps committed for good. The flag is process-wide, so it holds for the
 * main thread (already running when this runs: its growth is what changes) and for every proxy
 * thread started later. Measured in docs/design/workers.md: ~30 MiB less per isolate, idle; the
 * proxy's short-lived objects die young all the same. A semi-space flag given to node
 * (`node --max-semi-space-size=16 dist/cli.js start`) is the operator's choice and wins.
 */
export function keepYoungGenerationSmall(argv: readonly string[] = process.argv, execArgv: readonly string[] = process.execArgv, processWorker = cluster.isWorker): boolean {
  if (argv[2] !== 'start' && !processWorker) return false;
  if ([...execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => /semi[-_]space/.test(a))) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}

keepYoungGenerationSmall();
