// An embedded Node-RED on 127.0.0.1 for one user directory, shared by `npm start` and the tests
// that run the installed package in a real runtime.
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const path = require("node:path");
const express = require("express");

const ROOT = path.join(__dirname, "..");

/**
 * Starts `RED` (the node-red module to use) with its editor and admin API at "/" and HTTP nodes at
 * "/api", listening on 127.0.0.1:`port` (0 for a free one). Resolves with the port and a stop function.
 * `settings` adds to (or replaces) the settings below, e.g. `adminAuth` for a secured editor.
 */
async function startNodeRed(RED, { userDir, port, logLevel = "info", settings = {} }) {
  const app = express();
  const server = http.createServer(app);
  RED.init(server, {
    userDir,
    uiHost: "127.0.0.1",
    httpAdminRoot: "/",
    httpNodeRoot: "/api",
    credentialSecret: false,
    flowFile: "flows.json",
    // Node-RED also loads the node modules installed beside itself: keep the dev-only ones out of the palette.
    nodesExcludes: devNodeModules(),
    logging: { console: { level: logLevel } },
    // No palette catalogue: the editor would fetch it from the flow library, and nothing leaves 127.0.0.1.
    editorTheme: { tours: false, palette: { catalogues: [] } },
    // Nothing leaves 127.0.0.1: no version check, and no consent prompt in the editor.
    telemetry: { enabled: false, updateNotification: false },
    ...settings,
  });
  app.use("/", RED.httpAdmin);
  app.use("/api", RED.httpNode);
  await new Promise((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", resolve));
  await RED.start();
  return {
    port: server.address().port,
    stop: async () => {
      await RED.stop();
      // As Node-RED's own red.js exits once the flows are stopped: keep-alive connections (a load
      // balancer's) are closed too, instead of being served 404s until their client hangs up.
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Node-RED node modules among this repository's devDependencies (the bench's comparison nodes), by directory name. */
function devNodeModules() {
  const { devDependencies = {} } = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
  return Object.keys(devDependencies).filter((name) => {
    if (name === "node-red") return false;
    try {
      return Boolean(JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", name, "package.json"), "utf8"))["node-red"]);
    } catch {
      return false;
    }
  }).map((name) => path.basename(name));
}

module.exports = { startNodeRed };
