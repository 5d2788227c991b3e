/** S3 error codes worth another attempt besides every 5xx: throttling and damage in transit. */
const TRANSIENT_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "RequestTimeout",
  "RequestTimeoutException",
  "IncompleteBody",
  // A checksum that does not match the bytes S3 got (Content-MD5, x-amz-checksum-*, the signed SHA-256):
  // damaged on the way, never stored; the body is sent again.
  "BadDigest",
  "InvalidDigest",
  "XAmzContentSHA256Mismatch",
  "IncompleteMessage",
  // A conditional write raced another one for the same key: S3 asks to retry.
  "ConditionalRequestConflict",
  "InternalError",
  "ServiceUnavailable",
  // The clock: corrected from S3's Date header and sent again at once; if that was not enough, later.
  "RequestTimeTooSkewed",
  "RequestExpired",
  "RequestInTheFuture",
  // Redirects beyond the few followed at once: S3 sends 307 while a new bucket's name propagates.
  "TemporaryRedirect",
]);

/** A failed S3 request. `retryable` says whether the same request may succeed later. */
export class S3Error extends Error {
  override readonly name = "S3Error";
  constructor(
    readonly code: string,
    message: string,
    readonly statusCode: number | undefined,
    readonly retryable: boolean,
  ) {
    super(`${code}: ${message}`);
  }

  /** An error answer from S3 (status and parsed <Error> body). */
  static fromResponse(statusCode: number, code: string | undefined, message: string | undefined): S3Error {
    const errorCode = code || `HTTP${statusCode}`;
    const retryable = statusCode >= 500 || statusCode === 429 || TRANSIENT_CODES.has(errorCode);
    return new S3Error(errorCode, message || `S3 answered with HTTP status ${statusCode}`, statusCode, retryable);
  }

  /** A request that got no usable answer: reset, refused, timed out, or a response that is not HTTP. */
  static fromNetwork(error: Error & { code?: string }): S3Error {
    return new S3Error(error.code || error.name || "NetworkError", error.message, undefined, true);
  }
}
