import { InputError } from "../core/errors";
import { OpenBatchesFullError } from "../delivery/batches";
import { QueueFullError, WriterClosedError } from "../delivery/writer";
import { S3Error } from "../s3/errors";
import { DurationHistogram } from "./histogram";

/**
 * Why a msg was refused or failed:
 * - `input`: the msg cannot be written as it is (InputError);
 * - `queue_full`: refused because the node held as much as its bounds allow (queued writes, or open batches);
 * - `permanent`: S3 refused the write (AccessDenied, NoSuchBucket, …), by S3 error code;
 * - `gave_up`: a transient failure outlasted the retries, by S3 error code;
 * - `closed`: the node closed (redeploy, shutdown) without a spool before the write finished;
 * - `other`: anything else (a spool that cannot be written, …).
 */
export const FAILURE_CLASSES = ["input", "queue_full", "permanent", "gave_up", "closed", "other"] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

/** What the node holds right now, read from its live objects when someone looks (scrape, sidebar tick), never pushed. */
export interface LiveGauges {
  writesInFlight: number;
  concurrencyLimit: number;
  queuedMsgs: number;
  queuedBytes: number;
  spoolRecords: number;
  spoolBytes: number;
  /** When the oldest record still in the spool was made durable (epoch ms), or undefined with none. */
  spoolOldestAt: number | undefined;
  openBatches: number;
  bufferedBytes: number;
  /** Bytes of open batches kept on disk (spill files or spool records) instead of in memory. */
  spilledBytes: number;
  /** Batch memory: what open batches may hold in memory (0 on the Messages route). */
  batchMemoryBudget: number;
  /** Msgs waiting for a write (queued, in flight, or spooled for later): what the stall signal watches. */
  waitingMsgs: number;
}

export interface LastError {
  code: string;
  message: string;
  /** Epoch ms. */
  at: number;
}

/**
 * The counters of one s3-egress node. Updated on the hot path at the cost of a few additions:
 * no allocation per msg (the maps are keyed by strings that exist already: S3 error codes).
 */
export class EgressMetrics {
  objectsWritten = 0;
  bytesWritten = 0;
  /** Epoch ms of the last object written, 0 before the first. */
  lastWriteAt = 0;
  lastError: LastError | undefined;
  /** The code of a permanent S3 failure not followed by a successful write since: the node needs attention. */
  permanentFailure: string | undefined;
  /** Since when msgs have been waiting without a write in between (epoch ms, 0 when none wait); kept by `observeWaiting`. */
  waitingSince = 0;
  readonly retries = new Map<string, number>();
  /** Per class, counts by S3 error code ("" for the classes without one). */
  readonly failures: Record<FailureClass, Map<string, number>> = {
    input: new Map(),
    queue_full: new Map(),
    permanent: new Map(),
    gave_up: new Map(),
    closed: new Map(),
    other: new Map(),
  };
  /** S3 requests that succeeded (PutObject, multipart parts and completions), by duration. */
  readonly requestDurations = new DurationHistogram();

  /** An object was stored in S3. */
  written(bytes: number, now = Date.now()): void {
    this.objectsWritten++;
    this.bytesWritten += bytes;
    this.lastWriteAt = now;
    this.permanentFailure = undefined;
  }

  /** An S3 request succeeded after `milliseconds`. */
  requestSucceeded(milliseconds: number): void {
    this.requestDurations.observe(milliseconds);
  }

  /** An attempt failed transiently and will run again. */
  retried(error: S3Error, now = Date.now()): void {
    this.retries.set(error.code, (this.retries.get(error.code) ?? 0) + 1);
    this.noteError(error.code, error.message, now);
  }

  /** A msg (or the batch it completes) was refused or failed for good. */
  failed(error: Error & { code?: unknown }, now = Date.now()): void {
    const failureClass = classOf(error);
    const code = failureClass === "permanent" || failureClass === "gave_up" ? (error as S3Error).code : "";
    const byCode = this.failures[failureClass];
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
    if (failureClass === "permanent") this.permanentFailure = code;
    this.noteError(typeof error.code === "string" ? error.code : error.name, error.message, now);
  }

  /** Keeps `waitingSince` from what waits now; called once a second, so the hot path never tracks it. */
  observeWaiting(waitingMsgs: number, now = Date.now()): void {
    if (waitingMsgs === 0) this.waitingSince = 0;
    else if (this.waitingSince === 0) this.waitingSince = now;
  }

  /** Total retries, every reason. */
  get retriesTotal(): number {
    let total = 0;
    for (const count of this.retries.values()) total += count;
    return total;
  }

  private noteError(code: string, message: string, at: number): void {
    if (this.lastError) {
      this.lastError.code = code;
      this.lastError.message = message;
      this.lastError.at = at;
    } else {
      this.lastError = { code, message, at };
    }
  }
}

function classOf(error: Error): FailureClass {
  if (error instanceof InputError) return "input";
  if (error instanceof QueueFullError || error instanceof OpenBatchesFullError) return "queue_full";
  if (error instanceof WriterClosedError) return "closed";
  if (error instanceof S3Error) return error.retryable ? "gave_up" : "permanent";
  return "other";
}
