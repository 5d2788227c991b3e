import assert from "node:assert/strict";
import { storedChecksum } from "../support/checksums";
import { EgressFlow, type Msg } from "../support/flow";
import { type RecordedRequest, type S3Inspector, inspectedS3 } from "../support/inspector";
import { type LocalS3, S3_UNDER_TEST } from "../support/s3";

const device = { streamGroup: "g", stream: "s", deviceId: "d1", batchId: "b1" };
const MSG_KEY = "messages/g/s/d1/b1/m1";
const BIG_KEY = "messages/g/s/d1/b1/big";
const BATCH_KEY = "batches/g/s/d1/b1";
const MiB = 1024 * 1024;

type Algorithm = "sha256" | "md5";

/** The lengths of the parts of `key` as they were sent, in part-number order. */
function partLengths(inspector: S3Inspector, key: string): number[] {
  return inspector
    .matching("PUT", "partNumber")
    .filter((request) => decodeURIComponent(request.url.split("?")[0]).endsWith(`/${key}`))
    .map((request) => ({ number: Number(new URLSearchParams(request.url.split("?")[1]).get("partNumber")), length: Number(request.headers["content-length"]) }))
    .sort((a, b) => a.number - b.number)
    .map((part) => part.length);
}

/** Data requests: every PutObject and UploadPart. */
function dataRequests(inspector: S3Inspector): RecordedRequest[] {
  return inspector.requests.filter((request) => request.method === "PUT");
}

