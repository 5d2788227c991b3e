// The s3-egress node in the editor: its definition, the dialog (TypedInputs, what shows for which
// route), validation by the runtime's own rules, and the key / batch preview.
import {
  EGRESS_CHOICES,
  FIELD_TYPES,
  MIN_BATCH_MEMORY_MB,
  canonicalGuid,
  choiceProblem,
  concurrencyProblem,
  parquetSchemaProblem,
  pathProblem,
  segmentProblem,
} from "../lib/core/rules";
import { absentMeansDefault } from "../lib/core/saved-properties";
import { catalogOf, showUpgraded } from "../lib/editor/dialog";
import { EGRESS_DEFAULTS, EGRESS_MIGRATIONS } from "./migrations";
import type { EditorNode, NodeDefinition, PropertyDefinitions, TypedInputType, Validator } from "../lib/editor/red";

// Key fields in key order; each is a TypedInput stored as <field> / <field>Type.
const FIELDS = ["streamGroup", "stream", "deviceId", "batchId", "batchSliceId", "messageId", "workspaceId"] as const;
type Field = (typeof FIELDS)[number];

// Enumerated properties: a value this version does not know (a typo, a newer version's) is refused, not read as a default.
const ENUMERATED = ["input", "batchIdAutofill", "messageIdAutofill", "spool", "queueFull", "neverOverwrite", "concatenation", "parquetCodec", "compression", "openBatchesFull"];

/** What the preview route answers (src/lib/nodered/editor-api.ts). */
type Preview =
  | { key: string; metadata: Record<string, string>; contentType: string; contentEncoding?: string; bytes: number; fromContext: string[]; error?: undefined }
  | { error: string };

const t = catalogOf("s3-egress");

// The sample msg of the preview, kept while the editor is open (it is not part of the node).
let sampleMsg: unknown = {
  streamGroup: "factory",
  stream: "telemetry",
  deviceId: "robot-125",
  workspaceId: "69f09b3f-ec0d-4b9e-a5ec-87150b935296",
  payload: { temperature: 21.5 },
};

/** The live value of a dialog input while the dialog is open, else the saved property. */
function current(node: EditorNode, property: string): unknown {
  const input = $(`#node-input-${property}`);
  return input.length ? input.val() : node[property];
}

/** True when the field must have a source: required by the key and not filled in by an autofill. */
function isRequired(node: EditorNode, field: Field): boolean {
  if (field === "batchSliceId" || field === "workspaceId") return false;
  if (field === "batchId") return current(node, "batchIdAutofill") !== "utc-date";
  if (field === "messageId") return current(node, "input") !== "batches" && current(node, "messageIdAutofill") !== "auto";
  return true;
}

/** Why a literal (string) value cannot be the field, or undefined. */
function literalProblem(field: Field, value: string): string | undefined {
  const problem = field === "workspaceId" ? (canonicalGuid(value) ? undefined : t("errors.not-a-guid")) : segmentProblem(value);
  return problem && t("errors.invalid", { field: t(`label.${field}`), problem });
}

/** A validator (it may return the reason as text) for one key field. */
function fieldValidator(field: Field): Validator {
  return function (value) {
    if (value === "" || value === undefined) {
      if (!isRequired(this, field)) return true;
      return t(field === "batchId" || field === "messageId" ? "errors.required-or-autofill" : "errors.required", { field: t(`label.${field}`) });
    }
    return (current(this, `${field}Type`) === "str" && literalProblem(field, String(value))) || true;
  };
}

/** A validator of an enumerated property: the reason, naming the property and its value, when the value is none of `choices`. */
function choiceValidator(property: string, choices: readonly string[]): Validator {
  return (value) => choiceProblem(property, value, choices) ?? true;
}

/** A check of a number of at least `minimum`; blank reads as the default. */
function numberAtLeast(minimum: number): (value: unknown) => boolean {
  return (value) => value === "" || (isFinite(Number(value)) && Number(value) >= minimum);
}

/** Blank or a number, as Node-RED's own check has it (looked up when called: the build reads the definition without an editor). */
const blankOrNumber: Validator = function (value, options) {
  return RED.validators.number(true).call(this, value, options);
};

/** A select showing a saved value it has no option for: the value is shown (and marked by its validator) instead of a blank. */
function showUnknownChoices(node: EditorNode): void {
  for (const property of Object.keys(EGRESS_CHOICES)) {
    const select = $(`select#node-input-${property}`);
    const value = node[property];
    if (!select.length || value === undefined || value === null || value === "") continue;
    const known = select.find("option").toArray().some((option) => (option as HTMLOptionElement).value === String(value));
    if (known) continue;
    $("<option>").val(String(value)).text(t("errors.unknown-choice", { value: String(value) })).appendTo(select);
    select.val(String(value));
  }
}

/**
 * The field's TypedInput types. Its "string" type carries the literal check, so the TypedInput marks
 * the field while typing (a TypedInput re-validates itself on change and would clear other marks).
 */
