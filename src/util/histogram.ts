/** A cumulative histogram as Prometheus keeps one: counts per upper bound, the sum and the count of the samples. */
export class Histogram {
  private readonly counts: number[];
  private total = 0;
  private n = 0;

  /** `bounds`: the buckets' upper bounds, ascending (the +Inf bucket is implied). */
  constructor(readonly bounds: readonly number[]) {
    if (bounds.some((b, i) => i > 0 && !(b > bounds[i - 1]))) throw new Error(`Histogram: bounds must ascend, got ${bounds.join(', ')}`);
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]) this.counts[i]++;
    this.total += value;
    this.n++;
  }

  /** Samples ≤ each bound (cumulative, as Prometheus' `_bucket{le}`), then the sum and the count (the +Inf bucket). */
  snapshot(): { buckets: { le: number; count: number }[]; sum: number; count: number } {
    return { buckets: this.bounds.map((le, i) => ({ le, count: this.counts[i] })), sum: this.total, count: this.n };
  }
}
