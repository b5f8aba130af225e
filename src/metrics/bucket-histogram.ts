import type { Metric, Registry, RegistryContentType } from "prom-client";

/**
 * A Prometheus histogram for the per-tick and per-write hot paths, exposed through prom-client's
 * registry exactly as a prom-client `Histogram` is (the same `_bucket`, `_sum` and `_count` lines,
 * labels in the same order), but observed by a bucket search and three additions into typed
 * arrays. prom-client's `observe` builds a labels object, validates and hashes it on every call:
 * at one call per tick that was about a tenth of the embedded pipeline's time.
 *
 * At most one label, whose values are a closed list given up front (an operation name, say); a
 * series appears once it is observed or zeroed, as with prom-client.
 */
export interface BucketHistogramOptions<V extends string> {
  name: string;
  help: string;
  /** Upper bounds, ascending; `+Inf` is added. */
  buckets: readonly number[];
  registers: readonly Registry<RegistryContentType>[];
  label?: { name: string; values: readonly V[] };
}

interface ExportedValue {
  labels: Record<string, string | number>;
  sharedLabels: Record<string, string>;
  value: number;
  metricName: string;
}

export class BucketHistogram<V extends string = never> {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly bounds: Float64Array;
  private readonly labelName: string | undefined;
  private readonly labelValues: readonly V[];
  private readonly indexOf = new Map<string, number>();
  /** Per series, one count per bounded bucket (not cumulative); +Inf is the series' total. */
  private readonly counts: Float64Array;
  private readonly sums: Float64Array;
  private readonly totals: Float64Array;
  private readonly seen: Uint8Array;

  constructor(options: BucketHistogramOptions<V>) {
    const sorted = [...options.buckets].every((b, i, all) => i === 0 || b > (all[i - 1] as number));
    if (!sorted || options.buckets.length === 0) {
      throw new TypeError(`${options.name}: buckets must be ascending and not empty`);
    }
    this.name = options.name;
    this.help = options.help;
    this.bounds = Float64Array.from(options.buckets);
    this.labelName = options.label?.name;
    this.labelValues = options.label?.values ?? [];
    for (const [i, value] of this.labelValues.entries()) this.indexOf.set(value, i);
    const series = Math.max(1, this.labelValues.length);
    this.counts = new Float64Array(series * this.bounds.length);
    this.sums = new Float64Array(series);
    this.totals = new Float64Array(series);
    this.seen = new Uint8Array(series);
    // prom-client types a registry's metrics as its own four classes; the registry itself only
    // reads name, help, type, aggregator, get() / getForPromString() and reset().
    for (const registry of options.registers) registry.registerMetric(this as unknown as Metric);
  }

  /** Records one value (seconds, say) for the label value `of` (none for a label-less histogram). */
  observe(value: number, of?: V): void {
    if (!Number.isFinite(value)) throw new TypeError(`${this.name}: value is not a valid number: ${value}`);
    const series = this.series(of);
    const bounds = this.bounds;
    let bucket = 0;
    while (bucket < bounds.length && value > (bounds[bucket] as number)) bucket++;
    if (bucket < bounds.length) {
      const at = series * bounds.length + bucket;
      this.counts[at] = (this.counts[at] as number) + 1;
    }
    this.sums[series] = (this.sums[series] as number) + value;
    this.totals[series] = (this.totals[series] as number) + 1;
    this.seen[series] = 1;
  }

  /** Makes a label value's series appear with zero counts before anything is observed. */
  zero(of?: V): void {
    this.seen[this.series(of)] = 1;
  }

  reset(): void {
    this.counts.fill(0);
    this.sums.fill(0);
    this.totals.fill(0);
    this.seen.fill(0);
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: object[] }> {
    const data = await this.getForPromString();
    return {
      ...data,
      // As prom-client's: a bucket carries an exemplar slot (none here), the sum and count do not.
      values: data.values.map(({ labels, sharedLabels, value, metricName }) => ({
        value,
        metricName,
        labels: { ...labels, ...sharedLabels },
        ...(metricName.endsWith("_bucket") ? { exemplar: null } : {}),
      })),
    };
  }

  /** What the registry writes out: prom-client's own histogram layout. */
  async getForPromString(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: ExportedValue[];
  }> {
    const values: ExportedValue[] = [];
    const width = this.bounds.length;
    for (let series = 0; series < this.seen.length; series++) {
      if (!this.seen[series]) continue;
      const shared: Record<string, string> =
        this.labelName === undefined ? {} : { [this.labelName]: this.labelValues[series] as string };
      let cumulative = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        cumulative += this.counts[series * width + i] as number;
        values.push(this.value({ le: this.bounds[i] as number }, shared, cumulative, "_bucket"));
      }
      const total = this.totals[series] as number;
      values.push(this.value({ le: "+Inf" }, shared, total, "_bucket"));
      values.push(this.value({}, shared, this.sums[series] as number, "_sum"));
      values.push(this.value({}, shared, total, "_count"));
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  private value(
    labels: Record<string, string | number>,
    sharedLabels: Record<string, string>,
    value: number,
    suffix: string,
  ): ExportedValue {
    return { labels, sharedLabels, value, metricName: `${this.name}${suffix}` };
  }

  private series(of: V | undefined): number {
    if (this.labelName === undefined) {
      if (of !== undefined) throw new TypeError(`${this.name}: has no label, got "${of}"`);
      return 0;
    }
    const index = of === undefined ? undefined : this.indexOf.get(of);
    if (index === undefined)
      throw new TypeError(`${this.name}: ${this.labelName} "${of}" is not one of its values`);
    return index;
  }
}
