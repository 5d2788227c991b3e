// Validation rules shared by the runtime and the editor. This file must stay free of
// imports and Node.js APIs: the editor loads its compiled form as a plain script.

/** The least Batch memory (MiB): one part of a multipart upload must fit. */
export const MIN_BATCH_MEMORY_MB = 8;

/** The S3 limit on an object key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;
/** The S3 limit on user-defined metadata: names and values, in UTF-8 bytes. */
export const MAX_METADATA_BYTES = 2048;

const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
// A UTF-16 surrogate without its partner: no character at all, so it has no UTF-8 form for a key.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
// Beyond ASCII in an HTTP header value: Node.js sends such characters as Latin-1 bytes while SigV4
// hashes them as UTF-8, so S3 would refuse the signature (control characters fail the grammar checks).
const NOT_ASCII = /[\u007f-\u{10ffff}]/u;
const GUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const IP_ADDRESS = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Bytes of `text` in UTF-8 (a lone surrogate as U+FFFD, as TextEncoder does), counted without encoding it: this runs for every key and metadata value. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && index + 1 < text.length && (text.charCodeAt(index + 1) & 0xfc00) === 0xdc00) {
      // A surrogate pair: two UTF-16 units, four bytes.
      bytes += 2;
      index++;
    } else bytes += 2;
  }
  return bytes;
}

/** Why `segment` cannot be one segment of an object key, or undefined when it can. */
export function segmentProblem(segment: string): string | undefined {
  if (segment === "") return "is empty";
  if (segment === "." || segment === "..") return `may not be "${segment}"`;
  if (segment.includes("/")) return 'may not contain "/"';
  if (CONTROL_CHARACTERS.test(segment)) return "may not contain control characters";
  const surrogate = LONE_SURROGATE.exec(segment);
  if (surrogate) return `contains a lone UTF-16 surrogate (${codePoint(surrogate[0])}), which is not text: check how the value was cut or decoded`;
  return undefined;
}

/** "U+00A0": how a character is named in errors, so invisible ones can be found. */
function codePoint(character: string): string {
  return `U+${(character.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Why `value` cannot be sent as an HTTP header value as it is, or undefined when it can. */
function headerTextProblem(value: string): string | undefined {
  const outside = NOT_ASCII.exec(value);
  if (!outside) return undefined;
  return `may contain only printable ASCII characters, not ${codePoint(outside[0])} at position ${outside.index + 1}`;
}

/** Why `path` cannot be a key prefix, or undefined when it can. Empty segments are dropped, not refused. */
export function pathProblem(path: string): string | undefined {
  for (const segment of path.split("/")) {
    if (segment === "") continue;
    const problem = segmentProblem(segment);
    if (problem) return `segment "${segment}" ${problem}`;
  }
  return undefined;
}

/** The key prefix without leading, trailing or repeated "/". */
export function normalisePath(path: string): string {
  return path.split("/").filter((segment) => segment !== "").join("/");
}

/** The GUID in its canonical form (lowercase, 8-4-4-4-12), or undefined when `text` is not a GUID. */
export function canonicalGuid(text: string): string | undefined {
  const bare = text.trim().replace(/^\{(.*)\}$/, "$1");
  if (!GUID.test(bare)) return undefined;
  const hex = bare.replace(/-/g, "").toLowerCase();
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
}

/** Why `name` is not a valid S3 bucket name (general purpose bucket rules), or undefined. */
export function bucketProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return "must be 3 to 63 characters long";
  if (!/^[a-z0-9.-]+$/.test(name)) return "may contain only lowercase letters, digits, dots and hyphens";
  if (!/^[a-z0-9].*[a-z0-9]$/.test(name)) return "must begin and end with a letter or digit";
  if (name.includes("..")) return "may not contain two adjacent dots";
  if (name.includes(".-") || name.includes("-.")) return "may not contain a dot next to a hyphen";
  if (IP_ADDRESS.test(name)) return "may not be formatted as an IP address";
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) return "may not start with a reserved prefix";
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name)) return "may not end with a reserved suffix";
  return undefined;
}

/** Why `region` is not a usable region name, or undefined. S3-compatible stores use names such as "auto". */
export function regionProblem(region: string): string | undefined {
  if (region === "") return "is required";
  if (!/^[a-z0-9]+(-[a-z0-9]+)*$/.test(region)) return "may contain only lowercase letters, digits and single hyphens";
  return undefined;
}

/** Why `endpoint` is not a usable endpoint URL, or undefined. An empty endpoint means AWS itself. */
export function endpointProblem(endpoint: string): string | undefined {
  if (endpoint === "") return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return "is not a URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "must start with http:// or https://";
  if (url.search || url.hash) return "may not have a query or fragment";
  if (url.username || url.password) return "may not contain credentials";
  return undefined;
}

/**
 * The path of an endpoint URL without trailing "/" ("/s3" for http://minio.local:9000/s3/), or ""
 * when it has none or is no URL. Requests go below it (<path>/<bucket>/<key> path-style), for a
 * store served under a path; it is not a key prefix.
 */
export function endpointPath(endpoint: string): string {
  try {
    return new URL(endpoint).pathname.replace(/\/+$/, "");
  } catch {
    return "";
  }
}

// Object options of the config node (object-options.ts turns them into request headers).

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

// RFC 9110 token and quoted-string; a Cache-Control directive is token ["=" (token / quoted-string)].
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[^"\\\\\\u0000-\\u001f\\u007f]|\\\\[\\u0020-\\u007e])*"';
const DIRECTIVE = `${TOKEN}(?:=(?:${TOKEN}|${QUOTED}))?`;
const CACHE_CONTROL = new RegExp(`^${DIRECTIVE}(?:[ \\t]*,[ \\t]*${DIRECTIVE})*$`);
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*$`);
// A key id, key ARN, alias name or alias ARN: printable ASCII without spaces.
const KMS_KEY_ID = /^[\x21-\x7e]{1,2048}$/;

