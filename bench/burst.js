"use strict";
// The burst measurement, run by bench/run.js in a fresh process:
//   node bench/burst.js '{"port":N,"msgs":100000,"payloadBytes":256,"baseline":false}'
// An upstream node sends all msgs at once (one synchronous loop of node.send, each msg with its
// own payload, as a function node would); waits until every msg has come out of the s3-egress
// node or its Catch node; prints peak RSS and the time to drain.

const { performance } = require("node:perf_hooks");
const { startRuntime } = require("./runtime");

/**
 * What Node-RED itself costs for the same burst (`baseline: true`): a function node in place of
 * s3-egress that passes as many msgs on as the node's queue holds and refuses the rest to the
 * Catch node with one shared error, as the node does, but writes nothing.
 */
function refusingFunctionNode() {
  const { maxMessages } = require("../nodes/lib/delivery/writer").DEFAULT_BOUNDS;
  return {
    type: "function",
    initialize: 'context.set("passed", 0); context.set("full", Object.assign(new Error("queue full"), { name: "QueueFullError" }));',
    func: `const passed = context.get("passed") + 1; context.set("passed", passed); if (passed <= ${maxMessages}) return msg; node.error(context.get("full"), msg); return null;`,
    outputs: 1,
  };
}

async function main() {
  // The node's defaults unless `egress` says otherwise: queue bounds, refusal when full, concurrency;
  // `baseline: true` measures Node-RED alone (see refusingFunctionNode).
  const options = { msgs: 100_000, payloadBytes: 256, egress: {}, ...JSON.parse(process.argv[2]) };
  const egress = options.baseline ? refusingFunctionNode() : { type: "s3-egress", sink: "cfg", ...options.egress };
  const flow = [
    { id: "tab", type: "tab", label: "bench" },
    { id: "source", type: "comment", z: "tab", wires: [["egress"]] },
    { id: "cfg", type: "s3-egress-config", bucket: "bench", region: "us-east-1", endpoint: `http://127.0.0.1:${options.port}`, forcePathStyle: true },
    { id: "egress", z: "tab", ...egress, wires: [["sink"]] },
    { id: "failures", type: "catch", z: "tab", scope: ["egress"], uncaught: false, wires: [["sink"]] },
    { id: "sink", type: "comment", z: "tab" },
  ];
  const runtime = await startRuntime(flow, { cfg: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  const source = runtime.node("source");
  const baseRss = process.memoryUsage().rss;
  let finished = 0;
  let written = 0;
  let refused = 0;
  let errors = 0;
  let firstError;
  let drained;
  const allDrained = new Promise((resolve) => (drained = resolve));
  runtime.node("sink").on("input", (msg) => {
    if (!msg.error) written++;
    else if (msg.error.message.startsWith("QueueFullError")) refused++;
    else {
      errors++;
      firstError ??= msg.error.message;
    }
    if (++finished === options.msgs) drained();
  });
  const template = Buffer.alloc(options.payloadBytes, "x");
  const begin = performance.now();
  for (let index = 0; index < options.msgs; index++) {
    source.send({
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
    written,
    refused,
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
