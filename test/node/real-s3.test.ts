import assert from "node:assert/strict";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectAclCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { EgressFlow } from "../support/flow";
import { inspectedS3 } from "../support/inspector";
import { CREDENTIALS, itOnRealS3, type LocalS3, S3_UNDER_TEST, TEST_BUCKET } from "../support/s3";

const device = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "2023-12-19", messageId: "m1" };
const KEY = "messages/group-a/telemetry/robot-125/2023-12-19/m1";
const robot = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "2023-12-19" };
const BATCH_KEY = "batches/group-a/telemetry/robot-125/2023-12-19";

/** What s3rver does not do and a real server does: honour If-None-Match (Messages with Never overwrite, batch objects always), enforce the bucket policy (pending on s3rver). */
describe(`what only a real S3 checks, against ${S3_UNDER_TEST}`, function () {
  const context = inspectedS3();
  let s3: LocalS3;
  before(() => ({ s3 } = context));

  itOnRealS3("never overwrite: the server answers a second write of a key with 412, which counts as written, and the first bytes stay", async () => {
    const flow = await EgressFlow.load(s3.endpoint, { neverOverwrite: true });
    const first = await flow.write({ ...device, payload: "first" });
    assert.equal((first.s3 as { alreadyWritten?: boolean }).alreadyWritten, undefined);
    const again = await flow.write({ ...device, payload: "second" });
    assert.equal((again.s3 as { alreadyWritten?: boolean; key: string }).alreadyWritten, true);
    assert.equal((await s3.get(KEY)).body.toString(), "first");
    assert.deepEqual(flow.errors, []);
  });

  itOnRealS3("Batches after a restart: the server refuses the written key (412), the batch goes to the continuation key <key>~2", async () => {
    let flow = await EgressFlow.load(s3.endpoint, { input: "batches" });
    await flow.write({ ...robot, payload: "first", complete: true });
    await EgressFlow.unload();
    flow = await EgressFlow.load(s3.endpoint, { input: "batches" });
    const output = await flow.write({ ...robot, payload: "second", complete: true });
    assert.equal((output.s3 as { key: string }).key, `${BATCH_KEY}~2`);
    assert.deepEqual(await s3.keys(), [BATCH_KEY, `${BATCH_KEY}~2`]);
    assert.equal((await s3.get(BATCH_KEY)).body.toString(), "first");
    assert.equal((await s3.get(`${BATCH_KEY}~2`)).body.toString(), "second");
  });

  itOnRealS3("Batches after a restart: a batch past 64 KiB that never filled a part is written whole, so the server's 412 sends it to <key>~2 too", async () => {
    let flow = await EgressFlow.load(s3.endpoint, { input: "batches" });
    await flow.write({ ...robot, payload: "first", complete: true });
    await EgressFlow.unload();
    flow = await EgressFlow.load(s3.endpoint, { input: "batches" });
    const body = Buffer.alloc(100 * 1024, "x");
    await flow.join({ ...robot, payload: body });
    const output = await flow.write({ ...robot, complete: true });
    assert.equal((output.s3 as { key: string }).key, `${BATCH_KEY}~2`);
    assert.deepEqual(await s3.keys(), [BATCH_KEY, `${BATCH_KEY}~2`]);
    assert.equal((await s3.get(BATCH_KEY)).body.toString(), "first");
    assert.ok((await s3.get(`${BATCH_KEY}~2`)).body.equals(body));
  });

  it("without never overwrite, the second write replaces the first", async () => {
    const flow = await EgressFlow.load(s3.endpoint);
    await flow.write({ ...device, payload: "first" });
    await flow.write({ ...device, payload: "second" });
    assert.equal((await s3.get(KEY)).body.toString(), "second");
  });

  itOnRealS3("the node's writer may do nothing but write and abort: its keys cannot read, list or delete what it wrote", async () => {
    const flow = await EgressFlow.load(s3.endpoint);
    await flow.write({ ...device, payload: "written" });
    const writer = new S3Client({ endpoint: s3.endpoint, region: "us-east-1", forcePathStyle: true, credentials: CREDENTIALS });
    const refusal = async (request: Promise<unknown>): Promise<number | undefined> => {
      try {
        await request;
        return undefined;
      } catch (error) {
        assert.ok(error instanceof S3ServiceException, String(error));
        return error.$metadata.httpStatusCode;
      }
    };
    try {
      const statuses = {
        get: await refusal(writer.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: KEY }))),
        head: await refusal(writer.send(new HeadObjectCommand({ Bucket: TEST_BUCKET, Key: KEY }))),
        list: await refusal(writer.send(new ListObjectsV2Command({ Bucket: TEST_BUCKET }))),
        listUploads: await refusal(writer.send(new ListMultipartUploadsCommand({ Bucket: TEST_BUCKET }))),
        delete: await refusal(writer.send(new DeleteObjectCommand({ Bucket: TEST_BUCKET, Key: KEY }))),
        makePublic: await refusal(writer.send(new PutObjectAclCommand({ Bucket: TEST_BUCKET, Key: KEY, ACL: "public-read" }))),
      };
      assert.deepEqual(statuses, { get: 403, head: 403, list: 403, listUploads: 403, delete: 403, makePublic: 403 });
    } finally {
      writer.destroy();
    }
    assert.equal((await s3.get(KEY)).body.toString(), "written", "the bucket owner reads it");
  });
});
