import type { Decision } from '../policy/types.js';
import type { ConnectionRecord, ProxyObserver } from '../proxy/events.js';
import type { UpstreamProblem } from '../proxy/pages.js';
import { FixedHistogram, SlotCounter, type Slot } from './samples.js';

/** Buckets for one proxied request, from a cached small object to a slow download. */
export const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Tunnels live from a refused handshake to an hour-long video call. */
export const TUNNEL_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200];
/** A decision is a few hash probes (µs); the top buckets catch regex-heavy categories. */
export const DECISION_BUCKETS = [0.000_001, 0.000_002_5, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01];

const STATUS_CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'];

interface DecisionSlots {
  readonly requests: Slot;
  readonly tunnels: Slot;
  /** The decision's SafeSearch retarget, by engine; null when it has none. */
  readonly retarget: Slot | null;
}

const MODES = ['explicit', 'transparent', 'intercepted'] as const;

/**
 * The proxy's traffic as Prometheus counters. Runs on the data path, so each event is a few
 * field increments: label sets are resolved once per Decision object (decideCached hands back
 * the same object for a host until the snapshot changes) and kept in a WeakMap that dies with it.
 */
export class MetricsObserver implements ProxyObserver {
  readonly requests = new SlotCounter('vigie_requests_total', 'Proxied HTTP requests by profile, decision, category and deciding rule.', ['profile', 'decision', 'category', 'rule']);
  readonly tunnels = new SlotCounter('vigie_tunnels_total', 'CONNECT tunnels asked for, by profile, decision, category and deciding rule.', ['profile', 'decision', 'category', 'rule']);
  readonly responses = new SlotCounter('vigie_responses_total', 'Answers sent to clients by kind and status class (none: the client left first).', ['kind', 'code']);
  readonly bytes = new SlotCounter('vigie_client_bytes_total', 'Bytes exchanged with clients: direction="in" received from them, "out" sent to them (tunnels count when they close).', ['kind', 'direction']);
  readonly byMode = new SlotCounter('vigie_mode_total', 'Requests and tunnels decided, by how they reached the gateway: explicit (a proxy setting) or transparent (redirected by the firewall).', ['mode', 'kind']);
  readonly retargets = new SlotCounter('vigie_safesearch_retargets_total', "Requests and tunnels connected to a search or video provider's enforcing address (SafeSearch, YouTube restricted mode), by engine.", ['engine']);
  readonly upstreamErrors = new SlotCounter('vigie_upstream_errors_total', 'Failures reaching origins, by reason.', ['reason']);
  readonly requestDuration = new FixedHistogram('vigie_request_duration_seconds', 'Time from a request arriving to its answer ending.', REQUEST_BUCKETS);
  readonly tunnelDuration = new FixedHistogram('vigie_tunnel_duration_seconds', 'Lifetime of opened CONNECT tunnels.', TUNNEL_BUCKETS);
  readonly decisionDuration = new FixedHistogram('vigie_decision_duration_seconds', 'Time spent deciding one request or tunnel.', DECISION_BUCKETS);
  /** Open client connections and tunnels, read by a gauge at scrape time. */
  readonly active = { client: 0, tunnel: 0 };

  private readonly byDecision = new WeakMap<Decision, DecisionSlots>();
  private readonly responseSlots: { request: Slot[]; tunnel: Slot[] };
  private readonly byteSlots: { requestIn: Slot; requestOut: Slot; tunnelIn: Slot; tunnelOut: Slot };
  private readonly errorSlots = new Map<string, Slot>();
  private readonly modeSlots: Record<(typeof MODES)[number], { request: Slot; tunnel: Slot }>;

  constructor() {
    this.modeSlots = Object.fromEntries(MODES.map((m) => [m, { request: this.byMode.slot(m, 'request'), tunnel: this.byMode.slot(m, 'tunnel') }])) as MetricsObserver['modeSlots'];
    this.responseSlots = {
      request: STATUS_CLASSES.map((c) => this.responses.slot('request', c)),
      tunnel: STATUS_CLASSES.map((c) => this.responses.slot('tunnel', c)),
    };
    this.byteSlots = {
      requestIn: this.bytes.slot('request', 'in'),
      requestOut: this.bytes.slot('request', 'out'),
      tunnelIn: this.bytes.slot('tunnel', 'in'),
      tunnelOut: this.bytes.slot('tunnel', 'out'),
    };
  }

  /** Every metric this observer owns, for the registry. */
  get metrics() {
    return [this.requests, this.tunnels, this.byMode, this.retargets, this.responses, this.bytes, this.upstreamErrors, this.requestDuration, this.tunnelDuration, this.decisionDuration];
  }

  private slotsFor(d: Decision): DecisionSlots {
    let s = this.byDecision.get(d);
    if (!s) {
      const labels = [d.profile ?? 'none', d.action, d.category ?? 'none', d.rule];
      s = { requests: this.requests.slot(...labels), tunnels: this.tunnels.slot(...labels), retarget: d.retarget ? this.retargets.slot(d.retarget.engine) : null };
      this.byDecision.set(d, s);
    }
    return s;
  }

  private static statusIndex(status: number): number {
    const c = (status / 100) | 0;
    return c >= 1 && c <= 5 ? c : 0;
  }

  requestDone(rec: ConnectionRecord): void {
    const s = this.slotsFor(rec.decision);
    s.requests.value++;
    if (s.retarget !== null) s.retarget.value++;
    this.modeSlots[rec.mode ?? 'explicit'].request.value++;
    this.responseSlots.request[MetricsObserver.statusIndex(rec.status)]!.value++;
    this.byteSlots.requestIn.value += rec.bytesIn;
    this.byteSlots.requestOut.value += rec.bytesOut;
    this.requestDuration.observe(rec.durationMs / 1000);
    this.decisionDuration.observe(rec.decisionSeconds);
  }

  tunnelOpened(rec: ConnectionRecord): void {
    const s = this.slotsFor(rec.decision);
    s.tunnels.value++;
    if (s.retarget !== null) s.retarget.value++;
    this.modeSlots[rec.mode ?? 'explicit'].tunnel.value++;
    this.responseSlots.tunnel[MetricsObserver.statusIndex(rec.status)]!.value++;
    this.decisionDuration.observe(rec.decisionSeconds);
  }

  tunnelClosed(rec: ConnectionRecord): void {
    this.byteSlots.tunnelIn.value += rec.bytesIn;
    this.byteSlots.tunnelOut.value += rec.bytesOut;
    this.tunnelDuration.observe(rec.durationMs / 1000);
  }

  upstreamError(problem: UpstreamProblem): void {
    let s = this.errorSlots.get(problem);
    if (!s) this.errorSlots.set(problem, (s = this.upstreamErrors.slot(problem)));
    s.value++;
  }

  connectionsChanged(kind: 'client' | 'tunnel', delta: 1 | -1): void {
    this.active[kind] += delta;
  }
}
