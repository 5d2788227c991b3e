import { createHash, createHmac } from "node:crypto";
import type { Credentials } from "./client";

/** What one request contributes to its signature. Header names lower case; values as sent. */
export interface SignableRequest {
  method: string;
  /** Encoded path, as on the request line. */
  path: string;
  /** Canonical query string (see canonicalQuery), also what goes on the request line. */
  query: string;
  headers: Record<string, string>;
  /** Hex SHA-256 of the body, also sent as x-amz-content-sha256. */
  payloadHash: string;
}

/**
 * AWS Signature Version 4 for S3 data requests, made for the hot path: the signing key is
 * derived once per day and credentials, the date header once per second, and a request costs
 * two SHA-256 passes over short strings. The SDK's signer derives a cache key with an extra HMAC,
 * copies the request and awaits each hash on every request.
 */
export class RequestSigner {
  private keyFor: { shortDate: string; secret: string; key: Buffer } | undefined;
  private dateSecond = -1;
  private amzDate = "";

  constructor(
    private readonly region: string,
    private readonly service = "s3",
  ) {}

  /** Adds x-amz-date (and x-amz-security-token) to `request.headers` and returns the Authorization value. */
  sign(request: SignableRequest, credentials: Credentials, now: number = Date.now()): string {
    const amzDate = this.dateOf(now);
    const shortDate = amzDate.slice(0, 8);
    const { headers } = request;
    headers["x-amz-date"] = amzDate;
    if (credentials.sessionToken) headers["x-amz-security-token"] = credentials.sessionToken;

    const names = Object.keys(headers).sort();
    let canonicalHeaders = "";
    for (const name of names) canonicalHeaders += `${name}:${canonicalValue(headers[name])}\n`;
    const signedHeaders = names.join(";");
    const canonicalRequest = `${request.method}\n${request.path}\n${request.query}\n${canonicalHeaders}\n${signedHeaders}\n${request.payloadHash}`;
    const scope = `${shortDate}/${this.region}/${this.service}/aws4_request`;
    const stringToSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${createHash("sha256").update(canonicalRequest).digest("hex")}`;
    const signature = createHmac("sha256", this.signingKey(shortDate, credentials.secretAccessKey)).update(stringToSign).digest("hex");
    return `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  }

  /** YYYYMMDD'T'HHMMSS'Z' of `now`, computed once per second. */
  private dateOf(now: number): string {
    const second = Math.floor(now / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.amzDate = new Date(second * 1000).toISOString().replace(/[-:]|\.\d{3}/g, "");
    }
    return this.amzDate;
  }

  private signingKey(shortDate: string, secret: string): Buffer {
    const cached = this.keyFor;
    if (cached && cached.shortDate === shortDate && cached.secret === secret) return cached.key;
    let key: Buffer = Buffer.from(`AWS4${secret}`, "utf8");
    for (const part of [shortDate, this.region, this.service, "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
    this.keyFor = { shortDate, secret, key };
    return key;
  }
}

/**
 * SigV4 canonical header value: spaces and tabs trimmed, runs of them made one space. Only those:
 * JavaScript's trim() and \s also take U+00A0 and other Unicode spaces, which SigV4 keeps as they are.
 */
function canonicalValue(value: string): string {
  // Most values have nothing to change: one test instead of two replacements per header and request.
  if (!SPACING_TO_CANONICALIZE.test(value)) return value;
  return value.replace(/^[ \t]+|[ \t]+$/g, "").replace(/[ \t]+/g, " ");
}

/** Leading or trailing spaces or tabs, a tab, or two spaces in a row: what canonicalValue changes. */
const SPACING_TO_CANONICALIZE = /^[ \t]|[ \t]$|\t| {2}/;

/** The canonical query string of SigV4, RFC 3986-encoded and sorted by name; usable as the request's query as it is. */
export function canonicalQuery(query: Record<string, string>): string {
  return Object.keys(query)
    .sort()
    .map((name) => `${uriEncode(name)}=${uriEncode(query[name])}`)
    .join("&");
}

/** RFC 3986 escaping as SigV4 wants it: encodeURIComponent plus !'()*. */
export function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
