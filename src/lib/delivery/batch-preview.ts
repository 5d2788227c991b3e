import { FixedLimit } from "./concurrency";
import type { RecordFields } from "../core/record";
import { type ObjectOptions, S3Sink, type WriteResult } from "../s3/client";
import { type Admission, type BatchSettings, Batches } from "./batches";
import { Writer } from "./writer";

/** One sample msg of a batch preview: what the route takes in. */
export interface SampleMsg {
  payload?: unknown;
  contentType?: unknown;
}

/** The object a batch would be stored as. */
export interface BatchObject {
  contentType: string;
  /** Present when the object is stored compressed. */
  contentEncoding?: string;
  /** Bytes stored. */
  bytes: number;
}

/** Stores nothing: it keeps what the write of a batch would have sent. */
class DryRunSink extends S3Sink {
  sent?: { body: Buffer; options: ObjectOptions };

  constructor() {
    super({ bucket: "preview", region: "us-east-1", endpoint: "http://127.0.0.1:9", forcePathStyle: true, credentials: { accessKeyId: "-", secretAccessKey: "-" } });
  }

  override async putObject(_key: string, body: Buffer, options: ObjectOptions): Promise<WriteResult> {
    this.sent = { body, options };
    return { etag: '"preview"' };
  }

  override async createMultipartUpload(): Promise<string> {
    throw new Error("the sample batch is larger than one part: the preview shows batches that fit in one part");
  }
}

/**
 * The object the Batch Completions route would write for `samples`, joined in order into one
 * batch with `fields` and completed by the last: the route itself runs, against a sink that
 * stores nothing, so the preview and the runtime cannot disagree.
 */
export async function batchObject(settings: BatchSettings, fields: RecordFields, samples: SampleMsg[]): Promise<BatchObject> {
  const sink = new DryRunSink();
  const ignore = () => undefined;
  const batches = new Batches(sink, new Writer(new FixedLimit(1)), { ...settings, idleTimeoutMs: 0 }, { completed: ignore, failed: ignore, unusable: ignore });
  try {
    let admission: Admission | undefined;
    for (const [index, sample] of samples.entries()) {
      const complete = index === samples.length - 1;
      admission = await batches.accept({ fields, payload: sample.payload, contentType: sample.contentType, complete, arrival: Date.now(), msgid: `preview-${index}` });
    }
    if (!admission || !("completed" in admission)) throw new Error("the sample batch has no msgs");
    await admission.completed;
    const { body, options } = sink.sent!;
    const contentEncoding = options.headers?.["content-encoding"];
    return { contentType: options.contentType, ...(contentEncoding ? { contentEncoding } : {}), bytes: body.length };
  } finally {
    sink.destroy();
  }
}
