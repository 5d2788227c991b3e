import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import helper from "node-red-node-test-helper";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { encodeRecord } from "../../nodes/lib/delivery/spool";
import { egressSpoolDir, range, scenarioMsg, sendAll } from "../support/deliveries";
import { faultContext } from "../support/fault-context";
import { EgressFlow } from "../support/flow";
import { LocalS3 } from "../support/s3";

/** GET /s3-egress/metrics on the admin API, read by a Prometheus text parser: series of the node "egress" by name, labels and value. */
async function scrape(): Promise<{ name: string; labels: Record<string, string>; value: number }[]> {
  const response = await helper.request().get("/s3-egress/metrics").expect(200).expect("Content-Type", /^text\/plain;.*version=0\.0\.4/);
  return parsePrometheusTextFormat(response.text).flatMap((family) =>
    family.metrics
      .filter((sample) => sample.value !== undefined && sample.labels?.node_id === "egress")
      .map((sample) => {
        const { node_id: _id, node_name: _name, flow: _flow, bucket: _bucket, ...labels } = sample.labels!;
        return { name: family.name, labels, value: Number(sample.value) };
      }),
  );
}

function valueOf(series: Awaited<ReturnType<typeof scrape>>, name: string, labels: Record<string, string> = {}): number | undefined {
  return series.find((sample) => sample.name === name && JSON.stringify(sample.labels) === JSON.stringify(labels))?.value;
}

describe("faults: metrics after a known sequence (spooled restart, writes, retries, refusals, a permanent error)", function () {
  const context = faultContext();

  it("counts what happened, and the objects written match the bucket", async () => {
    const { s3, proxy, userDir } = context;
    // A restart finds two records in the spool: the node writes them first.
    const resumed = range(2).map((index) => scenarioMsg(index, { bytes: 100 }));
    mkdirSync(egressSpoolDir(userDir), { recursive: true });
    writeFileSync(
      path.join(egressSpoolDir(userDir), "000000000001.seg"),
      Buffer.concat(resumed.map((item, index) => encodeRecord({ msgid: `r${index}`, key: item.key, contentType: "application/octet-stream", metadata: item.metadata, headers: {}, body: item.body }))),
    );
    const flow = await EgressFlow.load(proxy.endpoint, { name: "plant sink", spool: true, queueFull: "reject", concurrency: 1, maxQueue: 1 });
    await flow.output((msg) => msg._msgid === "r1");

    // Three writes, one of them after two SlowDown answers.
    const written = range(3).map((index) => scenarioMsg(10 + index, { bytes: 200 }));
    await flow.write(written[0].msg);
    await flow.write(written[1].msg);
    proxy.script([{ action: { kind: "error", status: 503, code: "SlowDown" }, times: 2 }]);
    const retried = await flow.write(written[2].msg);
    assert.equal((retried.s3 as { attempts: number }).attempts, 3);

    // Refused: a msg without a device id, and two msgs while the one before holds the only queue place.
    await flow.fail({ ...scenarioMsg(20).msg, deviceId: undefined });
    proxy.script([{ action: { kind: "latency", ms: 300 } }]);
    const burst = await sendAll(flow, range(3).map((index) => scenarioMsg(30 + index, { bytes: 300 })));
    assert.equal(burst.written.length, 1);
    assert.deepEqual(burst.failed.map(({ error }) => error.message.split(":")[0]), ["QueueFullError", "QueueFullError"]);

    // A permanent error: red status with its code, until the next write succeeds.
    proxy.script([{ action: { kind: "error", status: 403, code: "AccessDenied" }, times: 1 }]);
    await flow.fail(scenarioMsg(40).msg);
    await flow.status((status) => status.fill === "red" && status.text === "error: AccessDenied");
    proxy.reset();

    const series = await scrape();
    const objects = await s3.keys();
    assert.equal(objects.length, 2 + 3 + 1);
    assert.equal(valueOf(series, "s3_egress_objects_written_total"), objects.length);
    assert.equal(valueOf(series, "s3_egress_bytes_written_total"), 2 * 100 + 3 * 200 + 300);
    assert.equal(valueOf(series, "s3_egress_retries_total", { reason: "SlowDown" }), 2);
    assert.equal(valueOf(series, "s3_egress_msgs_failed_total", { class: "input" }), 1);
    assert.equal(valueOf(series, "s3_egress_msgs_failed_total", { class: "queue_full" }), 2);
    assert.equal(valueOf(series, "s3_egress_msgs_failed_total", { class: "permanent", code: "AccessDenied" }), 1);
    assert.equal(valueOf(series, "s3_egress_msgs_failed_total", { class: "gave_up" }), 0);
    assert.equal(valueOf(series, "s3_egress_spool_records"), 0);
    assert.equal(valueOf(series, "s3_egress_spool_bytes"), 0);
    assert.equal(valueOf(series, "s3_egress_queue_msgs"), 0);
    assert.equal(valueOf(series, "s3_egress_writes_in_flight"), 0);
    assert.equal(valueOf(series, "s3_egress_concurrency_limit"), 1);
    assert.ok(valueOf(series, "s3_egress_last_error_timestamp_seconds", { code: "AccessDenied" })! > 0);
    const labels = parsePrometheusTextFormat((await helper.request().get("/s3-egress/metrics")).text)[0].metrics[0].labels;
    assert.deepEqual(labels, { node_id: "egress", node_name: "plant sink", flow: "test", bucket: "test-bucket" });

    await flow.write(scenarioMsg(50).msg);
    await flow.status((status) => status.fill === "green");
  });
});

