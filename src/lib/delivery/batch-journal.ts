import { objectAddress } from "../core/keys";
import { type RecordFields, toBody } from "../core/record";
import type { Admission, BatchRoute } from "./batches";
import type { WriteOutcome } from "./messages";
import type { Spool, SpoolEntry, SpooledWrite } from "./spool";

/** How a batch msg's payload was encoded into its record, to give the batch the same bytes and Content-Type on replay. */
type PayloadKind = "none" | "bytes" | "text" | "json";

/** What a spooled batch msg carries besides its payload bytes (stored in the record's metadata). */
interface BatchAppend {
  fields: RecordFields;
  contentType?: string;
  payload: PayloadKind;
  complete: boolean;
  arrival: number;
}

const BATCH_MARK = "x-s3-egress-batch";

export interface JournalEvents {
  /** A batch completed by a replayed msg.complete was written (or failed); no msg is left to carry it. */
  onReplayed(outcome: Promise<WriteOutcome>, msgid: string): void;
  /** A replayed record could not join its batch (or not be read back). */
  onUnusable(problem: string): void;
}

/**
 * Makes the Batch Completions route durable: every msg is recorded in the spool before it joins
 * its batch, and its record is released once the batch it joined is written (or failed for good).
 * At start every record left is replayed, in arrival order, into the route, so a batch that was
 * open at a crash, redeploy or shutdown is rebuilt whole: its bytes, its message count, its
 * completion. A multipart upload a batch had started before is not resumed: the batch is uploaded
 * again from its records (S3 drops the stale upload's parts by the bucket's lifecycle rule).
 */
export class BatchJournal {
  /** The records of each open batch, by key, released together when the batch is written. */
  private readonly pending = new Map<string, SpoolEntry[]>();

  constructor(
    private readonly spool: Spool,
    private readonly route: BatchRoute,
    private readonly path: string,
  ) {}

  /**
   * Records a msg, then lets it join its batch. Throws InputError (nothing recorded) when its
   * payload or fields cannot be written.
   */
  async accept(fields: RecordFields, payload: unknown, contentType: unknown, complete: boolean, arrival: number, msgid: string): Promise<Admission> {
    const { key } = objectAddress("batches", this.path, fields);
    const [kind, body] = encodePayload(payload, contentType);
    const append: BatchAppend = { fields, payload: kind, complete, arrival };
    if (typeof contentType === "string" && contentType !== "") append.contentType = contentType;
    const entry = await this.spool.append({ msgid, key, contentType: "", metadata: { [BATCH_MARK]: JSON.stringify(append) }, headers: {}, body });
    return this.join(entry, append, key, payload);
  }

  /** Called by the route when it completes a batch: its records go once `written` settles. */
  finishing(key: string, written: Promise<unknown>): void {
    const entries = this.pending.get(key) ?? [];
    this.pending.delete(key);
    const release = () => entries.forEach((entry) => this.spool.release(entry));
    written.then(release, release);
  }

  /** Replays every record found in the spool at start, oldest first. */
  async replay(events: JournalEvents): Promise<number> {
    let replayed = 0;
    for (let taken = await this.spool.takeDeferred(); taken; taken = await this.spool.takeDeferred()) {
      const { entry, write } = taken;
      let append: BatchAppend | undefined;
      try {
        append = typeof write === "string" ? undefined : readAppend(write);
      } catch {
        append = undefined;
      }
      if (typeof write === "string" || !append) {
        this.spool.release(entry);
        events.onUnusable(`${entry.segment.file} at byte ${entry.offset}: ${typeof write === "string" ? write : "not a batch record"}`);
        continue;
      }
      try {
        const admission = this.join(entry, append, write.key, decodePayload(append.payload, write.body));
        if ("completed" in admission) events.onReplayed(admission.completed, write.msgid);
        replayed++;
      } catch (error) {
        events.onUnusable(`${write.key}: ${(error as Error).message}`);
      }
    }
    return replayed;
  }

  private join(entry: SpoolEntry, append: BatchAppend, key: string, payload: unknown): Admission {
    const entries = this.pending.get(key) ?? [];
    this.pending.set(key, entries);
    entries.push(entry);
    try {
      return this.route.accept(append.fields, payload, append.contentType, append.complete, append.arrival);
    } catch (error) {
      // Refused by the route (e.g. its batch failed already): the record is of no further use.
      entries.splice(entries.indexOf(entry), 1);
      this.spool.release(entry);
      throw error;
    }
  }
}

function encodePayload(payload: unknown, contentType: unknown): [PayloadKind, Buffer] {
  if (payload === undefined) return ["none", Buffer.alloc(0)];
  if (Buffer.isBuffer(payload) || payload instanceof Uint8Array) return ["bytes", toBody(payload).bytes];
  if (typeof payload === "string") return ["text", Buffer.from(payload, "utf8")];
  const body = toBody(payload, contentType);
  return [typeof payload === "object" ? "json" : "text", body.bytes];
}

function decodePayload(kind: PayloadKind, body: Buffer): unknown {
  if (kind === "none") return undefined;
  if (kind === "bytes") return body;
  const text = body.toString("utf8");
  return kind === "json" ? JSON.parse(text) : text;
}

function readAppend(write: SpooledWrite): BatchAppend | undefined {
  const mark = write.metadata[BATCH_MARK];
  if (mark === undefined) return undefined;
  return JSON.parse(mark) as BatchAppend;
}
