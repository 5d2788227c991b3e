"use strict";
// One messages measurement, run by bench/run.js in a fresh process so memory figures do not mix:
//   node bench/messages.js '{"contender":"node|raw|peer","port":N,"payloadBytes":256,"concurrency":16,"warmupMs":1000,"measureMs":4000}'
// ("metrics":false runs the node with its metrics turned off, to measure what they cost.)
// Keeps `concurrency` writes in flight, counts those finished inside the measuring window and
// prints one JSON line: msgs/s, p50/p99 write latency (ms), CPU time of this process per msg (µs,
// which holds when other processes share the cores), peak RSS (bytes), errors.

const { performance } = require("node:perf_hooks");
const { startRuntime } = require("./runtime");

const BUCKET = "bench";
const KEYS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

/** Per msg: the fields the s3-egress node reads with its default TypedInputs. */
function egressMsg(index, payload) {
  return { payload, streamGroup: "bench", stream: "telemetry", deviceId: `device-${index % 100}`, batchId: "2026-11-25", messageId: `m${index}`, benchIndex: index };
}

async function nodeContender(options, finished) {
  const flow = [
    { id: "tab", type: "tab", label: "bench" },
    { id: "cfg", type: "s3-egress-config", bucket: BUCKET, region: "us-east-1", endpoint: `http://127.0.0.1:${options.port}`, forcePathStyle: true },
    { id: "egress", type: "s3-egress", z: "tab", sink: "cfg", concurrency: options.concurrency, wires: [["sink"]] },
    { id: "failures", type: "catch", z: "tab", scope: ["egress"], uncaught: false, wires: [["sink"]] },
    { id: "sink", type: "comment", z: "tab" },
  ];
  const runtime = await startRuntime(flow, { cfg: KEYS }, { s3EgressMetrics: { enabled: options.metrics !== false } });
  const egress = runtime.node("egress");
  runtime.node("sink").on("input", (msg) => finished(msg.benchIndex, msg.error));
  return { start: (index, payload) => egress.receive(egressMsg(index, payload)), stop: runtime.stop };
}

async function peerContender(options, finished) {
  // The peer configures the global aws-sdk v2 object; point it at the local endpoint first.
  const AWS = require(require.resolve("aws-sdk", { paths: [require.resolve("node-red-node-aws/package.json")] }));
  AWS.config.update({ endpoint: `http://127.0.0.1:${options.port}`, s3ForcePathStyle: true });
  // The peer has no output and reports nothing per msg: observe each request's end in the SDK.
  AWS.events.on("complete", (response) => {
    const key = response.request.params.Key;
    if (key) finished(Number(key.slice(key.lastIndexOf("m") + 1)), response.error);
  });
  const flow = [
    { id: "tab", type: "tab", label: "bench" },
    { id: "awscfg", type: "aws-config" },
    { id: "peer", type: "amazon s3 out", z: "tab", aws: "awscfg", bucket: BUCKET, region: "us-east-1", filename: "", localFilename: "" },
    { id: "sink", type: "comment", z: "tab" },
  ];
  const runtime = await startRuntime(flow, { awscfg: { accesskeyid: KEYS.accessKeyId, secretaccesskey: KEYS.secretAccessKey } });
  const peer = runtime.node("peer");
  // It checks its credentials with a bucket listing before it takes msgs.
  while (!peer._inputCallback && !peer._inputCallbacks) await new Promise((resolve) => setTimeout(resolve, 10));
  return {
    start: (index, payload) => peer.receive({ payload, filename: `messages/bench/telemetry/device-${index % 100}/2026-11-25/m${index}` }),
    stop: runtime.stop,
  };
}

async function rawContender(options, finished) {
  const { S3Client, PutObjectCommand } = require("@aws-sdk/client-s3");
  const client = new S3Client({
    region: "us-east-1",
    endpoint: `http://127.0.0.1:${options.port}`,
    forcePathStyle: true,
    credentials: KEYS,
    // Default checksums (CRC32 on PutObject): both local endpoints accept them.
  });
  return {
    start: (index, payload) => {
      client
        .send(
          // The object the node writes for the same msg: key, Content-Type and metadata.
          new PutObjectCommand({
            Bucket: BUCKET,
            Key: `messages/bench/telemetry/device-${index % 100}/2026-11-25/m${index}`,
            Body: payload,
            ContentType: "application/octet-stream",
            Metadata: { "stream-group-name": "bench", "stream-name": "telemetry", "device-id": `device-${index % 100}`, "batch-id": "2026-11-25", "message-id": `m${index}` },
          }),
        )
        .then(() => finished(index), (error) => finished(index, error));
    },
    stop: async () => client.destroy(),
  };
}

const CONTENDERS = { node: nodeContender, raw: rawContender, peer: peerContender };

async function main() {
  const options = { concurrency: 32, warmupMs: 1000, measureMs: 4000, payloadBytes: 256, ...JSON.parse(process.argv[2]) };
  const payload = Buffer.alloc(options.payloadBytes, "x");
  const starts = [];
  const latencies = [];
  let next = 0;
  let done = 0;
  let errors = 0;
  let firstError;
  let windowStart = Infinity;
  let windowEnd = Infinity;
  let countedInWindow = 0;
  let stopping = false;
  let drained;
  const allDrained = new Promise((resolve) => (drained = resolve));

  const finished = (index, error) => {
    if (starts[index] === undefined) return;
    const now = performance.now();
    done++;
    if (error) {
      errors++;
      firstError ??= String(error.message || error);
    } else if (starts[index] >= windowStart && now <= windowEnd) {
      countedInWindow++;
      latencies.push(now - starts[index]);
    }
    starts[index] = undefined;
    if (!stopping) launch();
    else if (done === next) drained();
  };
  const contender = await CONTENDERS[options.contender](options, finished);
  const launch = () => {
    const index = next++;
    starts[index] = performance.now();
    contender.start(index, payload);
  };

  const begin = performance.now();
  windowStart = begin + options.warmupMs;
  windowEnd = windowStart + options.measureMs;
  for (let i = 0; i < options.concurrency; i++) launch();
  await new Promise((resolve) => setTimeout(resolve, windowStart - performance.now()));
  const cpuAtStart = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, windowEnd - performance.now()));
  const cpu = process.cpuUsage(cpuAtStart);
  stopping = true;
  if (done < next) await Promise.race([allDrained, new Promise((resolve) => setTimeout(resolve, 30_000))]);
  const peakRss = process.resourceUsage().maxRSS * 1024;
  latencies.sort((a, b) => a - b);
  const quantile = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : NaN);
  const result = {
    msgsPerSec: countedInWindow / (options.measureMs / 1000),
    msgs: countedInWindow,
    p50Ms: quantile(0.5),
    p99Ms: quantile(0.99),
    cpuMicrosPerMsg: (cpu.user + cpu.system) / countedInWindow,
    peakRss,
    errors,
    firstError,
  };
  await contender.stop();
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
