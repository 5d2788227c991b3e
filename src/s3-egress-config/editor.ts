// The s3-egress-config node in the editor: bucket, region, endpoint, credentials, object settings,
// checksums and Object Lock, validated by the runtime's own rules.
import {
  bucketProblem,
  cacheControlProblem,
  contentTypeProblem,
  endpointPath,
  endpointProblem,
  integritySettingsProblem,
  kmsKeyIdProblem,
  regionProblem,
} from "../lib/core/rules";
import { absentMeansDefault } from "../lib/core/saved-properties";
import { catalogOf, showUpgraded } from "../lib/editor/dialog";
import { CONFIG_DEFAULTS, CONFIG_MIGRATIONS } from "./migrations";
import type { EditorNode, NodeDefinition, PropertyDefinitions, Validator } from "../lib/editor/red";

const t = catalogOf("s3-egress-config");

// Region suggestions; any name the store accepts (e.g. "auto" for R2) can still be typed.
const REGIONS = [
  "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1", "eu-central-1", "eu-central-2",
  "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "eu-south-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
  "ap-southeast-1", "ap-southeast-2", "me-central-1", "af-south-1", "auto",
];

const INTEGRITY_FIELDS = ["checksum", "objectLockMode", "objectLockRetention", "objectLockLegalHold"] as const;
type IntegrityField = (typeof INTEGRITY_FIELDS)[number];
type IntegritySettings = Partial<Record<IntegrityField, unknown>>;

/** A validator (it may return the reason as text) from one rule of the runtime. */
function ruleValidator(rule: (value: string) => string | undefined, field: string): Validator {
  return (value) => {
    const problem = rule(String(value ?? "").trim());
    return problem ? t("errors.field", { field: t(`label.${field}`), problem }) : true;
  };
}

/** The checksum and Object Lock settings together (a lock needs a checksum), as the runtime checks them at start. */
function integrityProblem(settings: IntegritySettings): string | undefined {
  return integritySettingsProblem({
    checksum: String(settings.checksum || "auto").trim(),
    objectLockMode: String(settings.objectLockMode || "").trim(),
    objectLockRetention: String(settings.objectLockRetention || "").trim(),
    objectLockLegalHold: settings.objectLockLegalHold === true,
  });
}

/** A validator of one of the checksum and Object Lock settings, judged with the node's others. */
function lockValidator(field: IntegrityField): Validator {
  return function (value) {
    const settings: IntegritySettings = {};
    for (const other of INTEGRITY_FIELDS) settings[other] = this[other];
    settings[field] = value;
    const problem = integrityProblem(settings);
    return problem && problem.includes(field) ? problem : true;
  };
}

/** The checksum and Object Lock settings as the dialog shows them. */
function dialogIntegrity(): IntegritySettings {
  return {
    checksum: $("#node-config-input-checksum").val(),
    objectLockMode: $("#node-config-input-objectLockMode").val(),
    // Hidden without a mode, and cleared on save.
    objectLockRetention: $("#node-config-input-objectLockMode").val() ? $("#node-config-input-objectLockRetention").val() : "",
    objectLockLegalHold: $("#node-config-input-objectLockLegalHold").is(":checked"),
  };
}

// A flow saved before a property existed lacks it: it validates as its default (the runtime reads it so too).
const defaults: PropertyDefinitions = absentMeansDefault({
  name: { value: CONFIG_DEFAULTS.name },
  bucket: { value: CONFIG_DEFAULTS.bucket, required: true, validate: ruleValidator(bucketProblem, "bucket") },
  region: { value: CONFIG_DEFAULTS.region, required: true, validate: ruleValidator(regionProblem, "region") },
  endpoint: { value: CONFIG_DEFAULTS.endpoint, validate: ruleValidator(endpointProblem, "endpoint") },
  forcePathStyle: { value: CONFIG_DEFAULTS.forcePathStyle },
  storageClass: { value: CONFIG_DEFAULTS.storageClass },
  serverSideEncryption: { value: CONFIG_DEFAULTS.serverSideEncryption },
  kmsKeyId: { value: CONFIG_DEFAULTS.kmsKeyId, validate: ruleValidator(kmsKeyIdProblem, "kmsKeyId") },
  cacheControl: { value: CONFIG_DEFAULTS.cacheControl, validate: ruleValidator(cacheControlProblem, "cacheControl") },
  contentType: { value: CONFIG_DEFAULTS.contentType, validate: ruleValidator(contentTypeProblem, "contentType") },
  checksum: { value: CONFIG_DEFAULTS.checksum, validate: lockValidator("checksum") },
  objectLockMode: { value: CONFIG_DEFAULTS.objectLockMode, validate: lockValidator("objectLockMode") },
  objectLockRetention: { value: CONFIG_DEFAULTS.objectLockRetention, validate: lockValidator("objectLockRetention") },
  objectLockLegalHold: { value: CONFIG_DEFAULTS.objectLockLegalHold },
});

