import type { CompletedPart, ObjectOptions, S3Sink, WriteResult } from "../s3/client";
import { S3Error } from "../s3/errors";
import type { Writer } from "./writer";

/** The part size used unless told otherwise (S3 takes 5 MiB and up for every part but the last): an object in the making holds about this much in memory. */
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
/** S3's largest part number. */
const MAX_PARTS = 10_000;
/** Parts waiting for S3 (queued or in flight) beyond which writers are asked to wait (see `backlogged`). */
const MAX_WAITING_PARTS = 2;
/** The first part buffer's size: most batches are small, and many may be open at once. */
const INITIAL_CAPACITY = 1024;

const EMPTY = Buffer.alloc(0);

/** How far a multipart upload has got at S3: plain data, so a spool can store and resume it. */
export interface MultipartState {
  /** Set once CreateMultipartUpload answered; absent while the object still fits one PutObject. */
  uploadId?: string;
  /** Parts S3 has acknowledged, in part-number order once the upload completes. */
  parts: CompletedPart[];
}

export interface UploadResult extends WriteResult {
  /** Bytes in the stored object. */
  bytes: number;
}

/** Something an object's bytes are written into while it grows, and that stores it when finished. */
export interface ObjectWriter {
  write(bytes: Buffer): void;
  writeText(text: string): void;
  /** Bytes held in memory on the way to S3. */
  readonly buffered: number;
  /** True while a writer should wait (drained()) before handing over more. */
  readonly backlogged: boolean;
  drained(): Promise<void>;
  /** The error that ended the upload, once a request failed for good. */
  readonly failed: Error | undefined;
  finish(): Promise<UploadResult>;
}

/**
 * One object written while it grows. Bytes collect in a part buffer; each full part goes to S3
 * as an UploadPart (the upload is created with the first one) while later bytes keep arriving,
 * and finish() sends the rest: the last part and CompleteMultipartUpload, or a single PutObject
 * when the object never filled a part. Every request runs through the Writer, so the node's
 * concurrency bound and retries apply. A failed upload is aborted (AbortMultipartUpload) and
 * finish() rejects with the failure.
 */
export class StreamingUpload implements ObjectWriter {
  readonly state: MultipartState = { parts: [] };
  private part: Buffer = EMPTY;
  private filled = 0;
  private written = 0;
  private nextPartNumber = 1;
  private created: Promise<string> | undefined;
  /** Bytes of parts handed to S3 and not acknowledged yet. */
  private waitingBytes = 0;
  private readonly waiting = new Set<Promise<void>>();
  /** Part buffers whose upload ended, for the next parts: a large object reuses a few buffers instead of leaving garbage behind. */
  private readonly spare: Buffer[] = [];
  private drainWaiters: (() => void)[] = [];
  private failure: Error | undefined;
  private aborted: Promise<void> | undefined;

  constructor(
    private readonly sink: S3Sink,
    private readonly writer: Writer,
    readonly key: string,
    private readonly options: ObjectOptions,
    private readonly partSize = DEFAULT_PART_SIZE,
    /** Told each time a part's request has ended and its bytes left memory (for a memory budget). */
    private readonly partSettled?: () => void,
  ) {}

  get failed(): Error | undefined {
    return this.failure;
  }

  /** The part being filled and parts waiting for S3. */
  get buffered(): number {
    return this.filled + this.waitingBytes;
  }

  /** Bytes of parts handed to S3 and not acknowledged yet. */
  get inFlight(): number {
    return this.waitingBytes;
  }

  /** True while more parts wait for S3 than a writer should pile up. */
  get backlogged(): boolean {
    return this.waiting.size > MAX_WAITING_PARTS;
  }

