import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { serveLoopback } from './helpers.js';

export { freePort } from './helpers.js';

export const REPO = fileURLToPath(new URL('..', import.meta.url));

export interface CliHandle {
  child: ChildProcess;
  /** Everything the gateway logged so far. */
  log(): string;
  /** Waits until the log matches `re` `count` times; throws with the log after `ms`. */
  waitLog(re: RegExp, count?: number, ms?: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `vigie start` as a child process, as systemd runs it: `node --import tsx src/cli.ts start ...`. */
export function startCli(args: string[]): CliHandle {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', ...args], { cwd: REPO, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => (log += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return {
    child,
    log: () => log,
    exited,
    async waitLog(re, count = 1, ms = 20_000) {
      const g = new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g');
      const end = Date.now() + ms;
      while ((log.match(g)?.length ?? 0) < count) {
        if (Date.now() > end || child.exitCode !== null) throw new Error(`timed out waiting for ${re} (x${count}); log:\n${log}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

export const writeJson = (file: string, doc: unknown): string => {
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
};

/** A loopback origin for the service tests: `/small`, `/slow?ms=N`, `/hang`. */
export async function serviceOrigin(): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://o');
    if (url.pathname === '/hang') return;
    const ms = url.pathname === '/slow' ? Number(url.searchParams.get('ms') ?? '500') : 0;
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '12' });
      res.end('hello world\n');
    }, ms);
  });
  return serveLoopback(server);
}

/** Files under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}
