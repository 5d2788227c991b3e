import type { NodeMessage, NodeMessageInFlow } from "node-red";
import type { WriteOutcome } from "../delivery/messages";
import type { DeliveryCounts } from "../delivery/writer";

export type Send = (msg: NodeMessage) => void;
export type Done = (error?: Error) => void;

/** A msg as the s3-egress node reads and answers it. */
export type EgressMsg = Partial<NodeMessageInFlow> & {
  _msgid: string;
  contentType?: unknown;
  complete?: unknown;
  storageClass?: unknown;
  cacheControl?: unknown;
  /** Object Lock for this msg's object (Messages), in place of the config node's. */
  objectLock?: unknown;
  /** The write's outcome, the node's totals and the writes-in-flight limit it ran under. */
  s3?: WriteOutcome & { totals: DeliveryCounts; concurrency: number };
};

/** What a route tells the node about its writes, which keeps the status and msg.s3.totals. */
export interface RouteReport {
  /** A write succeeded: sets msg.s3 (outcome and totals) and clears the error status. */
  succeeded(msg: EgressMsg, outcome: WriteOutcome): void;
  /** A write or msg failed: an S3 error turns the status red. */
  failed(error: Error): void;
  /** Something the status shows changed. */
  changed(): void;
}
