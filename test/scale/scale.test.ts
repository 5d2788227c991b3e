// npm run test:scale: three Node-RED runtimes (the packed package, the spool on) behind HAProxy and
// behind Mosquitto, writing to one bucket; one runtime killed (SIGKILL) or stopped (SIGTERM) mid-run
// and started again. The bucket is read back against what the devices sent and got acknowledged.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FaultProxy } from "../support/fault-proxy";
import { installPackedPackage } from "../support/packed";
import { LocalS3 } from "../support/s3";
import { Cluster, exampleFlow, type FlowNode } from "./cluster";
import { type DeviceMsg, deviceMsgs, type LoadResult, postAll, publishAll } from "./load";
import { readBatches, readMessages, writesSeen } from "./read-back";
import { type Service, startHaproxy, startMosquitto } from "./services";

const HTTP_EXAMPLE = "http-ingress-behind-a-load-balancer";
/** The example's paths under the test runtimes' httpNodeRoot (/api). */
const INGEST = "/api/ingest";
const HTTP_MESSAGES = "http/messages/http-ingest/telemetry/";
const HTTP_BATCHES = "http/batches/http-ingest/telemetry/";
const MQTT_MESSAGES = "mqtt/messages/mqtt-ingest/telemetry/";
/**
 * Devices and msgs per device and route of a failover run: 2 x 200 x 25 = 10,000 msgs over HTTP, 5,000
 * over MQTT (S3_EGRESS_SCALE_DEVICES and S3_EGRESS_SCALE_MSGS change them).
 */
const DEVICES = Number(process.env.S3_EGRESS_SCALE_DEVICES || 200);
const PER_DEVICE = Number(process.env.S3_EGRESS_SCALE_MSGS || 25);
/** The runtime killed or stopped: the second of three. */
const VICTIM = 1;
/**
 * How long the victim stays down: killed, it is restarted after HAProxy has taken it out (10 failed
 * health checks, examples/haproxy.cfg), so its devices move; stopped, it is back within that time.
 */
const DOWN_MS = { SIGKILL: 12_000, SIGTERM: 3000 } as Record<NodeJS.Signals, number>;
/** No run sends anything after this. */
const RUN_MS = 240_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const acknowledged = (msgs: DeviceMsg[]) => msgs.filter((msg) => msg.acknowledged).length;

