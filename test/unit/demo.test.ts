import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import path from "node:path";

type FlowNode = Record<string, unknown> & { id: string; type: string };
const { exampleFlows, MQTT_BROKER_NODE } = require(path.join(__dirname, "..", "..", "scripts", "start.js")) as {
  exampleFlows(): FlowNode[];
  MQTT_BROKER_NODE: string;
};

describe("npm start's demo flows", () => {
  it("hold every example with one bucket configuration that every s3-egress node uses, and the MQTT example's broker node", () => {
    const flows = exampleFlows();
    assert.equal(new Set(flows.map((node) => node.id)).size, flows.length, "ids are unique");
    const configs = flows.filter((node) => node.type === "s3-egress-config");
    assert.equal(configs.length, 1);
    const egress = flows.filter((node) => node.type === "s3-egress");
    for (const node of egress) assert.equal(node.sink, configs[0].id, String(node.name));
    const examples = readdirSync(path.join(__dirname, "..", "..", "examples")).filter((name) => name.endsWith(".json"));
    assert.equal(flows.filter((node) => node.type === "tab").length, examples.length);
    assert.equal(flows.find((node) => node.id === MQTT_BROKER_NODE)?.type, "mqtt-broker");
  });
});
