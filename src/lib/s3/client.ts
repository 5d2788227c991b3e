import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { S3Client } from "@aws-sdk/client-s3";
import { S3Error } from "./errors";
import { agentFor } from "./proxy";
import { RequestSigner, canonicalQuery, uriEncode } from "./sigv4";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SinkSettings {
  bucket: string;
  region: string;
  /** An S3-compatible service; empty for AWS itself. */
  endpoint?: string;
  forcePathStyle: boolean;
  /** Static keys; undefined selects the AWS default credential chain. */
  credentials?: Credentials;
  /** How errors the user must act on name the config node, e.g. `config node "iot (eu-central-1)" (id 6f1d0c2a)`. */
  owner?: string;
  timing?: Partial<SinkTiming>;
  /** The checksum every PutObject and UploadPart carries (see resolveChecksum); default `auto`. */
  checksum?: ChecksumSetting;
}

/** How a write proves its bytes to S3 beyond the signature: `x-amz-checksum-sha256`, `Content-MD5`, or nothing more. */
export type ChecksumAlgorithm = "sha256" | "md5" | "none";
/** As the config node stores it: `auto` is sha256 for AWS itself and md5 for any other endpoint. */
export type ChecksumSetting = "auto" | ChecksumAlgorithm;

/** The checksum a sink sends: `auto` is sha256 for AWS (no endpoint), md5 for an S3-compatible store (which may not implement flexible checksums). */
export function resolveChecksum(setting: ChecksumSetting | undefined, endpoint: string | undefined): ChecksumAlgorithm {
  if (setting === "sha256" || setting === "md5" || setting === "none") return setting;
  return endpoint ? "md5" : "sha256";
}

/** Object Lock for one object: a retention mode with its period counted from the write, and a legal hold. */
export interface ObjectLock {
  mode?: "GOVERNANCE" | "COMPLIANCE";
  /** With `mode`: the object is retained until this long after the request. */
  retainForMs?: number;
  legalHold?: boolean;
}

export interface ObjectOptions {
  contentType: string;
  /** User metadata, names without the x-amz-meta- prefix, values already header-safe. */
  metadata: Record<string, string>;
  /** Further request headers: storage class, encryption, cache control, content encoding. */
  headers?: Record<string, string>;
  /** Object Lock headers, made at each request (the retention counts from the write). */
  objectLock?: ObjectLock;
}

/** A stored object's checksum by algorithm, base64: `{ sha256 }` or `{ md5 }`; a multipart upload's composite ends in `-<parts>`. */
export type StoredChecksum = { sha256: string } | { md5: string };

export interface WriteResult {
  /** As S3 returns it, quoted. */
  etag: string;
  versionId?: string;
  /** The checksum S3 answered (or, from a store that echoes none, the one it accepted); absent with checksum `none`. */
  checksum?: StoredChecksum;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
  /** The part's checksum as sent (base64), for CompleteMultipartUpload and the object's composite checksum. */
  checksum?: string;
}

interface Target {
  protocol: "http:" | "https:";
  hostname: string;
  port?: number;
  /** Host header value. */
  host: string;
  /** Encoded path up to the key, ending with "/". */
  basePath: string;
}

/** How long requests may take; the defaults suit S3 over any uplink, tests shorten them. */
export interface SinkTiming {
  /** Time without progress after which a request is given up (and retried by the writer). */
  idleMs: number;
  /** Every data request's overall deadline: this, plus the body's time at `slowBytesPerSecond`. */
  deadlineMs: number;
  slowBytesPerSecond: number;
  /** Overall deadline of CompleteMultipartUpload, which for a large object may take minutes. */
  completeDeadlineMs: number;
  /** While the default credential chain finds nothing, it is asked again at most this often. */
  credentialsRetryMs: number;
}

export const DEFAULT_TIMING: SinkTiming = {
  idleMs: 30_000,
  deadlineMs: 60_000,
  slowBytesPerSecond: 32 * 1024,
  completeDeadlineMs: 300_000,
  credentialsRetryMs: 10_000,
};

/** What the owner of a sink hears about: things to tell the user once, not per request. */
export interface SinkEvents {
  /** This machine's clock differs from S3's by `offsetMs` (positive: S3 is ahead); requests are now signed with S3's time. */
  onClockSkew?(offsetMs: number): void;
  /** The default credential chain found no credentials (reported once, until it finds some again). */
  onCredentialsMissing?(error: S3Error): void;
}

