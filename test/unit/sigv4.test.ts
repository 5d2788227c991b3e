import assert from "node:assert/strict";
import { verifySigV4 } from "../support/sigv4";

// The worked examples of the AWS documentation ("Signature Calculations for the Authorization
// Header: Transferring Payload in a Single Chunk"): they prove the test verifier itself right.
const secrets = { AKIAIOSFODNN7EXAMPLE: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const options = { secrets, region: "us-east-1", now: new Date("2013-05-24T00:00:00Z") };
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const credential = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";

function authorization(signedHeaders: string, signature: string): string {
  return `AWS4-HMAC-SHA256 ${credential},SignedHeaders=${signedHeaders},Signature=${signature}`;
}

describe("SigV4 verifier of the tests, on the AWS documentation's examples", () => {
  it("GET Object with a Range header", () => {
    const request = {
      method: "GET",
      url: "/test.txt",
      body: Buffer.alloc(0),
      rawHeaders: [
        "Host", "examplebucket.s3.amazonaws.com",
        "Range", "bytes=0-9",
        "x-amz-content-sha256", EMPTY_SHA256,
        "x-amz-date", "20130524T000000Z",
        "Authorization", authorization("host;range;x-amz-content-sha256;x-amz-date", "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
      ],
    };
    assert.deepEqual(verifySigV4(request, options), { ok: true, accessKeyId: "AKIAIOSFODNN7EXAMPLE" });
  });

  it("PUT Object with a key that needs encoding and a storage class", () => {
    const body = Buffer.from("Welcome to Amazon S3.");
    const request = {
      method: "PUT",
      url: "/test%24file.text",
      body,
      rawHeaders: [
        "Host", "examplebucket.s3.amazonaws.com",
        "Date", "Fri, 24 May 2013 00:00:00 GMT",
        "x-amz-date", "20130524T000000Z",
        "x-amz-storage-class", "REDUCED_REDUNDANCY",
        "x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        "Authorization", authorization("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
      ],
    };
    assert.equal(verifySigV4(request, options).ok, true);
    const tampered = { ...request, rawHeaders: request.rawHeaders.map((value) => (value === "REDUCED_REDUNDANCY" ? "STANDARD" : value)) };
    assert.equal((verifySigV4(tampered, options) as { code: string }).code, "SignatureDoesNotMatch");
    assert.equal((verifySigV4({ ...request, body: Buffer.from("Welcome to Amazon S4.") }, options) as { code: string }).code, "XAmzContentSHA256Mismatch");
  });

  it("GET Bucket lifecycle and list objects: query strings", () => {
    const base = ["Host", "examplebucket.s3.amazonaws.com", "x-amz-date", "20130524T000000Z", "x-amz-content-sha256", EMPTY_SHA256];
    const lifecycle = {
      method: "GET",
      url: "/?lifecycle",
      body: Buffer.alloc(0),
      rawHeaders: [...base, "Authorization", authorization("host;x-amz-content-sha256;x-amz-date", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")],
    };
    assert.equal(verifySigV4(lifecycle, options).ok, true);
    const list = {
      method: "GET",
      url: "/?max-keys=2&prefix=J",
      body: Buffer.alloc(0),
      rawHeaders: [...base, "Authorization", authorization("host;x-amz-content-sha256;x-amz-date", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")],
    };
    assert.equal(verifySigV4(list, options).ok, true);
  });

  it("refuses unsigned x-amz headers, unknown keys and stale requests as S3 does", () => {
    const signed = ["Host", "examplebucket.s3.amazonaws.com", "x-amz-date", "20130524T000000Z", "x-amz-content-sha256", EMPTY_SHA256];
    const request = (extra: string[], signedHeaders = "host;x-amz-content-sha256;x-amz-date") => ({
      method: "GET",
      url: "/?lifecycle",
      body: Buffer.alloc(0),
      rawHeaders: [...signed, ...extra, "Authorization", authorization(signedHeaders, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")],
    });
    assert.equal((verifySigV4(request(["x-amz-storage-class", "GLACIER"]), options) as { code: string }).code, "AccessDenied");
    assert.equal((verifySigV4(request([]), { ...options, secrets: {} }) as { code: string }).code, "InvalidAccessKeyId");
    assert.equal((verifySigV4(request([]), { ...options, now: new Date("2013-05-24T00:16:00Z") }) as { code: string }).code, "RequestTimeTooSkewed");
    assert.equal((verifySigV4(request([]), { ...options, region: "eu-central-1" }) as { code: string }).code, "AuthorizationHeaderMalformed");
  });
});
