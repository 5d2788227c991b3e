// The built editor HTML of each node (nodes/<type>.html) with the script it loads from resources/
// (bundled from src/<type>/editor.ts) registers what the dialogs validate with the runtime's own
// rules. Run here as the editor runs them, script by script in one context, with only the editor
// globals they touch while registering; test:e2e runs them in Chromium.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import vm from "node:vm";
import * as rules from "../../nodes/lib/core/rules";
import { savedFlows } from "../support/saved-flows";

type Validate = (this: Record<string, unknown>, value: unknown) => boolean | string;
interface Definition {
  defaults: Record<string, { value: unknown; validate?: Validate }>;
}

const ROOT = path.join(__dirname, "..", "..");

/** The definition the script registers, with RED._ answering "<key> <substitutions as JSON>". */
function registered(type: string): Definition {
  const definitions: Record<string, Definition> = {};
  const RED = {
    _: (key: string, substitutions?: Record<string, unknown>) => `${key} ${JSON.stringify(substitutions ?? {})}`,
    validators: { number: () => (value: unknown) => value === "" || isFinite(Number(value)) },
    nodes: { registerType: (name: string, definition: Definition) => (definitions[name] = definition) },
  };
  // No dialog is open: every input lookup finds nothing, so validators read the node's properties.
  const $ = () => ({ length: 0 });
  const context = vm.createContext({ RED, $, URL, TextEncoder });
  const html = readFileSync(path.join(ROOT, "nodes", `${type}.html`), "utf8");
  for (const [, src, inline] of html.matchAll(/<script type="text\/javascript"(?: src="resources\/@iot-sinks\/node-red-s3-egress\/([\w-]+\.js)")?>([\s\S]*?)<\/script>/g)) {
    vm.runInContext(src ? readFileSync(path.join(ROOT, "resources", src), "utf8") : inline, context);
  }
  return definitions[type];
}

describe("editor scripts", () => {
  it("s3-egress-config: the bucket and endpoint are judged by the runtime's rules, named in the catalog's words", () => {
    const { defaults } = registered("s3-egress-config");
    for (const bucket of ["Bad_Bucket", "ab", "192.168.0.1"]) {
      const reason = defaults.bucket.validate!.call({}, bucket);
      assert.equal(reason, `@iot-sinks/node-red-s3-egress/s3-egress-config:s3-egress-config.errors.field ${JSON.stringify({ field: "@iot-sinks/node-red-s3-egress/s3-egress-config:s3-egress-config.label.bucket {}", problem: rules.bucketProblem(bucket) })}`);
    }
    assert.equal(defaults.bucket.validate!.call({}, "my-bucket"), true);
    assert.match(String(defaults.endpoint.validate!.call({}, "ftp://x")), /must start with http:\/\/ or https:\/\//);
  });

  it("s3-egress: unknown enumerated values are refused naming property and value; absent properties validate as their defaults", () => {
    const { defaults } = registered("s3-egress");
    assert.equal(defaults.concatenation.validate!.call({}, "orc"), rules.choiceProblem("concatenation", "orc", rules.EGRESS_CHOICES.concatenation));
    assert.equal(defaults.concatenation.validate!.call({}, "parquet"), true);
    // A flow saved before these properties existed lacks them.
    for (const property of ["maxBatchMemoryMB", "idleTimeout", "concatenation", "parquetSchema", "concurrency"]) {
      assert.equal(defaults[property].validate!.call({}, undefined), true, property);
    }
    assert.notEqual(defaults.maxBatchMemoryMB.validate!.call({}, rules.MIN_BATCH_MEMORY_MB - 1), true);
    assert.match(String(defaults.path.validate!.call({}, "a/../b")), /may not be/);
    assert.match(String(defaults.deviceId.validate!.call({ deviceIdType: "str" }, "a/b")), /errors\.invalid/);
  });

  it("every flow saved by an earlier version validates in the editor as it is, before its dialog is opened", () => {
    const definitions = { "s3-egress": registered("s3-egress"), "s3-egress-config": registered("s3-egress-config") };
    for (const [file, flow] of savedFlows()) {
      for (const node of flow) {
        const definition = definitions[node.type as keyof typeof definitions];
        if (!definition) continue;
        for (const [property, { validate }] of Object.entries(definition.defaults)) {
          if (!validate || property === "sink") continue;
          assert.equal(validate.call(node, node[property]), true, `${file}: ${node.type}.${property} = ${JSON.stringify(node[property])}`);
        }
      }
    }
  });
});
