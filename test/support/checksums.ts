import assert from "node:assert/strict";
import { createHash } from "node:crypto";

/**
 * The checksum S3 keeps of `body` written in parts of `partLengths` bytes, base64: one part, the
 * digest of the bytes; more, the composite "<digest of the parts' digests>-<parts>".
 */
export function storedChecksum(algorithm: "sha256" | "md5", body: Buffer, partLengths: number[]): string {
  if (partLengths.length <= 1) return createHash(algorithm).update(body).digest("base64");
  const composite = createHash(algorithm);
  let offset = 0;
  for (const length of partLengths) composite.update(createHash(algorithm).update(body.subarray(offset, (offset += length))).digest());
  assert.equal(offset, body.length, "the parts make up the object");
  return `${composite.digest("base64")}-${partLengths.length}`;
}
