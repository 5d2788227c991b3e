// Object options: storage class, server-side encryption, Cache-Control and a default Content-Type,
// set on the config node and, for storage class and Cache-Control, per msg. The rules return
// problems as text (like rules.ts) so the config node and a msg error can both name the field.
import { InputError } from "./errors";

/** The storage classes S3 accepts in x-amz-storage-class (the SDK's StorageClass values). */
export const STORAGE_CLASSES = [
  "STANDARD",
  "STANDARD_IA",
  "ONEZONE_IA",
  "INTELLIGENT_TIERING",
  "GLACIER_IR",
  "GLACIER",
  "DEEP_ARCHIVE",
  "REDUCED_REDUNDANCY",
  "EXPRESS_ONEZONE",
  "OUTPOSTS",
  "SNOW",
  "FSX_OPENZFS",
  "FSX_ONTAP",
] as const;

/** Server-side encryption: "" leaves it to the bucket's default, AES256 is SSE-S3, aws:kms is SSE-KMS. */
export const SERVER_SIDE_ENCRYPTIONS = ["", "AES256", "aws:kms"] as const;

/** The object options of a config node, as stored in the flow ("" = not set). */
export interface ObjectSettings {
  storageClass: string;
  serverSideEncryption: string;
  kmsKeyId: string;
  cacheControl: string;
  contentType: string;
}

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

// RFC 9110 token and quoted-string; a Cache-Control directive is token ["=" (token / quoted-string)].
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[^"\\\\\\u0000-\\u001f\\u007f]|\\\\[\\u0020-\\u007e])*"';
const DIRECTIVE = `${TOKEN}(?:=(?:${TOKEN}|${QUOTED}))?`;
const CACHE_CONTROL = new RegExp(`^${DIRECTIVE}(?:[ \\t]*,[ \\t]*${DIRECTIVE})*$`);
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*$`);
// A key id, key ARN, alias name or alias ARN: printable ASCII without spaces.
const KMS_KEY_ID = /^[\x21-\x7e]{1,2048}$/;

/** Why `value` is not a storage class, or undefined when it is. */
export function storageClassProblem(value: string): string | undefined {
  if ((STORAGE_CLASSES as readonly string[]).includes(value)) return undefined;
  return `"${value}" is not an S3 storage class (${STORAGE_CLASSES.join(", ")})`;
}

/** Why `value` is not a Cache-Control header value, or undefined when it is. */
export function cacheControlProblem(value: string): string | undefined {
  if (CACHE_CONTROL.test(value)) return undefined;
  return `"${value}" is not a Cache-Control value (comma-separated directives such as "max-age=3600, public")`;
}

/** Why `value` is not a media type for Content-Type, or undefined when it is. */
export function contentTypeProblem(value: string): string | undefined {
  if (MEDIA_TYPE.test(value)) return undefined;
  return `"${value}" is not a media type (such as "application/json" or "text/csv; charset=utf-8")`;
}

/** What is wrong with a config node's object options, the field named first, or undefined. */
export function objectSettingsProblem(settings: ObjectSettings): string | undefined {
  const { storageClass, serverSideEncryption, kmsKeyId, cacheControl, contentType } = settings;
  if (storageClass && storageClassProblem(storageClass)) return `storageClass ${storageClassProblem(storageClass)}`;
  if (!(SERVER_SIDE_ENCRYPTIONS as readonly string[]).includes(serverSideEncryption)) {
    return `serverSideEncryption "${serverSideEncryption}" must be empty (bucket default), AES256 (SSE-S3) or aws:kms (SSE-KMS)`;
  }
  if (kmsKeyId && serverSideEncryption !== "aws:kms") return "kmsKeyId is only used with serverSideEncryption aws:kms (SSE-KMS)";
  if (kmsKeyId && !KMS_KEY_ID.test(kmsKeyId)) return "kmsKeyId must be a KMS key id, key ARN or alias, without spaces";
  if (cacheControl && cacheControlProblem(cacheControl)) return `cacheControl ${cacheControlProblem(cacheControl)}`;
  if (contentType && contentTypeProblem(contentType)) return `contentType ${contentTypeProblem(contentType)}`;
  return undefined;
}

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
