/** Starting the Vigie gateways of the proxy benchmark (both tunnel modes), and what ran. */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { unitNodeFlags } from '../common.js';
import { startPinned, waitForOutput, type Proc } from './procs.js';
import { vigieConfig, type Ports, type VigieOptions } from './setup.js';

const ROOT = new URL('../../..', import.meta.url).pathname;

export interface VigieRun {
  /** The setup's name (vigie, vigie-raw, vigie-2w), for its process and data dir. */
  name: string;
  tunnels: 'socket' | 'raw';
  workers: number;
  /** The CPU (or taskset list, e.g. "0,1") it runs on. */
  cpu: number | string;
  /** `node --cpu-prof` into this dir, or null. */
  profileDir: string | null;
  notes: string[];
  log: (s: string) => void;
}

/** Which of the keys other work adds to the config exist now (journal, workers), checked by the real loader. */
async function vigieOptions(run: VigieRun): Promise<VigieOptions> {
  const notes = run.notes;
  // The build that runs decides, not src/: they differ when the build is older than the sources.
  const { configSchema } = (await import(pathToFileURL(join(ROOT, 'dist/config/schema.js')).href)) as typeof import('../../../src/config/schema.js');
  const props = configSchema.properties as Record<string, { properties?: Record<string, unknown> } | undefined>;
  const journalKey = props.journal;
  const journal = !!journalKey?.properties && 'enabled' in journalKey.properties;
  const workers = 'workers' in props ? run.workers : null;
  const said = [
    !journalKey ? 'journal: the config schema has no `journal` key yet, so Vigie ran without a journal' : !journal ? 'journal: the `journal` key has no `enabled` flag; left at its default' : 'journal: on (journal.enabled)',
    workers === null ? 'workers: no `workers` key yet (single process)' : `${run.name}: workers ${workers}, on CPU ${run.cpu}`,
  ];
  // Both Vigie setups ask: each note once.
  for (const n of said) if (!notes.includes(n)) notes.push(n);
  return { journal, workers, tunnels: run.tunnels };
}

/** Starts one Vigie gateway (its ports in `ports`: `vigie`/`vigieMetrics`, or the raw ones) and waits until it is ready. */
export async function startVigie(dir: string, ports: Ports, run: VigieRun): Promise<Proc> {
  const { notes, log } = run;
  const opts = await vigieOptions(run);
  const file = join(dir, `${run.name}.json`);
  writeFileSync(file, JSON.stringify(vigieConfig(ports, opts), null, 2));
  const { loadConfig } = (await import(pathToFileURL(join(ROOT, 'dist/config/load.js')).href)) as typeof import('../../../src/config/load.js');
  try {
    loadConfig(file);
  } catch (e) {
    // A key the schema advertises but the loader refuses: run without it rather than not at all.
    notes.push(`config refused (${(e as Error).message}); ran without journal/workers`);
    writeFileSync(file, JSON.stringify(vigieConfig(ports, { journal: false, workers: null, tunnels: run.tunnels }), null, 2));
    loadConfig(file);
  }
  const prof = run.profileDir !== null ? ['--cpu-prof', '--cpu-prof-dir', run.profileDir] : [];
  const p = startPinned(run.name, run.cpu, [process.execPath, ...unitNodeFlags(), ...prof, join(ROOT, 'dist/cli.js'), 'start', '--config', file, '--data', join(dir, `${run.name}-data`)]);
  const t0 = performance.now();
  await waitForOutput(p, /gateway ready/, 180_000);
  log(`${run.name} (tunnels ${run.tunnels}) ready in ${((performance.now() - t0) / 1000).toFixed(1)} s (full bundled lists)`);
  return p;
}

export function versions(): Record<string, string> {
  const first = (cmd: string, args: string[]) => {
    try {
      const out = execFileSync('/bin/sh', ['-c', `${cmd} ${args.join(' ')} 2>&1`], { encoding: 'utf8' });
      return out.split('\n').find((l) => l.trim())?.trim() ?? '';
    } catch (e) {
      return String((e as { stdout?: string }).stdout ?? '').split('\n')[0] ?? '';
    }
  };
  let commit = '';
  try {
    commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    if (execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim()) commit += '+uncommitted src';
  } catch {
    /* not a git checkout */
  }
  return { vigie: commit, node: process.version, squid: first('squid', ['-v']), tinyproxy: first('tinyproxy', ['-v']), nginx: first('nginx', ['-v']), wrk: first('wrk', ['-v']) };
}

export function machine(): string {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? '?';
  return `${model}, ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}`;
}
