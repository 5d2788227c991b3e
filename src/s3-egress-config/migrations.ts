// The s3-egress-config node's saved properties, change by change (src/lib/core/migrations.ts).
import { type Migration, added, defaultsOf } from "../lib/core/migrations";

/** What a new configuration has. */
export const CONFIG_DEFAULTS = {
  name: "",
  bucket: "",
  region: "eu-central-1",
  endpoint: "",
  forcePathStyle: false,
  storageClass: "",
  serverSideEncryption: "",
  kmsKeyId: "",
  cacheControl: "",
  contentType: "",
  checksum: "auto",
  objectLockMode: "",
  objectLockRetention: "",
  objectLockLegalHold: false,
} as const;

export const CONFIG_MIGRATIONS: readonly Migration[] = [
  { change: "object options: storage class, server-side encryption, Cache-Control, Content-Type", ...added(defaultsOf(CONFIG_DEFAULTS, "storageClass", "serverSideEncryption", "kmsKeyId", "cacheControl", "contentType")) },
  { change: "checksums and Object Lock", ...added(defaultsOf(CONFIG_DEFAULTS, "checksum", "objectLockMode", "objectLockRetention", "objectLockLegalHold")) },
];
