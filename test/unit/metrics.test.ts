import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { InputError } from "../../nodes/lib/core/errors";
import { QueueFullError, WriterClosedError } from "../../nodes/lib/delivery/writer";
import { EgressMetrics, type LiveGauges } from "../../nodes/lib/metrics/egress-metrics";
import { healthOf, stallDuration } from "../../nodes/lib/metrics/health";
import { EgressMonitor, HISTORY_SECONDS, type MonitoredNode, type SidebarUpdate } from "../../nodes/lib/metrics/monitor";
import { exposition } from "../../nodes/lib/metrics/prometheus";
import { S3Error } from "../../nodes/lib/s3/errors";

const IDLE: LiveGauges = {
  writesInFlight: 0,
  concurrencyLimit: 16,
  queuedMsgs: 0,
  queuedBytes: 0,
  spoolRecords: 0,
  spoolBytes: 0,
  spoolOldestAt: undefined,
  openBatches: 0,
  bufferedBytes: 0,
  spilledBytes: 0,
  batchMemoryBudget: 0,
  waitingMsgs: 0,
};
const denied = () => S3Error.fromResponse(403, "AccessDenied", "Access Denied");
const slowDown = () => S3Error.fromResponse(503, "SlowDown", "Please reduce your request rate.");

/** The families of an exposition by name, as a Prometheus text parser reads them. */
function parsed(text: string) {
  return new Map(parsePrometheusTextFormat(text).map((family) => [family.name, family]));
}

describe("metrics model", () => {
  it("counts objects, bytes, retries by reason and failures by class and S3 code", () => {
    const metrics = new EgressMetrics();
    metrics.written(100, 1_000);
    metrics.written(50, 2_000);
    metrics.retried(slowDown(), 2_500);
    metrics.retried(slowDown(), 2_600);
    metrics.failed(new InputError("msg.deviceId", "is missing"), 3_000);
    metrics.failed(new QueueFullError({ maxMessages: 1, maxBytes: 1 }, { messages: 1, bytes: 1 }), 3_100);
    metrics.failed(denied(), 3_200);
    metrics.failed(S3Error.fromResponse(500, "InternalError", "retries exhausted"), 3_300);
    metrics.failed(new WriterClosedError(), 3_400);
    metrics.failed(new Error("disk full"), 3_500);

    assert.equal(metrics.objectsWritten, 2);
    assert.equal(metrics.bytesWritten, 150);
    assert.equal(metrics.lastWriteAt, 2_000);
    assert.deepEqual([...metrics.retries], [["SlowDown", 2]]);
    assert.equal(metrics.retriesTotal, 2);
    const failures = Object.fromEntries(Object.entries(metrics.failures).map(([name, byCode]) => [name, Object.fromEntries(byCode)]));
    assert.deepEqual(failures, {
      input: { "": 1 },
      queue_full: { "": 1 },
      permanent: { AccessDenied: 1 },
      gave_up: { InternalError: 1 },
      closed: { "": 1 },
      other: { "": 1 },
    });
    assert.deepEqual(metrics.lastError, { code: "Error", message: "disk full", at: 3_500 });
  });

  it("is failing after a permanent S3 error until the next write, and stalled when msgs wait without a write", () => {
    const metrics = new EgressMetrics();
    const stallMs = 60_000;
    assert.deepEqual(healthOf(metrics, stallMs, 0), { state: "ok" });
    metrics.failed(denied(), 10);
    assert.deepEqual(healthOf(metrics, stallMs, 20), { state: "failing", code: "AccessDenied" });
    metrics.written(1, 30);
    assert.deepEqual(healthOf(metrics, stallMs, 40), { state: "ok" });

    metrics.observeWaiting(5, 100_000);
    assert.deepEqual(healthOf(metrics, stallMs, 159_999), { state: "ok" });
    assert.deepEqual(healthOf(metrics, stallMs, 160_000), { state: "stalled", sinceMs: 60_000 });
    // A write while msgs wait restarts the clock; nothing waiting ends the stall.
    metrics.written(1, 170_000);
    assert.deepEqual(healthOf(metrics, stallMs, 200_000), { state: "ok" });
    metrics.observeWaiting(0, 300_000);
    assert.deepEqual(healthOf(metrics, stallMs, 900_000), { state: "ok" });
    assert.equal(stallDuration(45_500), "45 s");
    assert.equal(stallDuration(5 * 60_000 + 59_000), "5 min");
  });
});