/** Resolves once `test` holds (checked every 50 ms); rejects after `ms`. */
async function until(test: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

/** POST here (under httpNodeRoot) closes a runtime's broker connection before it is stopped: what arrives meanwhile still reaches the flow. */
const MQTT_DISCONNECT = "/api/mqtt/disconnect";

/**
 * The MQTT flow of runtime `index`: a shared subscription (QoS 1, persistent session of its own) into
 * the Messages route, spool on; and POST /mqtt/disconnect, an mqtt out node's disconnect action,
 * answered once the connection is closed.
 */
function mqttFlow(index: number, brokerPort: number, endpoint: string): FlowNode[] {
  const sink = exampleFlow(HTTP_EXAMPLE, endpoint).find((node) => node.type === "s3-egress-config")!;
  return [
    { id: "mqtt-tab", type: "tab", label: "MQTT to S3" },
    {
      id: "broker", type: "mqtt-broker", broker: "127.0.0.1", port: String(brokerPort), clientid: `node-red-${index + 1}`, autoConnect: true,
      usetls: false, protocolVersion: "5", keepalive: "15", cleansession: false, sessionExpiry: "600", birthTopic: "", closeTopic: "", willTopic: "",
    },
    { id: "mqtt-in", type: "mqtt in", z: "mqtt-tab", topic: "$share/s3-egress/devices/+/messages", qos: "1", datatype: "utf8", broker: "broker", nl: false, rap: true, rh: 0, inputs: 0, wires: [["mqtt-egress"]] },
    {
      id: "mqtt-egress", type: "s3-egress", z: "mqtt-tab", name: "MQTT to S3", sink: sink.id, input: "messages", spool: true, path: "mqtt",
      streamGroup: "mqtt-ingest", streamGroupType: "str", stream: "telemetry", streamType: "str", deviceId: "userProperties.deviceId", deviceIdType: "msg",
      batchId: "load", batchIdType: "str", messageId: "userProperties.messageId", messageIdType: "msg", wires: [[]],
    },
    { id: "disconnect-in", type: "http in", z: "mqtt-tab", url: MQTT_DISCONNECT.replace("/api", ""), method: "post", upload: false, swaggerDoc: "", wires: [["disconnect-action"]] },
    { id: "disconnect-action", type: "change", z: "mqtt-tab", rules: [{ t: "set", p: "action", pt: "msg", to: "disconnect", tot: "str" }], wires: [["mqtt-out"]] },
    { id: "mqtt-out", type: "mqtt out", z: "mqtt-tab", broker: "broker", topic: "", qos: "", retain: "", wires: [] },
    { id: "disconnected", type: "complete", z: "mqtt-tab", scope: ["mqtt-out"], uncaught: false, wires: [["disconnect-answer"]] },
    { id: "disconnect-answer", type: "http response", z: "mqtt-tab", statusCode: "200", headers: {}, wires: [] },
    sink,
  ];
}

describe("scale: three Node-RED runtimes behind HAProxy and Mosquitto, one bucket", function () {
  this.timeout(600_000);
  let base: string;
  /** A user directory with the packed package installed; the runtimes' user directories use its node_modules. */
  let installed: string;
  let s3: LocalS3;
  let proxy: FaultProxy;
  let cluster: Cluster;
  const services: Service[] = [];
  const figures: string[] = [];

  before(() => {
    base = mkdtempSync(path.join(tmpdir(), "s3-egress-scale-"));
    installed = path.join(base, "installed");
    mkdirSync(installed);
    installPackedPackage(installed);
  });
  after(() => {
    rmSync(base, { recursive: true, force: true });
    process.stdout.write(`\n${figures.join("\n")}\n`);
  });

  /** A fresh bucket behind a proxy that honours If-None-Match and records each write, and three runtimes deploying `flow`. */
  async function setUp(name: string, flow: (index: number, endpoint: string) => FlowNode[]): Promise<void> {
    s3 = await LocalS3.start();
    proxy = await FaultProxy.start(s3.endpoint, 600_000);
    proxy.conditionalWrites = true;
    proxy.recordWrites = true;
    cluster = await Cluster.create(path.join(base, name), installed, (index) => flow(index, proxy.endpoint));
    await cluster.startAll();
  }
  afterEach(async () => {
    for (const service of services.splice(0)) await service.stop();
    await cluster?.stopAll();
    await proxy?.stop();
    await s3?.stop();
  });

  async function haproxy(servers: string[]): Promise<string> {
    const service = await startHaproxy([servers[0], servers[1], servers[2]], `${INGEST}/health`);
    services.push(service);
    return `http://127.0.0.1:${service.port}${INGEST}`;
  }

  /**
   * Once `progress()` reaches 40 % of the msgs, `beforeStop()` (if given) and `signal` to the victim;
   * started again DOWN_MS after it exited. Resolves with the msgs acknowledged at the signal and the
   * seconds from the signal until the victim listened again.
   */
  async function failover(msgs: DeviceMsg[], signal: NodeJS.Signals, progress: () => number, beforeStop?: () => Promise<void>): Promise<{ atSignal: number; down: number }> {
    await until(() => progress() >= 0.4 * msgs.length, RUN_MS, "40 % of the msgs");
    await beforeStop?.();
    const atSignal = acknowledged(msgs);
    const signalled = Date.now();
    await cluster.kill(VICTIM, signal);
    await sleep(DOWN_MS[signal]);
    await cluster.start(VICTIM);
    return { atSignal, down: (Date.now() - signalled) / 1000 };
  }

  /** Waits until the spools are empty and nothing was written for 2 s. */
  async function settled(): Promise<void> {
    let writes = -1;
    await until(() => cluster.spooledSegments() === 0, 60_000, "spools empty");
    while (writes !== proxy.seen.length) {
      writes = proxy.seen.length;
      await sleep(2000);
    }
    await cluster.drained(60_000);
  }

  function loadFigures(load: LoadResult, sent: number, { atSignal, down }: { atSignal: number; down: number }): string {
    return `${sent} msgs sent by ${DEVICES} devices, ${load.acknowledged} acknowledged (${atSignal} before the signal, the runtime back ${down.toFixed(1)} s after it), ${load.resent} requests sent again for ${load.retriedMsgs} msgs, ${load.rate.toFixed(0)} msgs/s acknowledged over ${load.seconds.toFixed(1)} s`;
  }

  async function httpFailover(signal: NodeJS.Signals): Promise<void> {
    await setUp(`http-${signal}`, () => exampleFlow(HTTP_EXAMPLE, proxy.endpoint));
    const url = await haproxy(cluster.addresses);
    const messages = deviceMsgs("messages", DEVICES, PER_DEVICE);
    const batches = deviceMsgs("batches", DEVICES, PER_DEVICE);
    const msgs = [...messages, ...batches];
    const run = postAll(url, msgs, Date.now() + RUN_MS);
    const stop = await failover(msgs, signal, () => acknowledged(msgs));
    const load = await run;
    await settled();
    const writes = writesSeen(proxy);
    const objects = await readMessages(s3, HTTP_MESSAGES, messages);
    const batched = await readBatches(s3, HTTP_BATCHES, batches);
    figures.push(
      `HTTP through HAProxy, ${signal} of runtime ${VICTIM + 1} of 3 and its restart ${DOWN_MS[signal] / 1000} s later: ${loadFigures(load, msgs.length, stop)}.`,
      `  Messages: ${objects.objects} objects, ${objects.missing.length} acknowledged msgs missing, ${writes.writtenTwice} keys written twice (byte-identical), ${writes.differing.length} keys with two different contents.`,
      `  Batches: ${batched.objects} objects (${batches.filter((msg) => msg.completes && msg.attempts > 1).length} msgs completing a batch were sent again), ${batched.continuationKeys} at continuation keys (${batched.splitting} splitting a batch, ${batched.identicalCopies} byte-identical copies, the others holding only msgs sent again), ${batched.missing.length} acknowledged msgs missing, ${batched.heldTwiceResent} msgs held twice that were sent twice, ${batched.heldTwiceSentOnce.length} sent once and held twice, ${batched.outOfOrder.length} objects out of order.`,
    );
    process.stdout.write(`${figures.slice(-3).join("\n")}\n`);
    assert.equal(load.acknowledged, msgs.length, "every msg acknowledged in the end");
    assert.deepEqual(objects.missing.map((msg) => msg.messageId), [], "acknowledged msgs missing (Messages)");
    assert.deepEqual(batched.missing.map((msg) => msg.body), [], "acknowledged msgs missing (Batch Completions)");
    assert.deepEqual(writes.differing, [], "keys written with two different contents");
    assert.deepEqual(batched.heldTwiceSentOnce.map((msg) => msg.body), [], "msgs sent once held twice");
    assert.deepEqual(batched.outOfOrder, [], "batch objects in the devices' order");
    // Back within HAProxy's 10 s, a stopped runtime keeps its devices; a msg that completed a batch while it stopped (its
    // answer lost) is sent again and answered by that batch's write.
    if (signal === "SIGTERM") assert.equal(batched.continuationKeys, 0, "a graceful stop writes no continuation key");
  }

  it("HTTP through HAProxy, one runtime killed (SIGKILL) mid-run and restarted: no acknowledged msg missing, no key with two contents, on both routes", async () => {
    await httpFailover("SIGKILL");
  });

  it("HTTP through HAProxy, one runtime stopped (SIGTERM) mid-run and restarted: no acknowledged msg missing, no continuation key", async () => {
    await httpFailover("SIGTERM");
  });

  it("throughput through HAProxy, both routes: msgs/s acknowledged with one runtime and with three (all on the same two cores)", async () => {
    await setUp("http-throughput", () => exampleFlow(HTTP_EXAMPLE, proxy.endpoint));
    const [first] = cluster.addresses;
    const rates: string[] = [];
    for (const [label, servers] of [["one runtime", [first, first, first]], ["three runtimes", cluster.addresses]] as const) {
      const url = await haproxy([...servers]);
      const tag = label.split(" ")[0];
      const msgs = [...deviceMsgs("messages", DEVICES / 2, 20, `${tag}-`), ...deviceMsgs("batches", DEVICES / 2, 20, `${tag}-`)];
      const before = await cluster.objectsWritten();
      const load = await postAll(url, msgs, Date.now() + RUN_MS);
      const after = await cluster.objectsWritten();
      assert.equal(load.acknowledged, msgs.length, `${label}: every msg acknowledged`);
      const share = after.map((written, index) => written - before[index]).join(" / ");
      rates.push(`${label}: ${load.rate.toFixed(0)} msgs/s (${msgs.length} msgs in ${load.seconds.toFixed(1)} s, objects written per runtime ${share})`);
    }
    await settled();
    assert.deepEqual(writesSeen(proxy).differing, [], "keys written with two different contents");
    figures.push(`HTTP through HAProxy, ${DEVICES / 2} devices x 20 msgs x 2 routes, acknowledged: ${rates.join("; ")}.`);
    process.stdout.write(`${figures.at(-1)}\n`);
  });

  /** `disconnectFirst`: the victim's broker connection is closed (POST /mqtt/disconnect) before the signal. */
  async function mqttFailover(signal: NodeJS.Signals, disconnectFirst = false): Promise<number> {
    const name = `${signal}${disconnectFirst ? "-disconnected" : ""}`;
    const dir = path.join(base, `mosquitto-${name}`);
    mkdirSync(dir);
    const mosquitto = await startMosquitto(dir);
    services.push(mosquitto);
    await setUp(`mqtt-${name}`, (index, endpoint) => mqttFlow(index, mosquitto.port, endpoint));
    await until(() => (mosquitto.output().match(/\$share\/s3-egress\/devices/g) ?? []).length >= 3, 30_000, "three runtimes subscribed");
    const msgs = deviceMsgs("messages", DEVICES, PER_DEVICE);
    // Each device publishes every 0.4 s (500 msgs/s from 200 devices), so msgs are on their way when the signal comes.
    const run = publishAll(`mqtt://127.0.0.1:${mosquitto.port}`, msgs, Date.now() + RUN_MS, 400);
    const disconnect = async () => {
      const answer = await fetch(`http://127.0.0.1:${cluster.ports[VICTIM]}${MQTT_DISCONNECT}`, { method: "POST" });
      assert.equal(answer.status, 200, "broker connection closed");
    };
    const stop = await failover(msgs, signal, () => acknowledged(msgs), disconnectFirst ? disconnect : undefined);
    const load = await run;
    await settled();
    const writes = writesSeen(proxy);
    const objects = await readMessages(s3, MQTT_MESSAGES, msgs);
    const how = `${disconnectFirst ? "its broker connection closed, then " : ""}${signal}`;
    figures.push(
      `MQTT through Mosquitto ($share, QoS 1, persistent sessions), runtime ${VICTIM + 1} of 3: ${how}, and its restart ${DOWN_MS[signal] / 1000} s later: ${loadFigures(load, msgs.length, stop)} (PUBACK by the broker).`,
      `  ${objects.objects} objects, ${objects.missing.length} acknowledged msgs lost, ${writes.writtenTwice} keys written twice (byte-identical), ${writes.differing.length} keys with two different contents.`,
    );
    process.stdout.write(`${figures.slice(-2).join("\n")}\n`);
    assert.equal(load.acknowledged, msgs.length, "every msg acknowledged by the broker");
    assert.deepEqual(writes.differing, [], "keys written with two different contents");
    return objects.missing.length;
  }

  it("MQTT through Mosquitto, one runtime killed (SIGKILL) mid-run and restarted: the msgs lost between mqtt in's ack and the spool, measured", async () => {
    const lost = await mqttFailover("SIGKILL");
    assert.ok(lost <= DEVICES * PER_DEVICE * 0.05, `${lost} lost`);
  });

  it("MQTT through Mosquitto, one runtime stopped (SIGTERM) mid-run and restarted: the msgs lost between mqtt in's close and its connection's, measured", async () => {
    // mqtt in's close takes its handler off the connection at once; the connection closes after it, and what
    // arrives in between is acknowledged (PUBACK) with no node to take it.
    const lost = await mqttFailover("SIGTERM");
    assert.ok(lost <= DEVICES * PER_DEVICE * 0.01, `${lost} lost`);
  });

  it("MQTT through Mosquitto, one runtime's broker connection closed (mqtt out's disconnect action), then stopped (SIGTERM) and restarted: no msg lost", async () => {
    // Closed first, the connection hands every msg it took to mqtt in; the session keeps the rest until the restart.
    assert.equal(await mqttFailover("SIGTERM", true), 0, "msgs lost");
  });
});
