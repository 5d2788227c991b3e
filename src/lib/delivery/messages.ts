import type { Body, RecordFields } from "../core/record";
import { objectAddress } from "../core/keys";
import type { S3Sink } from "../s3/client";
import { S3Error } from "../s3/errors";
import { DEFAULT_PART_SIZE, StreamingUpload } from "./multipart";
import type { SpooledWrite } from "./spool";
import type { Writer } from "./writer";

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
  prepare(fields: RecordFields, body: Body, headers: Record<string, string>, msgid: string): SpooledWrite {
    const { key, metadata } = objectAddress("messages", this.path, fields);
    return { msgid, key, contentType: body.contentType, metadata, headers, body: body.bytes };
  }

  /** Queues the write of one prepared object. */
  put(write: SpooledWrite): Promise<WriteOutcome> {
    if (write.body.length > this.partSize) return this.putInParts(write);
    const headers = this.neverOverwrite ? { ...write.headers, "if-none-match": "*" } : write.headers;
    const options = { contentType: write.contentType, metadata: write.metadata, headers };
    let attempts = 0;
    return this.writer.submit(async () => {
      attempts++;
      const outcome: WriteOutcome = { bucket: this.sink.bucket, key: write.key, etag: "", bytes: write.body.length, attempts };
      try {
        const result = await this.sink.putObject(write.key, write.body, options);
        outcome.etag = result.etag;
        if (result.versionId) outcome.versionId = result.versionId;
      } catch (error) {
        if (!(this.neverOverwrite && error instanceof S3Error && error.statusCode === 412)) throw error;
        // An earlier attempt (or an earlier run, before a crash) wrote it already.
        outcome.alreadyWritten = true;
      }
      return outcome;
    }, { bytes: write.body.length });
  }

  /** Each part goes through the writer on its own (bound, retries); a failed upload is aborted. */
  private async putInParts(write: SpooledWrite): Promise<WriteOutcome> {
    const options = { contentType: write.contentType, metadata: write.metadata, headers: write.headers };
    const upload = new StreamingUpload(this.sink, this.writer, write.key, options, this.partSize);
    upload.write(write.body);
    const result = await upload.finish();
    const outcome: WriteOutcome = { bucket: this.sink.bucket, key: write.key, etag: result.etag, bytes: result.bytes };
    if (result.versionId) outcome.versionId = result.versionId;
    return outcome;
  }
}
