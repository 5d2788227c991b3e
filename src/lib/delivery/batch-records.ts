import type { RecordFields } from "../core/record";
import type { Columns } from "./parquet";
import type { SpooledWrite } from "./spool";

/** One msg for the Batch Completions route, its fields validated. */
export interface BatchMsg {
  fields: RecordFields;
  payload: unknown;
  /** msg.contentType (or the config node's default): the Content-Type of a batch this msg opens. */
  contentType: unknown;
  complete: boolean;
  /** Arrival time, ms since the epoch. */
  arrival: number;
  msgid: string;
  /** The msg's own message id, when it carries one (not a batch field): with its bytes, it makes a completing msg sent again known. */
  messageId?: string;
}

/** What a msg adds to its batch: its payload's bytes (none without a payload), and the Content-Type those bytes have. */
export interface BatchPiece {
  body?: string | Buffer;
  type: string;
  /** Concatenation parquet: the kinds of the row's fields (not recorded: read again from the line). */
  kinds?: Columns;
}

/** What a spooled batch msg carries besides its payload bytes (stored in the record's metadata). */
interface RecordedMsg {
  fields: RecordFields;
  contentType?: string;
  type: string;
  /** "text": the payload was a string; "bytes": bytes; absent: no payload. */
  body?: "text" | "bytes";
  complete: boolean;
  arrival: number;
  messageId?: string;
}

/** The metadata entry that marks a spool record as a batch msg (Messages-route records have none). */
const BATCH_MARK = "x-s3-egress-batch";

export function isBatchRecord(write: SpooledWrite): boolean {
  return write.metadata[BATCH_MARK] !== undefined;
}

/** The spool record of a batch msg: enough to let it join its batch again at the next start. */
export function batchRecord(msg: BatchMsg, piece: BatchPiece): SpooledWrite {
  const recorded: RecordedMsg = { fields: msg.fields, type: piece.type, complete: msg.complete, arrival: msg.arrival, messageId: msg.messageId };
  if (typeof msg.contentType === "string" && msg.contentType !== "") recorded.contentType = msg.contentType;
  let body: Buffer = Buffer.alloc(0);
  if (typeof piece.body === "string") {
    recorded.body = "text";
    body = Buffer.from(piece.body, "utf8");
  } else if (piece.body !== undefined) {
    recorded.body = "bytes";
    body = piece.body;
  }
  return { msgid: msg.msgid, key: "", contentType: "", metadata: { [BATCH_MARK]: JSON.stringify(recorded) }, headers: {}, body };
}

/** The msg and piece a record holds, or why it cannot be used. */
export function readBatchRecord(write: SpooledWrite): { msg: BatchMsg; piece: BatchPiece } | string {
  const mark = write.metadata[BATCH_MARK];
  if (mark === undefined) return "not a batch record";
  let recorded: RecordedMsg;
  try {
    recorded = JSON.parse(mark) as RecordedMsg;
  } catch (error) {
    return `unreadable batch record: ${(error as Error).message}`;
  }
  const piece: BatchPiece = { type: recorded.type };
  if (recorded.body === "text") piece.body = write.body.toString("utf8");
  if (recorded.body === "bytes") piece.body = write.body;
  const msg: BatchMsg = {
    fields: recorded.fields,
    payload: piece.body,
    contentType: recorded.contentType,
    complete: recorded.complete,
    arrival: recorded.arrival,
    msgid: write.msgid,
    messageId: recorded.messageId,
  };
  return { msg, piece };
}
