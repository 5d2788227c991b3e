#!/usr/bin/env node
// Parquet vs NDJSON for the same batch (issue 25): object size, ingest msgs/s into the open batch,
// RSS rise, and the time DuckDB needs for an aggregate over one column of the object. Each format
// runs in a fresh process (`node bench/parquet.js` after `npm run build`; `npm run bench` runs it
// too). The batch is written through the Batches library to a sink that keeps the object's bytes in
// a file (multipart parts in order), so DuckDB reads exactly what S3 would hold.
"use strict";

const { fork } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const NODES = path.join(__dirname, "..", "nodes", "lib");
const MSGS = Number(process.env.PARQUET_BENCH_MSGS || 1_000_000);
const FORMATS = ["newline", "parquet"];
const FLEET_DEVICES = 1000;
/** Readings of about 16 KiB of JSON per device, its batch's completing msg one more. */
const FLEET_ROWS = 64;

/** One telemetry reading: about 150 bytes of JSON. */
function reading(index) {
  return { device: `robot-${index % 50}`, seq: index, temperature: 20 + (index % 1000) / 100, vibration: (index * 7919) % 10007 / 10007, state: index % 17 === 0 ? "alarm" : "run", ok: index % 3 !== 0 };
}

async function measure(concatenation, file) {
  const { S3Sink } = require(path.join(NODES, "s3", "client.js"));
  const { Writer } = require(path.join(NODES, "delivery", "writer.js"));
  const { FixedLimit } = require(path.join(NODES, "delivery", "concurrency.js"));
  const { Batches } = require(path.join(NODES, "delivery", "batches.js"));
  const out = fs.openSync(file, "w");
  // Stores nothing remotely: the object's bytes go to `file`, parts in order (one batch, parts sent one at a time).
  class FileSink extends S3Sink {
    async putObject(_key, body) {
      fs.writeSync(out, body);
      return { etag: '"bench"' };
    }
    async createMultipartUpload() {
      return "bench-upload";
    }
    async uploadPart(_key, _id, _number, body) {
      fs.writeSync(out, body);
      return { etag: '"part"' };
    }
    async completeMultipartUpload() {
      return { etag: '"complete"' };
    }
  }
  const sink = new FileSink({ bucket: "bench", region: "us-east-1", endpoint: "http://127.0.0.1:9", forcePathStyle: true, credentials: { accessKeyId: "-", secretAccessKey: "-" } });
  const settings = { path: "", concatenation, idleTimeoutMs: 0, compression: "none", parquetCodec: "snappy", maxOpenBatches: 10, atOpenLimit: "reject", maxBatchMemoryBytes: 32 * 1024 * 1024 };
  const batches = new Batches(sink, new Writer(new FixedLimit(1)), settings, { completed: () => undefined, failed: () => undefined, unusable: () => undefined });
  const fields = { streamGroup: "bench", stream: "telemetry", deviceId: "robot-1", batchId: "b1" };
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const started = process.hrtime.bigint();
  let completed;
  for (let index = 0; index < MSGS; index++) {
    const complete = index === MSGS - 1;
    const admission = batches.accept({ fields, payload: reading(index), contentType: undefined, complete, arrival: Date.now(), msgid: `m${index}` });
    if (admission.ready) await admission.ready;
    if (admission.completed) completed = admission.completed;
    if ((index & 0xffff) === 0) rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }
  await completed;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  fs.closeSync(out);
  await batches.close();
  sink.destroy();
  return { concatenation, msgs: MSGS, objectBytes: fs.statSync(file).size, ingestMsgsPerSec: Math.round(MSGS / seconds), rssRiseMiB: (rssPeak - rssBefore) / 1024 / 1024 };
}

/**
 * 1,000 open batches of 1 MiB of JSON each (64 readings of 16 KiB), interleaved, then completed:
 * the peak RSS rise over the start, with Batch memory at its default (32 MiB, the rest spilled to
 * disk) and the objects counted, not kept.
 */
