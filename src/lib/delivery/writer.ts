import { S3Error } from "../s3/errors";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Upper bound of the first backoff; each later one doubles, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 20_000 };

/** How much the writer holds in memory: writes queued and in flight. */
export interface QueueBounds {
  maxMessages: number;
  maxBytes: number;
}

export const DEFAULT_BOUNDS: QueueBounds = { maxMessages: 10_000, maxBytes: 64 * 1024 * 1024 };

/** Totals since the writer started. */
export interface DeliveryCounts {
  written: number;
  /** Attempts that failed transiently and were run again. */
  retried: number;
  failed: number;
}

export interface WriterEvents {
  /** A write failed with a transient error and will run again after delayMs. */
  onRetry?(error: S3Error, attempt: number, delayMs: number): void;
  /** Queue depth or writes in flight changed. */
  onChange?(): void;
  /** A request succeeded after `milliseconds` (its last attempt alone). */
  onSucceeded?(milliseconds: number): void;
}

/** The writer holds as many msgs or bytes as its bounds allow; the msg was not accepted. */
export class QueueFullError extends Error {
  override readonly name = "QueueFullError";
  readonly code = "QUEUE_FULL";
  constructor(bounds: QueueBounds, held: { messages: number; bytes: number }) {
    super(
      `queue full: ${held.messages} msgs / ${held.bytes} bytes waiting (limits ${bounds.maxMessages} msgs / ${bounds.maxBytes} bytes); msg not accepted`,
    );
    // A burst refuses thousands of msgs at once and Node-RED copies each error's stack into the
    // Catch msg; where in the writer it was refused tells the user nothing, so keep no frames.
    this.stack = `${this.name}: ${this.message}`;
  }
}

/** The writer was closed (redeploy or shutdown) before this write could finish. */
export class WriterClosedError extends Error {
  override readonly name = "WriterClosedError";
  readonly code = "CLOSED";
  constructor(readonly lastError?: Error) {
    super(`the node closed (redeploy or shutdown) before the write finished${lastError ? `; last attempt: ${lastError.message}` : ""}`);
  }
}

export interface SubmitOptions {
  bytes?: number;
  countsAsWritten?: boolean;
  admitted?: boolean;
}

interface Job {
  task: () => Promise<unknown>;
  bytes: number;
  countsAsWritten: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Runs S3 writes with at most `concurrency` in flight, in arrival order, retrying transient
 * failures with exponential backoff and full jitter. A write holds its slot while it backs off,
 * so a throttled endpoint sees less traffic, not more. What it holds (queued and in flight) is
 * bounded in msgs and bytes: `submit` refuses work beyond the bounds, `hasRoom` says beforehand.
 */
export class Writer {
  private readonly queue: Job[] = [];
  private queueHead = 0;
  private running = 0;
  private heldBytes = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly backoffs = new Map<NodeJS.Timeout, () => void>();
  private closing = false;
  readonly counts: DeliveryCounts = { written: 0, retried: 0, failed: 0 };

  constructor(
    private readonly concurrency: number,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly events: WriterEvents = {},
    private readonly bounds: QueueBounds = DEFAULT_BOUNDS,
    private readonly random: () => number = Math.random,
  ) {}

  /** Writes waiting for a slot. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  get inFlight(): number {
    return this.running;
  }

  /** Writes allowed in flight at once. */
  get limit(): number {
    return this.concurrency;
  }

  /** Bytes held by writes queued and in flight. */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  /** Whether a write of `bytes` fits the bounds now. An empty writer takes any one write, so a large msg is never refused forever. */
  hasRoom(bytes: number): boolean {
    const held = this.queued + this.running;
    if (held === 0) return true;
    return held < this.bounds.maxMessages && this.heldBytes + bytes <= this.bounds.maxBytes;
  }

  /** The error a write beyond the bounds is refused with. */
  fullError(): QueueFullError {
    return new QueueFullError(this.bounds, { messages: this.queued + this.running, bytes: this.heldBytes });
  }

  /**
   * Queues a write; rejects with QueueFullError when it does not fit the bounds, WriterClosedError once closed.
   * - `bytes`: what it holds in memory until it ends, counted against the byte bound;
   * - `countsAsWritten: false` keeps a request that stores no object by itself (a multipart
   *   upload's create, parts, abort) out of `counts.written`;
   * - `admitted: true` marks work already accepted (a batch, or a part of an accepted msg): it is
   *   counted but never refused by the bounds, which only decide what new msgs may enter.
   */
  submit<T>(task: () => Promise<T>, options: SubmitOptions = {}): Promise<T> {
    const { bytes = 0, countsAsWritten = true, admitted = false } = options;
    if (this.closing) return Promise.reject(new WriterClosedError());
    if (!admitted && !this.hasRoom(bytes)) return Promise.reject(this.fullError());
    return new Promise<T>((resolve, reject) => {
      this.heldBytes += bytes;
      this.queue.push({ task, bytes, countsAsWritten, resolve: resolve as (value: unknown) => void, reject });
      this.pump();
      this.events.onChange?.();
    });
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.queued === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops the writer: queued writes and writes backing off fail at once with WriterClosedError;
   * writes in flight end with their current attempt (await `idle()` for them).
   */
  close(): void {
    this.closing = true;
    const abandoned = this.queue.slice(this.queueHead);
    this.queue.length = 0;
    this.queueHead = 0;
    for (const job of abandoned) {
      this.heldBytes -= job.bytes;
      job.reject(new WriterClosedError());
    }
    for (const [timer, wake] of this.backoffs) {
      clearTimeout(timer);
      wake();
    }
    this.backoffs.clear();
    this.settleIdle();
  }

  private pump(): void {
    while (!this.closing && this.running < this.concurrency && this.queueHead < this.queue.length) {
      const job = this.queue[this.queueHead];
      this.queue[this.queueHead++] = undefined as unknown as Job;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      this.running++;
      this.run(job).finally(() => {
        this.running--;
        this.heldBytes -= job.bytes;
        this.pump();
        this.events.onChange?.();
        this.settleIdle();
      });
    }
  }

  private settleIdle(): void {
    if (this.running !== 0 || this.queued !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private async run(job: Job): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const started = performance.now();
        const result = await job.task();
        this.events.onSucceeded?.(performance.now() - started);
        if (job.countsAsWritten) this.counts.written++;
        job.resolve(result);
        return;
      } catch (error) {
        if (this.closing && error instanceof S3Error && error.retryable) {
          job.reject(new WriterClosedError(error));
          return;
        }
        if (!(error instanceof S3Error) || !error.retryable || attempt >= this.retry.attempts) {
          this.counts.failed++;
          job.reject(error);
          return;
        }
        this.counts.retried++;
        const delay = this.backoff(attempt);
        this.events.onRetry?.(error, attempt, delay);
        await this.sleep(delay);
        if (this.closing) {
          job.reject(new WriterClosedError(error));
          return;
        }
      }
    }
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
