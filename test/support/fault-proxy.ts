import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** What the proxy does with a request a rule matches. */
export type FaultAction =
  /** Answer with an S3 error document (and extra headers), without forwarding. */
  | { kind: "error"; status: number; code: string; headers?: Record<string, string> }
  /** Answer 200, send spaces as S3 does while it completes an upload, then an S3 error document; without forwarding. */
  | { kind: "error-after-200"; code: string }
  /** Answer 500 with an error document that never ends (until the client hangs up), without forwarding. */
  | { kind: "endless-error" }
  /** Answer a redirect to the same path on another origin, without forwarding. */
  | { kind: "redirect"; status: number; origin: string }
  /** Behave as an S3 whose clock is `offsetMs` ahead: refuse requests signed more than 15 minutes off it, forward the others. */
  | { kind: "skewed-clock"; offsetMs: number }
  /** Destroy the connection after the first bytes of the body, without forwarding. */
  | { kind: "reset-before" }
  /** Forward (the object is written), then destroy the connection instead of answering. */
  | { kind: "reset-after" }
  /** Forward after a delay. */
  | { kind: "latency"; ms: number }
  /** Answer with bytes that are not HTTP. */
  | { kind: "garbage" }
  /** Answer 200 without an ETag, without forwarding. */
  | { kind: "no-etag" }
  /** Answer 204 without forwarding: stands in for AbortMultipartUpload, which s3rver lacks. */
  | { kind: "no-content" }
  /** Damage the body on its way (one byte flipped), then treat it as any other request: with `integrity` on, its checksum no longer matches. */
  | { kind: "corrupt" };

/** The S3 operation a request is, by its method and query. */
export type Operation = "PutObject" | "UploadPart" | "CreateMultipartUpload" | "CompleteMultipartUpload" | "AbortMultipartUpload" | "other";

function operationOf(method: string, query: URLSearchParams): Operation {
  if (method === "PUT") return query.has("partNumber") ? "UploadPart" : "PutObject";
  if (method === "POST" && query.has("uploads")) return "CreateMultipartUpload";
  if (method === "POST" && query.has("uploadId")) return "CompleteMultipartUpload";
  if (method === "DELETE" && query.has("uploadId")) return "AbortMultipartUpload";
  return "other";
}

export interface FaultRule {
  action: FaultAction;
  /** Only requests of this operation. */
  operation?: Operation;
  /** Only requests for keys starting with this (the key, without bucket). */
  keyPrefix?: string;
  /** Only the nth matching requests, counted from 1: e.g. every other one. */
  every?: number;
  /** How many requests the rule applies to; unlimited when absent. */
  times?: number;
  /** Only requests whose headers pass this test. */
  when?: (headers: http.IncomingHttpHeaders) => boolean;
}

export interface SeenRequest {
  method: string;
  operation: Operation;
  key: string;
  headers: http.IncomingHttpHeaders;
  /** What the proxy did: "forwarded", an action kind, or "conditional-412". */
  outcome: string;
}

/** How far a request's x-amz-date may be from S3's clock. */
const SKEW_LIMIT_MS = 15 * 60 * 1000;

/** An x-amz-date (20130524T000000Z) in ms since the epoch; NaN when absent or malformed. */
function amzDateMs(value: string | string[] | undefined): number {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(String(value));
  return match ? Date.UTC(+match[1], +match[2] - 1, +match[3], +match[4], +match[5], +match[6]) : Number.NaN;
}

function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, "");
}

/** Requests the proxy serves before it refuses everything, so a runaway loop ends by itself. */
const MAX_REQUESTS = 50_000;
/** Lifetime after which the proxy closes itself, whatever the test does. */
const MAX_LIFETIME_MS = 180_000;

/**
 * An HTTP proxy on a free loopback port in front of s3rver, with scriptable faults. It also
 * emulates `If-None-Match: *` on PutObject and CompleteMultipartUpload (s3rver ignores it) when
 * `conditionalWrites` is on, by asking s3rver whether the key exists first (one conditional write
 * per key at a time, so two writers racing for a key get one 200 and one 412, as from S3).
 */
