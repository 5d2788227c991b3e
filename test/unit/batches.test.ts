import assert from "node:assert/strict";
import { batchContentType } from "../../nodes/lib/delivery/batches";
import { batchSettings } from "../../nodes/lib/nodered/egress-settings";
import { formatBytes } from "../../nodes/lib/core/bytes";

describe("batch settings and texts", () => {
  it("reads the node's batch properties, with defaults for what is missing; an enumerated value it does not know is refused, named", () => {
    const defaults = { maxOpenBatches: 100_000, atOpenLimit: "complete-oldest", maxBatchMemoryBytes: 32 * 1024 * 1024 };
    assert.deepEqual(batchSettings({}), { path: "", concatenation: "plain", idleTimeoutMs: 0, compression: "none", parquetCodec: "snappy", ...defaults });
    assert.deepEqual(batchSettings({ path: "a/b", concatenation: "newline", idleTimeout: "2.5", compression: "gzip", maxOpenBatches: "500", openBatchesFull: "reject", maxBatchMemoryMB: "8" }), {
      path: "a/b",
      concatenation: "newline",
      idleTimeoutMs: 2500,
      compression: "gzip",
      parquetCodec: "snappy",
      maxOpenBatches: 500,
      atOpenLimit: "reject",
      maxBatchMemoryBytes: 8 * 1024 * 1024,
    });
    for (const maxBatchMemoryMB of [-1, "", "lots", 0]) assert.equal(batchSettings({ maxBatchMemoryMB }).maxBatchMemoryBytes, 32 * 1024 * 1024, String(maxBatchMemoryMB));
    // Below one part's worth the runtime takes the least the editor allows.
    assert.equal(batchSettings({ maxBatchMemoryMB: 2 }).maxBatchMemoryBytes, 8 * 1024 * 1024);
    for (const maxOpenBatches of [-1, "", "many", 0]) assert.equal(batchSettings({ maxOpenBatches }).maxOpenBatches, 100_000, String(maxOpenBatches));
    assert.throws(() => batchSettings({ openBatchesFull: "spill" }), /^Error: openBatchesFull "spill" is not a value this version knows \(complete-oldest, reject\)$/);
    assert.equal(batchSettings({ concatenation: "none" }).concatenation, "none");
    assert.equal(batchSettings({ concatenation: "" }).concatenation, "plain", "empty is absent: the default");
    // A typo, or a value of a newer version in a flow loaded by an older one, is never written as plain.
    assert.throws(() => batchSettings({ concatenation: "zip" }), /concatenation "zip" is not a value this version knows \(plain, none, newline, parquet\)/);
    assert.throws(() => batchSettings({ concatenation: "orc" }), /concatenation "orc"/);
    assert.throws(() => batchSettings({ parquetCodec: "lz4" }), /parquetCodec "lz4" is not a value this version knows \(snappy, gzip, none\)/);
    for (const idleTimeout of [-1, "", "soon", 0]) assert.equal(batchSettings({ idleTimeout }).idleTimeoutMs, 0, String(idleTimeout));
    assert.throws(() => batchSettings({ compression: "brotli" }), /compression "brotli" is not a value this version knows \(none, gzip\)/);
  });

  it("gives a batch its first message's Content-Type; JSON one per line is NDJSON unless msg.contentType says otherwise", () => {
    assert.equal(batchContentType("application/json", undefined, "newline"), "application/x-ndjson");
    assert.equal(batchContentType("application/json", undefined, "plain"), "application/json");
    assert.equal(batchContentType("application/json", "application/json", "newline"), "application/json");
    assert.equal(batchContentType("text/csv", "text/csv", "newline"), "text/csv");
    assert.equal(batchContentType("text/plain; charset=utf-8", "", "newline"), "text/plain; charset=utf-8");
  });

  it("formats byte counts for the status", () => {
    assert.equal(formatBytes(0), "0 B");
    assert.equal(formatBytes(1023), "1023 B");
    assert.equal(formatBytes(1536), "1.5 KiB");
    assert.equal(formatBytes(8 * 1024 * 1024), "8.0 MiB");
    assert.equal(formatBytes(3 * 1024 ** 3), "3.0 GiB");
  });
});
