/**
 * Child processes of the proxy benchmark: started pinned to a CPU with a raised fd limit, each in
 * its own process group so that stopping one also stops its helpers, all stopped on exit, error
 * or signal. CPU time and memory are read from /proc, summed over a process and its descendants
 * (Squid's helpers, a future cluster's workers).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  /** Last lines of stdout+stderr, for error messages. */
  tail: () => string;
}

const running = new Set<Proc>();

/** `taskset -c CPU` under `ulimit -n NOFILE`; `exec` keeps the pid the program's own. */
export function startPinned(name: string, cpu: number | string, argv: string[], opts: { nofile?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Proc {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  // Without CAP_SYS_RESOURCE (containers) the hard limit is the ceiling: take what there is.
  const script = `{ ulimit -n ${opts.nofile ?? 65536} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; } && exec taskset -c ${cpu} ${quoted}`;
  const child = spawn('/bin/sh', ['-c', script], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd });
  let log = '';
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const p: Proc = { name, child, pid: child.pid!, tail: () => log };
  running.add(p);
  child.once('exit', () => running.delete(p));
  return p;
}

/** SIGTERM to the process group, SIGKILL after `graceMs`. */
export async function stop(p: Proc, graceMs = 3000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const gone = new Promise<void>((r) => p.child.once('exit', () => r()));
  try {
    process.kill(-p.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }, graceMs);
  await gone;
  clearTimeout(t);
}

export async function stopAll(): Promise<void> {
  for (const c of transient) c.kill('SIGTERM');
  await Promise.all([...running].map((p) => stop(p)));
}

const transient = new Set<ChildProcess>();

/** A short-lived load tool (wrk, curl): ended with the rest if the benchmark stops early. */
export function track(child: ChildProcess): ChildProcess {
  transient.add(child);
  child.once('exit', () => transient.delete(child));
  return child;
}

/** Last resort on process exit: synchronous, so it also runs after an uncaught error. */
export function killAllNow(): void {
  for (const c of transient) c.kill('SIGKILL');
  for (const p of running) {
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `port` accepts TCP connections; fails early if `p` exits. */
export async function waitForPort(p: Proc, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p.child.exitCode !== null) throw new Error(`${p.name} exited (${p.child.exitCode}):\n${p.tail()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`${p.name} did not listen on ${port} within ${timeoutMs} ms:\n${p.tail()}`);
}

/** Resolves when `pattern` appears in the process's output. */
export function waitForOutput(p: Proc, pattern: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (e?: Error) => {
      clearTimeout(timer);
      p.child.stdout!.off('data', check);
      p.child.stderr!.off('data', check);
      p.child.off('exit', onExit);
      if (e) reject(e);
      else resolve();
    };
    const check = () => {
      if (pattern.test(p.tail())) done();
    };
    const onExit = () => done(new Error(`${p.name} exited (${p.child.exitCode}):\n${p.tail()}`));
    const timer = setTimeout(() => done(new Error(`${p.name}: no ${pattern} within ${timeoutMs} ms:\n${p.tail()}`)), timeoutMs);
    p.child.stdout!.on('data', check);
    p.child.stderr!.on('data', check);
    p.child.once('exit', onExit);
    check();
  });
}

/** Pins this process (all its threads) to `cpu` and raises its fd limit: the load side runs here. */
export function pinSelf(cpu: number, nofile: number): void {
  execFileSync('taskset', ['-a', '-c', '-p', String(cpu), String(process.pid)], { stdio: 'ignore' });
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${nofile}:${nofile}`], { stdio: 'ignore' });
  } catch {
    /* not root or no prlimit: the idle-tunnel phase will say how many it could open */
  }
}

/** The pid and all its descendants (children of children included). */
export function processTree(pid: number): number[] {
  const parent = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parent.get(ppid) ?? [];
      list.push(Number(e));
      parent.set(ppid, list);
    } catch {
      /* exited meanwhile */
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(parent.get(out[i]!) ?? []));
  return out;
}

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime+stime in clock ticks (CLK_TCK a second) over the tree, living processes only. */
export function cpuTicks(pid: number): number {
  let t = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After "(comm)": state(0) ppid(1) ... utime(11) stime(12).
      t += Number(f[11]) + Number(f[12]);
    } catch {
      /* exited meanwhile */
    }
  }
  return t;
}

/** Sum over the tree of a /proc/PID/status field in kB (VmRSS, VmHWM), as MiB. */
export function memMiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  let kb = 0;
  const re = new RegExp(`${field}:\\s+(\\d+) kB`);
  for (const p of processTree(pid)) {
    try {
      const m = re.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      /* exited meanwhile */
    }
  }
  return kb / 1024;
}

/** Busy and total jiffies of each CPU from /proc/stat. */
export function cpuTimes(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const v = m[2]!.trim().split(/\s+/).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    out[Number(m[1])] = { busy: total - idle, total };
  }
  return out;
}

/** This process's CPU ticks, with those of the children it has reaped (wrk, curl). */
function selfTicks(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime(11) stime(12) cutime(13) cstime(14)
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}

export interface PhaseCpu {
  /** The proxy (and its children), % of one core. */
  proxyCpu: number | null;
  /** The load side: the origin's processes, this process and its wrk/curl, % of one core. */
  loadCpu: number;
  /** Each CPU busy %, whoever ran there: shows other work on a shared machine. */
  cpuBusy: number[];
}

/** Measures a phase: the proxy's and the load side's CPU, and each CPU's busy %. */
export async function withCpu<T>(pid: number | null, originPid: number, fn: () => Promise<T>): Promise<{ value: T } & PhaseCpu> {
  const t0 = performance.now();
  const p0 = pid === null ? 0 : cpuTicks(pid);
  const l0 = cpuTicks(originPid) + selfTicks();
  const c0 = cpuTimes();
  const value = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const p1 = pid === null ? 0 : cpuTicks(pid);
  const l1 = cpuTicks(originPid) + selfTicks();
  const c1 = cpuTimes();
  const cpuBusy = c1.map((c, i) => {
    const d = c.total - (c0[i]?.total ?? 0);
    return d > 0 ? (100 * (c.busy - (c0[i]?.busy ?? 0))) / d : 0;
  });
  const pct = (ticks: number) => (100 * ticks) / CLK_TCK / seconds;
  return { value, proxyCpu: pid === null ? null : pct(p1 - p0), loadCpu: pct(l1 - l0), cpuBusy };
}

/** The soft limit on open files of a running process. */
export function maxOpenFiles(pid: number): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return !m || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}