/** Of an error answer only this much is read: <Code> and <Message> come first; the rest goes with the connection. */
const MAX_ERROR_BODY_BYTES = 4096;
/** A multipart control call's XML answer is a few hundred bytes (plus the spaces S3 sends while completing); a longer one is no S3 answer. */
const MAX_ANSWER_BODY_BYTES = 1024 * 1024;
/** 307 Temporary Redirects followed per request (S3 sends them while a new bucket's DNS name propagates). */
const MAX_REDIRECTS = 3;
/** Answers saying the request time is too far from S3's. */
const CLOCK_SKEW_CODES = new Set(["RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"]);
/** Answers saying temporary credentials have expired. */
const EXPIRED_TOKEN_CODES = new Set(["ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"]);
/**
 * A keep-alive socket unused this long is closed, so the pool shrinks back to what the writes use
 * (S3 itself closes connections idle for about 20 s; a socket it closed first is never reused).
 */
const FREE_SOCKET_IDLE_MS = 15_000;
/** S3 allows 15 minutes; a smaller difference than this (Date headers have whole seconds) is no reason to move the signing clock. */
const CLOCK_RESOLUTION_MS = 10_000;

type CredentialChain = (options?: { forceRefresh?: boolean }) => Promise<Credentials>;

type SdkModule = typeof import("@aws-sdk/client-s3");
let sdkModule: SdkModule | undefined;

/**
 * The AWS SDK, loaded on first use: about 20 MiB of memory a Node-RED process with static keys
 * never needs (only the default credential chain uses it).
 */
function loadSdk(): SdkModule {
  return (sdkModule ??= require("@aws-sdk/client-s3") as SdkModule);
}

/** An answer: its status, headers and body (the first bytes of an error's; empty for a 2xx answer not asked to be read). */
interface Answer {
  statusCode: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The checksum the request carried (base64), when it carried one. */
  sentChecksum?: string;
}

/** A 2xx answer, or an error: not 2xx, or a 2xx whose body is an <Error> (CompleteMultipartUpload can fail after S3 answered 200). */
type Exchange = Answer | { error: Answer };

/** What a request needs beyond its method, key, query, headers and body. */
interface RequestOptions {
  /** Read the 2xx answer's XML body; data requests leave it unread, as they need only headers. */
  readsAnswer?: boolean;
  /** Overall deadline, instead of the data requests' (deadlineMs plus the body's time at slowBytesPerSecond). */
  deadlineMs?: number;
  /** Send the sink's checksum of the body (PutObject, UploadPart). */
  checksummed?: boolean;
}

/** PutObject's and UploadPart's options: shared, so the hot path allocates none. */
const DATA_REQUEST: RequestOptions = Object.freeze({ checksummed: true });
/** The control calls' default (AbortMultipartUpload): no checksum, the data requests' deadline. */
const CONTROL_REQUEST: RequestOptions = Object.freeze({});

const EMPTY_BODY = Buffer.alloc(0);

/**
 * One S3 connection for one config node. Every request (PutObject, UploadPart and the multipart
 * control calls: create, complete, abort) goes through a lean path: our own SigV4 signer (signing
 * key cached per day) over one keep-alive agent, which costs a fraction of the AWS SDK client's
 * middleware stack per request. The SDK is loaded only for the default credential chain, when
 * the config node has no keys. Each request is signed with the SHA-256 of its body, which S3
 * verifies in transit; PutObject and UploadPart also carry the sink's checksum, which S3 stores
 * (and buckets with Object Lock require): that same SHA-256 as x-amz-checksum-sha256, hashed
 * once for both, or Content-MD5. Requests honour
 * HTTPS_PROXY / HTTP_PROXY / NO_PROXY, follow 307 redirects, sign with S3's clock once a
 * RequestTimeTooSkewed answer told it, and have an overall deadline.
 */
