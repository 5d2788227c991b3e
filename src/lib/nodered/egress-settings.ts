import os from "node:os";
import path from "node:path";
import type { NodeAPI, NodeDef } from "node-red";
import type { FieldName, RouteInput } from "../core/record";
import { MIN_BATCH_MEMORY_MB, absent, choiceOf, concurrencyProblem, parquetSchemaProblem } from "../core/rules";
import { type BatchSettings, type Compression, type Concatenation, DEFAULT_BATCH_MEMORY_MB, DEFAULT_MAX_OPEN_BATCHES, type OpenLimitPolicy } from "../delivery/batches";
import type { ConcurrencySetting } from "../delivery/concurrency";
import { type GivenSchema, type ParquetCodec, givenSchema } from "../delivery/parquet";
import type { QueueFullPolicy } from "../delivery/intake";
import { DEFAULT_BOUNDS, DEFAULT_RETRY, type QueueBounds, type RetryPolicy } from "../delivery/writer";

/** The s3-egress node's properties as the editor stores them. */
export type EgressDef = NodeDef & {
  sink: string;
  input: RouteInput;
  path: string;
  batchIdAutofill: "none" | "utc-date";
  messageIdAutofill: "none" | "auto";
  concurrency: number | string;
  spool?: boolean | string;
  queueFull?: string;
  maxQueue?: number | string;
  maxQueueMB?: number | string;
  /** Seconds a write keeps retrying transient failures; "" = the default, 0 or "never" = until written. */
  giveUpAfter?: number | string;
  maxRetryDelay?: number | string;
  neverOverwrite?: boolean | string;
  /** Batch Completions only. */
  concatenation?: string;
  idleTimeout?: number | string;
  compression?: string;
  /** Concatenation parquet: snappy (default), gzip or none. */
  parquetCodec?: string;
  /** Concatenation parquet: a JSON object of field name -> type ("double", "string?", …); empty: inferred per batch. */
  parquetSchema?: string;
  maxOpenBatches?: number | string;
  /** What a msg that would open a batch beyond maxOpenBatches meets: `complete-oldest` (default) or `reject`. */
  openBatchesFull?: string;
  /** MiB all open batches may hold in memory; beyond it their bytes move to disk. */
  maxBatchMemoryMB?: number | string;
} & { [field in FieldName]: string } & { [field in `${FieldName}Type`]: string };

/** How long a closing node waits for writes in flight, inside Node-RED's 15 s close timeout. */
const CLOSE_WAIT_MS = 10_000;
const CLOSE_WAIT_LIMIT_MS = 14_000;

export interface DeliverySettings {
  spool: boolean;
  queueFull: QueueFullPolicy;
  bounds: QueueBounds;
  retry: RetryPolicy;
  neverOverwrite: boolean;
  concurrency: ConcurrencySetting;
}

/** The node's delivery properties, with defaults for what is missing or not a number; throws on an enumerated value it does not know. */
export function deliverySettings(def: EgressDef): DeliverySettings {
  const spool = choiceOf("spool", def.spool) === "true";
  const queueFull = choiceOf("queueFull", def.queueFull);
  return {
    spool,
    // Spilling needs somewhere to spill to.
    queueFull: spool && queueFull === "spool" ? "spool" : "reject",
    bounds: {
      maxMessages: positive(def.maxQueue, DEFAULT_BOUNDS.maxMessages),
      maxBytes: positive(def.maxQueueMB, DEFAULT_BOUNDS.maxBytes / 1024 / 1024) * 1024 * 1024,
    },
    retry: {
      giveUpAfterMs: giveUpAfterMs(def.giveUpAfter, spool),
      baseDelayMs: DEFAULT_RETRY.baseDelayMs,
      maxDelayMs: positive(def.maxRetryDelay, DEFAULT_RETRY.maxDelayMs / 1000) * 1000,
    },
    neverOverwrite: choiceOf("neverOverwrite", def.neverOverwrite) === "true",
    concurrency: concurrencyOf(def.concurrency),
  };
}

