import type { Node, NodeAPI, NodeMessage, NodeStatus } from "node-red";
import { InputError } from "./lib/core/errors";
import { formatBytes } from "./lib/core/bytes";
import { MessageIdGenerator } from "./lib/core/ids";
import { migrated } from "./lib/core/migrations";
import { choiceOf, egressChoicesProblem, parquetSchemaProblem } from "./lib/core/rules";
import { FIELD_NAMES, type FieldName, type RouteInput } from "./lib/core/record";
import { Writer } from "./lib/delivery/writer";
import { BatchesController } from "./lib/nodered/batches-controller";
import type { SinkConfigNode } from "./lib/nodered/config-node";
import { type EgressDef, batchSettings, closeTimeout, deliverySettings, spillDirectoryOf, spoolDirectoryOf } from "./lib/nodered/egress-settings";
import { registerEditorApi } from "./lib/nodered/editor-api";
import { logErrorsAsText } from "./lib/nodered/error-log";
import { FieldReader, type TypedValue } from "./lib/nodered/fields";
import { flowLabelOf, gaugesOf, metricsSettings, startMonitoring } from "./lib/nodered/metrics-api";
import { EgressMetrics } from "./lib/metrics/egress-metrics";
import { healthOf, stallDuration } from "./lib/metrics/health";
import { MessagesController } from "./lib/nodered/messages-controller";
import type { Done, EgressMsg, RouteReport, Send } from "./lib/nodered/route";
import { ThrottledStatus } from "./lib/nodered/status";
import type { S3Error } from "./lib/s3/errors";
import { EGRESS_MIGRATIONS } from "./s3-egress/migrations";

