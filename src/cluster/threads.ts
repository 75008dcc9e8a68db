import net from 'node:net';
import type { VigieConfig } from '../config/types.js';
import type { Gateway } from '../gateway.js';
import type { Logger } from '../log.js';
import { siblingModule, startWorker } from '../worker-thread.js';
import type { Member, WorkerRuntime } from './primary.js';
import { shareListSet, type SharedLists } from './shared-lists.js';

/**
 * Proxy workers as threads of the gateway's process (Node ≥ 22.12): each listens on the proxy
 * ports with SO_REUSEPORT (the kernel spreads new connections over them) and views the main
 * thread's compiled lists in shared memory, so the lists are held once whatever `workers` is.
 * The main thread keeps the journal, metrics, API and policy store, as with processes, and by
 * default serves beside them (ClusterPrimary's `mainServes`).
 */
export class ThreadRuntime implements WorkerRuntime {
  readonly kind = 'threads';
  /** Shared-list descriptor of the list set last handed out (one per list set, not per notice). */
  private sharedFor: { set: unknown; shared: SharedLists | null } = { set: null, shared: null };

  constructor(private readonly log: Logger) {}

  /**
   * Port 0 would give each thread its own port: one is picked here (bound with SO_REUSEPORT and
   * let go), and every thread listens on it.
   */
  async prepare(config: VigieConfig): Promise<void> {
    for (const a of config.listen) if (a.port === 0) a.port = await pickPort(a.host);
  }

  spawn(onMessage: Parameters<WorkerRuntime['spawn']>[0], onExit: Parameters<WorkerRuntime['spawn']>[1]): Member {
    const worker = startWorker(siblingModule(import.meta.url, 'thread-entry'), { name: 'vigie-proxy' });
    let dead = false;
    const ids = { thread: worker.threadId };
    worker.on('message', onMessage);
    // An exception the thread did not catch ends it: said here, then 'exit' restarts it.
    worker.on('error', (e) => this.log.error(`proxy thread failed: ${e.stack ?? e.message}`, ids));
    worker.on('exit', (code) => {
      dead = true;
      onExit(code, null);
    });
    return {
      ids,
      pid: process.pid,
      send: (m) => {
        if (!dead) worker.postMessage(m);
      },
      isDead: () => dead,
      kill: () => void worker.terminate(),
    };
  }

  shareLists(gateway: Gateway): SharedLists | null {
    const set = gateway.loadedLists;
    if (set !== this.sharedFor.set) {
      const shared = shareListSet(set);
      // Not shareable (an index built in memory): threads then read the compiled files themselves.
      if (set && !shared) this.log.warn('proxy threads: the lists are not in shared memory, each thread loads its own copy');
      this.sharedFor = { set, shared };
    }
    return this.sharedFor.shared;
  }
}

/** A free port on `host` that SO_REUSEPORT listeners can share. */
function pickPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host, port: 0, reusePort: true } as net.ListenOptions, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