/** A saved number (flows from before "auto") stays fixed; absent is "auto"; anything else is refused. */
function concurrencyOf(value: number | string | undefined): ConcurrencySetting {
  const problem = concurrencyProblem(value);
  if (problem) throw new Error(problem);
  return absent(value) || value === "auto" ? "auto" : Number(value);
}

/**
 * Unset: the default budget, or with the spool no give-up at all (the record waits on disk until
 * it is written); 0 or "never": retry until written; a number of seconds: that long, spool or not.
 */
function giveUpAfterMs(value: number | string | undefined, spool: boolean): number {
  if (value === undefined || value === "") return spool ? Number.POSITIVE_INFINITY : DEFAULT_RETRY.giveUpAfterMs;
  if (value === "never" || Number(value) === 0) return Number.POSITIVE_INFINITY;
  return positive(value, DEFAULT_RETRY.giveUpAfterMs / 1000) * 1000;
}

function positive(value: number | string | undefined, fallback: number): number {
  const number = Number(value);
  return value !== "" && Number.isFinite(number) && number > 0 ? number : fallback;
}

/** `<userDir>/s3-egress-spool/<node id>`: the node's durable spool. */
export function spoolDirectoryOf(RED: NodeAPI, nodeId: string): string {
  return nodeDirectoryOf(RED, "s3-egress-spool", nodeId);
}

/** `<userDir>/s3-egress-spill/<node id>`: where open batches beyond Batch memory go without the spool. */
export function spillDirectoryOf(RED: NodeAPI, nodeId: string): string {
  return nodeDirectoryOf(RED, "s3-egress-spill", nodeId);
}

/** `<userDir>/<folder>/<node id>`; the id made safe as a file name (subflow instances have dotted ids). */
function nodeDirectoryOf(RED: NodeAPI, folder: string, nodeId: string): string {
  const userDir = (RED.settings as { userDir?: string }).userDir || path.join(os.homedir(), ".node-red");
  return path.join(userDir, folder, nodeId.replace(/[^A-Za-z0-9_-]/g, "_"));
}

/** `s3EgressCloseTimeout` in settings.js (ms), kept inside Node-RED's own 15 s. */
export function closeTimeout(RED: NodeAPI): number {
  const configured = Number((RED.settings as { s3EgressCloseTimeout?: unknown }).s3EgressCloseTimeout);
  return Number.isFinite(configured) && configured >= 0 ? Math.min(configured, CLOSE_WAIT_LIMIT_MS) : CLOSE_WAIT_MS;
}

/** The node's batch properties as stored in the flow, each with its default when absent; throws on an enumerated value it does not know. */
export function batchSettings(def: Partial<Pick<EgressDef, "path" | "concatenation" | "idleTimeout" | "compression" | "parquetCodec" | "parquetSchema" | "maxOpenBatches" | "openBatchesFull" | "maxBatchMemoryMB">>): BatchSettings {
  return {
    path: def.path ?? "",
    concatenation: choiceOf("concatenation", def.concatenation) as Concatenation,
    idleTimeoutMs: positive(def.idleTimeout, 0) * 1000,
    compression: choiceOf("compression", def.compression) as Compression,
    parquetCodec: choiceOf("parquetCodec", def.parquetCodec) as ParquetCodec,
    ...parquetSchemaOf(def.parquetSchema),
    maxOpenBatches: Math.floor(positive(def.maxOpenBatches, DEFAULT_MAX_OPEN_BATCHES)),
    atOpenLimit: choiceOf("openBatchesFull", def.openBatchesFull) as OpenLimitPolicy,
    maxBatchMemoryBytes: Math.max(MIN_BATCH_MEMORY_MB, positive(def.maxBatchMemoryMB, DEFAULT_BATCH_MEMORY_MB)) * 1024 * 1024,
  };
}

/** A given Parquet schema as settings (none when empty); throws, naming the property, when it is not one. */
function parquetSchemaOf(text: string | undefined): { parquetSchema?: GivenSchema } {
  const problem = parquetSchemaProblem(text);
  if (problem) throw new Error(problem);
  const schema = givenSchema(text);
  return schema ? { parquetSchema: schema } : {};
}