describe(`checksums S3 stores with every object, against ${S3_UNDER_TEST}`, function () {
  const context = inspectedS3();
  let s3: LocalS3;
  let inspector: S3Inspector;
  let recorder: S3Inspector;
  before(() => ({ s3, inspector, recorder } = context));

  /** Writes a msg, a 9 MiB msg (two parts), a small gzip'd batch and a 17 MiB batch (three parts); each msg.s3.checksum must be that of the bytes read back. */
  async function writeEveryRoute(checksum: string | undefined): Promise<{ outputs: Msg[]; keys: string[] }> {
    const config = checksum === undefined ? {} : { checksum };
    let flow = await EgressFlow.load(inspector.endpoint, {}, config);
    const outputs = [await flow.write({ ...device, messageId: "m1", payload: "reading 1" })];
    outputs.push(await flow.write({ ...device, messageId: "big", payload: Buffer.alloc(9 * MiB, 7) }));
    await EgressFlow.unload();
    flow = await EgressFlow.load(inspector.endpoint, { input: "batches", concatenation: "newline", compression: "gzip" }, config);
    await flow.join({ ...device, batchId: "small", payload: { t: 1 } });
    outputs.push(await flow.write({ ...device, batchId: "small", payload: { t: 2 }, complete: true }));
    await EgressFlow.unload();
    flow = await EgressFlow.load(inspector.endpoint, { input: "batches", concatenation: "plain" }, config);
    for (let index = 0; index < 16; index++) await flow.join({ ...device, payload: Buffer.alloc(MiB, index) });
    outputs.push(await flow.write({ ...device, payload: Buffer.alloc(MiB, 16), complete: true }));
    assert.deepEqual(flow.errors, []);
    return { outputs, keys: [MSG_KEY, BIG_KEY, "batches/g/s/d1/small", BATCH_KEY] };
  }

  async function assertStoredChecksums(algorithm: Algorithm, written: { outputs: Msg[]; keys: string[] }): Promise<void> {
    assert.deepEqual(partLengths(inspector, BIG_KEY), [8 * MiB, MiB]);
    assert.deepEqual(partLengths(inspector, BATCH_KEY), [8 * MiB, 8 * MiB, MiB]);
    for (const [index, key] of written.keys.entries()) {
      const { body } = await s3.get(key);
      const reported = (written.outputs[index].s3 as { checksum?: Record<string, string> }).checksum;
      assert.deepEqual(reported, { [algorithm]: storedChecksum(algorithm, body, partLengths(inspector, key)) }, key);
    }
  }

  for (const [setting, description] of [
    [undefined, "auto (a flow saved without the setting) with an endpoint"],
    ["auto", "auto with an endpoint"],
    ["md5", "md5"],
  ] as const) {
    it(`${description}: Content-MD5 of the body on every PutObject and UploadPart, nothing else; msg.s3.checksum.md5 is that of the stored bytes (multipart: composite -<parts>)`, async () => {
      const written = await writeEveryRoute(setting);
      const data = dataRequests(inspector);
      assert.ok(data.length >= 7);
      for (const request of data) {
        assert.match(request.headers["content-md5"] ?? "", /^[A-Za-z0-9+/]{22}==$/, request.url);
        assert.deepEqual(Object.keys(request.headers).filter((name) => name.startsWith("x-amz-checksum")), [], request.url);
        assert.equal(request.refused, undefined);
      }
      for (const create of inspector.matching("POST", "uploads")) assert.equal(create.headers["x-amz-checksum-algorithm"], undefined);
      await assertStoredChecksums("md5", written);
    });
  }

  it("sha256: x-amz-checksum-sha256 (the signature's digest, base64) on every PutObject and UploadPart, SHA256 declared by CreateMultipartUpload; msg.s3.checksum.sha256 is that of the stored bytes", async () => {
    const written = await writeEveryRoute("sha256");
    for (const request of dataRequests(inspector)) {
      assert.equal(request.headers["x-amz-checksum-sha256"], Buffer.from(request.headers["x-amz-content-sha256"], "hex").toString("base64"), request.url);
      assert.equal(request.headers["content-md5"], undefined);
      assert.equal(request.refused, undefined);
    }
    const creates = inspector.matching("POST", "uploads");
    assert.equal(creates.length, 2);
    for (const create of creates) assert.equal(create.headers["x-amz-checksum-algorithm"], "SHA256");
    await assertStoredChecksums("sha256", written);
  });

  it("none: no checksum header on any request, and no msg.s3.checksum", async () => {
    const written = await writeEveryRoute("none");
    for (const request of inspector.requests) {
      assert.deepEqual(Object.keys(request.headers).filter((name) => name === "content-md5" || name.startsWith("x-amz-checksum")), [], request.url);
    }
    for (const output of written.outputs) assert.equal((output.s3 as { checksum?: unknown }).checksum, undefined);
  });

  describe("Object Lock headers", () => {
    const YEAR_MS = 365 * 86_400_000;
    const retainedFor = (request: RecordedRequest) => Date.parse(request.headers["x-amz-object-lock-retain-until-date"]) - Date.now();

    it("the config node's lock on every object: mode, a retain-until date 365 days from the write, legal hold; on CreateMultipartUpload, not on parts", async () => {
      const flow = await EgressFlow.load(recorder.endpoint, {}, { objectLockMode: "COMPLIANCE", objectLockRetention: "365d", objectLockLegalHold: true });
      await flow.write({ ...device, messageId: "m1", payload: "locked" });
      await flow.write({ ...device, messageId: "big", payload: Buffer.alloc(9 * MiB) });
      const [put] = recorder.matching("PUT");
      const [create] = recorder.matching("POST", "uploads");
      for (const request of [put, create]) {
        assert.equal(request.headers["x-amz-object-lock-mode"], "COMPLIANCE");
        assert.match(request.headers["x-amz-object-lock-retain-until-date"], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        assert.ok(Math.abs(retainedFor(request) - YEAR_MS) < 60_000, request.headers["x-amz-object-lock-retain-until-date"]);
        assert.equal(request.headers["x-amz-object-lock-legal-hold"], "ON");
        assert.ok(request.headers["content-md5"] || request.method === "POST", "a checksum beside the lock");
        assert.equal(request.refused, undefined);
      }
      for (const part of recorder.matching("PUT", "partNumber")) assert.equal(part.headers["x-amz-object-lock-mode"], undefined);
    });

    it("msg.objectLock replaces the config's lock for one msg; false sends none; batches take the config's", async () => {
      let flow = await EgressFlow.load(recorder.endpoint, {}, { objectLockMode: "COMPLIANCE", objectLockRetention: "365d" });
      await flow.write({ ...device, messageId: "m1", payload: 1, objectLock: { mode: "GOVERNANCE", retainFor: "12h", legalHold: true } });
      await flow.write({ ...device, messageId: "m2", payload: 2, objectLock: false });
      await flow.write({ ...device, messageId: "m3", payload: 3, objectLock: { legalHold: true } });
      const [first, second, third] = recorder.matching("PUT");
      assert.equal(first.headers["x-amz-object-lock-mode"], "GOVERNANCE");
      assert.ok(Math.abs(retainedFor(first) - 12 * 3_600_000) < 60_000);
      assert.equal(first.headers["x-amz-object-lock-legal-hold"], "ON");
      assert.deepEqual(Object.keys(second.headers).filter((name) => name.startsWith("x-amz-object-lock")), []);
      assert.deepEqual(Object.keys(third.headers).filter((name) => name.startsWith("x-amz-object-lock")), ["x-amz-object-lock-legal-hold"]);
      await EgressFlow.unload();
      recorder.clear();
      flow = await EgressFlow.load(recorder.endpoint, { input: "batches" }, { objectLockMode: "GOVERNANCE", objectLockRetention: "7d" });
      await flow.write({ ...device, payload: "batch", complete: true });
      const [batch] = recorder.matching("PUT");
      assert.equal(batch.headers["x-amz-object-lock-mode"], "GOVERNANCE");
      assert.ok(Math.abs(retainedFor(batch) - 7 * 86_400_000) < 60_000);
    });
  });
});
