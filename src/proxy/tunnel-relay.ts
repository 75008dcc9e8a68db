import type { ConnectionRecord } from './events.js';
import type { IdleMember } from './idle.js';

/**
 * One tunnel: bytes relayed both ways between a client and an origin until both sides end. Two
 * implementations, chosen by the config's `tunnels`:
 * - SocketRelay (src/proxy/splice.ts): two `net.Socket`s, public Node APIs; `"socket"`;
 * - RawConnection (src/proxy/raw-tunnel.ts): two raw TCP handles, `"raw"` (opt-in); the
 *   only user of Node's internals (src/proxy/raw.ts).
 * Both keep back-pressure in each direction, pass a FIN on once the queued writes are out, close
 * both sides once both have ended, and are watched on the swept clock (src/proxy/idle.ts): the
 * connect limit while the origin connects, then the idle limit.
 */
export interface TunnelRelay extends IdleMember {
  /** Cuts both sides now (the proxy is closing); the host hears `relayClosed` once they are. */
  destroy(): void;
}

/** What a relay tells the proxy around it: once when the tunnel opens, once when it has closed. */
export interface TunnelRelayHost {
  /** The tunnel is open (`rec.status` 200): counted and recorded. */
  relayOpened(relay: TunnelRelay, rec: ConnectionRecord): void;
  /** Both sides are closed; `rec` has its bytes and duration. */
  relayClosed(relay: TunnelRelay, rec: ConnectionRecord): void;
}
