import assert from "node:assert/strict";
import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";
import { encodeKey, resolveTarget } from "../../nodes/lib/s3/client";
import { RequestSigner, canonicalQuery } from "../../nodes/lib/s3/sigv4";
import { uriEncode } from "../support/sigv4";

// The lean signer against AWS's own (@smithy/signature-v4, the signer inside @aws-sdk/client-s3)
// on randomised requests: keys with every awkward character, multipart queries, header values
// with runs of spaces and tabs, session tokens. Seeded, so a failure names a reproducible case.

type Bytes = string | ArrayBuffer | ArrayBufferView;

/** The SHA-256 (or HMAC-SHA256 with a secret) the smithy signer is given, from node:crypto. */
class NodeSha256 {
  private hash: Hash | Hmac;
  constructor(private readonly secret?: Bytes) {
    this.hash = this.fresh();
  }
  update(data: Bytes): void {
    this.hash.update(toBuffer(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash("sha256") : createHmac("sha256", toBuffer(this.secret));
  }
}

function toBuffer(data: Bytes): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** mulberry32: a small seeded generator. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const AWKWARD = [..." +=~*!'()%&$@:,;?#[]{}<>|^`\"\\", "ä", "ß", "é", "日本", "😀", "🚀", "\u00a0", "-", "_", "."];
const PLAIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const PRINTABLE = Array.from({ length: 0x7e - 0x20 + 1 }, (_, index) => String.fromCharCode(0x20 + index)).join("");

describe("lean SigV4 signer agrees with AWS's own signer (@smithy/signature-v4)", () => {
  const SEED = 0x5eed;
  const CASES = 400;

  it(`gives the same Authorization for ${CASES} randomised PutObject and UploadPart requests, checksums and Object Lock among their headers`, async () => {
    const random = seeded(SEED);
    const pick = <T>(items: readonly T[] | string): T => items[Math.floor(random() * items.length)] as T;
    const text = (alphabet: readonly string[] | string, min: number, max: number): string =>
      Array.from({ length: min + Math.floor(random() * (max - min + 1)) }, () => pick<string>(alphabet)).join("");
    // Header values as a msg or config may carry them: printable ASCII with runs of spaces and tabs, at either end too.
    const headerValue = (): string => text([...PRINTABLE, "  ", "\t", " \t "], 1, 40);

    for (let index = 0; index < CASES; index++) {
      const segments = Array.from({ length: 1 + Math.floor(random() * 5) }, () => text([...PLAIN, ...AWKWARD], 1, 12));
      const key = segments.join("/");
      const region = pick(["us-east-1", "eu-central-1", "auto", "ap-southeast-2"]);
      const bucket = pick(["test-bucket", "iot.data.example", "b-1"]);
      const endpoint = pick(["", "http://127.0.0.1:9000", "https://minio.local:9443"]);
      const target = resolveTarget({ bucket, region, endpoint, forcePathStyle: random() < 0.5 });
      const payloadHash = createHash("sha256").update(text(PRINTABLE, 0, 64)).digest("hex");
      const query: Record<string, string> =
        random() < 0.5 ? {} : { partNumber: String(1 + Math.floor(random() * 10_000)), uploadId: text([...PLAIN, ..."._-~+/="], 10, 60) };
      const headers: Record<string, string> = {
        host: target.host,
        "content-length": String(Math.floor(random() * 1e9)),
        "x-amz-content-sha256": payloadHash,
      };
      if (random() < 0.7) headers["content-type"] = headerValue();
      if (random() < 0.5) headers["cache-control"] = headerValue();
      if (random() < 0.5) headers["x-amz-storage-class"] = pick(["STANDARD", "STANDARD_IA", "GLACIER_IR"]);
      if (random() < 0.5) headers["if-none-match"] = "*";
      // The checksum of the body (exactly one) and Object Lock, as the config node or msg.objectLock sets them.
      const checksum = random();
      if (checksum < 0.35) headers["content-md5"] = createHash("md5").update(payloadHash).digest("base64");
      else if (checksum < 0.7) headers["x-amz-checksum-sha256"] = Buffer.from(payloadHash, "hex").toString("base64");
      if (query.uploadId === undefined && random() < 0.4) {
        headers["x-amz-object-lock-mode"] = pick(["GOVERNANCE", "COMPLIANCE"]);
        headers["x-amz-object-lock-retain-until-date"] = new Date(Date.UTC(2030, 0, 1) + Math.floor(random() * 1e12)).toISOString().replace(/\.\d{3}Z$/, "Z");
      }
      if (query.uploadId === undefined && random() < 0.3) headers["x-amz-object-lock-legal-hold"] = "ON";
      for (let meta = Math.floor(random() * 4); meta > 0; meta--) headers[`x-amz-meta-${text(PLAIN.toLowerCase(), 1, 8)}`] = headerValue();
      const credentials = {
        accessKeyId: text(PLAIN.toUpperCase(), 16, 20),
        secretAccessKey: text([...PLAIN, "/", "+"], 40, 40),
        sessionToken: random() < 0.5 ? text([...PLAIN, "/", "+", "="], 100, 400) : undefined,
      };
      const now = Date.UTC(2020, 0, 1) + Math.floor(random() * 10 * 365 * 86_400_000);

      const leanHeaders = { ...headers };
      const path = target.basePath + encodeKey(key);
      const lean = new RequestSigner(region).sign({ method: "PUT", path, query: canonicalQuery(query), headers: leanHeaders, payloadHash }, credentials, now);

      const aws = new SignatureV4({ credentials, region, service: "s3", sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
      // The path as the SDK puts it on the wire: each key segment escaped once, byte by byte, as the AWS documentation says.
      const awsPath = target.basePath + key.split("/").map(uriEncode).join("/");
      const signed = await aws.sign(
        { method: "PUT", protocol: "https:", hostname: target.hostname, path: awsPath, query, headers: { ...headers } },
        // S3 signs every header the node sends; smithy leaves a few (Cache-Control among them) out unless told.
        { signingDate: new Date(now), signableHeaders: new Set(Object.keys(headers)) },
      );
      const context = `case ${index} (seed ${SEED}): key ${JSON.stringify(key)}, headers ${JSON.stringify(headers)}`;
      assert.equal(path, awsPath, context);
      assert.equal(lean, signed.headers.authorization, context);
      assert.equal(leanHeaders["x-amz-date"], signed.headers["x-amz-date"], context);
      assert.equal(leanHeaders["x-amz-security-token"], signed.headers["x-amz-security-token"], context);
    }
  });

  it("signs CreateMultipartUpload with x-amz-checksum-algorithm and Object Lock as AWS does", async () => {
    const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };
    const payloadHash = createHash("sha256").update("").digest("hex");
    const headers: Record<string, string> = {
      host: "test-bucket.s3.eu-central-1.amazonaws.com",
      "content-length": "0",
      "content-type": "application/octet-stream",
      "x-amz-content-sha256": payloadHash,
      "x-amz-checksum-algorithm": "SHA256",
      "x-amz-object-lock-mode": "COMPLIANCE",
      "x-amz-object-lock-retain-until-date": "2027-12-07T23:45:00Z",
      "x-amz-object-lock-legal-hold": "ON",
    };
    const lean = new RequestSigner("eu-central-1").sign({ method: "POST", path: "/k", query: canonicalQuery({ uploads: "" }), headers: { ...headers }, payloadHash }, credentials, 0);
    const aws = new SignatureV4({ credentials, region: "eu-central-1", service: "s3", sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
    const signed = await aws.sign(
      { method: "POST", protocol: "https:", hostname: headers.host, path: "/k", query: { uploads: "" }, headers: { ...headers } },
      { signingDate: new Date(0), signableHeaders: new Set(Object.keys(headers)) },
    );
    assert.equal(lean, signed.headers.authorization);
  });

  it("folds only spaces and tabs: a value with U+00A0 signs as AWS signs it, different from one with a space", async () => {
    const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" };
    const sign = (value: string) =>
      new RequestSigner("us-east-1").sign(
        { method: "PUT", path: "/b/k", query: "", headers: { host: "h", "x-amz-meta-note": value, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, payloadHash: "UNSIGNED-PAYLOAD" },
        credentials,
        0,
      );
    const aws = new SignatureV4({ credentials, region: "us-east-1", service: "s3", sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
    const awsSign = async (value: string) =>
      (
        await aws.sign(
          { method: "PUT", protocol: "https:", hostname: "h", path: "/b/k", headers: { host: "h", "x-amz-meta-note": value, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } },
          { signingDate: new Date(0) },
        )
      ).headers.authorization;
    assert.equal(sign("a\u00a0b\u00a0"), await awsSign("a\u00a0b\u00a0"));
    assert.equal(sign("  a \t\t b  "), await awsSign("  a \t\t b  "));
    assert.equal(sign("  a \t\t b  "), sign("a b"));
    assert.notEqual(sign("a\u00a0b"), sign("a b"));
  });
});