async function measureFleet(concatenation, directory) {
  const { S3Sink } = require(path.join(NODES, "s3", "client.js"));
  const { Writer } = require(path.join(NODES, "delivery", "writer.js"));
  const { FixedLimit } = require(path.join(NODES, "delivery", "concurrency.js"));
  const { Batches } = require(path.join(NODES, "delivery", "batches.js"));
  let bytes = 0;
  let objects = 0;
  class CountingSink extends S3Sink {
    async putObject(_key, body) {
      bytes += body.length;
      objects++;
      return { etag: '"bench"' };
    }
    async createMultipartUpload() {
      return "bench-upload";
    }
    async uploadPart(_key, _id, _number, body) {
      bytes += body.length;
      return { etag: '"part"' };
    }
    async completeMultipartUpload() {
      objects++;
      return { etag: '"complete"' };
    }
  }
  const sink = new CountingSink({ bucket: "bench", region: "us-east-1", endpoint: "http://127.0.0.1:9", forcePathStyle: true, credentials: { accessKeyId: "-", secretAccessKey: "-" } });
  const settings = { path: "", concatenation, idleTimeoutMs: 0, compression: "none", parquetCodec: "snappy", maxOpenBatches: FLEET_DEVICES, atOpenLimit: "reject", maxBatchMemoryBytes: 32 * 1024 * 1024, spillDirectory: directory };
  const batches = new Batches(sink, new Writer(new FixedLimit(16)), settings, { completed: () => undefined, failed: () => undefined, unusable: () => undefined });
  const text = "x".repeat(16 * 1024 - 64);
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 5);
  const started = process.hrtime.bigint();
  const completions = [];
  for (let row = 0; row <= FLEET_ROWS; row++) {
    for (let device = 0; device < FLEET_DEVICES; device++) {
      const fields = { streamGroup: "bench", stream: "telemetry", deviceId: `device-${device}`, batchId: "b1" };
      const complete = row === FLEET_ROWS;
      const admission = await batches.accept({ fields, payload: { device, row, text }, contentType: undefined, complete, arrival: Date.now(), msgid: `m${row}` });
      if (admission.ready) await admission.ready;
      if (admission.completed) completions.push(admission.completed);
    }
  }
  await Promise.all(completions);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(sampler);
  await batches.close();
  sink.destroy();
  return { concatenation, devices: FLEET_DEVICES, objects, objectMiB: bytes / 1024 / 1024, seconds, rssRiseMiB: (rssPeak - rssBefore) / 1024 / 1024 };
}

/** Median of three runs of the aggregate over the object (a fresh DuckDB each, so no cache helps). */
async function queryMs(concatenation, file) {
  const { DuckDBInstance } = require("@duckdb/node-api");
  const source = concatenation === "parquet" ? `read_parquet('${file}')` : `read_json('${file}', format = 'newline_delimited')`;
  const times = [];
  let answer;
  for (let round = 0; round < 3; round++) {
    const instance = await DuckDBInstance.create(":memory:");
    const connection = await instance.connect();
    const started = process.hrtime.bigint();
    answer = (await connection.runAndReadAll(`SELECT avg(temperature) AS mean, max(temperature) AS top FROM ${source}`)).getRowObjectsJson()[0];
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    connection.closeSync();
    instance.closeSync();
  }
  times.sort((a, b) => a - b);
  return { queryMs: times[1], answer };
}

function inChild(concatenation, file, mode = "--measure") {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [mode, concatenation, file], { execArgv: ["--expose-gc"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
    child.once("message", resolve);
    child.once("exit", (code) => code !== 0 && reject(new Error(`${concatenation} bench exited with ${code}`)));
  });
}

async function runParquetBench() {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "s3-egress-parquet-bench-"));
  try {
    const rows = [];
    for (const concatenation of FORMATS) {
      const file = path.join(directory, `batch.${concatenation}`);
      const measured = await inChild(concatenation, file);
      rows.push({ ...measured, ...(await queryMs(concatenation, file)) });
    }
    const fleets = [];
    for (const concatenation of FORMATS) {
      const spill = fs.mkdtempSync(path.join(directory, "spill-"));
      fleets.push(await inChild(concatenation, spill, "--fleet"));
    }
    return { rows, fleets };
  } finally {
    fs.rmSync(directory, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--measure" || process.argv[2] === "--fleet") {
  (process.argv[2] === "--fleet" ? measureFleet : measure)(process.argv[3], process.argv[4]).then((result) => process.send(result, () => process.exit(0)));
} else if (require.main === module) {
  runParquetBench().then(({ rows, fleets }) => {
    for (const row of rows) {
      console.log(`${row.concatenation.padEnd(8)} ${row.msgs} msgs: object ${(row.objectBytes / 1024 / 1024).toFixed(1)} MiB, ingest ${row.ingestMsgsPerSec} msgs/s, RSS rise ${row.rssRiseMiB.toFixed(1)} MiB, DuckDB avg/max(temperature) ${row.queryMs.toFixed(0)} ms ${JSON.stringify(row.answer)}`);
    }
    for (const fleet of fleets) {
      console.log(`${fleet.concatenation.padEnd(8)} ${fleet.devices} open batches x 1 MiB of JSON: ${fleet.objects} objects, ${fleet.objectMiB.toFixed(1)} MiB, ${fleet.seconds.toFixed(1)} s, RSS rise ${fleet.rssRiseMiB.toFixed(1)} MiB`);
    }
  });
}

module.exports = { runParquetBench };
