import assert from "node:assert/strict";
import { ADAPTIVE_LIMITS } from "../../nodes/lib/delivery/concurrency";
import { assertBucketHolds, lastTotals, range, scenarioMsg, sendAll } from "../support/deliveries";
import { faultContext } from "../support/fault-context";
import { EgressFlow } from "../support/flow";

/** Fast retries, so a scenario takes seconds. */
const quickRetries = { giveUpAfter: 30, maxRetryDelay: 0.4 };

describe("faults: S3 misbehaving behind a proxy, Messages route", function () {
  const context = faultContext();
  let flow: EgressFlow;

  it("503 SlowDown bursts: retried with a yellow ring naming the reason, every object written once", async () => {
    // A burst where every request is throttled, then one in three for a while.
    context.proxy.script([
      { action: { kind: "error", status: 503, code: "SlowDown" }, times: 40 },
      { action: { kind: "error", status: 503, code: "SlowDown" }, every: 3, times: 80 },
    ]);
    flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 8, maxRetryDelay: 0.2 });
    const items = range(200).map((index) => scenarioMsg(index));
    const { written, failed } = await sendAll(flow, items);
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(await assertBucketHolds(context.s3, written), 200);
    await flow.status((status) => status.fill === "yellow" && status.shape === "ring" && /^retrying: SlowDown/.test(String(status.text)));
    assert.deepEqual(lastTotals(flow.outputs), { written: 200, retried: 120, failed: 0 });
    assert.equal(context.proxy.seen.filter((request) => request.outcome === "503 SlowDown").length, 120);
    assert.equal(context.proxy.seen.length, 320, "one request per attempt");
  });

  it("connection resets mid-upload, before and after S3 stored the object: retried, same bytes", async () => {
    context.proxy.script([
      { action: { kind: "reset-before" }, every: 3, times: 30 },
      { action: { kind: "reset-after" }, every: 4, times: 20 },
    ]);
    flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 6, ...quickRetries });
    const items = range(120).map((index) => scenarioMsg(index, { bytes: 48 * 1024 }));
    const { written, failed } = await sendAll(flow, items);
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(await assertBucketHolds(context.s3, written), 120);
    assert.equal(context.proxy.seen.filter((request) => request.outcome.startsWith("reset")).length, 50);
  });

  it("added latency: every object written, with at most `concurrency` connections open", async () => {
    context.proxy.script([{ action: { kind: "latency", ms: 40 } }]);
    flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 4 });
    const items = range(100).map((index) => scenarioMsg(index));
    const { written, failed } = await sendAll(flow, items);
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(await assertBucketHolds(context.s3, written), 100);
    assert.ok(context.proxy.peakConnections <= 4, `at most 4 connections, saw ${context.proxy.peakConnections}`);
  });

  it("server down for a while, then back: writes wait and resume, none lost", async () => {
    flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 4, maxRetryDelay: 0.5 });
    const items = range(150).map((index) => scenarioMsg(index));
    const sending = sendAll(flow, items);
    await flow.status((status) => status.fill === "blue");
    const outage = context.proxy.outage(1500);
    const { written, failed } = await sending;
    await outage;
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(await assertBucketHolds(context.s3, written), 150);
    await flow.status((status) => status.fill === "yellow" && /^retrying: ECONN(REFUSED|RESET)/.test(String(status.text)));
  });

  it("AccessDenied on one key prefix: those msgs fail at once to Catch with the code, the others are written", async () => {
    context.proxy.script([{ action: { kind: "error", status: 403, code: "AccessDenied" }, keyPrefix: "test-bucket/messages/faults/telemetry/locked/".slice("test-bucket/".length) }]);
    flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 8, ...quickRetries });
    const items = range(100).map((index) => scenarioMsg(index, index % 5 === 0 ? { device: "locked" } : {}));
    const { written, failed } = await sendAll(flow, items);
    assert.equal(failed.length, 20);
    for (const { item, error } of failed) {
      assert.match(error.message, /^S3Error: AccessDenied: /);
      assert.equal(item.msg.deviceId, "locked");
    }
    assert.equal(context.proxy.requestsFor("messages/faults/telemetry/locked/").length, 20, "one attempt each: not retried");
    assert.equal(await assertBucketHolds(context.s3, written), 80);
    // The last write failed, so the status ends red with the code.
    await flow.fail(scenarioMsg(100, { device: "locked" }).msg);
    await flow.status((status) => status.fill === "red" && status.text === "error: AccessDenied");
  });

  it("malformed responses (not HTTP, or 200 without an ETag): retried, every object written", async () => {
    context.proxy.script([
      { action: { kind: "garbage" }, every: 5, times: 15 },
      { action: { kind: "no-etag" }, every: 6, times: 10 },
    ]);
    flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 4, ...quickRetries });
    const items = range(100).map((index) => scenarioMsg(index));
    const { written, failed } = await sendAll(flow, items);
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(await assertBucketHolds(context.s3, written), 100);
  });

  it("a prefix failing for longer than Give up after: retried with backoff until the time budget runs out, then Catch names it", async () => {
    context.proxy.script([{ action: { kind: "error", status: 500, code: "InternalError" }, keyPrefix: "messages/faults/telemetry/hot/" }]);
    flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 4, giveUpAfter: 0.5, maxRetryDelay: 0.1 });
    const items = range(40).map((index) => scenarioMsg(index, index % 4 === 0 ? { device: "hot" } : {}));
    const { written, failed } = await sendAll(flow, items);
    assert.equal(failed.length, 10);
    for (const { error } of failed) assert.match(error.message, /^S3Error: InternalError: .* \(gave up after \d+ attempts in 0\.\d s\)$/);
    assert.ok(context.proxy.requestsFor("messages/faults/telemetry/hot/").length > 30, "more than a few attempts per msg");
    assert.equal(await assertBucketHolds(context.s3, written), 30);
  });

  it("SlowDown does not use up the time budget: a prefix throttled for longer than Give up after is written once it stops", async () => {
    context.proxy.script([{ action: { kind: "error", status: 503, code: "SlowDown" }, keyPrefix: "messages/faults/telemetry/hot/", times: 60 }]);
    flow = await EgressFlow.load(context.proxy.endpoint, { giveUpAfter: 0.2, maxRetryDelay: 0.1 });
    const items = range(40).map((index) => scenarioMsg(index, index % 4 === 0 ? { device: "hot" } : {}));
    const { written, failed } = await sendAll(flow, items);
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(await assertBucketHolds(context.s3, written), 40);
  });

  it("S3 answering 503 for 3 s while 100 msgs arrive: none lost at the default settings", async () => {
    context.proxy.script([{ action: { kind: "error", status: 503, code: "ServiceUnavailable" } }]);
    flow = await EgressFlow.load(context.proxy.endpoint, {});
    const recovered = new Promise((resolve) => setTimeout(resolve, 3000)).then(() => context.proxy.script([]));
    const items = range(100).map((index) => scenarioMsg(index));
    const { written, failed } = await sendAll(flow, items);
    await recovered;
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(await assertBucketHolds(context.s3, written), 100);
    assert.ok(context.proxy.seen.some((request) => request.outcome === "503 ServiceUnavailable"), "the outage was seen");
  });

  it("SlowDown on every 4th request and a reset on every 9th, 300 msgs: none lost at the default settings", async () => {
    context.proxy.script([
      { action: { kind: "error", status: 503, code: "SlowDown" }, every: 4 },
      { action: { kind: "reset-before" }, every: 9 },
    ]);
    flow = await EgressFlow.load(context.proxy.endpoint, {});
    const items = range(300).map((index) => scenarioMsg(index));
    const { written, failed } = await sendAll(flow, items);
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(await assertBucketHolds(context.s3, written), 300);
    const limit = (flow.outputs[flow.outputs.length - 1].s3 as { concurrency: number }).concurrency;
    assert.ok(limit >= ADAPTIVE_LIMITS.min && limit <= ADAPTIVE_LIMITS.max, `msg.s3.concurrency is the current limit: ${limit}`);
  });

  it("never overwrite: sends If-None-Match: *, a 412 counts as written and the first bytes stay", async () => {
    context.proxy.conditionalWrites = true;
    flow = await EgressFlow.load(context.proxy.endpoint, { neverOverwrite: true });
    const first = range(20).map((index) => scenarioMsg(index));
    assert.equal((await sendAll(flow, first)).failed.length, 0);
    const again = range(20).map((index) => scenarioMsg(index, { bytes: 100 }));
    const { written, failed } = await sendAll(flow, again);
    assert.deepEqual(failed.map(({ error }) => error.message), []);
    assert.equal(written.length, 20);
    const repeats = flow.outputs.slice(20).map((msg) => msg.s3 as { alreadyWritten?: boolean; key: string });
    assert.ok(repeats.every((outcome) => outcome.alreadyWritten === true));
    assert.ok(context.proxy.seen.every((request) => request.headers["if-none-match"] === "*"));
    assert.equal(context.proxy.seen.filter((request) => request.outcome === "conditional-412").length, 20);
    assert.equal(await assertBucketHolds(context.s3, first), 20);
  });

  it("a full queue with the reject policy: refused msgs fail with a clear error, accepted ones are all written", async () => {
    context.proxy.script([{ action: { kind: "latency", ms: 30 } }]);
    flow = await EgressFlow.load(context.proxy.endpoint, { concurrency: 2, maxQueue: 10 });
    const items = range(60).map((index) => scenarioMsg(index));
    const { written, failed } = await sendAll(flow, items);
    assert.ok(failed.length > 0 && written.length >= 10, `${written.length} written, ${failed.length} refused`);
    assert.equal(written.length + failed.length, 60);
    for (const { error } of failed) assert.match(error.message, /^QueueFullError: queue full: 10 msgs \/ \d+ bytes waiting \(limits 10 msgs \/ 67108864 bytes\); msg not accepted$/);
    assert.equal(await assertBucketHolds(context.s3, written), written.length);
  });
});
