import assert from "node:assert/strict";
import http from "node:http";
import { S3Sink, type SinkSettings } from "../../nodes/lib/s3/client";
import { S3Error } from "../../nodes/lib/s3/errors";
import { assertBucketHolds, range, scenarioMsg, sendAll } from "../support/deliveries";
import { faultContext } from "../support/fault-context";
import { FaultProxy } from "../support/fault-proxy";
import { EgressFlow } from "../support/flow";
import { type LoopbackEndpoint, listenOnLoopback } from "../support/loopback";
import { S3Inspector } from "../support/inspector";
import { CREDENTIALS, TEST_BUCKET } from "../support/s3";

const options = { contentType: "application/octet-stream", metadata: { "device-id": "d1" } };
const TWENTY_MINUTES = 20 * 60 * 1000;

/** The sink's rejection, as an S3Error. */
async function rejection(promise: Promise<unknown>): Promise<S3Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof S3Error, `an S3Error, not ${String(error)}`);
    return error;
  }
  throw new Error("expected a rejection");
}

/** A loopback endpoint whose every answer is written by `answer`. */
function loopback(answer: (request: http.IncomingMessage, response: http.ServerResponse) => void): Promise<LoopbackEndpoint> {
  return listenOnLoopback(http.createServer((request, response) => request.resume().on("end", () => answer(request, response))));
}

