import type { Body, RecordFields } from "../core/record";
import { objectAddress } from "../core/keys";
import type { S3Sink } from "../s3/client";
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
}

/** The Messages route: every msg becomes one object. */
export class MessageRoute {
  constructor(
    private readonly sink: S3Sink,
    private readonly writer: Writer,
    private readonly path: string,
  ) {}

  /** Derives key and metadata (throwing InputError when they are invalid, before anything is queued), then queues the write with the object `headers`. */
  write(fields: RecordFields, body: Body, headers: Record<string, string>): Promise<WriteOutcome> {
    const { key, metadata } = objectAddress("messages", this.path, fields);
    const options = { contentType: body.contentType, metadata, headers };
    return this.writer.submit(async () => {
      const result = await this.sink.putObject(key, body.bytes, options);
      const outcome: WriteOutcome = { bucket: this.sink.bucket, key, etag: result.etag, bytes: body.bytes.length };
      if (result.versionId) outcome.versionId = result.versionId;
      return outcome;
    });
  }
}
