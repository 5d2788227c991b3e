import assert from "node:assert/strict";
import { decodeHeaderValue } from "../../nodes/lib/core/rfc2047";
import { S3Sink } from "../../nodes/lib/s3/client";
import { EgressFlow } from "../support/flow";
import { RECORDED_UPLOAD_ID, RECORDED_VERSION_ID, type S3Inspector, inspectedS3 } from "../support/inspector";
import { CREDENTIALS, type LocalS3, TEST_BUCKET } from "../support/s3";

const device = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "2023-12-19" };

// s3rver checks no signature; the inspector in front of it verifies each one as S3 does (a real server behind it checks too).
describe("SigV4 signatures, verified independently as S3 would", function () {
  const context = inspectedS3();
  let s3: LocalS3;
  let inspector: S3Inspector;
  let recorder: S3Inspector;
  before(() => ({ s3, inspector, recorder } = context));

  it("signs PutObject for keys with every character S3 encodes, non-ASCII and emoji, under a path prefix, and stores their metadata", async () => {
    const flow = await EgressFlow.load(inspector.endpoint, { path: "/plant 1/ünits+raw/" });
    const messageIds = [
      "with space",
      "žluťoučký kůň",
      "a+b",
      "star*",
      "it's",
      "(paren)",
      "bang!",
      "tilde~",
      "mix +*'()!~ 日本",
      "%20literal",
      "semi;colon=eq&amp",
      "dollar$at@colon:comma,",
      "query?hash#",
      "[brackets]{braces}",
      "emoji 🚀🌡️",
    ];
    for (const messageId of messageIds) await flow.write({ ...device, messageId, payload: messageId });
    const puts = inspector.matching("PUT");
    assert.equal(puts.length, messageIds.length);
    assert.deepEqual(puts.filter((put) => put.refused).map((put) => `${put.url}: ${put.refused}`), []);
    const expected = messageIds.map((id) => `plant 1/ünits+raw/messages/group-a/telemetry/robot-125/2023-12-19/${id}`);
    assert.deepEqual(await s3.keys(), [...expected].sort());
    for (const [index, key] of expected.entries()) {
      const stored = await s3.get(key);
      assert.deepEqual(stored.body, Buffer.from(messageIds[index]));
      assert.equal(decodeHeaderValue(stored.metadata["message-id"]), messageIds[index]);
    }
  });

  it("signs UploadPart, whose query string carries partNumber and uploadId, and Create/CompleteMultipartUpload", async () => {
    const sink = new S3Sink({ bucket: TEST_BUCKET, region: "us-east-1", endpoint: inspector.endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    const key = "batches/group a/télé+metry/(1)";
    const partOne = Buffer.alloc(5 * 1024 * 1024, "a");
    const partTwo = Buffer.from("tail");
    try {
      const uploadId = await sink.createMultipartUpload(key, { contentType: "application/octet-stream", metadata: { "batch-id": "b1" } });
      const answers = [await sink.uploadPart(key, uploadId, 1, partOne), await sink.uploadPart(key, uploadId, 2, partTwo)];
      await sink.completeMultipartUpload(key, uploadId, answers.map((part, index) => ({ partNumber: index + 1, ...part })));
    } finally {
      sink.destroy();
    }
    const parts = inspector.matching("PUT", "partNumber");
    assert.equal(parts.length, 2);
    for (const part of parts) assert.ok(new URLSearchParams(part.url.split("?")[1]).get("uploadId"));
    assert.deepEqual(inspector.requests.filter((request) => request.refused).map((request) => `${request.method} ${request.url}: ${request.refused}`), []);
    assert.deepEqual((await s3.get(key)).body, Buffer.concat([partOne, partTwo]));
  });

  it("signs UploadPart with an upload id that needs encoding in the query string", async () => {
    const sink = new S3Sink({ bucket: TEST_BUCKET, region: "us-east-1", endpoint: recorder.endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    try {
      const uploadId = await sink.createMultipartUpload("batches/b 1", { contentType: "application/octet-stream", metadata: {} });
      assert.equal(uploadId, RECORDED_UPLOAD_ID);
      await sink.uploadPart("batches/b 1", uploadId, 1, Buffer.from("part"));
    } finally {
      sink.destroy();
    }
    const [part] = recorder.matching("PUT", "partNumber");
    assert.equal(new URLSearchParams(part.url.split("?")[1]).get("uploadId"), RECORDED_UPLOAD_ID);
    assert.equal(part.refused, undefined);
  });

  it("signs CompleteMultipartUpload (its XML body) and AbortMultipartUpload, and reads the ETag (&quot; decoded) and version id S3 answers", async () => {
    const sink = new S3Sink({ bucket: TEST_BUCKET, region: "us-east-1", endpoint: recorder.endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    const key = "batches/b 1 & <2>";
    try {
      const uploadId = await sink.createMultipartUpload(key, { contentType: "application/octet-stream", metadata: {} });
      const parts = [
        { partNumber: 1, ...(await sink.uploadPart(key, uploadId, 1, Buffer.from("part one"))) },
        { partNumber: 2, ...(await sink.uploadPart(key, uploadId, 2, Buffer.from("part two"))) },
      ];
      const completed = await sink.completeMultipartUpload(key, uploadId, parts, true);
      assert.match(completed.etag, /^"[0-9a-f]{32}"$/);
      assert.equal(completed.versionId, RECORDED_VERSION_ID);
      await sink.abortMultipartUpload(key, uploadId);
    } finally {
      sink.destroy();
    }
    const [complete] = recorder.matching("POST", "uploadId");
    assert.equal(complete.headers["content-type"], "application/xml");
    assert.equal(complete.headers["if-none-match"], "*");
    const [abort] = recorder.matching("DELETE", "uploadId");
    for (const request of [complete, abort]) assert.equal(new URLSearchParams(request.url.split("?")[1]).get("uploadId"), RECORDED_UPLOAD_ID);
    assert.deepEqual(recorder.requests.map((request) => [request.method, request.refused]), [
      ["POST", undefined],
      ["PUT", undefined],
      ["PUT", undefined],
      ["POST", undefined],
      ["DELETE", undefined],
    ]);
  });

  it("signs the session token of temporary credentials", async () => {
    const flow = await EgressFlow.load(inspector.endpoint, {}, {}, { ...CREDENTIALS, sessionToken: "FwoGZXIvYXdzE//token+with/odd=chars" });
    await flow.write({ ...device, messageId: "m1", payload: 1 });
    const [put] = inspector.matching("PUT");
    assert.equal(put.headers["x-amz-security-token"], "FwoGZXIvYXdzE//token+with/odd=chars");
    assert.equal(put.refused, undefined);
  });

  it("fails with SignatureDoesNotMatch for a wrong secret key: permanent, caught, red status, nothing written", async () => {
    const flow = await EgressFlow.load(inspector.endpoint, {}, {}, { accessKeyId: CREDENTIALS.accessKeyId, secretAccessKey: "not-the-secret" });
    const error = await flow.fail({ ...device, messageId: "m1", payload: 1 });
    // The code alone: RGW's errors carry no message.
    assert.match(error.message, /SignatureDoesNotMatch: /);
    assert.equal(inspector.requests[0].refused, "SignatureDoesNotMatch", "the inspector's own verdict agrees");
    assert.equal(inspector.requests.length, 1, "not retried");
    await flow.status((status) => status.fill === "red" && status.shape === "ring" && status.text === "error: SignatureDoesNotMatch");
    assert.deepEqual(await s3.keys(), []);
  });
});
