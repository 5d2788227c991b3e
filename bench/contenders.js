"use strict";
// The three contenders of the messages benchmarks, each in an embedded Node-RED or as a plain loop:
// `start(index, payload)` sends one msg, `finished(index, error, msg)` is called when it ends.
//   node: s3-egress at its defaults (or `concurrency` when given), counted at its output and Catch;
//   peer: node-red-node-aws 0.1.8 "amazon s3 out" as it ships (unbounded), counted at the SDK;
//   raw:  @aws-sdk/client-s3 PutObjectCommand on a default S3Client (its default socket pool).

const { startRuntime } = require("./runtime");

const BUCKET = "bench";
const KEYS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

/** The endpoint's origin: HTTPS (trusted through NODE_EXTRA_CA_CERTS) when `options.https`. */
function origin(options) {
  return `${options.https ? "https" : "http"}://127.0.0.1:${options.port}`;
}

/** Per msg: the fields the s3-egress node reads with its default TypedInputs. */
function egressMsg(index, payload) {
  return { payload, streamGroup: "bench", stream: "telemetry", deviceId: `device-${index % 100}`, batchId: "2026-11-25", messageId: `m${index}`, benchIndex: index };
}

async function nodeContender(options, finished) {
  const flow = [
    { id: "tab", type: "tab", label: "bench" },
    {
      id: "cfg",
      type: "s3-egress-config",
      bucket: BUCKET,
      region: "us-east-1",
      endpoint: origin(options),
      forcePathStyle: true,
      // The checksum setting under test; absent, as a flow saved without it: auto (Content-MD5 for this endpoint).
      ...(options.checksum ? { checksum: options.checksum } : {}),
    },
    { id: "egress", type: "s3-egress", z: "tab", sink: "cfg", ...(options.concurrency ? { concurrency: options.concurrency } : {}), wires: [["sink"]] },
    { id: "failures", type: "catch", z: "tab", scope: ["egress"], uncaught: false, wires: [["sink"]] },
    { id: "sink", type: "comment", z: "tab" },
  ];
  const runtime = await startRuntime(flow, { cfg: KEYS }, { s3EgressMetrics: { enabled: options.metrics !== false } });
  const egress = runtime.node("egress");
  runtime.node("sink").on("input", (msg) => finished(msg.benchIndex, msg.error, msg));
  return { start: (index, payload) => egress.receive(egressMsg(index, payload)), stop: runtime.stop };
}

async function peerContender(options, finished) {
  // The peer configures the global aws-sdk v2 object; point it at the local endpoint first.
  const AWS = require(require.resolve("aws-sdk", { paths: [require.resolve("node-red-node-aws/package.json")] }));
  AWS.config.update({ endpoint: origin(options), s3ForcePathStyle: true });
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
    endpoint: origin(options),
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

/** p50 and p99 of the latencies (ms), sorting them in place. */
function latencyQuantiles(latencies) {
  latencies.sort((a, b) => a - b);
  const quantile = (q) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] : NaN);
  return { p50Ms: quantile(0.5), p99Ms: quantile(0.99) };
}

/** Runs one measurement process: stops its contender, prints the result as one JSON line for bench/run.js, and exits. */
function runMeasurement(measure) {
  measure().then(
    async ({ contender, result }) => {
      await contender.stop();
      process.stdout.write(JSON.stringify(result) + "\n");
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}

module.exports = { CONTENDERS, latencyQuantiles, runMeasurement };
