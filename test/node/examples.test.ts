import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import path from "node:path";
import helper from "node-red-node-test-helper";
import type { Node, NodeAPI } from "node-red";
import { configNode, egressNode, type Msg } from "../support/flow";
import { CREDENTIALS, LocalS3, TEST_BUCKET } from "../support/s3";

type FlowNode = Record<string, unknown> & { id: string; type: string };

const EXAMPLES = path.join(__dirname, "..", "..", "examples");
// The core nodes the examples use, as Node-RED itself ships them (the test helper brings Catch and Status).
const CORE_NODES = [
  "common/20-inject",
  "common/21-debug",
  "common/90-comment",
  "function/10-function",
  "function/10-switch",
  "function/15-change",
  "function/89-delay",
  "function/89-trigger",
  "network/10-mqtt",
  "sequence/17-split",
  "sequence/19-batch",
].map((file) => require(require.resolve(`@node-red/nodes/core/${file}`)) as (RED: NodeAPI) => void);

function readExamples(): Map<string, FlowNode[]> {
  const examples = new Map<string, FlowNode[]>();
  for (const file of readdirSync(EXAMPLES).filter((name) => name.endsWith(".json")).sort()) {
    examples.set(file, JSON.parse(readFileSync(path.join(EXAMPLES, file), "utf8")) as FlowNode[]);
  }
  return examples;
}

/** The next msg a node receives. */
function nextInput(id: string): Promise<Msg> {
  return new Promise((resolve) => (helper.getNode(id) as Node).once("input", resolve));
}

/** Presses an inject node's button. */
function press(id: string): void {
  (helper.getNode(id) as Node).receive({});
}

