import type { Body, RecordFields } from "../core/record";
import { objectAddress } from "../core/keys";
import type { ObjectLock, S3Sink, StoredChecksum, WriteResult } from "../s3/client";
import { S3Error } from "../s3/errors";
import { DEFAULT_PART_SIZE, StreamingUpload } from "./multipart";
import type { SpooledWrite } from "./spool";
import type { WriteJob, Writer } from "./writer";

/** What a successful write reports on msg.s3. */
export interface WriteOutcome {
  bucket: string;
  key: string;
  etag: string;
  versionId?: string;
  bytes: number;
  /** Batches only: how many messages the object holds. */
  messages?: number;
  /** Attempts this write took, the first included. */
  attempts?: number;
  /** Never-overwrite mode: the key existed already (S3 answered 412), so nothing was written. */
  alreadyWritten?: boolean;
  /** The stored checksum, e.g. `{ sha256: "…" }` (a multipart upload's ends in `-<parts>`); absent with checksum none. */
  checksum?: StoredChecksum;
}

/** `outcome` with what S3 answered: ETag, and version id and checksum when there are. */
export function withResult(outcome: WriteOutcome, result: WriteResult): WriteOutcome {
  outcome.etag = result.etag;
  if (result.versionId) outcome.versionId = result.versionId;
  if (result.checksum) outcome.checksum = result.checksum;
  return outcome;
}

/** The Messages route: every msg becomes one object; a payload over one part is sent as a multipart upload. */
export class MessageRoute {
  constructor(
    private readonly sink: S3Sink,
    private readonly writer: Writer,
    private readonly path: string,
    /** Send `If-None-Match: *`, so an existing object is never replaced; a 412 then means "already written". */
    private readonly neverOverwrite = false,
    private readonly partSize = DEFAULT_PART_SIZE,
  ) {}

  /** Derives key and metadata, throwing InputError when they are invalid, before anything is queued or spooled; `headers` are the object headers. */
  prepare(fields: RecordFields, body: Body, headers: Record<string, string>, msgid: string, objectLock?: ObjectLock): SpooledWrite {
    const { key, metadata } = objectAddress("messages", this.path, fields);
    const write: SpooledWrite = { msgid, key, contentType: body.contentType, metadata, headers, body: body.bytes };
    if (objectLock) write.objectLock = objectLock;
    return write;
  }

  /**
   * Queues the write of one prepared object and tells `receiver` how it ended; returns the refusal
   * instead (QueueFullError, WriterClosedError), without telling the receiver, when it was not
   * taken. A payload over one part is taken whole against the byte bound and sent as a multipart upload,
   * whose parts are then never refused.
   */
  start(write: SpooledWrite, receiver: WriteReceiver): Error | undefined {
    if (write.body.length <= this.partSize) return this.writer.enqueue(new PutJob(this, write, receiver));
    const refusal = this.writer.reserve(write.body.length);
    if (refusal) return refusal;
    this.putInParts(write)
      .finally(() => this.writer.unreserve(write.body.length))
      .then(
        (outcome) => receiver.written(outcome),
        (error: Error) => receiver.failed(error),
      );
    return undefined;
  }

  /** One attempt at writing a single-part object. */
  async putOnce(write: SpooledWrite, attempt: number): Promise<WriteOutcome> {
    const headers = this.neverOverwrite ? { ...write.headers, "if-none-match": "*" } : write.headers;
    const outcome: WriteOutcome = { bucket: this.sink.bucket, key: write.key, etag: "", bytes: write.body.length, attempts: attempt };
    try {
      const result = await this.sink.putObject(write.key, write.body, { contentType: write.contentType, metadata: write.metadata, headers, objectLock: write.objectLock });
      withResult(outcome, result);
    } catch (error) {
      if (!(this.neverOverwrite && error instanceof S3Error && error.statusCode === 412)) throw error;
      // An earlier attempt (or an earlier run, before a crash) wrote it already.
      outcome.alreadyWritten = true;
    }
    return outcome;
  }

  /** Each part goes through the writer on its own (concurrency limit, retries), never refused; a failed upload is aborted. */
  private async putInParts(write: SpooledWrite): Promise<WriteOutcome> {
    const options = { contentType: write.contentType, metadata: write.metadata, headers: write.headers, objectLock: write.objectLock };
    const upload = new StreamingUpload(this.sink, this.writer, write.key, options, this.partSize);
    upload.write(write.body);
    const result = await upload.finish();
    return withResult({ bucket: this.sink.bucket, key: write.key, etag: "", bytes: result.bytes }, result);
  }
}

/** Where the end of one msg's write is reported. */
export interface WriteReceiver {
  written(outcome: WriteOutcome): void;
  failed(error: Error): void;
}

/** One queued single-part write: the route, the write and its receiver, nothing more. */
class PutJob implements WriteJob<WriteOutcome> {
  readonly countsAsWritten = true;
  constructor(
    private readonly route: MessageRoute,
    private readonly write: SpooledWrite,
    private readonly receiver: WriteReceiver,
  ) {}

  get bytes(): number {
    return this.write.body.length;
  }

  attempt(attempt: number): Promise<WriteOutcome> {
    return this.route.putOnce(this.write, attempt);
  }

  settle(error: Error | undefined, outcome?: WriteOutcome): void {
    if (error) this.receiver.failed(error);
    else this.receiver.written(outcome as WriteOutcome);
  }
}