describe("Prometheus exposition", () => {
  it("lists every family once with each node's series, labelled with node id, name, flow and bucket, as a parser reads it", () => {
    const first = new EgressMetrics();
    first.written(1024, 1_700_000_000_000);
    first.requestSucceeded(3);
    first.requestSucceeded(30);
    first.requestSucceeded(30_000);
    first.retried(slowDown());
    first.failed(denied(), 1_700_000_001_000);
    const second = new EgressMetrics();
    const now = 1_700_000_010_000;
    const text = exposition(
      [
        { labels: { id: "a1", name: 'line "A"\\ north\n', flow: "Plant", bucket: "iot-data" }, metrics: first, gauges: { ...IDLE, queuedMsgs: 3, queuedBytes: 300, spoolRecords: 2, spoolBytes: 64, spoolOldestAt: now - 2_500 } },
        { labels: { id: "b2", name: "", flow: "Plant", bucket: "archive" }, metrics: second, gauges: { ...IDLE, openBatches: 4, bufferedBytes: 4096, spilledBytes: 8192, batchMemoryBudget: 32 * 1024 * 1024 } },
      ],
      now,
    );
    const families = parsed(text);
    const valueOf = (name: string, labels: Record<string, string>) => {
      const family = families.get(name);
      assert.ok(family, `${name} is exposed`);
      const matching = family.metrics.filter((sample) => Object.entries(labels).every(([label, value]) => sample.labels?.[label] === value));
      assert.equal(matching.length, 1, `one ${name} series for ${JSON.stringify(labels)}`);
      return Number(matching[0].value);
    };

    assert.deepEqual(families.get("s3_egress_objects_written_total")?.metrics[0].labels, { node_id: "a1", node_name: 'line "A"\\ north\n', flow: "Plant", bucket: "iot-data" });
    assert.equal(families.get("s3_egress_objects_written_total")?.type, "COUNTER");
    assert.equal(valueOf("s3_egress_objects_written_total", { node_id: "a1" }), 1);
    assert.equal(valueOf("s3_egress_objects_written_total", { node_id: "b2" }), 0);
    assert.equal(valueOf("s3_egress_bytes_written_total", { node_id: "a1" }), 1024);
    assert.equal(valueOf("s3_egress_retries_total", { node_id: "a1", reason: "SlowDown" }), 1);
    assert.equal(valueOf("s3_egress_msgs_failed_total", { node_id: "a1", class: "permanent", code: "AccessDenied" }), 1);
    for (const failureClass of ["input", "queue_full", "gave_up", "closed", "other"]) {
      assert.equal(valueOf("s3_egress_msgs_failed_total", { node_id: "b2", class: failureClass }), 0, failureClass);
    }
    assert.equal(families.get("s3_egress_queue_msgs")?.type, "GAUGE");
    assert.equal(valueOf("s3_egress_queue_msgs", { node_id: "a1" }), 3);
    assert.equal(valueOf("s3_egress_queue_bytes", { node_id: "a1" }), 300);
    assert.equal(valueOf("s3_egress_concurrency_limit", { node_id: "a1" }), 16);
    assert.equal(valueOf("s3_egress_spool_records", { node_id: "a1" }), 2);
    assert.equal(valueOf("s3_egress_spool_bytes", { node_id: "a1" }), 64);
    assert.equal(valueOf("s3_egress_spool_oldest_age_seconds", { node_id: "a1" }), 2.5);
    assert.equal(valueOf("s3_egress_spool_oldest_age_seconds", { node_id: "b2" }), 0);
    assert.equal(valueOf("s3_egress_open_batches", { node_id: "b2" }), 4);
    assert.equal(valueOf("s3_egress_batch_buffered_bytes", { node_id: "b2" }), 4096);
    assert.equal(valueOf("s3_egress_batch_spilled_bytes", { node_id: "b2" }), 8192);
    assert.equal(valueOf("s3_egress_batch_memory_budget_bytes", { node_id: "b2" }), 32 * 1024 * 1024);
    assert.equal(valueOf("s3_egress_last_write_timestamp_seconds", { node_id: "a1" }), 1_700_000_000);
    assert.equal(valueOf("s3_egress_last_error_timestamp_seconds", { node_id: "a1", code: "AccessDenied" }), 1_700_000_001);
    // Never written, never failed: no timestamp series rather than a misleading 0.
    assert.equal(families.get("s3_egress_last_write_timestamp_seconds")?.metrics.length, 1);
  });

  it("exposes request durations as a cumulative histogram", () => {
    const metrics = new EgressMetrics();
    for (const milliseconds of [3, 30, 30, 30_000]) metrics.requestSucceeded(milliseconds);
    const histogram = parsed(exposition([{ labels: { id: "a1", name: "", flow: "f", bucket: "b" }, metrics, gauges: IDLE }])).get("s3_egress_request_duration_seconds");
    assert.equal(histogram?.type, "HISTOGRAM");
    const [sample] = histogram!.metrics;
    // The +Inf bucket is the count. (This parser drops _sum and _count of a labelled histogram; the sum is checked on the model.)
    assert.deepEqual(sample.buckets, { "0.005": "1", "0.01": "1", "0.025": "1", "0.05": "3", "0.1": "3", "0.25": "3", "0.5": "3", "1": "3", "2.5": "3", "5": "3", "10": "3", "+Inf": "4" });
    assert.equal(metrics.requestDurations.count, 4);
    assert.equal(metrics.requestDurations.sum, 30.063);
  });
});

