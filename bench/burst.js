"use strict";
// The burst measurement, run by bench/run.js in a fresh process:
//   node bench/burst.js '{"port":N,"msgs":100000,"payloadBytes":256}'
// Delivers all msgs to the s3-egress node at once (one synchronous loop, each msg with its own
// payload) and waits until every one has come out; prints peak RSS and the time to drain.

const { performance } = require("node:perf_hooks");
const { startRuntime } = require("./runtime");

async function main() {
  const options = { msgs: 100_000, payloadBytes: 256, concurrency: 16, ...JSON.parse(process.argv[2]) };
  const flow = [
    { id: "tab", type: "tab", label: "bench" },
    { id: "cfg", type: "s3-egress-config", bucket: "bench", region: "us-east-1", endpoint: `http://127.0.0.1:${options.port}`, forcePathStyle: true },
    { id: "egress", type: "s3-egress", z: "tab", sink: "cfg", concurrency: options.concurrency, wires: [["sink"]] },
    { id: "failures", type: "catch", z: "tab", scope: ["egress"], uncaught: false, wires: [["sink"]] },
    { id: "sink", type: "comment", z: "tab" },
  ];
  const runtime = await startRuntime(flow, { cfg: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  const egress = runtime.node("egress");
  const baseRss = process.memoryUsage().rss;
  let finished = 0;
  let errors = 0;
  let firstError;
  let drained;
  const allDrained = new Promise((resolve) => (drained = resolve));
  runtime.node("sink").on("input", (msg) => {
    if (msg.error) {
      errors++;
      firstError ??= msg.error.message;
    }
    if (++finished === options.msgs) drained();
  });
  const template = Buffer.alloc(options.payloadBytes, "x");
  const begin = performance.now();
  for (let index = 0; index < options.msgs; index++) {
    egress.receive({
      payload: Buffer.from(template),
      streamGroup: "bench",
      stream: "burst",
      deviceId: `device-${index % 100}`,
      batchId: "2026-11-25",
      messageId: `m${index}`,
    });
  }
  const delivered = performance.now() - begin;
  const limit = setTimeout(() => drained(), 300_000);
  await allDrained;
  clearTimeout(limit);
  const result = {
    msgs: options.msgs,
    finished,
    errors,
    firstError,
    deliverMs: delivered,
    drainMs: performance.now() - begin,
    baseRss,
    peakRss: process.resourceUsage().maxRSS * 1024,
  };
  await runtime.stop();
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
