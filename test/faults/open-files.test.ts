import assert from "node:assert/strict";
import { assertBucketHolds, range, scenarioMsg } from "../support/deliveries";
import { faultContext } from "../support/fault-context";
import { installWithFlow, Runtime } from "../support/runtime-process";

/** The file descriptors the runtime process may open: Node-RED itself takes a few dozen. */
const OPEN_FILES = 100;

describe("faults: a runtime process with few file descriptors", function () {
  this.timeout(120_000);
  const context = faultContext();

  it("EMFILE on connect shrinks the adaptive writes in flight below what the process may open; every msg written, none failed", async () => {
    const { s3, proxy, userDir } = context;
    installWithFlow(userDir, proxy.endpoint, { spool: false });
    // 100 ms per answer: the limit would grow to hundreds of connections (and did, to 392, while EMFILE only caused retries).
    proxy.script([{ action: { kind: "latency", ms: 100 } }]);
    const total = 900;
    const runtime = new Runtime(userDir, range(total), {}, OPEN_FILES);
    await runtime.until(() => runtime.done.size + runtime.failed.length === total);
    await runtime.kill("SIGTERM");
    assert.deepEqual(runtime.failed, []);
    assert.equal(await assertBucketHolds(s3, range(total).map((index) => scenarioMsg(index, { bytes: 2048 }))), total);
    const limits = runtime.statuses.map((text) => Number(/limit (\d+)\)$/.exec(text)?.[1])).filter((limit) => limit > 0);
    assert.ok(limits.length > 0, `the status shows the limit: ${runtime.statuses.join(" | ")}`);
    assert.ok(limits[limits.length - 1] < OPEN_FILES, `the limit settled below ${OPEN_FILES} file descriptors: ${limits.join(", ")}`);
  });
});
