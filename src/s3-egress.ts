import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow, NodeStatus } from "node-red";
import { MessageIdGenerator } from "./lib/core/ids";
import { headersWithOverrides } from "./lib/core/object-options";
import { FIELD_NAMES, type FieldName, type RawFields, type RouteInput, toBody, toFields } from "./lib/core/record";
import { MessageRoute, type WriteOutcome } from "./lib/delivery/messages";
import { Writer } from "./lib/delivery/writer";
import type { SinkConfigNode } from "./lib/nodered/config-node";
import { registerEditorApi } from "./lib/nodered/editor-api";
import { FieldReader, type TypedValue } from "./lib/nodered/fields";
import { ThrottledStatus } from "./lib/nodered/status";
import type { S3Error } from "./lib/s3/errors";

type EgressDef = NodeDef & {
  sink: string;
  input: RouteInput;
  path: string;
  batchIdAutofill: "none" | "utc-date";
  messageIdAutofill: "none" | "auto";
  concurrency: number | string;
} & { [field in FieldName]: string } & { [field in `${FieldName}Type`]: string };

type EgressMsg = NodeMessageInFlow & { contentType?: unknown; storageClass?: unknown; cacheControl?: unknown; s3?: WriteOutcome };

/** How long a closing node waits for writes in flight, inside Node-RED's 15 s close timeout. */
const CLOSE_WAIT_MS = 10_000;

export = function (RED: NodeAPI): void {
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

    const concurrency = Math.max(1, Math.floor(Number(def.concurrency) || 16));
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
    const ids = new MessageIdGenerator();

    let written = 0;
    let lastError: string | undefined;
    let retrying: string | undefined;
    const status = new ThrottledStatus(node, (): NodeStatus => {
      const pending = writer.queued + writer.inFlight;
      if (retrying && pending > 0) return { fill: "yellow", shape: "ring", text: RED._("s3-egress.status.retrying", { reason: retrying, pending }) };
      if (pending > 0) return { fill: "blue", shape: "dot", text: RED._("s3-egress.status.writing", { pending }) };
      if (lastError) return { fill: "red", shape: "ring", text: RED._("s3-egress.status.error", { code: lastError }) };
      return { fill: "green", shape: "dot", text: RED._("s3-egress.status.ok", { count: written }) };
    });
    const writer = new Writer(concurrency, undefined, {
      onRetry: (error: S3Error) => {
        retrying = error.code;
        status.update();
      },
      onChange: () => status.update(),
    });
    config.register(node, concurrency);
    const route = new MessageRoute(sink, writer, def.path ?? "");

    const accept = (raw: RawFields, msg: EgressMsg, arrival: number): Promise<WriteOutcome> => {
      const fields = toFields(raw, { ...fieldOptions, sources: reader.sources }, { arrival, nextMessageId: () => ids.next() });
      const headers = headersWithOverrides(config.objectHeaders, msg);
      return route.write(fields, toBody(msg.payload, msg.contentType || config.contentType), headers);
    };

    node.on("input", (msg: EgressMsg, send: (msg: NodeMessage) => void, done: (error?: Error) => void) => {
      const arrival = Date.now();
      let result: Promise<WriteOutcome>;
      try {
        const raw = reader.read(msg);
        result = raw instanceof Promise ? raw.then((fields) => accept(fields, msg, arrival)) : accept(raw, msg, arrival);
      } catch (error) {
        result = Promise.reject(error);
      }
      result.then(
        (outcome) => {
          written++;
          lastError = undefined;
          retrying = undefined;
          status.update();
          msg.s3 = outcome;
          send(msg);
          done();
        },
        (error: Error & { code?: string }) => {
          if (error.name === "S3Error") {
            lastError = error.code;
            status.update();
          }
          done(error);
        },
      );
    });

    node.on("close", (_removed: boolean, done: () => void) => {
      const timeout = new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref());
      Promise.race([writer.idle(), timeout]).then(() => {
        writer.close();
        status.stop();
        config.unregister(node);
        done();
      });
    });
    status.update();
  }

  RED.nodes.registerType("s3-egress", S3EgressNode);
  registerEditorApi(RED);
};
