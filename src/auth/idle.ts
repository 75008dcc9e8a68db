import type { ConnectionRecord, ProxyObserver } from '../proxy/events.js';
import type { SessionStore } from './sessions.js';

/**
 * Keeps portal logins alive while their address browses: an observer of the proxy's records in
 * the process that owns the session store (the only process, or the cluster primary, which gets
 * every worker's records through the relay). A request or tunnel that ends, or a tunnel that
 * opens, is traffic; an address with a tunnel still open (an HTTP/2 connection carries a whole
 * site) is not idle either, whatever the age of its last record. Per record: a map read and a
 * number written; the open-tunnel count is one map entry per address with tunnels open.
 */
export class IdleTracker implements ProxyObserver {
  private readonly openTunnels = new Map<string, number>();
  readonly busy = (address: string): boolean => (this.openTunnels.get(address) ?? 0) > 0;

  constructor(private readonly sessions: SessionStore) {}

  requestDone(rec: ConnectionRecord): void {
    if (rec.user !== null) this.sessions.seen(rec.client);
  }

  tunnelOpened(rec: ConnectionRecord): void {
    if (rec.user === null || rec.status !== 200) return;
    this.sessions.seen(rec.client);
    this.openTunnels.set(rec.client, (this.openTunnels.get(rec.client) ?? 0) + 1);
  }

  /**
   * A cluster worker died: its open tunnels will never report their end. Forgetting every count
   * (not just its own, which the records do not name) only lets a session whose sole traffic is a
   * long tunnel in another worker idle out; otherwise it would never idle out at all.
   */
  reset(): void {
    this.openTunnels.clear();
  }

  tunnelClosed(rec: ConnectionRecord): void {
    if (rec.user === null) return;
    this.sessions.seen(rec.client);
    const n = (this.openTunnels.get(rec.client) ?? 1) - 1;
    if (n > 0) this.openTunnels.set(rec.client, n);
    else this.openTunnels.delete(rec.client);
  }
}