export class FaultProxy {
  readonly seen: SeenRequest[] = [];
  conditionalWrites = false;
  /**
   * Emulates AWS's checksums, which s3rver ignores: Content-MD5, x-amz-checksum-sha256 and
   * x-amz-content-sha256 checked against the body (BadDigest, InvalidDigest,
   * XAmzContentSHA256Mismatch), x-amz-checksum-sha256 echoed, an upload's declared algorithm
   * (x-amz-checksum-algorithm) required of its parts and its Complete's per-part
   * <ChecksumSHA256>, and the composite checksum answered.
   */
  integrity = false;
  /** A bucket with Object Lock (and a default retention): PutObject and UploadPart without Content-MD5 or x-amz-checksum-* are refused, as AWS does. */
  objectLock = false;
  /** The checksum algorithm each multipart upload declared, and its parts' SHA-256 checksums (base64). */
  private readonly uploads = new Map<string, { algorithm?: string; parts: Map<number, string> }>();
  /** When on, the SHA-256 of every PutObject body s3rver accepted, by key, in order: what each key held over time. */
  recordWrites = false;
  readonly writes = new Map<string, string[]>();
  /** Most connections open at once, to check the socket pool bound. */
  peakConnections = 0;
  /** Bytes of each endless error body the proxy got out before the client hung up. */
  readonly endlessBytes: number[] = [];
  private rules: (FaultRule & { matched: number; applied: number })[] = [];
  private readonly sockets = new Set<Socket>();
  /** The last conditional write of each key still under way: the next one waits for it. */
  private readonly conditionalTails = new Map<string, Promise<void>>();
  private readonly lifetime: NodeJS.Timeout;
  /** Its own keep-alive pool to s3rver, closed with the proxy so s3rver can stop at once. */
  private readonly upstreamAgent = new http.Agent({ keepAlive: true });
  private port = 0;