function fieldTypes(field: Field): TypedInputType[] {
  return FIELD_TYPES.map((type) =>
    type !== "str"
      ? type
      : { value: "str", label: "string", icon: "red/images/typedInput/az.svg", validate: (value: string) => (value !== "" && literalProblem(field, value)) || true },
  );
}

const defaults: PropertyDefinitions = {
  name: { value: EGRESS_DEFAULTS.name },
  sink: { value: EGRESS_DEFAULTS.sink, type: "s3-egress-config", required: true },
  input: { value: EGRESS_DEFAULTS.input },
  path: {
    value: EGRESS_DEFAULTS.path,
    validate: (value) => {
      const problem = pathProblem(String(value ?? ""));
      return problem ? t("errors.invalid", { field: t("label.path"), problem }) : true;
    },
  },
  batchIdAutofill: { value: EGRESS_DEFAULTS.batchIdAutofill },
  messageIdAutofill: { value: EGRESS_DEFAULTS.messageIdAutofill },
  // "auto" (the adaptive limit shared through the config node) or a fixed number; saved numbers stay fixed.
  concurrency: { value: EGRESS_DEFAULTS.concurrency, validate: (value) => concurrencyProblem(value) ?? true },
  // Delivery: spool, queue bounds and the policy when full, retries, never-overwrite.
  spool: { value: EGRESS_DEFAULTS.spool },
  queueFull: { value: EGRESS_DEFAULTS.queueFull },
  maxQueue: { value: EGRESS_DEFAULTS.maxQueue, validate: blankOrNumber },
  maxQueueMB: { value: EGRESS_DEFAULTS.maxQueueMB, validate: blankOrNumber },
  // Seconds of retrying transient failures: "" = 10 min (with the spool: until written), 0 or "never" = until written.
  giveUpAfter: { value: EGRESS_DEFAULTS.giveUpAfter, validate: (value) => value === "never" || numberAtLeast(0)(value) },
  maxRetryDelay: { value: EGRESS_DEFAULTS.maxRetryDelay, validate: blankOrNumber },
  neverOverwrite: { value: EGRESS_DEFAULTS.neverOverwrite },
  // Batch Completions: concatenation, idle timeout, compression.
  concatenation: { value: EGRESS_DEFAULTS.concatenation },
  idleTimeout: { value: EGRESS_DEFAULTS.idleTimeout, validate: numberAtLeast(0) },
  compression: { value: EGRESS_DEFAULTS.compression },
  parquetCodec: { value: EGRESS_DEFAULTS.parquetCodec },
  // A JSON object of field name -> type ("double", "string?" when optional); empty: inferred per batch.
  parquetSchema: { value: EGRESS_DEFAULTS.parquetSchema, validate: (value) => parquetSchemaProblem(value) ?? true },
  maxOpenBatches: { value: EGRESS_DEFAULTS.maxOpenBatches, validate: blankOrNumber },
  // MiB all open batches may hold in memory; beyond it idle batches' bytes move to disk.
  maxBatchMemoryMB: { value: EGRESS_DEFAULTS.maxBatchMemoryMB, validate: numberAtLeast(MIN_BATCH_MEMORY_MB) },
  openBatchesFull: { value: EGRESS_DEFAULTS.openBatchesFull },
};
for (const field of FIELDS) {
  defaults[field] = { value: field, validate: fieldValidator(field) };
  defaults[`${field}Type`] = { value: "msg", validate: choiceValidator(`${field}Type`, FIELD_TYPES) };
}
for (const property of ENUMERATED) defaults[property].validate = choiceValidator(property, EGRESS_CHOICES[property]);
// A flow saved before a property existed lacks it: it validates as its default (the runtime reads it so too).
absentMeansDefault(defaults);

/** The dialog's current settings, as the preview route reads them. */
function dialogSettings(): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const property of ["input", "path", "batchIdAutofill", "messageIdAutofill", "concatenation", "compression", "parquetCodec", "parquetSchema"]) {
    settings[property] = $(`#node-input-${property}`).val();
  }
  for (const field of FIELDS) {
    settings[field] = $(`#node-input-${field}`).typedInput("value");
    settings[`${field}Type`] = $(`#node-input-${field}`).typedInput("type");
  }
  return settings;
}

function renderPreview(node: EditorNode, result: Preview): void {
  const out = $("#s3-egress-preview-result").empty();
  if (result.error !== undefined) {
    $('<div class="s3-egress-preview-error">').text(result.error).appendTo(out);
    return;
  }
  const table = $("<table>").appendTo(out);
  const row = (name: string, value: string): void => {
    $("<tr>").append($("<td>").text(name), $("<td>").text(value)).appendTo(table);
  };
  row(node._("s3-egress.preview.key"), result.key);
  for (const [name, value] of Object.entries(result.metadata)) row(`x-amz-meta-${name}`, value);
  row("Content-Type", result.contentType);
  if (result.contentEncoding) row("Content-Encoding", result.contentEncoding);
  row(node._("s3-egress.preview.bytes"), String(result.bytes));
  if (result.fromContext.length) {
    $('<div class="form-tips" style="margin-top:6px">').text(node._("s3-egress.preview.from-context", { fields: result.fromContext.join(", ") })).appendTo(out);
  }
}

