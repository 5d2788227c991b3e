import assert from "node:assert/strict";
import { createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import type { Readable } from "node:stream";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { MiB } from "../support/bytes";
import { EgressFlow } from "../support/flow";
import { inspectedS3 } from "../support/inspector";
import { ParquetFile, duckdb } from "../support/parquet-readers";
import { TEST_BUCKET } from "../support/s3";

const robot = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "big" };
const KEY = "batches/group-a/telemetry/robot-125/big";
const JSON_MIB = 1024;
const ROW_TEXT = 16 * 1024;
/**
 * Measured on 2 shared cores: this feed as NDJSON (newline) raises RSS by about 77 MiB (a few 8 MiB
 * parts, garbage not collected yet, s3rver's buffers); as Parquet by 118 to 137 MiB, 75 MiB for a
 * quarter of it. The bound guards against a batch held whole (1 GiB), not for parity with NDJSON.
 */
const RSS_BOUND_MIB = 160;

describe("s3-egress, Batch Completions as Parquet, memory", function () {
  const context = inspectedS3();

  it(`a batch of ${JSON_MIB} MiB of JSON streams as Parquet row groups with the process's RSS bounded, and DuckDB reads every row back`, async function () {
    this.timeout(900_000);
    const { s3 } = context;
    const flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "parquet" });
    // Text that varies from row to row, as readings do, about 16 KiB a row: some 66,000 rows make 1 GiB of JSON.
    const words = Array.from({ length: 4096 }, (_, index) => `w${(index * 2654435761) % 1000003} `);
    let rows = 0;
    let jsonBytes = 0;
    let baseline = 0;
    let peak = 0;
    for (let seq = 0; jsonBytes < JSON_MIB * MiB; seq++, rows++) {
      let text = "";
      for (let word = seq % 4096; text.length < ROW_TEXT - 64; word = (word + 7) % 4096) text += words[word];
      const payload = { seq, temperature: 20 + (seq % 1000) / 100, text };
      jsonBytes += Buffer.byteLength(JSON.stringify(payload));
      await flow.join({ ...robot, payload });
      if (seq % 256 === 0) {
        flow.forgetRecordedCalls();
        const rss = process.memoryUsage.rss();
        if (seq === 2048) baseline = rss; // after the first parts: buffers, sockets, s3rver and the encoder warmed up
        peak = Math.max(peak, rss);
      }
    }
    const output = await flow.write({ ...robot, complete: true });
    const riseMiB = (peak - baseline) / MiB;
    assert.ok(riseMiB < RSS_BOUND_MIB, `RSS rose by ${riseMiB.toFixed(1)} MiB while ${(jsonBytes / MiB).toFixed(0)} MiB of JSON went through`);

    // Read back as a stream into a file for DuckDB: the object is never held whole here either.
    const object = await s3.client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: KEY }));
    const file = new ParquetFile(Buffer.alloc(0));
    try {
      await pipeline(object.Body as Readable, createWriteStream(file.path));
      const [read] = await duckdb(file, "SELECT count(*) AS n, sum(seq) AS total, min(seq) AS low, max(seq) AS high, sum(length(text)) AS text FROM read_parquet(?)");
      assert.deepEqual(read, { n: String(rows), total: String((rows * (rows - 1)) / 2), low: "0", high: String(rows - 1), text: read.text });
      assert.ok(Number(read.text) >= rows * (ROW_TEXT - 64), "every row's text whole");
      const [groups] = await duckdb(file, "SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata(?)");
      assert.ok(Number(groups.n) >= JSON_MIB, `row groups of at most 1 MiB of JSON: ${groups.n}`);
      console.log(`      ${(jsonBytes / MiB).toFixed(0)} MiB of JSON -> ${((output.s3 as { bytes: number }).bytes / MiB).toFixed(1)} MiB of Parquet in ${groups.n} row groups; RSS rise ${riseMiB.toFixed(1)} MiB`);
    } finally {
      file.remove();
    }
  });
});
