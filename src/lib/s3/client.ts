import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { S3Error, fromSdkError } from "./errors";
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
}

export interface ObjectOptions {
  contentType: string;
  /** User metadata, names without the x-amz-meta- prefix, values already header-safe. */
  metadata: Record<string, string>;
  /** Further request headers: storage class, encryption, cache control, content encoding. */
  headers?: Record<string, string>;
}

export interface WriteResult {
  /** As S3 returns it, quoted. */
  etag: string;
  versionId?: string;
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
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

/** Idle time after which a request without progress is given up (and retried by the writer). */
const SOCKET_TIMEOUT_MS = 30_000;

/**
 * One S3 connection for one config node. PutObject and UploadPart, which carry the data,
 * go through a lean path: our own SigV4 signer (signing key cached per day) over a keep-alive
 * agent, which costs a fraction of the SDK client's middleware stack per request. The rare
 * multipart control calls (create, complete, abort) go through the SDK client, which also
 * supplies the default credential chain. Each data request is signed with the SHA-256 of its
 * body, which S3 verifies, so no other checksum is sent and S3-compatible stores need none.
 */
export class S3Sink {
  readonly bucket: string;
  private readonly sdk: S3Client;
  private readonly signer: RequestSigner;
  /** Static keys, or the SDK's (memoised, refreshing) default credential chain. */
  private readonly credentials: Credentials | (() => Promise<Credentials>);
  private readonly target: Target;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;

  constructor(settings: SinkSettings) {
    this.bucket = settings.bucket;
    this.sdk = new S3Client({
      region: settings.region,
      endpoint: settings.endpoint || undefined,
      forcePathStyle: settings.forcePathStyle,
      credentials: settings.credentials,
      // The writer retries; the SDK must not multiply its attempts.
      maxAttempts: 1,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    this.signer = new RequestSigner(settings.region);
    this.credentials = settings.credentials ?? this.sdk.config.credentials;
    this.target = resolveTarget(settings);
    this.transport = this.target.protocol === "https:" ? https : http;
    const AgentClass = this.target.protocol === "https:" ? https.Agent : http.Agent;
    this.agent = new AgentClass({ keepAlive: true, maxSockets: 16, scheduling: "lifo" });
  }

  /** Sizes the socket pool to the writes in flight of every node using this sink. */
  setMaxSockets(count: number): void {
    this.agent.maxSockets = Math.max(1, count);
  }

  async putObject(key: string, body: Buffer, options: ObjectOptions): Promise<WriteResult> {
    const response = await this.send("PUT", key, {}, objectHeaders(options), body);
    return { etag: requireEtag(response.headers), versionId: headerText(response.headers["x-amz-version-id"]) };
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, body: Buffer): Promise<string> {
    const response = await this.send("PUT", key, { partNumber: String(partNumber), uploadId }, {}, body);
    return requireEtag(response.headers);
  }

  async createMultipartUpload(key: string, options: ObjectOptions): Promise<string> {
    const output = await this.callSdk((sdk) =>
      sdk.send(
        new CreateMultipartUploadCommand({
        Bucket: this.bucket,
        Key: key,
        ContentType: options.contentType,
        Metadata: options.metadata,
          ...sdkObjectOptions(options.headers ?? {}),
        }),
      ),
    );
    if (!output.UploadId) throw new S3Error("MalformedResponse", "CreateMultipartUpload returned no UploadId", 200, true);
    return output.UploadId;
  }

  /** `ifNoneMatch`: S3 answers 412 instead of completing when the key holds an object already. */
  async completeMultipartUpload(key: string, uploadId: string, parts: CompletedPart[], ifNoneMatch = false): Promise<WriteResult> {
    const output = await this.callSdk((sdk) =>
      sdk.send(
        new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag })) },
          IfNoneMatch: ifNoneMatch ? "*" : undefined,
        }),
      ),
    );
    return { etag: output.ETag ?? "", versionId: output.VersionId };
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    await this.callSdk((sdk) => sdk.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId })));
  }

  destroy(): void {
    this.agent.destroy();
    this.sdk.destroy();
  }

  /** Runs one SDK call, its failures turned into S3Errors. */
  private async callSdk<Output>(call: (sdk: S3Client) => Promise<Output>): Promise<Output> {
    try {
      return await call(this.sdk);
    } catch (error) {
      throw fromSdkError(error);
    }
  }

  private async send(
    method: string,
    key: string,
    query: Record<string, string>,
    headers: Record<string, string>,
    body: Buffer,
  ): Promise<{ statusCode: number; headers: http.IncomingHttpHeaders }> {
    const { target } = this;
    const path = target.basePath + encodeKey(key);
    const search = canonicalQuery(query);
    const payloadHash = createHash("sha256").update(body).digest("hex");
    headers.host = target.host;
    headers["content-length"] = String(body.length);
    headers["x-amz-content-sha256"] = payloadHash;
    try {
      const credentials = typeof this.credentials === "function" ? await this.credentials() : this.credentials;
      headers.authorization = this.signer.sign({ method, path, query: search, headers, payloadHash }, credentials);
    } catch (error) {
      throw fromSdkError(error);
    }
    return new Promise((resolve, reject) => {
      const request = this.transport.request(
        {
          method,
          hostname: target.hostname,
          port: target.port,
          path: search ? `${path}?${search}` : path,
          headers,
          agent: this.agent,
        },
        (response) => {
          const statusCode = response.statusCode ?? 0;
          if (statusCode >= 200 && statusCode < 300) {
            response.resume();
            response.on("end", () => resolve({ statusCode, headers: response.headers }));
            response.on("error", (error) => reject(S3Error.fromNetwork(error)));
            return;
          }
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", (error) => reject(S3Error.fromNetwork(error)));
          response.on("end", () => {
            const xml = Buffer.concat(chunks).toString("utf8");
            reject(S3Error.fromResponse(statusCode, xmlElement(xml, "Code"), xmlElement(xml, "Message")));
          });
        },
      );
      request.setTimeout(SOCKET_TIMEOUT_MS, () => {
        request.destroy(Object.assign(new Error(`no progress for ${SOCKET_TIMEOUT_MS} ms`), { code: "TimeoutError" }));
      });
      request.on("error", (error) => reject(S3Error.fromNetwork(error)));
      request.end(body);
    });
  }
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
  return uriEncode(key).replace(/%2F/g, "/");
}

function objectHeaders(options: ObjectOptions): Record<string, string> {
  const headers: Record<string, string> = { "content-type": options.contentType, ...options.headers };
  for (const [name, value] of Object.entries(options.metadata)) headers[`x-amz-meta-${name}`] = value;
  return headers;
}

/** The SDK command fields for the extra object headers a multipart upload carries from the start. */
function sdkObjectOptions(headers: Record<string, string>) {
  return {
    CacheControl: headers["cache-control"],
    ContentEncoding: headers["content-encoding"],
    StorageClass: headers["x-amz-storage-class"] as never,
    ServerSideEncryption: headers["x-amz-server-side-encryption"] as never,
    SSEKMSKeyId: headers["x-amz-server-side-encryption-aws-kms-key-id"],
  };
}

function requireEtag(headers: http.IncomingHttpHeaders): string {
  const etag = headerText(headers.etag);
  if (!etag) throw new S3Error("MalformedResponse", "S3 answered without an ETag", 200, true);
  return etag;
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function xmlElement(xml: string, name: string): string | undefined {
  const match = new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml);
  return match?.[1];
}
