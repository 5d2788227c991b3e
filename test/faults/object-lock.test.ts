import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { S3Sink } from "../../nodes/lib/s3/client";
import type { S3Error } from "../../nodes/lib/s3/errors";
import { storedChecksum } from "../support/checksums";
import { faultContext } from "../support/fault-context";
import type { SeenRequest } from "../support/fault-proxy";
import { EgressFlow, type Msg } from "../support/flow";
import { CREDENTIALS, TEST_BUCKET } from "../support/s3";

const device = { streamGroup: "g", stream: "s", deviceId: "d1", batchId: "b1" };
const MiB = 1024 * 1024;

/** The routes and sizes of writes: one PutObject, or a multipart upload. */
const WRITES = [
  { name: "a msg", key: "messages/g/s/d1/b1/m1", parts: 1 },
  { name: "a 9 MiB msg", key: "messages/g/s/d1/b1/big", parts: 2 },
  { name: "a small gzip'd batch", key: "batches/g/s/d1/small", parts: 1 },
  { name: "a 17 MiB batch", key: "batches/g/s/d1/b1", parts: 3 },
] as const;

/** Writes each of WRITES; resolves with what each write ended in: its output msg or its caught error's message. */
async function writeEach(endpoint: string, config: Record<string, unknown>): Promise<(Msg | string)[]> {
  const outcome = (written: Promise<Msg>) => written.catch((error: { message: string }) => error.message);
  let flow = await EgressFlow.load(endpoint, { giveUpAfter: 1, maxRetryDelay: 0.05 }, config);
  const results = [await outcome(flow.write({ ...device, messageId: "m1", payload: "reading 1" }))];
  results.push(await outcome(flow.write({ ...device, messageId: "big", payload: Buffer.alloc(9 * MiB, 7) })));
  await EgressFlow.unload();
  flow = await EgressFlow.load(endpoint, { input: "batches", concatenation: "newline", compression: "gzip", giveUpAfter: 1, maxRetryDelay: 0.05 }, config);
  await flow.join({ ...device, batchId: "small", payload: { t: 1 } });
  results.push(await outcome(flow.write({ ...device, batchId: "small", payload: { t: 2 }, complete: true })));
  await EgressFlow.unload();
  flow = await EgressFlow.load(endpoint, { input: "batches", concatenation: "plain", giveUpAfter: 1, maxRetryDelay: 0.05 }, config);
  for (let index = 0; index < 16; index++) await flow.join({ ...device, payload: Buffer.alloc(MiB, index) });
  results.push(await outcome(flow.write({ ...device, payload: Buffer.alloc(MiB, 16), complete: true })));
  await EgressFlow.unload();
  return results;
}

const forwardedParts = (seen: SeenRequest[], key: string) =>
  seen.filter((request) => request.key === key && request.operation === "UploadPart" && request.outcome === "forwarded");

/**
 * AWS's rules for buckets with Object Lock and for checksums, as its documentation has them,
 * reproduced by the fault proxy in front of s3rver (which checks none of it): a PutObject or
 * UploadPart without Content-MD5 or x-amz-checksum-* is refused with 400 InvalidRequest; checksums
 * are checked against the bytes (BadDigest), SHA-256 ones echoed, and an upload that declared
 * SHA256 needs each part's checksum in its Complete.
 */
