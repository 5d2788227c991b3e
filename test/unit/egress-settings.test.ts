import assert from "node:assert/strict";
import { type EgressDef, deliverySettings } from "../../nodes/lib/nodered/egress-settings";

/** A node's saved properties: only those the test names, as a flow saved by an older version has. */
const pick = ({ spool, queueFull, neverOverwrite }: ReturnType<typeof deliverySettings>) => ({ spool, queueFull, neverOverwrite });

const saved = (properties: Record<string, unknown>): EgressDef => properties as unknown as EgressDef;

describe("delivery settings from a node's saved properties", () => {
  it("concurrency: auto by default; a saved number stays fixed; anything else is refused, named", () => {
    assert.equal(deliverySettings(saved({})).concurrency, "auto");
    assert.equal(deliverySettings(saved({ concurrency: "auto" })).concurrency, "auto");
    assert.equal(deliverySettings(saved({ concurrency: "" })).concurrency, "auto");
    assert.throws(() => deliverySettings(saved({ concurrency: "many" })), /^Error: concurrency "many" is not auto or a whole number from 1 to 1024$/);
    assert.throws(() => deliverySettings(saved({ concurrency: 0 })), /concurrency 0 /);
    assert.throws(() => deliverySettings(saved({ concurrency: 2.5 })), /concurrency 2.5 /);
    assert.equal(deliverySettings(saved({ concurrency: 16 })).concurrency, 16, "flows saved before auto keep their number");
    assert.equal(deliverySettings(saved({ concurrency: "32" })).concurrency, 32);
  });

  it("spool, queue full and never overwrite: defaults when absent, a value they do not know refused, named", () => {
    assert.deepEqual(pick(deliverySettings(saved({}))), { spool: false, queueFull: "reject", neverOverwrite: false });
    assert.deepEqual(pick(deliverySettings(saved({ spool: true, neverOverwrite: "true" }))), { spool: true, queueFull: "spool", neverOverwrite: true });
    assert.deepEqual(pick(deliverySettings(saved({ spool: "true", queueFull: "reject" }))), { spool: true, queueFull: "reject", neverOverwrite: false });
    assert.throws(() => deliverySettings(saved({ spool: "yes" })), /^Error: spool "yes" is not a value this version knows \(false, true\)$/);
    assert.throws(() => deliverySettings(saved({ queueFull: "drop" })), /queueFull "drop" is not a value this version knows \(spool, reject\)/);
    assert.throws(() => deliverySettings(saved({ neverOverwrite: 1 })), /neverOverwrite 1 /);
  });

  it("give up after: 10 min by default, never with the spool unless set; 0 and never retry until written; a number is seconds", () => {
    const budget = (properties: Record<string, unknown>) => deliverySettings(saved(properties)).retry.giveUpAfterMs;
    assert.equal(budget({}), 600_000);
    assert.equal(budget({ giveUpAfter: "" }), 600_000);
    assert.equal(budget({ spool: true }), Number.POSITIVE_INFINITY);
    assert.equal(budget({ spool: true, giveUpAfter: 120 }), 120_000, "a give-up the user set applies with the spool too");
    assert.equal(budget({ giveUpAfter: 0 }), Number.POSITIVE_INFINITY);
    assert.equal(budget({ giveUpAfter: "never" }), Number.POSITIVE_INFINITY);
    assert.equal(budget({ giveUpAfter: "1.5" }), 1500);
    assert.equal(budget({ attempts: 3 }), 600_000, "a saved count of attempts is no longer read");
  });
});
