// An independent AWS Signature Version 4 verifier for S3 header-based authentication, written from
// the AWS documentation ("Authenticating Requests: Using the Authorization Header", single chunk):
// canonical request -> string to sign -> signing key -> signature. It checks what S3 checks, so
// tests against s3rver (which verifies nothing) catch a wrong signature as real S3 would.
import { createHash, createHmac } from "node:crypto";

export interface SignedRequest {
  method: string;
  /** The request target as sent: encoded path and query. */
  url: string;
  /** Header names and values as sent (Node's rawHeaders: name, value, name, value, …). */
  rawHeaders: string[];
  body: Buffer;
}

export interface VerifyOptions {
  /** The secret of each access key id known to the server. */
  secrets: Record<string, string>;
  region: string;
  /** Defaults to the current time; requests more than 15 minutes off are refused. */
  now?: Date;
}

export type Verdict = { ok: true; accessKeyId: string } | { ok: false; status: number; code: string; message: string };

const ALGORITHM = "AWS4-HMAC-SHA256";
const SKEW_MS = 15 * 60 * 1000;

export function verifySigV4(request: SignedRequest, options: VerifyOptions): Verdict {
  const headers = headerLists(request.rawHeaders);
  const authorization = single(headers, "authorization");
  if (!authorization) return refuse(403, "AccessDenied", "Access Denied");
  const parsed = parseAuthorization(authorization);
  if (!parsed) return refuse(400, "AuthorizationHeaderMalformed", "The authorization header is malformed");
  const { accessKeyId, date, region, service, signedHeaders, signature } = parsed;

  const secret = options.secrets[accessKeyId];
  if (secret === undefined) return refuse(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.");
  if (region !== options.region || service !== "s3") {
    return refuse(400, "AuthorizationHeaderMalformed", `the region '${region}' is wrong; expecting '${options.region}'`);
  }

  const amzDate = single(headers, "x-amz-date");
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate)) return refuse(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header");
  if (amzDate.slice(0, 8) !== date) return refuse(403, "SignatureDoesNotMatch", "credential scope date differs from x-amz-date");
  const requestTime = Date.parse(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13)}`);
  if (Math.abs((options.now ?? new Date()).getTime() - requestTime) > SKEW_MS) {
    return refuse(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.");
  }

  // S3 requires host, Content-Type and Content-MD5 when present, and every x-amz-* header to be signed.
  if (!signedHeaders.includes("host")) return refuse(403, "AccessDenied", "host must be a signed header");
  const unsigned = [...headers.keys()].filter(
    (name) => (name.startsWith("x-amz-") || name === "content-type" || name === "content-md5") && !signedHeaders.includes(name),
  );
  if (unsigned.length > 0) return refuse(403, "AccessDenied", `There were headers present in the request which were not signed: ${unsigned.join(", ")}`);

  const payloadHash = single(headers, "x-amz-content-sha256");
  if (!payloadHash) return refuse(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256");
  if (payloadHash !== "UNSIGNED-PAYLOAD" && payloadHash !== sha256Hex(request.body)) {
    return refuse(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
  }

  const canonicalRequest = buildCanonicalRequest(request.method, request.url, headers, signedHeaders, payloadHash);
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(Buffer.from(canonicalRequest, "utf8"))].join("\n");
  const signingKey = [date, region, service, "aws4_request"].reduce<Buffer>((key, part) => hmac(key, part), Buffer.from(`AWS4${secret}`, "utf8"));
  const expected = hmac(signingKey, stringToSign).toString("hex");
  if (expected !== signature) {
    return refuse(403, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.");
  }
  return { ok: true, accessKeyId };
}

/**
 * The canonical request: method, canonical URI, canonical query string, canonical headers,
 * signed headers, hashed payload. S3 takes the URI from the decoded object key, each byte outside
 * the unreserved set percent-encoded once ("/" kept).
 */
export function buildCanonicalRequest(
  method: string,
  url: string,
  headers: Map<string, string[]>,
  signedHeaders: string[],
  payloadHash: string,
): string {
  const queryStart = url.indexOf("?");
  const rawPath = queryStart === -1 ? url : url.slice(0, queryStart);
  const rawQuery = queryStart === -1 ? "" : url.slice(queryStart + 1);
  const canonicalUri = rawPath.split("/").map((segment) => uriEncode(decodeURIComponent(segment))).join("/") || "/";
  const canonicalQuery = rawQuery
    .split("&")
    .filter((pair) => pair !== "")
    .map((pair) => {
      const equals = pair.indexOf("=");
      const name = equals === -1 ? pair : pair.slice(0, equals);
      const value = equals === -1 ? "" : pair.slice(equals + 1);
      return [uriEncode(decodeURIComponent(name)), uriEncode(decodeURIComponent(value))] as const;
    })
    .sort(([nameA, valueA], [nameB, valueB]) => compare(nameA, nameB) || compare(valueA, valueB))
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${(headers.get(name) ?? []).map(trimValue).join(",")}\n`).join("");
  return [method, canonicalUri, canonicalQuery, canonicalHeaders, signedHeaders.join(";"), payloadHash].join("\n");
}

/** UriEncode() of the AWS documentation: every byte except A-Z a-z 0-9 - . _ ~ as %XY, uppercase hex. */
export function uriEncode(text: string): string {
  let encoded = "";
  for (const byte of Buffer.from(text, "utf8")) {
    const char = String.fromCharCode(byte);
    encoded += /[A-Za-z0-9\-._~]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}

/** Header values by lowercase name, in the order received. */
export function headerLists(rawHeaders: string[]): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const name = rawHeaders[index].toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), rawHeaders[index + 1]]);
  }
  return headers;
}

function parseAuthorization(value: string) {
  const match = /^AWS4-HMAC-SHA256 Credential=([^,]+),\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$/.exec(value.trim());
  if (!match) return undefined;
  const credential = match[1].split("/");
  if (credential.length !== 5 || credential[4] !== "aws4_request") return undefined;
  const signedHeaders = match[2].split(";");
  const sorted = [...signedHeaders].sort(compare);
  if (signedHeaders.some((name, index) => name !== name.toLowerCase() || name !== sorted[index])) return undefined;
  const [accessKeyId, date, region, service] = credential;
  return { accessKeyId, date, region, service, signedHeaders, signature: match[3] };
}

function single(headers: Map<string, string[]>, name: string): string | undefined {
  return headers.get(name)?.[0];
}

/** Leading and trailing spaces removed, runs of spaces inside made one. */
function trimValue(value: string): string {
  return value.trim().replace(/ +/g, " ");
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sha256Hex(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

function refuse(status: number, code: string, message: string): Verdict {
  return { ok: false, status, code, message };
}

/** The XML error body S3 answers with. */
export function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}