function refreshPreview(node: EditorNode): void {
  let sample: unknown;
  try {
    sample = JSON.parse(String($("#s3-egress-preview-sample").val()));
  } catch (error) {
    renderPreview(node, { error: node._("s3-egress.preview.bad-sample", { reason: (error as Error).message }) });
    return;
  }
  sampleMsg = sample;
  $.ajax({
    url: "s3-egress/preview",
    type: "POST",
    contentType: "application/json",
    data: JSON.stringify({ node: dialogSettings(), msg: sample }),
    success: (result: Preview) => renderPreview(node, result),
    error: (xhr) => renderPreview(node, { error: node._("s3-egress.preview.unavailable", { status: xhr.status }) }),
  });
}

/** The id of the workspace's bucket configuration when there is exactly one, else undefined. */
function onlySink(): string | undefined {
  const sinks: string[] = [];
  RED.nodes.eachConfig((config) => {
    if (config.type === "s3-egress-config") sinks.push(config.id);
  });
  return sinks.length === 1 ? sinks[0] : undefined;
}

/**
 * The node's definition. The build registers it with an inline `RED.nodes.registerType` call in the
 * node's HTML that names its static parts (category, defaults, credentials) literally, as Node-RED's
 * flow library scorecard reads them there.
 */
export const definition: NodeDefinition = {
  category: "storage",
  color: "#E7A54A",
  defaults,
  inputs: 1,
  outputs: 1,
  icon: "s3-egress.svg",
  align: "right",
  paletteLabel: "s3 egress",
  label() {
    return this.name || this._(`s3-egress.node-label.${this.input === "batches" ? "batches" : "messages"}`);
  },
  labelStyle() {
    return this.name ? "node_label_italic" : "";
  },
  inputLabels() {
    return this._(`s3-egress.port.input-${this.input === "batches" ? "batches" : "messages"}`);
  },
  outputLabels() {
    return this._("s3-egress.port.output");
  },
  // A node dropped into a workspace with one bucket configuration uses it.
  onadd() {
    this.sink = this.sink || onlySink() || "";
  },
  oneditprepare() {
    const node = this;
    const sinkSelect = $("#node-input-sink");
    const sink = onlySink();
    if ((!sinkSelect.val() || sinkSelect.val() === "_ADD_") && sink) sinkSelect.val(sink).trigger("change");
    showUpgraded(node, EGRESS_MIGRATIONS, defaults, "node-input-");
    showUnknownChoices(node);
    for (const field of FIELDS) {
      $(`#node-input-${field}`).typedInput({ types: fieldTypes(field), typeField: `#node-input-${field}Type` });
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const schedulePreview = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => refreshPreview(node), 300);
    };
    // Show only what applies to the chosen route input; re-check the fields whose rules depend on it.
    $("#node-input-input")
      .on("change", function () {
        const batches = $(this).val() === "batches";
        $(".s3-egress-messages-only").toggle(!batches);
        $(".s3-egress-batches-only").toggle(batches);
        $("#node-input-concatenation").trigger("change");
        $("#node-input-messageId").trigger("change");
        $("#s3-egress-key-layout").text(node._(`s3-egress.layout.${batches ? "batches" : "messages"}`));
      })
      .trigger("change");
    // Parquet has a codec of its own; gzip (Content-Encoding) is not applied to it.
    $("#node-input-concatenation")
      .on("change", function () {
        const parquet = $(this).val() === "parquet";
        const batches = $("#node-input-input").val() === "batches";
        $(".s3-egress-parquet-only").toggle(parquet && batches);
        $("#node-input-compression").closest(".form-row").toggle(!parquet && batches);
      })
      .trigger("change");
    $("#node-input-batchIdAutofill").on("change", () => $("#node-input-batchId").trigger("change"));
    $("#node-input-messageIdAutofill").on("change", () => $("#node-input-messageId").trigger("change"));
    // Delivery: spilling needs the spool.
    $("#node-input-spool")
      .on("change", function () {
        const spool = (this as HTMLInputElement).checked;
        $("#node-input-queueFull option[value='spool']").prop("disabled", !spool);
        if (!spool) $("#node-input-queueFull").val("reject");
      })
      .trigger("change");

    $("#s3-egress-preview-sample").val(JSON.stringify(sampleMsg, null, 2));
    $("#dialog-form").on("change keyup input", "input, select, textarea", schedulePreview);
    refreshPreview(node);
  },
};
