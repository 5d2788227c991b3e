import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { InputError } from "../core/errors";
import { objectAddress } from "../core/keys";
import { CONTENT_TYPES, type RecordFields, toBody } from "../core/record";
import type { ObjectLock, ObjectOptions, S3Sink, WriteResult } from "../s3/client";
import { S3Error } from "../s3/errors";
import { type BatchMsg, type BatchPiece, batchRecord, readBatchRecord } from "./batch-records";
import { BufferPool, sizeClass } from "./buffer-pool";
import { CompletedBatches, completingIdentity } from "./completed-batches";
import { GzipWriter } from "./gzip";
import { type WriteOutcome, withResult } from "./messages";
import { DEFAULT_PART_SIZE, type ObjectWriter, StreamingUpload } from "./multipart";
import { type Columns, type GivenSchema, PARQUET_CONTENT_TYPE, type ParquetCodec, ParquetEncoder, addColumns, parquetWriterModule, kindsOfLine, misfit, parquetObject, parquetRow } from "./parquet";
import { DiskRun, SpillStore, SpillWriteError, readRuns, releaseRun, takeRuns } from "./spill";
import type { Spool, SpoolEntry, SpooledWrite } from "./spool";
import { WriterClosedError, type Writer } from "./writer";

/** How the payloads of a batch become its object: not at all (0 bytes), back to back, one "\n" between them, or one Parquet row each. */
export type Concatenation = "none" | "plain" | "newline" | "parquet";
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
/** Open batches per node unless set otherwise; docs/batches.md gives the memory one idle batch takes. */
export const DEFAULT_MAX_OPEN_BATCHES = 100_000;
/** The memory all of a node's open batches may hold unless set otherwise (Batch memory, MiB); the rest moves to disk. */
export const DEFAULT_BATCH_MEMORY_MB = 32;
/** Text payloads are held as a string (no Buffer object to pay for) until the batch holds this many characters. */
const TEXT_HELD_CHARS = 1024;
/** Batch keys written in this run, remembered to give a batch re-opened under one of them a continuation key. */
const WRITTEN_KEYS_REMEMBERED = 10_000;
/** Spool records read back at a start with one read (those that lie one after the other in a segment). */
const REPLAY_READ_BYTES = 1024 * 1024;
/** Continuation keys tried after S3 refused a batch key as existing (If-None-Match), before giving up. */
const MAX_KEY_PROBES = 100;
/** Beside the spool's records: the batches completed by a msg (CompletedBatches), kept from a graceful close to the next start. */
const COMPLETED_BATCHES_FILE = "completed-batches.json";

