// The real components users put in front of several Node-RED instances, started by the scale test on
// 127.0.0.1: HAProxy (examples/haproxy.cfg as it is) and Mosquitto. scripts/test-scale.sh installs
// them from Debian when missing. Each runs under `timeout`, so it ends by itself whatever happens here.
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { type AddressInfo, connect, createServer } from "node:net";
import path from "node:path";

const EXAMPLES = path.join(__dirname, "..", "..", "examples");
/** No service outlives this, even if the test process is killed. */
const LIFETIME_S = 900;

/** A free TCP port on 127.0.0.1 (free when asked: the caller binds it soon after). */
export function freePort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once("error", reject).listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on 127.0.0.1:`port`; rejects after `ms`. */
export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface Service {
  port: number;
  /** What it printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/** Runs `command` under `timeout`, with its output kept for the error if it ends early. */
function startBounded(command: string[], env: Record<string, string>, port: number): Promise<Service> {
  const child: ChildProcess = spawn("timeout", [String(LIFETIME_S), ...command], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  const early = exited.then(() => Promise.reject(new Error(`${command[0]} exited: ${output}`)));
  return Promise.race([waitForPort(port), early]).then(
    () => ({ port, stop, output: () => output }),
    async (error: unknown) => {
      await stop();
      throw error;
    },
  );
}

/**
 * HAProxy with examples/haproxy.cfg: devices hashed by X-Device-Id (consistent) over `servers`
 * (host:port, three entries; one address three times is one runtime), health-checked on the flow's
 * `healthPath`.
 */
export async function startHaproxy(servers: [string, string, string], healthPath: string): Promise<Service> {
  const port = await freePort();
  const env = { INGEST_BIND: `127.0.0.1:${port}`, INGEST_HEALTH: healthPath, NODE_RED_1: servers[0], NODE_RED_2: servers[1], NODE_RED_3: servers[2] };
  return startBounded(["haproxy", "-db", "-f", path.join(EXAMPLES, "haproxy.cfg")], env, port);
}

/** Mosquitto (MQTT 3.1.1 and 5, shared subscriptions) on 127.0.0.1, sessions in memory, no limit on queued msgs; it logs subscriptions. */
export async function startMosquitto(directory: string): Promise<Service> {
  const port = await freePort();
  const config = path.join(directory, "mosquitto.conf");
  // max_queued_messages 0: a persistent session keeps every QoS 1 msg while its client is away (the default keeps 1,000).
  writeFileSync(config, [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false", "max_queued_messages 0", "log_dest stderr", "log_type error", "log_type subscribe", ""].join("\n"));
  return startBounded(["mosquitto", "-c", config], {}, port);
}