export class S3Sink {
  readonly bucket: string;
  private readonly region: string;
  /** Names the config node in errors the user must act on. */
  private readonly owner: string;
  /** The SDK client, made on first use (see loadSdk) for its default credential chain. */
  private sdkClient: S3Client | undefined;
  private readonly signer: RequestSigner;
  /** Static keys, or the SDK's (memoised, refreshing) default credential chain. */
  private readonly credentials: Credentials | CredentialChain;
  /** While the default chain finds nothing: its error, until when it is not asked again, whether the user was told. */
  private credentialsMissing: { error: S3Error; until: number } | undefined;
  private credentialsMissingReported = false;
  private clockOffset = 0;
  private readonly target: Target;
  /** The endpoint's origin, for the socket pools' proxy choice. */
  private readonly origin: URL;
  private readonly agent: http.Agent;
  private readonly timing: SinkTiming;
  /** What PutObject and UploadPart carry beyond the signature's x-amz-content-sha256. */
  readonly checksum: ChecksumAlgorithm;

  constructor(
    settings: SinkSettings,
    private readonly events: SinkEvents = {},
  ) {
    this.bucket = settings.bucket;
    this.region = settings.region;
    this.owner = settings.owner ?? "the s3-egress-config node";
    this.timing = { ...DEFAULT_TIMING, ...settings.timing };
    this.checksum = resolveChecksum(settings.checksum, settings.endpoint);
    this.target = resolveTarget(settings);
    this.origin = new URL(`${this.target.protocol}//${this.target.host}/`);
    this.signer = new RequestSigner(settings.region);
    this.credentials = settings.credentials ?? ((options) => (this.sdk().config.credentials as CredentialChain)(options));
    // Last in, first out: the sockets a smaller load no longer needs stay idle and close.
    this.agent = agentFor(this.origin, {
      keepAlive: true,
      // Until setMaxSockets sizes it to the writes in flight.
      maxSockets: 16,
      scheduling: "lifo",
      timeout: FREE_SOCKET_IDLE_MS,
    });
  }

  /** Sizes the socket pool to the writes in flight of every node using this sink. */
  setMaxSockets(count: number): void {
    this.agent.maxSockets = Math.max(1, count);
  }

  /** How far S3's clock is ahead of this machine's (negative: behind), as last learnt; 0 until S3 complained. */
  get clockOffsetMs(): number {
    return this.clockOffset;
  }

  async putObject(key: string, body: Buffer, options: ObjectOptions): Promise<WriteResult> {
    const response = await this.send("PUT", key, {}, this.objectHeaders(options), body, DATA_REQUEST);
    const result: WriteResult = { etag: requireEtag(response.headers), versionId: headerText(response.headers["x-amz-version-id"]) };
    const checksum = this.storedChecksum(headerText(response.headers["x-amz-checksum-sha256"]), response.sentChecksum);
    if (checksum) result.checksum = checksum;
    return result;
  }

  /** One part: its ETag and the checksum it carried. */
  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<Omit<CompletedPart, "partNumber">> {
    const response = await this.send("PUT", key, { partNumber: String(partNumber), uploadId }, {}, body, DATA_REQUEST);
    const etag = requireEtag(response.headers);
    return response.sentChecksum === undefined ? { etag } : { etag, checksum: response.sentChecksum };
  }

  async createMultipartUpload(key: string, options: ObjectOptions): Promise<string> {
    const headers = this.objectHeaders(options);
    // S3 takes conditions on CompleteMultipartUpload, where the object comes into being, not here.
    delete headers["if-none-match"];
    // Parts may carry only the checksum their upload declared.
    if (this.checksum === "sha256") headers["x-amz-checksum-algorithm"] = "SHA256";
    const answer = await this.send("POST", key, { uploads: "" }, headers, EMPTY_BODY, { readsAnswer: true });
    const uploadId = xmlElement(answer.body, "UploadId");
    if (!uploadId) throw new S3Error("MalformedResponse", "CreateMultipartUpload returned no UploadId", answer.statusCode, true);
    return uploadId;
  }

