import assert from "node:assert/strict";
import { bucketProblem, cacheControlProblem, egressChoicesProblem, parquetSchemaProblem, contentTypeProblem, endpointPath, endpointProblem, pathProblem, regionProblem, segmentProblem, utf8Length } from "../../nodes/lib/core/rules";
import { absentMeansDefault, absentProperties } from "../../nodes/lib/core/saved-properties";
import { decodeHeaderValue, encodeHeaderValue } from "../../nodes/lib/core/rfc2047";
import { MessageIdGenerator, utcDate } from "../../nodes/lib/core/ids";

describe("configuration rules", () => {
  it("accepts valid bucket names and names what is wrong with others", () => {
    for (const name of ["my-bucket", "abc", "logs.example.com", "a".repeat(63)]) assert.equal(bucketProblem(name), undefined, name);
    assert.match(bucketProblem("ab")!, /3 to 63/);
    assert.match(bucketProblem("My_Bucket")!, /lowercase/);
    assert.match(bucketProblem("-bucket")!, /begin and end/);
    assert.match(bucketProblem("a..b")!, /adjacent dots/);
    assert.match(bucketProblem("192.168.1.1")!, /IP address/);
    assert.match(bucketProblem("xn--bucket")!, /prefix/);
  });

  it("checks region and endpoint", () => {
    assert.equal(regionProblem("eu-central-1"), undefined);
    assert.equal(regionProblem("auto"), undefined);
    assert.match(regionProblem("")!, /required/);
    assert.match(regionProblem("EU Central")!, /lowercase/);
    assert.equal(endpointProblem(""), undefined);
    assert.equal(endpointProblem("http://127.0.0.1:9000"), undefined);
    assert.match(endpointProblem("ftp://127.0.0.1:9000")!, /http/);
    assert.match(endpointProblem("127.0.0.1:9000")!, /not a URL/);
    assert.match(endpointProblem("not a url")!, /not a URL/);
    assert.match(endpointProblem("https://h/?x=1")!, /query/);
  });

  it("finds the path an endpoint puts in front of every request, which the dialog and the log explain", () => {
    assert.equal(endpointPath("http://minio.local:9000/iot"), "/iot");
    assert.equal(endpointPath("https://example.com/storage/v1/s3/"), "/storage/v1/s3");
    assert.equal(endpointPath("http://127.0.0.1:9000"), "");
    assert.equal(endpointPath("http://127.0.0.1:9000/"), "");
    assert.equal(endpointPath(""), "");
    assert.equal(endpointPath("not a url"), "");
  });
});

describe("enumerated properties of the s3-egress node (a value this version does not know)", () => {
  const fields = ["deviceId", "batchId"];

  it("take every value the dialog offers, and absent (undefined, null, empty) as the default", () => {
    const known = { input: "batches", batchIdAutofill: "utc-date", messageIdAutofill: "auto", spool: true, queueFull: "reject", neverOverwrite: false, concatenation: "parquet", parquetCodec: "gzip", compression: "gzip", openBatchesFull: "reject", concurrency: 16, deviceIdType: "jsonata" };
    assert.equal(egressChoicesProblem(known, fields), undefined);
    assert.equal(egressChoicesProblem({ concatenation: "", compression: null, deviceIdType: "", concurrency: "auto" }, fields), undefined);
    assert.equal(egressChoicesProblem({}, fields), undefined, "a flow saved before the properties existed");
  });

  it("refuse any other, naming the property, the value and what it may be", () => {
    assert.equal(egressChoicesProblem({ concatenation: "orc" }, fields), 'concatenation "orc" is not a value this version knows (plain, none, newline, parquet)');
    assert.equal(egressChoicesProblem({ parquetCodec: "zstd" }, fields), 'parquetCodec "zstd" is not a value this version knows (snappy, gzip, none)');
    assert.equal(egressChoicesProblem({ input: "Batches" }, fields), 'input "Batches" is not a value this version knows (messages, batches)');
    assert.equal(egressChoicesProblem({ batchIdType: "cookie" }, fields), 'batchIdType "cookie" is not a value this version knows (msg, flow, global, str, env, jsonata)');
    assert.equal(egressChoicesProblem({ openBatchesFull: "drop-newest" }, fields), 'openBatchesFull "drop-newest" is not a value this version knows (complete-oldest, reject)');
    assert.equal(egressChoicesProblem({ concurrency: 4096 }, fields), "concurrency 4096 is not auto or a whole number from 1 to 1024");
    for (const [property, value] of [["batchIdAutofill", "utc"], ["messageIdAutofill", "uuid"], ["spool", "yes"], ["queueFull", "drop"], ["neverOverwrite", "always"], ["compression", "zstd"]]) {
      assert.match(egressChoicesProblem({ [property]: value }, fields) ?? "", new RegExp(`^${property} "${value}" is not a value this version knows`));
    }
  });
});

