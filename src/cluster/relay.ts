import type { AuthOutcome } from '../auth/ldap.js';
import type { Retarget } from '../policy/safesearch.js';
import type { Decision } from '../policy/types.js';
import type { ConnectionRecord, ProxyObserver } from '../proxy/events.js';
import type { GateMode } from '../proxy/gate.js';
import type { UpstreamProblem } from '../proxy/pages.js';
import type { LeafCounts } from '../tls/leaf.js';

/**
 * Proxy events cross from a worker to the primary as one flat array per batch (ops followed by
 * their fields): no object per event on the worker's path, one JSON string per batch on the pipe.
 * Decisions are sent once and then named by a number, so the primary hands its observers the same
 * Decision object for the same worker decision (the metrics key their label cache on it).
 */
const DEF = 0;
const REQUEST = 1;
const TUNNEL_OPEN = 2;
const TUNNEL_CLOSE = 3;
const UPSTREAM_ERROR = 4;
const CONNECTIONS = 5;
const RESET = 6;
const AUTH = 7;
/** Leaf certificates (TLS interception): signed and cache hits since the last one, certificates cached now. */
const LEAVES = 8;

/** LDAP check outcomes, in the order an AUTH op carries their counts. */
const OUTCOMES: readonly AuthOutcome[] = ['ok', 'cached', 'invalid', 'rate-limited', 'unavailable'];

/** Decision numbers restart past this, so neither side keeps an ever-growing table. */
const DECISION_TABLE_MAX = 8192;

export type EventBatch = unknown[];

/** Worker side: an observer that batches events and hands each batch to `send`. */
export class RelayObserver implements ProxyObserver {
  private buf: unknown[] = [];
  private events = 0;
  private decisionIds = new WeakMap<Decision, number>();
  private nextDecision = 0;
  private readonly tunnelKeys = new WeakMap<ConnectionRecord, number>();
  private nextTunnel = 0;
  private clientDelta = 0;
  private tunnelDelta = 0;
  /** LDAP checks since the last batch, by outcome (OUTCOMES order); `authDelta[5]` = any at all. */
  private readonly authDelta = [0, 0, 0, 0, 0, 0];
  /** The worker's leaf counts (its Interception); those last sent, to send only the change. */
  leafSource: (() => LeafCounts) | null = null;
  private readonly leafSent: LeafCounts = { issued: 0, hits: 0, size: 0 };
  /** Armed by the first event of a batch: an idle worker does not wake up. */
  private timer: NodeJS.Timeout | null = null;
  private readonly onTimer = () => {
    this.timer = null;
    this.flush();
  };
  /** Totals since start, for the worker's stop line. */
  requests = 0;
  tunnels = 0;

  constructor(
    private readonly send: (batch: EventBatch) => void,
    private readonly flushMs = 20,
    private readonly maxEvents = 256,
  ) {}

  private arm(): void {
    if (this.timer) return;
    this.timer = setTimeout(this.onTimer, this.flushMs);
    this.timer.unref();
  }

  private decision(d: Decision): number {
    let id = this.decisionIds.get(d);
    if (id === undefined) {
      if (this.nextDecision >= DECISION_TABLE_MAX) {
        this.decisionIds = new WeakMap();
        this.nextDecision = 0;
        this.buf.push(RESET);
      }
      id = this.nextDecision++;
      this.decisionIds.set(d, id);
      this.buf.push(DEF, id, d.action, d.profile, d.category, d.rule, d.entry, d.matchKind, d.period, d.listVersion, d.policyVersion, d.list ?? null, d.retarget ?? null);
    }
    return id;
  }

  /** The record's fields, after its op (and key): `dec` is resolved first, its definition precedes them. */
  private fields(r: ConnectionRecord, dec: number): void {
    this.buf.push(dec, r.time, r.client, r.user, r.method, r.scheme, r.host, r.port, r.path, r.status, r.bytesIn, r.bytesOut, r.durationMs, r.problem, r.decisionSeconds, r.mode ?? 'explicit');
  }

  private counted(): void {
    if (++this.events >= this.maxEvents) this.flush();
    else this.arm();
  }

  requestDone(rec: ConnectionRecord): void {
    this.requests++;
    const dec = this.decision(rec.decision);
    this.buf.push(REQUEST);
    this.fields(rec, dec);
    this.counted();
  }