  /** `ifNoneMatch`: S3 answers 412 instead of completing when the key holds an object already. */
  async completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[], ifNoneMatch = false): Promise<WriteResult> {
    const headers: Record<string, string> = { "content-type": "application/xml" };
    if (ifNoneMatch) headers["if-none-match"] = "*";
    const sha256 = this.checksum === "sha256";
    const answer = await this.send("POST", key, { uploadId }, headers, Buffer.from(completeMultipartXml(parts, sha256), "utf8"), {
      readsAnswer: true,
      deadlineMs: this.timing.completeDeadlineMs,
    });
    const result: WriteResult = { etag: xmlElement(answer.body, "ETag") ?? "", versionId: headerText(answer.headers["x-amz-version-id"]) };
    const checksum = this.storedChecksum(xmlElement(answer.body, "ChecksumSHA256"), compositeChecksum(this.checksum, parts));
    if (checksum) result.checksum = checksum;
    return result;
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    await this.send("DELETE", key, { uploadId }, {}, EMPTY_BODY);
  }

  destroy(): void {
    this.agent.destroy();
    this.sdkClient?.destroy();
  }

  /** The object headers of `options`, Object Lock's among them, its retention counted from now (S3's time). */
  private objectHeaders(options: ObjectOptions): Record<string, string> {
    const headers: Record<string, string> = { "content-type": options.contentType, ...options.headers };
    for (const [name, value] of Object.entries(options.metadata)) headers[`x-amz-meta-${name}`] = value;
    const lock = options.objectLock;
    if (!lock) return headers;
    if (lock.mode && lock.retainForMs) {
      headers["x-amz-object-lock-mode"] = lock.mode;
      headers["x-amz-object-lock-retain-until-date"] = new Date(Date.now() + this.clockOffset + lock.retainForMs).toISOString().replace(/\.\d{3}Z$/, "Z");
    }
    if (lock.legalHold) headers["x-amz-object-lock-legal-hold"] = "ON";
    return headers;
  }

  /** A write's checksum as `msg.s3` reports it: what S3 answered, else what it accepted (`sent`); none without one. */
  private storedChecksum(answered: string | undefined, sent: string | undefined): StoredChecksum | undefined {
    if (this.checksum === "sha256") return answered || sent ? { sha256: (answered || sent)! } : undefined;
    if (this.checksum === "md5" && sent) return { md5: sent };
    return undefined;
  }

  /** The SDK client, made on first use; only its default credential chain is used. */
  private sdk(): S3Client {
    this.sdkClient ??= new (loadSdk().S3Client)({ region: this.region });
    return this.sdkClient;
  }

  private async send(
    method: string,
    key: string,
    query: Record<string, string>,
    headers: Record<string, string>,
    body: Buffer,
    options: RequestOptions = CONTROL_REQUEST,
  ): Promise<Answer> {
    let target = this.target;
    let path = target.basePath + encodeKey(key);
    const search = canonicalQuery(query);
    // One SHA-256 of the body for the signature and, as x-amz-checksum-sha256, the stored checksum.
    const digest = createHash("sha256").update(body).digest();
    const payloadHash = digest.toString("hex");
    headers["content-length"] = String(body.length);
    headers["x-amz-content-sha256"] = payloadHash;
    const sentChecksum = options.checksummed ? this.addChecksum(headers, body, digest) : undefined;
    let redirects = 0;
    let skewCorrected = false;
    let refreshed = false;
    for (;;) {
      headers.host = target.host;
      // Sent again (redirect, clock, credentials): the previous signature is no header to sign.
      delete headers.authorization;
      const credentials = await this.currentCredentials();
      const signedWithOffset = this.clockOffset;
      headers.authorization = this.signer.sign({ method, path, query: search, headers, payloadHash }, credentials, Date.now() + signedWithOffset);
      const answer = await this.exchange(method, target, search ? `${path}?${search}` : path, headers, body, options);
      if (!("error" in answer)) {
        if (sentChecksum !== undefined) answer.sentChecksum = sentChecksum;
        return answer;
      }
      const { error } = answer;
      const failure = S3Error.fromResponse(error.statusCode, xmlElement(error.body, "Code"), xmlElement(error.body, "Message"));
      const location = headerText(error.headers.location);
      if (error.statusCode === 307 && location && redirects < MAX_REDIRECTS) {
        redirects++;
        ({ target, path } = redirectTarget(location, target));
        continue;
      }
      if (CLOCK_SKEW_CODES.has(failure.code) && !skewCorrected) {
        skewCorrected = true;
        const serverTime = Date.parse(headerText(error.headers.date) ?? "");
        const corrected = !Number.isNaN(serverTime) && this.adoptClockOffset(serverTime - Date.now());
        // Another request may have corrected the clock while this one was on its way.
        if (corrected || this.clockOffset !== signedWithOffset) continue;
      }
      if (EXPIRED_TOKEN_CODES.has(failure.code) && !refreshed && (await this.refreshCredentials())) {
        refreshed = true;
        continue;
      }
      throw this.explained(failure, error.headers, xmlElement(error.body, "Region") ?? xmlElement(error.body, "Endpoint"));
    }
  }

  /** Adds the sink's checksum of `body` to `headers` (exactly one: R2 refuses Content-MD5 beside another) and returns it, base64. */
  private addChecksum(headers: Record<string, string>, body: Buffer, sha256: Buffer): string | undefined {
    if (this.checksum === "sha256") return (headers["x-amz-checksum-sha256"] = sha256.toString("base64"));
    if (this.checksum === "md5") return (headers["content-md5"] = createHash("md5").update(body).digest("base64"));
    return undefined;
  }

  /** One request and its answer; only network failures (and a 2xx body too long to be S3's) reject. */
  private exchange(method: string, target: Target, path: string, headers: Record<string, string>, body: Buffer, options: RequestOptions): Promise<Exchange> {
    const deadlineMs = options.deadlineMs ?? this.timing.deadlineMs + Math.ceil((body.length / this.timing.slowBytesPerSecond) * 1000);
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (outcome: Exchange | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
      const request = (target.protocol === "https:" ? https : http).request(
        { method, hostname: target.hostname, port: target.port, path, headers, agent: target === this.target ? this.agent : agentFor(new URL(`${target.protocol}//${target.host}/`), {}) },
        (response) => {
          const statusCode = response.statusCode ?? 0;
          response.on("error", (error) => settle(S3Error.fromNetwork(error)));
          if (statusCode >= 200 && statusCode < 300) {
            if (options.readsAnswer) return readAnswer(response, settle);
            response.resume();
            response.on("end", () => settle({ statusCode, headers: response.headers, body: "" }));
            return;
          }
          // An error body is read up to a few KiB; an endless one is cut off with its connection.
          readBody(response, MAX_ERROR_BODY_BYTES, (text) => settle({ error: { statusCode, headers: response.headers, body: text } }));
        },
      );
      const deadline = setTimeout(() => {
        settle(S3Error.fromNetwork(timeoutError(`no complete answer within the request deadline of ${Math.round(deadlineMs / 1000)} s`)));
        request.destroy();
      }, deadlineMs);
      request.setTimeout(this.timing.idleMs, () => {
        request.destroy(timeoutError(`no progress for ${this.timing.idleMs} ms`));
      });
      request.on("error", (error) => settle(S3Error.fromNetwork(error)));
      request.end(body);
    });
  }

  /** Static keys, or what the default chain finds; while it finds nothing, the same error without asking again for a while. */
  private async currentCredentials(): Promise<Credentials> {
    if (typeof this.credentials !== "function") return this.credentials;
    const missing = this.credentialsMissing;
    if (missing && Date.now() < missing.until) throw missing.error;
    try {
      const found = await this.credentials();
      this.credentialsMissing = undefined;
      this.credentialsMissingReported = false;
      return found;
    } catch (error) {
      const failure = new S3Error(
        "CredentialsProviderError",
        `no AWS credentials for ${this.owner}: its Access Key and Secret Access Key are empty and the AWS default credential chain ` +
          `(environment, shared config files, container or instance role) found none (${(error as Error).message}). ` +
          `Open ${this.owner} and fill in the keys (and the endpoint of an S3-compatible store); asked again every ${Math.round(this.timing.credentialsRetryMs / 1000)} s`,
        undefined,
        true,
      );
      this.credentialsMissing = { error: failure, until: Date.now() + this.timing.credentialsRetryMs };
      if (!this.credentialsMissingReported) {
        this.credentialsMissingReported = true;
        this.events.onCredentialsMissing?.(failure);
      }
      throw failure;
    }
  }

  /** Makes the default chain fetch new credentials; false for static keys, which cannot be refreshed. */
  private async refreshCredentials(): Promise<boolean> {
    if (typeof this.credentials !== "function") return false;
    try {
      await this.credentials({ forceRefresh: true });
      return true;
    } catch {
      // Nothing new to try now; the write is retried later, when the chain may have renewed them.
      return false;
    }
  }

  /** Signs with S3's time from now on; true when that moved the signing clock. */
  private adoptClockOffset(offsetMs: number): boolean {
    if (Math.abs(offsetMs - this.clockOffset) < CLOCK_RESOLUTION_MS) return false;
    this.clockOffset = offsetMs;
    this.events.onClockSkew?.(offsetMs);
    return true;
  }

  /** The error with what the user can do about it: the bucket's real region, expired static credentials, a clock S3 refuses. */
  private explained(failure: S3Error, headers: http.IncomingHttpHeaders, regionOrEndpoint?: string): S3Error {
    const bucketRegion = headerText(headers["x-amz-bucket-region"]);
    const plain = failure.message.slice(failure.code.length + 2);
    const explain = (hint: string, retryable = failure.retryable) =>
      new S3Error(failure.code, `${plain.replace(/\.?$/, ".")} ${hint}`, failure.statusCode, retryable);
    if (bucketRegion && bucketRegion !== this.region) {
      return explain(`The bucket "${this.bucket}" is in region ${bucketRegion}, not ${this.region}: set the region of ${this.owner} to ${bucketRegion}`, false);
    }
    if (failure.code === "PermanentRedirect" || failure.statusCode === 301) {
      return explain(`S3 says to use ${regionOrEndpoint ?? "another endpoint"} for the bucket "${this.bucket}": check the region and endpoint of ${this.owner}`, false);
    }
    if (EXPIRED_TOKEN_CODES.has(failure.code)) {
      if (typeof this.credentials === "function") return explain("The default credential chain has no newer credentials yet", true);
      return explain(`The session token of ${this.owner} has expired: enter new temporary credentials, or leave the keys empty to use the default credential chain, which renews them`, false);
    }
    if (CLOCK_SKEW_CODES.has(failure.code)) return explain(`The clock of this machine differs from S3's${this.clockOffset ? ` by ${describeOffset(this.clockOffset)}` : ""}`);
    return failure;
  }
}

