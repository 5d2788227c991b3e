// A Node-RED runtime (NODE_RED_RUNTIME) for one user directory, run as its own process
// (`node node-red-process.js <userDir> [settings JSON] [port]`) so it shares nothing with the test helper's runtime.
// Prints `listening <port>` once started on 127.0.0.1 and the port (a free one when absent or 0); stops on SIGTERM.
import path from "node:path";
import { NODE_RED_RUNTIME } from "./runtime";

interface RunningNodeRed {
  port: number;
  stop(): Promise<void>;
}
const { startNodeRed } = require(path.join(__dirname, "..", "..", "scripts", "node-red-server.js")) as {
  startNodeRed(RED: unknown, options: { userDir: string; port: number; logLevel?: string; settings?: Record<string, unknown> }): Promise<RunningNodeRed>;
};

// Ends with the process that started it, even one killed without stopping it (SIGKILL, a timeout).
const parent = process.ppid;
setInterval(() => process.ppid !== parent && process.exit(1), 1000).unref();

const settings = process.argv[3] ? (JSON.parse(process.argv[3]) as Record<string, unknown>) : {};
startNodeRed(require(NODE_RED_RUNTIME), { userDir: process.argv[2], port: Number(process.argv[4] ?? 0), logLevel: "warn", settings }).then(
  (red) => {
    process.stdout.write(`listening ${red.port}\n`);
    process.once("SIGTERM", () => {
      red.stop().finally(() => process.exit(0));
    });
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