  tunnelOpened(rec: ConnectionRecord): void {
    this.tunnels++;
    let key = -1;
    if (rec.status === 200) {
      key = this.nextTunnel++;
      this.tunnelKeys.set(rec, key);
    }
    const dec = this.decision(rec.decision);
    this.buf.push(TUNNEL_OPEN, key);
    this.fields(rec, dec);
    this.counted();
  }

  tunnelClosed(rec: ConnectionRecord): void {
    const key = this.tunnelKeys.get(rec);
    if (key === undefined) return;
    this.tunnelKeys.delete(rec);
    this.buf.push(TUNNEL_CLOSE, key, rec.status, rec.bytesIn, rec.bytesOut, rec.durationMs, rec.problem);
    this.counted();
  }

  upstreamError(problem: UpstreamProblem): void {
    this.buf.push(UPSTREAM_ERROR, problem);
    this.counted();
  }

  connectionsChanged(kind: 'client' | 'tunnel', delta: 1 | -1): void {
    if (kind === 'client') this.clientDelta += delta;
    else this.tunnelDelta += delta;
    this.arm();
  }

  /** An LDAP credential check in this worker (its verifier's onCount): counted in the primary's metrics. */
  authChecked(outcome: AuthOutcome): void {
    this.authDelta[OUTCOMES.indexOf(outcome)]!++;
    this.authDelta[5] = 1;
    this.arm();
  }

  /** Sends what is batched (the gauges' net change goes last). */
  flush(): void {
    const a = this.authDelta;
    if (a[5]) {
      this.buf.push(AUTH, a[0], a[1], a[2], a[3], a[4]);
      a.fill(0);
    }
    // A certificate is made or found only for a connection, whose events armed this flush.
    if (this.leafSource !== null) {
      const l = this.leafSource();
      const sent = this.leafSent;
      if (l.issued !== sent.issued || l.hits !== sent.hits || l.size !== sent.size) {
        this.buf.push(LEAVES, l.issued - sent.issued, l.hits - sent.hits, l.size);
        sent.issued = l.issued;
        sent.hits = l.hits;
        sent.size = l.size;
      }
    }
    if (this.clientDelta || this.tunnelDelta) {
      this.buf.push(CONNECTIONS, this.clientDelta, this.tunnelDelta);
      this.clientDelta = this.tunnelDelta = 0;
    }
    if (!this.buf.length) return;
    const batch = this.buf;
    this.buf = [];
    this.events = 0;
    this.send(batch);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.flush();
  }
}

interface Source {
  decisions: Decision[];
  tunnels: Map<number, ConnectionRecord>;
  clients: number;
  openTunnels: number;
  /** Leaf certificates this worker has cached. */
  leafSize: number;
}

/**
 * Primary side: turns each worker's batches back into ConnectionRecords and calls the primary's
 * observers (metrics, then the journal, which numbers rows in the order they arrive here).
 */
export class RelayReceiver {
  private readonly sources = new Map<number, Source>();
  /** Leaf certificates the workers signed and served from cache (counters: kept when a worker goes). */
  private readonly leafTotals = { issued: 0, hits: 0 };

  constructor(
    private readonly observers: () => readonly ProxyObserver[],
    /** Workers' LDAP checks by outcome, to add to the primary's counts. */
    private readonly onAuth: (counts: Partial<Record<AuthOutcome, number>>) => void = () => undefined,
  ) {}

  private source(worker: number): Source {
    let s = this.sources.get(worker);
    if (!s) this.sources.set(worker, (s = { decisions: [], tunnels: new Map(), clients: 0, openTunnels: 0, leafSize: 0 }));
    return s;
  }

  /** The workers' leaf counts, summed (their caches: those of the workers alive). */
  leafCounts(): LeafCounts {
    let size = 0;
    for (const s of this.sources.values()) size += s.leafSize;
    return { issued: this.leafTotals.issued, hits: this.leafTotals.hits, size };
  }

  /** A worker is gone: its open connections leave the gauges; its open tunnels never report an end. */
  forget(worker: number): void {
    const s = this.sources.get(worker);
    if (!s) return;
    this.sources.delete(worker);
    this.gauges(-s.clients, -s.openTunnels);
  }

