// A Node-RED runtime on 127.0.0.1 and a free port for one user directory, run as its own process
// (`node node-red-process.js <userDir>`) so it shares nothing with the test helper's runtime.
// Prints `listening <port>` once started; stops on SIGTERM.
import http from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { NODE_RED_RUNTIME } from "./runtime";

interface EmbeddedRed {
  init(server: http.Server, settings: Record<string, unknown>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  httpAdmin: express.Express;
}

async function main(userDir: string): Promise<void> {
  const RED = require(NODE_RED_RUNTIME) as EmbeddedRed;
  const app = express();
  const server = http.createServer(app);
  RED.init(server, {
    userDir,
    uiHost: "127.0.0.1",
    httpAdminRoot: "/",
    credentialSecret: false,
    flowFile: "flows.json",
    logging: { console: { level: "warn" } },
    editorTheme: { tours: false },
  });
  app.use("/", RED.httpAdmin);
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  await RED.start();
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
  process.once("SIGTERM", () => {
    RED.stop().finally(() => process.exit(0));
  });
}

main(process.argv[2]).catch((error) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
