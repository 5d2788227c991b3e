import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { InputError } from "../core/errors";
import { objectAddress } from "../core/keys";
import { CONTENT_TYPES, type RecordFields, toBody } from "../core/record";
import type { ObjectOptions, S3Sink, WriteResult } from "../s3/client";
import { S3Error } from "../s3/errors";
import { type BatchMsg, type BatchPiece, batchRecord, readBatchRecord } from "./batch-records";
import { GzipWriter } from "./gzip";
import type { WriteOutcome } from "./messages";
import { DEFAULT_PART_SIZE, type ObjectWriter, StreamingUpload } from "./multipart";
import type { Spool, SpoolEntry } from "./spool";
import { WriterClosedError, type Writer } from "./writer";

/** How the payloads of a batch become its object: not at all (0 bytes), back to back, or one "\n" between them. */
export type Concatenation = "none" | "plain" | "newline";
export type Compression = "none" | "gzip";
/** What completed a batch. */
export type CompletionTrigger = "complete" | "new-batch-id" | "idle-timeout" | "open-limit" | "close";
/**
 * What a msg that would open one batch more than `maxOpenBatches` meets:
 * - `complete-oldest`: the batch idle longest is completed (written) to make room;
 * - `reject`: the msg fails with OpenBatchesFullError, for a Catch node.
 */
export type OpenLimitPolicy = "complete-oldest" | "reject";

export const NDJSON_CONTENT_TYPE = "application/x-ndjson";
/** Open batches per node unless set otherwise; the README gives the memory one idle batch takes. */
export const DEFAULT_MAX_OPEN_BATCHES = 100_000;
/** The memory all of a node's open batches may hold unless set otherwise (Batch memory, MiB); the rest moves to disk. */
export const DEFAULT_BATCH_MEMORY_MB = 32;
/** A batch holds its bytes in a small buffer of its own until they pass this; then it streams (part buffer, compressor). */
const STREAM_AFTER_BYTES = 64 * 1024;
/** Text payloads are held as a string (no Buffer object to pay for) until the batch holds this many characters. */
const TEXT_HELD_CHARS = 1024;
/** Batch keys written in this run, remembered to give a batch re-opened under one of them a continuation key. */
const WRITTEN_KEYS_REMEMBERED = 10_000;
/** Continuation keys tried after S3 refused a batch key as existing (If-None-Match), before giving up. */
const MAX_KEY_PROBES = 100;

export interface BatchSettings {
  /** The seed's "Target Path Config". */
  path: string;
  concatenation: Concatenation;
  /** A batch with no new message for this long completes; 0 leaves batches open until another trigger. */
  idleTimeoutMs: number;
  /** gzip: objects are stored compressed, with Content-Encoding: gzip (ignored with concatenation none). */
  compression: Compression;
  maxOpenBatches: number;
  atOpenLimit: OpenLimitPolicy;
  /** Bytes all open batches may hold in memory (buffers, compressors, parts on their way to S3); beyond it batch bytes move to disk. */
  maxBatchMemoryBytes: number;
  /** Without a spool: where batch bytes beyond the budget go (emptied at start). With a spool they stay in its records. */
  spillDirectory?: string;
  /** Further object headers (storage class, encryption, …). */
  objectHeaders?: Record<string, string>;
  partSize?: number;
}

export interface BatchEvents {
  /** A batch completed without its completing msg at hand: by a new batch id, the idle timeout, the open-batch limit, close, or a msg.complete read back from the spool (`msgid`). */
  completed(outcome: WriteOutcome, trigger: CompletionTrigger, msgid?: string): void;
  failed(error: Error, key: string, trigger: CompletionTrigger, msgid?: string): void;
  /** A record found in the spool at start could not join its batch. */
  unusable(problem: string): void;
}

