import assert from "node:assert/strict";
import { MiB, patternBytes as chunk } from "../support/bytes";
import { EgressFlow } from "../support/flow";
import { RecordingProxy } from "../support/proxy";
import { LocalS3 } from "../support/s3";

const robot = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "2023-12-19" };
const BATCH_KEY = "batches/group-a/telemetry/robot-125/2023-12-19";


/** Multipart uploads seen through a proxy that records requests and forces failures. */
describe("s3-egress multipart uploads and their failures, against s3rver behind a proxy", function () {
  let s3: LocalS3;
  let proxy: RecordingProxy;
  let flow: EgressFlow;

  before(async () => {
    s3 = await LocalS3.start();
  });
  after(async () => {
    await s3.stop();
  });
  beforeEach(async () => {
    proxy = await RecordingProxy.start(s3.endpoint);
    // s3rver has no AbortMultipartUpload: the proxy answers it as S3 does.
    proxy.stub = (request) => (request.method === "DELETE" && request.query.has("uploadId") ? { status: 204 } : undefined);
  });
  afterEach(async () => {
    await EgressFlow.unload();
    await proxy.stop();
    await s3.clear();
  });

  it("Messages: a payload over the multipart threshold is sent as a multipart upload", async () => {
    flow = await EgressFlow.load(proxy.endpoint, { messageId: "big", messageIdType: "str" });
    const payload = chunk(7, 18 * MiB + 5);
    const output = await flow.write({ ...robot, payload });
    const key = "messages/group-a/telemetry/robot-125/2023-12-19/big";
    const stored = await s3.get(key);
    assert.ok(stored.body.equals(payload), "byte-identical");
    assert.equal(stored.contentType, "application/octet-stream");
    assert.equal(stored.metadata["message-id"], "big");
    assert.equal((output.s3 as { bytes: number }).bytes, payload.length);
    assert.equal(proxy.seen("POST", "uploads").length, 1);
    assert.deepEqual(proxy.seen("PUT", "partNumber").map((request) => request.query.get("partNumber")), ["1", "2", "3"]);
    assert.equal(proxy.seen("PUT").filter((request) => !request.query.has("partNumber")).length, 0, "no PutObject");
  });

  it("Batches: a transient part failure is retried and the batch stays byte-identical", async () => {
    let failures = 0;
    proxy.stub = (request) =>
      request.method === "PUT" && request.query.get("partNumber") === "2" && failures++ === 0
        ? { status: 503, code: "SlowDown", message: "Please reduce your request rate." }
        : undefined;
    flow = await EgressFlow.load(proxy.endpoint, { input: "batches" });
    const chunks = Array.from({ length: 17 }, (_, index) => chunk(index, MiB));
    for (const payload of chunks) await flow.join({ ...robot, payload });
    await flow.write({ ...robot, complete: true });
    assert.ok((await s3.get(BATCH_KEY)).body.equals(Buffer.concat(chunks)));
    assert.equal(proxy.seen("PUT", "partNumber").filter((request) => request.query.get("partNumber") === "2").length, 2);
  });

  it("Batches: a permanent part failure aborts the upload and reaches a Catch node; nothing is written; the node goes on", async () => {
    proxy.stub = (request) => {
      if (request.method === "DELETE" && request.query.has("uploadId")) return { status: 204 };
      if (request.method === "PUT" && request.query.get("partNumber") === "2") return { status: 403, code: "AccessDenied", message: "Access Denied" };
      return undefined;
    };
    flow = await EgressFlow.load(proxy.endpoint, { input: "batches" });
    const refused: string[] = [];
    for (let index = 0; index < 20; index++) {
      await flow.join({ ...robot, payload: chunk(index, MiB) }).catch((error: { message: string }) => refused.push(error.message));
    }
    const error = await flow.fail({ ...robot, complete: true });
    assert.match(error.message, /AccessDenied: Access Denied/);
    for (const message of refused) assert.match(message, /AccessDenied/, "msgs arriving after the failure are refused with it");

    const created = proxy.seen("POST", "uploads");
    assert.equal(created.length, 1);
    const aborts = proxy.seen("DELETE", "uploadId");
    assert.equal(aborts.length, 1, "AbortMultipartUpload");
    assert.equal(aborts[0].path, `/test-bucket/${BATCH_KEY}`);
    assert.equal(proxy.seen("POST", "uploadId").length, 0, "never completed");
    assert.deepEqual(await s3.keys(), []);
    await flow.status((status) => status.fill === "red" && String(status.text).startsWith("error: AccessDenied"));

    await flow.join({ ...robot, batchId: "next", payload: "still working" });
    await flow.write({ ...robot, batchId: "next", complete: true });
    assert.equal((await s3.get("batches/group-a/telemetry/robot-125/next")).body.toString(), "still working");
  });

  it("Batches: a failed CompleteMultipartUpload is aborted and reported too", async () => {
    proxy.stub = (request) => {
      if (request.method === "DELETE" && request.query.has("uploadId")) return { status: 204 };
      if (request.method === "POST" && request.query.has("uploadId")) return { status: 400, code: "InvalidPart", message: "One or more of the specified parts could not be found." };
      return undefined;
    };
    flow = await EgressFlow.load(proxy.endpoint, { input: "batches" });
    for (let index = 0; index < 9; index++) await flow.join({ ...robot, payload: chunk(index, MiB) });
    const error = await flow.fail({ ...robot, complete: true });
    assert.match(error.message, /InvalidPart: One or more/);
    assert.equal(proxy.seen("DELETE", "uploadId").length, 1);
    assert.deepEqual(await s3.keys(), []);
  });
});
