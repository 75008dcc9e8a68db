import net from 'node:net';
import type { VigieConfig } from '../config/types.js';
import type { Logger } from '../log.js';
import { ClusterPrimary, type WorkerRuntime } from './primary.js';
import { ProcessRuntime } from './processes.js';
import { ThreadRuntime } from './threads.js';

/**
 * Whether this runtime lets two listeners share a port with SO_REUSEPORT (`reusePort`, Node
 * ≥ 22.12 on Linux): tried on loopback, since older Node ignores the option (the second listen
 * then fails with EADDRINUSE) and not every kernel has it.
 */
export async function reusePortWorks(): Promise<boolean> {
  const listen = (port: number) =>
    new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen({ host: '127.0.0.1', port, reusePort: true } as net.ListenOptions, () => resolve(s));
    });
  const close = (s: net.Server | null) => new Promise<void>((r) => (s ? s.close(() => r()) : r()));
  let a: net.Server | null = null;
  let b: net.Server | null = null;
  try {
    a = await listen(0);
    b = await listen((a.address() as net.AddressInfo).port);
    return true;
  } catch {
    return false;
  } finally {
    await close(b);
    await close(a);
  }
}

/**
 * The workers of a gateway with `workers` > 1: threads sharing one copy of the lists where the
 * runtime allows (`workersRuntime`: "auto" or "threads"), else forked processes. With threads the
 * main thread serves too (`mainThreadServes`, default): `workers − 1` threads beside it. The
 * choice and its reason are logged. The listen ports are fixed here (threads: port 0 becomes one
 * port every isolate listens on), before the gateway is made.
 */
export async function createWorkers(config: VigieConfig, log: Logger): Promise<ClusterPrimary> {
  const want = config.workersRuntime ?? 'auto';
  let runtime: WorkerRuntime;
  let why: string;
  if (want === 'processes') {
    runtime = new ProcessRuntime();
    why = 'workersRuntime "processes"';
  } else if (await reusePortWorks()) {
    runtime = new ThreadRuntime(log);
    why = `Node ${process.version} shares ports between threads (reusePort): one copy of the lists`;
  } else {
    runtime = new ProcessRuntime();
    why = `Node ${process.version} cannot share a port between threads (reusePort needs Node ≥ 22.12 on Linux): each process holds its own copy of the lists`;
    if (want === 'threads') log.warn(`workersRuntime "threads" asked, but ${why}; running processes`);
  }
  // Node's cluster primary cannot listen beside its workers: only the threads' main thread serves.
  const mainServes = runtime.kind === 'threads' && config.mainThreadServes !== false;
  await runtime.prepare(config);
  log.info(`proxy workers: ${config.workers} ${runtime.kind}`, { runtime: runtime.kind, why, ...(runtime.kind === 'threads' ? { mainThread: mainServes ? 'serves' : 'coordinates' } : {}) });
  return new ClusterPrimary(config.workers, log, runtime, mainServes);
}
