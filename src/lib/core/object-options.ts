// Object options: storage class, server-side encryption, Cache-Control and a default Content-Type,
// set on the config node and, for storage class and Cache-Control, per msg. Their validation rules
// live in rules.ts, which the editor shares; this module turns valid options into request headers.
import { InputError } from "./errors";
import { type ObjectSettings, cacheControlProblem, storageClassProblem } from "./rules";

/** The per-msg overrides, as found on the msg. */
export interface ObjectOverrides {
  storageClass?: unknown;
  cacheControl?: unknown;
}

export const HEADERS = {
  storageClass: "x-amz-storage-class",
  serverSideEncryption: "x-amz-server-side-encryption",
  kmsKeyId: "x-amz-server-side-encryption-aws-kms-key-id",
  cacheControl: "cache-control",
} as const;

/** The request headers of valid object settings; unset options send nothing, so the bucket's defaults apply. */
export function objectHeaders(settings: ObjectSettings): Record<string, string> {
  const headers: Record<string, string> = {};
  if (settings.storageClass) headers[HEADERS.storageClass] = settings.storageClass;
  if (settings.serverSideEncryption) headers[HEADERS.serverSideEncryption] = settings.serverSideEncryption;
  if (settings.kmsKeyId) headers[HEADERS.kmsKeyId] = settings.kmsKeyId;
  if (settings.cacheControl) headers[HEADERS.cacheControl] = settings.cacheControl;
  return headers;
}

/**
 * The headers for one msg: the config's, with msg.storageClass and msg.cacheControl in place of
 * theirs when set. Throws an InputError naming the msg property when an override is invalid.
 */
export function headersWithOverrides(base: Record<string, string>, overrides: ObjectOverrides): Record<string, string> {
  const storageClass = overrideText(overrides.storageClass, "msg.storageClass", storageClassProblem);
  const cacheControl = overrideText(overrides.cacheControl, "msg.cacheControl", cacheControlProblem);
  if (storageClass === undefined && cacheControl === undefined) return base;
  const headers = { ...base };
  if (storageClass !== undefined) headers[HEADERS.storageClass] = storageClass;
  if (cacheControl !== undefined) headers[HEADERS.cacheControl] = cacheControl;
  return headers;
}

function overrideText(value: unknown, field: string, problemOf: (text: string) => string | undefined): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new InputError(field, `must be a string, not ${Array.isArray(value) ? "an array" : typeof value}`);
  const problem = problemOf(value);
  if (problem) throw new InputError(field, problem);
  return value;
}
