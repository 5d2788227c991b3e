import assert from "node:assert/strict";
import { objectAddress } from "../../nodes/lib/core/keys";
import { InputError } from "../../nodes/lib/core/errors";
import type { RecordFields } from "../../nodes/lib/core/record";

const fields: RecordFields = {
  streamGroup: "group-a",
  stream: "telemetry",
  deviceId: "robot-125",
  batchId: "2023-12-19",
  messageId: "m00767",
};

describe("objectAddress", () => {
  it("lays out a message key as the seed does", () => {
    assert.equal(objectAddress("messages", "", fields).key, "messages/group-a/telemetry/robot-125/2023-12-19/m00767");
    assert.equal(
      objectAddress("messages", "plant/raw", { ...fields, batchSliceId: "logs" }).key,
      "plant/raw/messages/group-a/telemetry/robot-125/2023-12-19/logs/m00767",
    );
  });

  it("lays out a batch key without slice or message id", () => {
    assert.equal(objectAddress("batches", "x", { ...fields, batchSliceId: "logs" }).key, "x/batches/group-a/telemetry/robot-125/2023-12-19");
  });

  it("normalises the path: no leading, trailing or repeated slashes", () => {
    assert.equal(objectAddress("messages", "//a//b/", fields).key, "a/b/messages/group-a/telemetry/robot-125/2023-12-19/m00767");
    assert.equal(objectAddress("messages", "/", fields).key, "messages/group-a/telemetry/robot-125/2023-12-19/m00767");
  });

  it("refuses a path segment that is . or ..", () => {
    assert.throws(() => objectAddress("messages", "a/../b", fields), (error: InputError) => error.field === "path" && /"\.\."/.test(error.message));
  });

  it("writes the seven metadata entries, optional ones only when present", () => {
    assert.deepEqual(objectAddress("messages", "", fields).metadata, {
      "stream-group-name": "group-a",
      "stream-name": "telemetry",
      "device-id": "robot-125",
      "batch-id": "2023-12-19",
      "message-id": "m00767",
    });
    const full = { ...fields, batchSliceId: "logs", workspaceId: "69f09b3f-ec0d-4b9e-a5ec-87150b935296" };
    assert.deepEqual(Object.keys(objectAddress("messages", "", full).metadata), [
      "stream-group-name",
      "stream-name",
      "device-id",
      "batch-id",
      "batch-slice-id",
      "message-id",
      "workspace-id",
    ]);
    assert.deepEqual(Object.keys(objectAddress("batches", "", full).metadata), [
      "stream-group-name",
      "stream-name",
      "device-id",
      "batch-id",
      "batch-slice-id",
      "workspace-id",
    ]);
  });

  it("encodes non-ASCII metadata values as RFC 2047 and keeps the key in UTF-8", () => {
    const address = objectAddress("messages", "", { ...fields, deviceId: "čidlo-1" });
    assert.equal(address.key, "messages/group-a/telemetry/čidlo-1/2023-12-19/m00767");
    assert.equal(address.metadata["device-id"], `=?UTF-8?B?${Buffer.from("čidlo-1").toString("base64")}?=`);
  });

  it("refuses a key over 1,024 UTF-8 bytes", () => {
    const prefix = "messages/group-a/telemetry/robot-125/2023-12-19/".length;
    assert.equal(objectAddress("messages", "", { ...fields, messageId: "m".repeat(1024 - prefix) }).key.length, 1024);
    assert.throws(
      () => objectAddress("messages", "", { ...fields, messageId: "m".repeat(1025 - prefix) }),
      (error: InputError) => error.field === "key" && /1025 UTF-8 bytes/.test(error.message),
    );
    // Multi-byte characters count by their UTF-8 length.
    assert.throws(() => objectAddress("messages", "", { ...fields, messageId: "€".repeat(330) }), /key is/);
  });

  it("refuses metadata over 2 KB", () => {
    assert.throws(
      () => objectAddress("batches", "", { ...fields, batchSliceId: "s".repeat(2000) }),
      (error: InputError) => error.field === "metadata" && /2048/.test(error.message),
    );
  });
});
