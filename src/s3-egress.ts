import type { Node, NodeAPI, NodeMessage, NodeStatus } from "node-red";
import { InputError } from "./lib/core/errors";
import { MessageIdGenerator } from "./lib/core/ids";
import { headersWithOverrides } from "./lib/core/object-options";
import { FIELD_NAMES, type FieldName, type RawFields, type RouteInput, toBody, toFields } from "./lib/core/record";
import { isBatchRecord } from "./lib/delivery/batch-records";
import { MessageRoute, type WriteOutcome } from "./lib/delivery/messages";
import { type Acceptance, Intake } from "./lib/delivery/intake";
import { Spool } from "./lib/delivery/spool";
import { Writer, WriterClosedError } from "./lib/delivery/writer";
import { BatchesController } from "./lib/nodered/batches-controller";
import type { SinkConfigNode } from "./lib/nodered/config-node";
import { DEFAULT_CONCURRENCY, type EgressDef, batchSettings, closeTimeout, deliverySettings, spoolDirectoryOf } from "./lib/nodered/egress-settings";
import { registerEditorApi } from "./lib/nodered/editor-api";
import { FieldReader, type TypedValue } from "./lib/nodered/fields";
import { flowLabelOf, gaugesOf, metricsSettings, startMonitoring } from "./lib/nodered/metrics-api";
import { EgressMetrics } from "./lib/metrics/egress-metrics";
import { healthOf, stallDuration } from "./lib/metrics/health";
import type { Done, EgressMsg, Send } from "./lib/nodered/route";
import { ThrottledStatus, formatBytes } from "./lib/nodered/status";
import type { S3Error } from "./lib/s3/errors";

export = function (RED: NodeAPI): void {
  const monitoring = metricsSettings(RED);
  const monitor = startMonitoring(RED, monitoring);

  function S3EgressNode(this: Node, def: EgressDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    // Errors and warnings are listed under the node's name: an unnamed node goes by its label, not its id.
    node.name ||= RED._(`s3-egress.node-label.${def.input === "batches" ? "batches" : "messages"}`);
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

    /** The Messages route's spool, once open. */
    let openedSpool: Spool | undefined;
    const metrics = monitor ? new EgressMetrics() : undefined;
    let lastError: string | undefined;
    let retrying: string | undefined;
    const writeStatus = (): NodeStatus & { text: string } => {
      const pending = writer.queued + writer.inFlight;
      const spooled = intake.spooled + (batches?.spooled ?? 0);
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
      if (lastError) return { fill: "red", shape: "ring", text: lastError };
      return { fill: "green", shape: "dot", text: RED._("s3-egress.status.ok", { count: writer.counts.written }) };
    };
    const status = new ThrottledStatus(node, (): NodeStatus => {
      const shown = writeStatus();
      if (!batches) return shown;
      const figures = { open: batches.batches.openCount, buffered: formatBytes(batches.batches.bufferedBytes) };
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
      // Shown until the next success: an S3 error by its code, bad input by what is wrong with it.
      if (error.name === "S3Error") lastError = RED._("s3-egress.status.error", { code: error.code ?? "" });
      else if (error instanceof InputError) lastError = RED._("s3-egress.status.bad-input", { problem: error.message });
      else return;
      status.update();
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

    const batches =
      input === "batches"
        ? new BatchesController({
            RED,
            node,
            sink,
            writer,
            settings: { ...batchSettings(def), objectHeaders: config.objectHeaders },
            reader,
            fieldOptions: fieldSettings,
            nextMessageId,
            contentType: config.contentType,
            spoolDirectory,
            report: { succeeded, failed, changed: () => status.update() },
          })
        : undefined;

    /** Opens the spool, reporting damaged records (to the log and to Catch nodes) and what is resumed. */
    function openSpool(directory: string): Promise<Spool> {
      const opening = Spool.open(
        directory,
        (problem) =>
          node.error(RED._("s3-egress.errors.spool-damaged", { problem: `${problem.file} at byte ${problem.offset}: ${problem.problem}` }), {
            _msgid: RED.util.generateId(),
            spool: problem,
          }),
        { owns: (write) => !isBatchRecord(write) },
      );
      opening.then(
        (spool) => {
          openedSpool = spool;
          if (spool.foreign.records > 0) {
            node.warn(RED._("s3-egress.warnings.other-route-records", { count: spool.foreign.records, directory, route: RED._("s3-egress.input.batches") }));
          }
          if (spool.pending > 0) node.warn(RED._("s3-egress.warnings.resuming", { count: spool.pending, directory }));
          status.update();
        },
        (error: Error) => node.error(RED._("s3-egress.errors.spool-unusable", { directory, reason: error.message })),
      );
      return opening;
    }

    const accept = (raw: RawFields, msg: EgressMsg, arrival: number): Promise<Acceptance> => {
      const body = toBody(msg.payload, msg.contentType || config.contentType);
      // A full queue refuses at once, before key and metadata are derived: a burst's refusals cost little.
      if (intake.refuses(body.bytes.length)) return Promise.reject(writer.fullError());
      const fields = toFields(raw, fieldSettings, { arrival, nextMessageId });
      const headers = headersWithOverrides(config.objectHeaders, msg);
      return intake.accept(route.prepare(fields, body, headers, String(msg._msgid)));
    };

    node.on("input", (msg: EgressMsg, send: Send, done: Done) => {
      if (batches) return batches.input(msg, send, done);
      const arrival = Date.now();
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
      const limit = closeTimeout(RED);
      const closed = batches ? batches.close(limit) : intake.close(limit);
      closed.then(() => {
        const kept = intake.spooled;
        abandoned += batches?.abandoned ?? 0;
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
        gauges: () => gaugesOf(writer, openedSpool ?? batches?.spool, batches?.batches, intake.spooled),
        healthChanged: () => status.update(),
      });
    }
    status.update();
  }

  RED.nodes.registerType("s3-egress", S3EgressNode);
  registerEditorApi(RED);
};
