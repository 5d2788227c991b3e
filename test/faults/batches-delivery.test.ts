import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import helper from "node-red-node-test-helper";
import { encodeRecord } from "../../nodes/lib/delivery/spool";
import { egressSpoolDir, range, scenarioMsg, spoolSegments } from "../support/deliveries";
import { faultContext } from "../support/fault-context";
import { EgressFlow } from "../support/flow";

/** Msg fields of one device of the scenarios: batch b1 of stream s in group g. */
const device = (deviceId: string, batchId = "b1") => ({ streamGroup: "g", stream: "s", deviceId, batchId });
const keyOf = (deviceId: string, batchId = "b1") => `batches/g/s/${deviceId}/${batchId}`;
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

/** Batch Completions as issue 10 saw it fail: each test is one observation, in the user's terms. */
describe("faults: Batch Completions never lose, truncate, reorder or silently overwrite a batch", function () {
  const context = faultContext();
  let flow: EgressFlow;
  it("a written batch stays as written across redeploys while another device's batch sharing its spool segment stays open", async () => {
    flow = await EgressFlow.load(context.s3.endpoint, { input: "batches", concatenation: "newline", spool: true });
    // One tick: a2's and x1's records are made durable together, in one segment.
    flow.egress.receive({ ...device("A"), payload: "a1" });
    const written = flow.write({ ...device("A"), payload: "a2", complete: true });
    flow.egress.receive({ ...device("B"), payload: "x1" });
    assert.equal(((await written).s3 as { key: string }).key, keyOf("A"));
    for (const name of ["first redeploy", "second redeploy"]) {
      await flow.redeploy({ name });
      await flow.status((status) => / 1 open,/.test(String(status.text)));
      assert.deepEqual(await context.s3.keys(), [keyOf("A")], name);
      assert.equal((await context.s3.get(keyOf("A"))).body.toString(), "a1\na2", name);
    }
    await flow.write({ ...device("B"), complete: true });
    assert.equal((await context.s3.get(keyOf("B"))).body.toString(), "x1");
    await settle();
    assert.deepEqual(spoolSegments(context.userDir), [], "every record released");
  });

  describe("acknowledged batches are never dropped by the msg queue's bound", () => {
    for (const spool of [false, true]) {
      it(`20 devices, idle timeout, queue limit 5${spool ? ", with the spool" : ""}: all 20 batches written`, async () => {
        context.proxy.script([{ action: { kind: "latency", ms: 30 } }]);
        flow = await EgressFlow.load(context.proxy.endpoint, { input: "batches", idleTimeout: 0.3, maxQueue: 5, concurrency: 2, spool });
        await Promise.all(range(20).map((index) => flow.join({ ...device(`d${index}`), payload: `reading ${index}` })));
        for (const index of range(20)) await flow.output((msg) => msg.topic === keyOf(`d${index}`));
        assert.deepEqual(flow.errors.map((error) => error.message), []);
        assert.equal((await context.s3.keys()).length, 20);
        await settle();
        assert.deepEqual(spoolSegments(context.userDir), []);
      });
    }

    it("20 open batches at close, queue limit 5: all 20 written", async () => {
      context.proxy.script([{ action: { kind: "latency", ms: 30 } }]);
      flow = await EgressFlow.load(context.proxy.endpoint, { input: "batches", maxQueue: 5, concurrency: 2 });
      await Promise.all(range(20).map((index) => flow.join({ ...device(`d${index}`), payload: `reading ${index}` })));
      await EgressFlow.unload();
      assert.equal((await context.s3.keys()).length, 20);
      assert.deepEqual(flow.errors.map((error) => error.message), []);
    });
  });

  it("an S3 outage with the spool never ends a completed batch: still retrying at close, it keeps its records and is written after the next start", async () => {
    helper.settings({ userDir: context.userDir, s3EgressCloseTimeout: 200 } as Parameters<typeof helper.settings>[0]);
    context.proxy.script([{ action: { kind: "error", status: 503, code: "SlowDown" } }]);
    flow = await EgressFlow.load(context.proxy.endpoint, { input: "batches", spool: true });
    await flow.join({ ...device("A"), payload: "a1" });
    // Its done() comes without an error (the msg is on disk), but the Complete node watching it closes with the flow.
    void flow.join({ ...device("A"), payload: "a2", complete: true });
    while (context.proxy.seen.length < 2) await settle();
    await EgressFlow.unload();
    assert.deepEqual(flow.errors.map((error) => error.message), []);
    assert.deepEqual(await context.s3.keys(), []);
    assert.ok(spoolSegments(context.userDir).length > 0, "the records are kept");

    context.proxy.script([]);
    flow = await EgressFlow.load(context.proxy.endpoint, { input: "batches", spool: true });
    const reported = await flow.output((msg) => msg.topic === keyOf("A"));
    assert.equal(reported.completedBy, "complete");
    assert.equal((await context.s3.get(keyOf("A"))).body.toString(), "a1a2");
    await settle();
    assert.deepEqual(spoolSegments(context.userDir), []);
  });

  it("an S3 outage outlasting Give up after (no spool): the batch fails to Catch with the S3 code, nothing written", async () => {
    context.proxy.script([{ action: { kind: "error", status: 500, code: "InternalError" } }]);
    flow = await EgressFlow.load(context.proxy.endpoint, { input: "batches", giveUpAfter: 0.3, maxRetryDelay: 0.1 });
    await flow.join({ ...device("A"), payload: "a1" });
    const error = await flow.fail({ ...device("A"), payload: "a2", complete: true });
    assert.match(error.message, /^S3Error: InternalError: .* \(gave up after \d+ attempts in 0\.\d s\)$/);
    assert.deepEqual(await context.s3.keys(), []);
  });

  it("a spool directory that cannot be opened fails msgs clearly and Node-RED keeps running", async () => {
    writeFileSync(path.join(context.userDir, "s3-egress-spool"), "a file where the spool directory should be");
    flow = await EgressFlow.load(context.s3.endpoint, { input: "batches", spool: true });
    for (const payload of ["first", "second"]) {
      const error = await flow.fail({ ...device("A"), payload, complete: true });
      assert.match(error.message, /^Error: cannot use the spool in .*s3-egress-spool.egress: ENOTDIR/);
    }
    assert.deepEqual(await context.s3.keys(), []);
  });

  describe("a batch re-opened under the same key never replaces the first", () => {
    it("utc-date and idle timeout: the later readings go to the continuation object <key>~2", async () => {
      flow = await EgressFlow.load(context.s3.endpoint, { input: "batches", concatenation: "newline", idleTimeout: 0.2, batchIdAutofill: "utc-date" });
      const day = new Date().toISOString().slice(0, 10);
      const robot = { streamGroup: "g", stream: "s", deviceId: "robot" };
      await flow.join({ ...robot, payload: "r1" });
      await flow.join({ ...robot, payload: "r2" });
      const first = await flow.output((msg) => msg.completedBy === "idle-timeout");
      await flow.join({ ...robot, payload: "r3" });
      const second = await flow.output((msg) => msg.completedBy === "idle-timeout" && msg !== first);
      const key = keyOf("robot", day);
      assert.deepEqual([first.topic, second.topic], [key, `${key}~2`]);
      assert.equal((await context.s3.get(key)).body.toString(), "r1\nr2");
      assert.equal((await context.s3.get(`${key}~2`)).body.toString(), "r3");
      assert.equal((await context.s3.get(`${key}~2`)).metadata["batch-id"], day, "the metadata names the batch id, not the suffix");
    });

    /** Device A's batch written once as "first", then the node restarted: S3 (the proxy) honours If-None-Match. */
    async function restartAfterFirstObject(): Promise<EgressFlow> {
      context.proxy.conditionalWrites = true;
      const before = await EgressFlow.load(context.proxy.endpoint, { input: "batches" });
      await before.write({ ...device("A"), payload: "first", complete: true });
      await EgressFlow.unload();
      return EgressFlow.load(context.proxy.endpoint, { input: "batches" });
    }

    it("after a restart: S3 refuses the written key (If-None-Match), the batch goes to the next continuation key", async () => {
      flow = await restartAfterFirstObject();
      const output = await flow.write({ ...device("A"), payload: "second", complete: true });
      assert.equal((output.s3 as { key: string }).key, `${keyOf("A")}~2`);
      assert.equal((await context.s3.get(keyOf("A"))).body.toString(), "first");
      assert.equal((await context.s3.get(`${keyOf("A")}~2`)).body.toString(), "second");
      assert.equal(context.proxy.seen.filter((request) => request.outcome === "conditional-412").length, 1);
    });

    it("after a restart, a batch streamed as a multipart upload: S3 refuses its completion (If-None-Match), Catch names the key, the first object stays", async () => {
      flow = await restartAfterFirstObject();
      for (const index of range(9)) await flow.join({ ...device("A"), payload: Buffer.alloc(1024 * 1024, index) });
      const error = await flow.fail({ ...device("A"), complete: true });
      assert.match(error.message, new RegExp(`batch object ${keyOf("A")} exists already`));
      const completes = context.proxy.requestsFor(keyOf("A")).filter((request) => request.operation === "CompleteMultipartUpload");
      assert.deepEqual(completes.map((request) => [request.outcome, request.headers["if-none-match"]]), [["conditional-412", "*"]]);
      assert.deepEqual(await context.s3.keys(), [keyOf("A")]);
      assert.equal((await context.s3.get(keyOf("A"))).body.toString(), "first");
    });
  });

  it("gzip: every msg of a burst gets done(), also those waiting for zlib when the batch completes", async () => {
    flow = await EgressFlow.load(context.s3.endpoint, { input: "batches", concatenation: "newline", compression: "gzip" });
    const payloads = range(50).map((index) => `${index}:`.padEnd(4096, String.fromCharCode(97 + (index % 26))));
    const joined = payloads.map((payload) => flow.join({ ...device("A"), payload }));
    const completed = flow.write({ ...device("A"), complete: true });
    await Promise.all([...joined, completed]);
    assert.equal(gunzipSync((await context.s3.get(keyOf("A"))).body).toString(), payloads.join("\n"));
  });

  it("arrival order is kept when the device id is read by JSONata (asynchronously), whatever each msg's expression costs", async () => {
    const deviceId = '$exists(payload.device) ? payload.device : $substringAfter(topic, "/")';
    flow = await EgressFlow.load(context.s3.endpoint, { input: "batches", concatenation: "newline", deviceId, deviceIdType: "jsonata" });
    const payloads: unknown[] = range(30).map((index) => (index % 3 === 0 ? { device: "A", index } : `m${index}`));
    const batch = { streamGroup: "g", stream: "s", batchId: "b1", topic: "devices/A" };
    const sent = payloads.map((payload) => flow.join({ ...batch, payload }));
    const output = flow.write({ ...batch, payload: "last", complete: true });
    await Promise.all([...sent, output]);
    const lines = [...payloads, "last"].map((payload) => (typeof payload === "string" ? payload : JSON.stringify(payload)));
    assert.equal((await context.s3.get(keyOf("A"))).body.toString(), lines.join("\n"));
    assert.equal(((await output).s3 as { messages: number }).messages, 31);
    await settle();
    assert.deepEqual(await context.s3.keys(), [keyOf("A")], "no leftover msg makes a second object");
  });

  describe("switching the route input never deletes spooled msgs", () => {
    it("Messages to Batches: the Messages records stay where they are, named in a warning, and are written once the node is Messages again", async () => {
      const items = range(3).map((index) => scenarioMsg(index));
      mkdirSync(egressSpoolDir(context.userDir), { recursive: true });
      const records = items.map((item, index) =>
        encodeRecord({ msgid: `r${index}`, key: item.key, contentType: "application/octet-stream", metadata: item.metadata, headers: {}, body: item.body }),
      );
      writeFileSync(path.join(egressSpoolDir(context.userDir), "000000000001.seg"), Buffer.concat(records));
      flow = await EgressFlow.load(context.s3.endpoint, { input: "batches", spool: true });
      await flow.write({ ...device("A"), payload: "batch", complete: true });
      const events = helper.log().args.map((args: unknown[]) => args[0] as { level: number; msg: unknown });
      const warnings = events.filter((event) => event.level === 30).map((event) => String(event.msg));
      assert.ok(
        warnings.some((text) => /^3 msgs in .*egress were spooled while this node had Route input Messages: they are kept there, untouched/.test(text)),
        `warned: ${JSON.stringify(warnings)}`,
      );
      assert.deepEqual(await context.s3.keys(), [keyOf("A")], "no Messages record was written as a batch");
      assert.deepEqual(readdirSync(egressSpoolDir(context.userDir)).filter((name) => name.endsWith(".seg")), ["000000000001.seg"]);

      await flow.redeploy({ input: "messages" });
      await flow.status((status) => status.fill === "green" && status.text === "ok (3)");
      for (const item of items) assert.ok((await context.s3.get(item.key)).body.equals(item.body), item.key);
      assert.deepEqual(spoolSegments(context.userDir), []);
    });

    it("Batches to Messages: an open batch's records stay, and the batch is rebuilt when the node is Batches again", async () => {
      flow = await EgressFlow.load(context.s3.endpoint, { input: "batches", spool: true });
      await flow.join({ ...device("A"), payload: "kept " });
      await flow.redeploy({ input: "messages" });
      await flow.write(scenarioMsg(1).msg);
      assert.ok(spoolSegments(context.userDir).length > 0, "the batch record is still on disk");
      assert.deepEqual(await context.s3.keys(), [scenarioMsg(1).key]);
      await flow.redeploy({ input: "batches" });
      await flow.write({ ...device("A"), payload: "and completed", complete: true });
      assert.equal((await context.s3.get(keyOf("A"))).body.toString(), "kept and completed");
    });
  });

  describe("open batches are bounded", () => {
    it("reject: a msg that would open one batch too many fails, naming the limit; open batches and their msgs are untouched", async () => {
      flow = await EgressFlow.load(context.s3.endpoint, { input: "batches", maxOpenBatches: 3, openBatchesFull: "reject" });
      for (const name of ["A", "B", "C"]) await flow.join({ ...device(name), payload: "x".repeat(100) });
      await flow.status((status) => / 3 open, 300 B$/.test(String(status.text)));
      const error = await flow.fail({ ...device("D"), payload: "d1" });
      assert.match(error.message, /^OpenBatchesFullError: open batches full: 3 batches are open \(Max open batches\); msg not accepted, batch batches\/g\/s\/D\/b1 not opened$/);
      await flow.join({ ...device("A"), payload: "more" });
      await flow.write({ ...device("A"), complete: true });
      await flow.write({ ...device("D"), payload: "d1", complete: true });
      assert.equal((await context.s3.get(keyOf("A"))).body.toString(), `${"x".repeat(100)}more`);
      assert.equal((await context.s3.get(keyOf("D"))).body.toString(), "d1");
    });

    it("complete-oldest: the batch idle longest is written to make room; its later msgs go to a continuation object", async () => {
      flow = await EgressFlow.load(context.s3.endpoint, { input: "batches", maxOpenBatches: 2 });
      await flow.join({ ...device("A"), payload: "a1" });
      await flow.join({ ...device("B"), payload: "b1" });
      await flow.join({ ...device("A"), payload: "a2" });
      await flow.join({ ...device("C"), payload: "c1" });
      const reported = await flow.output((msg) => msg.completedBy === "open-limit");
      assert.equal(reported.topic, keyOf("B"), "B was idle longest");
      assert.equal((await context.s3.get(keyOf("B"))).body.toString(), "b1");
      for (const name of ["A", "C"]) await flow.write({ ...device(name), complete: true });
      await flow.write({ ...device("B"), payload: "b2", complete: true });
      assert.deepEqual(await context.s3.keys(), [keyOf("A"), keyOf("B"), `${keyOf("B")}~2`, keyOf("C")]);
      assert.equal((await context.s3.get(keyOf("A"))).body.toString(), "a1a2");
      assert.equal((await context.s3.get(`${keyOf("B")}~2`)).body.toString(), "b2");
      assert.ok(!existsSync(egressSpoolDir(context.userDir)), "no spool without spool: true");
    });
  });
});