/** Why `value` is not a storage class, or undefined when it is one or empty (the bucket's default). */
export function storageClassProblem(value: string): string | undefined {
  if (value === "" || (STORAGE_CLASSES as readonly string[]).includes(value)) return undefined;
  return `"${value}" is not an S3 storage class (${STORAGE_CLASSES.join(", ")})`;
}

/** Why `value` is not a Cache-Control header value, or undefined when it is one or empty (none sent). */
export function cacheControlProblem(value: string): string | undefined {
  const text = headerTextProblem(value);
  if (text) return `"${value}" ${text}`;
  if (value === "" || CACHE_CONTROL.test(value)) return undefined;
  return `"${value}" is not a Cache-Control value (comma-separated directives such as "max-age=3600, public")`;
}

/** Why `value` is not a media type for Content-Type, or undefined when it is one or empty (derived from the payload). */
export function contentTypeProblem(value: string): string | undefined {
  const text = headerTextProblem(value);
  if (text) return `"${value}" ${text}`;
  if (value === "" || MEDIA_TYPE.test(value)) return undefined;
  return `"${value}" is not a media type (such as "application/json" or "text/csv; charset=utf-8")`;
}

/** Why `value` is not a KMS key id, key ARN or alias, or undefined when it is one or empty (the AWS managed key). */
export function kmsKeyIdProblem(value: string): string | undefined {
  if (value === "" || KMS_KEY_ID.test(value)) return undefined;
  return "must be a KMS key id, key ARN or alias, without spaces";
}

/** What is wrong with a config node's object options, the field named first, or undefined. */
export function objectSettingsProblem(settings: ObjectSettings): string | undefined {
  const { storageClass, serverSideEncryption, kmsKeyId, cacheControl, contentType } = settings;
  const problem = (field: string, text: string | undefined) => text && `${field} ${text}`;
  if (!(SERVER_SIDE_ENCRYPTIONS as readonly string[]).includes(serverSideEncryption)) {
    return `serverSideEncryption "${serverSideEncryption}" must be empty (bucket default), AES256 (SSE-S3) or aws:kms (SSE-KMS)`;
  }
  if (kmsKeyId && serverSideEncryption !== "aws:kms") return "kmsKeyId is only used with serverSideEncryption aws:kms (SSE-KMS)";
  return (
    problem("storageClass", storageClassProblem(storageClass)) ??
    problem("kmsKeyId", kmsKeyIdProblem(kmsKeyId)) ??
    problem("cacheControl", cacheControlProblem(cacheControl)) ??
    problem("contentType", contentTypeProblem(contentType))
  );
}

// Integrity and Object Lock (config node and msg.objectLock; the S3 client sends them).

/** The checksum setting: `auto` is sha256 for AWS itself (no endpoint) and md5 (Content-MD5) for any other endpoint. */
export const CHECKSUMS = ["auto", "sha256", "md5", "none"] as const;

