// An embedded Node-RED on 127.0.0.1 for one user directory, shared by `npm start` and the tests
// that run the installed package in a real runtime.
"use strict";

const http = require("node:http");
const express = require("express");

/**
 * Starts `RED` (the node-red module to use) with its editor and admin API at "/" and HTTP nodes at
 * "/api", listening on 127.0.0.1:`port` (0 for a free one), with `settings` added to (or replacing)
 * the ones below. Resolves with the port and a stop function.
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
    logging: { console: { level: logLevel } },
    editorTheme: { tours: false },
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
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

module.exports = { startNodeRed };
