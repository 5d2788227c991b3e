import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import helper from "node-red-node-test-helper";
import { encodeRecord } from "../../nodes/lib/delivery/spool";
import { assertBucketHolds, egressSpoolDir, range, scenarioMsg, sendAll, spoolSegments, type ScenarioMsg } from "../support/deliveries";
import { faultContext } from "../support/fault-context";
import { EgressFlow } from "../support/flow";


/** The spooled record the node would have made for a scenario msg (its object headers are empty). */
function recordOf(item: ScenarioMsg, msgid: string): Buffer {
  return encodeRecord({ msgid, key: item.key, contentType: "application/octet-stream", metadata: item.metadata, headers: {}, body: item.body });
}

describe("faults: spool, redeploy and close, Messages route", function () {
  const context = faultContext();
  let flow: EgressFlow;
  const spoolDir = () => egressSpoolDir(context.userDir);
  const segments = () => spoolSegments(context.userDir);

  it("a burst over the queue limit spills to the spool: all written, most of them read back from disk, spool empty afterwards", async () => {
    context.proxy.script([{ action: { kind: "latency", ms: 15 } }]);
    flow = await EgressFlow.load(context.proxy.endpoint, { spool: true, concurrency: 4, maxQueue: 10 });
    const items = range(300).map((index) => scenarioMsg(index));
    const { written, failed } = await sendAll(flow, items);
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(await assertBucketHolds(context.s3, written), 300);
    const slim = flow.outputs.filter((msg) => msg.payload === undefined);
    assert.ok(slim.length > 200, `most msgs went through the spool, ${slim.length} did`);
    await flow.status((status) => /spooled\)$/.test(String(status.text)));
    await flow.status((status) => status.fill === "green" && status.text === "ok (300)");
    assert.deepEqual(segments(), []);
  });

  it("resumes a spool found at start; damaged and truncated records are reported to Catch and skipped one by one", async () => {
    const items = range(6).map((index) => scenarioMsg(index));
    const damaged = recordOf(items[2], "r2");
    damaged[damaged.length - 3] ^= 0x55;
    mkdirSync(spoolDir(), { recursive: true });
    writeFileSync(path.join(spoolDir(), "000000000001.seg"), Buffer.concat([recordOf(items[0], "r0"), recordOf(items[1], "r1"), damaged, recordOf(items[3], "r3")]));
    writeFileSync(path.join(spoolDir(), "000000000002.seg"), Buffer.concat([recordOf(items[4], "r4"), recordOf(items[5], "r5").subarray(0, 40)]));
    flow = await EgressFlow.load(context.proxy.endpoint, { spool: true });
    await flow.status((status) => status.fill === "green" && status.text === "ok (4)");
    assert.equal(await assertBucketHolds(context.s3, [items[0], items[1], items[3], items[4]]), 4);
    assert.deepEqual(flow.outputs.map((msg) => msg._msgid).sort(), ["r0", "r1", "r3", "r4"]);
    assert.deepEqual(
      flow.errors.map((error) => error.message.replace(/\/.*\/(\d+\.seg)/, "$1")),
      [
        `spool record skipped: 000000000001.seg at byte ${recordOf(items[0], "r0").length * 2}: checksum mismatch; ${damaged.length} bytes skipped`,
        `spool record skipped: 000000000002.seg at byte ${recordOf(items[4], "r4").length}: truncated: ${recordOf(items[5], "r5").length - 12} bytes announced, 28 present; 40 bytes skipped`,
      ],
    );
    assert.deepEqual(readdirSync(path.join(spoolDir(), "damaged")).sort(), ["000000000001.seg", "000000000002.seg"]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(segments(), []);
  });

  it("redeploy during load with the spool: what the old node had not written is written by the new one, nothing lost", async () => {
    context.proxy.script([{ action: { kind: "latency", ms: 20 } }]);
    flow = await EgressFlow.load(context.proxy.endpoint, { spool: true, concurrency: 2, maxQueue: 50 });
    const first = range(150).map((index) => scenarioMsg(index));
    const firstSent = sendAll(flow, first);
    while (flow.outputs.length < 20) await new Promise((resolve) => setTimeout(resolve, 10));
    await flow.redeploy({ name: "redeployed" });
    const second = range(150).map((index) => scenarioMsg(150 + index));
    const [a, b] = await Promise.all([firstSent, sendAll(flow, second)]);
    assert.equal(a.failed.length + b.failed.length, 0);
    assert.equal(await assertBucketHolds(context.s3, [...first, ...second]), 300);
    assert.deepEqual(segments(), []);
  });

  it("redeploy during load without the spool: writes in flight finish, the rest fail to Catch by msg, none silently dropped", async () => {
    helper.settings({ userDir: context.userDir, s3EgressCloseTimeout: 300 } as Parameters<typeof helper.settings>[0]);
    context.proxy.script([{ action: { kind: "latency", ms: 50 } }]);
    flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 2 });
    const items = range(120).map((index) => scenarioMsg(index));
    const sending = sendAll(flow, items);
    while (flow.outputs.length < 10) await new Promise((resolve) => setTimeout(resolve, 10));
    await flow.redeploy({ name: "redeployed" });
    const { written, failed } = await sending;
    assert.ok(failed.length > 0 && written.length > 10, `${written.length} written, ${failed.length} failed`);
    assert.equal(written.length + failed.length, 120);
    for (const { error } of failed) assert.match(error.message, /the node closed \(redeploy or shutdown\) before the write finished/);
    assert.equal(await assertBucketHolds(context.s3, written), written.length);
  });

  it("a full disk (ENOSPC) while spooling: those msgs fail to Catch naming the spool and the reason, leave no file behind, and later msgs are spooled and written", async () => {
    flow = await EgressFlow.load(context.proxy.endpoint, { spool: true });
    const items = range(6).map((index) => scenarioMsg(index));
    // The first msg opens the spool (which clears temporary files) and takes segment 1.
    await flow.write(items[0].msg);
    // Segments 2-4 are written through /dev/full, where every write fails with ENOSPC.
    const fullSegments = [2, 3, 4].map((sequence) => path.join(spoolDir(), `${String(sequence).padStart(12, "0")}.tmp`));
    for (const file of fullSegments) symlinkSync("/dev/full", file);
    for (const item of items.slice(1, 4)) {
      await assert.rejects(flow.write(item.msg), (error: { message: string; msg: { error?: { code?: string } } }) => {
        assert.equal(error.message, `SpoolWriteError: cannot store the msg in the spool in ${spoolDir()}: ENOSPC: no space left on device, write; msg not accepted`);
        assert.equal(error.msg.error?.code, "ENOSPC", "msg.error.code for a Switch node after Catch");
        return true;
      });
    }
    assert.deepEqual(fullSegments.filter((file) => existsSync(file)), [], "no partial file left to fill the disk further");
    assert.deepEqual(readdirSync(spoolDir()).filter((name) => name.endsWith(".tmp")), []);
    // Space again: the node kept working.
    await flow.write(items[4].msg);
    await flow.write(items[5].msg);
    assert.equal(await assertBucketHolds(context.s3, [items[0], items[4], items[5]]), 3);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(segments(), []);
  });
});