/** How a msg was taken in. */
export type Admission =
  /** Its data is held: done() may be called now. */
  | typeof HELD
  /** Its data is held, but the batch's upload is behind: call done() once `ready` resolves. */
  | { ready: Promise<void> }
  /**
   * It completed its batch: the batch's result or error; undefined when the node closed before
   * the batch was written and the spool keeps it for the next start.
   */
  | { completed: Promise<WriteOutcome | undefined> };

export const HELD = Object.freeze({ held: true as const });

/** A msg would open more batches than the node's limit allows, and the policy is `reject`. */
export class OpenBatchesFullError extends Error {
  override readonly name = "OpenBatchesFullError";
  readonly code = "OPEN_BATCHES_FULL";
  constructor(limit: number, key: string) {
    super(`open batches full: ${limit} batches are open (Max open batches); msg not accepted, batch ${key} not opened`);
  }
}

/** S3 answered 412 to a batch write sent with If-None-Match: the key holds an object written before. */
export class BatchKeyTakenError extends Error {
  override readonly name = "BatchKeyTakenError";
  readonly code = "BATCH_KEY_TAKEN";
  constructor(key: string, messages: number) {
    super(`batch object ${key} exists already (written before this node started) and is not replaced: this batch of ${messages} msgs, streamed as a multipart upload, was not written`);
  }
}

/**
 * One open batch. Idle batches are small: fields, counters and their bytes so far in a buffer of
 * their own; the part buffer and the compressor come once they pass STREAM_AFTER_BYTES.
 */
interface OpenBatch {
  readonly fields: RecordFields;
  /** 1 for the batch key itself, n > 1 for its continuation `<key>~n`. */
  number: number;
  readonly contentType: string;
  messages: number;
  /** Of its last msg, ms since `clockBase`: a small integer V8 stores inline, not a boxed number. */
  lastMessageAt: number;
  /** Its bytes so far: text while every payload was a string and there is little of it, else a buffer `filled` so far. */
  held: string | Buffer | undefined;
  filled: number;
  stream: { upload: StreamingUpload; body: ObjectWriter } | undefined;
  /** The spool records of its msgs, released together once the batch is written or failed for good. */
  records?: SpoolEntry[];
}

const NEWLINE = "\n";
const gzipAsync = promisify(gzip);

/**
 * The Batch Completions route: open batches, their spool records, their completion and the
 * release of their records, in one place.
 *
 * Msgs are appended, in arrival order, to the open batch of their (stream group, stream, device
 * id); a batch completes on msg.complete, on a new batch id for the same stream and device, on
 * the idle timeout, when the open-batch limit needs room, or on close. A batch that outgrows
 * STREAM_AFTER_BYTES streams to S3 (as a multipart upload once it fills a part), so it holds about
 * one part in memory whatever its size; smaller batches are written with one PutObject.
 *
 * Batch objects are written with If-None-Match: *, so a written batch is never replaced: a batch
 * re-opened under a key written before goes to a continuation key, `<key>~2`, `<key>~3`, …
 *
 * With a spool every msg is recorded before it joins its batch, and the batch's records are
 * released together (durably, see Spool.releaseAll) once it is written or failed for good; never
 * when the node closes first. At start the records left are replayed in arrival order, so an open
 * batch is rebuilt whole after a redeploy, restart or crash.
 */
