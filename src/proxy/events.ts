import type { Decision } from '../policy/types.js';
import type { UpstreamProblem } from './pages.js';

/** How the connection reached the proxy: asked as a proxy, caught on its way (Host/SNI), or TLS opened by the gateway. */
export type GateMode = 'explicit' | 'transparent' | 'intercepted';

/** One proxied HTTP request or one CONNECT tunnel, as the journal and the metrics see it. */
export interface ConnectionRecord {
  readonly kind: 'request' | 'tunnel';
  /** Start time, ms since the epoch. */
  readonly time: number;
  readonly client: string;
  readonly user: string | null;
  readonly method: string;
  readonly scheme: 'http' | 'connect';
  readonly host: string;
  readonly port: number;
  /** Path with its query, for plain HTTP; '' for tunnels. The journal decides what it keeps. */
  readonly path: string;
  /** Set by the gate; it may still turn an allow into a destination block once a name is resolved. */
  decision: Decision;
  /** Status sent to the client: 200 for an opened tunnel; 0 when the client went away first. */
  status: number;
  /** Bytes received from the client and sent to it (headers included, approximate on keep-alive). */
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  problem: UpstreamProblem | null;
  /** Seconds spent deciding (for the decision-time metric). */
  decisionSeconds: number;
  /** How the connection reached the gateway (src/proxy/gate.ts); absent: explicit. */
  readonly mode?: GateMode;
}

/**
 * What the data plane tells the rest of the gateway. Observers must be cheap and must not throw:
 * they run on the proxy's path.
 */
export interface ProxyObserver {
  /** An HTTP request ended (answered, blocked or failed). */
  requestDone?(rec: ConnectionRecord): void;
  /** A tunnel was decided: opened (status 200) or refused. Recorded before any byte flows. */
  tunnelOpened?(rec: ConnectionRecord): void;
  /** An opened tunnel closed; `rec` is the same object, now with bytes and duration. */
  tunnelClosed?(rec: ConnectionRecord): void;
  /** Upstream trouble, by reason. */
  upstreamError?(problem: UpstreamProblem): void;
  /** Active connection gauges. */
  connectionsChanged?(kind: 'client' | 'tunnel', delta: 1 | -1): void;
}
