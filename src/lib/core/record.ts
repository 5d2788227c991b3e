import { InputError } from "./errors";
import { utcDate } from "./ids";
import { canonicalGuid, segmentProblem } from "./rules";

/** The seed's "Egress Route Input". */
export type RouteInput = "messages" | "batches";

export const FIELD_NAMES = [
  "streamGroup",
  "stream",
  "deviceId",
  "batchId",
  "batchSliceId",
  "messageId",
  "workspaceId",
] as const;
export type FieldName = (typeof FIELD_NAMES)[number];

/** Field values as found on a msg, before validation. */
export type RawFields = Partial<Record<FieldName, unknown>>;

export interface RecordFields {
  streamGroup: string;
  stream: string;
  deviceId: string;
  batchId: string;
  batchSliceId?: string;
  messageId?: string;
  workspaceId?: string;
}

export interface FieldOptions {
  input: RouteInput;
  batchIdAutofill: "none" | "utc-date";
  messageIdAutofill: "none" | "auto";
  /** Where each field comes from (e.g. "msg.deviceId"), to name it in errors. */
  sources?: Partial<Record<FieldName, string>>;
}

export interface FieldContext {
  /** Arrival time of the msg, ms since the epoch. */
  arrival: number;
  nextMessageId: () => string;
}

/** Validates the raw field values of one msg and applies the autofills. */
export function toFields(raw: RawFields, options: FieldOptions, context: FieldContext): RecordFields {
  const value = (field: FieldName): string | undefined => {
    const text = asText(raw[field], label(field, options));
    if (text === undefined) return undefined;
    const problem = segmentProblem(text);
    if (problem) throw new InputError(label(field, options), problem);
    return text;
  };
  // Every missing field is named at once, so that the first error says all there is to set.
  const missing: FieldName[] = [];
  const required = (field: FieldName, fallback?: () => string): string => {
    const text = value(field) ?? fallback?.();
    if (text === undefined) missing.push(field);
    return text ?? "";
  };

  const fields: RecordFields = {
    streamGroup: required("streamGroup"),
    stream: required("stream"),
    deviceId: required("deviceId"),
    batchId: required("batchId", options.batchIdAutofill === "utc-date" ? () => utcDate(context.arrival) : undefined),
  };
  const batchSliceId = value("batchSliceId");
  if (batchSliceId !== undefined) fields.batchSliceId = batchSliceId;
  if (options.input === "messages") {
    fields.messageId = required("messageId", options.messageIdAutofill === "auto" ? context.nextMessageId : undefined);
  }
  if (missing.length === 1) throw new InputError(label(missing[0], options), "is missing");
  if (missing.length > 1) throw InputError.missing(missing.map((field) => options.sources?.[field] ?? field));
  const workspaceId = asText(raw.workspaceId, label("workspaceId", options));
  if (workspaceId !== undefined) {
    const guid = canonicalGuid(workspaceId);
    if (!guid) throw new InputError(label("workspaceId", options), `"${workspaceId}" is not a GUID (8-4-4-4-12 hexadecimal digits)`);
    fields.workspaceId = guid;
  }
  return fields;
}

function label(field: FieldName, options: FieldOptions): string {
  const source = options.sources?.[field];
  return source ? `${field} (${source})` : field;
}

/** A field value as text; undefined when it is absent (undefined, null or ""). */
function asText(value: unknown, label: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new InputError(label, `must be a finite number, not ${value}`);
    return String(value);
  }
  if (typeof value === "bigint") return value.toString();
  throw new InputError(label, `must be a string or a number, not ${Array.isArray(value) ? "an array" : typeof value}`);
}

export interface Body {
  bytes: Buffer;
  contentType: string;
}

export const CONTENT_TYPES = {
  binary: "application/octet-stream",
  text: "text/plain; charset=utf-8",
  json: "application/json",
} as const;

/**
 * The object body for a payload: Buffer as is, string as UTF-8, number and boolean as text,
 * anything else as JSON. `contentType` (from msg.contentType) overrides the derived type.
 */
export function toBody(payload: unknown, contentType?: unknown): Body {
  const body = encodePayload(payload);
  if (contentType === undefined || contentType === null || contentType === "") return body;
  if (typeof contentType !== "string" || /[\u0000-\u001f\u007f-\uffff]/.test(contentType)) {
    throw new InputError("msg.contentType", "must be a string of printable ASCII characters");
  }
  return { bytes: body.bytes, contentType };
}

function encodePayload(payload: unknown): Body {
  if (payload === undefined) throw new InputError("msg.payload", "is undefined");
  if (Buffer.isBuffer(payload)) return { bytes: payload, contentType: CONTENT_TYPES.binary };
  if (payload instanceof Uint8Array) {
    return { bytes: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), contentType: CONTENT_TYPES.binary };
  }
  if (typeof payload === "string") return { bytes: Buffer.from(payload, "utf8"), contentType: CONTENT_TYPES.text };
  if (typeof payload === "number" || typeof payload === "boolean" || typeof payload === "bigint") {
    return { bytes: Buffer.from(String(payload), "utf8"), contentType: CONTENT_TYPES.text };
  }
  if (typeof payload === "function" || typeof payload === "symbol") {
    throw new InputError("msg.payload", `cannot be written: it is a ${typeof payload}`);
  }
  let json: string;
  try {
    json = JSON.stringify(payload);
  } catch (error) {
    throw new InputError("msg.payload", `cannot be serialised as JSON: ${(error as Error).message}`);
  }
  return { bytes: Buffer.from(json, "utf8"), contentType: CONTENT_TYPES.json };
}
