import http from "node:http";
import type { AddressInfo } from "node:net";

export interface ProxiedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
}

/** An answer the proxy gives itself instead of passing the request on. */
export interface StubAnswer {
  status: number;
  /** An S3 <Error> body is made from these when given. */
  code?: string;
  message?: string;
}

/**
 * A loopback HTTP proxy in front of s3rver that records every request and can answer chosen
 * ones itself: to force a failure, or to stand in for a call s3rver lacks (AbortMultipartUpload).
 */
export class RecordingProxy {
  readonly requests: ProxiedRequest[] = [];
  /** Decides, per request, whether the proxy answers it itself. */
  stub: (request: ProxiedRequest) => StubAnswer | undefined = () => undefined;

  private constructor(
    private readonly server: http.Server,
    readonly endpoint: string,
  ) {}

  static async start(target: string): Promise<RecordingProxy> {
    const upstream = new URL(target);
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const proxy = new RecordingProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on("request", (req, res) => proxy.handle(req, res, upstream));
    return proxy;
  }

  /** The requests seen so far whose method and query parameter names match. */
  seen(method: string, parameter?: string): ProxiedRequest[] {
    return this.requests.filter((request) => request.method === method && (parameter === undefined || request.query.has(parameter)));
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, upstream: URL): void {
    const url = new URL(req.url ?? "/", "http://proxy");
    const request = { method: req.method ?? "GET", path: url.pathname, query: url.searchParams };
    this.requests.push(request);
    const answer = this.stub(request);
    if (answer) {
      req.resume();
      req.on("end", () => {
        const body = answer.code ? `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${answer.code}</Code><Message>${answer.message ?? ""}</Message></Error>` : "";
        res.writeHead(answer.status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const forwarded = http.request(
      { hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      },
    );
    forwarded.on("error", () => res.destroy());
    req.pipe(forwarded);
  }
}
