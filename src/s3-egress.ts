import type { Node, NodeAPI, NodeMessage, NodeMessageInFlow, NodeStatus } from "node-red";
import { MessageIdGenerator } from "./lib/core/ids";
import { headersWithOverrides } from "./lib/core/object-options";
import { FIELD_NAMES, type FieldName, type RawFields, type RouteInput, toBody, toFields } from "./lib/core/record";
import { BatchJournal } from "./lib/delivery/batch-journal";
import { type Admission, BatchRoute } from "./lib/delivery/batches";
import { MessageRoute, type WriteOutcome } from "./lib/delivery/messages";
import { type Acceptance, Intake } from "./lib/delivery/intake";
import { Spool } from "./lib/delivery/spool";
import { type DeliveryCounts, Writer, WriterClosedError } from "./lib/delivery/writer";
import type { SinkConfigNode } from "./lib/nodered/config-node";
import { DEFAULT_CONCURRENCY, type EgressDef, batchSettings, closeTimeout, deliverySettings, spoolDirectoryOf } from "./lib/nodered/egress-settings";
import { registerEditorApi } from "./lib/nodered/editor-api";
import { FieldReader, type TypedValue } from "./lib/nodered/fields";
import { flowLabelOf, gaugesOf, metricsSettings, startMonitoring } from "./lib/nodered/metrics-api";
import { EgressMetrics } from "./lib/metrics/egress-metrics";
import { healthOf, stallDuration } from "./lib/metrics/health";
import { ThrottledStatus, formatBytes } from "./lib/nodered/status";
import type { S3Error } from "./lib/s3/errors";

type Send = (msg: NodeMessage) => void;
type Done = (error?: Error) => void;
type EgressMsg = Partial<NodeMessageInFlow> & { _msgid: string; contentType?: unknown; complete?: unknown; storageClass?: unknown; cacheControl?: unknown; s3?: WriteOutcome & { totals: DeliveryCounts } };

