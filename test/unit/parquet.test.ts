import assert from "node:assert/strict";
import { addColumns, kindsOfLine, misfit, parquetObject, parquetRow, type Columns } from "../../nodes/lib/delivery/parquet";
import { Collected, ParquetEncoder } from "../../nodes/lib/delivery/parquet";
import { ParquetFile, duckdb, wasmRead } from "../support/parquet-readers";

describe("Parquet rows and columns (concatenation parquet)", () => {
  it("a row is its arrival, msgid and object as one line of JSON; its fields' kinds, nulls left out", () => {
    const { line, kinds } = parquetRow({ a: 1, b: 1.5, c: "x", d: false, e: { f: 1 }, g: [1], h: null }, 1700000000123, "id-1", () => "k");
    assert.equal(line, '[1700000000123,"id-1",{"a":1,"b":1.5,"c":"x","d":false,"e":{"f":1},"g":[1],"h":null}]');
    assert.deepEqual([...kinds], [["a", "int64"], ["b", "double"], ["c", "string"], ["d", "boolean"], ["e", "json"], ["g", "json"]]);
    assert.deepEqual(kindsOfLine(line), kinds, "a row read back from the spool has the same kinds");
    assert.ok(!parquetRow('{\n  "pretty": true\n}', 1, "m", () => "k").line.includes("\n"), "one line whatever the payload's text");
  });

  it("columns widen: whole numbers and fractions make double, anything else mixed is JSON text", () => {
    const columns: Columns = new Map([["n", "int64"], ["s", "string"]]);
    addColumns(columns, new Map([["n", "double"], ["s", "int64"], ["t", "boolean"]]));
    assert.deepEqual([...columns], [["n", "double"], ["s", "json"], ["t", "boolean"]]);
  });

  it("a streaming batch's fixed columns take what fits them and name the field and batch of what does not", () => {
    const columns: Columns = new Map([["n", "double"], ["j", "json"], ["i", "int64"]]);
    assert.equal(misfit(columns, new Map([["n", "int64"], ["j", "string"]]), () => "K"), undefined);
    assert.match(String(misfit(columns, new Map([["x", "int64"]]), () => "K")?.message), /^msg\.payload\.x is not a column of batch K: not in its Parquet schema, fixed/);
    assert.match(String(misfit(columns, new Map([["i", "double"]]), () => "K")?.message), /^msg\.payload\.i is double, but column i of batch K is int64/);
  });

  it("rows cut anywhere between writes make the same rows as one write, in row groups of at most 1 MiB of JSON; a small batch is one row group", async () => {
    const columns: Columns = new Map();
    const lines: string[] = [];
    for (let index = 0; index < 300; index++) {
      const { line, kinds } = parquetRow({ index, text: "é".repeat(index % 7) }, 1_000 + index, `m${index}`, () => "k");
      addColumns(columns, kinds);
      lines.push(line);
    }
    const bytes = Buffer.from(lines.join("\n"));
    const kept = new Collected();
    const encoder = new ParquetEncoder(kept, columns, "snappy");
    // Cuts inside lines and inside multi-byte characters.
    for (let start = 0; start < bytes.length; start += 997) encoder.write(bytes.subarray(start, start + 997));
    await encoder.finish();
    const streamed = wasmRead(Buffer.concat(kept.chunks));
    const whole = wasmRead(await parquetObject(bytes, columns, "snappy"));
    assert.deepEqual(streamed.rows, whole.rows);
    assert.equal(streamed.rows.length, 300);
    assert.deepEqual(streamed.rows[299], { _arrival: 1299, _msgid: "m299", index: 299n, text: "é".repeat(299 % 7) });
  });

  it("batches encoded by turns, row group by row group, each make their own rows", async () => {
    const batches = [0, 1].map((batch) => {
      const columns: Columns = new Map();
      const lines: string[] = [];
      // About 2.5 MiB of JSON each: row groups are written between the other batch's.
      for (let index = 0; index < 2500; index++) {
        const { line, kinds } = parquetRow({ batch, index, text: `${batch}`.repeat(1000) }, index, `m${batch}-${index}`, () => "k");
        addColumns(columns, kinds);
        lines.push(line);
      }
      const kept = new Collected();
      return { bytes: Buffer.from(lines.join("\n")), columns, kept, encoder: new ParquetEncoder(kept, columns, "snappy") };
    });
    for (let start = 0; start < batches[0].bytes.length; start += 256 * 1024) for (const { bytes, encoder } of batches) encoder.write(bytes.subarray(start, start + 256 * 1024));
    for (const { encoder } of batches) await encoder.finish();
    for (const { bytes, columns, kept } of batches) {
      const streamed = wasmRead(Buffer.concat(kept.chunks));
      assert.equal(streamed.rows.length, 2500);
      assert.deepEqual(streamed.rows, wasmRead(await parquetObject(bytes, columns, "snappy")).rows);
    }
  });

  it("long text keeps statistics of 16 bytes, marked inexact, that still bound the values (the writer does not hold a row group's text until the footer)", async () => {
    const columns: Columns = new Map();
    const lines: string[] = [];
    for (const text of ["b".repeat(5000) + "z", "a".repeat(40) + "\u00ff".repeat(3000), "c".repeat(17)]) {
      const { line, kinds } = parquetRow({ text }, 1, "m", () => "k");
      addColumns(columns, kinds);
      lines.push(line);
    }
    const file = new ParquetFile(await parquetObject(Buffer.from(lines.join("\n")), columns, "none"));
    try {
      const [stats] = await duckdb(file, "SELECT stats_min_value AS min, stats_max_value AS max, min_is_exact, max_is_exact FROM parquet_metadata(?) WHERE path_in_schema = 'text'");
      assert.deepEqual(stats, { min: "a".repeat(16), max: "c".repeat(15) + "d", min_is_exact: false, max_is_exact: false });
      assert.deepEqual(await duckdb(file, "SELECT max(text) AS max, min(length(text)) AS shortest FROM read_parquet(?)"), [{ max: "c".repeat(17), shortest: "17" }]);
    } finally {
      file.remove();
    }
  });
});