export interface BatchSettings {
  /** The seed's "Target Path Config". */
  path: string;
  concatenation: Concatenation;
  /** A batch with no new message for this long completes; 0 leaves batches open until another trigger. */
  idleTimeoutMs: number;
  /** gzip: objects are stored compressed, with Content-Encoding: gzip (ignored with concatenation none and parquet). */
  compression: Compression;
  /** Concatenation parquet: the codec of its pages. */
  parquetCodec: ParquetCodec;
  /** Concatenation parquet: the schema given on the node; absent, each batch's is inferred from its payloads. */
  parquetSchema?: GivenSchema;
  maxOpenBatches: number;
  atOpenLimit: OpenLimitPolicy;
  /** Bytes all open batches may hold in memory (buffers, compressors, parts on their way to S3); beyond it batch bytes move to disk. */
  maxBatchMemoryBytes: number;
  /** Without a spool: where batch bytes beyond the budget go (emptied at start). With a spool they stay in its records. */
  spillDirectory?: string;
  /** Further object headers (storage class, encryption, …). */
  objectHeaders?: Record<string, string>;
  /** Object Lock of every batch object (the config node's), its retention counted from the write. */
  objectLock?: ObjectLock;
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
 * their own (`held`, up to one part); beyond the node's memory budget those bytes move to disk
 * (`disk`), and once held and disk bytes fill a part, the part goes to S3 (`stream`).
 */
interface OpenBatch {
  readonly fields: RecordFields;
  /** 1 for the batch key itself, n > 1 for its continuation `<key>~n`. */
  number: number;
  readonly contentType: string;
  messages: number;
  /** Of its last msg, ms since `clockBase`: a small integer V8 stores inline, not a boxed number. */
  lastMessageAt: number;
  /** Its newest bytes: text while every payload was a string and there is little of it, else a buffer `filled` so far. */
  held: string | Buffer | undefined;
  filled: number;
  /** Bytes of its object before `held`: sent to S3 or on disk. */
  consumed: number;
  /** Its bytes that moved to disk, oldest first, before `held`. */
  disk: BatchDisk | undefined;
  /** Created with its first part: the multipart upload, behind a compressor for gzip. */
  stream: { upload: StreamingUpload; body: ObjectWriter } | undefined;
  /** Parts read back from disk on their way to the upload, one after the other. */
  sending: Promise<void> | undefined;
  /** The spool records of its msgs, released together once the batch is written or failed for good. */
  records?: SpoolEntry[];
  /** Concatenation parquet: its columns so far; fixed once it streams (its first row group is written then). */
  columns?: Columns;
}

interface BatchDisk {
  bytes: number;
  /** Where in the object its bytes on disk start. */
  start: number;
  /** Without the spool: the spill file runs that hold them. */
  runs: DiskRun[];
  /**
   * With the spool: the first record not yet read back whole, and where its bytes start in the
   * object. Its bytes on disk are its records' bodies, found from here when they are read back:
   * no run objects besides the records (a fleet's batches hold hundreds of thousands).
   */
  recordIndex: number;
  recordStart: number;
}

/** Bytes taken out of a batch on their way to S3, and what they count for in the memory budget until they are gone. */
interface Outgoing {
  bytes: Buffer;
  counted: number;
  /** The pool's buffer the bytes lie in (a batch's own, or read back from disk), given back once copied or written (not while a part may still refer to it). */
  buffer?: Buffer;
}

const NEWLINE = "\n";
const gzipAsync = promisify(gzip);
/** A spill frees memory down to this share of the budget, so that it is not needed again at the next msg. */
const SPILL_TO = 0.75;
const ignore = () => undefined;
const EMPTY = Buffer.alloc(0);

/**
 * The Batch Completions route: open batches, their spool records, their completion and the
 * release of their records, in one place.
 *
 * Msgs are appended, in arrival order, to the open batch of their (stream group, stream, device
 * id); a batch completes on msg.complete, on a new batch id for the same stream and device, on
 * the idle timeout, when the open-batch limit needs room, or on close. A batch holds its bytes
 * in memory while the node's memory budget allows; beyond it the bytes of the batches appended to
 * least recently move to disk: with the spool they are in its records already and are only
 * dropped from memory, without it they go to a spill file. Each time a batch's bytes fill a part
 * the part goes to S3 (a multipart upload), read back from disk as needed; smaller batches are
 * written with one PutObject on completion. Bytes read back wait for room in the budget, so a
 * storm of completions holds no more than the budget either.
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
  /** Batches holding bytes in memory, appended to least recently first: the first to move to disk. */
  private readonly resident = new Set<OpenBatch>();
  private readonly streaming = new Set<OpenBatch>();
  private readonly completing = new Set<Promise<unknown>>();
  /** Base key -> the highest number written (or being written) under it in this run. */
  private readonly written = new Map<string, number>();
  private readonly completed = new CompletedBatches();
  private heldBytes = 0;
  /** Bytes read back or taken out of batches on their way to S3. */
  private outgoingBytes = 0;
  /** Bytes of runs that should be on disk but are still in memory: being written, or refused by the disk. */
  private runDataBytes = 0;
  private onDisk = 0;
  private readonly roomWaiters: { bytes: number; own: number; resolve: () => void }[] = [];
  /** Of `outgoingBytes`, what the read-backs waiting for room hold themselves: it leaves only once they go on. */
  private waitersOwn = 0;
  /** Runs the disk refused, written with the next spill. */
  private unwritten: DiskRun[] = [];
  private readonly spillStore: Promise<SpillStore> | undefined;
  private spilling: Promise<void> | undefined;
  /** Without the spool, while a spill that a msg waits for is written: later msgs wait behind it, in arrival order. */
  private placing: Promise<void> | undefined;
  private readonly partSize: number;
  /** Buffers whose bytes moved to disk or left for S3, for the next batches and read-backs: in the budget's room the batches leave. */
  private readonly pool: BufferPool;
  private readonly clockBase = Date.now();
  private spool: Spool | undefined;
  /** Suspended or closed: msgs delivered after that open no batch (they would complete alone, or never). */
  private closed = false;
  /** While the spool is replayed, records carry their original (old) arrival times: no batch is idle yet. */
  private replaying = false;
  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly sink: S3Sink,
    private readonly writer: Writer,
    private readonly settings: BatchSettings,
    private readonly events: BatchEvents,
  ) {
    this.partSize = settings.partSize ?? DEFAULT_PART_SIZE;
    // A runtime that cannot encode Parquet says so at start, not at the first completion.
    if (settings.concatenation === "parquet") parquetWriterModule();
    this.pool = new BufferPool(settings.maxBatchMemoryBytes);
    const directory = settings.spillDirectory;
    if (directory) {
      this.spillStore = SpillStore.open(directory).catch((error: NodeJS.ErrnoException) => {
        throw new SpillWriteError(directory, error);
      });
      // A spill reports the failure; until then it must not count as unhandled.
      this.spillStore.catch(ignore);
    }
    if (settings.idleTimeoutMs > 0) {
      // One timer for all batches: a batch completes between one and about 1.25 idle timeouts after its last message.
      const interval = Math.max(10, Math.min(1000, settings.idleTimeoutMs / 4));
      this.sweeper = setInterval(() => this.completeIdle(Date.now()), interval).unref();
    }
  }

  get openCount(): number {
    return this.open.size;
  }

  /** Bytes held in memory for open batches: their own buffers, part buffers, compressors, parts on their way to S3 and spare buffers. */
  get bufferedBytes(): number {
    return this.batchBytes + this.pool.bytes;
  }

  /** Of `bufferedBytes`, the batches' own. */
  private get batchBytes(): number {
    let bytes = this.heldBytes + this.outgoingBytes + this.runDataBytes;
    for (const batch of this.streaming) bytes += batch.stream!.body.buffered;
    return bytes;
  }

  /** Bytes of open batches kept on disk instead of in memory (in the spill directory or the spool's records), not yet written. */
  get spilledBytes(): number {
    return this.onDisk;
  }

  /** The memory budget of all open batches, in bytes. */
  get memoryBudget(): number {
    return this.settings.maxBatchMemoryBytes;
  }

  /** Records in the spool not yet released. */
  get spooled(): number {
    return this.spool?.pending ?? 0;
  }

  /**
   * From now on every msg is recorded in `spool` first. Replays the records found there, oldest
   * first; returns how many. The rebuilt batches' idle time counts from now: while the node was
   * down (a restart, a crash) their devices could not send, so a restart longer than the idle
   * timeout does not complete them at once and split them from the device's next msgs.
   */
  async resume(spool: Spool): Promise<number> {
    this.spool = spool;
    this.replaying = true;
    try {
      const completed = await spool.takeKept(COMPLETED_BATCHES_FILE).catch(ignore);
      if (completed) this.completed.restore(completed);
      return await this.replay(spool);
    } finally {
      const now = Date.now() - this.clockBase;
      for (const batch of this.open.values()) batch.lastMessageAt = now;
      this.replaying = false;
    }
  }

  private async replay(spool: Spool): Promise<number> {
    let replayed = 0;
    // Views of each read: a msg's bytes are copied into its batch (or left in its record) as it joins.
    const nextRun = () => spool.takeDeferredRun(Infinity, REPLAY_READ_BYTES, "view");
    for (let run = await nextRun(); run.length > 0; run = await nextRun()) {
      for (const { entry, write } of run) if (await this.replayOne(spool, entry, write)) replayed++;
    }
    return replayed;
  }

  /** Lets one record found in the spool join its batch again; false when it cannot. */
  private async replayOne(spool: Spool, entry: SpoolEntry, write: SpooledWrite | string): Promise<boolean> {
    const msg = typeof write === "string" ? write : readBatchRecord(write);
    if (typeof msg === "string") {
      this.events.unusable(`${entry.segment.file} at byte ${entry.offset}: ${msg}`);
      void spool.releaseAll([entry]).catch(ignore);
      return false;
    }
    try {
      const admission = await this.place(msg.msg, msg.piece, entry);
      if ("completed" in admission) {
        // Only what the report needs is kept until the batch is written, not the payload (a view of the whole read).
        const { msgid, fields } = msg.msg;
        admission.completed.then(
          (outcome) => outcome && this.events.completed(outcome, "complete", msgid),
          (error: Error) => this.events.failed(error, this.keyOf(fields), "complete", msgid),
        );
      } else if ("ready" in admission) await admission.ready;
      return true;
    } catch (error) {
      this.events.unusable(`${this.keyOf(msg.msg.fields)}: ${(error as Error).message}`);
      return false;
    }
  }

  /**
   * Takes in one msg, in arrival order. Throws InputError or OpenBatchesFullError, before anything
   * is recorded, held or completed, when the msg cannot join a batch; the batch's upload error
   * when its batch already failed; SpillWriteError when the memory budget needs room on a disk
   * that refuses it. With a spool the msg joins once its record is on disk.
   */
  accept(msg: BatchMsg): Admission | Promise<Admission> {
    const piece = this.check(msg);
    const repeated = this.repeatedCompletion(msg, piece);
    if (repeated) return { completed: repeated };
    const spool = this.spool;
    if (this.closed) {
      // Delivered after the node began to close (Node-RED delivers msgs already on their way): kept in
      // the spool, it joins its batch at the next start; without one it is refused, never held in vain.
      if (!spool) throw new WriterClosedError();
      return spool.append(batchRecord(msg, piece)).then(() => HELD);
    }
    if (!spool) return this.place(msg, piece, undefined);
    return spool.append(batchRecord(msg, piece)).then((entry) => this.place(msg, piece, entry));
  }

  /** Completes every open batch and waits for all completions (failures are reported through the events). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const batch of [...this.open.values()]) this.finish(batch, "close");
    await Promise.allSettled([...this.completing]);
    this.pool.clear();
  }

  /**
   * Lets go of the open batches without completing them, for a node whose spool keeps them: they
   * are rebuilt from it at the next start. Waits for completions already under way.
   */
  async suspend(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    // A multipart upload under way is aborted: the batch is uploaded again from the spool.
    const reason = new Error("the node closed; the batch is kept in the spool");
    const aborts: Promise<void>[] = [];
    for (const batch of this.open.values()) {
      if (batch.stream) aborts.push(batch.stream.upload.abandon(reason));
      this.dropDisk(batch);
    }
    this.open.clear();
    this.resident.clear();
    this.heldBytes = 0;
    await Promise.allSettled([...aborts, ...this.completing]);
    this.pool.clear();
    // The answers to the msgs that completed the last batches may be lost with the runtime: their devices send them again after the start.
    const completed = this.completed.noted();
    if (completed) await this.spool?.keep(COMPLETED_BATCHES_FILE, completed).catch(ignore);
  }

  /**
   * A msg that completed a batch written before (the last under its key), sent again alone because
   * its answer was lost: the write of that batch, marked already written, and nothing more is
   * written. Undefined for any other msg.
   */
  private repeatedCompletion(msg: BatchMsg, piece: BatchPiece): Promise<WriteOutcome | undefined> | undefined {
    if (!msg.complete) return undefined;
    // A msg that completes its open batch (the usual case) is hashed once, when that batch is written.
    const batch = this.open.get(identityOf(msg.fields));
    if (batch !== undefined && batch.fields.batchId === msg.fields.batchId) return undefined;
    const identity = completingIdentity(msg.messageId, piece.body);
    if (identity === undefined) return undefined;
    const write = this.completed.writeOf(this.keyOf(msg.fields), identity);
    return write?.then((outcome) => outcome && { ...outcome, alreadyWritten: true });
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
    if (this.settings.concatenation === "parquet") return this.parquetPiece(msg, opens ? undefined : batch);
    if (typeof payload === "string") return { body: payload, type: CONTENT_TYPES.text };
    // Anything else is encoded now (which validates it), so a payload that cannot be written changes nothing.
    const { bytes, contentType } = toBody(payload);
    return { body: bytes, type: contentType };
  }

  /** A msg's row of a Parquet batch, refused (naming the field and the batch) when it does not fit the given schema, or the columns its batch fixed by streaming. */
  private parquetPiece(msg: BatchMsg, batch: OpenBatch | undefined): BatchPiece {
    const key = () => (batch ? this.numberedKey(batch.fields, batch.number) : this.keyOf(msg.fields));
    const { line, kinds } = parquetRow(msg.payload, msg.arrival, msg.msgid, key);
    const given = this.settings.parquetSchema;
    const fixed = given?.columns ?? (batch?.stream ? batch.columns : undefined);
    const problem = fixed && misfit(fixed, kinds, key, given);
    if (problem) throw problem;
    return { body: line, type: PARQUET_CONTENT_TYPE, kinds };
  }

  /**
   * Makes room in the memory budget for a checked (and, with a spool, recorded) msg, then lets it
   * join its batch. Without the spool the room may have to be written to disk first: the msg
   * waits for it (and fails if the disk refuses), and msgs after it wait behind it.
   */
  private place(msg: BatchMsg, piece: BatchPiece, entry: SpoolEntry | undefined): Admission | Promise<Admission> {
    if (this.placing) return this.placing.then(() => this.place(msg, piece, entry));
    const growth = () => this.growthOf(msg.fields, piece.body!.length + 1);
    if (this.budgeted && piece.body !== undefined && !this.makeRoom(growth())) {
      const spilled = this.spillIdle();
      // The spill's buffers become spares (with the spool at once, else once written): they make way for this msg's bytes.
      if (!spilled) this.makeRoom(growth());
      else {
        const placed = spilled.then(() => {
          this.makeRoom(growth());
          return this.apply(msg, piece, entry);
        });
        const placing: Promise<void> = placed.then(ignore, ignore).finally(() => {
          if (this.placing === placing) this.placing = undefined;
        });
        this.placing = placing;
        return placed;
      }
    }
    return this.apply(msg, piece, entry);
  }

  /** The buffer appending `bytes` to the batch of `fields` needs (it grows by doubling; the old one becomes a spare), 0 for none. */
  private growthOf(fields: RecordFields, bytes: number): number {
    const batch = this.open.get(identityOf(fields));
    const held = batch?.held;
    if (batch === undefined || !Buffer.isBuffer(held)) return bytes;
    const needed = batch.filled + bytes;
    return needed <= held.length ? 0 : this.grownSize(batch, needed);
  }

  /**
   * Lets spare buffers go until a buffer of `size` bytes more keeps to the budget (nothing more
   * when a spare of its size serves it, which stays for it); whether it does.
   */
  private makeRoom(size: number): boolean {
    const budget = this.settings.maxBatchMemoryBytes;
    const needed = this.pool.has(size) ? 0 : sizeClass(size);
    const over = this.bufferedBytes + needed - budget;
    if (over > 0) this.pool.trim(over, size);
    return this.bufferedBytes + needed <= budget;
  }

  /** Lets a msg with room in the budget join its batch. */
  private apply(msg: BatchMsg, piece: BatchPiece, entry: SpoolEntry | undefined): Admission {
    try {
      return this.join(msg, piece, entry);
    } catch (error) {
      // Refused after all (its batch failed, or changed while the record was written): the record is of no further use.
      if (entry) void this.spool?.releaseAll([entry]).catch(ignore);
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
      batch = this.openBatch(fields, piece, msg.contentType, msg.arrival, entry);
    } else {
      if (batch.stream?.body.failed && !complete) throw batch.stream.body.failed;
      // Kept in order of last append: the idle sweep and the open-batch limit look at the front only.
      this.open.delete(identity);
      this.open.set(identity, batch);
      batch.lastMessageAt = msg.arrival - this.clockBase;
      // Recorded before its bytes are appended: with the spool, a batch's bytes on disk are its records' bodies.
      if (entry) (batch.records ??= []).push(entry);
      if (piece.body !== undefined) batch.messages++;
      if (piece.body !== undefined && this.settings.concatenation !== "none" && !batch.stream?.body.failed) {
        if (batch.columns && !batch.stream && !this.settings.parquetSchema) addColumns(batch.columns, pieceKinds(piece));
        if (this.lines) {
          // Room for both at once, as growthOf counted it: not one doubling for the "\n" and another for the payload.
          if (Buffer.isBuffer(batch.held)) this.reserve(batch, Math.min(batch.filled + 1 + Buffer.byteLength(piece.body), this.partSize));
          this.append(batch, NEWLINE);
        }
        this.append(batch, piece.body);
      }
    }
    if (complete) return { completed: this.finish(batch, "complete", completingIdentity(msg.messageId, piece.body)) };
    if (batch.sending) {
      const stream = batch.stream!;
      return { ready: batch.sending.then(() => stream.body.drained()) };
    }
    return batch.stream?.body.backlogged ? { ready: batch.stream.body.drained() } : HELD;
  }

  private openBatch(fields: RecordFields, piece: BatchPiece, contentType: unknown, now: number, entry: SpoolEntry | undefined): OpenBatch {
    const concatenation = this.settings.concatenation;
    const base = this.keyOf(fields);
    const last = this.written.get(base);
    const batch: OpenBatch = {
      fields,
      number: last === undefined ? 1 : last + 1,
      contentType: concatenation === "none" ? CONTENT_TYPES.binary : concatenation === "parquet" ? PARQUET_CONTENT_TYPE : batchContentType(piece.type, contentType, concatenation),
      messages: 1,
      lastMessageAt: now - this.clockBase,
      held: undefined,
      filled: 0,
      consumed: 0,
      disk: undefined,
      stream: undefined,
      sending: undefined,
    };
    if (entry) batch.records = [entry];
    if (concatenation === "parquet" && piece.body !== undefined) batch.columns = new Map(this.settings.parquetSchema?.columns ?? pieceKinds(piece));
    if (last !== undefined) this.remember(base, batch.number);
    this.open.set(identityOf(fields), batch);
    if (concatenation !== "none" && piece.body !== undefined) this.append(batch, piece.body);
    return batch;
  }

  /** Appends bytes to the batch; each time its bytes fill a part, the part goes on to S3. */
  private append(batch: OpenBatch, piece: string | Buffer): void {
    const pending = (batch.disk?.bytes ?? 0) + heldSize(batch);
    // A string's UTF-8 is at most three bytes a character: most pieces need no measuring.
    if (pending + (typeof piece === "string" ? piece.length * 3 : piece.length) < this.partSize) return this.hold(batch, piece);
    let bytes = typeof piece === "string" ? Buffer.from(piece, "utf8") : piece;
    let room = this.partSize - pending;
    while (bytes.length >= room) {
      if (room === this.partSize) this.emit(batch, bytes.subarray(0, room));
      else {
        this.hold(batch, bytes.subarray(0, room));
        this.emit(batch, undefined);
      }
      bytes = bytes.subarray(room);
      room = this.partSize;
    }
    if (bytes.length > 0) this.hold(batch, bytes);
  }

  /** Keeps bytes in the batch's own buffer (less than a part). */
  private hold(batch: OpenBatch, piece: string | Buffer): void {
    this.resident.delete(batch);
    this.resident.add(batch);
    const held = batch.held;
    if (typeof piece === "string" && (held === undefined || typeof held === "string") && (held?.length ?? 0) + piece.length <= TEXT_HELD_CHARS) {
      batch.held = held === undefined ? piece : held + piece;
      this.heldBytes += piece.length;
      return;
    }
    if (typeof held === "string") {
      // Outgrew text: from now on bytes.
      this.dropHeld(batch);
      this.hold(batch, Buffer.from(held, "utf8"));
    }
    this.reserve(batch, batch.filled + (typeof piece === "string" ? Buffer.byteLength(piece) : piece.length));
    const target = batch.held as Buffer;
    batch.filled += typeof piece === "string" ? target.write(piece, batch.filled, "utf8") : piece.copy(target, batch.filled);
  }

  /** Makes the batch's buffer (it holds bytes, not text) hold at least `needed` bytes; the old buffer becomes a spare. */
  private reserve(batch: OpenBatch, needed: number): void {
    const buffer = batch.held as Buffer | undefined;
    const capacity = buffer?.length ?? 0;
    if (needed <= capacity) return;
    const grown = this.pool.take(this.grownSize(batch, needed));
    buffer?.copy(grown, 0, 0, batch.filled);
    batch.held = grown;
    this.heldBytes += grown.length - capacity;
    if (buffer) this.spare(buffer);
  }

  /**
   * Keeps a buffer nothing refers to any more as a spare while the budget has room for it (spares
   * of other sizes make way). A completion storm reads back the budget's worth of batches again
   * and again: fresh buffers for each would leave that much garbage each time, until V8 collects.
   */
  private spare(buffer: Buffer): void {
    const budget = this.settings.maxBatchMemoryBytes;
    const over = this.bufferedBytes + buffer.length - budget;
    if (over > 0) this.pool.trim(over, buffer.length);
    if (this.bufferedBytes + buffer.length <= budget) this.pool.give(buffer);
  }

  /**
   * What the batch's buffer grows to for `needed` bytes: exactly the first payload's size (most
   * idle batches hold one msg), then doubling, at most a part; a batch that has sent a part is a large one.
   */
  private grownSize(batch: OpenBatch, needed: number): number {
    const capacity = Buffer.isBuffer(batch.held) ? batch.held.length : 0;
    if (capacity === 0) return batch.stream && !batch.disk?.bytes ? this.partSize : needed;
    return Math.min(Math.max(needed, capacity * 2), this.partSize);
  }

  /** Sends the batch's next part: `whole` (a payload's own bytes), or its bytes on disk and in memory, which fill exactly one part. */
  private emit(batch: OpenBatch, whole: Buffer | undefined): void {
    const stream = batch.stream ?? this.startStream(batch);
    const fromDisk = batch.disk?.bytes ?? 0;
    let tail: Outgoing;
    if (whole) {
      batch.consumed += whole.length;
      tail = { bytes: whole, counted: 0 };
    } else tail = this.takeHeld(batch);
    if (fromDisk === 0 && !batch.sending) {
      stream.body.write(tail.bytes);
      this.released(tail.counted);
      return;
    }
    const at = this.takeDisk(batch, fromDisk);
    // Parts of one batch go in order: each waits for the one before it to be read back.
    const sending: Promise<void> = (batch.sending ?? Promise.resolve())
      .then(async () => {
        const part = fromDisk === 0 ? tail : await this.readBack(batch, at, fromDisk, tail);
        if (!stream.body.failed) stream.body.write(part.bytes);
        this.released(part.counted);
      })
      .catch((error: Error) => stream.upload.abandon(error).catch(ignore))
      .finally(() => {
        if (batch.sending === sending) batch.sending = undefined;
      });
    batch.sending = sending;
  }

  private startStream(batch: OpenBatch): { upload: StreamingUpload; body: ObjectWriter } {
    const upload = new StreamingUpload(this.sink, this.writer, this.numberedKey(batch.fields, batch.number), this.objectOptions(batch), this.partSize, () => this.wake());
    const body = batch.columns ? new ParquetEncoder(upload, batch.columns, this.settings.parquetCodec, this.settings.parquetSchema?.required) : this.gzipped() ? new GzipWriter(upload) : upload;
    batch.stream = { upload, body };
    this.streaming.add(batch);
    return batch.stream;
  }

  /** Takes the batch's bytes in memory out, on their way to S3; they count in the budget until `released`. */
  private takeHeld(batch: OpenBatch): Outgoing {
    const held = batch.held;
    if (held === undefined) return { bytes: EMPTY, counted: 0 };
    const bytes = typeof held === "string" ? Buffer.from(held, "utf8") : held.subarray(0, batch.filled);
    const counted = held.length;
    batch.consumed += bytes.length;
    this.heldBytes -= counted;
    this.outgoingBytes += counted;
    batch.held = undefined;
    batch.filled = 0;
    this.resident.delete(batch);
    return typeof held === "string" ? { bytes, counted } : { bytes, counted, buffer: held };
  }

  private dropHeld(batch: OpenBatch): void {
    this.heldBytes -= batch.held?.length ?? 0;
    batch.held = undefined;
    batch.filled = 0;
  }

  /** Counts the first `bytes` of the batch's bytes on disk as taken (`readBack` reads them); returns where they start in the object. */
  private takeDisk(batch: OpenBatch, bytes: number): number {
    const disk = batch.disk;
    if (!disk || bytes === 0) return batch.consumed;
    const at = disk.start;
    disk.start += bytes;
    disk.bytes -= bytes;
    this.onDisk -= bytes;
    return at;
  }

  /** Reads the batch's `fromDisk` bytes on disk from `at` on back, followed by `tail`, once the budget has room for them. */
  private async readBack(batch: OpenBatch, at: number, fromDisk: number, tail: Outgoing): Promise<Outgoing> {
    const size = fromDisk + tail.bytes.length;
    await this.room(size, tail.counted);
    try {
      // Runs being written to a spill file are read once they are there.
      while (this.spilling) await this.spilling.catch(ignore);
      const disk = batch.disk!;
      const runs = this.spool ? this.recordRuns(batch, disk, at, fromDisk) : takeRuns(disk.runs, fromDisk);
      const buffer = this.pool.take(size);
      const bytes = buffer.subarray(0, size);
      // readRuns copies the bytes still in memory before it first waits: their data can go at once.
      const reading = readRuns(runs, bytes, 0);
      for (const run of runs) this.dropRunData(run);
      await reading;
      for (const run of runs) releaseRun(run);
      tail.bytes.copy(bytes, fromDisk);
      return { bytes, counted: size, buffer };
    } catch (error) {
      // Not given back: a read that failed may leave others still writing into the buffer.
      this.released(size);
      throw error;
    } finally {
      this.sent(tail);
    }
  }

  /** Bytes on their way to S3 have left memory. */
  private released(bytes: number): void {
    if (bytes === 0) return;
    this.outgoingBytes -= bytes;
    this.wake();
  }

  /** Outgoing bytes are no longer needed (copied, or their request ended): they leave the budget, and their pool buffer serves the next batch. */
  private sent(outgoing: Outgoing): void {
    this.outgoingBytes -= outgoing.counted;
    outgoing.counted = 0;
    if (outgoing.buffer) this.spare(outgoing.buffer);
    outgoing.buffer = undefined;
    this.wake();
  }

  /**
   * Resolves once the budget has room for `bytes` more on their way to S3, which then count
   * against it; `own` of the outgoing bytes are the caller's, waiting with it.
   */
  private room(bytes: number, own: number): Promise<void> {
    if (this.roomWaiters.length === 0 && this.fits(bytes)) {
      this.outgoingBytes += bytes;
      return Promise.resolve();
    }
    this.waitersOwn += own;
    const waiting = new Promise<void>((resolve) => this.roomWaiters.push({ bytes, own, resolve }));
    this.spillIdle()?.catch(ignore);
    this.wake();
    return waiting;
  }

  private fits(bytes: number): boolean {
    if (!this.budgeted || this.makeRoom(bytes)) return true;
    // Nothing is on its way out that would make room by itself: go ahead rather than wait for ever.
    if (this.spilling || this.outgoingBytes > this.waitersOwn) return false;
    for (const batch of this.streaming) if (batch.stream!.upload.inFlight > 0) return false;
    return true;
  }

  private wake(): void {
    while (this.roomWaiters.length > 0 && this.fits(this.roomWaiters[0].bytes)) {
      const { bytes, own, resolve } = this.roomWaiters.shift()!;
      this.waitersOwn -= own;
      this.outgoingBytes += bytes;
      resolve();
    }
  }

  /** Whether open batches keep to the memory budget: they have bytes, and somewhere to move them. */
  private get budgeted(): boolean {
    return this.settings.concatenation !== "none" && (this.spool !== undefined || this.spillStore !== undefined);
  }

  /**
   * Moves the bytes of the batches appended to least recently out of memory until it holds
   * SPILL_TO of the budget: with the spool they are dropped (their records hold them), without it
   * they are written to a spill file. Resolves once they are on disk; rejects with SpillWriteError
   * (the bytes then stay in memory, and the next spill tries them again).
   */
  private spillIdle(): Promise<void> | undefined {
    if (this.spilling) return this.spilling;
    const target = this.settings.maxBatchMemoryBytes * SPILL_TO;
    let memory = this.batchBytes;
    const runs = this.unwritten.filter((run) => run.data !== undefined);
    this.unwritten = [];
    for (const batch of this.resident) {
      if (memory <= target) break;
      memory -= this.moveToDisk(batch, runs);
    }
    if (runs.length === 0) return undefined;
    const spilling = this.spillStore!.then((store) => store.write(runs)).then(
      (moved) => {
        this.runDataBytes -= moved;
        for (const run of runs) {
          // Its bytes are in the file now, or no longer needed: the buffer serves the next batch.
          if (run.buffer && run.data === undefined) this.spare(run.buffer);
          run.buffer = undefined;
        }
      },
      (error: Error) => {
        this.unwritten.push(...runs);
        throw error;
      },
    );
    this.spilling = spilling.finally(() => {
      this.spilling = undefined;
      this.wake();
    });
    return this.spilling;
  }

  /**
   * Moves the batch's bytes in memory to its bytes on disk (adding the runs to write to `runs`);
   * returns the memory that frees once they are there (without the spool they stay in memory, as
   * `runDataBytes`, until their spill file is written).
   */
  private moveToDisk(batch: OpenBatch, runs: DiskRun[]): number {
    this.resident.delete(batch);
    const held = batch.held;
    if (held === undefined) return 0;
    const size = heldSize(batch);
    const disk = (batch.disk ??= { bytes: 0, start: 0, runs: [], recordIndex: 0, recordStart: 0 });
    if (disk.bytes === 0) disk.start = batch.consumed;
    const counted = held.length;
    if (!this.spool) {
      const data = typeof held === "string" ? Buffer.from(held, "utf8") : held.subarray(0, batch.filled);
      const run = new DiskRun("", 0, size, false, data, typeof held === "string" ? undefined : held);
      disk.runs.push(run);
      runs.push(run);
      this.runDataBytes += size;
    }
    batch.consumed += size;
    disk.bytes += size;
    this.onDisk += size;
    this.dropHeld(batch);
    if (this.spool && typeof held !== "string") this.spare(held);
    return counted;
  }

  /**
   * With the spool: the runs of the batch's bytes from `at` to `at + bytes`, in the bodies of its
   * records (each after its "\n" in a newline batch); reads go forward, so the search starts where
   * the last one ended.
   */
  private recordRuns(batch: OpenBatch, disk: BatchDisk, at: number, bytes: number): DiskRun[] {
    const records = batch.records!;
    const newline = this.lines;
    const end = at + bytes;
    const runs: DiskRun[] = [];
    let index = disk.recordIndex;
    let start = disk.recordStart;
    // The bytes end with a payload's: never in the records past `messages` (a msg.complete alone).
    for (; start < end; index++) {
      const entry = records[index];
      const lead = newline && index > 0 ? 1 : 0;
      const bodyAt = start + lead;
      const next = bodyAt + entry.bodyLength;
      if (next > at) {
        const from = Math.max(at, bodyAt);
        const length = Math.max(0, Math.min(end, next) - from);
        const offset = entry.offset + entry.length - entry.bodyLength + from - bodyAt;
        runs.push(new DiskRun(entry.segment.file, offset, length, lead === 1 && at <= start));
      }
      // A record read back in part is where the next read starts.
      if (next > end) break;
      start = next;
    }
    disk.recordIndex = index;
    disk.recordStart = start;
    return runs;
  }

  private dropRunData(run: DiskRun): void {
    if (!run.data) return;
    this.runDataBytes -= run.data.length;
    run.data = undefined;
  }

  /** The batch's bytes on disk are not needed any more. */
  private dropDisk(batch: OpenBatch): void {
    const disk = batch.disk;
    if (!disk) return;
    for (const run of disk.runs) {
      this.dropRunData(run);
      releaseRun(run);
    }
    this.onDisk -= disk.bytes;
    batch.disk = undefined;
  }

  /**
   * Completes a batch: writes it, then releases its records (unless the node closed first: they
   * stay for the next start). `completingMsg`: the identity of the msg that completed it.
   */
  private finish(batch: OpenBatch, trigger: CompletionTrigger, completingMsg?: string): Promise<WriteOutcome | undefined> {
    const identity = identityOf(batch.fields);
    if (this.open.get(identity) === batch) this.open.delete(identity);
    const stored = this.store(batch);
    const kept = (error: unknown) => this.spool !== undefined && error instanceof WriterClosedError;
    const result = stored.then(
      async ({ key, written }) => {
        await this.spool?.releaseAll(batch.records ?? []);
        return withResult({ bucket: this.sink.bucket, key, etag: "", bytes: written.bytes, messages: batch.messages }, written);
      },
      async (error: Error) => {
        if (kept(error)) return undefined;
        await this.spool?.releaseAll(batch.records ?? []).catch(ignore);
        throw error;
      },
    );
    this.completed.writing(this.keyOf(batch.fields), completingMsg, result);
    void result.then(ignore, ignore).finally(() => {
      this.streaming.delete(batch);
      this.dropDisk(batch);
      this.wake();
    });
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
    const settled = completion.then(ignore, ignore);
    this.completing.add(settled);
    void settled.finally(() => this.completing.delete(settled));
  }

  /** Writes the batch object, never over an object that exists: on 412 a small batch goes to the next continuation key. */
  private async store(batch: OpenBatch): Promise<{ key: string; written: WriteResult & { bytes: number } }> {
    const base = this.keyOf(batch.fields);
    this.remember(base, batch.number);
    // Its bytes in memory are taken now: no msg joins a finished batch, and none may move to disk under way.
    const tail = this.takeHeld(batch);
    await batch.sending;
    const fromDisk = batch.disk?.bytes ?? 0;
    const at = this.takeDisk(batch, fromDisk);
    const rest = fromDisk === 0 ? tail : await this.readBack(batch, at, fromDisk, tail);
    try {
      if (batch.stream) {
        const key = batch.stream.upload.key;
        if (!batch.stream.body.failed && rest.bytes.length > 0) batch.stream.body.write(rest.bytes);
        this.released(rest.counted);
        rest.counted = 0;
        try {
          return { key, written: await batch.stream.body.finish() };
        } catch (error) {
          if (error instanceof S3Error && error.statusCode === 412) throw new BatchKeyTakenError(key, batch.messages);
          throw error;
        }
      }
      const body = batch.columns ? await parquetObject(rest.bytes, batch.columns, this.settings.parquetCodec, this.settings.parquetSchema?.required) : this.gzipped() ? await gzipAsync(rest.bytes) : rest.bytes;
      try {
        return await this.putBatch(batch, body);
      } finally {
        // The request has ended (written, or failed for good): its body is free for the next batch.
        this.sent(rest);
      }
    } finally {
      this.released(rest.counted);
    }
  }

  /** Writes a batch that never filled a part with one PutObject, at the first of its keys S3 does not hold yet. */
  private async putBatch(batch: OpenBatch, body: Buffer): Promise<{ key: string; written: WriteResult & { bytes: number } }> {
    const base = this.keyOf(batch.fields);
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
    return this.settings.concatenation !== "none" && this.settings.concatenation !== "parquet" && this.settings.compression === "gzip";
  }

  /** Whether payloads are held one a line: newline, and parquet (a row a line, encoded as the bytes go to S3). */
  private get lines(): boolean {
    return this.settings.concatenation === "newline" || this.settings.concatenation === "parquet";
  }

  private objectOptions(batch: OpenBatch): ObjectOptions {
    const headers: Record<string, string> = { ...this.settings.objectHeaders, "if-none-match": "*" };
    if (this.gzipped()) headers["content-encoding"] = "gzip";
    return { contentType: batch.contentType, metadata: objectAddress("batches", this.settings.path, batch.fields).metadata, headers, objectLock: this.settings.objectLock };
  }

  private keyOf(fields: RecordFields): string {
    return objectAddress("batches", this.settings.path, fields).key;
  }

  private numberedKey(fields: RecordFields, number: number): string {
    const key = this.keyOf(fields);
    return number === 1 ? key : `${key}~${number}`;
  }
}

/** The field kinds of a Parquet row: from its check, or for a row read back from the spool, from its line. */
function pieceKinds(piece: BatchPiece): Columns {
  return piece.kinds ?? kindsOfLine(piece.body!);
}

/** The UTF-8 bytes a batch holds in memory. */
function heldSize(batch: OpenBatch): number {
  return typeof batch.held === "string" ? Buffer.byteLength(batch.held) : batch.filled;
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
