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
  | { kind: "no-etag" };

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
    }
    this.forwardConditionally(request, response, url, key, operation, record);
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

  private forwardConditionally(
    request: http.IncomingMessage,
    response: http.ServerResponse,
    url: URL,
    key: string,
    operation: Operation,
    record: (outcome: string) => void,
  ): void {
    const conditional = operation === "PutObject" || operation === "CompleteMultipartUpload";
    if (!(this.conditionalWrites && conditional && request.headers["if-none-match"] === "*")) {
      record("forwarded");
      this.forward(request, response, url, { key, operation });
      return;
    }
    request.pause();
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
          request.resume();
          request.on("end", () => {
            response.writeHead(412, { "content-type": "application/xml" });
            response.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Key>${key}</Key></Error>`);
          });
        } else {
          record("forwarded");
          this.forward(request, response, url, { key, operation });
        }
      });
      head.on("error", () => request.socket.destroy());
      head.end();
    });
  }

  private target(url: URL): http.RequestOptions {
    return { hostname: this.upstream.hostname, port: this.upstream.port, path: url.pathname + url.search, agent: this.upstreamAgent };
  }

  /** Passes the request to s3rver and its answer back, or cuts the connection once s3rver answered (`cutAnswer`). */
  private forward(request: http.IncomingMessage, response: http.ServerResponse, url: URL, how: { key: string; operation: Operation; cutAnswer?: boolean }): void {
    const { key, operation, cutAnswer = false } = how;
    const body = this.recordWrites && operation === "PutObject" ? createHash("sha256") : undefined;
    if (body) request.on("data", (chunk: Buffer) => body.update(chunk));
    const upstream = http.request({ ...this.target(url), method: request.method, headers: request.headers }, (answer) => {
      if (body && (answer.statusCode ?? 0) < 300) {
        const digest = body.digest("hex");
        this.writes.set(key, [...(this.writes.get(key) ?? []), digest]);
      }
      if (cutAnswer) {
        answer.resume();
        answer.on("end", () => request.socket.destroy());
        return;
      }
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on("error", () => request.socket.destroy());
    request.pipe(upstream);
  }
}
