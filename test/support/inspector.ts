import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { EgressFlow } from "./flow";
import { CREDENTIALS, LocalS3, ON_REAL_S3 } from "./s3";
import { errorXml, headerLists, verifySigV4 } from "./sigv4";

export interface RecordedRequest {
  method: string;
  /** Encoded path and query, as sent. */
  url: string;
  /** First value of each header, by lowercase name. */
  headers: Record<string, string>;
  /** The error code the inspector answered with, when it refused the request. */
  refused?: string;
}

/** An answer the inspector gives itself instead of forwarding: an S3 error when `code` is set, else an empty success. */
export interface StubAnswer {
  status: number;
  code?: string;
  message?: string;
}

/**
 * A loopback HTTP proxy in front of the S3 under test that records every request and verifies its
 * SigV4 signature as S3 does, answering S3's error for a bad one instead of forwarding it to s3rver
 * (a real server gets it, and answers itself). Without an upstream it answers writes itself, for
 * values s3rver refuses (such as newer storage classes).
 */
export class S3Inspector {
  readonly requests: RecordedRequest[] = [];
  /** Picks requests (verified ones) to answer without forwarding: to force failures, or to stand in for AbortMultipartUpload, which s3rver lacks. */
  stub: (request: RecordedRequest) => StubAnswer | undefined = () => undefined;

  private constructor(
    private readonly server: http.Server,
    readonly endpoint: string,
  ) {}

  static async start(upstream: string | undefined, secrets: Record<string, string>, region = "us-east-1"): Promise<S3Inspector> {
    const target = upstream ? new URL(upstream) : undefined;
    let inspector: S3Inspector | undefined;
    const server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const body = Buffer.concat(chunks);
        const url = request.url ?? "/";
        const headers = Object.fromEntries([...headerLists(request.rawHeaders)].map(([name, values]) => [name, values[0]]));
        const record: RecordedRequest = { method: request.method ?? "GET", url, headers };
        inspector!.requests.push(record);
        const verdict = verifySigV4({ method: record.method, url, rawHeaders: request.rawHeaders, body }, { secrets, region });
        if (!verdict.ok) record.refused = verdict.code;
        // A real server behind answers a bad signature itself, as the node meets it in production.
        if (!verdict.ok && !(target && ON_REAL_S3)) {
          response.writeHead(verdict.status, { "content-type": "application/xml" });
          response.end(errorXml(verdict.code, verdict.message));
          return;
        }
        const stubbed = inspector!.stub(record);
        if (stubbed) {
          response.writeHead(stubbed.status, { "content-type": "application/xml" });
          response.end(stubbed.code ? errorXml(stubbed.code, stubbed.message ?? "") : "");
          return;
        }
        if (!target) {
          answerWrite(record, body, response);
          return;
        }
        const forward = http.request(
          { hostname: target.hostname, port: target.port, method: record.method, path: url, headers: request.headers },
          (upstreamResponse) => {
            response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers);
            upstreamResponse.pipe(response);
          },
        );
        forward.on("error", (error) => {
          response.writeHead(502);
          response.end(String(error));
        });
        forward.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    inspector = new S3Inspector(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return inspector;
  }

  /** The recorded requests whose method and query match, e.g. ("POST", "uploads") for CreateMultipartUpload. */
  matching(method: string, queryName?: string): RecordedRequest[] {
    return this.requests.filter((request) => {
      if (request.method !== method) return false;
      const query = new URLSearchParams(request.url.split("?")[1] ?? "");
      return queryName === undefined ? !request.url.includes("?") : query.has(queryName);
    });
  }

  clear(): void {
    this.requests.length = 0;
    this.stub = () => undefined;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The upload id the recorder hands out: with the characters real S3 upload ids contain, and more. */
export const RECORDED_UPLOAD_ID = "2~Yk.rec-orded_upload=ID";
/** The version id of every object the recorder completes. */
export const RECORDED_VERSION_ID = "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY";

/** What S3 answers to a valid PutObject, UploadPart, Create/Complete/AbortMultipartUpload. */
function answerWrite(request: RecordedRequest, body: Buffer, response: http.ServerResponse): void {
  const etag = `"${createHash("md5").update(body).digest("hex")}"`;
  const query = new URLSearchParams(request.url.split("?")[1] ?? "");
  if (request.method === "PUT") {
    response.writeHead(200, { etag });
    response.end();
  } else if (request.method === "POST" && query.has("uploads")) {
    response.writeHead(200, { "content-type": "application/xml" });
    response.end(`<InitiateMultipartUploadResult><UploadId>${RECORDED_UPLOAD_ID}</UploadId></InitiateMultipartUploadResult>`);
  } else if (request.method === "POST" && query.has("uploadId")) {
    // As S3 writes it: the ETag's quotes as entities, the version in a header.
    response.writeHead(200, { "content-type": "application/xml", "x-amz-version-id": RECORDED_VERSION_ID });
    response.end(`<CompleteMultipartUploadResult><ETag>${etag.replace(/"/g, "&quot;")}</ETag></CompleteMultipartUploadResult>`);
  } else {
    response.writeHead(204);
    response.end();
  }
}

export interface InspectedS3 {
  s3: LocalS3;
  /** Verifies and records, then forwards to s3. */
  inspector: S3Inspector;
  /** Verifies, records and answers writes itself. */
  recorder: S3Inspector;
}

/** Registers mocha hooks for the S3 under test (see LocalS3) behind an inspector, plus a recorder; flows unloaded and all emptied after each test. */
export function inspectedS3(): InspectedS3 {
  const context = {} as InspectedS3;
  const secrets = { [CREDENTIALS.accessKeyId]: CREDENTIALS.secretAccessKey };
  before(async () => {
    context.s3 = await LocalS3.start();
    context.inspector = await S3Inspector.start(context.s3.endpoint, secrets);
    context.recorder = await S3Inspector.start(undefined, secrets);
  });
  after(async () => {
    await context.recorder.stop();
    await context.inspector.stop();
    await context.s3.stop();
  });
  afterEach(async () => {
    await EgressFlow.unload();
    await context.s3.clear();
    context.inspector.clear();
    context.recorder.clear();
  });
  return context;
}
