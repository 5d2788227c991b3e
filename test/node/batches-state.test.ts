import assert from "node:assert/strict";
import { BatchRoute, type CompletionTrigger } from "../../nodes/lib/delivery/batches";
import { DEFAULT_PART_SIZE } from "../../nodes/lib/delivery/multipart";
import { Writer } from "../../nodes/lib/delivery/writer";
import { S3Sink } from "../../nodes/lib/s3/client";
import { MiB, patternBytes } from "../support/bytes";
import { inspectedS3 } from "../support/inspector";
import { CREDENTIALS, S3_UNDER_TEST, TEST_BUCKET } from "../support/s3";

/** The open-batch state a durable spool keeps: plain data, with the upload id, acknowledged parts and the unflushed tail. */
describe(`BatchRoute open-batch state, against ${S3_UNDER_TEST}`, function () {
  const context = inspectedS3();

  it("exposes each open batch as serialisable state plus its unflushed tail, and completes what it holds", async () => {
    const sink = new S3Sink({ bucket: TEST_BUCKET, region: "us-east-1", endpoint: context.s3.endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    const completions: CompletionTrigger[] = [];
    const route = new BatchRoute(sink, new Writer(4), { path: "p", concatenation: "plain", idleTimeoutMs: 0, compression: "none" }, {
      completed: (_outcome, trigger) => completions.push(trigger),
      failed: (error) => assert.fail(error),
    });
    try {
      const fields = { streamGroup: "g", stream: "s", deviceId: "d", batchId: "b", batchSliceId: "first" };
      const chunks = Array.from({ length: 9 }, (_, index) => patternBytes(index, MiB));
      for (const chunk of chunks) {
        const admission = route.accept(fields, chunk, undefined, false, 1000);
        if ("ready" in admission) await admission.ready;
      }
      route.accept({ ...fields, deviceId: "other" }, "small", undefined, false, 2000);
      // Wait for part 1 to be acknowledged.
      while (route.openBatches()[0].state.upload.parts.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));

      const [big, small] = route.openBatches();
      const state = JSON.parse(JSON.stringify(big.state));
      assert.deepEqual(state, {
        fields,
        key: "p/batches/g/s/d/b",
        metadata: { "stream-group-name": "g", "stream-name": "s", "device-id": "d", "batch-id": "b", "batch-slice-id": "first" },
        contentType: "application/octet-stream",
        messages: 9,
        openedAt: 1000,
        lastMessageAt: 1000,
        upload: { uploadId: big.state.upload.uploadId, parts: [{ partNumber: 1, etag: big.state.upload.parts[0].etag }] },
      });
      assert.ok(typeof state.upload.uploadId === "string" && state.upload.uploadId.length > 0, "the server's upload id");
      assert.ok(big.tail.equals(Buffer.concat(chunks).subarray(DEFAULT_PART_SIZE)), "the tail is what part 1 did not take");
      assert.deepEqual(small.state.upload, { parts: [] }, "a batch under one part has no upload yet");
      assert.equal(small.tail.toString(), "small");
      assert.equal(route.openCount, 2);
      assert.equal(route.bufferedBytes, 9 * MiB - DEFAULT_PART_SIZE + 5);

      await route.close();
      assert.deepEqual(completions, ["close", "close"]);
      assert.ok((await context.s3.get("p/batches/g/s/d/b")).body.equals(Buffer.concat(chunks)));
      assert.equal((await context.s3.get("p/batches/g/s/other/b")).body.toString(), "small");
      assert.equal(route.openCount, 0);
    } finally {
      sink.destroy();
    }
  });
});
