// The scale test's load generator: devices that post their msgs over HTTP (and send again whatever got
// no 200, as a device would) or publish them to an MQTT broker with QoS 1. Bounded in count (the msgs it
// is given) and time (a deadline after which nothing is sent again).
import http from "node:http";

export type Route = "messages" | "batches";

/** One device msg, and what became of it. */
export interface DeviceMsg {
  route: Route;
  device: string;
  /** The device's own message id (messages) or its place in the batch. */
  messageId: string;
  batchId: string;
  /** The last msg of its batch: sent with X-Batch-Complete: true. */
  completes: boolean;
  /** The bytes the device sends, one line of its own (no newline). */
  body: string;
  attempts: number;
  acknowledged: boolean;
}

/** `devices` devices (ids `<tag>dev-000`, …), each sending `perDevice` msgs on `route`; batches of `perBatch` msgs. */
export function deviceMsgs(route: Route, devices: number, perDevice: number, tag = "", perBatch = 10): DeviceMsg[] {
  const msgs: DeviceMsg[] = [];
  for (let device = 0; device < devices; device++) {
    const id = `${tag}dev-${String(device).padStart(3, "0")}`;
    for (let seq = 0; seq < perDevice; seq++) {
      const messageId = `m${String(seq).padStart(5, "0")}`;
      const batchId = route === "batches" ? `b${Math.floor(seq / perBatch)}` : "load";
      const body = `${id} ${route} ${messageId} reading ${(seq * 7919 + device * 104729) % 100000} ${"~".repeat(60)}`;
      msgs.push({ route, device: id, messageId, batchId, completes: route === "batches" && (seq % perBatch === perBatch - 1 || seq === perDevice - 1), body, attempts: 0, acknowledged: false });
    }
  }
  return msgs;
}

/** The msgs grouped by device and route, each group in sending order. */
function streams(msgs: DeviceMsg[]): DeviceMsg[][] {
  const byStream = new Map<string, DeviceMsg[]>();
  for (const msg of msgs) {
    const name = `${msg.device} ${msg.route}`;
    byStream.set(name, [...(byStream.get(name) ?? []), msg]);
  }
  return [...byStream.values()];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What a load run did. */
export interface LoadResult {
  acknowledged: number;
  /** Requests sent again after one that got no 200 (or publishes never acknowledged). */
  resent: number;
  /** Msgs whose first request got no 200. */
  retriedMsgs: number;
  seconds: number;
  /** Acknowledged msgs per second over the run. */
  rate: number;
}

function summary(msgs: DeviceMsg[], started: number): LoadResult {
  const seconds = (Date.now() - started) / 1000;
  const acknowledged = msgs.filter((msg) => msg.acknowledged).length;
  const resent = msgs.reduce((sum, msg) => sum + Math.max(0, msg.attempts - 1), 0);
  return { acknowledged, resent, retriedMsgs: msgs.filter((msg) => msg.attempts > 1).length, seconds, rate: acknowledged / seconds };
}

/**
 * Devices posting to `base` (…/ingest): each device sends its msgs of a route one after the other,
 * the next once the last got 200; a request that fails or gets another status is sent again after a
 * short backoff, until `deadline` (ms since the epoch). At most `sockets` requests are open at once.
 */
export async function postAll(base: string, msgs: DeviceMsg[], deadline: number, sockets = 48): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  const started = Date.now();
  const post = (msg: DeviceMsg) =>
    new Promise<number>((resolve) => {
      const headers: Record<string, string> = { "content-type": "text/plain", "x-device-id": msg.device, "x-message-id": msg.messageId, "x-batch-id": msg.batchId };
      if (msg.completes) headers["x-batch-complete"] = "true";
      const request = http.request(`${base}/${msg.route}`, { method: "POST", agent, headers, timeout: 60_000 }, (answer) => {
        answer.resume();
        answer.on("end", () => resolve(answer.statusCode ?? 0));
        answer.on("error", () => resolve(0));
      });
      request.on("timeout", () => request.destroy());
      request.on("error", () => resolve(0));
      request.end(msg.body);
    });
  try {
    await Promise.all(
      streams(msgs).map(async (stream) => {
        for (const msg of stream) {
          while (!msg.acknowledged && Date.now() < deadline) {
            if (msg.attempts > 0) await sleep(Math.min(1000, 50 * 2 ** msg.attempts) * (0.5 + Math.random() / 2));
            msg.attempts++;
            msg.acknowledged = (await post(msg)) === 200;
          }
          if (!msg.acknowledged) return;
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return summary(msgs, started);
}

interface MqttClient {
  publishAsync(topic: string, payload: string, options: Record<string, unknown>): Promise<unknown>;
  endAsync(): Promise<void>;
}

/**
 * Devices publishing their msgs (Messages route) to `devices/<device>/messages` with QoS 1, MQTT 5,
 * the device id and message id as user properties, through `clients` connections; a msg is
 * acknowledged when the broker's PUBACK arrives. Each device publishes one msg every `intervalMs`.
 */
export async function publishAll(url: string, msgs: DeviceMsg[], deadline: number, intervalMs: number, clients = 4): Promise<LoadResult> {
  const { connectAsync } = require("mqtt") as { connectAsync(url: string, options: Record<string, unknown>): Promise<MqttClient> };
  const started = Date.now();
  const connections = await Promise.all(Array.from({ length: clients }, (_, index) => connectAsync(url, { protocolVersion: 5, clientId: `devices-${index}`, clean: true, reconnectPeriod: 500 })));
  try {
    await Promise.all(
      streams(msgs).map(async (stream, index) => {
        const client = connections[index % clients];
        await sleep(Math.random() * intervalMs);
        for (const msg of stream) {
          const next = Date.now() + intervalMs;
          while (!msg.acknowledged && Date.now() < deadline) {
            msg.attempts++;
            const properties = { userProperties: { deviceId: msg.device, messageId: msg.messageId } };
            msg.acknowledged = await client.publishAsync(`devices/${msg.device}/messages`, msg.body, { qos: 1, properties }).then(
              () => true,
              () => false,
            );
          }
          await sleep(next - Date.now());
        }
      }),
    );
  } finally {
    await Promise.all(connections.map((client) => client.endAsync()));
  }
  return summary(msgs, started);
}
