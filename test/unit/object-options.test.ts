import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { StorageClass } from "@aws-sdk/client-s3";
import { headersWithOverrides, objectHeaders, objectLockOf, objectLockWithOverride } from "../../nodes/lib/core/object-options";
import { compositeChecksum, resolveChecksum } from "../../nodes/lib/s3/client";
import { S3Error } from "../../nodes/lib/s3/errors";
import {
  STORAGE_CLASSES,
  type ObjectSettings,
  cacheControlProblem,
  contentTypeProblem,
  integritySettingsProblem,
  kmsKeyIdProblem,
  objectSettingsProblem,
  retentionMs,
  storageClassProblem,
} from "../../nodes/lib/core/rules";

const NONE: ObjectSettings = { storageClass: "", serverSideEncryption: "", kmsKeyId: "", cacheControl: "", contentType: "" };
const KEY_ARN = "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

describe("object options", () => {
  it("offers only storage classes of the S3 API", () => {
    const api: string[] = Object.values(StorageClass);
    for (const storageClass of STORAGE_CLASSES) assert.ok(api.includes(storageClass), storageClass);
  });

  it("sends no header for options left empty, so the bucket's defaults apply", () => {
    assert.equal(objectSettingsProblem(NONE), undefined);
    assert.deepEqual(objectHeaders(NONE), {});
  });

  it("builds the header of every option", () => {
    const settings = { storageClass: "GLACIER_IR", serverSideEncryption: "aws:kms", kmsKeyId: KEY_ARN, cacheControl: "max-age=3600, public", contentType: "text/csv" };
    assert.equal(objectSettingsProblem(settings), undefined);
    assert.deepEqual(objectHeaders(settings), {
      "x-amz-storage-class": "GLACIER_IR",
      "x-amz-server-side-encryption": "aws:kms",
      "x-amz-server-side-encryption-aws-kms-key-id": KEY_ARN,
      "cache-control": "max-age=3600, public",
    });
    assert.deepEqual(objectHeaders({ ...NONE, serverSideEncryption: "AES256" }), { "x-amz-server-side-encryption": "AES256" });
  });

  it("names the config property at fault", () => {
    const cases: [Partial<ObjectSettings>, RegExp][] = [
      [{ storageClass: "standard" }, /^storageClass "standard" is not an S3 storage class \(STANDARD, STANDARD_IA, /],
      [{ serverSideEncryption: "aws:kms:dsse" }, /^serverSideEncryption "aws:kms:dsse" must be empty \(bucket default\), AES256 \(SSE-S3\) or aws:kms/],
      [{ serverSideEncryption: "AES256", kmsKeyId: "alias/iot" }, /^kmsKeyId is only used with serverSideEncryption aws:kms/],
      [{ serverSideEncryption: "aws:kms", kmsKeyId: "alias/my key" }, /^kmsKeyId must be a KMS key id, key ARN or alias, without spaces/],
      [{ cacheControl: "max-age=1;" }, /^cacheControl "max-age=1;" is not a Cache-Control value/],
      [{ contentType: "json" }, /^contentType "json" is not a media type/],
    ];
    for (const [change, pattern] of cases) assert.match(objectSettingsProblem({ ...NONE, ...change }) ?? "", pattern, JSON.stringify(change));
    assert.equal(objectSettingsProblem({ ...NONE, serverSideEncryption: "aws:kms", kmsKeyId: "alias/iot" }), undefined);
    assert.equal(objectSettingsProblem({ ...NONE, serverSideEncryption: "aws:kms" }), undefined, "the AWS managed key");
  });

  it("takes an empty option as not set, in the rules the editor shares", () => {
    for (const rule of [storageClassProblem, cacheControlProblem, contentTypeProblem, kmsKeyIdProblem]) assert.equal(rule(""), undefined, rule.name);
  });

  it("accepts Cache-Control directives and media types as HTTP defines them", () => {
    for (const value of ["no-cache", "max-age=3600, public", "private,max-age=0", 'no-cache="Set-Cookie, X-Id"', "s-maxage=60 , immutable"]) {
      assert.equal(cacheControlProblem(value), undefined, value);
    }
    for (const value of ["max-age=", "a b", "max-age=1,", "ö", "x\r\ny: 1"]) assert.ok(cacheControlProblem(value), value);
    for (const value of ["application/json", "text/csv; charset=utf-8", 'multipart/mixed; boundary="a b"', "application/vnd.api+json"]) {
      assert.equal(contentTypeProblem(value), undefined, value);
    }
    for (const value of ["text", "text/", "text/plain;", "text/plain; charset", "a/b\n"]) assert.ok(contentTypeProblem(value), value);
  });

  it("lets msg.storageClass and msg.cacheControl replace the config's headers", () => {
    const base = objectHeaders({ ...NONE, storageClass: "STANDARD_IA", serverSideEncryption: "AES256", cacheControl: "no-cache" });
    assert.equal(headersWithOverrides(base, {}), base);
    assert.equal(headersWithOverrides(base, { storageClass: "", cacheControl: null }), base);
    assert.deepEqual(headersWithOverrides(base, { storageClass: "DEEP_ARCHIVE", cacheControl: "max-age=60" }), {
      "x-amz-storage-class": "DEEP_ARCHIVE",
      "x-amz-server-side-encryption": "AES256",
      "cache-control": "max-age=60",
    });
    assert.equal(base["x-amz-storage-class"], "STANDARD_IA", "the config's headers stay as they are");
  });

  it("refuses an invalid override with an error naming the msg property", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ storageClass: "COLD" }, /^msg\.storageClass "COLD" is not an S3 storage class/],
      [{ storageClass: 3 }, /^msg\.storageClass must be a string, not number/],
      [{ cacheControl: "max age" }, /^msg\.cacheControl "max age" is not a Cache-Control value/],
      [{ cacheControl: ["no-cache"] }, /^msg\.cacheControl must be a string, not an array/],
    ];
    for (const [overrides, pattern] of cases) {
      assert.throws(() => headersWithOverrides({}, overrides), (error: Error & { code?: string }) => {
        assert.equal(error.code, "INVALID_INPUT");
        assert.match(error.message, pattern);
        return true;
      });
    }
  });
});

