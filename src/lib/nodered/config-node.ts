import type { Node } from "node-red";
import type { ConcurrencyLimit, ConcurrencySetting } from "../delivery/concurrency";
import type { Credentials, ObjectLock, S3Sink } from "../s3/client";

export type SinkConfigCredentials = Partial<Credentials>;

/** What an s3-egress node sees of its s3-egress-config node. */
export interface SinkConfigNode extends Node<SinkConfigCredentials> {
  bucket: string;
  /** As the editor labels it: its name, or bucket and region (or endpoint host). */
  label: string;
  /** Why the configuration cannot be used, or undefined when it can. */
  problem?: string;
  /** The shared connection; undefined when `problem` is set. */
  sink?: S3Sink;
  /** Storage class, encryption and Cache-Control headers every object gets, unless a msg overrides them. */
  objectHeaders: Record<string, string>;
  /** Object Lock of every object (retention counted from each write), unless a msg sets msg.objectLock; undefined for none. */
  objectLock?: ObjectLock;
  /** Content-Type for every object instead of the one derived from the payload ("" = derive); msg.contentType wins. */
  contentType: string;
  /** The concurrency limit a user's writer runs under ("auto": the one shared by this config node's "auto" users); the socket pool follows it. */
  register(user: Node, concurrency: ConcurrencySetting): ConcurrencyLimit;
  unregister(user: Node): void;
}
