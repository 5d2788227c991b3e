/** Upper bounds (seconds) of the request-duration buckets: loopback to a slow S3 region under throttling. */
export const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/**
 * A fixed-bucket histogram of durations, as Prometheus keeps them: observing is a short scan
 * and two additions, nothing allocated. Counts are per bucket here and made cumulative on export.
 */
export class DurationHistogram {
  /** One slot per bound, plus the last for everything above (+Inf). */
  private readonly slots = new Float64Array(DURATION_BUCKETS_S.length + 1);
  private sumSeconds = 0;
  private observed = 0;

  observe(milliseconds: number): void {
    const seconds = milliseconds / 1000;
    let slot = 0;
    while (slot < DURATION_BUCKETS_S.length && seconds > DURATION_BUCKETS_S[slot]) slot++;
    this.slots[slot]++;
    this.sumSeconds += seconds;
    this.observed++;
  }

  get count(): number {
    return this.observed;
  }

  get sum(): number {
    return this.sumSeconds;
  }

  /** Cumulative counts per upper bound, +Inf last, as the exposition format lists them. */
  cumulative(): { le: number; count: number }[] {
    let running = 0;
    const buckets: { le: number; count: number }[] = DURATION_BUCKETS_S.map((le, slot) => ({ le, count: (running += this.slots[slot]) }));
    buckets.push({ le: Number.POSITIVE_INFINITY, count: this.observed });
    return buckets;
  }
}
