// A real Node-RED runtime (NODE_RED_RUNTIME) in its own process, for the scenarios that kill or
// limit the process: `node runtime-child.js <userDir> <indices as JSON>`. It starts the flows in
// <userDir> (which must use this package), sends scenario msgs to the node "egress" and prints
// "@@ done <index>" when the node calls done() for one, "@@ failed <index> <error>" for done(err),
// "@@ status <text>" for each status the node shows. With S3_EGRESS_CHILD_TEXT=1 each payload is
// the text "reading <index>", for batches read back line by line.
import path from "node:path";
import { scenarioMsg } from "./deliveries";
import { NODE_RED_RUNTIME } from "./runtime";

interface CompleteEvent {
  msg: { _msgid?: string };
  error?: Error;
  node: { id: string };
}

interface StatusEvent {
  id: string;
  status: { text?: string };
}

interface EmbeddedRed {
  nodes: { getNode(id: string): { receive(msg: Record<string, unknown>): void } | null };
}

const { startNodeRed } = require(path.join(__dirname, "..", "..", "scripts", "node-red-server.js")) as {
  startNodeRed(RED: unknown, options: { userDir: string; port: number; logLevel?: string }): Promise<unknown>;
};

async function main(): Promise<void> {
  const [userDir, indicesJson] = process.argv.slice(2);
  const indices = JSON.parse(indicesJson) as number[];
  const RED = require(NODE_RED_RUNTIME) as EmbeddedRed;
  // The runtime's own hooks and events: the util module beside the runtime loaded above.
  const { hooks, events } = require(require.resolve("@node-red/util", { paths: [path.dirname(NODE_RED_RUNTIME)] })) as {
    hooks: { add(name: string, hook: (event: CompleteEvent) => void): void };
    events: { once(name: string, listener: () => void): void; on(name: string, listener: (event: StatusEvent) => void): void };
  };
  const started = new Promise<void>((resolve) => events.once("flows:started", resolve));
  hooks.add("onComplete", (event) => {
    if (event.node.id !== "egress") return;
    const index = String(event.msg._msgid).slice(1);
    process.stdout.write(event.error ? `@@ failed ${index} ${event.error.message}\n` : `@@ done ${index}\n`);
  });
  events.on("node-status", (event) => {
    if (event.id === "egress") process.stdout.write(`@@ status ${event.status.text ?? ""}\n`);
  });
  await startNodeRed(RED, { userDir, port: 0, logLevel: process.env.S3_EGRESS_CHILD_LOG || "warn" });
  await started;
  const egress = RED.nodes.getNode("egress");
  if (!egress) throw new Error("no node egress in the flows");
  const text = process.env.S3_EGRESS_CHILD_TEXT === "1";
  for (const index of indices) {
    const { msg } = scenarioMsg(index, { bytes: 2048 });
    egress.receive({ ...msg, ...(text ? { payload: `reading ${index}` } : {}), _msgid: `i${index}` });
  }
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
