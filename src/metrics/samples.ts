/**
 * Metric types that prom-client's Registry can expose but whose update is a plain field
 * increment. prom-client's own `inc(labels)`/`observe()` hash the label object and allocate a
 * closure on every call; on the proxy's path we want neither, so the label sets are resolved once
 * into slots and the hot path only adds numbers. Exposition still goes through prom-client.
 */

export interface Sample {
  value: number;
  labels: Record<string, string>;
  metricName?: string;
}

export interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: Sample[];
  aggregator: 'sum';
}

/** What prom-client's Registry calls on a registered metric. */
export interface ExposedMetric {
  readonly name: string;
  get(): MetricData;
  reset(): void;
}

/** One label set of a SlotCounter: the hot path does `slot.value += n`. */
export interface Slot {
  value: number;
  readonly labels: Record<string, string>;
}

/** A labelled counter whose children are looked up once and then incremented directly. */
export class SlotCounter implements ExposedMetric {
  private readonly slots = new Map<string, Slot>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
  ) {}

  /** The slot for these label values (in `labelNames` order); created at zero on first use. */
  slot(...values: string[]): Slot {
    const key = values.join('\u0000');
    let s = this.slots.get(key);
    if (!s) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      s = { value: 0, labels };
      this.slots.set(key, s);
    }
    return s;
  }

  get(): MetricData {
    return { name: this.name, help: this.help, type: 'counter', values: [...this.slots.values()].map((s) => ({ value: s.value, labels: s.labels })), aggregator: 'sum' };
  }

  reset(): void {
    for (const s of this.slots.values()) s.value = 0;
  }
}

/** A histogram without labels and with fixed buckets; `observe` is a short scan and two adds. */
export class FixedHistogram implements ExposedMetric {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    for (let i = 1; i < bounds.length; i++) if (!(bounds[i]! > bounds[i - 1]!)) throw new Error(`${name}: buckets must increase`);
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }

  get(): MetricData {
    const values: Sample[] = [];
    let acc = 0;
    this.bounds.forEach((le, i) => {
      acc += this.counts[i]!;
      values.push({ metricName: `${this.name}_bucket`, labels: { le: String(le) }, value: acc });
    });
    values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: this.count });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.count });
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

/**
 * A metric whose samples are read from elsewhere at scrape time (journal counters, list sizes):
 * the component keeps its own totals and the registry only asks for them.
 */
export class CollectedMetric implements ExposedMetric {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: MetricData['type'],
    private readonly read: () => Sample[],
  ) {}

  get(): MetricData {
    let values: Sample[];
    try {
      values = this.read();
    } catch {
      // A scrape must not fail because one source is half-built (e.g. during start or reload).
      values = [];
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }

  reset(): void {}
}
