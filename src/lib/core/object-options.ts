// Object options: storage class, server-side encryption, Cache-Control and a default Content-Type,
// set on the config node and, for storage class and Cache-Control, per msg. Their validation rules
// live in rules.ts, which the editor shares; this module turns valid options into request headers.
import type { ChecksumAlgorithm, ObjectLock } from "../s3/client";
import { InputError } from "./errors";
import { type ObjectLockSettings, type ObjectSettings, cacheControlProblem, objectLockProblem, retentionMs, storageClassProblem } from "./rules";

/** The per-msg overrides, as found on the msg. */
export interface ObjectOverrides {
  storageClass?: unknown;
  cacheControl?: unknown;
  objectLock?: unknown;
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

/** The Object Lock of valid config settings; undefined when they set none. */
export function objectLockOf(settings: ObjectLockSettings): ObjectLock | undefined {
  return lockOf(settings.objectLockMode, settings.objectLockRetention, settings.objectLockLegalHold);
}

function lockOf(mode: string, retention: string, legalHold: boolean): ObjectLock | undefined {
  if (!mode && !legalHold) return undefined;
  const lock: ObjectLock = {};
  if (mode) {
    lock.mode = mode as ObjectLock["mode"];
    lock.retainForMs = retentionMs(retention);
  }
  if (legalHold) lock.legalHold = true;
  return lock;
}

const MSG_LOCK_NAMES = { mode: "msg.objectLock.mode", retention: "msg.objectLock.retainFor", legalHold: "msg.objectLock.legalHold" };

/**
 * The Object Lock for one msg: msg.objectLock in place of the config's when set (`{}` or false:
 * none, the bucket's default retention applies), e.g. `{ mode: "COMPLIANCE", retainFor: "365d",
 * legalHold: true }`. Throws an InputError naming the msg property when it is invalid, or asks for
 * a lock while the sink sends no checksum.
 */
export function objectLockWithOverride(base: ObjectLock | undefined, value: unknown, checksum: ChecksumAlgorithm): ObjectLock | undefined {
  if (value === undefined || value === null) return base;
  if (value === false) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new InputError("msg.objectLock", `must be an object such as { mode: "COMPLIANCE", retainFor: "365d", legalHold: true }, not ${Array.isArray(value) ? "an array" : typeof value}`);
  }
  const { mode = "", retainFor = "", legalHold = false } = value as Record<string, unknown>;
  if (typeof mode !== "string") throw new InputError(MSG_LOCK_NAMES.mode, `must be a string, not ${typeof mode}`);
  if (typeof retainFor !== "string") throw new InputError(MSG_LOCK_NAMES.retention, `must be a string such as "365d", not ${typeof retainFor}`);
  if (typeof legalHold !== "boolean") throw new InputError(MSG_LOCK_NAMES.legalHold, `must be true or false, not ${typeof legalHold}`);
  const problem = objectLockProblem({ mode, retention: retainFor, legalHold }, checksum, MSG_LOCK_NAMES);
  if (problem) {
    const field = problem.startsWith("msg.") ? problem.split(" ")[0] : "msg.objectLock";
    const error = new InputError(field, problem);
    // The problem names its settings itself (a checksum one names both).
    error.message = problem;
    throw error;
  }
  return lockOf(mode, retainFor, legalHold);
}
