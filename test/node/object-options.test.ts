import assert from "node:assert/strict";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { STORAGE_CLASSES } from "../../nodes/lib/core/rules";
import { S3Sink } from "../../nodes/lib/s3/client";
import { EgressFlow } from "../support/flow";
import { type S3Inspector, inspectedS3 } from "../support/inspector";
import { CREDENTIALS, type LocalS3, TEST_BUCKET } from "../support/s3";

const device = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "2023-12-19", messageId: "m1" };
const KEY = "messages/group-a/telemetry/robot-125/2023-12-19/m1";
const KEY_ARN = "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

describe("object options: the requests they produce and what S3 stores", function () {
  const context = inspectedS3();
  let s3: LocalS3;
  let inspector: S3Inspector;
  let recorder: S3Inspector;
  before(() => ({ s3, inspector, recorder } = context));

  async function stored(key: string) {
    const output = await s3.client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: key }));
    await output.Body!.transformToByteArray();
    return output;
  }

  it("sends no option headers by default", async () => {
    await (await EgressFlow.load(inspector.endpoint)).write({ ...device, payload: 1 });
    const [put] = inspector.matching("PUT");
    for (const name of ["x-amz-storage-class", "x-amz-server-side-encryption", "x-amz-server-side-encryption-aws-kms-key-id", "cache-control"]) {
      assert.equal(put.headers[name], undefined, name);
    }
    assert.equal(put.refused, undefined);
  });

  it("writes storage class, Cache-Control and Content-Type of the config, and S3 keeps them", async () => {
    const flow = await EgressFlow.load(inspector.endpoint, {}, { storageClass: "STANDARD_IA", cacheControl: "max-age=3600, public", contentType: "text/csv" });
    await flow.write({ ...device, payload: "a,b\n1,2\n" });
    const [put] = inspector.matching("PUT");
    assert.equal(put.headers["x-amz-storage-class"], "STANDARD_IA");
    assert.equal(put.headers["cache-control"], "max-age=3600, public");
    assert.equal(put.headers["content-type"], "text/csv");
    assert.equal(put.refused, undefined, "signed as S3 requires");
    const object = await stored(KEY);
    assert.equal(object.StorageClass, "STANDARD_IA");
    assert.equal(object.CacheControl, "max-age=3600, public");
    assert.equal(object.ContentType, "text/csv");
  });

  it("lets msg.storageClass, msg.cacheControl and msg.contentType override the config for one msg", async () => {
    const flow = await EgressFlow.load(inspector.endpoint, {}, { storageClass: "STANDARD_IA", cacheControl: "no-cache", contentType: "text/csv" });
    await flow.write({ ...device, payload: "{}", storageClass: "ONEZONE_IA", cacheControl: "max-age=60", contentType: "application/json" });
    await flow.write({ ...device, messageId: "m2", payload: "x" });
    const [first, second] = inspector.matching("PUT");
    assert.deepEqual(
      [first.headers["x-amz-storage-class"], first.headers["cache-control"], first.headers["content-type"]],
      ["ONEZONE_IA", "max-age=60", "application/json"],
    );
    assert.deepEqual(
      [second.headers["x-amz-storage-class"], second.headers["cache-control"], second.headers["content-type"]],
      ["STANDARD_IA", "no-cache", "text/csv"],
      "the next msg has the config's options again",
    );
    const object = await stored(KEY);
    assert.equal(object.StorageClass, "ONEZONE_IA");
    assert.equal(object.CacheControl, "max-age=60");
  });

  it("sends every storage class as x-amz-storage-class", async () => {
    const flow = await EgressFlow.load(recorder.endpoint);
    for (const storageClass of STORAGE_CLASSES) await flow.write({ ...device, messageId: storageClass, payload: 1, storageClass });
    assert.deepEqual(
      recorder.matching("PUT").map((request) => request.headers["x-amz-storage-class"]),
      [...STORAGE_CLASSES],
    );
  });

  it("sends SSE-S3 and SSE-KMS with a key id as S3 expects them", async () => {
    let flow = await EgressFlow.load(recorder.endpoint, {}, { serverSideEncryption: "AES256" });
    await flow.write({ ...device, payload: 1 });
    await EgressFlow.unload();
    flow = await EgressFlow.load(recorder.endpoint, {}, { serverSideEncryption: "aws:kms", kmsKeyId: KEY_ARN });
    await flow.write({ ...device, payload: 1 });
    const [sseS3, sseKms] = recorder.matching("PUT");
    assert.equal(sseS3.headers["x-amz-server-side-encryption"], "AES256");
    assert.equal(sseS3.headers["x-amz-server-side-encryption-aws-kms-key-id"], undefined);
    assert.equal(sseKms.headers["x-amz-server-side-encryption"], "aws:kms");
    assert.equal(sseKms.headers["x-amz-server-side-encryption-aws-kms-key-id"], KEY_ARN);
    assert.ok(recorder.requests.every((request) => request.refused === undefined), "every option header is signed");
  });

  it("carries the options into CreateMultipartUpload (If-None-Match into Complete), and S3 keeps them on the completed object", async () => {
    const headers = { "x-amz-storage-class": "GLACIER", "cache-control": "max-age=86400", "content-encoding": "gzip", "if-none-match": "*" };
    const options = { contentType: "application/x-ndjson", metadata: { "device-id": "robot-125" }, headers };
    const sink = new S3Sink({ bucket: TEST_BUCKET, region: "us-east-1", endpoint: inspector.endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    try {
      const uploadId = await sink.createMultipartUpload("batches/big", options);
      const part = await sink.uploadPart("batches/big", uploadId, 1, Buffer.from('{"a":1}\n'));
      await sink.completeMultipartUpload("batches/big", uploadId, [{ partNumber: 1, ...part }], true);
    } finally {
      sink.destroy();
    }
    const [create] = inspector.matching("POST", "uploads");
    assert.equal(create.headers["x-amz-storage-class"], "GLACIER");
    assert.equal(create.headers["cache-control"], "max-age=86400");
    assert.equal(create.headers["content-encoding"], "gzip");
    assert.equal(create.headers["content-type"], "application/x-ndjson");
    assert.equal(create.headers["x-amz-meta-device-id"], "robot-125");
    // S3 refuses conditions on CreateMultipartUpload; Complete carries it.
    assert.equal(create.headers["if-none-match"], undefined);
    assert.equal(inspector.matching("POST", "uploadId")[0].headers["if-none-match"], "*");
    assert.ok(inspector.requests.every((request) => request.refused === undefined));
    const object = await stored("batches/big");
    assert.equal(object.StorageClass, "GLACIER");
    assert.equal(object.CacheControl, "max-age=86400");
    assert.equal(object.ContentType, "application/x-ndjson");
    assert.equal(object.ContentEncoding, "gzip");
    assert.equal(object.Metadata?.["device-id"], "robot-125");
  });

  // To the recorder: a store without encryption set up (s3rver ignores it, RGW over plain HTTP refuses it) cannot keep it.
  it("sends SSE-S3, and SSE-KMS with its key id, in CreateMultipartUpload", async () => {
    const sse: Record<string, string>[] = [
      { "x-amz-server-side-encryption": "AES256" },
      { "x-amz-server-side-encryption": "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN },
    ];
    const sink = new S3Sink({ bucket: TEST_BUCKET, region: "us-east-1", endpoint: recorder.endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    try {
      for (const headers of sse) await sink.createMultipartUpload("batches/encrypted", { contentType: "application/octet-stream", metadata: {}, headers });
    } finally {
      sink.destroy();
    }
    const creates = recorder.matching("POST", "uploads");
    assert.deepEqual(
      creates.map((create) => [create.headers["x-amz-server-side-encryption"], create.headers["x-amz-server-side-encryption-aws-kms-key-id"]]),
      [["AES256", undefined], ["aws:kms", KEY_ARN]],
    );
    assert.ok(creates.every((create) => create.refused === undefined));
  });

  describe("an invalid override fails that msg alone, names the property, sends nothing", () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["unknown storage class", { storageClass: "FAST" }, /msg\.storageClass "FAST" is not an S3 storage class/],
      ["lowercase storage class", { storageClass: "standard_ia" }, /msg\.storageClass "standard_ia" is not an S3 storage class/],
      ["storage class that is not a string", { storageClass: { class: "GLACIER" } }, /msg\.storageClass must be a string, not object/],
      ["Cache-Control with a line break", { cacheControl: "no-cache\r\nx-amz-acl: public-read" }, /msg\.cacheControl ".*" is not a Cache-Control value/s],
      ["Cache-Control that is not a string", { cacheControl: 3600 }, /msg\.cacheControl must be a string, not number/],
      ["Cache-Control with a non-breaking space", { cacheControl: "max-age=60,\u00a0public" }, /msg\.cacheControl ".*" may contain only printable ASCII characters, not U\+00A0 at position 12/],
      ["Cache-Control with a quoted umlaut", { cacheControl: 'private="Zürich"' }, /msg\.cacheControl ".*" may contain only printable ASCII characters, not U\+00FC at position 11/],
      ["Object Lock that is not an object", { objectLock: "COMPLIANCE" }, /msg\.objectLock must be an object such as \{ mode: "COMPLIANCE", retainFor: "365d", legalHold: true \}, not string/],
      ["Object Lock with an unknown mode", { objectLock: { mode: "LEGAL", retainFor: "1d" } }, /msg\.objectLock\.mode "LEGAL" must be GOVERNANCE or COMPLIANCE/],
      ["Object Lock mode without retention", { objectLock: { mode: "COMPLIANCE" } }, /msg\.objectLock\.retainFor is required with msg\.objectLock\.mode COMPLIANCE/],
      ["Object Lock retention that is no period", { objectLock: { mode: "GOVERNANCE", retainFor: "1 month" } }, /msg\.objectLock\.retainFor "1 month" is not a retention period/],
      ["Object Lock retention as a number", { objectLock: { mode: "GOVERNANCE", retainFor: 365 } }, /msg\.objectLock\.retainFor must be a string such as "365d", not number/],
      ["Object Lock legal hold as text", { objectLock: { legalHold: "ON" } }, /msg\.objectLock\.legalHold must be true or false, not string/],
    ];
    for (const [name, change, pattern] of cases) {
      it(name, async () => {
        const flow = await EgressFlow.load(inspector.endpoint);
        const error = await flow.fail({ ...device, payload: "x", ...change });
        assert.match(error.message, pattern);
        assert.deepEqual(inspector.requests, [], "no request sent");
        assert.deepEqual(await s3.keys(), []);
        await flow.write({ ...device, payload: "next" });
        assert.deepEqual(await s3.keys(), [KEY], "the node keeps working");
      });
    }
  });

  it("msg.objectLock while the config node's checksum is none: that msg fails naming both, nothing is sent", async () => {
    const flow = await EgressFlow.load(inspector.endpoint, {}, { checksum: "none" });
    const error = await flow.fail({ ...device, payload: "x", objectLock: { mode: "COMPLIANCE", retainFor: "365d" } });
    assert.match(error.message, /checksum "none" cannot be used with Object Lock \(msg\.objectLock\.mode COMPLIANCE\)/);
    assert.deepEqual(inspector.requests, []);
  });

  describe("an invalid config option stops the node with a red status and names the property", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ storageClass: "FAST" }, /storageClass "FAST" is not an S3 storage class/],
      [{ serverSideEncryption: "KMS" }, /serverSideEncryption "KMS" must be empty \(bucket default\), AES256 \(SSE-S3\) or aws:kms \(SSE-KMS\)/],
      [{ serverSideEncryption: "AES256", kmsKeyId: KEY_ARN }, /kmsKeyId is only used with serverSideEncryption aws:kms/],
      [{ cacheControl: "max-age=" }, /cacheControl "max-age=" is not a Cache-Control value/],
      [{ contentType: "csv" }, /contentType "csv" is not a media type/],
      [{ cacheControl: "max-age=60,\u00a0public" }, /cacheControl ".*" may contain only printable ASCII characters, not U\+00A0/],
      [{ contentType: 'text/plain; title="Grüße"' }, /contentType ".*" may contain only printable ASCII characters, not U\+00FC/],
      [{ checksum: "crc32" }, /checksum "crc32" must be one of auto, sha256, md5, none/],
      [{ objectLockMode: "COMPLIANCE" }, /objectLockRetention is required with objectLockMode COMPLIANCE/],
      [{ objectLockMode: "GOVERNANCE", objectLockRetention: "forever" }, /objectLockRetention "forever" is not a retention period/],
      [{ objectLockRetention: "30d" }, /objectLockRetention needs objectLockMode GOVERNANCE or COMPLIANCE/],
      [{ checksum: "none", objectLockMode: "COMPLIANCE", objectLockRetention: "365d" }, /checksum "none" cannot be used with Object Lock \(objectLockMode COMPLIANCE\)/],
      [{ checksum: "none", objectLockLegalHold: true }, /checksum "none" cannot be used with Object Lock \(objectLockLegalHold\)/],
    ];
    for (const [configProps, pattern] of cases) {
      it(JSON.stringify(configProps), async () => {
        const flow = await EgressFlow.load(inspector.endpoint, {}, configProps);
        assert.match((await flow.fail({ ...device, payload: 1 })).message, pattern);
        await flow.status((status) => status.fill === "red");
        assert.deepEqual(inspector.requests, []);
      });
    }
  });
});
