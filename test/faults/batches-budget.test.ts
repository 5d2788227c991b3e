import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { range } from "../support/deliveries";
import { faultContext } from "../support/fault-context";
import { EgressFlow } from "../support/flow";

const KiB = 1024;
const DEVICES = 48;
const MSGS = 24;
/** 48 batches of 384 KiB: 18 MiB open, over a Batch memory of 8 MiB. */
const MSG_BYTES = 16 * KiB;

const payloadOf = (device: number, index: number) => Buffer.alloc(MSG_BYTES, (device * 31 + index * 7) & 0xff);
const msgOf = (device: number, index: number) => ({ streamGroup: "fleet", stream: "t", deviceId: `device-${device}`, batchId: "b1", payload: payloadOf(device, index) });

describe("faults: open batches beyond Batch memory, through the Node-RED runtime", function () {
  const context = faultContext();

  for (const spool of [false, true]) {
    it(`spool ${spool ? "on" : "off"}: moves idle batches to disk, is done() with every msg, and writes each batch once, whole, after a redeploy too`, async () => {
      const { s3, userDir } = context;
      const flow = await EgressFlow.load(s3.endpoint, { input: "batches", maxBatchMemoryMB: 8, spool });
      for (const index of range(MSGS)) await Promise.all(range(DEVICES).map((device) => flow.join(msgOf(device, index))));
      const spill = path.join(userDir, "s3-egress-spill", "egress");
      if (spool) assert.ok(!existsSync(spill), "with the spool, batch bytes stay in its records only");
      else assert.ok(readdirSync(spill).length > 0, "spill files under the user directory");
      // The status names the batches' bytes in memory and on disk.
      await flow.status((status) => new RegExp(`${DEVICES} open, [\\d.]+ [KMG]?i?B, [\\d.]+ [KMG]?i?B on disk`).test(String(status.text)));
      assert.deepEqual(await s3.keys(), [], "nothing completed early");

      // A redeploy: without the spool the open batches are written, with it they are rebuilt from it.
      await flow.redeploy({ name: "redeployed" });
      if (spool) {
        assert.deepEqual(await s3.keys(), [], "kept in the spool");
        await Promise.all(range(DEVICES).map((device) => flow.write({ ...msgOf(device, MSGS), complete: true })));
      } else {
        while (flow.outputs.length < DEVICES) await new Promise((resolve) => setTimeout(resolve, 20));
        assert.deepEqual(readdirSync(spill), [], "spill files removed once written");
      }
      const sent = spool ? MSGS + 1 : MSGS;
      assert.equal((await s3.keys()).length, DEVICES, "each batch once");
      for (const device of range(DEVICES)) {
        const stored = await s3.get(`batches/fleet/t/device-${device}/b1`);
        assert.ok(stored.body.equals(Buffer.concat(range(sent).map((index) => payloadOf(device, index)))), `device-${device} byte-identical`);
      }
      assert.deepEqual(flow.errors, []);
    });
  }
});
