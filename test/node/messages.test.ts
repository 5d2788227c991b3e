import assert from "node:assert/strict";
import helper from "node-red-node-test-helper";
import { ADAPTIVE_LIMITS } from "../../nodes/lib/delivery/concurrency";
import { configNode, EgressFlow, egressNode } from "../support/flow";
import { CREDENTIALS, LocalS3, S3_UNDER_TEST, TEST_BUCKET } from "../support/s3";

const device = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "2023-12-19", messageId: "m00767" };
const WORKSPACE = "69f09b3f-ec0d-4b9e-a5ec-87150b935296";

describe(`s3-egress, Messages route, against ${S3_UNDER_TEST}`, function () {
  let s3: LocalS3;
  let flow: EgressFlow;

  before(async () => {
    s3 = await LocalS3.start();
  });
  after(async () => {
    await s3.stop();
  });
  afterEach(async () => {
    await EgressFlow.unload();
    await s3.clear();
  });

  it("writes one object with the seed's key, bytes, Content-Type and metadata, and reports it on msg.s3", async () => {
    flow = await EgressFlow.load(s3.endpoint, { path: "/plant-1/raw/" });
    const output = await flow.write({ ...device, batchSliceId: "logs", workspaceId: WORKSPACE.toUpperCase(), payload: { t: 21.5 } });
    const key = "plant-1/raw/messages/group-a/telemetry/robot-125/2023-12-19/logs/m00767";
    const stored = await s3.get(key);
    assert.deepEqual(stored.body, Buffer.from('{"t":21.5}'));
    assert.equal(stored.contentType, "application/json");
    assert.deepEqual(stored.metadata, {
      "stream-group-name": "group-a",
      "stream-name": "telemetry",
      "device-id": "robot-125",
      "batch-id": "2023-12-19",
      "batch-slice-id": "logs",
      "message-id": "m00767",
      "workspace-id": WORKSPACE,
    });
    const s3Result = output.s3 as Record<string, unknown>;
    assert.equal(s3Result.bucket, "test-bucket");
    assert.equal(s3Result.key, key);
    assert.equal(s3Result.bytes, 10);
    assert.match(String(s3Result.etag), /^"[0-9a-f]{32}"$/);
    assert.deepEqual(await s3.keys(), [key]);
  });

  it("omits the optional parts when they are absent", async () => {
    flow = await EgressFlow.load(s3.endpoint);
    await flow.write({ ...device, payload: "hello" });
    const stored = await s3.get("messages/group-a/telemetry/robot-125/2023-12-19/m00767");
    assert.deepEqual(Object.keys(stored.metadata).sort(), ["batch-id", "device-id", "message-id", "stream-group-name", "stream-name"]);
    assert.equal(stored.contentType, "text/plain; charset=utf-8");
  });

  it("writes every payload type with its Content-Type, and msg.contentType overrides it", async () => {
    flow = await EgressFlow.load(s3.endpoint);
    const cases: [unknown, Buffer, string, string?][] = [
      [Buffer.from([0, 1, 255]), Buffer.from([0, 1, 255]), "application/octet-stream"],
      ["žluťoučký kůň", Buffer.from("žluťoučký kůň"), "text/plain; charset=utf-8"],
      [[1, { a: null }], Buffer.from('[1,{"a":null}]'), "application/json"],
      [42.5, Buffer.from("42.5"), "text/plain; charset=utf-8"],
      [true, Buffer.from("true"), "text/plain; charset=utf-8"],
      ["a,b\n1,2\n", Buffer.from("a,b\n1,2\n"), "text/csv", "text/csv"],
      ["", Buffer.alloc(0), "text/plain; charset=utf-8"],
    ];
    for (const [index, [payload, bytes, contentType, override]] of cases.entries()) {
      await flow.write({ ...device, messageId: `m${index}`, payload, contentType: override });
      const stored = await s3.get(`messages/group-a/telemetry/robot-125/2023-12-19/m${index}`);
      assert.deepEqual(stored.body, bytes, `payload ${index}`);
      assert.equal(stored.contentType, contentType, `payload ${index}`);
    }
  });

  it("reads fields from str, env, flow, global and JSONata sources", async () => {
    process.env.S3_EGRESS_TEST_GROUP = "env-group";
    flow = await EgressFlow.load(s3.endpoint, {
      streamGroup: "S3_EGRESS_TEST_GROUP",
      streamGroupType: "env",
      stream: "fixed-stream",
      streamType: "str",
      deviceId: "payload.device",
      deviceIdType: "jsonata",
      batchId: "currentBatch",
      batchIdType: "flow",
      messageId: "'m-' & $string(payload.seq)",
      messageIdType: "jsonata",
      workspaceId: "workspace",
      workspaceIdType: "global",
    });
    flow.egress.context().flow.set("currentBatch", "flow-batch");
    flow.egress.context().global.set("workspace", WORKSPACE);
    await flow.write({ payload: { device: "sensor-9", seq: 4 } });
    const stored = await s3.get("messages/env-group/fixed-stream/sensor-9/flow-batch/m-4");
    assert.equal(stored.metadata["workspace-id"], WORKSPACE);
    assert.equal(stored.metadata["stream-group-name"], "env-group");
  });

  it("reads msg sources as Node-RED does: a top-level property, a nested path, a bracketed one, msg. in front", async () => {
    flow = await EgressFlow.load(s3.endpoint, {
      streamGroup: "msg.group",
      stream: "meta.stream",
      deviceId: 'payload["device id"]',
      batchId: "days[1]",
      messageId: "id",
    });
    await flow.write({ group: "g", meta: { stream: "s" }, payload: { "device id": "d-7" }, days: ["x", "2026-11-26"], id: "m-1" });
    assert.equal((await s3.get("messages/g/s/d-7/2026-11-26/m-1")).metadata["device-id"], "d-7");
  });

  it("fills a missing batch id with the UTC date and a missing message id with a sortable unique id", async () => {
    flow = await EgressFlow.load(s3.endpoint, { batchIdAutofill: "utc-date", messageIdAutofill: "auto" });
    const before = new Date().toISOString().slice(0, 10);
    const outputs = [];
    for (let i = 0; i < 20; i++) outputs.push(await flow.write({ ...device, batchId: undefined, messageId: undefined, payload: i }));
    const after = new Date().toISOString().slice(0, 10);
    const keys = outputs.map((msg) => String((msg.s3 as { key: string }).key));
    const prefix = /^messages\/group-a\/telemetry\/robot-125\/(\d{4}-\d{2}-\d{2})\/([0-9A-Z]{26})$/;
    for (const key of keys) {
      const [, date] = prefix.exec(key)!;
      assert.ok(date === before || date === after);
    }
    assert.deepEqual([...keys].sort(), keys, "ids sort by arrival");
    assert.equal((await s3.keys()).length, 20);
    const stored = await s3.get(keys[0]);
    assert.equal(stored.metadata["message-id"], keys[0].split("/").pop());
  });

  it("accepts numbers as fields and encodes non-ASCII metadata as RFC 2047", async () => {
    flow = await EgressFlow.load(s3.endpoint);
    await flow.write({ ...device, deviceId: "čidlo 7", batchId: 20231219, messageId: 1, payload: 1 });
    const stored = await s3.get("messages/group-a/telemetry/čidlo 7/20231219/1");
    assert.equal(stored.metadata["device-id"], `=?UTF-8?B?${Buffer.from("čidlo 7").toString("base64")}?=`);
    assert.equal(stored.metadata["batch-id"], "20231219");
  });

  it("an unnamed node reports its errors under its label, not its id", async () => {
    flow = await EgressFlow.load(s3.endpoint);
    assert.equal(flow.egress.name, "S3 messages");
    const error = await flow.fail({ payload: "x" });
    assert.equal((error.msg.error as { source: { name: string } }).source.name, "S3 messages");
  });

  it("with no Catch node, an error is logged (and shown in the debug sidebar) as its whole text, under the node's label", async () => {
    const flowNodes: Record<string, unknown>[] = [
      { id: "tab", type: "tab", label: "test" },
      { id: "cfg", type: "s3-egress-config", bucket: TEST_BUCKET, region: "us-east-1", endpoint: s3.endpoint, forcePathStyle: true },
      { id: "egress", type: "s3-egress", z: "tab", sink: "cfg", wires: [[]] },
    ];
    await helper.load([configNode, egressNode], flowNodes as Parameters<typeof helper.load>[1], { cfg: CREDENTIALS });
    helper.getNode("egress").receive({ payload: "x", streamGroup: "g", stream: "s", deviceId: "d", batchId: "b" });
    type Logged = { level: number; type: string; name: string; msg: unknown };
    const errors = () => (helper.log().args as [Logged][]).map(([event]) => event).filter((event) => event.type === "s3-egress" && event.level === 20);
    for (let attempt = 0; attempt < 50 && errors().length === 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(errors().map((event) => [event.name, event.msg]), [["S3 messages", "messageId (msg.messageId) is missing"]]);
  });

  describe("bad input fails that msg alone, names what is wrong, writes nothing", () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["missing device id", { deviceId: undefined }, /deviceId \(msg\.deviceId\) is missing/],
      ["missing stream group", { streamGroup: "" }, /streamGroup \(msg\.streamGroup\) is missing/],
      ["missing message id", { messageId: null }, /messageId \(msg\.messageId\) is missing/],
      ["empty-looking segment", { stream: "." }, /stream \(msg\.stream\) may not be "\."/],
      ["parent segment", { batchId: ".." }, /batchId \(msg\.batchId\) may not be "\.\."/],
      ["slash in a segment", { deviceId: "a/b" }, /deviceId \(msg\.deviceId\) may not contain "\/"/],
      ["control character", { messageId: "m\u0007" }, /messageId \(msg\.messageId\) may not contain control characters/],
      ["lone surrogate (a string cut inside an emoji)", { deviceId: "robot-\ud83d" }, /deviceId \(msg\.deviceId\) contains a lone UTF-16 surrogate \(U\+D83D\), which is not text/],
      ["object as a field", { deviceId: { id: 1 } }, /deviceId \(msg\.deviceId\) must be a string or a number/],
      ["key over 1,024 bytes", { messageId: "x".repeat(1000) }, /key is 1048 UTF-8 bytes long, over the S3 limit of 1024/],
      ["workspace id that is not a GUID", { workspaceId: "ws-1" }, /workspaceId \(msg\.workspaceId\) "ws-1" is not a GUID/],
      ["undefined payload", { payload: undefined }, /msg\.payload is undefined/],
    ];
    for (const [name, change, pattern] of cases) {
      it(name, async () => {
        flow = await EgressFlow.load(s3.endpoint);
        const error = await flow.fail({ ...device, payload: "x", ...change });
        assert.match(error.message, pattern);
        assert.deepEqual(await s3.keys(), []);
        // The node shows it, whole, in a red ring until the next success.
        const shown = await flow.status((status) => status.fill === "red");
        assert.equal(shown.shape, "ring");
        assert.match(String(shown.text), new RegExp(`^bad input: ${pattern.source}`));
        assert.equal(`InputError: ${String(shown.text).slice("bad input: ".length)}`, error.message);
        // The node keeps working.
        await flow.write({ ...device, payload: "next" });
        assert.deepEqual(await s3.keys(), ["messages/group-a/telemetry/robot-125/2023-12-19/m00767"]);
        await flow.status((status) => status.fill === "green" && status.text === "ok (1)");
      });
    }
  });

  describe("configuration and permanent S3 errors", () => {
    it("shows a red status and fails msgs with the problem when the bucket name is invalid", async () => {
      flow = await EgressFlow.load(s3.endpoint, {}, { bucket: "Bad_Bucket" });
      const error = await flow.fail({ ...device, payload: 1 });
      assert.match(error.message, /bucket may contain only lowercase letters/);
      await flow.status((status) => status.fill === "red");
    });

    it("fails msgs with the problem when the endpoint is not an http(s) URL", async () => {
      flow = await EgressFlow.load("localhost:9000");
      assert.match((await flow.fail({ ...device, payload: 1 })).message, /endpoint must start with http:\/\/ or https:\/\//);
    });

    it("refuses half a key pair", async () => {
      flow = await EgressFlow.load(s3.endpoint, {}, {}, { accessKeyId: CREDENTIALS.accessKeyId });
      assert.match((await flow.fail({ ...device, payload: 1 })).message, /both be set/);
    });

    const permanent: [string, Record<string, unknown>, Record<string, string> | undefined, RegExp][] = [
      // The code alone: RGW's errors carry no message.
      ["NoSuchBucket", { bucket: "no-such-bucket" }, undefined, /NoSuchBucket: /],
      ["InvalidAccessKeyId", {}, { ...CREDENTIALS, accessKeyId: "WRONG" }, /InvalidAccessKeyId: /],
    ];
    for (const [code, configProps, credentials, pattern] of permanent) {
      it(`fails fast with ${code} and shows it in a red status`, async () => {
        flow = await EgressFlow.load(s3.endpoint, {}, configProps, credentials);
        const started = Date.now();
        const error = await flow.fail({ ...device, payload: 1 });
        assert.match(error.message, pattern);
        assert.ok(Date.now() - started < 2000, "not retried");
        await flow.status((status) => status.fill === "red" && status.text === `error: ${code}`);
      });
    }
  });

  it("writes a burst with at most `concurrency` requests in flight and shows progress then success", async () => {
    flow = await EgressFlow.load(s3.endpoint, { concurrency: 4, messageIdAutofill: "auto" });
    const writes = [];
    for (let i = 0; i < 300; i++) writes.push(flow.write({ ...device, messageId: undefined, payload: `reading ${i}` }));
    await Promise.all(writes);
    assert.equal((await s3.keys()).length, 300);
    await flow.status((status) => status.fill === "blue" && /^writing \(\d+, limit 4\)$/.test(String(status.text)));
    await flow.status((status) => status.fill === "green" && status.text === "ok (300)");
    assert.ok(flow.outputs.every((msg) => (msg.s3 as { concurrency: number }).concurrency === 4), "msg.s3.concurrency: the fixed limit");
    assert.ok(flow.statuses.length < 100, `status updates are throttled, saw ${flow.statuses.length}`);
  });

  it("concurrency auto by default: the status and msg.s3 show the adaptive limit, which grows under a burst", async () => {
    flow = await EgressFlow.load(s3.endpoint, { messageIdAutofill: "auto" });
    const writes = [];
    for (let i = 0; i < 400; i++) writes.push(flow.write({ ...device, messageId: undefined, payload: `reading ${i}` }));
    await Promise.all(writes);
    await flow.status((status) => status.fill === "blue" && /^writing \(\d+, limit \d+\)$/.test(String(status.text)));
    const limits = flow.outputs.map((msg) => (msg.s3 as { concurrency: number }).concurrency);
    assert.ok(limits.every((limit) => limit >= ADAPTIVE_LIMITS.min && limit <= ADAPTIVE_LIMITS.max), `within [${ADAPTIVE_LIMITS.min}, ${ADAPTIVE_LIMITS.max}]`);
    assert.ok(Math.max(...limits) > ADAPTIVE_LIMITS.initial, `the limit grew while all 400 waited: up to ${Math.max(...limits)}`);
  });
});
