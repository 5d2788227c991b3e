// The s3-egress node's saved properties, change by change (src/lib/core/migrations.ts).
import { type Migration, added, defaultsOf } from "../lib/core/migrations";

/** What a new node has, apart from its key fields (each `<field>` from `msg.<field>`). */
export const EGRESS_DEFAULTS = {
  name: "",
  sink: "",
  input: "messages",
  path: "",
  batchIdAutofill: "none",
  messageIdAutofill: "none",
  concurrency: "auto",
  spool: false,
  queueFull: "spool",
  maxQueue: 10000,
  maxQueueMB: 64,
  giveUpAfter: "",
  maxRetryDelay: 20,
  neverOverwrite: false,
  concatenation: "plain",
  idleTimeout: 0,
  compression: "none",
  parquetCodec: "snappy",
  parquetSchema: "",
  maxOpenBatches: 100000,
  maxBatchMemoryMB: 32,
  openBatchesFull: "complete-oldest",
} as const;

export const EGRESS_MIGRATIONS: readonly Migration[] = [
  {
    change: "delivery options: spool, queue bounds and the policy when full, retries (then counted as Attempts), never overwrite",
    ...added(defaultsOf(EGRESS_DEFAULTS, "spool", "queueFull", "maxQueue", "maxQueueMB", "maxRetryDelay", "neverOverwrite")),
  },
  { change: "Batch Completions: concatenation, idle timeout, compression", ...added(defaultsOf(EGRESS_DEFAULTS, "concatenation", "idleTimeout", "compression")) },
  { change: "a bound on open batches and what a msg beyond it meets", ...added(defaultsOf(EGRESS_DEFAULTS, "maxOpenBatches", "openBatchesFull")) },
  {
    // The count is dropped, not converted: 5 attempts from 100 ms were 1.5 s of backoff, which lost
    // msgs to ordinary outages; such a node gets the time budget (docs/delivery-guarantees.md).
    change: "retries by a time budget: Attempts became Give up after",
    applies: (saved) => saved.giveUpAfter === undefined || saved.attempts !== undefined,
    up: (saved) => ({ attempts: undefined, giveUpAfter: saved.giveUpAfter ?? EGRESS_DEFAULTS.giveUpAfter }),
  },
  { change: "a memory budget for open batches", ...added(defaultsOf(EGRESS_DEFAULTS, "maxBatchMemoryMB")) },
  { change: "Parquet batches: codec and schema", ...added(defaultsOf(EGRESS_DEFAULTS, "parquetCodec", "parquetSchema")) },
];
