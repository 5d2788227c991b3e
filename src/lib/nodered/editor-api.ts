import type { Node, NodeAPI, NodeMessage } from "node-red";
import type { Request, Response } from "express";
import { InputError } from "../core/errors";
import { MessageIdGenerator } from "../core/ids";
import { objectAddress } from "../core/keys";
import { choiceOf } from "../core/rules";
import { FIELD_NAMES, type FieldName, type RawFields, type RecordFields, type RouteInput, toBody, toFields } from "../core/record";
import { batchObject, type BatchObject, type SampleMsg } from "../delivery/batch-preview";
import { batchSettings } from "./egress-settings";
import { sourceLabel, type TypedValue } from "./fields";

/**
 * The admin HTTP route the s3-egress dialog uses (its validation rules are bundled into its
 * editor script, src/s3-egress/editor.ts):
 * - POST /s3-egress/preview: the key, metadata and Content-Type a node's settings would give a
 *   sample msg, computed by the same core functions the runtime uses. It evaluates the node's
 *   sources, `env` and JSONata (`$env()` too) among them, so it needs the permission to change
 *   flows (s3-egress.write), not just to read them; and it is bounded in size and time, as it runs
 *   inside the runtime.
 */
export function registerEditorApi(RED: NodeAPI): void {
  RED.httpAdmin.post("/s3-egress/preview", RED.auth.needsPermission("s3-egress.write"), (req: Request, res: Response) => {
    const bytes = Buffer.byteLength(JSON.stringify(req.body ?? {}));
    if (bytes > MAX_PREVIEW_BYTES) {
      res.json({ field: "msg", error: `the preview takes settings and sample msgs of at most ${MAX_PREVIEW_BYTES / 1024} KiB, not ${Math.ceil(bytes / 1024)} KiB` });
      return;
    }
    previewOf(RED, req.body as PreviewRequest).then((preview) => res.json(preview));
  });
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
  const raw: RawFields = {};
  const sources: Partial<Record<FieldName, string>> = {};
  const fromContext: FieldName[] = [];
  try {
    const input = choiceOf("input", settings.input) as RouteInput;
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
        batchIdAutofill: choiceOf("batchIdAutofill", settings.batchIdAutofill) as "none" | "utc-date",
        messageIdAutofill: choiceOf("messageIdAutofill", settings.messageIdAutofill) as "none" | "auto",
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
    const { concatenation, compression, parquetCodec, parquetSchema, path } = settings;
    const text = (value: unknown) => String(value ?? "");
    return batchObject(batchSettings({ path: text(path), concatenation: text(concatenation), compression: text(compression), parquetCodec: text(parquetCodec), parquetSchema: text(parquetSchema) }), fields, samples);
  }
  const body = toBody(samples[0]?.payload, samples[0]?.contentType);
  return { contentType: body.contentType, bytes: body.bytes.length };
}

/** What one preview may send: a dialog's settings and a few sample msgs fit many times over. */
const MAX_PREVIEW_BYTES = 256 * 1024;
/** How long the JSONata of one field may run: the runtime does nothing else meanwhile. */
const JSONATA_LIMIT_MS = 250;

const JSONATA_ENTRY_HOOKS: (string | symbol)[] = [Symbol.for("jsonata.__evaluate_entry"), "__evaluate_entry"];

/** Node-RED evaluates a property without a node too: env then reads the process environment, jsonata has no context. */
const NO_NODE = null as unknown as Node;

function evaluate(RED: NodeAPI, { value, type }: TypedValue, msg: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const settle = (error: Error | null, result: unknown) => (error ? reject(error) : resolve(result));
    if (type !== "jsonata") {
      RED.util.evaluateNodeProperty(value, type, NO_NODE, msg as NodeMessage, settle);
      return;
    }
    // JSONata calls this hook at every step of its evaluation: a loop over millions of elements stops at the limit.
    const expression = RED.util.prepareJSONataExpression(value, NO_NODE);
    const started = Date.now();
    const checkTime = () => {
      if (Date.now() - started > JSONATA_LIMIT_MS) throw new Error(`the JSONata expression ran longer than the preview's ${JSONATA_LIMIT_MS} ms: ${value}`);
    };
    // The hook's name: a symbol in the JSONata Node-RED bundles now, a string in older ones.
    for (const name of JSONATA_ENTRY_HOOKS) expression.assign(name as string, checkTime);
    RED.util.evaluateJSONataExpression(expression, msg as NodeMessage, settle);
  });
}