export = function (RED: NodeAPI): void {
  const monitoring = metricsSettings(RED);
  const monitor = startMonitoring(RED, monitoring);

  function S3EgressNode(this: Node, def: EgressDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const config = RED.nodes.getNode(def.sink) as SinkConfigNode | null;
    const problem = !config ? RED._("s3-egress.errors.no-config") : config.problem;
    if (problem || !config?.sink) {
      const text = problem ?? RED._("s3-egress.errors.no-config");
      const showProblem = () => node.status({ fill: "red", shape: "ring", text: RED._("s3-egress.status.config-error") });
      showProblem();
      node.on("input", (_msg: NodeMessage, _send: unknown, done: (error?: Error) => void) => {
        showProblem();
        done(new Error(text));
      });
      return;
    }
    const sink = config.sink;

    const concurrency = Math.max(1, Math.floor(Number(def.concurrency) || DEFAULT_CONCURRENCY));
    const input: RouteInput = def.input === "batches" ? "batches" : "messages";
    const fieldOptions = {
      input,
      batchIdAutofill: def.batchIdAutofill === "utc-date" ? "utc-date" : "none",
      messageIdAutofill: def.messageIdAutofill === "auto" ? "auto" : "none",
    } as const;
    const typedFields: Partial<Record<FieldName, TypedValue>> = {};
    for (const field of FIELD_NAMES) {
      typedFields[field] = { value: def[field] ?? field, type: def[`${field}Type`] || "msg" };
    }
    const reader = new FieldReader(RED, node, typedFields);
    const fieldSettings = { ...fieldOptions, sources: reader.sources };
    const ids = new MessageIdGenerator();
    const nextMessageId = () => ids.next();

    const delivery = deliverySettings(def);
    const spoolDirectory = delivery.spool ? spoolDirectoryOf(RED, node.id) : undefined;

    /** The spool of the Batch Completions route, once open. */
    let batchSpool: Spool | undefined;
    /** The node's spool (either route), once open. */
    let openedSpool: Spool | undefined;
    const metrics = monitor ? new EgressMetrics() : undefined;
    let lastError: string | undefined;
    let retrying: string | undefined;
    const writeStatus = (): NodeStatus & { text: string } => {
      const pending = writer.queued + writer.inFlight;
      const spooled = intake.spooled + (batchSpool?.pending ?? 0);
      const counts = { pending, spooled, reason: retrying ?? "" };
      const variant = spooled > 0 ? "-spooled" : "";
      // The write-only health signal: from the writes alone, no probe beyond s3:PutObject.
      const health = metrics ? healthOf(metrics, monitoring.stallMs) : undefined;
      if (health?.state === "failing") return { fill: "red", shape: "ring", text: RED._("s3-egress.status.error", { code: health.code }) };
      if (health?.state === "stalled") {
        return { fill: "yellow", shape: "ring", text: RED._("s3-egress.status.stalled", { duration: stallDuration(health.sinceMs), count: pending + spooled }) };
      }
      if (retrying && pending > 0) return { fill: "yellow", shape: "ring", text: RED._(`s3-egress.status.retrying${variant}`, counts) };
      if (pending > 0 || spooled > 0) return { fill: "blue", shape: "dot", text: RED._(`s3-egress.status.writing${variant}`, counts) };
      if (lastError) return { fill: "red", shape: "ring", text: RED._("s3-egress.status.error", { code: lastError }) };
      return { fill: "green", shape: "dot", text: RED._("s3-egress.status.ok", { count: writer.counts.written }) };
    };
    const status = new ThrottledStatus(node, (): NodeStatus => {
      const shown = writeStatus();
      if (!batches) return shown;
      const figures = { open: batches.openCount, buffered: formatBytes(batches.bufferedBytes) };
      return { ...shown, text: RED._("s3-egress.status.with-batches", { status: shown.text, ...figures }) };
    });
    const writer = new Writer(concurrency, delivery.retry, {
      onRetry: (error: S3Error) => {
        metrics?.retried(error);
        retrying = error.code;
        status.update();
      },
      onChange: () => {
        intake.drain();
        status.update();
      },
      onSucceeded: metrics && ((milliseconds: number) => metrics.requestSucceeded(milliseconds)),
    }, delivery.bounds);
    config.register(node, concurrency);
    const route = new MessageRoute(sink, writer, def.path ?? "", delivery.neverOverwrite);

    const succeeded = (msg: EgressMsg, outcome: WriteOutcome) => {
      if (!outcome.alreadyWritten) metrics?.written(outcome.bytes);
      lastError = undefined;
      retrying = undefined;
      status.update();
      msg.s3 = { ...outcome, totals: { ...writer.counts } };
    };
    // Msgs failed because the node closed without a spool: also logged, as Catch nodes closing at the same time miss them.
    let abandoned = 0;
    const failed = (error: Error & { code?: string }) => {
      metrics?.failed(error);
      if (error instanceof WriterClosedError) abandoned++;
      if (error.name === "S3Error") {
        lastError = error.code;
        status.update();
      }
    };
    const intake = new Intake(writer, (write) => route.put(write), delivery.queueFull, {
      onLaterWritten: (write, outcome) => {
        const msg: EgressMsg = { _msgid: write.msgid };
        succeeded(msg, outcome);
        node.send(msg);
      },
      onLaterFailed: (write, error) => {
        failed(error);
        node.error(error, { _msgid: write.msgid, s3: { bucket: sink.bucket, key: write.key } });
      },
      onUnreadable: (problem) => node.error(RED._("s3-egress.errors.spool-damaged", { problem }), { _msgid: RED.util.generateId() }),
      onSpill: () => node.warn(RED._("s3-egress.warnings.spilling", { messages: delivery.bounds.maxMessages, bytes: delivery.bounds.maxBytes, directory: spoolDirectory ?? "" })),
    }, spoolDirectory && input === "messages" ? openSpool(spoolDirectory) : undefined);

    /** Opens the spool, reporting damaged records (to the log and to Catch nodes) and what is resumed. */
    function openSpool(directory: string): Promise<Spool> {
      const opening = Spool.open(directory, (problem) =>
        node.error(RED._("s3-egress.errors.spool-damaged", { problem: `${problem.file} at byte ${problem.offset}: ${problem.problem}` }), {
          _msgid: RED.util.generateId(),
          spool: problem,
        }),
      );
      opening.then(
        (spool) => {
          openedSpool = spool;
          if (spool.pending > 0) node.warn(RED._("s3-egress.warnings.resuming", { count: spool.pending, directory }));
          status.update();
        },
        (error: Error) => node.error(RED._("s3-egress.errors.spool-unusable", { directory, reason: error.message })),
      );
      return opening;
    }

    // Batches completed without a msg to carry them (new batch id, idle timeout, close) are reported by a msg of their own.
    const batches =
      input === "batches"
        ? new BatchRoute(sink, writer, { ...batchSettings(def), objectHeaders: config.objectHeaders }, {
            completed: (outcome, trigger) => {
              const msg: EgressMsg = { _msgid: RED.util.generateId(), topic: outcome.key, completedBy: trigger };
              succeeded(msg, outcome);
              node.send(msg);
            },
            failed: (error, key, trigger) => {
              failed(error);
              node.error(error, { _msgid: RED.util.generateId(), topic: key, completedBy: trigger, s3: { bucket: sink.bucket, key } });
            },
            finishing: (key, written) => journalNow?.finishing(key, written),
          })
        : undefined;

    // Batches with the spool: every msg is recorded before it joins its batch; open batches are rebuilt from the records at start.
    let journalNow: BatchJournal | undefined;
    const journal = batches && spoolDirectory ? openJournal(batches, spoolDirectory) : undefined;
    function openJournal(route: BatchRoute, directory: string): Promise<BatchJournal> {
      return openSpool(directory).then(async (spool) => {
        batchSpool = spool;
        const opened = new BatchJournal(spool, route, def.path ?? "");
        journalNow = opened;
        await opened.replay({
          onReplayed: (completed, msgid) =>
            completed.then(
              (outcome) => {
                const msg: EgressMsg = { _msgid: msgid, topic: outcome.key, completedBy: "complete" };
                succeeded(msg, outcome);
                node.send(msg);
              },
              (error: Error) => {
                failed(error);
                node.error(error, { _msgid: msgid, completedBy: "complete" });
              },
            ),
          onUnusable: (problem) => node.error(RED._("s3-egress.errors.spool-damaged", { problem }), { _msgid: RED.util.generateId() }),
        });
        status.update();
        return opened;
      });
    }

    /** Batches: a msg that joins a batch is done once its data is held; the msg that completes it carries the batch's result or error. */
    const joinBatch = (route: BatchRoute, raw: RawFields, msg: EgressMsg, arrival: number, send: Send, done: Done): void => {
      const fields = toFields(raw, fieldSettings, { arrival, nextMessageId });
      const contentType = msg.contentType || config.contentType;
      if (journal) {
        journal
          .then((opened) => opened.accept(fields, msg.payload, contentType, msg.complete === true, arrival, String(msg._msgid)))
          .then((admission) => admitted(admission, msg, send, done))
          .catch((error: Error) => {
            failed(error);
            done(error);
          });
        return;
      }
      admitted(route.accept(fields, msg.payload, contentType, msg.complete === true, arrival), msg, send, done);
    };
    const admitted = (admission: Admission, msg: EgressMsg, send: Send, done: Done): void => {
      status.update();
      if ("held" in admission) done();
      else if ("ready" in admission) admission.ready.then(() => done());
      else {
        admission.completed.then(
          (outcome) => {
            succeeded(msg, outcome);
            send(msg);
            done();
          },
          (error: Error) => {
            failed(error);
            done(error);
          },
        );
      }
    };

    const accept = (raw: RawFields, msg: EgressMsg, arrival: number): Promise<Acceptance> => {
      const body = toBody(msg.payload, msg.contentType || config.contentType);
      // A full queue refuses at once, before key and metadata are derived: a burst's refusals cost little.
      if (intake.refuses(body.bytes.length)) return Promise.reject(writer.fullError());
      const fields = toFields(raw, fieldSettings, { arrival, nextMessageId });
      const headers = headersWithOverrides(config.objectHeaders, msg);
      return intake.accept(route.prepare(fields, body, headers, String(msg._msgid)));
    };

    node.on("input", (msg: EgressMsg, send: Send, done: Done) => {
      const arrival = Date.now();
      if (batches) {
        try {
          const raw = reader.read(msg);
          if (raw instanceof Promise) {
            raw.then((fields) => joinBatch(batches, fields, msg, arrival, send, done)).catch((error: Error) => {
              failed(error);
              done(error);
            });
          }
          else joinBatch(batches, raw, msg, arrival, send, done);
        } catch (error) {
          failed(error as Error);
          done(error as Error);
        }
        return;
      }
      let result: Promise<Acceptance>;
      try {
        const raw = reader.read(msg);
        result = raw instanceof Promise ? raw.then((fields) => accept(fields, msg, arrival)) : accept(raw, msg, arrival);
      } catch (error) {
        result = Promise.reject(error);
      }
      result.then(
        (acceptance) => {
          // Spooled: durable on disk; its write is reported when it happens (onLaterWritten/onLaterFailed).
          if (acceptance.state === "written") {
            succeeded(msg, acceptance.outcome);
            send(msg);
          }
          done();
        },
        (error: Error & { code?: string }) => {
          failed(error);
          done(error);
        },
      );
    });

    node.on("close", (_removed: boolean, done: () => void) => {
      // Open batches stay in the spool when there is one; without, they are completed (never dropped or truncated), with a warning.
      const open = batches?.openCount ?? 0;
      if (open > 0 && !journal) node.warn(RED._("s3-egress.warnings.batches-flushed-on-close", { count: open }));
      const limit = closeTimeout(RED);
      const started = Date.now();
      const letGo = journal ? journal.then(() => batches?.suspend(), () => undefined) : batches?.close();
      const flushed = letGo ? Promise.race([letGo, new Promise((resolve) => setTimeout(resolve, limit).unref())]) : Promise.resolve();
      flushed
        .then(() => intake.close(Math.max(0, limit - (Date.now() - started))))
        .then(() => batchSpool?.close())
        .then(() => {
          const kept = intake.spooled + (batchSpool?.pending ?? 0);
          if (abandoned > 0) node.warn(RED._("s3-egress.warnings.abandoned", { count: abandoned }));
          if (kept > 0) node.warn(RED._("s3-egress.warnings.kept", { count: kept, directory: spoolDirectory ?? "" }));
          status.stop();
          monitor?.remove(node.id);
          config.unregister(node);
          done();
        });
    });
    if (monitor && metrics) {
      monitor.add({
        labels: { id: node.id, name: def.name ?? "", flow: flowLabelOf(RED, node), bucket: sink.bucket },
        metrics,
        gauges: () => gaugesOf(writer, openedSpool, batches, intake.spooled),
        healthChanged: () => status.update(),
      });
    }
    status.update();
  }

  RED.nodes.registerType("s3-egress", S3EgressNode);
  registerEditorApi(RED);
};