describe("faults: write-only health signal", function () {
  const context = faultContext();

  it("turns yellow when msgs wait without a write for the configured time, with PutObject the only request", async () => {
    const { proxy, userDir } = context;
    helper.settings({ userDir, s3EgressMetrics: { stallMinutes: 0.02 } } as Parameters<typeof helper.settings>[0]);
    proxy.script([{ action: { kind: "latency", ms: 4_000 } }]);
    const flow = await EgressFlow.load(proxy.endpoint, { concurrency: 1 });
    const writing = flow.write(scenarioMsg(1).msg);
    const stalled = await flow.status((status) => status.fill === "yellow" && /^no write for \d+ s while 1 msgs wait$/.test(String(status.text)));
    assert.equal(stalled.shape, "ring");
    await writing;
    await flow.status((status) => status.fill === "green");
    assert.deepEqual([...new Set(proxy.seen.map((request) => request.method))], ["PUT"]);
  });
});

describe("faults: metrics of the Batch Completions route", function () {
  let s3: LocalS3;

  before(async () => {
    s3 = await LocalS3.start();
  });
  after(async () => {
    await EgressFlow.unload();
    await s3.stop();
  });

  it("shows the open batch and its bytes while msgs join, and one object of the batch's bytes once it completes", async () => {
    const flow = await EgressFlow.load(s3.endpoint, { input: "batches" });
    const device = { streamGroup: "plant", stream: "telemetry", deviceId: "robot-1", batchId: "2026-11-25" };
    for (const payload of ["a1;", "b22;", "c333;"]) await flow.join({ ...device, payload });
    const open = await scrape();
    assert.equal(valueOf(open, "s3_egress_open_batches"), 1);
    assert.ok(valueOf(open, "s3_egress_batch_buffered_bytes")! >= "a1;b22;c333;".length);
    assert.equal(valueOf(open, "s3_egress_batch_spilled_bytes"), 0, "well within Batch memory: nothing on disk");
    assert.equal(valueOf(open, "s3_egress_batch_memory_budget_bytes"), 32 * 1024 * 1024, "the default Batch memory");
    assert.equal(valueOf(open, "s3_egress_objects_written_total"), 0);

    const completed = await flow.write({ ...device, complete: true });
    const written = await scrape();
    assert.equal(valueOf(written, "s3_egress_open_batches"), 0);
    assert.equal(valueOf(written, "s3_egress_objects_written_total"), (await s3.keys()).length);
    assert.equal(valueOf(written, "s3_egress_bytes_written_total"), (completed.s3 as { bytes: number }).bytes);
    assert.equal(valueOf(written, "s3_egress_bytes_written_total"), (await s3.get((await s3.keys())[0])).body.length);
  });
});
