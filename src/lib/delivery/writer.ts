import { S3Error } from "../s3/errors";
import type { AttemptSignal, ConcurrencyLimit } from "./concurrency";

export interface RetryPolicy {
  /**
   * How long a write keeps retrying transient failures, from its first failure that is not
   * throttling (ms); Infinity retries until it is written. Throttling answers (SlowDown, 429)
   * shrink the concurrency limit instead and do not start this clock.
   */
  giveUpAfterMs: number;
  /** Upper bound of the first backoff; each later one doubles, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { giveUpAfterMs: 10 * 60_000, baseDelayMs: 100, maxDelayMs: 20_000 };

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
  constructor(
    bounds: QueueBounds,
    readonly held: { messages: number; bytes: number },
  ) {
    super(
      `queue full: ${held.messages} msgs / ${held.bytes} bytes waiting (limits ${bounds.maxMessages} msgs / ${bounds.maxBytes} bytes); msg not accepted`,
    );
    // A burst refuses thousands of msgs at once and Node-RED copies each error's stack into the
    // Catch msg; where in the writer it was refused tells the user nothing, so keep no frames.
    this.stack = `${this.name}: ${this.message}`;
  }

  /** Node-RED builds each Catch msg's error.message with toString(): the stack's one line, not a new string per refused msg. */
  override toString(): string {
    return this.stack ?? super.toString();
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

/**
 * One write as the writer queues it: an object with methods rather than a promise and closures,
 * so a queued msg costs little beyond its payload.
 */
export interface WriteJob<T = unknown> {
  /** Bytes held in memory until the job ends, counted against the byte bound. */
  readonly bytes: number;
  /** False for a request that stores no object by itself (a multipart upload's create, parts, abort). */
  readonly countsAsWritten: boolean;
  /** One attempt; `attempt` counts from 1. */
  attempt(attempt: number): Promise<T>;
  /** Called exactly once, with the result or with the error that ended the write. */
  settle(error: Error | undefined, result?: T): void;
}

/** Throttling answers: the endpoint is alive and asks for less; they shrink the limit without using up the time budget. */
const THROTTLING_CODES = new Set(["SlowDown", "Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"]);
/**
 * Answers and failures that also mean overload: the limit shrinks, the budget runs. EMFILE and
 * ENFILE: this process or the system has no file descriptor left for another connection.
 */
const OVERLOAD_CODES = new Set(["ServiceUnavailable", "RequestTimeout", "RequestTimeoutException", "TimeoutError", "ETIMEDOUT", "EMFILE", "ENFILE"]);

function isThrottling(error: unknown): boolean {
  return error instanceof S3Error && (error.statusCode === 429 || THROTTLING_CODES.has(error.code));
}

/** What a failed attempt tells the concurrency limit. */
function signalOf(error: unknown): AttemptSignal {
  if (!(error instanceof S3Error)) return "other";
  return isThrottling(error) || error.statusCode === 503 || OVERLOAD_CODES.has(error.code) ? "throttled" : "other";
}

/** The promise API over a job, for callers that await one request (multipart parts, batches). */
class PromisedJob<T> implements WriteJob<T> {
  resolve!: (value: T) => void;
  reject!: (error: Error) => void;
  constructor(
    private readonly task: () => Promise<T>,
    readonly bytes: number,
    readonly countsAsWritten: boolean,
  ) {}

  attempt(): Promise<T> {
    return this.task();
  }

  settle(error: Error | undefined, result?: T): void {
    if (error) this.reject(error);
    else this.resolve(result as T);
  }
}

/**
 * Runs S3 writes in arrival order, as many at once as its concurrency limit allows (a limit may
 * be shared with other writers of the same config node), retrying transient failures with capped
 * exponential backoff and full jitter until the retry policy's time budget runs out. A write
 * holds its slot while it backs off, so a throttled endpoint sees less traffic, not more. What it
 * holds (queued, in flight and reserved) is bounded in msgs and bytes: new msgs beyond the bounds
 * are refused, `hasRoom` says beforehand.
 */
export class Writer {
  private readonly queue: (WriteJob | undefined)[] = [];
  private queueHead = 0;
  private running = 0;
  private heldBytes = 0;
  /** Accepted msgs whose bytes are reserved as a whole (large ones, written in parts). */
  private reservedMessages = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly backoffs = new Map<NodeJS.Timeout, () => void>();
  private closing = false;
  private lastFullError: QueueFullError | undefined;
  private readonly unsubscribe: () => void;
  readonly counts: DeliveryCounts = { written: 0, retried: 0, failed: 0 };

  constructor(
    readonly limit: ConcurrencyLimit,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
    private readonly events: WriterEvents = {},
    private readonly bounds: QueueBounds = DEFAULT_BOUNDS,
    private readonly random: () => number = Math.random,
  ) {
    this.unsubscribe = limit.subscribe(() => this.pump());
  }

  /** Writes waiting for a slot. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  get inFlight(): number {
    return this.running;
  }

  /** Bytes held by writes queued and in flight. */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  /** Msgs held against the bounds: queued, in flight and reserved. */
  private get heldMessages(): number {
    return this.queued + this.running + this.reservedMessages;
  }

  /** Whether a write of `bytes` fits the bounds now. An empty writer takes any one write, so a large msg is never refused forever. */
  hasRoom(bytes: number): boolean {
    const held = this.heldMessages;
    if (held === 0) return true;
    return held < this.bounds.maxMessages && this.heldBytes + bytes <= this.bounds.maxBytes;
  }

  /** The error a write beyond the bounds is refused with; the same one while nothing changes, as a burst refuses thousands at once. */
  fullError(): QueueFullError {
    const held = { messages: this.heldMessages, bytes: this.heldBytes };
    const last = this.lastFullError;
    if (last && last.held.messages === held.messages && last.held.bytes === held.bytes) return last;
    this.lastFullError = new QueueFullError(this.bounds, held);
    return this.lastFullError;
  }

  /**
   * Accepts one msg of `bytes` as a whole, for a write that goes out in several requests (its
   * parts then enter `admitted`): the refusal when it does not fit or the writer is closed, else
   * undefined; `unreserve` once its last request ended.
   */
  reserve(bytes: number): Error | undefined {
    if (this.closing) return new WriterClosedError();
    if (!this.hasRoom(bytes)) return this.fullError();
    this.reservedMessages++;
    this.heldBytes += bytes;
    this.events.onChange?.();
    return undefined;
  }

  unreserve(bytes: number): void {
    this.reservedMessages--;
    this.heldBytes -= bytes;
    this.events.onChange?.();
    this.settleIdle();
  }

  /**
   * Queues a job, or returns the error it is refused with (QueueFullError beyond the bounds,
   * WriterClosedError once closed) without calling `settle`. `admitted: true` marks work already
   * accepted (a batch, or a part of an accepted msg): counted, never refused by the bounds.
   */
  enqueue(job: WriteJob, admitted = false): Error | undefined {
    if (this.closing) return new WriterClosedError();
    if (!admitted && !this.hasRoom(job.bytes)) return this.fullError();
    this.heldBytes += job.bytes;
    this.queue.push(job);
    this.pump();
    this.events.onChange?.();
    return undefined;
  }

  /**
   * `enqueue` as a promise, rejecting with the refusal.
   * - `bytes`: what it holds in memory until it ends, counted against the byte bound;
   * - `countsAsWritten: false` keeps a request that stores no object by itself out of `counts.written`;
   * - `admitted: true`: see `enqueue`.
   */
  submit<T>(task: () => Promise<T>, options: SubmitOptions = {}): Promise<T> {
    const { bytes = 0, countsAsWritten = true, admitted = false } = options;
    const job = new PromisedJob(task, bytes, countsAsWritten);
    const settled = new Promise<T>((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
    });
    const refusal = this.enqueue(job, admitted);
    return refusal ? Promise.reject(refusal) : settled;
  }

  /** Resolves once nothing is queued, in flight or reserved. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops the writer: queued writes and writes backing off fail at once with WriterClosedError;
   * writes in flight end with their current attempt (await `idle()` for them).
   */
  close(): void {
    this.closing = true;
    this.unsubscribe();
    const abandoned = this.queue.slice(this.queueHead);
    this.queue.length = 0;
    this.queueHead = 0;
    for (const job of abandoned) {
      if (!job) continue;
      this.heldBytes -= job.bytes;
      job.settle(new WriterClosedError());
    }
    for (const [timer, wake] of this.backoffs) {
      clearTimeout(timer);
      wake();
    }
    this.backoffs.clear();
    this.settleIdle();
  }

  private isIdle(): boolean {
    return this.heldMessages === 0;
  }

  private pump(): void {
    while (!this.closing && this.queueHead < this.queue.length && this.limit.tryAcquire()) {
      const job = this.queue[this.queueHead] as WriteJob;
      this.queue[this.queueHead++] = undefined;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      this.running++;
      void this.run(job).finally(() => {
        this.running--;
        this.heldBytes -= job.bytes;
        this.events.onChange?.();
        // Wakes every writer sharing the limit, this one included.
        this.limit.release();
        this.settleIdle();
      });
    }
  }

  private settleIdle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private async run(job: WriteJob): Promise<void> {
    /** When the first failure that was not throttling happened: the time budget runs from there. */
    let failingSince: number | undefined;
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        const result = await job.attempt(attempt);
        const elapsed = performance.now() - started;
        this.limit.record("answered", elapsed);
        this.events.onSucceeded?.(elapsed);
        if (job.countsAsWritten) this.counts.written++;
        job.settle(undefined, result);
        return;
      } catch (caught) {
        const error = caught as Error;
        this.limit.record(signalOf(error), performance.now() - started);
        if (this.closing && error instanceof S3Error && error.retryable) {
          job.settle(new WriterClosedError(error));
          return;
        }
        if (!(error instanceof S3Error) || !error.retryable) {
          this.counts.failed++;
          job.settle(error);
          return;
        }
        const now = Date.now();
        if (!isThrottling(error)) failingSince ??= now;
        const delay = this.backoff(attempt);
        if (failingSince !== undefined && now + delay - failingSince > this.retry.giveUpAfterMs) {
          this.counts.failed++;
          job.settle(gaveUp(error, now - failingSince, attempt));
          return;
        }
        this.counts.retried++;
        this.events.onRetry?.(error, attempt, delay);
        await this.sleep(delay);
        if (this.closing) {
          job.settle(new WriterClosedError(error));
          return;
        }
      }
    }
  }

  /** Full jitter: a random delay up to the exponential bound. */
  private backoff(attempt: number): number {
    const bound = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** Math.min(attempt - 1, 30));
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

/** The last error of a write whose time budget ran out, saying so. */
function gaveUp(error: S3Error, failingMs: number, attempts: number): S3Error {
  const seconds = Math.round(failingMs / 100) / 10;
  return new S3Error(error.code, `${error.message.slice(error.code.length + 2)} (gave up after ${attempts} attempts in ${seconds} s)`, error.statusCode, true);
}
