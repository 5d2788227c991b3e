#!/usr/bin/env node
// `npm start`: a local S3-compatible server (s3rver) and Node-RED 4 on 127.0.0.1 with this
// package and the example flows deployed. Ctrl-C stops both.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const RED = require("node-red");
const S3rver = require("s3rver");
const { startNodeRed } = require("./node-red-server");

const ROOT = path.join(__dirname, "..");
const DATA = path.join(ROOT, ".data");
const S3_PORT = 4568;
const BUCKET = "iot-data";
const EDITOR_PORT = Number(process.env.PORT) || 1880;

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

  const userDir = prepareUserDir();
  const red = await startNodeRed(RED, { userDir, port: EDITOR_PORT });

  console.log("");
  console.log(`  Node-RED editor:  http://127.0.0.1:${EDITOR_PORT}/`);
  console.log(`  Local S3 server:  http://127.0.0.1:${S3_PORT}  bucket "${BUCKET}"  (access key S3RVER / secret S3RVER)`);
  console.log(`  Objects land in:  ${path.relative(process.cwd(), path.join(s3Directory, BUCKET)) || "."}/`);
  console.log("  Ctrl-C stops both.");
  console.log("");

  const stop = async () => {
    await red.stop();
    await s3.close();
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

/** A Node-RED user directory that loads this package from the working tree and deploys the example flows. */
function prepareUserDir() {
  const userDir = path.join(DATA, "node-red");
  const link = path.join(userDir, "node_modules", "@iot-sinks", "node-red-s3-egress");
  fs.mkdirSync(path.dirname(link), { recursive: true });
  if (!fs.existsSync(link)) fs.symlinkSync(ROOT, link, "dir");
  fs.writeFileSync(path.join(userDir, "package.json"), JSON.stringify({ name: "node-red-project", private: true }, null, 2));
  const flowFile = path.join(userDir, "flows.json");
  if (!fs.existsSync(flowFile)) {
    const examples = path.join(ROOT, "examples");
    const flows = fs
      .readdirSync(examples)
      .filter((name) => name.endsWith(".json"))
      .sort()
      .flatMap((name) => JSON.parse(fs.readFileSync(path.join(examples, name), "utf8")));
    fs.writeFileSync(flowFile, JSON.stringify(dedupeConfigNodes(flows), null, 2));
  }
  return userDir;
}

/** Examples each carry the same local S3 config node; keep one copy of each id. */
function dedupeConfigNodes(flows) {
  const seen = new Set();
  return flows.filter((node) => !seen.has(node.id) && seen.add(node.id));
}

main().catch((error) => {
  console.error(error.message || error);
  process.exit(1);
});
