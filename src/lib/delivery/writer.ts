import { S3Error } from "../s3/errors";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Upper bound of the first backoff; each later one doubles, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 20_000 };

export interface WriterEvents {
  /** A write failed with a transient error and will run again after delayMs. */
  onRetry?(error: S3Error, attempt: number, delayMs: number): void;
  /** Queue depth or writes in flight changed. */
  onChange?(): void;
}

interface Job {
  task: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs S3 writes with at most `concurrency` in flight, in arrival order, retrying transient
 * failures with exponential backoff and full jitter. A write holds its slot while it backs off,
 * so a throttled endpoint sees less traffic, not more.
 */
export class Writer {
  private readonly queue: Job[] = [];
  private queueHead = 0;
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly backoffs = new Map<NodeJS.Timeout, () => void>();
  private closing = false;

  constructor(
    private readonly concurrency: number,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly events: WriterEvents = {},
    private readonly random: () => number = Math.random,
  ) {}

  /** Writes waiting for a slot. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  get inFlight(): number {
    return this.running;
  }

  submit<T>(task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ task, resolve: resolve as (value: unknown) => void, reject });
      this.pump();
      this.events.onChange?.();
    });
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.queued === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queueHead < this.queue.length) {
      const job = this.queue[this.queueHead];
      this.queue[this.queueHead++] = undefined as unknown as Job;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      this.running++;
      this.run(job).finally(() => {
        this.running--;
        this.pump();
        this.events.onChange?.();
        if (this.running === 0 && this.queued === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const wake of waiters) wake();
        }
      });
    }
  }

  private async run(job: Job): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        job.resolve(await job.task());
        return;
      } catch (error) {
        if (!(error instanceof S3Error) || !error.retryable || attempt >= this.retry.attempts || this.closing) {
          job.reject(error);
          return;
        }
        const delay = this.backoff(attempt);
        this.events.onRetry?.(error, attempt, delay);
        await this.sleep(delay);
        if (this.closing) {
          job.reject(error);
          return;
        }
      }
    }
  }

  /** Stops retrying: writes backing off fail at once with their last error; writes in flight end with their current attempt. */
  close(): void {
    this.closing = true;
    for (const [timer, wake] of this.backoffs) {
      clearTimeout(timer);
      wake();
    }
    this.backoffs.clear();
  }

  /** Full jitter: a random delay up to the exponential bound. */
  private backoff(attempt: number): number {
    const bound = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
    return Math.round(this.random() * bound);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.backoffs.delete(timer);
        resolve();
      }, ms);
      this.backoffs.set(timer, resolve);
    });
  }
}
