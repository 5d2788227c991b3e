import assert from "node:assert/strict";
import { RequestSigner, canonicalQuery } from "../../nodes/lib/s3/sigv4";

// The worked examples of the AWS documentation ("Signature Calculations for the Authorization
// Header: Transferring Payload in a Single Chunk"), signed by the node's own signer.
const credentials = { accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY" };
const EXAMPLE_TIME = Date.parse("2013-05-24T00:00:00Z");
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const PUT_BODY_SHA256 = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
const PUT_SIGNATURE = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";

function putExample(): { method: string; path: string; query: string; headers: Record<string, string>; payloadHash: string } {
  return {
    method: "PUT",
    path: "/test%24file.text",
    query: "",
    headers: {
      host: "examplebucket.s3.amazonaws.com",
      date: "Fri, 24 May 2013 00:00:00 GMT",
      "x-amz-storage-class": "REDUCED_REDUNDANCY",
      "x-amz-content-sha256": PUT_BODY_SHA256,
    },
    payloadHash: PUT_BODY_SHA256,
  };
}

describe("RequestSigner, on the AWS documentation's examples", () => {
  it("signs PUT Object with the documented signature and adds x-amz-date", () => {
    const request = putExample();
    const authorization = new RequestSigner("us-east-1").sign(request, credentials, EXAMPLE_TIME);
    assert.equal(
      authorization,
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
        `SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, Signature=${PUT_SIGNATURE}`,
    );
    assert.equal(request.headers["x-amz-date"], "20130524T000000Z");
  });

  it("signs a query string in canonical order (GET Bucket, list objects)", () => {
    const query = canonicalQuery({ prefix: "J", "max-keys": "2" });
    assert.equal(query, "max-keys=2&prefix=J");
    const headers = { host: "examplebucket.s3.amazonaws.com", "x-amz-content-sha256": EMPTY_SHA256 };
    const authorization = new RequestSigner("us-east-1").sign({ method: "GET", path: "/", query, headers, payloadHash: EMPTY_SHA256 }, credentials, EXAMPLE_TIME);
    assert.match(authorization, /Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7$/);
  });

  it("derives the signing key again for a new day and for new credentials", () => {
    const signer = new RequestSigner("us-east-1");
    const nextDay = signer.sign(putExample(), credentials, EXAMPLE_TIME + 86_400_000);
    assert.match(nextDay, /Credential=AKIAIOSFODNN7EXAMPLE\/20130525\//);
    assert.doesNotMatch(nextDay, new RegExp(PUT_SIGNATURE));
    const otherSecret = signer.sign(putExample(), { ...credentials, secretAccessKey: "another" }, EXAMPLE_TIME);
    assert.doesNotMatch(otherSecret, new RegExp(PUT_SIGNATURE));
    // Back on the example's day and keys: the documented signature again, not a stale key.
    assert.match(signer.sign(putExample(), credentials, EXAMPLE_TIME), new RegExp(`Signature=${PUT_SIGNATURE}$`));
  });

  it("signs a session token when the credentials carry one", () => {
    const request = putExample();
    const authorization = new RequestSigner("us-east-1").sign(request, { ...credentials, sessionToken: "token" }, EXAMPLE_TIME);
    assert.equal(request.headers["x-amz-security-token"], "token");
    assert.match(authorization, /SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-storage-class,/);
  });
});
