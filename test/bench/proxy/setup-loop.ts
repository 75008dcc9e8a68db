/** The C tunnel set-up client (setup-loop.c), compiled once per run where a C compiler is. */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { RateResult } from './clients.js';

let binary: string | null = null;

/** Compiles setup-loop.c into `dir`; false (the Node client stays) without a working `cc`. */
export function buildSetupLoop(dir: string, log: (s: string) => void): boolean {
  const out = join(dir, 'setup-loop');
  try {
    execFileSync('cc', ['-O2', '-o', out, new URL('./setup-loop.c', import.meta.url).pathname], { stdio: ['ignore', 'ignore', 'pipe'] });
    binary = out;
    return true;
  } catch (e) {
    log(`setup-loop.c not compiled (${(e as Error).message.split('\n')[0]}): tunnel set-ups from the Node client`);
    return false;
  }
}

/** The compiled client, unless BENCH_NODE_SETUP_CLIENT=1 asks for the Node one. */
export const setupLoopBinary = (): string | null => (process.env.BENCH_NODE_SETUP_CLIENT === '1' ? null : binary);

/** Tunnel (or direct) set-ups from the C client: the same work as rawSetupRate, on this process's CPU. */
export function cSetupRate(bin: string, port: number, viaProxy: boolean, target: string, loops: number, seconds: number): Promise<RateResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [String(port), viaProxy ? '1' : '0', target, String(loops), String(seconds)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const [ok, errors, secs] = out.trim().split(' ').map(Number);
      if (code !== 0 || ok === undefined || errors === undefined || !secs) return reject(new Error(`setup-loop exited ${code}: ${err || out}`));
      resolve({ perSecond: ok / secs, ok, errors });
    });
  });
}