export class Batches {
  /** By identity, the batch appended to least recently first. */
  private readonly open = new Map<string, OpenBatch>();
  private readonly streaming = new Set<OpenBatch>();
  private readonly completing = new Set<Promise<unknown>>();
  /** Base key -> the highest number written (or being written) under it in this run. */
  private readonly written = new Map<string, number>();
  private heldBytes = 0;
  private readonly clockBase = Date.now();
  private spool: Spool | undefined;
  /** While the spool is replayed, records carry their original (old) arrival times: no batch is idle yet. */
  private replaying = false;
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
    return this.open.size;
  }

  /** Bytes held in memory for open batches: their own buffers, part buffers, compressors and parts on their way to S3. */
  get bufferedBytes(): number {
    let bytes = this.heldBytes;
    for (const batch of this.streaming) bytes += batch.stream!.body.buffered;
    return bytes;
  }

  /** Bytes of open batches kept on disk instead of in memory (in the spill directory or the spool's records), not yet written. */
  get spilledBytes(): number {
    return 0;
  }

  /** The memory budget of all open batches, in bytes. */
  get memoryBudget(): number {
    return this.settings.maxBatchMemoryBytes;
  }

  /** Records in the spool not yet released. */
  get spooled(): number {
    return this.spool?.pending ?? 0;
  }

  /** From now on every msg is recorded in `spool` first. Replays the records found there, oldest first; returns how many. */
  async resume(spool: Spool): Promise<number> {
    this.spool = spool;
    this.replaying = true;
    try {
      return await this.replay(spool);
    } finally {
      this.replaying = false;
    }
  }

  private async replay(spool: Spool): Promise<number> {
    let replayed = 0;
    for (let taken = await spool.takeDeferred(); taken; taken = await spool.takeDeferred()) {
      const { entry, write } = taken;
      const msg = typeof write === "string" ? write : readBatchRecord(write);
      if (typeof msg === "string") {
        this.events.unusable(`${entry.segment.file} at byte ${entry.offset}: ${msg}`);
        void spool.releaseAll([entry]).catch(() => undefined);
        continue;
      }
      try {
        const admission = this.apply(msg.msg, msg.piece, entry);
        if ("completed" in admission) {
          admission.completed.then(
            (outcome) => outcome && this.events.completed(outcome, "complete", msg.msg.msgid),
            (error: Error) => this.events.failed(error, this.keyOf(msg.msg.fields), "complete", msg.msg.msgid),
          );
        } else if ("ready" in admission) await admission.ready;
        replayed++;
      } catch (error) {
        this.events.unusable(`${this.keyOf(msg.msg.fields)}: ${(error as Error).message}`);
      }
    }
    return replayed;
  }

  /**
   * Takes in one msg, in arrival order. Throws InputError or OpenBatchesFullError, before anything
   * is recorded, held or completed, when the msg cannot join a batch; the batch's upload error
   * when its batch already failed. With a spool the msg joins once its record is on disk.
   */
  accept(msg: BatchMsg): Admission | Promise<Admission> {
    const piece = this.check(msg);
    const spool = this.spool;
    if (!spool) return this.apply(msg, piece, undefined);
    return spool.append(batchRecord(msg, piece)).then((entry) => this.apply(msg, piece, entry));
  }

  /** Completes every open batch and waits for all completions (failures are reported through the events). */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    for (const batch of [...this.open.values()]) this.finish(batch, "close");
    await Promise.allSettled([...this.completing]);
  }

  /**
   * Lets go of the open batches without completing them, for a node whose spool keeps them: they
   * are rebuilt from it at the next start. Waits for completions already under way.
   */
  async suspend(): Promise<void> {
    clearInterval(this.sweeper);
    // A multipart upload under way is aborted: the batch is uploaded again from the spool.
    const reason = new Error("the node closed; the batch is kept in the spool");
    const aborts = [...this.streaming].map((batch) => batch.stream!.upload.abandon(reason));
    this.open.clear();
    this.streaming.clear();
    this.heldBytes = 0;
    await Promise.allSettled([...aborts, ...this.completing]);
  }

  /** Everything about a msg that can be refused, checked before it is recorded. */
  private check(msg: BatchMsg): BatchPiece {
    const { fields, payload, complete } = msg;
    if (payload === undefined && !complete) throw new InputError("msg.payload", "is undefined");
    const batch = this.open.get(identityOf(fields));
    const opens = batch === undefined || batch.fields.batchId !== fields.batchId;
    if (opens) {
      const { key } = objectAddress("batches", this.settings.path, fields);
      if (payload === undefined) throw new InputError("msg.complete", `is true, but batch ${key} has no open messages`);
      if (batch === undefined && this.open.size >= this.settings.maxOpenBatches && this.settings.atOpenLimit === "reject") {
        throw new OpenBatchesFullError(this.settings.maxOpenBatches, key);
      }
    } else if (batch.stream?.body.failed && !complete) throw batch.stream.body.failed;
    // msg.contentType counts for the msg that opens a batch: checked now, so a bad one changes nothing.
    if (opens) toBody("", msg.contentType);
    if (payload === undefined) return { type: CONTENT_TYPES.binary };
    if (typeof payload === "string") return { body: payload, type: CONTENT_TYPES.text };
    // Anything else is encoded now (which validates it), so a payload that cannot be written changes nothing.
    const { bytes, contentType } = toBody(payload);
    return { body: bytes, type: contentType };
  }

  /** Lets a checked (and, with a spool, recorded) msg join its batch. */
  private apply(msg: BatchMsg, piece: BatchPiece, entry: SpoolEntry | undefined): Admission {
    try {
      return this.join(msg, piece, entry);
    } catch (error) {
      // Refused after all (its batch failed, or changed while the record was written): the record is of no further use.
      if (entry) void this.spool?.releaseAll([entry]).catch(() => undefined);
      throw error;
    }
  }

  private join(msg: BatchMsg, piece: BatchPiece, entry: SpoolEntry | undefined): Admission {
    const { fields, complete } = msg;
    const identity = identityOf(fields);
    let batch = this.open.get(identity);
    if (batch === undefined || batch.fields.batchId !== fields.batchId) {
      if (piece.body === undefined) throw new InputError("msg.complete", `is true, but batch ${this.keyOf(fields)} has no open messages`);
      if (batch !== undefined) this.finish(batch, "new-batch-id");
      else if (this.open.size >= this.settings.maxOpenBatches) {
        // A replay never refuses what was acknowledged (the limit may have been lowered since): it makes room.
        if (this.settings.atOpenLimit === "reject" && !this.replaying) throw new OpenBatchesFullError(this.settings.maxOpenBatches, this.keyOf(fields));
        this.finish(this.open.values().next().value!, "open-limit");
      }
      batch = this.openBatch(fields, piece, msg.contentType, msg.arrival);
    } else {
      if (batch.stream?.body.failed && !complete) throw batch.stream.body.failed;
      // Kept in order of last append: the idle sweep and the open-batch limit look at the front only.
      this.open.delete(identity);
      this.open.set(identity, batch);
      batch.lastMessageAt = msg.arrival - this.clockBase;
      if (piece.body !== undefined) batch.messages++;
      if (piece.body !== undefined && this.settings.concatenation !== "none" && !batch.stream?.body.failed) {
        if (this.settings.concatenation === "newline") this.write(batch, NEWLINE);
        this.write(batch, piece.body);
      }
    }
    if (entry) (batch.records ??= []).push(entry);
    if (complete) return { completed: this.finish(batch, "complete") };
    return batch.stream?.body.backlogged ? { ready: batch.stream.body.drained() } : HELD;
  }

  private openBatch(fields: RecordFields, piece: BatchPiece, contentType: unknown, now: number): OpenBatch {
    const concatenation = this.settings.concatenation;
    const base = this.keyOf(fields);
    const last = this.written.get(base);
    const batch: OpenBatch = {
      fields,
      number: last === undefined ? 1 : last + 1,
      contentType: concatenation === "none" ? CONTENT_TYPES.binary : batchContentType(piece.type, contentType, concatenation),
      messages: 1,
      lastMessageAt: now - this.clockBase,
      held: undefined,
      filled: 0,
      stream: undefined,
    };
    if (last !== undefined) this.remember(base, batch.number);
    this.open.set(identityOf(fields), batch);
    if (concatenation !== "none" && piece.body !== undefined) this.write(batch, piece.body);
    return batch;
  }

  /** Appends bytes: into the batch's own buffer while it is small, then into its stream. */
  private write(batch: OpenBatch, piece: string | Buffer): void {
    if (batch.stream) {
      if (typeof piece === "string") batch.stream.body.writeText(piece);
      else batch.stream.body.write(piece);
      return;
    }
    const held = batch.held;
    if (typeof piece === "string" && (held === undefined || typeof held === "string") && (held?.length ?? 0) + piece.length <= TEXT_HELD_CHARS) {
      batch.held = held === undefined ? piece : held + piece;
      this.heldBytes += piece.length;
      return;
    }
    if (typeof held === "string") {
      // Outgrew text: from now on bytes.
      this.dropHeld(batch);
      this.write(batch, Buffer.from(held, "utf8"));
    }
    const bytes = typeof piece === "string" ? Buffer.byteLength(piece) : piece.length;
    const needed = batch.filled + bytes;
    if (needed > STREAM_AFTER_BYTES) {
      this.startStream(batch);
      this.write(batch, piece);
      return;
    }
    const buffer = batch.held as Buffer | undefined;
    const capacity = buffer?.length ?? 0;
    if (needed > capacity) {
      // Exactly the first payload's size (most idle batches hold one msg), then doubling.
      const grown = Buffer.allocUnsafe(capacity === 0 ? needed : Math.min(Math.max(needed, capacity * 2), STREAM_AFTER_BYTES));
      buffer?.copy(grown, 0, 0, batch.filled);
      batch.held = grown;
      this.heldBytes += grown.length - capacity;
    }
    const target = batch.held as Buffer;
    batch.filled += typeof piece === "string" ? target.write(piece, batch.filled, "utf8") : piece.copy(target, batch.filled);
  }

  private startStream(batch: OpenBatch): void {
    const gzipped = this.gzipped();
    const upload = new StreamingUpload(this.sink, this.writer, this.numberedKey(batch.fields, batch.number), this.objectOptions(batch), this.settings.partSize ?? DEFAULT_PART_SIZE);
    batch.stream = { upload, body: gzipped ? new GzipWriter(upload) : upload };
    if (typeof batch.held === "string") batch.stream.body.writeText(batch.held);
    else if (batch.held) batch.stream.body.write(batch.held.subarray(0, batch.filled));
    this.dropHeld(batch);
    this.streaming.add(batch);
  }

  private dropHeld(batch: OpenBatch): void {
    this.heldBytes -= batch.held?.length ?? 0;
    batch.held = undefined;
    batch.filled = 0;
  }

  /** Completes a batch: writes it, then releases its records (unless the node closed first: they stay for the next start). */
  private finish(batch: OpenBatch, trigger: CompletionTrigger): Promise<WriteOutcome | undefined> {
    const identity = identityOf(batch.fields);
    if (this.open.get(identity) === batch) this.open.delete(identity);
    this.streaming.delete(batch);
    const stored = this.store(batch);
    this.dropHeld(batch);
    const kept = (error: unknown) => this.spool !== undefined && error instanceof WriterClosedError;
    const result = stored.then(
      async ({ key, written }) => {
        await this.spool?.releaseAll(batch.records ?? []);
        const outcome: WriteOutcome = { bucket: this.sink.bucket, key, etag: written.etag, bytes: written.bytes, messages: batch.messages };
        if (written.versionId) outcome.versionId = written.versionId;
        return outcome;
      },
      async (error: Error) => {
        if (kept(error)) return undefined;
        await this.spool?.releaseAll(batch.records ?? []).catch(() => undefined);
        throw error;
      },
    );
    if (trigger !== "complete") {
      const reported = result.then(
        (outcome) => outcome && this.events.completed(outcome, trigger),
        (error: Error) => this.events.failed(error, this.numberedKey(batch.fields, batch.number), trigger),
      );
      this.track(reported);
    } else this.track(result);
    return result;
  }

  private track(completion: Promise<unknown>): void {
    const settled = completion.then(
      () => undefined,
      () => undefined,
    );
    this.completing.add(settled);
    void settled.finally(() => this.completing.delete(settled));
  }

  /** Writes the batch object, never over an object that exists: on 412 a small batch goes to the next continuation key. */
  private async store(batch: OpenBatch): Promise<{ key: string; written: WriteResult & { bytes: number } }> {
    const base = this.keyOf(batch.fields);
    this.remember(base, batch.number);
    if (batch.stream) {
      const key = batch.stream.upload.key;
      try {
        return { key, written: await batch.stream.body.finish() };
      } catch (error) {
        if (error instanceof S3Error && error.statusCode === 412) throw new BatchKeyTakenError(key, batch.messages);
        throw error;
      }
    }
    const raw = typeof batch.held === "string" ? Buffer.from(batch.held, "utf8") : (batch.held?.subarray(0, batch.filled) ?? Buffer.alloc(0));
    const body = this.gzipped() ? await gzipAsync(raw) : raw;
    const options = this.objectOptions(batch);
    for (let number = batch.number; ; number++) {
      const key = this.numberedKey(batch.fields, number);
      let attempts = 0;
      try {
        const written = await this.writer.submit(async () => {
          try {
            attempts++;
            return await this.sink.putObject(key, body, options);
          } catch (error) {
            // A 412 on a retry answers our own earlier attempt, whose answer was lost: the batch is written.
            if (attempts > 1 && error instanceof S3Error && error.statusCode === 412) return { etag: "" };
            throw error;
          }
        }, { bytes: body.length, admitted: true });
        this.remember(base, number);
        return { key, written: { ...written, bytes: body.length } };
      } catch (error) {
        if (!(error instanceof S3Error && error.statusCode === 412) || number - batch.number >= MAX_KEY_PROBES) throw error;
      }
    }
  }

  /** Notes that `number` under `base` is taken, keeping the most recent WRITTEN_KEYS_REMEMBERED keys. */
  private remember(base: string, number: number): void {
    const known = this.written.get(base) ?? 0;
    this.written.delete(base);
    this.written.set(base, Math.max(known, number));
    if (this.written.size > WRITTEN_KEYS_REMEMBERED) this.written.delete(this.written.keys().next().value!);
  }

  private completeIdle(now: number): void {
    if (this.replaying) return;
    const deadline = now - this.clockBase - this.settings.idleTimeoutMs;
    for (const batch of this.open.values()) {
      if (batch.lastMessageAt > deadline) return;
      this.finish(batch, "idle-timeout");
    }
  }

  private gzipped(): boolean {
    return this.settings.concatenation !== "none" && this.settings.compression === "gzip";
  }

  private objectOptions(batch: OpenBatch): ObjectOptions {
    const headers: Record<string, string> = { ...this.settings.objectHeaders, "if-none-match": "*" };
    if (this.gzipped()) headers["content-encoding"] = "gzip";
    return { contentType: batch.contentType, metadata: objectAddress("batches", this.settings.path, batch.fields).metadata, headers };
  }

  private keyOf(fields: RecordFields): string {
    return objectAddress("batches", this.settings.path, fields).key;
  }

  private numberedKey(fields: RecordFields, number: number): string {
    const key = this.keyOf(fields);
    return number === 1 ? key : `${key}~${number}`;
  }
}

function identityOf(fields: RecordFields): string {
  return `${fields.streamGroup}\n${fields.stream}\n${fields.deviceId}`;
}

/**
 * A batch's Content-Type: the first message's msg.contentType when it has one, else the type of
 * its first payload, except that JSON payloads one per line are NDJSON.
 */
export function batchContentType(derived: string, override: unknown, concatenation: Concatenation): string {
  const overridden = override !== undefined && override !== null && override !== "";
  if (overridden) return override as string;
  if (derived === CONTENT_TYPES.json && concatenation === "newline") return NDJSON_CONTENT_TYPE;
  return derived;
}
