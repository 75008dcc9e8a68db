import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { Counter } from 'prom-client';
import type { Gateway } from '../gateway.js';
import type { Logger } from '../log.js';
import { PolicyValidationError } from '../policy/store.js';
import { BundleError, publicKeyFrom, verifyBundle } from './bundle.js';

export type FleetOutcome = 'applied' | 'not-modified' | 'current' | 'rejected' | 'error';

export interface FleetStatus {
  url: string;
  intervalSeconds: number;
  lastCheck: string | null;
  lastOutcome: FleetOutcome | null;
  /** Why the last bundle was refused or the fetch failed; null after a good check. */
  lastError: string | null;
  lastRejection: { time: string; reason: string; message: string } | null;
  appliedBundleVersion: number | null;
  etag: string | null;
}

/** Bundle pulls by outcome (and rejection reason); registered by whoever owns the metrics registry. */
export const fleetBundlesMetric = () =>
  new Counter({ name: 'vigie_fleet_bundles_total', help: 'Policy bundle pulls by outcome (applied, not-modified, current, rejected, error) and rejection reason.', labelNames: ['outcome', 'reason'], registers: [] });

const MAX_BUNDLE_BYTES = 32 * 1048576;

/** The body as text, refusing more than `max` bytes whatever the headers claim. */
async function readBounded(res: Response, max: number): Promise<string> {
  if (Number(res.headers.get('content-length') ?? 0) > max) throw new Error(`bundle larger than ${max} bytes`);
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > max) throw new Error(`bundle larger than ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Pull mode: gateways behind NAT poll the academy's signed policy bundle (with ETag), verify the
 * signature, refuse older versions, and apply it as a new policy version. Anything wrong leaves
 * the current policy in force and says so in the log, the health endpoint and the metric.
 */
export class FleetPuller {
  readonly status: FleetStatus;
  readonly metric = fleetBundlesMetric();
  private readonly key: KeyObject;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<FleetOutcome> | null = null;

  constructor(
    private readonly gateway: Gateway,
    private readonly log: Logger,
    fleet: { url: string; publicKey: string; intervalSeconds?: number },
  ) {
    this.key = publicKeyFrom(fleet.publicKey, (f) => readFileSync(f, 'utf8'));
    this.status = {
      url: fleet.url,
      intervalSeconds: fleet.intervalSeconds ?? 300,
      lastCheck: null,
      lastOutcome: null,
      lastError: null,
      lastRejection: null,
      appliedBundleVersion: gateway.policy.current.meta.bundleVersion,
      etag: null,
    };
  }

  start(): void {
    const tick = () => void this.pull().finally(() => {
      if (this.timer) this.timer = setTimeout(tick, this.status.intervalSeconds * 1000).unref();
    });
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** One poll; concurrent calls share it. */
  pull(): Promise<FleetOutcome> {
    this.running ??= this.pullOnce().finally(() => (this.running = null));
    return this.running;
  }

  private done(outcome: FleetOutcome, reason = ''): FleetOutcome {
    this.status.lastOutcome = outcome;
    this.metric.inc({ outcome, reason });
    return outcome;
  }

  private reject(reason: string, message: string): FleetOutcome {
    const time = new Date().toISOString();
    this.status.lastError = message;
    this.status.lastRejection = { time, reason, message };
    this.log.error(`fleet: bundle rejected (${reason}), the current policy stays: ${message}`, { url: this.status.url, policyVersion: this.gateway.policy.version });
    this.gateway.alerts?.securityEvent('bundle-refused', 'error', `a fleet policy bundle was refused (${reason}); the current policy stays`, { reason, message: message.slice(0, 300), url: this.status.url.split('?')[0] });
    return this.done('rejected', reason);
  }

  private async pullOnce(): Promise<FleetOutcome> {
    const { url } = this.status;
    this.status.lastCheck = new Date().toISOString();
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { headers: this.status.etag ? { 'if-none-match': this.status.etag } : {}, signal: AbortSignal.timeout(30_000), redirect: 'follow' });
      if (res.status === 304) {
        this.status.lastError = null;
        return this.done('not-modified');
      }
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      text = await readBounded(res, MAX_BUNDLE_BYTES);
    } catch (e) {
      this.status.lastError = `fetch failed: ${(e as Error).message}`;
      this.log.warn('fleet: cannot fetch the policy bundle; the current policy stays', { url, reason: (e as Error).message });
      return this.done('error');
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      return this.reject('format', `not JSON: ${(e as Error).message}`);
    }
    const store = this.gateway.policy;
    try {
      const payload = verifyBundle(doc, this.key);
      const applied = store.current.meta.bundleVersion;
      if (applied !== null && payload.version < applied) throw new BundleError('stale', `bundle version ${payload.version} is older than the applied version ${applied}`);
      if (applied !== null && payload.version === applied) {
        this.status.etag = res.headers.get('etag');
        this.status.lastError = null;
        return this.done('current');
      }
      await store.change({ who: 'fleet', why: `bundle ${payload.version} from ${url} (${payload.origin ?? '?'}, ${payload.created ?? '?'})`, action: 'fleet.apply', source: 'fleet', bundleVersion: payload.version }, (d) => {
        d.profiles = payload.profiles;
        d.lists = Object.fromEntries(Object.entries(payload.lists).map(([n, l]) => [n, { ...l, changedIn: 0 }]));
      });
      await this.gateway.recompile();
      this.status.etag = res.headers.get('etag');
      this.status.appliedBundleVersion = payload.version;
      this.status.lastError = null;
      this.log.info('fleet: policy bundle applied', { bundleVersion: payload.version, policyVersion: store.version });
      return this.done('applied');
    } catch (e) {
      if (e instanceof BundleError) return this.reject(e.reason, e.message);
      if (e instanceof PolicyValidationError) return this.reject('invalid', e.message.slice(0, 500));
      this.status.lastError = (e as Error).message;
      this.log.error(`fleet: applying the bundle failed, the current policy stays: ${(e as Error).message}`, { url });
      return this.done('error');
    }
  }
}
