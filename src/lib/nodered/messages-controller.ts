import type { Node, NodeAPI } from "node-red";
import { headersWithOverrides, objectLockWithOverride } from "../core/object-options";
import { type FieldOptions, type RawFields, toBody, toFields } from "../core/record";
import { isBatchRecord } from "../delivery/batch-records";
import { type AcceptReceiver, Intake } from "../delivery/intake";
import { MessageRoute, type WriteOutcome } from "../delivery/messages";
import type { Spool } from "../delivery/spool";
import { WriterClosedError, type Writer } from "../delivery/writer";
import type { ObjectLock, S3Sink } from "../s3/client";
import type { DeliverySettings } from "./egress-settings";
import type { FieldReader } from "./fields";
import type { Done, EgressMsg, RouteReport, Send } from "./route";
import { openReportedSpool } from "./spool-opening";

export interface MessagesControllerOptions {
  RED: NodeAPI;
  node: Node;
  sink: S3Sink;
  writer: Writer;
  reader: FieldReader;
  fieldOptions: FieldOptions;
  nextMessageId: () => string;
  /** The config node's Content-Type ("" = derive from the payload) and object headers. */
  contentType: string;
  objectHeaders: Record<string, string>;
  /** The config node's Object Lock; msg.objectLock replaces it for one msg. */
  objectLock?: ObjectLock;
  path: string;
  delivery: DeliverySettings;
  /** With the spool: where it lives. */
  spoolDirectory?: string;
  report: RouteReport;
}

/**
 * The s3-egress node with Route input: Messages. Each msg becomes one object: its fields are
 * read, key and metadata derived (bad input fails the msg alone), and the write is taken by the
 * Intake (through the spool when there is one); how it ends maps to send/done, Catch nodes and
 * the log. A msg on its way is one small MessageDelivery, not a chain of promises.
 */
export class MessagesController {
  readonly intake: Intake;
  /** Msgs failed because the node closed before they were written (no spool). */
  abandoned = 0;
  private readonly route: MessageRoute;
  private spoolOpened: Spool | undefined;

  constructor(readonly options: MessagesControllerOptions) {
    const { RED, node, sink, writer, delivery, spoolDirectory, report } = options;
    this.route = new MessageRoute(sink, writer, options.path, delivery.neverOverwrite);
    this.intake = new Intake(writer, this.route, delivery.queueFull, {
      onLaterWritten: (write, outcome) => {
        const msg: EgressMsg = { _msgid: write.msgid };
        report.succeeded(msg, outcome);
        node.send(msg);
      },
      onLaterFailed: (write, error) => {
        this.failed(error);
        node.error(error, { _msgid: write.msgid, s3: { bucket: sink.bucket, key: write.key } });
      },
      onUnreadable: (problem) => node.error(RED._("s3-egress.errors.spool-damaged", { problem }), { _msgid: RED.util.generateId() }),
      onSpill: () => node.warn(RED._("s3-egress.warnings.spilling", { messages: delivery.bounds.maxMessages, bytes: delivery.bounds.maxBytes, directory: spoolDirectory ?? "" })),
    }, spoolDirectory ? this.openSpool(spoolDirectory) : undefined);
  }

  get spooled(): number {
    return this.intake.spooled;
  }

  /** The spool, once open. */
  get spool(): Spool | undefined {
    return this.spoolOpened;
  }

  input(msg: EgressMsg, send: Send, done: Done): void {
    // A queue full of msgs refuses at once, before anything is read or derived: a burst's refusals cost little.
    if (this.intake.refuses(0)) {
      done(this.options.writer.fullError());
      return;
    }
    const arrival = Date.now();
    const delivery = new MessageDelivery(this, msg, send, done);
    let raw: RawFields | Promise<RawFields>;
    try {
      raw = this.options.reader.read(msg);
    } catch (error) {
      return delivery.failed(error as Error);
    }
    if (raw instanceof Promise) {
      raw.then(
        (read) => this.take(read, delivery, arrival),
        (error: Error) => delivery.failed(error),
      );
    } else this.take(raw, delivery, arrival);
  }

  /** Closes within `limitMs` (see Intake.close). */
  close(limitMs: number): Promise<void> {
    return this.intake.close(limitMs);
  }

  failed(error: Error): void {
    if (error instanceof WriterClosedError) this.abandoned++;
    this.options.report.failed(error);
  }

  private take(raw: RawFields, delivery: MessageDelivery, arrival: number): void {
    const { msg } = delivery;
    const { fieldOptions, nextMessageId, contentType, objectHeaders, objectLock, sink } = this.options;
    let write;
    try {
      const body = toBody(msg.payload, msg.contentType || contentType);
      // Full by bytes: refused before key and metadata are derived.
      if (this.intake.refuses(body.bytes.length)) return delivery.failed(this.options.writer.fullError());
      const fields = toFields(raw, fieldOptions, { arrival, nextMessageId });
      const lock = msg.objectLock === undefined ? objectLock : objectLockWithOverride(objectLock, msg.objectLock, sink.checksum);
      write = this.route.prepare(fields, body, headersWithOverrides(objectHeaders, msg), String(msg._msgid), lock);
    } catch (error) {
      return delivery.failed(error as Error);
    }
    this.intake.accept(write, delivery);
  }

  /** Opens the spool (see openReportedSpool); one that cannot be opened is said in the log. */
  private openSpool(directory: string): Promise<Spool> {
    const { RED, node, report } = this.options;
    const opening = openReportedSpool(RED, node, directory, (write) => !isBatchRecord(write), RED._("s3-egress.input.batches"));
    opening.then(
      (spool) => {
        this.spoolOpened = spool;
        report.changed();
      },
      (error: Error) => node.error(RED._("s3-egress.errors.spool-unusable", { directory, reason: error.message })),
    );
    return opening;
  }
}

/** One msg on its way: how its write ends becomes send/done. */
class MessageDelivery implements AcceptReceiver {
  constructor(
    private readonly controller: MessagesController,
    readonly msg: EgressMsg,
    private readonly send: Send,
    private readonly done: Done,
  ) {}

  written(outcome: WriteOutcome): void {
    this.controller.options.report.succeeded(this.msg, outcome);
    this.send(this.msg);
    this.done();
  }

  /** Durable on disk: its write is reported when it happens (onLaterWritten/onLaterFailed). */
  spooled(): void {
    this.done();
  }

  failed(error: Error): void {
    this.controller.failed(error);
    this.done(error);
  }
}