/** The Object Lock retention modes S3 takes in x-amz-object-lock-mode; "" sends none (the bucket's default retention applies). */
export const OBJECT_LOCK_MODES = ["", "GOVERNANCE", "COMPLIANCE"] as const;

/** A retention period: a whole number of hours, days or years (a year is 365 days, as S3's default retention counts). */
const RETENTION = /^([1-9]\d{0,5})\s*([hdy])$/;
const RETENTION_UNIT_MS: Record<string, number> = { h: 3_600_000, d: 86_400_000, y: 365 * 86_400_000 };
/** The longest retention taken: 100 years. */
const MAX_RETENTION_MS = 100 * 365 * 86_400_000;

/** The Object Lock of a config node, as stored in the flow ("" and false = not set). */
export interface ObjectLockSettings {
  checksum: string;
  objectLockMode: string;
  /** How long from each write the object is retained, e.g. "365d". */
  objectLockRetention: string;
  objectLockLegalHold: boolean;
}

/** A retention period in ms ("365d", "12h", "7y"), or undefined when `text` is none. */
export function retentionMs(text: string): number | undefined {
  const match = RETENTION.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * RETENTION_UNIT_MS[match[2]];
  return ms <= MAX_RETENTION_MS ? ms : undefined;
}

/** Why `text` is not a retention period, or undefined when it is one. */
export function retentionProblem(text: string): string | undefined {
  if (retentionMs(text) !== undefined) return undefined;
  return `"${text}" is not a retention period: a whole number with h (hours), d (days) or y (years of 365 days), e.g. "365d", at most 100 years`;
}

/** Why `value` is not a checksum setting, or undefined. */
export function checksumProblem(value: string): string | undefined {
  if ((CHECKSUMS as readonly string[]).includes(value)) return undefined;
  return `"${value}" must be one of ${CHECKSUMS.join(", ")}`;
}

/** Why `mode` is not an Object Lock mode, or undefined ("" is none). */
export function objectLockModeProblem(mode: string): string | undefined {
  if ((OBJECT_LOCK_MODES as readonly string[]).includes(mode)) return undefined;
  return `"${mode}" must be GOVERNANCE or COMPLIANCE (or empty for none)`;
}

/**
 * What is wrong with an Object Lock and the checksum it needs, the settings named, or undefined.
 * `names` says how the settings are called where they come from (the config node's properties, or msg.objectLock's).
 */
export function objectLockProblem(
  lock: { mode: string; retention: string; legalHold: boolean },
  checksum: string,
  names = { mode: "objectLockMode", retention: "objectLockRetention", legalHold: "objectLockLegalHold" },
): string | undefined {
  const modeProblem = objectLockModeProblem(lock.mode);
  if (modeProblem) return `${names.mode} ${modeProblem}`;
  if (lock.mode && !lock.retention) return `${names.retention} is required with ${names.mode} ${lock.mode}: how long from each write the object is retained, e.g. "365d"`;
  if (lock.retention && !lock.mode) return `${names.retention} needs ${names.mode} GOVERNANCE or COMPLIANCE`;
  if (lock.retention) {
    const problem = retentionProblem(lock.retention);
    if (problem) return `${names.retention} ${problem}`;
  }
  if (checksum === "none" && (lock.mode || lock.legalHold)) {
    return `checksum "none" cannot be used with Object Lock (${lock.mode ? `${names.mode} ${lock.mode}` : `${names.legalHold}`}): S3 refuses writes with Object Lock that carry no checksum; set checksum to auto, sha256 or md5`;
  }
  return undefined;
}

/** What is wrong with a config node's checksum and Object Lock settings, the field named first, or undefined. */
export function integritySettingsProblem(settings: ObjectLockSettings): string | undefined {
  const problem = checksumProblem(settings.checksum);
  if (problem) return `checksum ${problem}`;
  return objectLockProblem({ mode: settings.objectLockMode, retention: settings.objectLockRetention, legalHold: settings.objectLockLegalHold }, settings.checksum);
}

// Enumerated properties of the s3-egress node (issue 25): a value the node does not know (a typo, or a
// value of a newer version in a flow loaded by an older one) is refused, never read as some default.

/** The sources a key field's TypedInput may have (`<field>Type`). */
export const FIELD_TYPES = ["msg", "flow", "global", "str", "env", "jsonata"] as const;

