import assert from "node:assert/strict";
import { MiB, patternBytes } from "../support/bytes";
import { range, spoolSegments } from "../support/deliveries";
import { faultContext } from "../support/fault-context";
import { EgressFlow } from "../support/flow";


describe("faults: open batches kept in the spool across a redeploy, Batch Completions route", function () {
  const context = faultContext();
  let flow: EgressFlow;
  const segments = () => spoolSegments(context.userDir);

  it("a redeploy mid-batch neither completes nor truncates the open batches: they are rebuilt from the spool and completed whole", async () => {
    const { s3 } = context;
    flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "newline", spool: true });
    const devices = ["d1", "d2"];
    const msg = (deviceId: string, index: number) => ({
      streamGroup: "g",
      stream: "s",
      deviceId,
      batchId: "b1",
      payload: index % 2 === 0 ? `line ${index} of ${deviceId}` : { index, deviceId },
    });
    for (const index of range(5)) for (const deviceId of devices) flow.egress.receive(msg(deviceId, index));
    await flow.status((status) => / 10 spooled\)/.test(String(status.text)));
    assert.deepEqual(await s3.keys(), [], "nothing written before the redeploy");

    await flow.redeploy({ name: "redeployed" });
    assert.deepEqual(await s3.keys(), [], "the redeploy completed no batch");
    for (const index of range(4).map((step) => step + 5)) for (const deviceId of devices) flow.egress.receive(msg(deviceId, index));
    const outputs = await Promise.all(devices.map((deviceId) => flow.write({ ...msg(deviceId, 9), complete: true })));

    for (const [position, deviceId] of devices.entries()) {
      const expected = range(10)
        .map((index) => (index % 2 === 0 ? `line ${index} of ${deviceId}` : JSON.stringify({ index, deviceId })))
        .join("\n");
      const stored = await s3.get(`batches/g/s/${deviceId}/b1`);
      assert.equal(stored.body.toString("utf8"), expected);
      assert.equal(stored.contentType, "text/plain; charset=utf-8");
      assert.equal((outputs[position].s3 as { messages: number }).messages, 10);
    }
    assert.deepEqual(await s3.keys(), ["batches/g/s/d1/b1", "batches/g/s/d2/b1"]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(segments(), [], "every record released once its batch was written");
  });

  it("a node down for longer than the idle timeout: its rebuilt batches get the idle timeout again from the restart, so the device's next msgs join them", async () => {
    const { s3 } = context;
    const settings = { input: "batches", concatenation: "newline", spool: true, idleTimeout: 1 };
    flow = await EgressFlow.load(s3.endpoint, settings);
    const robot = { streamGroup: "g", stream: "s", deviceId: "robot", batchId: "b1" };
    for (const index of range(3)) await flow.join({ ...robot, payload: `line ${index}` });
    await EgressFlow.unload();
    // Down for 1.5 s (more than the idle timeout), and the device is back half a second after the restart.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    flow = await EgressFlow.load(s3.endpoint, settings);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const index of [3, 4]) await flow.join({ ...robot, payload: `line ${index}` });
    await flow.write({ ...robot, payload: "line 5", complete: true });
    const key = "batches/g/s/robot/b1";
    assert.deepEqual(await s3.keys(), [key], "one object, no continuation key");
    assert.equal((await s3.get(key)).body.toString(), range(6).map((index) => `line ${index}`).join("\n"));
  });

  it("a batch streaming as a multipart upload: the redeploy aborts the upload, the new node uploads the whole batch again", async () => {
    const { s3, proxy } = context;
    flow = await EgressFlow.load(proxy.endpoint, { input: "batches", concatenation: "plain", spool: true });
    const robot = { streamGroup: "g", stream: "s", deviceId: "robot", batchId: "big" };
    const chunks = range(12).map((index) => patternBytes(index, MiB));
    for (const payload of chunks.slice(0, 9)) await flow.join({ ...robot, payload });
    await flow.redeploy({ name: "redeployed" });
    for (const payload of chunks.slice(9)) await flow.join({ ...robot, payload });
    const output = await flow.write({ ...robot, complete: true });
    const key = "batches/g/s/robot/big";
    assert.ok((await s3.get(key)).body.equals(Buffer.concat(chunks)));
    assert.equal((output.s3 as { messages: number }).messages, 12);
    assert.deepEqual(await s3.keys(), [key]);
    const requests = proxy.requestsFor(key);
    assert.equal(requests.filter((request) => request.method === "DELETE").length, 1, "the first upload was aborted");
    assert.equal(requests.filter((request) => request.method === "POST").length, 3, "two creates, one complete");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(segments(), []);
  });

  it("a msg that completed its batch, sent again because its answer was lost (before and after a graceful restart): answered by the batch that holds it, as already written, with no continuation key", async () => {
    const { s3, proxy } = context;
    proxy.conditionalWrites = true;
    const settings = { input: "batches", concatenation: "newline", spool: true };
    flow = await EgressFlow.load(proxy.endpoint, settings);
    const robot = { streamGroup: "g", stream: "s", deviceId: "robot", batchId: "b1" };
    const completing = { ...robot, messageId: "m3", payload: "line 3", complete: true };
    for (const index of range(3)) await flow.join({ ...robot, messageId: `m${index}`, payload: `line ${index}` });
    const key = "batches/g/s/robot/b1";
    const written = async (msg: Record<string, unknown>) => (await flow.write(msg)).s3 as { key: string; alreadyWritten?: boolean; messages: number };
    const first = await written(completing);
    assert.deepEqual([first.key, first.alreadyWritten, first.messages], [key, undefined, 4]);

    const again = await written(completing);
    assert.deepEqual([again.key, again.alreadyWritten, again.messages], [key, true, 4], "sent again: the batch's write");
    await flow.redeploy({ name: "redeployed" });
    const afterRestart = await written(completing);
    assert.deepEqual([afterRestart.key, afterRestart.alreadyWritten, afterRestart.messages], [key, true, 4], "sent again after the restart: the batch's write, kept beside the spool");
    assert.deepEqual(await s3.keys(), [key], "one object");
    assert.equal((await s3.get(key)).body.toString(), range(4).map((index) => `line ${index}`).join("\n"));

    // Another msg (another id, other bytes, or no id to know it by) completing alone under the key is a batch of its own.
    await flow.write({ ...completing, messageId: "m4" });
    await flow.write({ ...completing, payload: "line 3, corrected" });
    await flow.write({ ...completing, messageId: undefined });
    assert.deepEqual(await s3.keys(), [key, `${key}~2`, `${key}~3`, `${key}~4`]);
  });
});
