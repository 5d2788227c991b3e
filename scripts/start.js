#!/usr/bin/env node
// `npm start`: a local S3-compatible server (s3rver), an MQTT broker (aedes) and Node-RED 4 on
// 127.0.0.1 with this package and the example flows deployed. Ctrl-C stops them.
"use strict";

const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");
const RED = require("node-red");
const S3rver = require("s3rver");
const { startNodeRed } = require("./node-red-server");

const ROOT = path.join(__dirname, "..");
const DATA = path.join(ROOT, ".data");
const S3_PORT = 4568;
const BUCKET = "iot-data";
const EDITOR_PORT = Number(process.env.PORT) || 1880;
// The broker node of examples/mqtt-in-to-s3.json: pointed at the demo's own broker at each start.
const MQTT_BROKER_NODE = "6f1d0c2a8e4ba009";

async function main() {
  const s3Directory = path.join(DATA, "s3");
  fs.mkdirSync(s3Directory, { recursive: true });
  const s3 = new S3rver({ address: "127.0.0.1", port: S3_PORT, silent: true, directory: s3Directory, configureBuckets: [{ name: BUCKET }] });
  await s3.run().catch((error) => {
    throw new Error(`cannot start the local S3 server on 127.0.0.1:${S3_PORT} (${error.code || error.message}); the example flows expect it there`);
  });
  // The example flows leave the keys empty (AWS default credential chain): these reach s3rver.
  process.env.AWS_ACCESS_KEY_ID = "S3RVER";
  process.env.AWS_SECRET_ACCESS_KEY = "S3RVER";

  const mqtt = await startMqttBroker();
  const userDir = prepareUserDir(mqtt.port);
  const red = await startNodeRed(RED, { userDir, port: EDITOR_PORT });

  console.log("");
  console.log(`  Node-RED editor:  http://127.0.0.1:${EDITOR_PORT}/`);
  console.log(`  Local S3 server:  http://127.0.0.1:${S3_PORT}  bucket "${BUCKET}"  (access key S3RVER / secret S3RVER)`);
  console.log(`  Objects land in:  ${path.relative(process.cwd(), path.join(s3Directory, BUCKET)) || "."}/`);
  console.log(`  MQTT broker:      mqtt://127.0.0.1:${mqtt.port}  (the MQTT example's broker node points here)`);
  console.log("  Ctrl-C stops them.");
  console.log("");

  const stop = async () => {
    await red.stop();
    await mqtt.close();
    await s3.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

/** An MQTT broker (aedes, in memory) on 127.0.0.1 and a free port, for the MQTT example. */
async function startMqttBroker() {
  const { Aedes } = await import("aedes");
  const broker = await Aedes.createBroker();
  const server = net.createServer(broker.handle);
  await new Promise((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    close: () => new Promise((resolve) => server.close(() => broker.close(resolve))),
  };
}

/**
 * A Node-RED user directory that loads this package from the working tree and deploys the example
 * flows, its MQTT broker node pointed at `mqttPort`.
 */
function prepareUserDir(mqttPort) {
  const userDir = path.join(DATA, "node-red");
  const link = path.join(userDir, "node_modules", "@iot-sinks", "node-red-s3-egress");
  fs.mkdirSync(path.dirname(link), { recursive: true });
  if (!fs.existsSync(link)) fs.symlinkSync(ROOT, link, "dir");
  fs.writeFileSync(path.join(userDir, "package.json"), JSON.stringify({ name: "node-red-project", private: true }, null, 2));
  const flowFile = path.join(userDir, "flows.json");
  const flows = fs.existsSync(flowFile) ? JSON.parse(fs.readFileSync(flowFile, "utf8")) : exampleFlows();
  for (const node of flows) {
    if (node.id === MQTT_BROKER_NODE) Object.assign(node, { broker: "127.0.0.1", port: String(mqttPort) });
  }
  fs.writeFileSync(flowFile, JSON.stringify(flows, null, 2));
  return userDir;
}

/**
 * Every example, each on its tab. Each example carries a config node of its own for the local S3
 * server (so that importing them one after another never conflicts); the demo keeps the first.
 */
function exampleFlows() {
  const examples = path.join(ROOT, "examples");
  const flows = fs
    .readdirSync(examples)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .flatMap((name) => JSON.parse(fs.readFileSync(path.join(examples, name), "utf8")));
  const [kept, ...others] = flows.filter((node) => node.type === "s3-egress-config");
  const merged = new Set(others.map((node) => node.id));
  return flows
    .filter((node) => !merged.has(node.id))
    .map((node) => (merged.has(node.sink) ? { ...node, sink: kept.id } : node));
}

main().catch((error) => {
  console.error(error.message || error);
  process.exit(1);
});
