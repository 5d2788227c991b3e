import assert from "node:assert/strict";
import { MiB, patternBytes as chunk } from "../support/bytes";
import { EgressFlow } from "../support/flow";
import { inspectedS3, type RecordedRequest, type StubAnswer } from "../support/inspector";
import { S3_UNDER_TEST, ON_REAL_S3 } from "../support/s3";

const robot = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "2023-12-19" };
const BATCH_KEY = "batches/group-a/telemetry/robot-125/2023-12-19";

function partNumber(request: RecordedRequest): string | null {
  return new URLSearchParams(request.url.split("?")[1] ?? "").get("partNumber");
}

/** s3rver has no AbortMultipartUpload: answer it as S3 does. A real server aborts it itself, as the writer asks. */
function abortAnswer(request: RecordedRequest): StubAnswer | undefined {
  if (ON_REAL_S3) return undefined;
  return request.method === "DELETE" && request.url.includes("uploadId=") ? { status: 204 } : undefined;
}

/** Multipart uploads as S3 sees them (signatures verified, requests recorded), with failures forced by the inspector. */
describe(`s3-egress multipart uploads and their failures, against ${S3_UNDER_TEST} behind an inspector`, function () {
  const context = inspectedS3();
  let flow: EgressFlow;

  it("Messages: a payload over the multipart threshold is sent as a multipart upload", async () => {
    const { s3, inspector } = context;
    flow = await EgressFlow.load(inspector.endpoint, { messageId: "big", messageIdType: "str" });
    const payload = chunk(7, 18 * MiB + 5);
    const output = await flow.write({ ...robot, payload });
    const key = "messages/group-a/telemetry/robot-125/2023-12-19/big";
    const stored = await s3.get(key);
    assert.ok(stored.body.equals(payload), "byte-identical");
    assert.equal(stored.contentType, "application/octet-stream");
    assert.equal(stored.metadata["message-id"], "big");
    assert.equal((output.s3 as { bytes: number }).bytes, payload.length);
    assert.equal(inspector.matching("POST", "uploads").length, 1);
    assert.deepEqual(inspector.matching("PUT", "partNumber").map(partNumber).sort(), ["1", "2", "3"]);
    assert.equal(inspector.matching("PUT").length, 0, "no PutObject");
    assert.ok(inspector.requests.every((request) => !request.refused), "every request correctly signed");
  });

  it("Messages: a large payload counts its whole size against the byte bound when it is taken: 10 × 9 MiB with 16 MB, one at a time", async () => {
    const { s3, inspector } = context;
    flow = await EgressFlow.load(inspector.endpoint, { maxQueueMB: 16, messageIdType: "msg" });
    const payloads = Array.from({ length: 10 }, (_, index) => chunk(index + 1, 9 * MiB));
    const results = await Promise.allSettled(payloads.map((payload, index) => flow.write({ ...robot, messageId: `big-${index}`, payload })));
    const refused = results.filter((result) => result.status === "rejected").map((result) => String((result as PromiseRejectedResult).reason.message));
    assert.equal(refused.length, 9, "the first is taken whole (an empty queue takes any msg); the other nine do not fit beside its 9 MiB");
    for (const message of refused) {
      const held = /^QueueFullError: queue full: \d+ msgs \/ (\d+) bytes waiting \(limits 10000 msgs \/ 16777216 bytes\)/.exec(message);
      assert.ok(held && Number(held[1]) >= 9 * MiB, `the accepted msg's whole 9 MiB is held: ${message}`);
    }
    assert.deepEqual(await s3.keys(), ["messages/group-a/telemetry/robot-125/2023-12-19/big-0"]);
    assert.ok((await s3.get("messages/group-a/telemetry/robot-125/2023-12-19/big-0")).body.equals(payloads[0]));
  });

  it("Messages: once a large msg is accepted its parts are never refused, even with a queue limit of 1 and msgs waiting behind it", async () => {
    const { s3, inspector } = context;
    flow = await EgressFlow.load(inspector.endpoint, { maxQueue: 1, messageIdType: "msg" });
    const payload = chunk(3, 9 * MiB);
    const big = flow.write({ ...robot, messageId: "big", payload });
    const small = await Promise.allSettled([flow.write({ ...robot, messageId: "small", payload: "x" })]);
    assert.match(String((small[0] as PromiseRejectedResult).reason?.message), /^QueueFullError/, "the queue holds the large msg");
    const output = await big;
    assert.equal((output.s3 as { bytes: number }).bytes, payload.length);
    assert.ok((await s3.get("messages/group-a/telemetry/robot-125/2023-12-19/big")).body.equals(payload));
    assert.deepEqual(inspector.matching("PUT", "partNumber").map(partNumber).sort(), ["1", "2"]);
  });

  it("Batches: a transient part failure is retried and the batch stays byte-identical", async () => {
    const { s3, inspector } = context;
    let failures = 0;
    inspector.stub = (request) =>
      partNumber(request) === "2" && failures++ === 0 ? { status: 503, code: "SlowDown", message: "Please reduce your request rate." } : undefined;
    flow = await EgressFlow.load(inspector.endpoint, { input: "batches" });
    const chunks = Array.from({ length: 17 }, (_, index) => chunk(index, MiB));
    for (const payload of chunks) await flow.join({ ...robot, payload });
    await flow.write({ ...robot, complete: true });
    assert.ok((await s3.get(BATCH_KEY)).body.equals(Buffer.concat(chunks)));
    assert.equal(inspector.matching("PUT", "partNumber").filter((request) => partNumber(request) === "2").length, 2);
  });

  it("Batches: a permanent part failure aborts the upload and reaches a Catch node; nothing is written; the node goes on", async () => {
    const { s3, inspector } = context;
    inspector.stub = (request) => abortAnswer(request) ?? (partNumber(request) === "2" ? { status: 403, code: "AccessDenied", message: "Access Denied" } : undefined);
    flow = await EgressFlow.load(inspector.endpoint, { input: "batches" });
    const refused: string[] = [];
    for (let index = 0; index < 20; index++) {
      await flow.join({ ...robot, payload: chunk(index, MiB) }).catch((error: { message: string }) => refused.push(error.message));
    }
    const error = await flow.fail({ ...robot, complete: true });
    assert.match(error.message, /AccessDenied: Access Denied/);
    for (const message of refused) assert.match(message, /AccessDenied/, "msgs arriving after the failure are refused with it");

    assert.equal(inspector.matching("POST", "uploads").length, 1);
    const aborts = inspector.matching("DELETE", "uploadId");
    assert.equal(aborts.length, 1, "AbortMultipartUpload");
    assert.equal(aborts[0].refused, undefined);
    assert.deepEqual(await s3.openUploads(), [], "the upload is gone (on a real server: aborted by the writer's own right)");
    assert.ok(aborts[0].url.startsWith(`/test-bucket/${BATCH_KEY}?`), aborts[0].url);
    assert.equal(inspector.matching("POST", "uploadId").length, 0, "never completed");
    assert.deepEqual(await s3.keys(), []);
    await flow.status((status) => status.fill === "red" && String(status.text).startsWith("error: AccessDenied"));

    await flow.join({ ...robot, batchId: "next", payload: "still working" });
    await flow.write({ ...robot, batchId: "next", complete: true });
    assert.equal((await s3.get("batches/group-a/telemetry/robot-125/next")).body.toString(), "still working");
  });

  it("Batches: a failed CompleteMultipartUpload is aborted and reported too", async () => {
    const { s3, inspector } = context;
    inspector.stub = (request) =>
      abortAnswer(request) ??
      (request.method === "POST" && request.url.includes("uploadId=") ? { status: 400, code: "InvalidPart", message: "One or more of the specified parts could not be found." } : undefined);
    flow = await EgressFlow.load(inspector.endpoint, { input: "batches" });
    for (let index = 0; index < 9; index++) await flow.join({ ...robot, payload: chunk(index, MiB) });
    const error = await flow.fail({ ...robot, complete: true });
    assert.match(error.message, /InvalidPart: One or more/);
    assert.equal(inspector.matching("DELETE", "uploadId").length, 1);
    assert.deepEqual(await s3.openUploads(), []);
    assert.deepEqual(await s3.keys(), []);
  });
});