/** "20 minutes", "1 minute", "45 seconds": how far two clocks are apart. */
export function describeOffset(offsetMs: number): string {
  const seconds = Math.round(Math.abs(offsetMs) / 1000);
  if (seconds < 90) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.round(seconds / 60);
  return `${minutes} minutes`;
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { code: "TimeoutError" });
}

/** Where a 307 sends the request: another host (same scheme), the key's path as S3 names it there. */
function redirectTarget(location: string, from: Target): { target: Target; path: string } {
  const url = new URL(location, `${from.protocol}//${from.host}/`);
  if (url.protocol !== from.protocol) {
    throw new S3Error("TemporaryRedirect", `S3 redirected to ${url.origin}, another scheme than the endpoint's; set the endpoint to it`, 307, false);
  }
  const path = url.pathname.split("/").map((segment) => uriEncode(decodeURIComponent(segment))).join("/");
  return {
    target: { protocol: from.protocol, hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: url.port ? Number(url.port) : undefined, host: url.host, basePath: from.basePath },
    path,
  };
}

/** Where requests go: the AWS regional endpoint, or the configured one; virtual-hosted or path style. */
export function resolveTarget(settings: SinkSettings): Target {
  const endpoint = new URL(settings.endpoint || awsEndpoint(settings.region));
  const protocol = endpoint.protocol === "http:" ? "http:" : "https:";
  const endpointPath = endpoint.pathname.replace(/\/+$/, "");
  // Dotted bucket names break TLS certificates of virtual-hosted names, so AWS falls back to path style.
  const pathStyle = settings.forcePathStyle || (protocol === "https:" && settings.bucket.includes("."));
  const hostname = pathStyle ? endpoint.hostname : `${settings.bucket}.${endpoint.hostname}`;
  return {
    protocol,
    hostname: hostname.replace(/^\[(.*)\]$/, "$1"),
    port: endpoint.port ? Number(endpoint.port) : undefined,
    host: endpoint.port ? `${hostname}:${endpoint.port}` : hostname,
    basePath: pathStyle ? `${endpointPath}/${encodeURIComponent(settings.bucket)}/` : `${endpointPath}/`,
  };
}

