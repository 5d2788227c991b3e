import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { MiB, patternBytes as chunk } from "../support/bytes";
import { EgressFlow, type Msg } from "../support/flow";
import { inspectedS3 } from "../support/inspector";
import { S3_UNDER_TEST } from "../support/s3";

const WORKSPACE = "69f09b3f-ec0d-4b9e-a5ec-87150b935296";
const robot = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "2023-12-19" };
const ROBOT_KEY = "batches/group-a/telemetry/robot-125/2023-12-19";

interface BatchResult {
  bucket: string;
  key: string;
  etag: string;
  bytes: number;
  messages: number;
}

function resultOf(msg: Msg): BatchResult {
  return msg.s3 as BatchResult;
}


describe(`s3-egress, Batch Completions route, against ${S3_UNDER_TEST}`, function () {
  const context = inspectedS3();
  let flow: EgressFlow;

  it("keeps interleaved devices and streams apart, in arrival order, and writes each batch once with the batch metadata", async () => {
    const { s3 } = context;
    flow = await EgressFlow.load(s3.endpoint, { input: "batches", path: "plant-1" });
    const devices: (typeof robot & { batchSliceId?: string; workspaceId?: string })[] = [
      { ...robot, deviceId: "robot-1", batchSliceId: "logs", workspaceId: WORKSPACE.toUpperCase() },
      { ...robot, deviceId: "robot-2" },
      { ...robot, deviceId: "robot-1", stream: "events" },
    ];
    const expected = devices.map(() => [] as string[]);
    for (let round = 0; round < 5; round++) {
      for (const [index, device] of devices.entries()) {
        const payload = `${device.deviceId}/${device.stream}#${round};`;
        expected[index].push(payload);
        // A later message naming another slice id does not change the batch's.
        const held = await flow.join({ ...device, batchSliceId: round === 0 ? device.batchSliceId : "other", payload });
        assert.equal(held.s3, undefined);
      }
    }
    assert.deepEqual(await s3.keys(), [], "nothing is written before a batch completes");
    assert.equal(flow.outputs.length, 0, "joining msgs are not sent on");

    const results: BatchResult[] = [];
    for (const device of devices) results.push(resultOf(await flow.write({ ...device, complete: true })));
    const keys = ["robot-1/2023-12-19", "robot-2/2023-12-19", "robot-1/2023-12-19"].map(
      (tail, index) => `plant-1/batches/group-a/${index === 2 ? "events" : "telemetry"}/${tail}`,
    );
    assert.deepEqual(await s3.keys(), [...keys].sort());
    for (const [index, key] of keys.entries()) {
      const stored = await s3.get(key);
      assert.equal(stored.body.toString(), expected[index].join(""));
      assert.equal(stored.contentType, "text/plain; charset=utf-8");
      const { bucket, etag, bytes, messages } = results[index];
      assert.deepEqual({ bucket, key: results[index].key, bytes, messages }, { bucket: "test-bucket", key, bytes: stored.body.length, messages: 5 });
      assert.equal((results[index] as BatchResult & { totals: { written: number } }).totals.written, index + 1, "one write per batch");
      assert.match(etag, /^"[0-9a-f]{32}"$/);
    }
    assert.deepEqual((await s3.get(keys[0])).metadata, {
      "stream-group-name": "group-a",
      "stream-name": "telemetry",
      "device-id": "robot-1",
      "batch-id": "2023-12-19",
      "batch-slice-id": "logs",
      "workspace-id": WORKSPACE,
    });
    assert.deepEqual(Object.keys((await s3.get(keys[1])).metadata).sort(), ["batch-id", "device-id", "stream-group-name", "stream-name"]);
    await flow.status((status) => status.fill === "green" && status.text === "ok (3) · 0 open, 0 B");
  });

  describe("concatenation", () => {
    it("plain: payloads back to back, whatever their type", async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "plain" });
      await flow.join({ ...robot, payload: Buffer.from([0, 1, 2]) });
      await flow.join({ ...robot, payload: "žluť" });
      await flow.join({ ...robot, payload: { a: 1 } });
      await flow.join({ ...robot, payload: 42 });
      const output = await flow.write({ ...robot, payload: true, complete: true });
      const stored = await s3.get(ROBOT_KEY);
      assert.deepEqual(stored.body, Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from('žluť{"a":1}42true')]));
      assert.equal(stored.contentType, "application/octet-stream", "the first message's type");
      assert.equal(resultOf(output).messages, 5);
    });

    it("newline: one \\n between messages; JSON objects make NDJSON", async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "newline" });
      await flow.join({ ...robot, payload: { t: 1 } });
      await flow.join({ ...robot, payload: { t: 2 } });
      await flow.write({ ...robot, payload: { t: 3 }, complete: true });
      const stored = await s3.get(ROBOT_KEY);
      assert.equal(stored.body.toString(), '{"t":1}\n{"t":2}\n{"t":3}');
      assert.equal(stored.contentType, "application/x-ndjson");
    });

    it("newline with msg.contentType on the first message", async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "newline" });
      await flow.join({ ...robot, payload: "a,b", contentType: "text/csv" });
      await flow.join({ ...robot, payload: "1,2", contentType: "text/ignored" });
      await flow.write({ ...robot, complete: true });
      const stored = await s3.get(ROBOT_KEY);
      assert.equal(stored.body.toString(), "a,b\n1,2");
      assert.equal(stored.contentType, "text/csv");
    });

    it("none: an empty object with the batch metadata", async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "none" });
      await flow.join({ ...robot, payload: Buffer.alloc(MiB) });
      await flow.join({ ...robot, payload: "x" });
      await flow.status((status) => status.text === "ok (0) · 1 open, 0 B");
      const output = await flow.write({ ...robot, payload: "y", complete: true });
      const stored = await s3.get(ROBOT_KEY);
      assert.equal(stored.body.length, 0);
      assert.equal(stored.metadata["device-id"], "robot-125");
      assert.equal(resultOf(output).bytes, 0);
      assert.equal(resultOf(output).messages, 3);
    });
  });

  describe("a concatenation this version does not know (a typo, or a newer version's) is refused, never written as plain", () => {
    for (const concatenation of ["orc", "Newline"]) {
      it(`concatenation "${concatenation}": said at start, every msg fails naming the property and the value, nothing is written`, async () => {
        const { s3 } = context;
        flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation });
        const named = new RegExp(`concatenation "${concatenation}" is not a value this version knows \\(plain, none, newline, parquet\\)`);
        assert.ok(flow.logged("error").some((entry) => entry.id === "egress" && /^cannot start: /.test(entry.msg) && named.test(entry.msg)), JSON.stringify(flow.logged("error")));
        assert.match((await flow.fail({ ...robot, payload: { t: 1 } })).message, named);
        assert.match((await flow.fail({ ...robot, payload: { t: 2 }, complete: true })).message, named);
        assert.deepEqual(await s3.keys(), []);
      });
    }
  });

  describe("completion triggers", () => {
    it("msg.complete without a payload completes the batch without adding to it", async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches" });
      await flow.join({ ...robot, payload: "only" });
      const output = await flow.write({ ...robot, complete: true });
      assert.equal((await s3.get(ROBOT_KEY)).body.toString(), "only");
      assert.equal(resultOf(output).messages, 1);
    });

    it("a new batch id for the same stream and device completes the open batch, reported by a msg of its own", async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches" });
      await flow.join({ ...robot, batchId: "b1", payload: "1a" });
      await flow.join({ ...robot, deviceId: "robot-2", batchId: "b1", payload: "other device" });
      await flow.join({ ...robot, batchId: "b1", payload: "1b" });
      await flow.join({ ...robot, batchId: "b2", payload: "2a" });
      const reported = await flow.output((msg) => msg.completedBy === "new-batch-id");
      const key = "batches/group-a/telemetry/robot-125/b1";
      assert.equal(reported.topic, key);
      assert.equal(resultOf(reported).key, key);
      assert.equal(resultOf(reported).messages, 2);
      assert.equal((await s3.get(key)).body.toString(), "1a1b");
      assert.deepEqual(await s3.keys(), [key], "b2 and the other device's batch stay open");
      await flow.write({ ...robot, batchId: "b2", complete: true });
      assert.equal((await s3.get("batches/group-a/telemetry/robot-125/b2")).body.toString(), "2a");
    });

    it("the idle timeout completes a batch that gets no message", async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches", idleTimeout: 0.2 });
      await flow.join({ ...robot, payload: "a" });
      await flow.join({ ...robot, payload: "b" });
      const reported = await flow.output((msg) => msg.completedBy === "idle-timeout");
      assert.equal(resultOf(reported).messages, 2);
      assert.equal((await s3.get(ROBOT_KEY)).body.toString(), "ab");
    });

    it("on close (redeploy, shutdown) open batches are completed, not dropped, and said once in the log, not as a warning", async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "newline" });
      await flow.join({ ...robot, payload: "a" });
      await flow.join({ ...robot, deviceId: "robot-2", payload: "b" });
      await flow.join({ ...robot, payload: "c" });
      // The test helper stops watching the log before it closes the nodes: watch the node's own warn() and log().
      const said: string[] = [];
      for (const level of ["warn", "log"] as const) {
        const original = flow.egress[level].bind(flow.egress);
        flow.egress[level] = (text: unknown) => {
          said.push(`${level}: ${String(text)}`);
          original(text);
        };
      }
      await EgressFlow.unload();
      assert.equal((await s3.get(ROBOT_KEY)).body.toString(), "a\nc");
      assert.equal((await s3.get("batches/group-a/telemetry/robot-2/2023-12-19")).body.toString(), "b");
      assert.deepEqual(said, ["log: completing 2 open batch(es) on close (no spool keeps them)"]);
    });
  });

  it("streams a batch larger than a part as a multipart upload, byte-identical, showing open batches and bytes held", async () => {
    const { s3, inspector } = context;
    flow = await EgressFlow.load(inspector.endpoint, { input: "batches" });
    const chunks = Array.from({ length: 20 }, (_, index) => chunk(index, MiB));
    for (const payload of chunks.slice(0, 19)) await flow.join({ ...robot, payload });
    assert.equal(inspector.matching("POST", "uploads").length, 1, "the upload starts while the batch is open");
    await flow.status((status) => /· 1 open, \d+\.\d MiB$/.test(String(status.text)));
    const output = await flow.write({ ...robot, payload: chunks[19], complete: true });
    const stored = await s3.get(ROBOT_KEY);
    assert.ok(stored.body.equals(Buffer.concat(chunks)), "byte-identical");
    assert.equal(resultOf(output).bytes, 20 * MiB);
    assert.equal(resultOf(output).messages, 20);
    assert.equal((output.s3 as { totals: { written: number } }).totals.written, 1, "the upload's requests count as one object written");
    assert.deepEqual(
      inspector.matching("PUT", "partNumber").map((request) => new URLSearchParams(request.url.split("?")[1]).get("partNumber")).sort(),
      ["1", "2", "3"],
      "8 MiB parts and the rest",
    );
    assert.equal(inspector.matching("POST", "uploadId").length, 1, "one CompleteMultipartUpload");
    assert.equal(stored.metadata["batch-id"], "2023-12-19");
    assert.equal(stored.metadata["message-id"], undefined);
  });

  it("gzip: stores the batch compressed under the same key with Content-Encoding: gzip", async () => {
    const { s3 } = context;
    flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "newline", compression: "gzip" });
    const lines: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const payload = { seq: i, temperature: 20 + (i % 7), note: "x".repeat(i % 50) };
      lines.push(JSON.stringify(payload));
      await flow.join({ ...robot, payload });
    }
    const output = await flow.write({ ...robot, complete: true });
    const stored = await s3.get(ROBOT_KEY);
    assert.equal(stored.contentEncoding, "gzip");
    assert.equal(stored.contentType, "application/x-ndjson");
    assert.equal(gunzipSync(stored.body).toString(), lines.join("\n"));
    assert.equal(resultOf(output).bytes, stored.body.length);
    assert.ok(stored.body.length < lines.join("\n").length / 4, "compressed");
  });

  describe("bad input fails that msg alone, names what is wrong, loses nothing", () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["missing device id", { deviceId: undefined }, /deviceId \(msg\.deviceId\) is missing/],
      ["slash in the batch id", { batchId: "a/b" }, /batchId \(msg\.batchId\) may not contain "\/"/],
      ["undefined payload", { payload: undefined }, /msg\.payload is undefined/],
      ["metadata over 2 KB (a long batch slice id is not part of the key)", { batchId: "new", batchSliceId: "s".repeat(2100) }, /metadata is \d+ bytes, over the S3 limit of 2048 \(2 KB\)/],
      ["complete for a batch that is not open", { batchId: "never-opened", payload: undefined, complete: true }, /msg\.complete is true, but batch batches\/group-a\/telemetry\/robot-125\/never-opened has no open messages/],
      ["a payload that cannot be serialised", { payload: { toJSON: () => { throw new Error("boom"); } } }, /msg\.payload cannot be serialised as JSON: boom/],
      ["an invalid workspace id on a new batch", { batchId: "new", workspaceId: "ws-1" }, /workspaceId \(msg\.workspaceId\) "ws-1" is not a GUID/],
    ];
    for (const [name, change, pattern] of cases) {
      it(name, async () => {
        const { s3 } = context;
        flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "newline" });
        await flow.join({ ...robot, payload: "first" });
        const error = await flow.fail({ ...robot, payload: "bad", ...change });
        assert.match(error.message, pattern);
        assert.deepEqual(await s3.keys(), [], "nothing written, the open batch not completed");
        await flow.write({ ...robot, payload: "last", complete: true });
        assert.equal((await s3.get(ROBOT_KEY)).body.toString(), "first\nlast", "the open batch lost nothing");
      });
    }
  });
});
