import type http from "node:http";
import type { AddressInfo } from "node:net";

export interface LoopbackEndpoint {
  /** e.g. http://127.0.0.1:43211 */
  endpoint: string;
  /** Closes the server and every connection it holds. */
  stop(): Promise<void>;
}

/** Starts `server` (http or https) on a free loopback port. */
export async function listenOnLoopback(server: http.Server, scheme: "http" | "https" = "http"): Promise<LoopbackEndpoint> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