/** The values each enumerated property of the s3-egress node may have, its default first. */
export const EGRESS_CHOICES: Readonly<Record<string, readonly string[]>> = {
  input: ["messages", "batches"],
  batchIdAutofill: ["none", "utc-date"],
  messageIdAutofill: ["none", "auto"],
  spool: ["false", "true"],
  queueFull: ["spool", "reject"],
  neverOverwrite: ["false", "true"],
  concatenation: ["plain", "none", "newline", "parquet"],
  compression: ["none", "gzip"],
  parquetCodec: ["snappy", "gzip", "none"],
  openBatchesFull: ["complete-oldest", "reject"],
};

/** The most writes in flight a fixed concurrency may ask for. */
export const MAX_CONCURRENCY = 1024;

/** Whether a saved property counts as absent: it then stands for its default. */
export function absent(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

/**
 * Why `value` is not one of the values `property` may have (`choices`), naming both, or undefined.
 * Absent (undefined, null or "") is the default.
 */
export function choiceProblem(property: string, value: unknown, choices: readonly string[]): string | undefined {
  if (absent(value) || choices.includes(String(value))) return undefined;
  return `${property} ${JSON.stringify(value)} is not a value this version knows (${choices.join(", ")})`;
}

/** The value of an enumerated s3-egress property: its default when absent; throws (naming both) when unknown. */
export function choiceOf(property: string, value: unknown): string {
  const choices = EGRESS_CHOICES[property];
  const problem = choiceProblem(property, value, choices);
  if (problem) throw new Error(problem);
  return absent(value) ? choices[0] : String(value);
}

/** Why `value` is not a concurrency ("auto", or a whole number from 1 to MAX_CONCURRENCY), or undefined; absent is "auto". */
export function concurrencyProblem(value: unknown): string | undefined {
  if (absent(value) || value === "auto") return undefined;
  const number = Number(value);
  if (/^\d+$/.test(String(value)) && number >= 1 && number <= MAX_CONCURRENCY) return undefined;
  return `concurrency ${JSON.stringify(value)} is not auto or a whole number from 1 to ${MAX_CONCURRENCY}`;
}

/**
 * What is wrong with the enumerated properties of an s3-egress node as saved (`fields`: the key
 * fields, each with its `<field>Type`), the first property named with its value, or undefined.
 */
export function egressChoicesProblem(def: Record<string, unknown>, fields: readonly string[]): string | undefined {
  for (const property of Object.keys(EGRESS_CHOICES)) {
    const problem = choiceProblem(property, def[property], EGRESS_CHOICES[property]);
    if (problem) return problem;
  }
  for (const field of fields) {
    const problem = choiceProblem(`${field}Type`, def[`${field}Type`], FIELD_TYPES);
    if (problem) return problem;
  }
  return concurrencyProblem(def.concurrency);
}

// The Parquet schema a user may give an s3-egress node (concatenation parquet): a JSON object of
// field name -> type, the type ending in "?" when the field is optional; it also fixes the column order.

/** The types a given Parquet schema may name (objects and arrays are JSON text). */
export const PARQUET_TYPES = ["boolean", "int64", "double", "string", "json"] as const;
/** Columns every Parquet row has, written by the node itself. */
export const PARQUET_OWN_COLUMNS = ["_arrival", "_msgid"] as const;

/** Why `text` is not a Parquet schema, naming the property and the field, or undefined; empty means inferred. */
export function parquetSchemaProblem(text: unknown): string | undefined {
  if (text === undefined || text === null || (typeof text === "string" && text.trim() === "")) return undefined;
  let schema: unknown;
  try {
    schema = JSON.parse(String(text));
  } catch (error) {
    return `parquetSchema is not JSON: ${(error as Error).message}`;
  }
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) return 'parquetSchema must be a JSON object of field name -> type, e.g. {"temperature": "double", "note": "string?"}';
  const fields = Object.entries(schema);
  if (fields.length === 0) return "parquetSchema names no field (leave it empty for a schema inferred from the payloads)";
  for (const [name, type] of fields) {
    if (name === "") return "parquetSchema has a field with an empty name";
    if ((PARQUET_OWN_COLUMNS as readonly string[]).includes(name)) return `parquetSchema field ${name} is a column the node writes itself`;
    const base = typeof type === "string" ? type.replace(/\?$/, "") : undefined;
    if (!base || !(PARQUET_TYPES as readonly string[]).includes(base)) {
      return `parquetSchema field ${name} has type ${JSON.stringify(type)}, not one of ${PARQUET_TYPES.join(", ")} (with "?" when optional)`;
    }
  }
  return undefined;
}
