import assert from "node:assert/strict";
import helper from "node-red-node-test-helper";
import { EgressFlow } from "../support/flow";

const WORKSPACE = "69f09b3f-ec0d-4b9e-a5ec-87150b935296";
const sample = { streamGroup: "factory", stream: "telemetry", deviceId: "robot-125", workspaceId: WORKSPACE.toUpperCase(), payload: { t: 21.5 } };

/** Editor settings as the dialog sends them: every field from msg.<field> unless overridden. */
function settings(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { input: "messages", path: "/demo/", batchIdAutofill: "none", messageIdAutofill: "none", batchId: "batchId", batchIdType: "msg", ...overrides };
}

async function preview(node: Record<string, unknown>, msg: Record<string, unknown> | Record<string, unknown>[]): Promise<Record<string, unknown>> {
  const response = await helper.request().post("/s3-egress/preview").send({ node, msg }).expect(200);
  return response.body as Record<string, unknown>;
}

describe("editor admin routes", function () {
  before(async () => {
    // The routes are registered when the node module loads; no S3 call is made.
    await EgressFlow.load("http://127.0.0.1:9");
  });
  after(async () => {
    await EgressFlow.unload();
  });

  it("previews the key, metadata and Content-Type of a sample msg with the runtime's functions", async () => {
    const result = await preview(settings({ batchId: "2023-12-19", batchIdType: "str", messageIdAutofill: "auto" }), sample);
    const key = String(result.key);
    assert.match(key, /^demo\/messages\/factory\/telemetry\/robot-125\/2023-12-19\/[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.deepEqual(result.metadata, {
      "stream-group-name": "factory",
      "stream-name": "telemetry",
      "device-id": "robot-125",
      "batch-id": "2023-12-19",
      "message-id": key.split("/").pop(),
      "workspace-id": WORKSPACE,
    });
    assert.equal(result.contentType, "application/json");
    assert.equal(result.bytes, 10);
    assert.deepEqual(result.fromContext, []);
  });

  it("previews a batch key, reads env and JSONata sources, and names context sources instead of reading them", async () => {
    process.env.S3_EGRESS_TEST_GROUP = "plant-7";
    const result = await preview(
      settings({
        input: "batches",
        path: "",
        streamGroup: "S3_EGRESS_TEST_GROUP",
        streamGroupType: "env",
        stream: "'tele' & 'metry'",
        streamType: "jsonata",
        deviceId: "device",
        deviceIdType: "flow",
        batchIdAutofill: "utc-date",
      }),
      { payload: "x" },
    );
    assert.match(String(result.key), /^batches\/plant-7\/telemetry\/<flow\.device>\/\d{4}-\d{2}-\d{2}$/);
    assert.deepEqual(result.fromContext, ["deviceId"]);
    assert.equal(result.contentType, "text/plain; charset=utf-8");
  });

  it("previews a batch as the route writes it: concatenated samples, NDJSON with newline, gzip with compression", async () => {
    const batch = [
      { ...sample, batchId: "b1", payload: { t: 21.5 } },
      { payload: { t: 22 } },
      { payload: { t: 22.5 }, complete: true },
    ];
    const newline = await preview(settings({ input: "batches", concatenation: "newline" }), batch);
    assert.equal(newline.key, "demo/batches/factory/telemetry/robot-125/b1");
    assert.equal(newline.contentType, "application/x-ndjson");
    assert.equal(newline.bytes, Buffer.byteLength('{"t":21.5}\n{"t":22}\n{"t":22.5}'));
    assert.equal(newline.contentEncoding, undefined);
    const plain = await preview(settings({ input: "batches", concatenation: "plain" }), batch);
    assert.deepEqual([plain.contentType, plain.bytes], ["application/json", Buffer.byteLength('{"t":21.5}{"t":22}{"t":22.5}')]);
    const none = await preview(settings({ input: "batches", concatenation: "none" }), batch);
    assert.deepEqual([none.contentType, none.bytes], ["application/octet-stream", 0]);
    const gzip = await preview(settings({ input: "batches", concatenation: "newline", compression: "gzip" }), batch);
    assert.equal(gzip.contentEncoding, "gzip");
    // One msg alone is a batch of one.
    const single = await preview(settings({ input: "batches", concatenation: "newline" }), { ...sample, batchId: "b1" });
    assert.deepEqual([single.contentType, single.bytes], ["application/x-ndjson", 10]);
  });

  it("answers with the field and the problem when the sample msg cannot be written", async () => {
    assert.deepEqual(await preview(settings(), { ...sample, batchId: "b", messageId: "m", workspaceId: "not-a-guid" }), {
      field: "workspaceId (msg.workspaceId)",
      error: 'workspaceId (msg.workspaceId) "not-a-guid" is not a GUID (8-4-4-4-12 hexadecimal digits)',
    });
    assert.deepEqual(await preview(settings({ path: "a/../b" }), { ...sample, batchId: "b", messageId: "m" }), {
      field: "path",
      error: 'path segment ".." may not be ".."',
    });
    assert.deepEqual(await preview(settings(), { ...sample, batchId: "b" }), {
      field: "messageId (msg.messageId)",
      error: "messageId (msg.messageId) is missing",
    });
  });
});