export = function (RED: NodeAPI): void {
  const monitoring = metricsSettings(RED);
  const monitor = startMonitoring(RED, monitoring);

  function S3EgressNode(this: Node, saved: EgressDef): void {
    RED.nodes.createNode(this, saved);
    // A node saved by an earlier version is read as today's (src/s3-egress/migrations.ts).
    const def = migrated(saved, EGRESS_MIGRATIONS);
    const node = this;
    // Errors and warnings are listed under the node's name: an unnamed node goes by its label, not its id.
    node.name ||= RED._(`s3-egress.node-label.${def.input === "batches" ? "batches" : "messages"}`);
    logErrorsAsText(node);
    const config = RED.nodes.getNode(def.sink) as SinkConfigNode | null;
    // A value the node does not know (a typo, or a newer version's) stops it: never read as some default.
    const settingsProblem = egressChoicesProblem(def as unknown as Record<string, unknown>, FIELD_NAMES) ?? parquetSchemaProblem(def.parquetSchema);
    if (settingsProblem) node.error(RED._("s3-egress.errors.settings", { problem: settingsProblem }));
    const problem = settingsProblem ?? (!config ? RED._("s3-egress.errors.no-config") : config.problem);
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

    const input = choiceOf("input", def.input) as RouteInput;
    const fieldOptions = {
      input,
      batchIdAutofill: choiceOf("batchIdAutofill", def.batchIdAutofill) as EgressDef["batchIdAutofill"],
      messageIdAutofill: choiceOf("messageIdAutofill", def.messageIdAutofill) as EgressDef["messageIdAutofill"],
    };
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

    const metrics = monitor ? new EgressMetrics() : undefined;
    let lastError: string | undefined;
    let retrying: string | undefined;
    /** An S3 error as the status names it: its code, or for missing credentials the config node to fill in. */
    const reasonOf = (code: string | undefined): string =>
      code === "CredentialsProviderError" ? RED._("s3-egress.status.no-credentials", { config: config.label }) : (code ?? "");
    const writeStatus = (): NodeStatus & { text: string } => {
      const pending = writer.queued + writer.inFlight;
      const spooled = route.spooled;
      const counts = { pending, spooled, reason: retrying ?? "", limit: limit.limit };
      const variant = spooled > 0 ? "-spooled" : "";
      // The write-only health signal: from the writes alone, no probe beyond s3:PutObject.
      const health = metrics ? healthOf(metrics, monitoring.stallMs) : undefined;
      if (health?.state === "failing") return { fill: "red", shape: "ring", text: RED._("s3-egress.status.error", { code: reasonOf(health.code) }) };
      if (health?.state === "stalled") {
        return { fill: "yellow", shape: "ring", text: RED._("s3-egress.status.stalled", { duration: stallDuration(health.sinceMs), count: pending + spooled }) };
      }
      if (retrying && pending > 0) return { fill: "yellow", shape: "ring", text: RED._(`s3-egress.status.retrying${variant}`, counts) };
      if (pending > 0 || spooled > 0) return { fill: "blue", shape: "dot", text: RED._(`s3-egress.status.writing${variant}`, counts) };
      if (lastError) return { fill: "red", shape: "ring", text: lastError };
      // A clock S3 found off is corrected, but worth seeing until the machine's clock is set right.
      const clockMinutes = Math.round(Math.abs(sink.clockOffsetMs) / 60_000);
      if (clockMinutes > 0) return { fill: "green", shape: "dot", text: RED._("s3-egress.status.ok-clock", { count: writer.counts.written, minutes: clockMinutes }) };
      return { fill: "green", shape: "dot", text: RED._("s3-egress.status.ok", { count: writer.counts.written }) };
    };
    const status = new ThrottledStatus(node, (): NodeStatus => {
      const shown = writeStatus();
      if (!(route instanceof BatchesController)) return shown;
      const { openCount, bufferedBytes, spilledBytes } = route.batches;
      const figures = { status: shown.text, open: openCount, buffered: formatBytes(bufferedBytes), disk: formatBytes(spilledBytes) };
      return { ...shown, text: RED._(spilledBytes > 0 ? "s3-egress.status.with-batches-on-disk" : "s3-egress.status.with-batches", figures) };
    });
    const limit = config.register(node, delivery.concurrency);
    const writer = new Writer(limit, delivery.retry, {
      onRetry: (error: S3Error) => {
        metrics?.retried(error);
        retrying = reasonOf(error.code);
        status.update();
      },
      onChange: () => {
        if (route instanceof MessagesController) route.intake.drain();
        status.update();
      },
      onSucceeded: metrics && ((milliseconds: number) => metrics.requestSucceeded(milliseconds)),
    }, delivery.bounds);

    const report: RouteReport = {
      succeeded: (msg, outcome) => {
        if (!outcome.alreadyWritten) metrics?.written(outcome.bytes);
        lastError = undefined;
        retrying = undefined;
        status.update();
        // Object.assign, not spread syntax: V8 copies this object ten times faster so, once per msg written.
        const { written, retried, failed } = writer.counts;
        msg.s3 = Object.assign({}, outcome, { totals: { written, retried, failed }, concurrency: limit.limit });
      },
      failed: (error: Error & { code?: string }) => {
        metrics?.failed(error);
        // Shown until the next success: an S3 error by its code, bad input by what is wrong with it.
        if (error.name === "S3Error") lastError = RED._("s3-egress.status.error", { code: reasonOf(error.code) });
        else if (error instanceof InputError) lastError = RED._("s3-egress.status.bad-input", { problem: error.message });
        else return;
        status.update();
      },
      changed: () => status.update(),
    };
    const common = { RED, node, sink, writer, reader, fieldOptions: fieldSettings, nextMessageId, contentType: config.contentType, spoolDirectory, report };
    const route =
      input === "batches"
        ? new BatchesController({ ...common, settings: { ...batchSettings(def), objectHeaders: config.objectHeaders, objectLock: config.objectLock, spillDirectory: spoolDirectory ? undefined : spillDirectoryOf(RED, node.id) } })
        : new MessagesController({ ...common, objectHeaders: config.objectHeaders, objectLock: config.objectLock, path: def.path ?? "", delivery });

    node.on("input", (msg: EgressMsg, send: Send, done: Done) => route.input(msg, send, done));

    node.on("close", (_removed: boolean, done: () => void) => {
      route.close(closeTimeout(RED)).then(() => {
        const kept = route instanceof MessagesController ? route.spooled : 0;
        if (route.abandoned > 0) node.warn(RED._("s3-egress.warnings.abandoned", { count: route.abandoned }));
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
        gauges: () => gaugesOf(writer, route.spool, route instanceof BatchesController ? route.batches : undefined, route instanceof MessagesController ? route.spooled : 0),
        healthChanged: () => status.update(),
      });
    }
    status.update();
  }

  RED.nodes.registerType("s3-egress", S3EgressNode);
  registerEditorApi(RED);
};