  /** Resolves once the parts waiting for S3 are few enough again (or the upload failed). */
  drained(): Promise<void> {
    if (!this.backlogged) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** The bytes the next part holds so far, for a spool to keep (a view, valid until the next write). */
  get tail(): Buffer {
    return this.part.subarray(0, this.filled);
  }

  write(bytes: Buffer): void {
    let offset = 0;
    // A large chunk arriving at a part boundary goes out as parts of its own, without a copy.
    while (this.filled === 0 && bytes.length - offset >= this.partSize) {
      this.sendPart(bytes.subarray(offset, offset + this.partSize));
      offset += this.partSize;
    }
    const rest = bytes.length - offset;
    if (rest === 0) return;
    this.reserve(rest);
    bytes.copy(this.part, this.filled, offset);
    this.filled += rest;
    if (this.filled >= this.partSize) this.flush();
  }

  /** Appends a string as UTF-8, written straight into the part buffer. */
  writeText(text: string): void {
    // Long strings become one Buffer that parts can slice; short ones reserve the worst case, not measured.
    if (text.length > 4096) return this.write(Buffer.from(text, "utf8"));
    this.reserve(text.length * 3);
    this.filled += this.part.write(text, this.filled, "utf8");
    if (this.filled >= this.partSize) this.flush();
  }

  /** Sends what is left and completes the object. */
  async finish(): Promise<UploadResult> {
    if (this.failure) return this.failWith(this.failure);
    if (!this.created) {
      const body = this.part.subarray(0, this.filled);
      const result = await this.writer.submit(() => this.sink.putObject(this.key, body, this.options), { bytes: body.length, admitted: true });
      return { ...result, bytes: body.length };
    }
    if (this.filled > 0) this.flush();
    while (this.waiting.size > 0) await Promise.all(this.waiting);
    if (this.failure) return this.failWith(this.failure);
    const uploadId = await this.created;
    const parts = [...this.state.parts].sort((a, b) => a.partNumber - b.partNumber);
    try {
      const result = await this.writer.submit(() => this.sink.completeMultipartUpload(this.key, uploadId, parts, this.options.headers?.["if-none-match"] === "*"), { admitted: true });
      return { ...result, bytes: this.written };
    } catch (error) {
      return this.failWith(error as Error);
    }
  }

  /** Gives the upload up without completing it (its bytes are kept elsewhere, e.g. a spool); S3 frees the parts. */
  abandon(reason: Error): Promise<void> {
    return this.abort(reason);
  }

  /** Gives the upload up: no object is written; S3 frees the parts it holds. */
  private abort(reason: Error): Promise<void> {
    this.failure ??= reason;
    this.part = EMPTY;
    this.filled = 0;
    this.wakeDrainWaiters();
    this.aborted ??= (async () => {
      if (!this.created) return;
      let uploadId: string;
      try {
        uploadId = await this.created;
      } catch {
        return; // never created: nothing to abort
      }
      await this.writer.submit(() => this.sink.abortMultipartUpload(this.key, uploadId), { countsAsWritten: false, admitted: true });
    })();
    return this.aborted;
  }

  private async failWith(error: Error): Promise<never> {
    try {
      await this.abort(error);
    } catch (abortError) {
      // The original failure is what the user must see; the leftover upload is named with it.
      const reason = (abortError as Error).message;
      if (error instanceof S3Error) throw new S3Error(error.code, `${stripCode(error)} (AbortMultipartUpload failed too: ${reason})`, error.statusCode, false);
      throw new Error(`${error.message} (AbortMultipartUpload failed too: ${reason})`);
    }
    throw error;
  }

  /** Makes room for `bytes` more in the part buffer, growing it up to about one part. */
  private reserve(bytes: number): void {
    const needed = this.filled + bytes;
    if (needed <= this.part.length) return;
    const grown = Buffer.allocUnsafe(Math.max(needed, Math.min(Math.max(this.part.length * 2, INITIAL_CAPACITY), this.partSize)));
    this.part.copy(grown, 0, 0, this.filled);
    this.part = grown;
  }

  /** Sends the part buffer as the next part and starts a fresh one. */
  private flush(): void {
    const full = this.part;
    const body = full.subarray(0, this.filled);
    // Once an object has needed a part, it is a large one: the next buffer starts at full size.
    this.part = this.spare.pop() ?? Buffer.allocUnsafe(this.partSize);
    this.filled = 0;
    this.sendPart(body, full.length === this.partSize ? full : undefined);
  }

  /** Sends one part; `reusable` is the buffer behind it when it is ours to fill again once the part is sent. */
  private sendPart(body: Buffer, reusable?: Buffer): void {
    if (this.failure) return;
    const partNumber = this.nextPartNumber++;
    if (partNumber > MAX_PARTS) {
      this.fail(new S3Error("TooManyParts", `the object ${this.key} needs more than ${MAX_PARTS} parts of ${this.partSize} bytes`, undefined, false));
      return;
    }
    this.written += body.length;
    this.created ??= this.writer.submit(() => this.sink.createMultipartUpload(this.key, this.options), { countsAsWritten: false, admitted: true });
    this.waitingBytes += body.length;
    const sent: Promise<void> = this.created
      .then((uploadId) => {
        this.state.uploadId = uploadId;
        return this.writer.submit(() => this.sink.uploadPart(this.key, uploadId, partNumber, body), { bytes: body.length, countsAsWritten: false, admitted: true });
      })
      .then(
        (part) => {
          this.state.parts.push({ partNumber, ...part });
        },
        (error: Error) => this.fail(error),
      )
      .finally(() => {
        if (reusable && !this.failure && this.spare.length <= MAX_WAITING_PARTS) this.spare.push(reusable);
        this.waitingBytes -= body.length;
        this.waiting.delete(sent);
        if (!this.backlogged) this.wakeDrainWaiters();
        this.partSettled?.();
      });
    this.waiting.add(sent);
  }

  private fail(error: Error): void {
    if (this.failure) return;
    // Abort at once, so S3 stops holding the parts; finish() reports the error (and abort failures).
    this.abort(error).catch(() => undefined);
  }

  private wakeDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const wake of waiters) wake();
  }
}

/** The S3Error's message without the "<code>: " prefix its constructor adds. */
function stripCode(error: S3Error): string {
  return error.message.startsWith(`${error.code}: `) ? error.message.slice(error.code.length + 2) : error.message;
}