describe("a Parquet schema given on the node", () => {
  it("is empty (inferred), or a JSON object of field name -> type, optional with ?", () => {
    for (const text of [undefined, "", "  ", '{"t": "double", "n": "int64?", "s": "string", "b": "boolean?", "j": "json"}']) assert.equal(parquetSchemaProblem(text), undefined, String(text));
  });

  it("anything else is named: the property, and the field", () => {
    assert.match(parquetSchemaProblem("{t: double}") ?? "", /^parquetSchema is not JSON: /);
    assert.equal(parquetSchemaProblem('["t"]'), 'parquetSchema must be a JSON object of field name -> type, e.g. {"temperature": "double", "note": "string?"}');
    assert.equal(parquetSchemaProblem("{}"), "parquetSchema names no field (leave it empty for a schema inferred from the payloads)");
    assert.equal(parquetSchemaProblem('{"t": "float"}'), 'parquetSchema field t has type "float", not one of boolean, int64, double, string, json (with "?" when optional)');
    assert.equal(parquetSchemaProblem('{"t": 1}'), 'parquetSchema field t has type 1, not one of boolean, int64, double, string, json (with "?" when optional)');
    assert.equal(parquetSchemaProblem('{"_arrival": "int64"}'), "parquetSchema field _arrival is a column the node writes itself");
    assert.equal(parquetSchemaProblem('{"": "int64"}'), "parquetSchema has a field with an empty name");
  });
});

describe("saved properties (flows saved before a property existed)", () => {
  const positive = (value: unknown) => (Number(value) >= 0 ? true : "must be a number");
  const definitions = () => ({ name: { value: "" }, idleTimeout: { value: 0, validate: positive }, sink: { value: "", validate: (value: unknown) => value !== "" } });

  it("judge an absent property as its default, and a present one as it is", () => {
    const defaults = absentMeansDefault(definitions());
    assert.equal(defaults.idleTimeout.validate.call({}, undefined), true);
    assert.equal(defaults.idleTimeout.validate.call({}, -1), "must be a number");
    // A default that does not validate (a required reference) still fails when absent.
    assert.equal(defaults.sink.validate.call({}, undefined), false);
  });

  it("list the absent properties with their defaults, for the dialog to fill in", () => {
    assert.deepEqual(absentProperties({ name: "n", sink: "abc" }, definitions()), [["idleTimeout", 0]]);
    assert.deepEqual(absentProperties({ name: "n", idleTimeout: 5, sink: "" }, definitions()), []);
  });
});

describe("UTF-8 length (S3's key and metadata limits)", () => {
  it("counts as TextEncoder encodes: 1 to 4 bytes a character, a lone surrogate as U+FFFD", () => {
    const samples = ["", "device-42", "Zürich", "東京", "🚀", "a🚀b", "\ud800", "\udc00x", "x\ud83d", "\ud83d\ud83d\ude80", "\u007f\u0080\u07ff\u0800\uffff"];
    // And random strings over the whole UTF-16 range, surrogates included.
    for (let i = 0; i < 2000; i++) samples.push(Array.from({ length: 1 + (i % 9) }, () => String.fromCharCode(Math.floor(Math.random() * 0x10000))).join(""));
    const encoder = new TextEncoder();
    for (const text of samples) assert.equal(utf8Length(text), encoder.encode(text).length, JSON.stringify(text));
  });
});

describe("text that cannot travel as it is", () => {
  it("refuses header values beyond ASCII, naming the character, and keeps accepting ASCII ones", () => {
    assert.equal(cacheControlProblem("max-age=60, public"), undefined);
    assert.equal(contentTypeProblem('text/csv; header="present"'), undefined);
    assert.equal(cacheControlProblem("max-age=60,\u00a0public"), '"max-age=60,\u00a0public" may contain only printable ASCII characters, not U+00A0 at position 12');
    assert.match(cacheControlProblem('no-cache="x\u007f"')!, /not U\+007F at position 12/);
    assert.match(contentTypeProblem("text/plain; name=\"😀\"")!, /not U\+1F600 at position 19/);
  });

  it("refuses key segments with a lone surrogate, and keeps whole emoji", () => {
    assert.equal(segmentProblem("sensor-😀"), undefined);
    assert.match(segmentProblem("sensor-\ud83d")!, /lone UTF-16 surrogate \(U\+D83D\)/);
    assert.match(segmentProblem("\ude00-tail")!, /lone UTF-16 surrogate \(U\+DE00\)/);
    assert.match(pathProblem("ok/\ud800x")!, /^segment ".*" contains a lone UTF-16 surrogate/);
  });
});

describe("RFC 2047 metadata values", () => {
  it("leaves printable ASCII alone and encodes the rest", () => {
    assert.equal(encodeHeaderValue("robot-125"), "robot-125");
    assert.equal(encodeHeaderValue("a b"), "a b");
    assert.equal(encodeHeaderValue("Zürich"), "=?UTF-8?B?WsO8cmljaA==?=");
    assert.equal(encodeHeaderValue(" padded "), `=?UTF-8?B?${Buffer.from(" padded ").toString("base64")}?=`);
    for (const value of ["Zürich", "日本", " padded ", "plain"]) assert.equal(decodeHeaderValue(encodeHeaderValue(value)), value);
  });
});

describe("message ids", () => {
  it("are 26-character ULIDs that sort in the order they were made", () => {
    let now = 1_700_000_000_000;
    const generator = new MessageIdGenerator(() => now);
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) {
      if (i % 100 === 0) now++;
      ids.push(generator.next());
    }
    for (const id of ids) assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
  });

  it("start with the time, so ids of a later run sort after earlier ones", () => {
    const earlier = new MessageIdGenerator(() => 1_700_000_000_000).next();
    const later = new MessageIdGenerator(() => 1_700_000_000_001).next();
    assert.ok(earlier < later);
  });

  it("formats the batch id autofill as the UTC date", () => {
    assert.equal(utcDate(Date.UTC(2023, 11, 19, 23, 30)), "2023-12-19");
  });
});
