import { readFileSync } from "node:fs";
import path from "node:path";
import type { Node, NodeAPI, NodeMessage } from "node-red";
import type { Request, Response } from "express";
import { InputError } from "../core/errors";
import { MessageIdGenerator } from "../core/ids";
import { objectAddress } from "../core/keys";
import { FIELD_NAMES, type FieldName, type RawFields, type RecordFields, type RouteInput, toBody, toFields } from "../core/record";
import { batchObject, type BatchObject, type SampleMsg } from "../delivery/batch-preview";
import { batchSettings } from "./egress-settings";
import { sourceLabel, type TypedValue } from "./fields";

/**
 * The admin HTTP routes the editor dialogs use:
 * - GET  /s3-egress/rules.js: the validation rules (core/rules.js) as a browser script defining
 *   `window.S3EgressRules`, so the dialogs check exactly what the runtime checks. Public like
 *   any editor resource: the editor loads it with a plain <script src> (no auth header), and it
 *   holds code only.
 * - GET  /s3-egress/saved-properties.js: core/saved-properties.js the same way, as
 *   `window.S3EgressSavedProperties` (absent properties of saved flows read as their defaults).
 * - POST /s3-egress/preview: the key, metadata and Content-Type a node's settings would give a
 *   sample msg, computed by the same core functions the runtime uses.
 */
export function registerEditorApi(RED: NodeAPI): void {
  for (const [module, global] of [
    ["rules", "S3EgressRules"],
    ["saved-properties", "S3EgressSavedProperties"],
  ]) {
    const script = browserScript(readFileSync(path.join(__dirname, "..", "core", `${module}.js`), "utf8"), global);
    RED.httpAdmin.get(`/s3-egress/${module}.js`, (_req: Request, res: Response) => {
      res.type("application/javascript").send(script);
    });
  }
  RED.httpAdmin.post("/s3-egress/preview", RED.auth.needsPermission("s3-egress.read"), (req: Request, res: Response) => {
    previewOf(RED, req.body as PreviewRequest).then((preview) => res.json(preview));
  });
}

/** The CommonJS module wrapped so that a browser runs it and finds its exports on `window[global]`. */
function browserScript(commonJs: string, global: string): string {
  return `(function () {\nvar module = { exports: {} };\nvar exports = module.exports;\n${commonJs}\nwindow.${global} = module.exports;\n})();\n`;
}

/**
 * What the dialog sends: its current (unsaved) settings and a sample msg, or for Batch
 * Completions an array of msgs that form one batch (its key fields are the first msg's).
 */
export interface PreviewRequest {
  node?: Record<string, unknown>;
  msg?: Record<string, unknown> | Record<string, unknown>[];
}

export type Preview =
  | ({ key: string; metadata: Record<string, string>; fromContext: FieldName[] } & BatchObject)
  | { field: string; error: string };

/**
 * Flow and global context belong to a deployed flow, which a preview does not have: their
 * fields show as the context key in angle brackets and are listed in `fromContext`.
 */
export async function previewOf(RED: NodeAPI, request: PreviewRequest): Promise<Preview> {
  const settings = request.node ?? {};
  const samples = Array.isArray(request.msg) ? request.msg : [request.msg ?? {}];
  const msg = samples[0] ?? {};
  const input: RouteInput = settings.input === "batches" ? "batches" : "messages";
  const raw: RawFields = {};
  const sources: Partial<Record<FieldName, string>> = {};
  const fromContext: FieldName[] = [];
  try {
    for (const field of FIELD_NAMES) {
      const typed: TypedValue = { value: String(settings[field] ?? field), type: String(settings[`${field}Type`] ?? "msg") };
      if (typed.value === "") continue;
      sources[field] = sourceLabel(typed);
      if (typed.type === "flow" || typed.type === "global") {
        fromContext.push(field);
        raw[field] = `<${sources[field]}>`;
      } else {
        raw[field] = await evaluate(RED, typed, msg);
      }
    }
    const fields = toFields(
      raw,
      {
        input,
        batchIdAutofill: settings.batchIdAutofill === "utc-date" ? "utc-date" : "none",
        messageIdAutofill: settings.messageIdAutofill === "auto" ? "auto" : "none",
        sources,
      },
      { arrival: Date.now(), nextMessageId: () => new MessageIdGenerator().next() },
    );
    const { key, metadata } = objectAddress(input, String(settings.path ?? ""), fields);
    return { key, metadata, ...(await storedObject(input, settings, fields, samples)), fromContext };
  } catch (error) {
    if (error instanceof InputError) return { field: error.field, error: error.message };
    return { field: "", error: (error as Error).message };
  }
}

/** The object the runtime would store: a msg's body, or for Batch Completions the batch of all samples, made by the batch route itself. */
async function storedObject(input: RouteInput, settings: Record<string, unknown>, fields: RecordFields, samples: SampleMsg[]): Promise<BatchObject> {
  if (input === "batches") {
    const { concatenation, compression, path } = settings;
    return batchObject(batchSettings({ path: String(path ?? ""), concatenation: String(concatenation ?? ""), compression: String(compression ?? "") }), fields, samples);
  }
  const body = toBody(samples[0]?.payload, samples[0]?.contentType);
  return { contentType: body.contentType, bytes: body.bytes.length };
}

/** Node-RED evaluates a property without a node too: env then reads the process environment, jsonata has no context. */
const NO_NODE = null as unknown as Node;

function evaluate(RED: NodeAPI, { value, type }: TypedValue, msg: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve, reject) =>
    RED.util.evaluateNodeProperty(value, type, NO_NODE, msg as NodeMessage, (error, result) => (error ? reject(error) : resolve(result))),
  );
}
