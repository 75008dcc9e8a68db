import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import type { Member, WorkerRuntime } from './primary.js';

/**
 * Proxy workers as forked processes (node:cluster): every Node version. Each process holds its
 * own copy of the compiled lists, read from the compiled file the primary wrote.
 */
export class ProcessRuntime implements WorkerRuntime {
  readonly kind = 'processes';
  private setUp = false;

  prepare(): Promise<void> {
    return Promise.resolve();
  }

  private setUpOnce(): void {
    if (this.setUp) return;
    this.setUp = true;
    // From source (tsx) the entry is .ts; node's flags, the tsx loader among them, are inherited.
    const here = import.meta.url;
    // Workers accept on the shared socket themselves. Round robin (node's default) has the primary
    // accept every connection and pass it over IPC: measured on one core, tunnel setups/s fell to
    // 0.43× of one process with it, 0.95× without. NODE_CLUSTER_SCHED_POLICY=rr still selects it.
    if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: fileURLToPath(new URL(here.endsWith('.ts') ? './entry.ts' : './entry.js', here)), args: [] });
  }

  spawn(onMessage: Parameters<WorkerRuntime['spawn']>[0], onExit: Parameters<WorkerRuntime['spawn']>[1]): Member {
    this.setUpOnce();
    const worker = cluster.fork();
    worker.on('message', onMessage);
    worker.on('exit', onExit);
    return {
      get ids() {
        return { pid: worker.process.pid ?? 0 };
      },
      get pid() {
        return worker.process.pid ?? 0;
      },
      send: (m) => {
        if (worker.isConnected()) worker.send(m);
      },
      isDead: () => worker.isDead(),
      kill: () => void worker.process.kill('SIGKILL'),
    };
  }

  shareLists(): undefined {
    return undefined;
  }
}
