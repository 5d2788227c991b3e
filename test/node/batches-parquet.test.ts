import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { EgressFlow, type Msg } from "../support/flow";
import { inspectedS3 } from "../support/inspector";
import { ParquetFile, type Row, duckdb, duckdbSchema, wasmRead } from "../support/parquet-readers";
import { S3_UNDER_TEST } from "../support/s3";

const robot = { streamGroup: "group-a", stream: "telemetry", deviceId: "robot-125", batchId: "2023-12-19" };
const ROBOT_KEY = "batches/group-a/telemetry/robot-125/2023-12-19";

/** Reads the batch object with both readers; the caller removes the file. */
async function stored(s3: { get(key: string): Promise<{ body: Buffer; contentType?: string; contentEncoding?: string; metadata: Record<string, string> }> }) {
  const object = await s3.get(ROBOT_KEY);
  return { object, file: new ParquetFile(object.body) };
}

describe(`s3-egress, Batch Completions as Apache Parquet, read back by DuckDB and parquet-wasm, against ${S3_UNDER_TEST}`, function () {
  const context = inspectedS3();
  let flow: EgressFlow;

  it("inferred schema: one row per msg, the union of the payloads' fields; DuckDB and parquet-wasm read types and values as sent", async () => {
    const { s3 } = context;
    flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "parquet" });
    const before = Date.now();
    const payloads: unknown[] = [
      { temperature: 21.5, count: 3, state: "run", ok: true, position: { x: 1, y: [2, 3] } },
      // Text and Buffers holding a JSON object are rows too (an MQTT node's payload before a json node).
      JSON.stringify({ temperature: 22, count: null, state: "stop", tags: ["a", "b"] }),
      Buffer.from(JSON.stringify({ count: -9007199254740991, note: "ünïcödé ✓" })),
      { temperature: -0.25, mixed: 1 },
    ];
    for (const [index, payload] of payloads.entries()) await flow.join({ ...robot, _msgid: `m${index}`, payload });
    const output = await flow.write({ ...robot, _msgid: "m4", payload: { mixed: "one", ok: false }, complete: true });
    const after = Date.now();
    const { object, file } = await stored(s3);
    try {
      assert.equal(object.contentType, "application/vnd.apache.parquet");
      assert.equal(object.contentEncoding, undefined);
      assert.equal(object.metadata["device-id"], "robot-125");
      assert.deepEqual((output.s3 as { bytes: number; messages: number }).messages, 5);
      assert.equal((output.s3 as { bytes: number }).bytes, object.body.length);
      assert.deepEqual(await duckdbSchema(file), {
        _arrival: "TIMESTAMP WITH TIME ZONE",
        _msgid: "VARCHAR",
        temperature: "DOUBLE",
        count: "BIGINT",
        state: "VARCHAR",
        ok: "BOOLEAN",
        position: "JSON",
        tags: "JSON",
        note: "VARCHAR",
        mixed: "JSON",
      });
      const rows = await duckdb(file, "SELECT epoch_us(_arrival) AS at, * EXCLUDE (_arrival) FROM read_parquet(?)");
      const expected: Row[] = [
        { _msgid: "m0", temperature: 21.5, count: "3", state: "run", ok: true, position: '{"x":1,"y":[2,3]}', tags: null, note: null, mixed: null },
        { _msgid: "m1", temperature: 22, count: null, state: "stop", ok: null, position: null, tags: '["a","b"]', note: null, mixed: null },
        { _msgid: "m2", temperature: null, count: "-9007199254740991", state: null, ok: null, position: null, tags: null, note: "ünïcödé ✓", mixed: null },
        { _msgid: "m3", temperature: -0.25, count: null, state: null, ok: null, position: null, tags: null, note: null, mixed: "1" },
        { _msgid: "m4", temperature: null, count: null, state: null, ok: false, position: null, tags: null, note: null, mixed: '"one"' },
      ];
      assert.deepEqual(rows.map(({ at: _at, ...row }) => row), expected);
      // The arrival time in microseconds, UTC: within the test's own clock readings, in arrival order.
      const times = rows.map((row) => Number(row.at));
      assert.ok(times.every((time, index) => time >= before * 1000 && time <= after * 1000 && (index === 0 || time >= times[index - 1])), JSON.stringify(times));

      const wasm = wasmRead(object.body);
      assert.equal(wasm.schema._arrival, "Timestamp<MICROSECOND, UTC>");
      assert.equal(wasm.schema.count, "Int64");
      assert.equal(wasm.schema.temperature, "Float64");
      assert.deepEqual(
        wasm.rows.map(({ _arrival, count, ...row }) => ({ ...row, count: count === null ? null : String(count), at: Number(_arrival) * 1000 })),
        expected.map((row, index) => ({ ...row, at: times[index] })),
      );
    } finally {
      file.remove();
    }
  });

  describe("a schema given on the node fixes columns, types and order; a msg that does not fit fails alone, naming the field and the batch", () => {
    const parquetSchema = JSON.stringify({ state: "string", temperature: "double", count: "int64", ok: "boolean?", meta: "json?" });
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ["wrong type", { state: 5, temperature: 1, count: 1 }, /^InputError: msg\.payload\.state is int64, but column state of batch batches\/group-a\/telemetry\/robot-125\/2023-12-19 is string \(the Parquet schema given on the node\)$/],
      ["a fraction for int64", { state: "x", temperature: 1, count: 1.5 }, /^InputError: msg\.payload\.count is double, but column count of batch .* is int64/],
      ["missing required field", { state: "x", temperature: 1 }, /^InputError: msg\.payload\.count is missing \(or null\), but required by the Parquet schema given on the node \(batch batches\/group-a\/telemetry\/robot-125\/2023-12-19\)$/],
      ["a required field null", { state: "x", temperature: null, count: 1 }, /^InputError: msg\.payload\.temperature is missing \(or null\), but required/],
      ["a field not in the schema", { state: "x", temperature: 1, count: 1, extra: true }, /^InputError: msg\.payload\.extra is not a column of batch batches\/group-a\/telemetry\/robot-125\/2023-12-19: not in the Parquet schema given on the node$/],
    ];
    it("DuckDB and parquet-wasm read the given columns in the given order, required ones not null; the bad msgs were refused alone", async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "parquet", parquetSchema });
      await flow.join({ ...robot, payload: { temperature: 20, count: 1, state: "run", meta: { a: [1] } } });
      for (const [name, payload, pattern] of cases) assert.match((await flow.fail({ ...robot, payload })).message, pattern, name);
      await flow.write({ ...robot, payload: { count: 2, temperature: 21.5, ok: true, state: "stop" }, complete: true });
      const { object, file } = await stored(s3);
      try {
        assert.deepEqual(await duckdbSchema(file), { _arrival: "TIMESTAMP WITH TIME ZONE", _msgid: "VARCHAR", state: "VARCHAR", temperature: "DOUBLE", count: "BIGINT", ok: "BOOLEAN", meta: "JSON" });
        assert.deepEqual(await duckdb(file, "SELECT * EXCLUDE (_arrival, _msgid) FROM read_parquet(?)"), [
          { state: "run", temperature: 20, count: "1", ok: null, meta: '{"a":[1]}' },
          { state: "stop", temperature: 21.5, count: "2", ok: true, meta: null },
        ]);
        const required = await duckdb(file, "SELECT name, repetition_type FROM parquet_schema(?) WHERE name IN ('state', 'temperature', 'count', 'ok', 'meta') ORDER BY name");
        assert.deepEqual(required, [
          { name: "count", repetition_type: "REQUIRED" },
          { name: "meta", repetition_type: "OPTIONAL" },
          { name: "ok", repetition_type: "OPTIONAL" },
          { name: "state", repetition_type: "REQUIRED" },
          { name: "temperature", repetition_type: "REQUIRED" },
        ]);
        assert.deepEqual(wasmRead(object.body).rows.map(({ state, count }) => ({ state, count })), [{ state: "run", count: 1n }, { state: "stop", count: 2n }]);
      } finally {
        file.remove();
      }
    });

    it("a schema that is not one stops the node at start, naming the property and the field", async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "parquet", parquetSchema: '{"temperature": "float"}' });
      const named = /parquetSchema field temperature has type "float", not one of boolean, int64, double, string, json \(with "\?" when optional\)/;
      assert.ok(flow.logged("error").some((entry) => entry.id === "egress" && named.test(entry.msg)), JSON.stringify(flow.logged("error")));
      assert.match((await flow.fail({ ...robot, payload: { temperature: 1 }, complete: true })).message, named);
      assert.deepEqual(await s3.keys(), []);
    });
  });

  describe("a msg that is not a row fails alone, naming what is wrong and the batch; the batch goes on", () => {
    const cases: [string, unknown, RegExp][] = [
      ["an array", [1, 2], /msg\.payload is not a JSON object \(concatenation parquet, batch batches\/group-a\/telemetry\/robot-125\/2023-12-19\): an array/],
      ["a number", 42, /msg\.payload is not a JSON object \(concatenation parquet, batch batches\/group-a\/telemetry\/robot-125\/2023-12-19\): number/],
      ["text that is not JSON", "temperature=21", /msg\.payload is not a JSON object \(concatenation parquet, batch .*\): text that is not JSON/],
      ["a field named as the node's own column", { _arrival: 1 }, /msg\.payload\._arrival is a column the node writes itself \(concatenation parquet, batch batches\/group-a/],
    ];
    for (const [name, payload, pattern] of cases) {
      it(name, async () => {
        const { s3 } = context;
        flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "parquet" });
        await flow.join({ ...robot, payload: { seq: 1 } });
        assert.match((await flow.fail({ ...robot, payload })).message, pattern);
        assert.deepEqual(await s3.keys(), [], "nothing written, the open batch not completed");
        await flow.write({ ...robot, payload: { seq: 2 }, complete: true });
        const { file } = await stored(s3);
        try {
          assert.deepEqual(await duckdb(file, "SELECT seq FROM read_parquet(?)"), [{ seq: "1" }, { seq: "2" }]);
        } finally {
          file.remove();
        }
      });
    }
  });

  it("a batch larger than a part streams its row groups as multipart parts, with min/max statistics; a later msg with a new field fails alone, naming it and the batch", async () => {
    const { s3, inspector } = context;
    flow = await EgressFlow.load(inspector.endpoint, { input: "batches", concatenation: "parquet" });
    // Random text does not compress: 8,000 rows of about 3.3 KiB are some 26 MiB of JSON and about as much Parquet: three parts.
    const rows = 8000;
    for (let seq = 0; seq < rows; seq++) await flow.join({ ...robot, payload: { seq, reading: seq / 4, blob: randomBytes(2400).toString("base64") } });
    assert.equal(inspector.matching("POST", "uploads").length, 1, "the multipart upload began while the batch was open");
    const refused = await flow.fail({ ...robot, payload: { seq: rows, extra: true } });
    assert.match(refused.message, /msg\.payload\.extra is not a column of batch batches\/group-a\/telemetry\/robot-125\/2023-12-19: not in its Parquet schema, fixed \(inferred\) when its first row group was written/);
    assert.match((await flow.fail({ ...robot, payload: { seq: "last" } })).message, /msg\.payload\.seq is string, but column seq of batch batches\/group-a\/telemetry\/robot-125\/2023-12-19 is int64/);
    const output: Msg = await flow.write({ ...robot, payload: { seq: rows, reading: 1 }, complete: true });
    assert.ok(inspector.matching("PUT", "partNumber").length >= 2, "two parts or more");
    const { object, file } = await stored(s3);
    try {
      assert.equal((output.s3 as { bytes: number }).bytes, object.body.length);
      const [totals] = await duckdb(file, "SELECT count(*) AS n, sum(seq) AS total, max(reading) AS top FROM read_parquet(?)");
      assert.deepEqual(totals, { n: String(rows + 1), total: String((rows * (rows + 1)) / 2), top: (rows - 1) / 4 });
      const groups = await duckdb(file, "SELECT row_group_id, stats_min_value AS min, stats_max_value AS max, compression FROM parquet_metadata(?) WHERE path_in_schema = 'seq' ORDER BY row_group_id");
      assert.ok(groups.length >= 2, `row groups: ${groups.length}`);
      assert.equal(groups[0].min, "0");
      assert.equal(groups.at(-1)!.max, String(rows));
      for (let index = 1; index < groups.length; index++) assert.equal(Number(groups[index].min), Number(groups[index - 1].max) + 1, "row groups follow each other");
      assert.ok(groups.every((group) => group.compression === "SNAPPY"));
      assert.equal(wasmRead(object.body).rows.length, rows + 1, "parquet-wasm reads every row");
    } finally {
      file.remove();
    }
  });

  for (const [parquetCodec, compression] of [["gzip", "GZIP"], ["none", "UNCOMPRESSED"]]) {
    it(`Parquet codec ${parquetCodec}: pages stored ${compression}; the node's gzip compression is not applied on top`, async () => {
      const { s3 } = context;
      flow = await EgressFlow.load(s3.endpoint, { input: "batches", concatenation: "parquet", parquetCodec, compression: "gzip" });
      for (let seq = 0; seq < 50; seq++) await flow.join({ ...robot, payload: { seq, state: seq % 2 ? "on" : "off" } });
      await flow.write({ ...robot, payload: { seq: 50, state: "on" }, complete: true });
      const { object, file } = await stored(s3);
      try {
        assert.equal(object.contentEncoding, undefined);
        assert.deepEqual(await duckdb(file, "SELECT DISTINCT compression FROM parquet_metadata(?)"), [{ compression }]);
        assert.deepEqual(await duckdb(file, "SELECT count(*) AS n, sum(seq) AS total FROM read_parquet(?) WHERE state = 'on'"), [{ n: "26", total: "675" }]);
        assert.equal(wasmRead(object.body).rows.length, 51);
      } finally {
        file.remove();
      }
    });
  }
});