  private gauges(clients: number, tunnels: number): void {
    for (const o of this.observers()) {
      if (!o.connectionsChanged) continue;
      for (let i = 0; i < Math.abs(clients); i++) o.connectionsChanged('client', clients > 0 ? 1 : -1);
      for (let i = 0; i < Math.abs(tunnels); i++) o.connectionsChanged('tunnel', tunnels > 0 ? 1 : -1);
    }
  }

  receive(worker: number, b: EventBatch): void {
    const s = this.source(worker);
    const obs = this.observers();
    const rec = (kind: ConnectionRecord['kind'], i: number): ConnectionRecord => {
      const decision = s.decisions[b[i] as number];
      if (!decision) throw new Error(`relay: unknown decision ${String(b[i])} from worker ${worker}`);
      return {
        kind,
        decision,
        time: b[i + 1] as number,
        client: b[i + 2] as string,
        user: b[i + 3] as string | null,
        method: b[i + 4] as string,
        scheme: b[i + 5] as ConnectionRecord['scheme'],
        host: b[i + 6] as string,
        port: b[i + 7] as number,
        path: b[i + 8] as string,
        status: b[i + 9] as number,
        bytesIn: b[i + 10] as number,
        bytesOut: b[i + 11] as number,
        durationMs: b[i + 12] as number,
        problem: b[i + 13] as UpstreamProblem | null,
        decisionSeconds: b[i + 14] as number,
        mode: b[i + 15] as GateMode,
      };
    };
    let i = 0;
    while (i < b.length) {
      switch (b[i]) {
        case DEF: {
          const d: Decision = {
            action: b[i + 2] as Decision['action'],
            profile: b[i + 3] as string | null,
            category: b[i + 4] as string | null,
            rule: b[i + 5] as Decision['rule'],
            entry: b[i + 6] as string | null,
            matchKind: b[i + 7] as Decision['matchKind'],
            period: b[i + 8] as Decision['period'],
            listVersion: b[i + 9] as string,
            policyVersion: b[i + 10] as number,
            list: b[i + 11] as string | null,
            ...(b[i + 12] ? { retarget: b[i + 12] as Retarget } : {}),
          };
          s.decisions[b[i + 1] as number] = d;
          i += 13;
          break;
        }
        case REQUEST: {
          const r = rec('request', i + 1);
          for (const o of obs) o.requestDone?.(r);
          i += 17;
          break;
        }
        case TUNNEL_OPEN: {
          const key = b[i + 1] as number;
          const r = rec('tunnel', i + 2);
          if (key >= 0) s.tunnels.set(key, r);
          for (const o of obs) o.tunnelOpened?.(r);
          i += 18;
          break;
        }
        case TUNNEL_CLOSE: {
          const key = b[i + 1] as number;
          const r = s.tunnels.get(key);
          if (r) {
            s.tunnels.delete(key);
            r.status = b[i + 2] as number;
            r.bytesIn = b[i + 3] as number;
            r.bytesOut = b[i + 4] as number;
            r.durationMs = b[i + 5] as number;
            r.problem = b[i + 6] as UpstreamProblem | null;
            for (const o of obs) o.tunnelClosed?.(r);
          }
          i += 7;
          break;
        }
        case UPSTREAM_ERROR:
          for (const o of obs) o.upstreamError?.(b[i + 1] as UpstreamProblem);
          i += 2;
          break;
        case CONNECTIONS: {
          const c = b[i + 1] as number;
          const t = b[i + 2] as number;
          s.clients += c;
          s.openTunnels += t;
          this.gauges(c, t);
          i += 3;
          break;
        }
        case RESET:
          s.decisions = [];
          i += 1;
          break;
        case AUTH: {
          const counts: Partial<Record<AuthOutcome, number>> = {};
          OUTCOMES.forEach((o, k) => (counts[o] = b[i + 1 + k] as number));
          this.onAuth(counts);
          i += 6;
          break;
        }
        case LEAVES:
          this.leafTotals.issued += b[i + 1] as number;
          this.leafTotals.hits += b[i + 2] as number;
          s.leafSize = b[i + 3] as number;
          i += 4;
          break;
        default:
          throw new Error(`relay: bad op ${String(b[i])} at ${i} from worker ${worker}`);
      }
    }
  }
}
