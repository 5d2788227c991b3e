import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { migrated } from "../../nodes/lib/core/migrations";
import { CONFIG_DEFAULTS, CONFIG_MIGRATIONS } from "../../nodes/s3-egress-config/migrations";
import { EGRESS_DEFAULTS, EGRESS_MIGRATIONS } from "../../nodes/s3-egress/migrations";
import { nodeOf, savedFlows } from "../support/saved-flows";

const EXAMPLES = path.join(__dirname, "..", "..", "examples");

describe("migrations of saved flows", () => {
  for (const [file, flow] of savedFlows()) {
    it(`${file}: upgrades to today's properties, keeping every value that was saved`, () => {
      for (const [type, migrations, defaults] of [
        ["s3-egress", EGRESS_MIGRATIONS, EGRESS_DEFAULTS],
        ["s3-egress-config", CONFIG_MIGRATIONS, CONFIG_DEFAULTS],
      ] as const) {
        const saved = nodeOf(flow, type);
        const before = structuredClone(saved);
        const upgraded = migrated(saved, migrations);
        assert.deepEqual(saved, before, "the saved node is left as it is");
        for (const property of Object.keys(defaults)) assert.notEqual(upgraded[property], undefined, `${type}.${property}`);
        assert.equal(upgraded.attempts, undefined, `${type}: Attempts is gone`);
        for (const [property, value] of Object.entries(saved)) {
          if (property !== "attempts" && !(property === "giveUpAfter" && saved.attempts !== undefined)) assert.deepEqual(upgraded[property], value, `${type}.${property} kept`);
        }
        assert.deepEqual(migrated(upgraded, migrations), upgraded, "applying them again changes nothing");
      }
    });
  }

  it("a node saved with Attempts gets the time budget of an empty Give up after, whatever its count", () => {
    const flows = savedFlows();
    for (const file of ["2026-11-25b-delivery.json", "2026-11-25c-batches.json"]) {
      const saved = nodeOf(flows.get(file)!, "s3-egress");
      assert.notEqual(saved.attempts, undefined, file);
      assert.equal(migrated(saved, EGRESS_MIGRATIONS).giveUpAfter, "", file);
    }
  });

  it("none applies to a node saved by this version", () => {
    for (const migration of EGRESS_MIGRATIONS) assert.equal(migration.applies({ ...EGRESS_DEFAULTS }), false, migration.change);
    for (const migration of CONFIG_MIGRATIONS) assert.equal(migration.applies({ ...CONFIG_DEFAULTS }), false, migration.change);
  });

  it("leave today's examples as they are", () => {
    for (const file of readdirSync(EXAMPLES).filter((name) => name.endsWith(".json"))) {
      for (const node of JSON.parse(readFileSync(path.join(EXAMPLES, file), "utf8")) as Record<string, unknown>[]) {
        const migrations = node.type === "s3-egress" ? EGRESS_MIGRATIONS : node.type === "s3-egress-config" ? CONFIG_MIGRATIONS : undefined;
        if (!migrations) continue;
        const upgraded = migrated(node, migrations);
        for (const [property, value] of Object.entries(node)) assert.deepEqual(upgraded[property], value, `${file} ${String(node.type)}.${property}`);
      }
    }
  });
});