/** "bucket (region)" or "bucket (endpoint host)". */
function label(this: EditorNode): string {
  if (this.name) return this.name;
  if (!this.bucket) return "s3-egress-config";
  let where = String(this.region);
  if (this.endpoint) {
    try {
      where = new URL(String(this.endpoint)).host;
    } catch {
      where = String(this.endpoint);
    }
  }
  return `${String(this.bucket)} (${where})`;
}

/**
 * The node's definition. The build registers it with an inline `RED.nodes.registerType` call in the
 * node's HTML that names its static parts (category, defaults, credentials) literally, as Node-RED's
 * flow library scorecard reads them there.
 */
export const definition: NodeDefinition = {
  category: "config",
  defaults,
  credentials: {
    accessKeyId: { type: "text" },
    secretAccessKey: { type: "password" },
    sessionToken: { type: "password" },
  },
  label,
  oneditprepare() {
    showUpgraded(this, CONFIG_MIGRATIONS, defaults, "node-config-input-");
    const regions = $("#s3-egress-config-regions");
    for (const region of REGIONS) $("<option>").attr("value", region).appendTo(regions);
    // A configuration without a usable bucket, or with Object Lock but no checksum, cannot be added or
    // updated: every node using it would fail.
    const refuseUnusable = (): void => {
      const lockProblem = integrityProblem(dialogIntegrity());
      $("#s3-egress-config-lock-problem").text(lockProblem ?? "").toggle(Boolean(lockProblem));
      const refused = Boolean(bucketProblem(String($("#node-config-input-bucket").val() ?? "").trim())) || Boolean(lockProblem);
      $("#node-config-dialog-ok").prop("disabled", refused).toggleClass("disabled", refused);
    };
    $("#node-config-input-bucket, #node-config-input-checksum, #node-config-input-objectLockMode, #node-config-input-objectLockRetention, #node-config-input-objectLockLegalHold").on(
      "change keyup input",
      refuseUnusable,
    );
    // The retention period belongs to a retention mode.
    $("#node-config-input-objectLockMode")
      .on("change", function () {
        $("#s3-egress-config-retention-row").toggle(Boolean($(this).val()));
      })
      .trigger("change");
    refuseUnusable();
    // An endpoint with a path: say where requests go (the path is no key prefix).
    $("#node-config-input-endpoint")
      .on("change keyup input", function () {
        const path = endpointPath(String($(this).val() ?? "").trim());
        $("#s3-egress-config-endpoint-path").text(path ? t("tip.endpoint-path", { path }) : "").toggle(Boolean(path));
      })
      .trigger("change");
    // The KMS key id applies to SSE-KMS only.
    $("#node-config-input-serverSideEncryption")
      .on("change", function () {
        $("#s3-egress-config-kms-row").toggle($(this).val() === "aws:kms");
      })
      .trigger("change");
  },
  oneditsave() {
    // A KMS key id left behind by another encryption would make the runtime refuse the configuration.
    if ($("#node-config-input-serverSideEncryption").val() !== "aws:kms") $("#node-config-input-kmsKeyId").val("");
    // So is a retention period without a retention mode.
    if (!$("#node-config-input-objectLockMode").val()) $("#node-config-input-objectLockRetention").val("");
  },
};
