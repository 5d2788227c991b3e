"use strict";
// Batch Completions bench, on the compiled library in nodes/ (run `npm run build` first):
//   ingest: 256-byte msgs from many devices appended (plain) to their open batches, msgs/s;
//   stream: one 1 GiB batch streamed as a multipart upload, with the process's RSS rise.
// The S3 endpoint is a minimal local HTTP server in a child process (so its memory is not
// counted) that answers CreateMultipartUpload/UploadPart/CompleteMultipartUpload/PutObject and
// counts requests and bytes. `node bench/batches.js` prints the figures as JSON;
// `runBatchBench(options)` returns them for `npm run bench`.

const { fork } = require("node:child_process");
const http = require("node:http");
const path = require("node:path");

const NODES = path.join(__dirname, "..", "nodes", "lib");
const MiB = 1024 * 1024;
const BUCKET = "bench";

/** The endpoint, run in a child: answers like S3 and reports what it received per key. */
function serveEndpoint() {
  const received = new Map(); // key -> { requests, bytes }
  let uploads = 0;
  const server = http.createServer((request, response) => {
    const url = new URL(request.url, "http://endpoint");
    const key = decodeURIComponent(url.pathname.split("/").slice(2).join("/"));
    const entry = received.get(key) ?? { requests: 0, bytes: 0 };
    received.set(key, entry);
    entry.requests++;
    // Object bytes: what PutObject and UploadPart carry (not the Complete request's part list).
    request.on("data", (chunk) => {
      if (request.method === "PUT") entry.bytes += chunk.length;
    });
    request.on("end", () => {
      const xml = (body) => response.writeHead(200, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) }).end(body);
      if (request.method === "POST" && url.searchParams.has("uploads")) {
        xml(`<InitiateMultipartUploadResult><UploadId>u${++uploads}</UploadId></InitiateMultipartUploadResult>`);
      } else if (request.method === "POST") {
        xml(`<CompleteMultipartUploadResult><ETag>"complete-${entry.requests}"</ETag></CompleteMultipartUploadResult>`);
      } else if (request.method === "PUT") {
        response.writeHead(200, { etag: `"part-${entry.requests}"`, "content-length": "0" }).end();
      } else {
        response.writeHead(204).end();
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => process.send({ port: server.address().port }));
  process.on("message", (message) => {
    if (message === "report") process.send({ received: Object.fromEntries(received) });
    if (message === "stop") server.close(() => process.exit(0));
  });
  process.on("disconnect", () => process.exit(0));
}

function startEndpoint() {
  const child = fork(__filename, ["--endpoint"], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const next = () => new Promise((resolve) => child.once("message", resolve));
  return next().then(({ port }) => ({
    endpoint: `http://127.0.0.1:${port}`,
    report: () => {
      const answer = next();
      child.send("report");
      return answer.then((message) => message.received);
    },
    stop: () => {
      child.send("stop");
      return new Promise((resolve) => child.once("exit", resolve));
    },
  }));
}

function batchRoute(endpoint, settings) {
  const { S3Sink } = require(path.join(NODES, "s3", "client.js"));
  const { Writer } = require(path.join(NODES, "delivery", "writer.js"));
  const { Batches } = require(path.join(NODES, "delivery", "batches.js"));
  const sink = new S3Sink({ bucket: BUCKET, region: "us-east-1", endpoint, forcePathStyle: true, credentials: { accessKeyId: "bench", secretAccessKey: "bench" } });
  const writer = new Writer(16);
  const failures = [];
  const route = new Batches(sink, writer, { path: "", concatenation: "plain", idleTimeoutMs: 0, compression: "none", maxOpenBatches: 100_000, atOpenLimit: "reject", ...settings }, {
    completed: () => undefined,
    failed: (error) => failures.push(error),
    unusable: () => undefined,
  });
  return { route, sink, failures };
}

/** msgs/s for `messages` 256-byte msgs spread over `devices` open batches, fields validated per msg as the node does. */
async function benchIngest(endpoint, { messages = 1_000_000, devices = 64 } = {}) {
  const { toFields } = require(path.join(NODES, "core", "record.js"));
  const { route, sink } = batchRoute(endpoint);
  const options = { input: "batches", batchIdAutofill: "none", messageIdAutofill: "none" };
  const context = { arrival: 0, nextMessageId: () => "" };
  const raws = Array.from({ length: devices }, (_, index) => ({ streamGroup: "bench", stream: "telemetry", deviceId: `device-${index}`, batchId: "b1" }));
  const payloads = Array.from({ length: 256 }, (_, index) => Buffer.alloc(256, index));
  const started = process.hrtime.bigint();
  for (let index = 0; index < messages; index++) {
    const now = Date.now();
    context.arrival = now;
    const fields = toFields(raws[index % devices], options, context);
    const admission = route.accept({ fields, payload: payloads[index & 255], contentType: undefined, complete: false, arrival: now, msgid: "" });
    if (admission.ready) await admission.ready;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await route.close();
  sink.destroy();
  return messages / seconds;
}

/** Streams one batch of `mebibytes` MiB in 1 MiB msgs; the RSS rise over the start, and what reached the endpoint. */
async function benchStream(endpoint, report, { mebibytes = 1024 } = {}) {
  const { toFields } = require(path.join(NODES, "core", "record.js"));
  const { route, sink, failures } = batchRoute(endpoint);
  const fields = toFields({ streamGroup: "bench", stream: "telemetry", deviceId: "big", batchId: "1gib" }, { input: "batches", batchIdAutofill: "none", messageIdAutofill: "none" }, { arrival: 0, nextMessageId: () => "" });
  const chunks = Array.from({ length: 4 }, (_, index) => Buffer.alloc(MiB, index + 1));
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  for (let index = 0; index < mebibytes; index++) {
    const admission = route.accept({ fields, payload: chunks[index & 3], contentType: undefined, complete: false, arrival: Date.now(), msgid: "" });
    if (admission.ready) await admission.ready;
    peak = Math.max(peak, process.memoryUsage.rss());
  }
  const { completed } = route.accept({ fields, payload: undefined, contentType: undefined, complete: true, arrival: Date.now(), msgid: "" });
  const outcome = await completed;
  peak = Math.max(peak, process.memoryUsage.rss());
  sink.destroy();
  if (failures.length) throw failures[0];
  const received = (await report())[outcome.key];
  if (outcome.bytes !== mebibytes * MiB || received.bytes !== mebibytes * MiB) {
    throw new Error(`the batch should hold ${mebibytes * MiB} bytes: reported ${outcome.bytes}, received ${received.bytes}`);
  }
  return { rssRiseMiB: (peak - baseline) / MiB, objectBytes: received.bytes, requestsPerBatch: received.requests };
}

/** { ingestMsgsPerSec, rssRiseMiB, objectBytes, requestsPerBatch }; options: { ingestMessages, devices, batchMiB }. */
async function runBatchBench(options = {}) {
  const endpoint = await startEndpoint();
  try {
    // The stream runs first, so the ingest run's garbage does not count in its RSS.
    const stream = await benchStream(endpoint.endpoint, endpoint.report, { mebibytes: options.batchMiB });
    const ingestMsgsPerSec = await benchIngest(endpoint.endpoint, { messages: options.ingestMessages, devices: options.devices });
    return { ingestMsgsPerSec: Math.round(ingestMsgsPerSec), ...stream };
  } finally {
    await endpoint.stop();
  }
}

module.exports = { runBatchBench };

if (require.main === module) {
  if (process.argv[2] === "--endpoint") serveEndpoint();
  else {
    runBatchBench().then(
      (figures) => console.log(JSON.stringify(figures, null, 2)),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  }
}
