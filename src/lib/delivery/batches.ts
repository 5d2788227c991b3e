import { InputError } from "../core/errors";
import { objectAddress } from "../core/keys";
import { CONTENT_TYPES, type RecordFields, toBody } from "../core/record";
import type { ObjectOptions, S3Sink } from "../s3/client";
import { GzipWriter } from "./gzip";
import type { WriteOutcome } from "./messages";
import { DEFAULT_PART_SIZE, type MultipartState, type ObjectWriter, StreamingUpload } from "./multipart";
import type { Writer } from "./writer";

/** How the payloads of a batch become its object: not at all (0 bytes), back to back, or one "\n" between them. */
export type Concatenation = "none" | "plain" | "newline";
export type Compression = "none" | "gzip";
/** What completed a batch. */
export type CompletionTrigger = "complete" | "new-batch-id" | "idle-timeout" | "close";

export const NDJSON_CONTENT_TYPE = "application/x-ndjson";

export interface BatchSettings {
  /** The seed's "Target Path Config". */
  path: string;
  concatenation: Concatenation;
  /** A batch with no new message for this long completes; 0 leaves batches open until another trigger. */
  idleTimeoutMs: number;
  /** gzip: objects are stored compressed, with Content-Encoding: gzip (ignored with concatenation none). */
  compression: Compression;
  /** Further object headers (storage class, encryption, …). */
  objectHeaders?: Record<string, string>;
  partSize?: number;
}

export interface BatchEvents {
  /** A batch completed without a msg to carry the result: by a new batch id, the idle timeout or close. */
  completed(outcome: WriteOutcome, trigger: CompletionTrigger): void;
  failed(error: Error, key: string, trigger: CompletionTrigger): void;
  /** Any batch starts completing, by any trigger; `written` settles when it is written or failed (for a spool to release its records). */
  finishing?(key: string, written: Promise<unknown>): void;
}

/**
 * One open batch as plain data: what a durable spool needs to keep, together with the unflushed
 * tail (see BatchRoute.openBatches). The fields are the first message's: a batch carries the
 * batch-slice-id and workspace-id its first message named.
 */
export interface OpenBatchState {
  fields: RecordFields;
  key: string;
  metadata: Record<string, string>;
  contentType: string;
  contentEncoding?: "gzip";
  /** Messages appended so far. */
  messages: number;
  openedAt: number;
  lastMessageAt: number;
  /** The multipart upload, once the batch outgrew one part: upload id and acknowledged parts with their ETags. */
  upload: MultipartState;
}

/** How a msg was taken in. */
export type Admission =
  /** Its data is held: done() may be called now. */
  | typeof HELD
  /** Its data is held, but the batch's upload is behind: call done() once `ready` resolves. */
  | { ready: Promise<void> }
  /** It completed its batch: the batch's result or error. */
  | { completed: Promise<WriteOutcome> };

export const HELD = Object.freeze({ held: true as const });

interface OpenBatch {
  state: OpenBatchState;
  upload: StreamingUpload;
  /** Where payloads go: the upload itself, or a compressor in front of it. */
  body: ObjectWriter;
}

const NEWLINE = "\n";

/**
 * The Batch Completions route. Messages are appended, in arrival order, to the open batch of
 * their (stream group, stream, device id); a batch completes on msg.complete, on a new batch
 * id for the same stream and device, on the idle timeout, or on close. A batch that outgrows a
 * part streams to S3 as a multipart upload while it is open, so it holds about one part in
 * memory whatever its size; smaller batches are written with one PutObject on completion.
 */
