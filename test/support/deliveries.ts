import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import type { CaughtError, EgressFlow, Msg } from "./flow";
import type { LocalS3 } from "./s3";

/** One device msg of a scenario, and the object it must become. */
export interface ScenarioMsg {
  msg: Record<string, unknown>;
  key: string;
  body: Buffer;
  metadata: Record<string, string>;
}

/** Msg `index` of a scenario: five devices, distinct bytes per msg, `bytes` long (at least a few). */
export function scenarioMsg(index: number, options: { bytes?: number; device?: string; batchId?: string } = {}): ScenarioMsg {
  const deviceId = options.device ?? `dev-${index % 5}`;
  const batchId = options.batchId ?? "b1";
  const messageId = `m${String(index).padStart(6, "0")}`;
  const head = Buffer.from(`msg ${index} `);
  const body = Buffer.alloc(Math.max(options.bytes ?? 0, head.length), head.length > 0 ? (index % 251) + 1 : 0);
  head.copy(body);
  const fields = { streamGroup: "faults", stream: "telemetry", deviceId, batchId, messageId };
  return {
    msg: { ...fields, payload: body },
    key: `messages/faults/telemetry/${deviceId}/${batchId}/${messageId}`,
    body,
    metadata: { "stream-group-name": "faults", "stream-name": "telemetry", "device-id": deviceId, "batch-id": batchId, "message-id": messageId },
  };
}

export interface Settled {
  written: ScenarioMsg[];
  failed: { item: ScenarioMsg; error: CaughtError }[];
}

/** Sends every msg at once and waits until each has its output or its Catch error. */
export async function sendAll(flow: EgressFlow, items: ScenarioMsg[]): Promise<Settled> {
  const results = await Promise.allSettled(items.map((item) => flow.write(item.msg)));
  const settled: Settled = { written: [], failed: [] };
  results.forEach((result, index) => {
    if (result.status === "fulfilled") settled.written.push(items[index]);
    else if (result.reason instanceof Error) throw result.reason;
    else settled.failed.push({ item: items[index], error: result.reason as CaughtError });
  });
  return settled;
}

/** The bucket holds exactly these objects, each with its bytes and metadata; returns how many were verified. */
export async function assertBucketHolds(s3: LocalS3, expected: ScenarioMsg[]): Promise<number> {
  const keys = await s3.keys();
  const wanted = [...new Set(expected.map((item) => item.key))].sort();
  const missing = wanted.filter((key) => !keys.includes(key));
  const stray = keys.filter((key) => !wanted.includes(key));
  assert.deepEqual({ missing, stray }, { missing: [], stray: [] }, "bucket contents");
  for (const item of expected) {
    const stored = await s3.get(item.key);
    assert.ok(stored.body.equals(item.body), `bytes of ${item.key}`);
    assert.deepEqual(stored.metadata, item.metadata, `metadata of ${item.key}`);
  }
  return keys.length;
}

/** The output msgs' totals: the last one seen. */
export function lastTotals(outputs: Msg[]): Record<string, number> | undefined {
  const last = outputs[outputs.length - 1];
  return (last?.s3 as { totals?: Record<string, number> } | undefined)?.totals;
}

/** 0, 1, …, count - 1. */
export const range = (count: number): number[] => Array.from({ length: count }, (_, index) => index);

/** The spool directory of the node with id "egress" in a runtime using `userDir`, as the node names it. */
export function egressSpoolDir(userDir: string): string {
  return path.join(userDir, "s3-egress-spool", "egress");
}

/** Segment files left in that spool: none once every record is released. */
export function spoolSegments(userDir: string): string[] {
  const directory = egressSpoolDir(userDir);
  return existsSync(directory) ? readdirSync(directory).filter((name) => name.endsWith(".seg")) : [];
}
