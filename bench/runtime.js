"use strict";
// An embedded Node-RED 4 runtime (no editor, no HTTP) in a temporary user directory that loads
// this package from the working tree and the peer node from node_modules.

const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");

const ROOT = path.join(__dirname, "..");
const PACKAGES = {
  "@iot-sinks/node-red-s3-egress": ROOT,
  "node-red-node-aws": path.dirname(require.resolve("node-red-node-aws/package.json")),
};

/**
 * Starts Node-RED with `flow` deployed, `credentials` (by node id) and `settings` added to its own;
 * returns the runtime and a stop function. `onEvent(node, handler)` hooks a node's input, for the
 * bench's sink node.
 */
async function startRuntime(flow, credentials, settings = {}) {
  // A given user directory is kept (a restart after a crash reads its spool); a new one goes with the runtime.
  const kept = settings.userDir !== undefined;
  const userDir = settings.userDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "s3-egress-bench-red-"));
  fs.rmSync(path.join(userDir, "node_modules"), { recursive: true, force: true });
  for (const [name, target] of Object.entries(PACKAGES)) {
    const link = path.join(userDir, "node_modules", name);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(target, link, "dir");
  }
  fs.writeFileSync(path.join(userDir, "package.json"), JSON.stringify({ name: "bench", private: true }));
  fs.writeFileSync(path.join(userDir, "flows.json"), JSON.stringify(flow));
  fs.writeFileSync(path.join(userDir, "flows_cred.json"), JSON.stringify(credentials));

  const RED = require("node-red");
  RED.init(http.createServer(), {
    userDir,
    flowFile: "flows.json",
    credentialSecret: false,
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    logging: { console: { level: "error" } },
    contextStorage: { default: { module: "memory" } },
    ...settings,
  });
  await RED.start();
  await waitForFlows(RED);
  return {
    RED,
    node: (id) => RED.nodes.getNode(id),
    stop: async () => {
      await RED.stop();
      if (!kept) fs.rmSync(userDir, { recursive: true, force: true });
    },
  };
}

function waitForFlows(RED) {
  return new Promise((resolve) => {
    const check = () => (RED.runtime.flows.state && RED.nodes.getNode("sink") ? resolve() : setTimeout(check, 20));
    RED.events.once("flows:started", resolve);
    check();
  });
}

module.exports = { startRuntime };