describe("faults: a bucket with Object Lock, and checksums checked as AWS checks them", function () {
  const context = faultContext();
  beforeEach(() => {
    context.proxy.integrity = true;
    context.proxy.objectLock = true;
  });

  for (const [checksum, algorithm] of [
    ["auto", "md5"],
    ["md5", "md5"],
    ["sha256", "sha256"],
  ] as const) {
    it(`checksum ${checksum}: every route and size is written to the locked bucket, and msg.s3.checksum is the ${algorithm} of the bytes stored`, async () => {
      const results = await writeEach(context.proxy.endpoint, { checksum });
      for (const [index, write] of WRITES.entries()) {
        const result = results[index];
        assert.ok(typeof result !== "string", `${write.name}: ${result}`);
        const { body } = await context.s3.get(write.key);
        const parts = forwardedParts(context.proxy.seen, write.key);
        assert.equal(parts.length, write.parts === 1 ? 0 : write.parts, write.name);
        const lengths = write.parts === 1 ? [body.length] : write.parts === 2 ? [8 * MiB, MiB] : [8 * MiB, 8 * MiB, MiB];
        assert.deepEqual((result.s3 as { checksum?: unknown }).checksum, { [algorithm]: storedChecksum(algorithm, body, lengths) }, write.name);
      }
      assert.deepEqual(context.proxy.seen.filter((request) => request.outcome !== "forwarded").map((request) => request.outcome), []);
    });
  }

  it("checksum none: each write is refused with AWS's 400 InvalidRequest (Put Object, Put Part), which ends in Catch at once", async () => {
    context.proxy.reset();
    context.proxy.objectLock = true;
    context.proxy.script([{ operation: "AbortMultipartUpload", action: { kind: "no-content" } }]);
    const started = Date.now();
    const results = await writeEach(context.proxy.endpoint, { checksum: "none" });
    const putObject = "S3Error: InvalidRequest: Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters";
    const putPart = "S3Error: InvalidRequest: Content-MD5 OR x-amz-checksum- HTTP header is required for Put Part requests with Object Lock parameters";
    assert.deepEqual(results, [putObject, putPart, putObject, putPart]);
    assert.deepEqual(await context.s3.keys(), []);
    assert.ok(Date.now() - started < 20_000, "not retried");
  });

  for (const checksum of ["md5", "sha256"]) {
    it(`checksum ${checksum}: a body damaged on the way (PutObject, UploadPart) is refused with BadDigest, sent again and stored intact`, async () => {
      context.proxy.script([
        { operation: "PutObject", action: { kind: "corrupt" }, times: 1 },
        { operation: "UploadPart", action: { kind: "corrupt" }, times: 1 },
      ]);
      const flow = await EgressFlow.load(context.proxy.endpoint, {}, { checksum });
      const small = await flow.write({ ...device, messageId: "m1", payload: "reading 1" });
      const big = Buffer.alloc(9 * MiB, 3);
      await flow.write({ ...device, messageId: "big", payload: big });
      assert.deepEqual(
        context.proxy.seen.filter((request) => request.outcome !== "forwarded").map((request) => `${request.operation} ${request.outcome}`),
        ["PutObject corrupt, 400 BadDigest", "UploadPart corrupt, 400 BadDigest"],
      );
      assert.equal((await context.s3.get("messages/g/s/d1/b1/m1")).body.toString(), "reading 1");
      assert.ok((await context.s3.get("messages/g/s/d1/b1/big")).body.equals(big));
      assert.equal((small.s3 as { totals: { retried: number } }).totals.retried, 1);
      assert.deepEqual(flow.errors, []);
    });
  }

  it("the signed SHA-256 alone (checksum none, no Object Lock): a damaged body is refused with XAmzContentSHA256Mismatch and sent again", async () => {
    context.proxy.objectLock = false;
    context.proxy.script([{ operation: "PutObject", action: { kind: "corrupt" }, times: 1 }]);
    const flow = await EgressFlow.load(context.proxy.endpoint, {}, { checksum: "none" });
    await flow.write({ ...device, messageId: "m1", payload: "reading 1" });
    assert.equal((await context.s3.get("messages/g/s/d1/b1/m1")).body.toString(), "reading 1");
    assert.deepEqual(
      context.proxy.seen.map((request) => request.outcome),
      ["corrupt, 400 XAmzContentSHA256Mismatch", "forwarded"],
    );
  });

  it("a body damaged on every attempt: retried until Give up after, then Catch names BadDigest; nothing is stored", async () => {
    context.proxy.script([{ operation: "PutObject", action: { kind: "corrupt" } }]);
    const flow = await EgressFlow.load(context.proxy.endpoint, { giveUpAfter: 1, maxRetryDelay: 0.05 }, { checksum: "md5" });
    const error = await flow.fail({ ...device, messageId: "m1", payload: "reading 1" });
    assert.match(error.message, /^S3Error: BadDigest: The Content-MD5 you specified did not match what we received/);
    assert.ok(context.proxy.seen.length > 2, "sent again");
    assert.deepEqual(await context.s3.keys(), []);
  });

  describe("the proxy holds the node to AWS's multipart rules", () => {
    const sink = (checksum: "sha256" | "md5") =>
      new S3Sink({ bucket: TEST_BUCKET, region: "us-east-1", endpoint: context.proxy.endpoint, forcePathStyle: true, credentials: CREDENTIALS, checksum });
    const options = { contentType: "application/octet-stream", metadata: {} };
    const rejection = (promise: Promise<unknown>) => promise.then(() => assert.fail("expected a refusal"), (error: S3Error) => error);

    it("a Complete of a SHA256 upload without the parts' checksums is refused; with them, S3's composite checksum is answered", async () => {
      const sha256 = sink("sha256");
      try {
        const uploadId = await sha256.createMultipartUpload("mp/key", options);
        const part = await sha256.uploadPart("mp/key", uploadId, 1, Buffer.from("only part"));
        const refused = await rejection(sha256.completeMultipartUpload("mp/key", uploadId, [{ partNumber: 1, etag: part.etag }]));
        assert.match(refused.message, /^InvalidRequest: The upload was created using a sha256 checksum. The complete request must include the checksum for each part/);
        const completed = await sha256.completeMultipartUpload("mp/key", uploadId, [{ partNumber: 1, ...part }]);
        const digest = createHash("sha256").update(createHash("sha256").update("only part").digest()).digest("base64");
        assert.deepEqual(completed.checksum, { sha256: `${digest}-1` });
      } finally {
        sha256.destroy();
      }
    });

    it("a part that carries a checksum its upload did not declare is refused", async () => {
      const md5 = sink("md5");
      const sha256 = sink("sha256");
      try {
        const uploadId = await md5.createMultipartUpload("mp/undeclared", options);
        const refused = await rejection(sha256.uploadPart("mp/undeclared", uploadId, 1, Buffer.from("part")));
        assert.deepEqual([refused.code, refused.retryable], ["InvalidRequest", false]);
      } finally {
        md5.destroy();
        sha256.destroy();
      }
    });
  });
});
