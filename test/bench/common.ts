import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export { freePort, unitNodeFlags } from '../helpers.js';

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2) : NaN;
};

/** A keep-alive origin answering 200 B to everything, in its own process so it has its own event loop. */
const ORIGIN = `
const http = require('node:http');
const body = Buffer.alloc(200, 'x');
http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}).listen(Number(process.argv[1]), '127.0.0.1', () => process.send && process.send('ready'));
`;

export async function startSmallOrigin(port: number): Promise<ChildProcess> {
  const origin = spawn(process.execPath, ['-e', ORIGIN, String(port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((r) => origin.once('message', r));
  return origin;
}

/** Resolves with the first match of `pattern` in the child's stderr (the gateway logs there). */
export function waitFor(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${pattern}: ${seen.slice(-500)}`)), timeoutMs);
    const on = (d: Buffer) => {
      seen += d.toString();
      const m = pattern.exec(seen);
      if (m) {
        clearTimeout(timer);
        child.stderr?.off('data', on);
        resolve(m[0]);
      }
    };
    child.stderr?.on('data', on);
    child.once('exit', (code) => reject(new Error(`process exited (${code}) before ${pattern}: ${seen.slice(-500)}`)));
  });
}

/** A process and its descendants (cluster workers), from /proc. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const tid of readdirSync(`/proc/${out[i]}/task`)) {
        const kids = readFileSync(`/proc/${out[i]}/task/${tid}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      }
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Resident memory of a process and its descendants, MiB. */
export function treeRssMiB(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kb / 1024;
}
