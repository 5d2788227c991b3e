// A real Node-RED runtime in its own process, for the crash scenario: node test/support/runtime-child.js <userDir> <indices as JSON>
// It starts the flows in <userDir> (which must use this package), sends scenario msgs to the node "egress" and
// prints "@@ done <index>" when the node calls done() for one, "@@ failed <index> <error>" when done(err).
import http from "node:http";
import { scenarioMsg } from "./deliveries";

interface CompleteEvent {
  msg: { _msgid?: string };
  error?: Error;
  node: { id: string };
}

interface EmbeddedRed {
  init(server: http.Server, settings: Record<string, unknown>): void;
  start(): Promise<void>;
  nodes: { getNode(id: string): { receive(msg: Record<string, unknown>): void } | null };
}

async function main(): Promise<void> {
  const [userDir, indicesJson] = process.argv.slice(2);
  const indices = JSON.parse(indicesJson) as number[];
  const RED = require("node-red") as EmbeddedRed;
  const { hooks, events } = require("@node-red/util") as {
    hooks: { add(name: string, hook: (event: CompleteEvent) => void): void };
    events: { once(name: string, listener: () => void): void };
  };
  const started = new Promise<void>((resolve) => events.once("flows:started", resolve));
  RED.init(http.createServer(), {
    userDir,
    flowFile: "flows.json",
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    logging: { console: { level: process.env.S3_EGRESS_CHILD_LOG || "warn" } },
    editorTheme: { tours: false },
  });
  hooks.add("onComplete", (event) => {
    if (event.node.id !== "egress") return;
    const index = String(event.msg._msgid).slice(1);
    process.stdout.write(event.error ? `@@ failed ${index} ${event.error.message}\n` : `@@ done ${index}\n`);
  });
  await RED.start();
  await started;
  const egress = RED.nodes.getNode("egress");
  if (!egress) throw new Error("no node egress in the flows");
  process.stdout.write("@@ ready\n");
  for (const index of indices) egress.receive({ ...scenarioMsg(index, { bytes: 2048 }).msg, _msgid: `i${index}` });
  process.stdout.write("@@ sent\n");
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
