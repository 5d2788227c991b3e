import { InputError } from "./errors";
import type { RecordFields, RouteInput } from "./record";
import { encodeHeaderValue } from "./rfc2047";
import { MAX_KEY_BYTES, MAX_METADATA_BYTES, normalisePath, pathProblem, utf8Length } from "./rules";

/** Where an object goes and the user metadata it carries (names without the x-amz-meta- prefix). */
export interface ObjectAddress {
  key: string;
  metadata: Record<string, string>;
}

/**
 * The key and metadata of the seed for one message or one batch:
 * - messages: (<path>/)messages/<stream-group>/<stream>/<device-id>/<batch-id>/(<batch-slice-id>/)<message-id>
 * - batches:  (<path>/)batches/<stream-group>/<stream>/<device-id>/<batch-id>
 */
export function objectAddress(input: RouteInput, path: string, fields: RecordFields): ObjectAddress {
  const problem = pathProblem(path);
  if (problem) throw new InputError("path", problem);

  const segments = [input, fields.streamGroup, fields.stream, fields.deviceId, fields.batchId];
  if (input === "messages") {
    if (fields.batchSliceId !== undefined) segments.push(fields.batchSliceId);
    if (fields.messageId === undefined) throw new InputError("messageId", "is missing");
    segments.push(fields.messageId);
  }
  const prefix = normalisePath(path);
  const key = (prefix ? prefix + "/" : "") + segments.join("/");
  const keyBytes = utf8Length(key);
  if (keyBytes > MAX_KEY_BYTES) {
    throw new InputError("key", `is ${keyBytes} UTF-8 bytes long, over the S3 limit of ${MAX_KEY_BYTES}: ${key.slice(0, 80)}…`);
  }
  return { key, metadata: objectMetadata(input, fields) };
}

function objectMetadata(input: RouteInput, fields: RecordFields): Record<string, string> {
  const entries: [string, string | undefined][] = [
    ["stream-group-name", fields.streamGroup],
    ["stream-name", fields.stream],
    ["device-id", fields.deviceId],
    ["batch-id", fields.batchId],
    ["batch-slice-id", fields.batchSliceId],
    ["message-id", input === "messages" ? fields.messageId : undefined],
    ["workspace-id", fields.workspaceId],
  ];
  const metadata: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of entries) {
    if (value === undefined) continue;
    const encoded = encodeHeaderValue(value);
    metadata[name] = encoded;
    bytes += utf8Length(name) + utf8Length(encoded);
  }
  if (bytes > MAX_METADATA_BYTES) {
    throw new InputError("metadata", `is ${bytes} bytes, over the S3 limit of ${MAX_METADATA_BYTES} (2 KB)`);
  }
  return metadata;
}