  private constructor(
    private readonly server: http.Server,
    private readonly upstream: URL,
    lifetimeMs: number,
  ) {
    server.on("request", (request, response) => this.handle(request, response));
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      this.peakConnections = Math.max(this.peakConnections, this.sockets.size);
      socket.on("close", () => this.sockets.delete(socket));
    });
    this.lifetime = setTimeout(() => void this.stop(), lifetimeMs);
    this.lifetime.unref();
  }

  /** `lifetimeMs`: when the proxy closes itself (default 3 minutes). */
  static async start(upstream: string, lifetimeMs = MAX_LIFETIME_MS): Promise<FaultProxy> {
    const proxy = new FaultProxy(http.createServer({ keepAliveTimeout: 5_000 }), new URL(upstream), lifetimeMs);
    await proxy.listen(0);
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Replaces the fault script; rules are tried in order, the first that applies wins. */
  script(rules: FaultRule[]): void {
    this.rules = rules.map((rule) => ({ ...rule, matched: 0, applied: 0 }));
  }

  /** Clears the script, the log of requests and the emulation. */
  reset(): void {
    this.rules = [];
    this.seen.length = 0;
    this.conditionalWrites = false;
    this.integrity = false;
    this.objectLock = false;
    this.uploads.clear();
    this.recordWrites = false;
    this.writes.clear();
    this.peakConnections = this.sockets.size;
  }

  /** Requests seen for keys starting with `prefix`. */
  requestsFor(prefix: string): SeenRequest[] {
    return this.seen.filter((request) => request.key.startsWith(prefix));
  }

  /** Goes down (connections refused, open ones cut) for `ms`, then comes back on the same port. */
  async outage(ms: number): Promise<void> {
    await this.close();
    await new Promise((resolve) => setTimeout(resolve, ms));
    await this.listen(this.port);
  }

  async stop(): Promise<void> {
    clearTimeout(this.lifetime);
    if (this.server.listening) await this.close();
    this.upstreamAgent.destroy();
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve) =>
      this.server.listen(port, "127.0.0.1", () => {
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      }),
    );
  }

  private close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    return closed;
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const url = new URL(request.url ?? "/", "http://proxy");
    const key = decodeURIComponent(url.pathname.split("/").slice(2).join("/"));
    const method = request.method ?? "";
    const operation = operationOf(method, url.searchParams);
    const record = (outcome: string) => this.seen.push({ method, operation, key, headers: request.headers, outcome });
    if (this.seen.length >= MAX_REQUESTS) {
      record("refused");
      response.writeHead(503).end();
      return;
    }
    const action = this.pick(key, operation, request.headers);
    switch (action?.kind) {
      case "error":
        record(`${action.status} ${action.code}`);
        request.resume();
        request.on("end", () => {
          response.writeHead(action.status, { "content-type": "application/xml", ...action.headers });
          response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${action.code}</Code><Message>injected by the fault proxy</Message></Error>`);
        });
        return;
      case "error-after-200":
        record(`200 then ${action.code}`);
        request.resume();
        request.on("end", () => {
          response.writeHead(200, { "content-type": "application/xml" });
          response.write(" ".repeat(64));
          response.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${action.code}</Code><Message>injected by the fault proxy after 200</Message></Error>`);
        });
        return;
      case "endless-error":
        record("endless-error");
        request.resume();
        request.on("end", () => this.answerEndlessly(response));
        return;
      case "redirect":
        record(`${action.status} redirect`);
        request.resume();
        request.on("end", () => response.writeHead(action.status, { location: action.origin + (request.url ?? "/"), "content-length": "0" }).end());
        return;
      case "skewed-clock": {
        const serverNow = Date.now() + action.offsetMs;
        const signedAt = amzDateMs(request.headers["x-amz-date"]);
        if (Math.abs(signedAt - serverNow) <= SKEW_LIMIT_MS) {
          // s3rver checks the time against the real clock (and no signature): tell it the time in its terms.
          request.headers["x-amz-date"] = amzDate(signedAt - action.offsetMs);
          break;
        }
        record("403 RequestTimeTooSkewed");
        request.resume();
        request.on("end", () => {
          response.writeHead(403, { "content-type": "application/xml", date: new Date(serverNow).toUTCString() });
          response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message></Error>`);
        });
        return;
      }
      case "reset-before":
        record("reset-before");
        request.once("data", () => request.socket.destroy());
        request.once("end", () => request.socket.destroy());
        return;
      case "garbage":
        record("garbage");
        request.resume();
        request.on("end", () => request.socket.end("NOT HTTP AT ALL\r\n\r\n"));
        return;
      case "no-etag":
        record("no-etag");
        request.resume();
        request.on("end", () => response.writeHead(200, { "content-length": "0" }).end());
        return;
      case "latency":
        record(`latency ${action.ms}`);
        setTimeout(() => this.forward(request, response, url, { key, operation }), action.ms);
        return;
      case "reset-after":
        record("reset-after");
        this.forward(request, response, url, { key, operation, cutAnswer: true });
        return;
      case "no-content":
        record("no-content");
        request.resume();
        request.on("end", () => response.writeHead(204).end());
        return;
      case "corrupt":
        void readAll(request).then((body) => {
          if (body.length > 0) body[body.length >> 1] ^= 0xff;
          this.checkIntegrity({ request, response, url, key, operation, record: (outcome) => record(`corrupt, ${outcome}`) }, body);
        });
        return;
    }
    if ((this.integrity || this.objectLock) && operation !== "other" && operation !== "AbortMultipartUpload") {
      void readAll(request).then((body) => this.checkIntegrity({ request, response, url, key, operation, record }, body));
      return;
    }
    this.forwardConditionally({ request, response, url, key, operation, record });
  }

  /** AWS's checks of a write's checksums (see `integrity`, `objectLock`); a request that passes is forwarded with `body`, its answer amended as AWS's. */
  private checkIntegrity(arrival: Arrival, body: Buffer): void {
    const { request, response, url, operation, record } = arrival;
    const refuse = (status: number, code: string, message: string) => {
      record(`${status} ${code}`);
      response.writeHead(status, { "content-type": "application/xml" });
      response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`);
    };
    const headers = request.headers;
    const md5 = headerValue(headers["content-md5"]);
    const sha256 = headerValue(headers["x-amz-checksum-sha256"]);
    const data = operation === "PutObject" || operation === "UploadPart";
    const uploadId = url.searchParams.get("uploadId") ?? "";
    if (data && this.objectLock && md5 === undefined && !Object.keys(headers).some((name) => name.startsWith("x-amz-checksum-"))) {
      const what = operation === "PutObject" ? "Put Object" : "Put Part";
      return refuse(400, "InvalidRequest", `Content-MD5 OR x-amz-checksum- HTTP header is required for ${what} requests with Object Lock parameters`);
    }
    if (this.integrity) {
      if (md5 !== undefined) {
        if (Buffer.from(md5, "base64").length !== 16) return refuse(400, "InvalidDigest", "The Content-MD5 you specified was invalid.");
        if (createHash("md5").update(body).digest("base64") !== md5) return refuse(400, "BadDigest", "The Content-MD5 you specified did not match what we received.");
      }
      if (sha256 !== undefined && createHash("sha256").update(body).digest("base64") !== sha256) {
        return refuse(400, "BadDigest", "The SHA256 you specified did not match the calculated checksum.");
      }
      const signed = headerValue(headers["x-amz-content-sha256"]);
      if (signed && /^[0-9a-f]{64}$/.test(signed) && createHash("sha256").update(body).digest("hex") !== signed) {
        return refuse(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.");
      }
    }
    let amend: ((answer: Buffer) => Buffer) | undefined;
    let echo: Record<string, string> = {};
    if (this.integrity && operation === "UploadPart") {
      const upload = this.uploads.get(uploadId);
      const declared = upload?.algorithm;
      if (sha256 !== undefined && declared !== "SHA256") {
        return refuse(400, "InvalidRequest", `Checksum Type mismatch occurred, expected checksum Type: ${declared?.toLowerCase() ?? "null"}, actual checksum Type: sha256`);
      }
      if (declared === "SHA256" && sha256 === undefined) return refuse(400, "InvalidRequest", "The upload was created using a sha256 checksum. The part must carry x-amz-checksum-sha256.");
      if (upload && sha256 !== undefined) upload.parts.set(Number(url.searchParams.get("partNumber")), sha256);
    }
    if (this.integrity && sha256 !== undefined && data) echo = { "x-amz-checksum-sha256": sha256 };
    if (this.integrity && operation === "CreateMultipartUpload") {
      const algorithm = headerValue(headers["x-amz-checksum-algorithm"])?.toUpperCase();
      amend = (answer) => {
        const id = /<UploadId>([^<]*)<\/UploadId>/.exec(answer.toString("utf8"))?.[1];
        if (id) this.uploads.set(id, { algorithm, parts: new Map() });
        return answer;
      };
    }
    if (this.integrity && operation === "CompleteMultipartUpload") {
      const upload = this.uploads.get(uploadId);
      const text = body.toString("utf8");
      const parts = [...text.matchAll(/<Part>(.*?)<\/Part>/g)].map(([, part]) => ({
        number: Number(/<PartNumber>(\d+)<\/PartNumber>/.exec(part)?.[1]),
        sha256: /<ChecksumSHA256>([^<]*)<\/ChecksumSHA256>/.exec(part)?.[1],
      }));
      if (upload?.algorithm === "SHA256") {
        for (const part of parts) {
          if (part.sha256 === undefined) {
            return refuse(400, "InvalidRequest", `The upload was created using a sha256 checksum. The complete request must include the checksum for each part. It was missing for part ${part.number} in the request.`);
          }
          if (part.sha256 !== upload.parts.get(part.number)) return refuse(400, "InvalidPart", "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified checksum may not match the part's checksum.");
        }
        const composite = createHash("sha256");
        for (const part of parts) composite.update(Buffer.from(part.sha256!, "base64"));
        const checksum = `${composite.digest("base64")}-${parts.length}`;
        amend = (answer) => Buffer.from(answer.toString("utf8").replace(/(<\/ETag>)/, `$1<ChecksumSHA256>${checksum}</ChecksumSHA256><ChecksumType>COMPOSITE</ChecksumType>`));
      } else if (parts.some((part) => part.sha256 !== undefined)) {
        return refuse(400, "InvalidRequest", "The upload was not created with a checksum algorithm: its Complete may not carry part checksums.");
      }
      // s3rver reads only part numbers and ETags.
      body = Buffer.from(text.replace(/<ChecksumSHA256>[^<]*<\/ChecksumSHA256>/g, ""));
    }
    this.forwardConditionally(arrival, { body, echo, amend });
  }

  /** 500 and an error document whose padding goes on while the client reads, counting what got out. */
  private answerEndlessly(response: http.ServerResponse): void {
    let sent = 0;
    const padding = Buffer.alloc(64 * 1024, " ");
    response.writeHead(500, { "content-type": "application/xml" });
    response.write(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>endless</Message>`);
    const pump = () => {
      while (!response.destroyed && response.write(padding)) sent += padding.length;
    };
    response.on("drain", () => {
      sent += padding.length;
      pump();
    });
    response.on("close", () => this.endlessBytes.push(sent));
    pump();
  }

  private pick(key: string, operation: Operation, headers: http.IncomingHttpHeaders): FaultAction | undefined {
    for (const rule of this.rules) {
      if (rule.keyPrefix !== undefined && !key.startsWith(rule.keyPrefix)) continue;
      if (rule.operation !== undefined && rule.operation !== operation) continue;
      if (rule.when && !rule.when(headers)) continue;
      if (rule.times !== undefined && rule.applied >= rule.times) continue;
      rule.matched++;
      if (rule.every !== undefined && rule.matched % rule.every !== 0) continue;
      rule.applied++;
      return rule.action;
    }
    return undefined;
  }

  private forwardConditionally(arrival: Arrival, buffered?: Buffered): void {
    const { request, response, url, key, operation, record } = arrival;
    const conditional = operation === "PutObject" || operation === "CompleteMultipartUpload";
    if (!(this.conditionalWrites && conditional && request.headers["if-none-match"] === "*")) {
      record("forwarded");
      this.forward(request, response, url, { key, operation, buffered });
      return;
    }
    if (!buffered) request.pause();
    // One conditional write per key at a time: this one starts when the previous one has its answer.
    const previous = this.conditionalTails.get(key) ?? Promise.resolve();
    let settle!: () => void;
    const tail = previous.then(() => new Promise<void>((resolve) => (settle = resolve)));
    this.conditionalTails.set(key, tail);
    void tail.then(() => {
      if (this.conditionalTails.get(key) === tail) this.conditionalTails.delete(key);
    });
    response.once("close", () => settle());
    void previous.then(() => {
      // The object itself, not the upload the query names.
      const head = http.request({ ...this.target(url), path: url.pathname, method: "HEAD", headers: { host: request.headers.host } }, (answer) => {
        answer.resume();
        if (answer.statusCode === 200) {
          record("conditional-412");
          const refuse = () => {
            response.writeHead(412, { "content-type": "application/xml" });
            response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Key>${key}</Key></Error>`);
          };
          if (buffered) return refuse();
          request.resume();
          request.on("end", refuse);
        } else {
          record("forwarded");
          this.forward(request, response, url, { key, operation, buffered });
        }
      });
      head.on("error", () => request.socket.destroy());
      head.end();
    });
  }

  private target(url: URL): http.RequestOptions {
    return { hostname: this.upstream.hostname, port: this.upstream.port, path: url.pathname + url.search, agent: this.upstreamAgent };
  }

  /**
   * Passes the request (or its body read already, `buffered`) to s3rver and its answer back, or
   * cuts the connection once s3rver answered (`cutAnswer`).
   */
  private forward(request: http.IncomingMessage, response: http.ServerResponse, url: URL, how: { key: string; operation: Operation; cutAnswer?: boolean; buffered?: Buffered }): void {
    const { key, operation, cutAnswer = false, buffered } = how;
    const body = this.recordWrites && operation === "PutObject" ? createHash("sha256") : undefined;
    if (body && buffered) body.update(buffered.body);
    else if (body) request.on("data", (chunk: Buffer) => body.update(chunk));
    const headers = buffered ? { ...request.headers, "content-length": String(buffered.body.length) } : request.headers;
    const upstream = http.request({ ...this.target(url), method: request.method, headers }, (answer) => {
      if (body && (answer.statusCode ?? 0) < 300) {
        const digest = body.digest("hex");
        this.writes.set(key, [...(this.writes.get(key) ?? []), digest]);
      }
      if (cutAnswer) {
        answer.resume();
        answer.on("end", () => request.socket.destroy());
        return;
      }
      const ok = (answer.statusCode ?? 502) < 300;
      if (!buffered || !ok) {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
        return;
      }
      void readAll(answer).then((text) => {
        const amended = buffered.amend ? buffered.amend(text) : text;
        const { "transfer-encoding": _chunked, ...answered } = answer.headers;
        response.writeHead(answer.statusCode ?? 200, { ...answered, ...buffered.echo, "content-length": String(amended.length) });
        response.end(amended);
      });
    });
    upstream.on("error", () => request.socket.destroy());
    if (buffered) upstream.end(buffered.body);
    else request.pipe(upstream);
  }
}

/** A request as the proxy took it: what it asks for, where to answer, and how to log what was done. */
interface Arrival {
  request: http.IncomingMessage;
  response: http.ServerResponse;
  url: URL;
  key: string;
  operation: Operation;
  record: (outcome: string) => void;
}

/** A request whose body the proxy has read: what it forwards, the headers it adds to a 2xx answer, and how it amends that answer's body. */
interface Buffered {
  body: Buffer;
  echo: Record<string, string>;
  amend?: (answer: Buffer) => Buffer;
}

function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