describe("examples", function () {
  let s3: LocalS3;
  const examples = readExamples();

  /** Deploys one example as it is, with this test's s3rver standing in for `npm start`'s. */
  async function deploy(file: string, mqttPort?: number): Promise<void> {
    const flow = examples.get(file)!.map((node) => {
      if (node.type === "s3-egress-config") return { ...node, endpoint: s3.endpoint, bucket: TEST_BUCKET };
      if (node.type === "mqtt-broker" && mqttPort) return { ...node, broker: "127.0.0.1", port: String(mqttPort) };
      return node;
    });
    const config = flow.find((node) => node.type === "s3-egress-config")!;
    await helper.load([configNode, egressNode, ...CORE_NODES], flow, { [config.id]: CREDENTIALS });
  }

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

  it("each have ids of their own (importing one after another asks about no conflict), one tab and one config node for npm start's local S3", () => {
    const owner = new Map<string, string>();
    for (const [file, flow] of examples) {
      for (const node of flow) {
        assert.equal(owner.get(node.id), undefined, `${file}: id ${node.id} is also used by ${owner.get(node.id)}`);
        owner.set(node.id, file);
      }
      const configs = flow.filter((node) => node.type === "s3-egress-config");
      assert.equal(configs.length, 1, file);
      assert.deepEqual({ ...configs[0], id: undefined }, { id: undefined, type: "s3-egress-config", name: "local S3 (npm start)", bucket: "iot-data", region: "us-east-1", endpoint: "http://127.0.0.1:4568", forcePathStyle: true }, file);
      assert.equal(flow.filter((node) => node.type === "tab").length, 1, file);
    }
  });

  it("are each listed in the README's example table", () => {
    const readme = readFileSync(path.join(EXAMPLES, "..", "README.md"), "utf8");
    for (const file of examples.keys()) assert.match(readme, new RegExp(`^\\| \`${file.replace(/\.json$/, "")}\` \\|`, "m"), file);
  });

  it("each say their first step, in a comment and in the tab's info: open the s3-egress node's bucket configuration", () => {
    for (const [file, flow] of examples) {
      const egress = flow.find((node) => node.type === "s3-egress")!;
      const tab = flow.find((node) => node.type === "tab")!;
      const comment = flow.find((node) => node.type === "comment" && /^First step/.test(String(node.name)));
      assert.ok(comment, `${file} has a "First step" comment`);
      assert.match(String(comment.name), new RegExp(`double-click .${egress.name}.*S3 bucket.*endpoint, bucket, keys`), file);
      assert.equal(comment.z, tab.id, file);
      assert.match(String(tab.info), /^\*\*First step, outside `npm start`:\*\* double-click the \*[^*]+\* node, click the pencil beside \*S3 bucket\*/, file);
    }
  });

  it("messages from simulated devices: the devices' readings land with the seed's key and metadata", async () => {
    await deploy("messages-from-simulated-devices.json");
    const written = nextInput("6f1d0c2a8e4b1005"); // the inject fires 0.5 s after deploy
    const { key } = (await written).s3 as { key: string };
    assert.match(key, /^demo\/messages\/factory\/telemetry\/(robot-125|robot-126|press-7)\/\d{4}-\d{2}-\d{2}\/[0-9A-Z]{26}$/);
    const stored = await s3.get(key);
    assert.equal(stored.metadata["workspace-id"], "69f09b3f-ec0d-4b9e-a5ec-87150b935296");
    assert.equal(typeof JSON.parse(stored.body.toString()).temperature, "number");
  });

  it("error handling: the good reading is written; the bad ones reach the Catch node naming the field, and nothing else is written", async () => {
    await deploy("error-handling-with-catch-and-status.json");
    const written = nextInput("6f1d0c2a8e4be006");
    press("6f1d0c2a8e4be002");
    const { key } = (await written).s3 as { key: string };
    assert.match(key, /^errors-demo\/messages\/factory\/telemetry\/robot-125\/\d{4}-\d{2}-\d{2}\/[0-9A-Z]{26}$/);
    assert.deepEqual(JSON.parse((await s3.get(key)).body.toString()), { temperature: 21.5 });

    let failed = nextInput("6f1d0c2a8e4be009");
    press("6f1d0c2a8e4be003");
    assert.deepEqual((await failed).payload, { error: "InputError: deviceId (msg.deviceId) is missing" });
    failed = nextInput("6f1d0c2a8e4be009");
    press("6f1d0c2a8e4be004");
    const caught = (await failed).payload as { error: string; workspaceId: string };
    assert.match(caught.error, /^InputError: workspaceId \(msg\.workspaceId\) "workspace-7" is not a GUID/);
    assert.deepEqual(await s3.keys("errors-demo/"), [key]);
  });

  it("MQTT in: deploys without a broker, and a simulated device message lands under the topic's stream group, stream and device", async () => {
    await deploy("mqtt-in-to-s3.json");
    const written = nextInput("6f1d0c2a8e4ba006");
    press("6f1d0c2a8e4ba004");
    const { key } = (await written).s3 as { key: string };
    assert.match(key, /^mqtt\/messages\/factory\/telemetry\/robot-125\/\d{4}-\d{2}-\d{2}\/[0-9A-Z]{26}$/);
    const stored = await s3.get(key);
    assert.deepEqual(JSON.parse(stored.body.toString()), { temperature: 21.5, humidity: 40 });
    assert.equal(stored.metadata["device-id"], "robot-125");
  });

  it("MQTT in: with a broker (as npm start runs one), the device's publish travels through it and lands in S3", async () => {
    const { Aedes } = await import("aedes");
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      await deploy("mqtt-in-to-s3.json", (server.address() as AddressInfo).port);
      const written = nextInput("6f1d0c2a8e4ba006"); // "publish as press-7" fires 2 s after deploy
      const { key } = (await written).s3 as { key: string };
      assert.match(key, /^mqtt\/messages\/factory\/telemetry\/press-7\/\d{4}-\d{2}-\d{2}\/[0-9A-Z]{26}$/);
      assert.deepEqual(JSON.parse((await s3.get(key)).body.toString()), { temperature: 20.5, humidity: 43 });
    } finally {
      await helper.unload();
      await new Promise<void>((resolve) => server.close(() => broker.close(() => resolve())));
    }
  });
});
