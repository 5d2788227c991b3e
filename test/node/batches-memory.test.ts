import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { MiB, patternBytes } from "../support/bytes";
import { EgressFlow } from "../support/flow";
import { inspectedS3 } from "../support/inspector";
import { TEST_BUCKET } from "../support/s3";

const robot = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "big" };
const KEY = "batches/group-a/telemetry/robot-125/big";
const BATCH_MIB = 200;
/** What the node may add to the process's RSS for one open batch of any size: a few 8 MiB parts, garbage not collected yet, s3rver's buffers. */
const RSS_BOUND_MIB = 96;

describe("s3-egress, Batch Completions route, memory", function () {
  const context = inspectedS3();

  it(`streams a ${BATCH_MIB} MiB batch in parts with the process's RSS bounded, and stores it byte-identical`, async () => {
    const { s3 } = context;
    const flow = await EgressFlow.load(s3.endpoint, { input: "batches" });
    const sent = createHash("sha256");
    let baseline = 0;
    let peak = 0;
    for (let index = 0; index < BATCH_MIB; index++) {
      const payload = patternBytes(index, MiB);
      sent.update(payload);
      // done() comes once the data is held; it waits while too many parts are on their way to S3.
      await flow.join({ ...robot, payload });
      flow.forgetRecordedCalls();
      const rss = process.memoryUsage.rss();
      if (index === 16) baseline = rss; // after the first parts: buffers, sockets and s3rver warmed up
      peak = Math.max(peak, rss);
    }
    const output = await flow.write({ ...robot, complete: true });
    assert.equal((output.s3 as { bytes: number }).bytes, BATCH_MIB * MiB);
    const riseMiB = (peak - baseline) / MiB;
    assert.ok(riseMiB < RSS_BOUND_MIB, `RSS rose by ${riseMiB.toFixed(1)} MiB while ${BATCH_MIB} MiB went through`);

    // Read back as a stream: the object is hashed, never held whole.
    const object = await s3.client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: KEY }));
    const stored = createHash("sha256");
    let bytes = 0;
    for await (const piece of object.Body as AsyncIterable<Buffer>) {
      stored.update(piece);
      bytes += piece.length;
    }
    assert.equal(bytes, BATCH_MIB * MiB);
    assert.equal(stored.digest("hex"), sent.digest("hex"), "byte-identical");
  });
});