function awsEndpoint(region: string): string {
  return `https://s3.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`;
}

/** The key as S3 wants it in a SigV4 canonical URI: RFC 3986 escaping, "/" kept. */
export function encodeKey(key: string): string {
  // Most keys need no escaping: one test instead of encoding and two replacements per request.
  if (KEY_WITHOUT_ESCAPES.test(key)) return key;
  return uriEncode(key).replace(/%2F/g, "/");
}

/** A key of RFC 3986 unreserved characters and "/" only, which its canonical URI keeps as they are. */
const KEY_WITHOUT_ESCAPES = /^[A-Za-z0-9\-._~/]*$/;

/** The CompleteMultipartUpload request body: each part's number and ETag (and, `sha256`, its checksum, which S3 then requires), in the order given. */
function completeMultipartXml(parts: CompletedPart[], sha256: boolean): string {
  let xml = '<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">';
  for (const part of parts) {
    const checksum = sha256 && part.checksum ? `<ChecksumSHA256>${part.checksum}</ChecksumSHA256>` : "";
    xml += `<Part><PartNumber>${part.partNumber}</PartNumber><ETag>${escapeXml(part.etag)}</ETag>${checksum}</Part>`;
  }
  return `${xml}</CompleteMultipartUpload>`;
}

/**
 * A multipart object's checksum as S3 composes it: the digest of the parts' digests, in part order,
 * base64, then "-" and the number of parts (for MD5 that is the multipart ETag's value, base64).
 * Undefined when a part carried none.
 */