describe("faults: what S3 (or something in its place) answers", function () {
  const context = faultContext();
  /** Checks signatures as S3 does (with this machine's clock), in front of s3rver. */
  let inspector: S3Inspector;
  const sinkSettings = (endpoint: string, extra: Partial<SinkSettings> = {}): SinkSettings => ({
    bucket: TEST_BUCKET,
    region: "us-east-1",
    endpoint,
    forcePathStyle: true,
    credentials: CREDENTIALS,
    ...extra,
  });

  before(async () => {
    inspector = await S3Inspector.start(context.s3.endpoint, { [CREDENTIALS.accessKeyId]: CREDENTIALS.secretAccessKey });
  });
  after(() => inspector.stop());
  afterEach(() => inspector.clear());

  it("a clock 20 minutes behind S3's: the first answers' Date corrects the signing time, each write is sent again at once, and the log says so once", async () => {
    context.proxy.script([{ action: { kind: "skewed-clock", offsetMs: TWENTY_MINUTES } }]);
    const flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 4 });
    const items = range(40).map((index) => scenarioMsg(index));
    const { written, failed } = await sendAll(flow, items);
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(await assertBucketHolds(context.s3, written), 40);
    const skewed = context.proxy.seen.filter((request) => request.outcome === "403 RequestTimeTooSkewed").length;
    assert.ok(skewed >= 1 && skewed <= 4, `only the writes in flight before the first correction were refused, saw ${skewed}`);
    assert.equal(context.proxy.seen.length, 40 + skewed, "each refused write sent again once");
    const warnings = flow.logged("warn").filter((entry) => /clock/.test(entry.msg));
    assert.deepEqual(warnings.map((entry) => entry.msg), ["this machine's clock is 20 min behind S3's: requests are signed with S3's time from now on; set the system clock right (NTP)"]);
    await flow.status((status) => status.fill === "green" && status.text === "ok (40) · clock off by 20 min");
  });

  it("a clock 20 minutes ahead, seen first by CreateMultipartUpload: it is sent again at once, and later writes sign with the corrected time too", async () => {
    context.proxy.script([{ action: { kind: "skewed-clock", offsetMs: -TWENTY_MINUTES } }]);
    const skews: number[] = [];
    const sink = new S3Sink(sinkSettings(context.proxy.endpoint), { onClockSkew: (offsetMs) => skews.push(offsetMs) });
    try {
      const uploadId = await sink.createMultipartUpload("skew/multipart", options);
      assert.ok(uploadId);
      await sink.putObject("skew/single", Buffer.from("after the time was learnt"), options);
    } finally {
      sink.destroy();
    }
    assert.equal(skews.length, 1);
    assert.ok(Math.abs(skews[0] + TWENTY_MINUTES) < 5_000, `offset ${skews[0]} ms`);
    assert.ok(Math.abs(sink.clockOffsetMs + TWENTY_MINUTES) < 5_000);
    assert.deepEqual(context.proxy.seen.map((request) => request.outcome), ["403 RequestTimeTooSkewed", "forwarded", "forwarded"]);
    assert.deepEqual((await context.s3.get("skew/single")).body, Buffer.from("after the time was learnt"));
  });

  it("an endless 500 body: a few KiB are read, the connection is cut, the write is retried and lands", async () => {
    context.proxy.script([{ action: { kind: "endless-error" }, times: 3 }]);
    const flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 1, maxRetryDelay: 0.05 });
    const item = scenarioMsg(1);
    const output = await flow.write(item.msg);
    assert.equal((output.s3 as { attempts: number }).attempts, 4);
    await assertBucketHolds(context.s3, [item]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(context.proxy.endlessBytes.length, 3, "each endless answer ended by the client");
    // What the loopback socket buffers took, not what the node read: it keeps 4 KiB.
    for (const bytes of context.proxy.endlessBytes) assert.ok(bytes < 32 * 1024 * 1024, `${bytes} bytes got out`);
  });

  it("301 PermanentRedirect with x-amz-bucket-region: fails at once to Catch naming the bucket's region and the config node to fix", async () => {
    context.proxy.script([{ action: { kind: "error", status: 301, code: "PermanentRedirect", headers: { "x-amz-bucket-region": "eu-west-1" } } }]);
    const flow = await EgressFlow.load(context.proxy.endpoint, {}, { name: "plant bucket" });
    const caught = await flow.fail(scenarioMsg(1).msg);
    assert.match(
      caught.message,
      /^S3Error: PermanentRedirect: injected by the fault proxy\. The bucket "test-bucket" is in region eu-west-1, not us-east-1: set the region of config node "plant bucket" \(id cfg\) to eu-west-1$/,
    );
    assert.equal(context.proxy.seen.length, 1, "not retried");
    assert.deepEqual(await context.s3.keys(), []);
    // The multipart control calls say the same.
    const sink = new S3Sink(sinkSettings(context.proxy.endpoint, { owner: "the config node" }));
    try {
      const error = await rejection(sink.createMultipartUpload("redirect/multipart", options));
      assert.equal(error.retryable, false);
      assert.match(error.message, /The bucket "test-bucket" is in region eu-west-1, not us-east-1: set the region of the config node to eu-west-1$/);
    } finally {
      sink.destroy();
    }
  });

  it("307 Temporary Redirect: followed to the other host, signed for it (checked there), the object written once", async () => {
    const other = await FaultProxy.start(inspector.endpoint);
    try {
      context.proxy.script([{ action: { kind: "redirect", status: 307, origin: other.endpoint } }]);
      const flow = await EgressFlow.load(context.proxy.endpoint);
      const item = scenarioMsg(7, { device: "dev (7) +*" });
      await flow.write(item.msg);
      await assertBucketHolds(context.s3, [item]);
      assert.deepEqual(context.proxy.seen.map((request) => request.outcome), ["307 redirect"]);
      assert.deepEqual(other.seen.map((request) => [request.outcome, request.headers.host]), [["forwarded", other.endpoint.slice("http://".length)]]);
      assert.deepEqual(inspector.requests.filter((request) => request.refused), []);
    } finally {
      await other.stop();
    }
  });

  it("a 2xx answer that trickles forever: the request deadline frees the slot, the write is retried", async () => {
    let trickling = 0;
    const server = await loopback((_request, response) => {
      trickling++;
      response.writeHead(200, { etag: '"e"', "content-length": "1000000" });
      const drip = setInterval(() => response.write("x"), 20);
      response.on("close", () => clearInterval(drip));
    });
    const sink = new S3Sink(sinkSettings(server.endpoint, { timing: { deadlineMs: 300, completeDeadlineMs: 300 } }));
    try {
      // A data request leaves the body unread; the control calls read theirs.
      const calls = [
        () => sink.putObject("trickle/one", Buffer.from("x"), options),
        () => sink.createMultipartUpload("trickle/two", options),
        () => sink.completeMultipartUpload("trickle/two", "upload", [{ partNumber: 1, etag: '"e"' }]),
      ];
      for (const call of calls) {
        const error = await rejection(call());
        assert.equal(error.code, "TimeoutError");
        assert.equal(error.retryable, true);
        assert.match(error.message, /no complete answer within the request deadline/);
      }
      assert.equal(trickling, 3);
    } finally {
      sink.destroy();
      await server.stop();
    }
  });

  it("CompleteMultipartUpload answered 200, spaces, then an <Error>: the S3 error it names (InternalError retryable, AccessDenied not); sent again, it completes", async () => {
    const sink = new S3Sink(sinkSettings(context.proxy.endpoint));
    const part = Buffer.from("the only part");
    try {
      const uploadId = await sink.createMultipartUpload("late/error", options);
      const parts = [{ partNumber: 1, ...(await sink.uploadPart("late/error", uploadId, 1, part)) }];
      context.proxy.script([
        { operation: "CompleteMultipartUpload", action: { kind: "error-after-200", code: "InternalError" }, times: 1 },
        { operation: "CompleteMultipartUpload", action: { kind: "error-after-200", code: "AccessDenied" }, times: 1 },
      ]);
      const internal = await rejection(sink.completeMultipartUpload("late/error", uploadId, parts));
      assert.deepEqual([internal.code, internal.retryable, internal.message], ["InternalError", true, "InternalError: injected by the fault proxy after 200"]);
      const denied = await rejection(sink.completeMultipartUpload("late/error", uploadId, parts));
      assert.deepEqual([denied.code, denied.retryable], ["AccessDenied", false]);
      const completed = await sink.completeMultipartUpload("late/error", uploadId, parts);
      assert.match(completed.etag, /^"[0-9a-f]+(-1)?"$/, "the ETag with its quotes");
    } finally {
      sink.destroy();
    }
    assert.deepEqual(context.proxy.requestsFor("late/").map((request) => [request.operation, request.outcome]), [
      ["CreateMultipartUpload", "forwarded"],
      ["UploadPart", "forwarded"],
      ["CompleteMultipartUpload", "200 then InternalError"],
      ["CompleteMultipartUpload", "200 then AccessDenied"],
      ["CompleteMultipartUpload", "forwarded"],
    ]);
    assert.deepEqual((await context.s3.get("late/error")).body, part);
  });

  it("Batches: a CompleteMultipartUpload answered 200 and then InternalError is retried by the writer, and the batch lands whole", async () => {
    context.proxy.script([{ operation: "CompleteMultipartUpload", action: { kind: "error-after-200", code: "InternalError" }, times: 1 }]);
    const flow = await EgressFlow.load(context.proxy.endpoint, { input: "batches", maxRetryDelay: 0.05 });
    const robot = { streamGroup: "g", stream: "s", deviceId: "robot", batchId: "big" };
    const chunks = range(9).map((index) => Buffer.alloc(1024 * 1024, index));
    for (const payload of chunks) await flow.join({ ...robot, payload });
    const output = await flow.write({ ...robot, complete: true });
    const key = "batches/g/s/robot/big";
    assert.equal((output.s3 as { key: string }).key, key);
    assert.ok((await context.s3.get(key)).body.equals(Buffer.concat(chunks)), "byte-identical");
    const completes = context.proxy.requestsFor(key).filter((request) => request.operation === "CompleteMultipartUpload");
    assert.deepEqual(completes.map((request) => request.outcome), ["200 then InternalError", "forwarded"]);
    assert.deepEqual(flow.errors, []);
  });

  it("If-None-Match on CompleteMultipartUpload of a key that holds an object: S3's 412 is reported with its status, not retried, and the object stays", async () => {
    context.proxy.conditionalWrites = true;
    const sink = new S3Sink(sinkSettings(context.proxy.endpoint));
    try {
      await sink.putObject("taken/key", Buffer.from("first"), options);
      const uploadId = await sink.createMultipartUpload("taken/key", { ...options, headers: { "if-none-match": "*" } });
      const parts = [{ partNumber: 1, ...(await sink.uploadPart("taken/key", uploadId, 1, Buffer.from("second"))) }];
      const error = await rejection(sink.completeMultipartUpload("taken/key", uploadId, parts, true));
      assert.deepEqual([error.statusCode, error.code, error.retryable], [412, "PreconditionFailed", false]);
    } finally {
      sink.destroy();
    }
    const seen = context.proxy.requestsFor("taken/");
    assert.deepEqual(seen.map((request) => [request.operation, request.outcome, request.headers["if-none-match"]]), [
      ["PutObject", "forwarded", undefined],
      ["CreateMultipartUpload", "forwarded", undefined],
      ["UploadPart", "forwarded", undefined],
      ["CompleteMultipartUpload", "conditional-412", "*"],
    ]);
    assert.equal((await context.s3.get("taken/key")).body.toString(), "first");
  });

  describe("credentials from the default chain", function () {
    const CHAIN_VARIABLES = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_EC2_METADATA_DISABLED", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"];
    const saved: Record<string, string | undefined> = {};

    beforeEach(() => {
      for (const name of CHAIN_VARIABLES) {
        saved[name] = process.env[name];
        delete process.env[name];
      }
      // Nothing but the environment: no files, and no instance metadata (no traffic off loopback).
      process.env.AWS_SHARED_CREDENTIALS_FILE = "/nonexistent/credentials";
      process.env.AWS_CONFIG_FILE = "/nonexistent/config";
      process.env.AWS_EC2_METADATA_DISABLED = "true";
    });
    afterEach(() => {
      for (const name of CHAIN_VARIABLES) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    });

    it("ExpiredToken: the chain is asked for fresh credentials and the write sent again once", async () => {
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_SESSION_TOKEN: "old-token" });
      const sink = new S3Sink({ bucket: TEST_BUCKET, region: "us-east-1", endpoint: context.proxy.endpoint, forcePathStyle: true });
      try {
        await sink.putObject("token/first", Buffer.from("1"), options);
        process.env.AWS_SESSION_TOKEN = "new-token";
        context.proxy.script([{ action: { kind: "error", status: 400, code: "ExpiredToken" }, when: (headers) => headers["x-amz-security-token"] === "old-token" }]);
        await sink.putObject("token/second", Buffer.from("2"), options);
        // A multipart control call refused for its token does the same.
        process.env.AWS_SESSION_TOKEN = "newest-token";
        context.proxy.script([{ action: { kind: "error", status: 400, code: "ExpiredToken" }, when: (headers) => headers["x-amz-security-token"] !== "newest-token" }]);
        await sink.createMultipartUpload("token/third", options);
      } finally {
        sink.destroy();
      }
      assert.deepEqual(
        context.proxy.seen.map((request) => [request.key, request.outcome, request.headers["x-amz-security-token"]]),
        [
          ["token/first", "forwarded", "old-token"],
          ["token/second", "400 ExpiredToken", "old-token"],
          ["token/second", "forwarded", "new-token"],
          ["token/third", "400 ExpiredToken", "new-token"],
          ["token/third", "forwarded", "newest-token"],
        ],
      );
      assert.deepEqual(await context.s3.keys(), ["token/first", "token/second"]);
    });

    it("no credentials anywhere: retried, not failed; the config node says once which node to fill in; written once the environment has keys", async function () {
      this.timeout(60_000);
      const flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 2, maxRetryDelay: 0.3 }, { name: "plant bucket" }, {});
      const items = range(6).map((index) => scenarioMsg(index));
      const sending = sendAll(flow, items);
      await flow.status((status) => status.fill === "yellow" && /^retrying: no credentials: fill in plant bucket \(\d+, limit \d+\)$/.test(String(status.text)));
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const shown = flow.logged("error").filter((entry) => /no AWS credentials/.test(entry.msg));
      assert.equal(shown.length, 1, "shown once, not per msg or per attempt");
      assert.match(shown[0].msg, /^CredentialsProviderError: no AWS credentials for config node "plant bucket" \(id cfg\): its Access Key and Secret Access Key are empty .*Open config node "plant bucket" \(id cfg\) and fill in the keys/);
      assert.equal(context.proxy.seen.length, 0, "nothing sent unsigned");
      Object.assign(process.env, { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" });
      const { written, failed } = await sending;
      assert.deepEqual(failed.map(({ error }) => error.message), []);
      assert.equal(await assertBucketHolds(context.s3, written), 6);
    });

    it("no credentials and the retries used up: the msg's error names the config node to fill in", async () => {
      const flow = await EgressFlow.load(context.proxy.endpoint, { giveUpAfter: 1, maxRetryDelay: 0.05 }, {}, {});
      const caught = await flow.fail(scenarioMsg(1).msg);
      assert.match(caught.message, /^S3Error: CredentialsProviderError: no AWS credentials for config node "test-bucket \(127\.0\.0\.1:\d+\)" \(id cfg\)/);
      assert.match(caught.message, /fill in the keys \(and the endpoint of an S3-compatible store\)/);
      await flow.status((status) => status.fill === "red" && /^error: no credentials: fill in test-bucket \(127\.0\.0\.1:\d+\)$/.test(String(status.text)));
    });
  });
});
