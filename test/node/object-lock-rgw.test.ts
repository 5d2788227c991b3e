import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  CreateBucketCommand,
  GetObjectCommand,
  GetObjectLegalHoldCommand,
  GetObjectRetentionCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { storedChecksum } from "../support/checksums";
import { EgressFlow, type Msg } from "../support/flow";
import { inspectedS3 } from "../support/inspector";
import { type LocalS3, OWNER_CREDENTIALS, S3_UNDER_TEST, itOnRealS3 } from "../support/s3";

const MiB = 1024 * 1024;
/** A bucket made with Object Lock and a default retention, once per run (a real server keeps it until the cluster goes). */
const LOCKED_BUCKET = `locked-${Date.now().toString(36)}`;

/**
 * What a real S3 does with Object Lock and checksums (Ceph RGW 16 with `npm run test:rgw`): it
 * checks Content-MD5, and a bucket with Object Lock and a default retention takes every write the
 * node makes with its default checksum. Pending on s3rver, which has no Object Lock.
 */
describe(`Object Lock and Content-MD5 on a real S3, against ${S3_UNDER_TEST}`, function () {
  const context = inspectedS3();
  let s3: LocalS3;
  before(async function () {
    ({ s3 } = context);
    if (!OWNER_CREDENTIALS) return;
    await s3.client.send(new CreateBucketCommand({ Bucket: LOCKED_BUCKET, ObjectLockEnabledForBucket: true }));
    await s3.client.send(
      new PutObjectLockConfigurationCommand({
        Bucket: LOCKED_BUCKET,
        ObjectLockConfiguration: { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 1 } } },
      }),
    );
  });

  /** A flow writing to the locked bucket with the owner's keys (the writer's policy covers the test bucket only). */
  const load = (egress: Record<string, unknown>, config: Record<string, unknown> = {}) =>
    EgressFlow.load(s3.endpoint, egress, { bucket: LOCKED_BUCKET, ...config }, OWNER_CREDENTIALS);

  async function stored(key: string): Promise<Buffer> {
    const output = await s3.client.send(new GetObjectCommand({ Bucket: LOCKED_BUCKET, Key: key }));
    return Buffer.from(await output.Body!.transformToByteArray());
  }

  itOnRealS3("a bucket with Object Lock and a default retention takes a msg, a 9 MiB msg, a small batch and a 17 MiB batch at checksum auto (Content-MD5), each msg.s3.checksum that of the bytes stored", async () => {
    const device = { streamGroup: "g", stream: "s", deviceId: "d1", batchId: "auto" };
    const outputs: [string, Msg, number[]][] = [];
    let flow = await load({});
    const small = await flow.write({ ...device, messageId: "m1", payload: "reading 1" });
    outputs.push(["messages/g/s/d1/auto/m1", small, [9]]);
    outputs.push(["messages/g/s/d1/auto/big", await flow.write({ ...device, messageId: "big", payload: Buffer.alloc(9 * MiB, 1) }), [8 * MiB, MiB]]);
    await EgressFlow.unload();
    flow = await load({ input: "batches", concatenation: "newline" });
    await flow.join({ ...device, batchId: "small", payload: "a" });
    outputs.push(["batches/g/s/d1/small", await flow.write({ ...device, batchId: "small", payload: "b", complete: true }), [3]]);
    await EgressFlow.unload();
    flow = await load({ input: "batches", concatenation: "plain" });
    for (let index = 0; index < 16; index++) await flow.join({ ...device, batchId: "large", payload: Buffer.alloc(MiB, index) });
    outputs.push(["batches/g/s/d1/large", await flow.write({ ...device, batchId: "large", payload: Buffer.alloc(MiB, 16), complete: true }), [8 * MiB, 8 * MiB, MiB]]);
    assert.deepEqual(flow.errors, []);
    for (const [key, output, lengths] of outputs) {
      const body = await stored(key);
      assert.deepEqual((output.s3 as { checksum?: unknown }).checksum, { md5: storedChecksum("md5", body, lengths) }, key);
      const retention = await s3.client.send(new GetObjectRetentionCommand({ Bucket: LOCKED_BUCKET, Key: key }));
      assert.equal(retention.Retention?.Mode, "GOVERNANCE", `${key}: the bucket's default retention applies`);
    }
  });

  itOnRealS3("Object Lock per write: the config node's mode, retention from the write and legal hold are what RGW keeps", async () => {
    const flow = await load({}, { objectLockMode: "GOVERNANCE", objectLockRetention: "2d", objectLockLegalHold: true });
    await flow.write({ streamGroup: "g", stream: "s", deviceId: "d1", batchId: "lock", messageId: "m1", payload: "kept" });
    const key = "messages/g/s/d1/lock/m1";
    const retention = await s3.client.send(new GetObjectRetentionCommand({ Bucket: LOCKED_BUCKET, Key: key }));
    assert.equal(retention.Retention?.Mode, "GOVERNANCE");
    assert.ok(Math.abs(retention.Retention!.RetainUntilDate!.getTime() - (Date.now() + 2 * 86_400_000)) < 120_000, String(retention.Retention?.RetainUntilDate));
    const hold = await s3.client.send(new GetObjectLegalHoldCommand({ Bucket: LOCKED_BUCKET, Key: key }));
    assert.equal(hold.LegalHold?.Status, "ON");
  });

  itOnRealS3("a deliberately wrong Content-MD5 is refused with BadDigest: the server checks it", async () => {
    const wrong = createHash("md5").update("other bytes").digest("base64");
    try {
      await s3.client.send(new PutObjectCommand({ Bucket: LOCKED_BUCKET, Key: "wrong-md5", Body: Buffer.from("the bytes"), ContentMD5: wrong }));
      assert.fail("a wrong Content-MD5 was taken");
    } catch (error) {
      assert.ok(error instanceof S3ServiceException, String(error));
      assert.equal(error.name, "BadDigest");
    }
  });
});