export function compositeChecksum(algorithm: ChecksumAlgorithm, parts: CompletedPart[]): string | undefined {
  if (algorithm === "none" || parts.length === 0 || parts.some((part) => !part.checksum)) return undefined;
  const hash = createHash(algorithm);
  for (const part of parts) hash.update(Buffer.from(part.checksum!, "base64"));
  return `${hash.digest("base64")}-${parts.length}`;
}

function requireEtag(headers: http.IncomingHttpHeaders): string {
  const etag = headerText(headers.etag);
  if (!etag) throw new S3Error("MalformedResponse", "S3 answered without an ETag", 200, true);
  return etag;
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Reads a 2xx answer's body, up to MAX_ANSWER_BODY_BYTES. S3 may answer CompleteMultipartUpload
 * with 200 and send an <Error> document later (it sends spaces while it works): that is an error
 * answer like any other.
 */
function readAnswer(response: http.IncomingMessage, settle: (outcome: Exchange | Error) => void): void {
  const statusCode = response.statusCode ?? 0;
  readBody(response, MAX_ANSWER_BODY_BYTES, (text, cutOff) => {
    if (cutOff) {
      settle(new S3Error("MalformedResponse", `S3 answered with more than ${MAX_ANSWER_BODY_BYTES} bytes where an XML document of a few hundred was due`, statusCode, true));
      return;
    }
    const answer = { statusCode, headers: response.headers, body: text };
    settle(/<Error>/.test(text) ? { error: answer } : answer);
  });
}

/**
 * Reads `response`'s body as text: `done(text, false)` at its end, or, once it grows past
 * `limit` bytes, `done` with its first `limit` bytes and `cutOff` true, the connection cut off.
 */
function readBody(response: http.IncomingMessage, limit: number, done: (text: string, cutOff: boolean) => void): void {
  const chunks: Buffer[] = [];
  let length = 0;
  response.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    length += chunk.length;
    if (length <= limit) return;
    done(Buffer.concat(chunks).toString("utf8", 0, limit), true);
    response.destroy();
  });
  response.on("end", () => done(Buffer.concat(chunks).toString("utf8"), false));
}

/** The text of the first element `name` in `xml`, its entities decoded. */
function xmlElement(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  return match ? unescapeXml(match[1]) : undefined;
}

const XML_ENTITIES: Record<string, string> = { quot: '"', amp: "&", lt: "<", gt: ">", apos: "'" };

/** Decodes XML's five named entities and numeric character references (S3 writes an ETag's quotes as &quot;). */
function unescapeXml(text: string): string {
  return text.replace(/&(?:(quot|amp|lt|gt|apos)|#(\d+)|#x([0-9a-fA-F]+));/g, (entity, name: string | undefined, decimal: string | undefined, hex: string | undefined) => {
    if (name) return XML_ENTITIES[name];
    const codePoint = decimal ? Number(decimal) : Number.parseInt(hex!, 16);
    return codePoint <= 0x10ffff ? String.fromCodePoint(codePoint) : entity;
  });
}

const XML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;" };

/** Text fit for an XML element: &, < and > escaped. */
function escapeXml(text: string): string {
  return text.replace(/[&<>]/g, (character) => XML_ESCAPES[character]);
}
