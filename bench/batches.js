"use strict";
// Batch Completions bench (run `npm run build` first). Each figure in a fresh process:
//   ingest: 256-byte msgs from 64 devices appended (plain) to their open batches through the
//           library (Batches), msgs/s;
//   stream: one 1 GiB batch fed through a real Node-RED runtime (bench/runtime.js) in 1 MiB msgs
//           at a steady pace, without waiting for done(); the process's RSS rise, with a fresh
//           Buffer per msg and with one Buffer for all (the node's own share);
//   open:   100,000 devices send one 100-byte msg each through the runtime, so 100,000 batches
//           are open; the RSS they cost (after a full GC), plain and gzip.
// The S3 endpoint is a minimal local HTTP server in a child process (so its memory is not
// counted) that answers CreateMultipartUpload/UploadPart/CompleteMultipartUpload/PutObject and
// counts requests and bytes. `node bench/batches.js` prints the figures as JSON;
// `runBatchBench(options)` returns them for `npm run bench`.

const { fork } = require("node:child_process");
const { createHash } = require("node:crypto");
const fs = require("node:fs");
const os = require("node:os");
const http = require("node:http");
const path = require("node:path");
const v8 = require("node:v8");

const NODES = path.join(__dirname, "..", "nodes", "lib");
const MiB = 1024 * 1024;
const BUCKET = "bench";
const STREAM_PACE_MS = 15;
const OPEN_BATCHES = 100_000;