describe("monitor (sidebar updates, stall watch)", () => {
  function watch(metrics: EgressMetrics, gauges: () => LiveGauges, healthChanges: string[]): MonitoredNode {
    return { labels: { id: "n1", name: "sink", flow: "Plant", bucket: "iot-data" }, metrics, gauges, healthChanged: () => healthChanges.push("changed") };
  }

  it("publishes a node's objects per second and counts at most once a tick, and nothing while it is unchanged", () => {
    let now = 1_000_000;
    const published: { topic: string; data: SidebarUpdate | null; retain: boolean }[] = [];
    const monitor = new EgressMonitor((topic, data, retain) => published.push({ topic, data, retain }), 60_000, () => now);
    const metrics = new EgressMetrics();
    monitor.add(watch(metrics, () => ({ ...IDLE, queuedMsgs: 1 }), []));
    try {
      metrics.written(10, now);
      metrics.written(10, now);
      now += 1000;
      monitor.tick();
      metrics.written(10, now);
      now += 1000;
      monitor.tick();
      assert.equal(published.length, 2);
      const latest = published[1];
      assert.equal(latest.topic, "s3-egress/metrics/n1");
      assert.equal(latest.retain, true);
      assert.equal(latest.data?.objectsPerSecond.length, HISTORY_SECONDS);
      assert.deepEqual(latest.data?.objectsPerSecond.slice(-3), [0, 2, 1]);
      assert.equal(latest.data?.objectsWritten, 3);
      assert.equal(latest.data?.queuedMsgs, 1);
      assert.equal(latest.data?.at, now);

      // The history moves on while it holds writes; once it is all zeros, nothing changes and nothing is sent.
      for (let second = 0; second < HISTORY_SECONDS + 5; second++) {
        now += 1000;
        monitor.tick();
      }
      const sent = published.length;
      assert.ok(published[sent - 1].data?.objectsPerSecond.every((count) => count === 0));
      now += 1000;
      monitor.tick();
      assert.equal(published.length, sent);
    } finally {
      monitor.remove("n1");
    }
    assert.deepEqual(published.at(-1), { topic: "s3-egress/metrics/n1", data: null, retain: false });
  });

  it("tells the node when its health changes: stalled once msgs wait too long, and again as the stall grows by a shown unit", () => {
    let now = 1_000_000;
    const changes: string[] = [];
    const monitor = new EgressMonitor(() => undefined, 3_000, () => now);
    const metrics = new EgressMetrics();
    let waiting = 2;
    monitor.add(watch(metrics, () => ({ ...IDLE, waitingMsgs: waiting }), changes));
    try {
      monitor.tick();
      now = 1_002_000;
      monitor.tick();
      assert.equal(changes.length, 0);
      now = 1_003_000;
      monitor.tick();
      assert.deepEqual(healthOf(metrics, 3_000, now), { state: "stalled", sinceMs: 3_000 });
      assert.equal(changes.length, 1);
      now = 1_004_000;
      monitor.tick();
      assert.equal(changes.length, 2, "3 s → 4 s");
      waiting = 0;
      now = 1_005_000;
      monitor.tick();
      assert.deepEqual(healthOf(metrics, 3_000, now), { state: "ok" });
      assert.equal(changes.length, 3);
    } finally {
      monitor.remove("n1");
    }
  });
});
