// Flows saved by earlier versions (test/fixtures/saved-flows) deploy as they are and write the
// object a msg asks for: the runtime reads them through the nodes' migrations.
import assert from "node:assert/strict";
import helper from "node-red-node-test-helper";
import type { Node, NodeAPI } from "node-red";
import { configNode, egressNode, type Msg } from "../support/flow";
import { CREDENTIALS, LocalS3, TEST_BUCKET } from "../support/s3";
import { nodeOf, savedFlows } from "../support/saved-flows";

const injectNode = require(require.resolve("@node-red/nodes/core/common/20-inject")) as (RED: NodeAPI) => void;

describe("flows saved by earlier versions", function () {
  let s3: LocalS3;

  before(async () => {
    s3 = await LocalS3.start();
  });
  afterEach(async () => {
    await helper.unload();
    await s3.clear();
  });
  after(async () => {
    await s3.stop();
  });

  for (const [file, saved] of savedFlows()) {
    it(`${file}: deploys and writes an injected msg where the seed puts it`, async () => {
      const flow = saved.map((node) => {
        if (node.type === "s3-egress-config") return { ...node, endpoint: s3.endpoint, bucket: TEST_BUCKET };
        if (node.type === "s3-egress") return { ...node, wires: [["out"]] };
        return node;
      });
      flow.push({ id: "out", type: "helper", z: "t1" });
      await helper.load([configNode, egressNode, injectNode], flow, { c1: CREDENTIALS });
      const written = new Promise<Msg>((resolve) => (helper.getNode("out") as Node).once("input", resolve));
      const errors: unknown[] = [];
      (helper.getNode("e1") as Node & { error: (...args: unknown[]) => void }).error = (...args: unknown[]) => errors.push(args);
      (helper.getNode("i1") as Node).receive({});
      const msg = await written;
      assert.deepEqual(errors, []);
      const key = String((msg.s3 as { key: string }).key);
      const batches = nodeOf(saved, "s3-egress").input === "batches";
      assert.match(key, batches ? /^batches\/factory\/telemetry\/robot-1\/\d{4}-\d{2}-\d{2}$/ : /^messages\/factory\/telemetry\/robot-1\/\d{4}-\d{2}-\d{2}\/[0-9A-Z]{26}$/);
      assert.deepEqual(await s3.keys(""), [key]);
    });
  }
});
