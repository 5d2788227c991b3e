import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";
import S3rver from "s3rver";

/** A type, not an interface: flows take credentials as a Record<string, string>. */
export type Credentials = { accessKeyId: string; secretAccessKey: string };

/**
 * A real S3 server the tests write to instead of s3rver, named by the variables that
 * `scripts/rgw.sh start` prints (npm run test:rgw): the bucket's owner reads, a writer that may
 * only s3:PutObject and s3:AbortMultipartUpload writes, as the minimal policy of docs/configuration-and-s3-compatible-stores.md has it.
 */
interface RealS3 {
  endpoint: string;
  bucket: string;
  owner: Credentials;
  writer: Credentials;
}

function realS3FromEnvironment(env: NodeJS.ProcessEnv): RealS3 | undefined {
  const endpoint = env.S3_TEST_ENDPOINT;
  if (!endpoint) return undefined;
  const required = (name: string): string => {
    const value = env[name];
    if (!value) throw new Error(`S3_TEST_ENDPOINT is set, ${name} is not: set all that scripts/rgw.sh start prints`);
    return value;
  };
  return {
    endpoint,
    bucket: required("S3_TEST_BUCKET"),
    owner: { accessKeyId: required("S3_TEST_OWNER_ACCESS_KEY_ID"), secretAccessKey: required("S3_TEST_OWNER_SECRET_ACCESS_KEY") },
    writer: { accessKeyId: required("S3_TEST_WRITER_ACCESS_KEY_ID"), secretAccessKey: required("S3_TEST_WRITER_SECRET_ACCESS_KEY") },
  };
}

const REAL_S3 = realS3FromEnvironment(process.env);

/** The name of the server the tests write to, for test titles. */
export const S3_UNDER_TEST = REAL_S3 ? `a real S3 (${REAL_S3.endpoint})` : "s3rver";
export const TEST_BUCKET = REAL_S3?.bucket ?? "test-bucket";
/** The keys the node writes with: s3rver's, or the writer's on a real server. */
export const CREDENTIALS: Credentials = REAL_S3?.writer ?? { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };
/** The bucket owner's keys on a real server (undefined on s3rver, which takes any): for buckets the writer's policy does not reach. */
export const OWNER_CREDENTIALS: Credentials | undefined = REAL_S3?.owner;
/** A real server verifies signatures, honours If-None-Match, enforces the bucket policy and aborts uploads; s3rver does none of these. */
export const ON_REAL_S3 = REAL_S3 !== undefined;

/** `it` for what only a real server does (honour If-None-Match, enforce the bucket policy): pending on s3rver. */
export const itOnRealS3: Mocha.TestFunction = (ON_REAL_S3 ? it : it.skip) as Mocha.TestFunction;

export interface StoredObject {
  key: string;
  body: Buffer;
  contentType?: string;
  contentEncoding?: string;
  metadata: Record<string, string>;
}

/**
 * The S3 the tests write to: by default an s3rver on a free loopback port with data in a temporary
 * folder; with the S3_TEST_* variables set, that real server. Reads go through `client`, with the
 * bucket owner's keys there; the node writes with `credentials`.
 */
export class LocalS3 {
  readonly client: S3Client;
  readonly credentials: Credentials = CREDENTIALS;

  private constructor(
    readonly endpoint: string,
    readerCredentials: Credentials,
    private readonly s3rver?: { server: S3rver; directory: string },
  ) {
    this.client = new S3Client({
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: readerCredentials,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  static async start(): Promise<LocalS3> {
    if (REAL_S3) return new LocalS3(REAL_S3.endpoint, REAL_S3.owner);
    const directory = mkdtempSync(path.join(tmpdir(), "s3rver-"));
    const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: TEST_BUCKET }] });
    const { port } = await server.run();
    return new LocalS3(`http://127.0.0.1:${port}`, CREDENTIALS, { server, directory });
  }

  async stop(): Promise<void> {
    this.client.destroy();
    if (!this.s3rver) return;
    await this.s3rver.server.close();
    rmSync(this.s3rver.directory, { recursive: true, force: true });
  }

  async keys(prefix = ""): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.client.send(new ListObjectsV2Command({ Bucket: TEST_BUCKET, Prefix: prefix, ContinuationToken: token }));
      for (const item of page.Contents ?? []) if (item.Key) keys.push(item.Key);
      token = page.NextContinuationToken;
    } while (token);
    return keys.sort();
  }

  /** The multipart uploads still open (started, neither completed nor aborted); s3rver lists none. */
  async openUploads(): Promise<{ key: string; uploadId: string }[]> {
    if (this.s3rver) return [];
    const page = await this.client.send(new ListMultipartUploadsCommand({ Bucket: TEST_BUCKET }));
    return (page.Uploads ?? []).map((upload) => ({ key: upload.Key ?? "", uploadId: upload.UploadId ?? "" }));
  }

  async get(key: string): Promise<StoredObject> {
    const output = await this.client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: key }));
    const body = Buffer.from(await output.Body!.transformToByteArray());
    return { key, body, contentType: output.ContentType, contentEncoding: output.ContentEncoding, metadata: output.Metadata ?? {} };
  }

  /** Empties the bucket between tests, open uploads included. */
  async clear(): Promise<void> {
    for (const key of await this.keys()) await this.client.send(new DeleteObjectCommand({ Bucket: TEST_BUCKET, Key: key }));
    for (const { key, uploadId } of await this.openUploads()) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: TEST_BUCKET, Key: key, UploadId: uploadId }));
    }
  }
}
