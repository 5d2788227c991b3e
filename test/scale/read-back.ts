// After a scale run: the bucket read back and set against what the devices sent and got acknowledged.
import { createHash } from "node:crypto";
import type { FaultProxy } from "../support/fault-proxy";
import type { LocalS3 } from "../support/s3";
import type { DeviceMsg } from "./load";

/** Runs `work` over `items`, `parallel` at a time. */
async function eachLimited<T>(items: T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

/**
 * Every object of the devices the msgs come from, under `prefix`: listed device by device (s3rver
 * answers a listing past its first page of 1,000 keys with InternalError).
 */
async function objects(s3: LocalS3, prefix: string, msgs: DeviceMsg[]): Promise<Map<string, Buffer>> {
  const keys: string[] = [];
  await eachLimited([...new Set(msgs.map((msg) => msg.device))], 4, async (device) => void keys.push(...(await s3.keys(`${prefix}${device}/`))));
  const bodies = new Map<string, Buffer>();
  await eachLimited(keys, 16, async (key) => void bodies.set(key, (await s3.get(key)).body));
  return bodies;
}

/** What every PutObject wrote, from the proxy in front of S3. */
export interface Writes {
  /** Keys written more than once, each time with the same bytes. */
  writtenTwice: number;
  /** Keys written with two different contents: must be 0. */
  differing: string[];
}

export function writesSeen(proxy: FaultProxy): Writes {
  const repeated = [...proxy.writes].filter(([, digests]) => digests.length > 1);
  return {
    writtenTwice: repeated.filter(([, digests]) => new Set(digests).size === 1).length,
    differing: repeated.filter(([, digests]) => new Set(digests).size > 1).map(([key]) => key),
  };
}

/** The Messages route: one object per msg at `<prefix><device>/<batch id>/<message id>`. */
export interface MessagesReadBack {
  objects: number;
  /** Acknowledged msgs whose object is missing or holds other bytes. */
  missing: DeviceMsg[];
  /** Msgs never acknowledged whose object is there all the same. */
  writtenUnacknowledged: number;
}

export async function readMessages(s3: LocalS3, prefix: string, msgs: DeviceMsg[]): Promise<MessagesReadBack> {
  const bodies = await objects(s3, prefix, msgs);
  const stored = (msg: DeviceMsg) => bodies.get(`${prefix}${msg.device}/${msg.batchId}/${msg.messageId}`)?.equals(Buffer.from(msg.body)) === true;
  return {
    objects: bodies.size,
    missing: msgs.filter((msg) => msg.acknowledged && !stored(msg)),
    writtenUnacknowledged: msgs.filter((msg) => !msg.acknowledged && stored(msg)).length,
  };
}

/** Batch Completions: NDJSON objects at `<prefix><device>/<batch id>`, continued at `~2`, `~3`, … */
export interface BatchesReadBack {
  objects: number;
  /** Objects at a continuation key (`<key>~2`, …): batches split across runtimes or written again. */
  continuationKeys: number;
  /** Continuation objects byte-identical to another object of their batch (a batch written twice). */
  identicalCopies: number;
  /**
   * Continuation objects that split a batch: holding a msg the device sent once. The others hold only
   * msgs the device sent again (their first answer was lost), whose first copies are in the batch.
   */
  splitting: number;
  /** Acknowledged msgs found in no object. */
  missing: DeviceMsg[];
  /** Msgs held twice (in two different objects of their batch, or twice in one) that the device had sent twice: its first request got no 200. */
  heldTwiceResent: number;
  /** Acknowledged msgs sent once that are held twice: must be none. */
  heldTwiceSentOnce: DeviceMsg[];
  /** Objects whose lines are not in the order the device sent them. */
  outOfOrder: string[];
}

export async function readBatches(s3: LocalS3, prefix: string, msgs: DeviceMsg[]): Promise<BatchesReadBack> {
  const bodies = await objects(s3, prefix, msgs);
  // Byte-identical copies of one batch count once.
  const distinct = new Map<string, string>();
  let identicalCopies = 0;
  for (const [key, body] of [...bodies].sort(([a], [b]) => a.localeCompare(b))) {
    const identity = `${key.replace(/~\d+$/, "")} ${createHash("sha256").update(body).digest("hex")}`;
    if (distinct.has(identity)) identicalCopies++;
    else distinct.set(identity, key);
  }
  const sentOnce = new Set(msgs.filter((msg) => msg.attempts === 1).map((msg) => msg.body));
  let splitting = 0;
  const seen = new Map<string, number>();
  const outOfOrder: string[] = [];
  for (const key of distinct.values()) {
    const lines = bodies.get(key)!.toString().split("\n");
    const ids = lines.map((line) => line.split(" ")[2]);
    // A msg sent again to the runtime that already held it follows itself: the same id, not an earlier one.
    if (ids.some((id, index) => index > 0 && id < ids[index - 1])) outOfOrder.push(key);
    for (const line of lines) seen.set(line, (seen.get(line) ?? 0) + 1);
    if (/~\d+$/.test(key) && lines.some((line) => sentOnce.has(line))) splitting++;
  }
  const acknowledged = msgs.filter((msg) => msg.acknowledged);
  const twice = acknowledged.filter((msg) => (seen.get(msg.body) ?? 0) > 1);
  return {
    objects: bodies.size,
    continuationKeys: [...bodies.keys()].filter((key) => /~\d+$/.test(key)).length,
    identicalCopies,
    splitting,
    missing: acknowledged.filter((msg) => !seen.has(msg.body)),
    heldTwiceResent: twice.filter((msg) => msg.attempts > 1).length,
    heldTwiceSentOnce: twice.filter((msg) => msg.attempts === 1),
    outOfOrder,
  };
}