export class BatchRoute {
  private readonly batches = new Map<string, OpenBatch>();
  private readonly completing = new Set<Promise<unknown>>();
  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly sink: S3Sink,
    private readonly writer: Writer,
    private readonly settings: BatchSettings,
    private readonly events: BatchEvents,
  ) {
    if (settings.idleTimeoutMs > 0) {
      // One timer for all batches: a batch completes between one and about 1.25 idle timeouts after its last message.
      const interval = Math.max(10, Math.min(1000, settings.idleTimeoutMs / 4));
      this.sweeper = setInterval(() => this.completeIdle(Date.now()), interval).unref();
    }
  }

  get openCount(): number {
    return this.batches.size;
  }

  /** Bytes held in memory across open batches: part buffers and parts on their way to S3. */
  get bufferedBytes(): number {
    let bytes = 0;
    for (const batch of this.batches.values()) bytes += batch.body.buffered;
    return bytes;
  }

  /** The open batches with their unflushed bytes (a view, valid until the batch's next message). */
  openBatches(): { state: OpenBatchState; tail: Buffer }[] {
    return [...this.batches.values()].map((batch) => ({ state: batch.state, tail: batch.upload.tail }));
  }

  /**
   * Takes in one msg. Throws InputError, before anything is held or completed, when the msg
   * cannot join a batch; throws the upload's error when its batch already failed.
   */
  accept(fields: RecordFields, payload: unknown, contentType: unknown, complete: boolean, now: number): Admission {
    const identity = `${fields.streamGroup}\n${fields.stream}\n${fields.deviceId}`;
    let batch = this.batches.get(identity);
    const hasPayload = payload !== undefined;
    if (!hasPayload && !complete) throw new InputError("msg.payload", "is undefined");

    if (batch === undefined || batch.state.fields.batchId !== fields.batchId) {
      if (!hasPayload) {
        throw new InputError("msg.complete", `is true, but batch ${objectAddress("batches", this.settings.path, fields).key} has no open messages`);
      }
      const opened = this.open(fields, payload, contentType, now);
      if (batch !== undefined) this.finish(identity, batch, "new-batch-id");
      this.batches.set(identity, opened);
      batch = opened;
    } else {
      if (batch.body.failed && !complete) throw batch.body.failed;
      if (hasPayload && !batch.body.failed) this.append(batch, payload, now);
    }

    if (complete) return { completed: this.finish(identity, batch, "complete") };
    return batch.body.backlogged ? { ready: batch.body.drained() } : HELD;
  }

  /** Completes every open batch and waits for all completions (failures are reported through the events). */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const [identity, batch] of this.batches) this.finish(identity, batch, "close");
    await Promise.allSettled([...this.completing]);
  }

  /**
   * Lets go of the open batches without completing them, for a node whose spool keeps them:
   * they are rebuilt from it at the next start. Waits for completions already under way.
   */
  async suspend(): Promise<void> {
    clearInterval(this.sweeper);
    // A multipart upload under way is aborted: the batch is uploaded again from the spool.
    const reason = new Error("the node closed; the batch is kept in the spool");
    const aborts = [...this.batches.values()].map((batch) => batch.upload.abandon(reason));
    this.batches.clear();
    await Promise.allSettled([...aborts, ...this.completing]);
  }

  private open(fields: RecordFields, payload: unknown, contentType: unknown, now: number): OpenBatch {
    const { key, metadata } = objectAddress("batches", this.settings.path, fields);
    const concatenated = this.settings.concatenation !== "none";
    // Encoding the first payload also validates it and msg.contentType before anything is opened.
    const first = concatenated ? toBody(payload, contentType) : undefined;
    const state: OpenBatchState = {
      fields,
      key,
      metadata,
      contentType: first ? batchContentType(first.contentType, contentType, this.settings.concatenation) : CONTENT_TYPES.binary,
      messages: 1,
      openedAt: now,
      lastMessageAt: now,
      upload: { parts: [] },
    };
    const gzip = concatenated && this.settings.compression === "gzip";
    if (gzip) state.contentEncoding = "gzip";
    const options: ObjectOptions = { contentType: state.contentType, metadata, headers: this.objectHeaders(gzip) };
    const upload = new StreamingUpload(this.sink, this.writer, key, options, this.settings.partSize ?? DEFAULT_PART_SIZE);
    state.upload = upload.state;
    const body = gzip ? new GzipWriter(upload) : upload;
    if (first) body.write(first.bytes);
    return { state, upload, body };
  }

  /** The hot path: strings and Buffers are copied straight into the part buffer. */
  private append(batch: OpenBatch, payload: unknown, now: number): void {
    const { state, body } = batch;
    state.messages++;
    state.lastMessageAt = now;
    const concatenation = this.settings.concatenation;
    if (concatenation === "none") return;
    if (typeof payload === "string") {
      if (concatenation === "newline") body.writeText(NEWLINE);
      body.writeText(payload);
      return;
    }
    // Anything else is encoded first, so a payload that cannot be written leaves the batch as it was.
    const bytes = Buffer.isBuffer(payload) ? payload : toBody(payload).bytes;
    if (concatenation === "newline") body.writeText(NEWLINE);
    body.write(bytes);
  }

  private finish(identity: string, batch: OpenBatch, trigger: CompletionTrigger): Promise<WriteOutcome> {
    this.batches.delete(identity);
    const { state } = batch;
    const result = batch.body.finish().then((stored) => {
      const outcome: WriteOutcome = { bucket: this.sink.bucket, key: state.key, etag: stored.etag, bytes: stored.bytes, messages: state.messages };
      if (stored.versionId) outcome.versionId = stored.versionId;
      return outcome;
    });
    const tracked = result.then(
      (outcome) => trigger !== "complete" && this.events.completed(outcome, trigger),
      (error: Error) => trigger !== "complete" && this.events.failed(error, state.key, trigger),
    );
    this.events.finishing?.(state.key, result);
    this.completing.add(tracked);
    tracked.finally(() => this.completing.delete(tracked));
    return result;
  }

  private completeIdle(now: number): void {
    const deadline = now - this.settings.idleTimeoutMs;
    for (const [identity, batch] of this.batches) {
      if (batch.state.lastMessageAt <= deadline) this.finish(identity, batch, "idle-timeout");
    }
  }

  private objectHeaders(gzip: boolean): Record<string, string> {
    const headers = this.settings.objectHeaders ?? {};
    return gzip ? { ...headers, "content-encoding": "gzip" } : headers;
  }
}

/**
 * A batch's Content-Type: the first message's msg.contentType when it has one, else the type of
 * its first payload, except that JSON payloads one per line are NDJSON.
 */
export function batchContentType(derived: string, override: unknown, concatenation: Concatenation): string {
  const overridden = override !== undefined && override !== null && override !== "";
  if (!overridden && derived === CONTENT_TYPES.json && concatenation === "newline") return NDJSON_CONTENT_TYPE;
  return derived;
}
