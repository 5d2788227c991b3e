import assert from "node:assert/strict";
import { InputError } from "../../nodes/lib/core/errors";
import { type FieldOptions, toBody, toFields } from "../../nodes/lib/core/record";

const options: FieldOptions = { input: "messages", batchIdAutofill: "none", messageIdAutofill: "none" };
const context = { arrival: Date.UTC(2024, 1, 29, 23, 59), nextMessageId: () => "generated" };
const raw = { streamGroup: "g", stream: "s", deviceId: "d", batchId: "b", messageId: "m" };

function fieldError(field: string, pattern: RegExp) {
  return (error: unknown) => error instanceof InputError && error.field.startsWith(field) && pattern.test(error.message);
}

describe("toFields", () => {
  it("takes strings and numbers, numbers as text", () => {
    assert.deepEqual(toFields({ ...raw, deviceId: 42, messageId: 7.5 }, options, context), {
      streamGroup: "g",
      stream: "s",
      deviceId: "42",
      batchId: "b",
      messageId: "7.5",
    });
  });

  for (const field of ["streamGroup", "stream", "deviceId", "batchId", "messageId"] as const) {
    it(`names ${field} when it is missing`, () => {
      for (const missing of [undefined, null, ""]) {
        assert.throws(() => toFields({ ...raw, [field]: missing }, options, context), fieldError(field, /is missing/));
      }
    });
  }

  it("names the source of a missing field", () => {
    assert.throws(
      () => toFields({ ...raw, deviceId: undefined }, { ...options, sources: { deviceId: "msg.device" } }, context),
      /deviceId \(msg\.device\) is missing/,
    );
  });

  it("names every missing field at once, so that the first error of a default inject says all there is to set", () => {
    const sources = { streamGroup: "msg.streamGroup", stream: "msg.stream", deviceId: "msg.deviceId", batchId: "msg.batchId", messageId: "msg.messageId" };
    assert.throws(
      () => toFields({}, { ...options, sources }, context),
      (error: unknown) =>
        error instanceof InputError &&
        error.message === "missing msg.streamGroup, msg.stream, msg.deviceId, msg.batchId, msg.messageId" &&
        error.field === "msg.streamGroup, msg.stream, msg.deviceId, msg.batchId, msg.messageId",
    );
    // With both autofills, only the stream's fields are left to set.
    assert.throws(
      () => toFields({ deviceId: "d" }, { ...options, batchIdAutofill: "utc-date", messageIdAutofill: "auto" }, context),
      (error: unknown) => error instanceof InputError && error.message === "missing streamGroup, stream",
    );
  });

  for (const [bad, pattern] of [
    [".", /may not be "\."/],
    ["..", /may not be "\.\."/],
    ["a/b", /may not contain "\/"/],
    ["a\u0000b", /control characters/],
    ["tab\there", /control characters/],
  ] as const) {
    it(`refuses the segment ${JSON.stringify(bad)}`, () => {
      assert.throws(() => toFields({ ...raw, stream: bad }, options, context), fieldError("stream", pattern));
    });
  }

  it("refuses values that are neither string nor number", () => {
    assert.throws(() => toFields({ ...raw, deviceId: { id: 1 } }, options, context), fieldError("deviceId", /string or a number, not object/));
    assert.throws(() => toFields({ ...raw, deviceId: true }, options, context), fieldError("deviceId", /not boolean/));
    assert.throws(() => toFields({ ...raw, deviceId: NaN }, options, context), fieldError("deviceId", /finite/));
  });

  it("fills a missing batch id with the UTC date of arrival", () => {
    const fields = toFields({ ...raw, batchId: undefined }, { ...options, batchIdAutofill: "utc-date" }, context);
    assert.equal(fields.batchId, "2024-02-29");
    assert.equal(toFields(raw, { ...options, batchIdAutofill: "utc-date" }, context).batchId, "b");
  });

  it("fills a missing message id when asked to", () => {
    assert.equal(toFields({ ...raw, messageId: undefined }, { ...options, messageIdAutofill: "auto" }, context).messageId, "generated");
  });

  it("has no message id in batches mode", () => {
    assert.equal(toFields({ ...raw, messageId: undefined }, { ...options, input: "batches" }, context).messageId, undefined);
  });

  it("writes a workspace id as a lowercase hyphenated GUID", () => {
    for (const given of ["69F09B3F-EC0D-4B9E-A5EC-87150B935296", "69f09b3fec0d4b9ea5ec87150b935296", "{69f09b3f-ec0d-4b9e-a5ec-87150b935296}"]) {
      assert.equal(toFields({ ...raw, workspaceId: given }, options, context).workspaceId, "69f09b3f-ec0d-4b9e-a5ec-87150b935296");
    }
    assert.throws(() => toFields({ ...raw, workspaceId: "workspace-1" }, options, context), fieldError("workspaceId", /not a GUID/));
  });
});

describe("toBody", () => {
  it("derives bytes and Content-Type from the payload", () => {
    assert.deepEqual(toBody(Buffer.from([1, 2])), { bytes: Buffer.from([1, 2]), contentType: "application/octet-stream" });
    assert.deepEqual(toBody("žluť"), { bytes: Buffer.from("žluť"), contentType: "text/plain; charset=utf-8" });
    assert.deepEqual(toBody({ t: 21.5 }), { bytes: Buffer.from('{"t":21.5}'), contentType: "application/json" });
    assert.deepEqual(toBody([1, 2]), { bytes: Buffer.from("[1,2]"), contentType: "application/json" });
    assert.deepEqual(toBody(42), { bytes: Buffer.from("42"), contentType: "text/plain; charset=utf-8" });
    assert.deepEqual(toBody(false), { bytes: Buffer.from("false"), contentType: "text/plain; charset=utf-8" });
    assert.deepEqual(toBody(new Uint8Array([7])), { bytes: Buffer.from([7]), contentType: "application/octet-stream" });
  });

  it("lets msg.contentType override the derived type", () => {
    assert.equal(toBody("a,b", "text/csv").contentType, "text/csv");
    assert.throws(() => toBody("x", "text/\nplain"), fieldError("msg.contentType", /printable ASCII/));
  });

  it("refuses an undefined or unserialisable payload", () => {
    assert.throws(() => toBody(undefined), fieldError("msg.payload", /is undefined/));
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    assert.throws(() => toBody(circular), fieldError("msg.payload", /JSON/));
    assert.throws(() => toBody(() => 1), fieldError("msg.payload", /function/));
  });
});
