import type { Node, NodeAPI } from "node-red";
import { type FieldOptions, type RawFields, toFields } from "../core/record";
import { isBatchRecord } from "../delivery/batch-records";
import { type Admission, type BatchSettings, Batches, type CompletionTrigger } from "../delivery/batches";
import type { Spool } from "../delivery/spool";
import { WriterClosedError, type Writer } from "../delivery/writer";
import type { S3Sink } from "../s3/client";
import type { FieldReader } from "./fields";
import type { Done, EgressMsg, RouteReport, Send } from "./route";
import { openReportedSpool } from "./spool-opening";

export interface BatchesControllerOptions {
  RED: NodeAPI;
  node: Node;
  sink: S3Sink;
  writer: Writer;
  settings: BatchSettings;
  reader: FieldReader;
  fieldOptions: FieldOptions;
  nextMessageId: () => string;
  /** The config node's Content-Type ("" = derive from the payload). */
  contentType: string;
  /** With the spool: where it lives. */
  spoolDirectory?: string;
  report: RouteReport;
}

/**
 * The s3-egress node with Route input: Batch Completions. Takes msgs in arrival order (also when
 * a key field is read asynchronously, from JSONata or a context store), hands them to the
 * Batches, and maps what becomes of them to send/done, Catch nodes and the log.
 */
export class BatchesController {
  readonly batches: Batches;
  /** Msgs whose fields are being read or that wait for the spool, in arrival order. */
  private waiting = 0;
  private inOrder: Promise<unknown>;
  private spoolOpened: Spool | undefined;
  /** Why msgs cannot be taken: the spool could not be opened. */
  private unusable: Error | undefined;
  /** Batches that failed because the node closed before they were written (no spool). */
  abandoned = 0;

  constructor(private readonly options: BatchesControllerOptions) {
    const { RED, node, sink, writer, settings, report } = options;
    this.batches = new Batches(sink, writer, settings, {
      // Batches completed without their completing msg at hand are reported by a msg of their own.
      completed: (outcome, trigger, msgid) => {
        const msg: EgressMsg = { _msgid: msgid ?? RED.util.generateId(), topic: outcome.key, completedBy: trigger };
        report.succeeded(msg, outcome);
        node.send(msg);
      },
      failed: (error, key, trigger, msgid) => this.reportFailure(error, key, trigger, msgid),
      unusable: (problem) => node.error(RED._("s3-egress.errors.spool-damaged", { problem }), { _msgid: RED.util.generateId() }),
    });
    // Msgs that arrive while the spool opens wait for it, in arrival order.
    if (options.spoolDirectory) this.waiting++;
    this.inOrder = options.spoolDirectory ? this.openSpool(options.spoolDirectory).finally(() => this.waiting--) : Promise.resolve();
  }

  get spooled(): number {
    return this.batches.spooled;
  }

  /** The spool, once open. */
  get spool(): Spool | undefined {
    return this.spoolOpened;
  }

  /** One msg: joins its batch once the msgs before it have (done() as the Admission says). */
  input(msg: EgressMsg, send: Send, done: Done): void {
    const arrival = Date.now();
    let raw: RawFields | Promise<RawFields>;
    try {
      raw = this.options.reader.read(msg);
    } catch (error) {
      this.fail(error as Error, done);
      return;
    }
    if (!(raw instanceof Promise) && this.waiting === 0) {
      this.take(raw, msg, arrival, send, done);
      return;
    }
    // Fields are read concurrently, but msgs join in arrival order.
    this.waiting++;
    const fields = Promise.resolve(raw);
    fields.catch(() => undefined);
    this.inOrder = this.inOrder.then(() =>
      fields.then(
        (read) => this.take(read, msg, arrival, send, done),
        (error: Error) => this.fail(error, done),
      ).finally(() => this.waiting--),
    );
  }

  /**
   * Closes within `limitMs`: with the spool open batches are let go (they stay on disk); without,
   * they are completed and written. Then the writer stops and the spool is closed.
   */
  async close(limitMs: number): Promise<void> {
    const started = Date.now();
    const deadline = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)).unref());
    await Promise.race([this.inOrder, deadline(limitMs)]);
    const spool = this.spoolOpened;
    const open = this.batches.openCount;
    // A redeploy is routine: said in the log, not as a warning each time.
    if (open > 0) this.options.node.log(this.options.RED._(spool ? "s3-egress.log.batches-kept-on-close" : "s3-egress.log.batches-completed-on-close", { count: open }));
    await Promise.race([spool ? this.batches.suspend() : this.batches.close(), deadline(limitMs - (Date.now() - started))]);
    this.options.writer.close();
    await Promise.race([this.options.writer.idle(), deadline(limitMs - (Date.now() - started))]);
    await spool?.close();
  }

  private take(raw: RawFields, msg: EgressMsg, arrival: number, send: Send, done: Done): void {
    try {
      if (this.unusable) throw this.unusable;
      const { fieldOptions, nextMessageId, contentType } = this.options;
      const fields = toFields(raw, fieldOptions, { arrival, nextMessageId });
      const messageId = typeof raw.messageId === "string" && raw.messageId !== "" ? raw.messageId : undefined;
      const admission = this.batches.accept({ fields, payload: msg.payload, contentType: msg.contentType || contentType, complete: msg.complete === true, arrival, msgid: String(msg._msgid), messageId });
      if (admission instanceof Promise) {
        admission.then(
          (admitted) => this.admitted(admitted, msg, send, done),
          (error: Error) => this.fail(error, done),
        );
      } else this.admitted(admission, msg, send, done);
    } catch (error) {
      this.fail(error as Error, done);
    }
  }

  private admitted(admission: Admission, msg: EgressMsg, send: Send, done: Done): void {
    this.options.report.changed();
    if ("held" in admission) done();
    else if ("ready" in admission) admission.ready.then(() => done());
    else {
      admission.completed.then(
        (outcome) => {
          // Undefined: the node closed first; the batch is kept in the spool and written after the next start.
          if (outcome) {
            this.options.report.succeeded(msg, outcome);
            send(msg);
          }
          done();
        },
        (error: Error) => this.fail(error, done),
      );
    }
  }

  private fail(error: Error, done: Done): void {
    this.counted(error);
    done(error);
  }

  private reportFailure(error: Error, key: string, trigger: CompletionTrigger, msgid?: string): void {
    const { RED, node, sink } = this.options;
    this.counted(error);
    node.error(error, { _msgid: msgid ?? RED.util.generateId(), topic: key, completedBy: trigger, s3: { bucket: sink.bucket, key } });
  }

  /** A msg or batch failed: counted as abandoned when the node closed first, and told to the status. */
  private counted(error: Error): void {
    if (error instanceof WriterClosedError) this.abandoned++;
    this.options.report.failed(error);
  }

  /**
   * Opens the spool and rebuilds the open batches from it. A spool that cannot be opened is
   * reported, and every msg then fails with that error: the node keeps running.
   */
  private async openSpool(directory: string): Promise<void> {
    const { RED, node, report } = this.options;
    try {
      const spool = await openReportedSpool(RED, node, directory, isBatchRecord, RED._("s3-egress.input.messages"));
      this.spoolOpened = spool;
      await this.batches.resume(spool);
    } catch (error) {
      this.unusable = new Error(RED._("s3-egress.errors.spool-unusable", { directory, reason: (error as Error).message }));
      node.error(this.unusable.message);
    }
    report.changed();
  }
}