describe("checksum and Object Lock settings", () => {
  it("reads retention periods in hours, days and years of 365 days, up to 100 years", () => {
    assert.equal(retentionMs("12h"), 12 * 3_600_000);
    assert.equal(retentionMs("365d"), 365 * 86_400_000);
    assert.equal(retentionMs("7y"), 7 * 365 * 86_400_000);
    for (const text of ["", "0d", "1.5d", "-1d", "365", "1 month", "101y", "1w"]) assert.equal(retentionMs(text), undefined, text);
  });

  it("auto is sha256 for AWS itself and md5 for any other endpoint", () => {
    assert.equal(resolveChecksum("auto", ""), "sha256");
    assert.equal(resolveChecksum(undefined, undefined), "sha256");
    assert.equal(resolveChecksum("auto", "https://account.r2.cloudflarestorage.com"), "md5");
    assert.equal(resolveChecksum("sha256", "http://minio:9000"), "sha256");
    assert.equal(resolveChecksum("none", ""), "none");
  });

  it("refuses Object Lock with checksum none, naming both settings; a flow without the settings is valid", () => {
    const none = { checksum: "auto", objectLockMode: "", objectLockRetention: "", objectLockLegalHold: false };
    assert.equal(integritySettingsProblem(none), undefined);
    assert.equal(integritySettingsProblem({ ...none, checksum: "none" }), undefined);
    assert.match(integritySettingsProblem({ ...none, checksum: "none", objectLockMode: "GOVERNANCE", objectLockRetention: "1d" }) ?? "", /^checksum "none" cannot be used with Object Lock \(objectLockMode GOVERNANCE\)/);
    assert.deepEqual(objectLockOf({ ...none, objectLockMode: "COMPLIANCE", objectLockRetention: "2d", objectLockLegalHold: true }), { mode: "COMPLIANCE", retainForMs: 2 * 86_400_000, legalHold: true });
    assert.equal(objectLockOf(none), undefined);
  });

  it("msg.objectLock replaces the config's lock, false removes it, absent keeps it", () => {
    const base = { mode: "COMPLIANCE" as const, retainForMs: 1000 };
    assert.equal(objectLockWithOverride(base, undefined, "md5"), base);
    assert.equal(objectLockWithOverride(base, false, "md5"), undefined);
    assert.deepEqual(objectLockWithOverride(base, { legalHold: true }, "md5"), { legalHold: true });
    assert.throws(() => objectLockWithOverride(undefined, { legalHold: true }, "none"), /checksum "none" cannot be used with Object Lock \(msg\.objectLock\.legalHold\)/);
  });

  it("retries every answer that says the bytes arrived damaged; a missing checksum on a locked bucket is permanent", () => {
    for (const code of ["BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"]) assert.equal(S3Error.fromResponse(400, code, "damaged").retryable, true, code);
    assert.equal(S3Error.fromResponse(400, "InvalidRequest", "Content-MD5 OR x-amz-checksum- HTTP header is required").retryable, false);
  });

  it("composes a multipart object's checksum as S3 does: the digest of the parts' digests, -<parts>", () => {
    const parts = ["one", "two"].map((text, index) => ({ partNumber: index + 1, etag: "", checksum: createHash("sha256").update(text).digest("base64") }));
    const expected = createHash("sha256").update(Buffer.concat(["one", "two"].map((text) => createHash("sha256").update(text).digest()))).digest("base64");
    assert.equal(compositeChecksum("sha256", parts), `${expected}-2`);
    assert.equal(compositeChecksum("sha256", [{ partNumber: 1, etag: "" }]), undefined, "a part without its checksum");
    assert.equal(compositeChecksum("none", parts), undefined);
  });
});
