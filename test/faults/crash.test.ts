import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { assertBucketHolds, egressSpoolDir, range, scenarioMsg, spoolSegments } from "../support/deliveries";
import { faultContext } from "../support/fault-context";
import { installWithFlow, Runtime } from "../support/runtime-process";
import { scanSegment } from "../../nodes/lib/delivery/spool";

/** Records in the spool of the node "egress", counted from its segment files. */
function spooledRecords(userDir: string): number {
  return spoolSegments(userDir).reduce((sum, name) => sum + scanSegment(readFileSync(path.join(egressSpoolDir(userDir), name))).records.length, 0);
}

describe("faults: the runtime process killed with SIGKILL mid-load, restarted with the spool", function () {
  this.timeout(120_000);
  const context = faultContext();

  it("every msg the killed runtime accepted is written after the restart; resent msgs make no strays", async () => {
    const { s3, proxy, userDir } = context;
    installWithFlow(userDir, proxy.endpoint, { concurrency: 4, maxQueue: 20 });
    const total = 600;
    proxy.script([{ action: { kind: "latency", ms: 25 } }]);
    const first = new Runtime(userDir, range(total));
    await first.until(() => first.done.size >= 250);
    // Kill it while it writes: some objects are in the bucket, many accepted msgs only in the spool.
    for (let tries = 0; tries < 600 && (await s3.keys()).length < 40; tries++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await first.kill("SIGKILL"), null);
    const accepted = new Set(first.done);
    const inBucketAtKill = (await s3.keys()).length;
    assert.ok(inBucketAtKill >= 40 && inBucketAtKill < accepted.size, `the spool held accepted msgs at the kill: ${inBucketAtKill} objects, ${accepted.size} accepted`);

    // Upstream redelivers what was never acknowledged (as MQTT QoS 1 or Kafka would).
    proxy.script([]);
    const resend = range(total).filter((index) => !accepted.has(index));
    const second = new Runtime(userDir, resend);
    await second.until(() => resend.every((index) => second.done.has(index)));
    for (let tries = 0; tries < 600 && spoolSegments(userDir).length > 0; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await second.kill("SIGTERM");
    assert.deepEqual([...first.failed, ...second.failed], []);
    assert.deepEqual(spoolSegments(userDir), [], "the spool is empty");
    assert.ok(!existsSync(path.join(egressSpoolDir(userDir), "damaged")), "a SIGKILL leaves no damaged records behind");
    assert.equal(await assertBucketHolds(s3, range(total).map((index) => scenarioMsg(index, { bytes: 2048 }))), total);
  });

  it("Batch Completions: every msg the killed runtime acknowledged is in its batch after the restart, in arrival order", async () => {
    const { s3, proxy, userDir } = context;
    installWithFlow(userDir, proxy.endpoint, { input: "batches", concatenation: "newline", idleTimeout: 1, concurrency: 4 });
    const text = { S3_EGRESS_CHILD_TEXT: "1" };
    const first = new Runtime(userDir, range(1000), text);
    await first.until(() => first.done.size >= 300);
    assert.equal(await first.kill("SIGKILL"), null);
    const accepted = [...first.done];
    assert.deepEqual(await s3.keys(), [], "no batch was complete at the kill");

    // Nothing is resent: the batches are rebuilt from the spool and completed by the idle timeout.
    const second = new Runtime(userDir, [], text);
    for (let tries = 0; tries < 600 && (await s3.keys()).length < 5; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
    await second.kill("SIGTERM");
    assert.deepEqual([...first.failed, ...second.failed], []);
    const keys = range(5).map((device) => `batches/faults/telemetry/dev-${device}/b1`);
    assert.deepEqual(await s3.keys(), keys);
    for (const [device, key] of keys.entries()) {
      const lines = (await s3.get(key)).body.toString().split("\n");
      const indices = lines.map((line) => Number(line.replace("reading ", "")));
      assert.ok(indices.every((index, position) => index % 5 === device && (position === 0 || index > indices[position - 1])), `${key}: this device's readings in arrival order`);
      const missing = accepted.filter((index) => index % 5 === device && !indices.includes(index));
      assert.deepEqual(missing, [], `${key}: every acknowledged reading`);
    }
  });

  it("S3 down (503) while 200 msgs arrive, killed, S3 back, restarted at the default settings: all 200 written, as a transient failure never ends a spooled msg", async () => {
    const { s3, proxy, userDir } = context;
    installWithFlow(userDir, proxy.endpoint, {});
    proxy.script([{ action: { kind: "error", status: 503, code: "ServiceUnavailable" } }]);
    const downSince = Date.now();
    const first = new Runtime(userDir, range(200));
    // Accepted: each msg's record is durable in the spool (its done() waits for the write).
    for (let tries = 0; tries < 600 && spooledRecords(userDir) < 200; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(spooledRecords(userDir), 200);
    // S3 stays down for 3 s: the writes keep failing and retrying until the kill.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 3000 - (Date.now() - downSince))));
    assert.equal(await first.kill("SIGKILL"), null);
    assert.deepEqual(first.failed, []);
    assert.equal(first.done.size, 0, "no msg was done: none was written");
    assert.ok(proxy.seen.length > 0 && proxy.seen.every((request) => request.outcome === "503 ServiceUnavailable"), "nothing was written before the kill");

    proxy.script([]);
    const second = new Runtime(userDir, []);
    for (let tries = 0; tries < 600 && (spoolSegments(userDir).length > 0 || (await s3.keys()).length < 200); tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await second.kill("SIGTERM");
    assert.deepEqual(second.failed, []);
    assert.deepEqual(spoolSegments(userDir), [], "the spool is empty");
    assert.equal(await assertBucketHolds(s3, range(200).map((index) => scenarioMsg(index, { bytes: 2048 }))), 200);
  });
});
