import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";

/**
 * A forward proxy on a free loopback port, as a corporate proxy behaves: CONNECT opens a tunnel
 * (for https endpoints), a request with an absolute URI is passed on (for http endpoints). It
 * counts both, and goes only to loopback targets.
 */
export class ConnectProxy {
  /** host:port of each CONNECT tunnel opened. */
  readonly tunnels: string[] = [];
  /** Method and absolute URI of each plain request passed on. */
  readonly forwarded: string[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: http.Server) {
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    server.on("connect", (request, client: net.Socket, head: Buffer) => {
      const [host, port] = (request.url ?? "").split(":");
      if (!isLoopback(host)) {
        client.end("HTTP/1.1 403 Forbidden\r\n\r\n");
        return;
      }
      this.tunnels.push(request.url ?? "");
      const upstream = net.connect(Number(port), host, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      this.sockets.add(upstream);
      upstream.on("close", () => this.sockets.delete(upstream));
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    });
    server.on("request", (request, response) => {
      const target = new URL(request.url ?? "/");
      if (!isLoopback(target.hostname)) {
        response.writeHead(403).end();
        return;
      }
      this.forwarded.push(`${request.method} ${request.url}`);
      const upstream = http.request(
        { hostname: target.hostname, port: target.port, path: target.pathname + target.search, method: request.method, headers: request.headers },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
        },
      );
      upstream.on("error", () => response.destroy());
      request.pipe(upstream);
    });
  }

  static async start(): Promise<ConnectProxy> {
    const proxy = new ConnectProxy(http.createServer());
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function isLoopback(host: string): boolean {
  return host === "127.0.0.1" || host === "localhost" || host === "[::1]" || host === "::1";
}
