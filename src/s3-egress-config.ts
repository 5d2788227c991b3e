import type { NodeAPI, NodeDef } from "node-red";
import { migrated } from "./lib/core/migrations";
import { objectHeaders, objectLockOf } from "./lib/core/object-options";
import {
  type ObjectLockSettings,
  type ObjectSettings,
  bucketProblem,
  endpointPath,
  endpointProblem,
  integritySettingsProblem,
  objectSettingsProblem,
  regionProblem,
} from "./lib/core/rules";
import type { SinkConfigCredentials, SinkConfigNode } from "./lib/nodered/config-node";
import { type ChecksumSetting, S3Sink } from "./lib/s3/client";
import { LimitRegistry } from "./lib/delivery/concurrency";
import { CONFIG_MIGRATIONS } from "./s3-egress-config/migrations";

type SinkConfigDef = NodeDef & {
  bucket: string;
  region: string;
  endpoint: string;
  forcePathStyle: boolean;
} & Partial<ObjectSettings> &
  Partial<ObjectLockSettings>;

/** How long the config node waits for its users to finish closing, inside Node-RED's 15 s close timeout. */
const USERS_CLOSE_WAIT_MS = 14_500;

export = function (RED: NodeAPI): void {
  function S3EgressConfigNode(this: SinkConfigNode, saved: SinkConfigDef): void {
    RED.nodes.createNode(this, saved);
    // A configuration saved by an earlier version is read as today's (src/s3-egress-config/migrations.ts).
    const def = migrated(saved, CONFIG_MIGRATIONS);
    const bucket = (def.bucket ?? "").trim();
    const region = (def.region ?? "").trim();
    const endpoint = (def.endpoint ?? "").trim();
    const objectSettings: ObjectSettings = {
      storageClass: (def.storageClass ?? "").trim(),
      serverSideEncryption: (def.serverSideEncryption ?? "").trim(),
      kmsKeyId: (def.kmsKeyId ?? "").trim(),
      cacheControl: (def.cacheControl ?? "").trim(),
      contentType: (def.contentType ?? "").trim(),
    };
    // A flow saved before these settings existed has none: auto, no Object Lock.
    const integrity: ObjectLockSettings = {
      checksum: (def.checksum ?? "").trim() || "auto",
      objectLockMode: (def.objectLockMode ?? "").trim(),
      objectLockRetention: (def.objectLockRetention ?? "").trim(),
      objectLockLegalHold: def.objectLockLegalHold === true,
    };
    this.bucket = bucket;
    this.label = def.name || `${bucket} (${endpointHost(endpoint) ?? region})`;
    this.objectHeaders = {};
    this.contentType = objectSettings.contentType;
    // The config node owns the concurrency limits: its "auto" users share one, and the socket pool follows them.
    const users = new LimitRegistry((sockets) => this.sink?.setMaxSockets(sockets));
    this.register = (user, concurrency) => users.register(user, concurrency);
    this.unregister = (user) => users.unregister(user);

    const problem =
      labelled("bucket", bucketProblem(bucket)) ??
      labelled("region", regionProblem(region)) ??
      labelled("endpoint", endpointProblem(endpoint)) ??
      objectSettingsProblem(objectSettings) ??
      integritySettingsProblem(integrity);
    if (problem) {
      this.problem = problem;
      this.error(RED._("s3-egress-config.errors.invalid", { problem }));
      return;
    }

    this.objectHeaders = objectHeaders(objectSettings);
    this.objectLock = objectLockOf(integrity);
    // A path in the endpoint is easily taken for a key prefix: say what it does.
    const pathPrefix = endpointPath(endpoint);
    if (pathPrefix) this.log(RED._("s3-egress-config.tip.endpoint-path", { path: pathPrefix }));

    const { accessKeyId, secretAccessKey, sessionToken } = this.credentials ?? {};
    if (!accessKeyId !== !secretAccessKey) {
      this.problem = RED._("s3-egress-config.errors.half-credentials");
      this.error(this.problem);
      return;
    }
    const sink = new S3Sink(
      {
        bucket,
        region,
        endpoint,
        forcePathStyle: def.forcePathStyle === true,
        credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, sessionToken: sessionToken || undefined } : undefined,
        owner: `config node "${this.label}" (id ${this.id})`,
        checksum: integrity.checksum as ChecksumSetting,
      },
      {
        onClockSkew: (offsetMs) => {
          const minutes = Math.round(Math.abs(offsetMs) / 60_000);
          this.warn(RED._(offsetMs > 0 ? "s3-egress-config.warnings.clock-behind" : "s3-egress-config.warnings.clock-ahead", { minutes }));
        },
        // Once per config node, until credentials are found again: not once per msg.
        onCredentialsMissing: (error) => this.error(error.message),
      },
    );
    this.sink = sink;
    // Nodes using the sink close at the same time as this one; they may still be finishing writes.
    this.on("close", (done: () => void) => {
      let giveUp: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (giveUp = setTimeout(resolve, USERS_CLOSE_WAIT_MS)));
      void Promise.race([users.emptied(), timedOut]).then(() => {
        clearTimeout(giveUp);
        sink.destroy();
        done();
      });
    });
  }

  RED.nodes.registerType<SinkConfigNode, SinkConfigDef, unknown, SinkConfigCredentials>("s3-egress-config", S3EgressConfigNode, {
    credentials: {
      accessKeyId: { type: "text" },
      secretAccessKey: { type: "password" },
      sessionToken: { type: "password" },
    },
  });
};

/** The host of an endpoint URL, as the editor labels the config node; undefined without an endpoint. */
function endpointHost(endpoint: string): string | undefined {
  if (!endpoint) return undefined;
  try {
    return new URL(endpoint).host;
  } catch {
    return endpoint;
  }
}

function labelled(field: string, problem: string | undefined): string | undefined {
  return problem && `${field} ${problem}`;
}