/** The endpoint, run in a child: answers like S3 and reports what it received per key. */
function serveEndpoint() {
  const received = new Map(); // key -> { requests, bytes }
  let uploads = 0;
  const server = http.createServer((request, response) => {
    const url = new URL(request.url, "http://endpoint");
    const key = decodeURIComponent(url.pathname.split("/").slice(2).join("/"));
    const entry = received.get(key) ?? { requests: 0, puts: 0, bytes: 0, hash: createHash("sha256") };
    received.set(key, entry);
    entry.requests++;
    if (request.method === "PUT") entry.puts++;
    // Object bytes: what PutObject and UploadPart carry (not the Complete request's part list), hashed in arrival order.
    request.on("data", (chunk) => {
      if (request.method !== "PUT") return;
      entry.bytes += chunk.length;
      entry.hash.update(chunk);
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
    if (message === "report") {
      const report = {};
      for (const [key, { requests, puts, bytes, hash }] of received) report[key] = { requests, puts, bytes, sha256: hash.copy().digest("hex") };
      process.send({ received: report });
    }
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

/** msgs/s for `messages` 256-byte msgs spread over `devices` open batches, fields validated per msg as the node does. */
async function benchIngest(endpoint, { messages = 1_000_000, devices = 64 } = {}) {
  const { toFields } = require(path.join(NODES, "core", "record.js"));
  const { S3Sink } = require(path.join(NODES, "s3", "client.js"));
  const { Writer } = require(path.join(NODES, "delivery", "writer.js"));
  const { FixedLimit } = require(path.join(NODES, "delivery", "concurrency.js"));
  const { Batches } = require(path.join(NODES, "delivery", "batches.js"));
  const sink = new S3Sink({ bucket: BUCKET, region: "us-east-1", endpoint, forcePathStyle: true, credentials: { accessKeyId: "bench", secretAccessKey: "bench" } });
  const settings = { path: "", concatenation: "plain", idleTimeoutMs: 0, compression: "none", maxOpenBatches: devices, atOpenLimit: "reject", maxBatchMemoryBytes: 32 * 1024 * 1024 };
  const batches = new Batches(sink, new Writer(new FixedLimit(16)), settings, { completed: () => undefined, failed: () => undefined, unusable: () => undefined });
  const options = { input: "batches", batchIdAutofill: "none", messageIdAutofill: "none" };
  const context = { arrival: 0, nextMessageId: () => "" };
  const raws = Array.from({ length: devices }, (_, index) => ({ streamGroup: "bench", stream: "telemetry", deviceId: `device-${index}`, batchId: "b1" }));
  const payloads = Array.from({ length: 256 }, (_, index) => Buffer.alloc(256, index));
  const started = process.hrtime.bigint();
  for (let index = 0; index < messages; index++) {
    const now = Date.now();
    context.arrival = now;
    const fields = toFields(raws[index % devices], options, context);
    const admission = batches.accept({ fields, payload: payloads[index & 255], contentType: undefined, complete: false, arrival: now, msgid: "" });
    if (admission.ready) await admission.ready;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await batches.close();
  sink.destroy();
  return { ingestMsgsPerSec: Math.round(messages / seconds) };
}

/**
 * A Node-RED runtime with one s3-egress node in Batch Completions mode; counts errors, and done()
 * when `countDone` (a Complete node gets a copy of each msg, payload included).
 */
async function batchRuntime(endpoint, egress, countDone, settings = {}) {
  const { startRuntime } = require("./runtime");
  const flow = [
    { id: "tab", type: "tab", label: "bench" },
    { id: "source", type: "comment", z: "tab", wires: [["egress"]] },
    { id: "cfg", type: "s3-egress-config", bucket: BUCKET, region: "us-east-1", endpoint, forcePathStyle: true },
    { id: "egress", type: "s3-egress", z: "tab", sink: "cfg", input: "batches", ...egress, wires: [["sink"]] },
    { id: "dones", type: "complete", z: "tab", scope: countDone ? ["egress"] : ["none"], uncaught: false, wires: [["counted"]] },
    { id: "failures", type: "catch", z: "tab", scope: ["egress"], uncaught: false, wires: [["failed"]] },
    { id: "sink", type: "comment", z: "tab" },
    { id: "counted", type: "comment", z: "tab" },
    { id: "failed", type: "comment", z: "tab" },
    { id: "statuses", type: "status", z: "tab", scope: ["egress"], wires: [["status"]] },
    { id: "status", type: "comment", z: "tab" },
  ];
  const runtime = await startRuntime(flow, { cfg: { accessKeyId: "bench", secretAccessKey: "bench" } }, settings);
  const counts = { done: 0, errors: 0, firstError: undefined, outputs: [], status: undefined };
  runtime.node("status").on("input", (msg) => (counts.status = msg.status?.text));
  runtime.node("counted").on("input", () => counts.done++);
  runtime.node("failed").on("input", (msg) => {
    counts.errors++;
    counts.firstError ??= msg.error?.message;
  });
  runtime.node("sink").on("input", (msg) => counts.outputs.push(msg.s3));
  return { runtime, source: runtime.node("source"), counts };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Streams one batch of `mebibytes` MiB in 1 MiB msgs, one every STREAM_PACE_MS, never waiting for
 * done(). `fresh`: each msg brings a Buffer of its own, as one from a device would; else every msg
 * carries the same Buffer, which leaves out the feed's own garbage.
 */
async function benchStream(endpoint, report, { mebibytes = 1024, fresh = true } = {}) {
  const { runtime, source, counts } = await batchRuntime(endpoint, {}, false);
  const fields = { streamGroup: "bench", stream: "telemetry", deviceId: "big", batchId: "1gib" };
  const template = Buffer.alloc(MiB, 7);
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  const started = Date.now();
  for (let index = 0; index < mebibytes; index++) {
    source.send({ ...fields, payload: fresh ? Buffer.from(template) : template });
    await sleep(started + (index + 1) * STREAM_PACE_MS - Date.now());
  }
  source.send({ ...fields, complete: true });
  while (counts.outputs.length === 0 && counts.errors === 0) await sleep(20);
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage.rss());
  if (counts.errors) throw new Error(counts.firstError);
  const outcome = counts.outputs[0];
  const received = (await report())[outcome.key];
  if (outcome.bytes !== mebibytes * MiB || received.bytes !== mebibytes * MiB) {
    throw new Error(`the batch should hold ${mebibytes * MiB} bytes: reported ${outcome.bytes}, received ${received.bytes}`);
  }
  await runtime.stop();
  return { rssRiseMiB: (peak - baseline) / MiB, objectBytes: received.bytes, requestsPerBatch: received.requests, streamSeconds: (Date.now() - started) / 1000 };
}

/**
 * `msgs` msgs of about 100 bytes from `devices` devices (one msg each when they are equal, so as
 * many batches open); the process's RSS and heap after a full GC, over what they were at start.
 */
async function benchOpen(endpoint, { msgs = OPEN_BATCHES, devices = msgs, compression = "none", concatenation = "newline" } = {}) {
  const { counts, source } = await batchRuntime(endpoint, { compression, concatenation, maxOpenBatches: OPEN_BATCHES }, true);
  global.gc?.();
  const baseline = process.memoryUsage();
  for (let index = 0; index < msgs; index++) {
    // About 100 bytes of JSON text, as a device's reading arrives.
    const payload = JSON.stringify({ device: index, temperature: 21.5, humidity: 40.25, time: "2026-11-25T22:00:00.000Z", seq: index });
    source.send({ streamGroup: "bench", stream: "telemetry", deviceId: `device-${index % devices}`, batchId: "2026-11-25", payload });
    // A steady feed: the runtime delivers each msg on a later turn of the event loop.
    if (index % 1000 === 999) while (counts.done + counts.errors < index - 1000) await sleep(1);
  }
  while (counts.done + counts.errors < msgs) await sleep(10);
  await sleep(300); // the status is shown at most every 250 ms
  global.gc?.();
  const after = process.memoryUsage();
  return {
    msgs,
    devices,
    compression,
    concatenation,
    accepted: counts.done,
    refused: counts.errors,
    firstError: counts.firstError,
    rssRiseMiB: (after.rss - baseline.rss) / MiB,
    heapRiseMiB: (after.heapUsed + after.external - baseline.heapUsed - baseline.external) / MiB,
    status: counts.status,
  };
}

const FLEET_MSG_BYTES = 16 * 1024;
/** Msgs sent and not yet done() at most: a gateway's feed that never lets Node-RED's own queue grow. */
const FLEET_WINDOW = 2000;
/**
 * The heap V8 gives Node.js by default on a gateway with 4 GiB (a quarter of its memory; 256 MiB
 * on 1 GiB), the largest of the 1 to 4 GiB gateways fleets run on. On this machine's 24 GiB the
 * default is 4 GiB, and V8 then lets the heap grow to about 3.3 times what is live before a full
 * collection (about 2 times with a 1 GiB heap; --trace-gc): the fleet rows are measured with both.
 */
const GATEWAY_HEAP_MIB = 1024;
/**
 * 256 payloads of 16 KiB, each of one byte value, shared by the msgs: the node copies what it
 * keeps, so fresh Buffers per msg would only measure the feed's own garbage (GiB per run).
 */
const FLEET_PAYLOADS = Array.from({ length: 256 }, (_, value) => Buffer.alloc(FLEET_MSG_BYTES, value));
/** The fleet's msg `index` of `device`: which of the payloads it carries, so that a misplaced msg changes its object's digest. */
const fleetPayload = (device, index) => FLEET_PAYLOADS[(device * 31 + index * 7) & 0xff];

/**
 * A fleet through a real runtime, the node at its defaults: `devices` devices each fill one open
 * batch with `batchKiB` KiB in 16 KiB msgs, interleaved as a fleet reports, never more than
 * FLEET_WINDOW msgs waiting for done(); then each batch is completed by a msg.complete. Figures:
 * the RSS rise over the started runtime while the batches are open and while they complete,
 * ingest MiB/s, the time until the last batch is written; every object is checked byte for byte.
 * `phase`: "all"; "open" (then SIGKILL: the spool keeps the open batches); "resume" (the same user
 * directory: rebuild from the spool, then complete; measured over `baselineRss` of the "open" run).
 */
async function benchFleet(endpoint, report, { devices, batchKiB, spool = false, phase = "all", userDir, baselineRss, concatenation }) {
  const perDevice = (batchKiB * 1024) / FLEET_MSG_BYTES;
  const { runtime, source, counts } = await batchRuntime(endpoint, concatenation ? { spool, concatenation } : { spool }, false, userDir ? { userDir } : {});
  // done() counted by Node-RED's own hook: a Complete node would add a deep copy of every msg to what is measured.
  runtime.RED.hooks.add("onComplete.fleet", (event) => {
    if (event.node.id === "egress" && !event.error) counts.done++;
  });
  const field = (device) => ({ streamGroup: "fleet", stream: "telemetry", deviceId: `device-${device}`, batchId: "2026-12-06" });
  global.gc?.();
  const baseline = baselineRss ?? process.memoryUsage.rss();
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  const heapLimitMiB = Math.round(v8.getHeapStatistics().heap_size_limit / MiB);
  const figures = { devices, batchKiB, spool, phase, concatenation: concatenation ?? "plain", heapLimitMiB, baselineRss: baseline };
  let sent = 0;
  const send = async (msg) => {
    while (sent - counts.done - counts.errors >= FLEET_WINDOW) await sleep(1);
    source.send(msg);
    sent++;
  };
  if (phase !== "resume") {
    const started = Date.now();
    for (let index = 0; index < perDevice; index++) for (let device = 0; device < devices; device++) await send({ ...field(device), payload: fleetPayload(device, index) });
    while (counts.done + counts.errors < sent) await sleep(2);
    const seconds = (Date.now() - started) / 1000;
    Object.assign(figures, { openSeconds: seconds, ingestMiBPerSec: (devices * batchKiB) / 1024 / seconds, rssRiseOpenMiB: (peak - baseline) / MiB, errors: counts.errors, firstError: counts.firstError });
    if (phase === "open") {
      // Every msg is done(), so on disk in the spool: the process dies as under the OOM killer.
      process.stdout.write(JSON.stringify(figures) + "\n", () => process.kill(process.pid, "SIGKILL"));
      await sleep(60_000);
    }
    peak = 0;
  }
  const completing = Date.now();
  for (let device = 0; device < devices; device++) await send({ ...field(device), complete: true });
  while (counts.outputs.length + counts.errors < devices) await sleep(5);
  clearInterval(sampler);
  figures.completeSeconds = (Date.now() - completing) / 1000;
  figures[phase === "resume" ? "rssRiseResumeMiB" : "rssRiseCompleteMiB"] = (peak - baseline) / MiB;
  // Every batch once, byte for byte, and not written twice.
  const received = await report();
  let exact = 0;
  for (let device = 0; device < devices; device++) {
    const expected = createHash("sha256");
    for (let index = 0; index < perDevice; index++) expected.update(fleetPayload(device, index));
    const key = `batches/fleet/telemetry/device-${device}/2026-12-06`;
    const got = received[key];
    if (got && got.bytes === batchKiB * 1024 && got.sha256 === expected.digest("hex") && got.puts === 1) exact++;
  }
  Object.assign(figures, { written: counts.outputs.length, exact, keys: Object.keys(received).length, errors: counts.errors, firstError: counts.firstError });
  await runtime.stop();
  return figures;
}

async function scenario(name, options) {
  const endpoint = await startEndpoint();
  try {
    if (name === "ingest") return await benchIngest(endpoint.endpoint, options);
    if (name === "stream") return await benchStream(endpoint.endpoint, endpoint.report, options);
    if (name === "fleet") return await benchFleet(endpoint.endpoint, endpoint.report, options);
    return await benchOpen(endpoint.endpoint, options);
  } finally {
    await endpoint.stop();
  }
}

/** Runs one scenario in a fresh process (so memory figures never mix), with `options.heapMiB` as its heap's limit if given; resolves with its figures. */
function inChild(name, options) {
  return new Promise((resolve, reject) => {
    const execArgv = ["--expose-gc", ...(options.heapMiB ? [`--max-old-space-size=${options.heapMiB}`] : [])];
    const child = fork(__filename, ["--scenario", name, JSON.stringify(options)], { execArgv, stdio: ["ignore", "pipe", "inherit", "ipc"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    // A run that ends itself with SIGKILL (a crash) has written its figures first.
    const ended = (code, signal) => code === 0 || (signal === "SIGKILL" && options.phase === "open");
    child.once("exit", (code, signal) => (ended(code, signal) ? resolve(JSON.parse(output.trim().split("\n").pop())) : reject(new Error(`batches bench ${name} exited with ${code ?? signal}`))));
  });
}

/**
 * { ingestMsgsPerSec, rssRiseMiB, rssRiseOneBufferMiB, objectBytes, requestsPerBatch, streamSeconds, open: { none, gzip } };
 * options: { ingestMessages, devices, batchMiB, openBatches }.
 */
async function runBatchBench(options = {}) {
  const stream = await inChild("stream", { mebibytes: options.batchMiB });
  const reused = await inChild("stream", { mebibytes: options.batchMiB, fresh: false });
  const ingest = await inChild("ingest", { messages: options.ingestMessages, devices: options.devices });
  // What open batches cost: 100,000 devices with one msg each, over the runtime's own cost of the
  // same msgs (one device, concatenation none: one batch that keeps no bytes).
  const open = {};
  for (const compression of ["none", "gzip"]) {
    const many = await inChild("open", { msgs: options.openBatches, compression });
    const one = await inChild("open", { msgs: options.openBatches, devices: 1, compression, concatenation: "none" });
    open[compression] = { ...many, rssCostMiB: many.rssRiseMiB - one.rssRiseMiB, heapCostMiB: many.heapRiseMiB - one.heapRiseMiB, oneDevice: one };
  }
  return { ...ingest, ...stream, rssRiseOneBufferMiB: reused.rssRiseMiB, open, fleet: await runFleetBench() };
}

/**
 * The fleet rows: 1,000 devices x 1 MiB and 10,000 x 256 KiB open at once, then completed, spool
 * off and on; and with the spool a SIGKILL while the 10,000 are open and the restart's rebuild.
 * Each with Node.js's default heap here and with a gateway's (GATEWAY_HEAP_MIB).
 */
async function runFleetBench(options = {}) {
  const fleets = options.fleets ?? [
    { devices: 1000, batchKiB: 1024 },
    { devices: 10_000, batchKiB: 256 },
  ];
  const rows = [];
  for (const heapMiB of options.heaps ?? [undefined, GATEWAY_HEAP_MIB]) {
    for (const fleet of fleets) {
      for (const spool of [false, true]) {
        rows.push(await inChild("fleet", { ...fleet, spool, heapMiB }));
        // The same msgs into batches that keep no bytes: what the feed, Node-RED (and the spool) cost alone.
        rows.push(await inChild("fleet", { ...fleet, spool, heapMiB, concatenation: "none" }));
      }
    }
    const crashFleet = fleets[fleets.length - 1];
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), "s3-egress-bench-crash-"));
    try {
      const opened = await inChild("fleet", { ...crashFleet, spool: true, heapMiB, phase: "open", userDir });
      rows.push({ ...(await inChild("fleet", { ...crashFleet, spool: true, heapMiB, phase: "resume", userDir, baselineRss: opened.baselineRss })), opened });
    } finally {
      fs.rmSync(userDir, { recursive: true, force: true });
    }
  }
  return rows;
}

module.exports = { runBatchBench, runFleetBench };

if (require.main === module) {
  if (process.argv[2] === "--endpoint") serveEndpoint();
  else if (process.argv[2] === "--scenario") {
    scenario(process.argv[3], JSON.parse(process.argv[4])).then(
      (figures) => {
        process.stdout.write(JSON.stringify(figures) + "\n");
        process.exit(0);
      },
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  } else {
    (process.argv[2] === "--fleet" ? runFleetBench(JSON.parse(process.argv[3] ?? "{}")) : runBatchBench(JSON.parse(process.argv[2] ?? "{}"))).then(
      (figures) => console.log(JSON.stringify(figures, null, 2)),
      (error) => {
        console.error(error);
        process.exit(1);
      },
    );
  }
}
