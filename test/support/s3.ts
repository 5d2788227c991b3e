import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";
import S3rver from "s3rver";

export const TEST_BUCKET = "test-bucket";
export const CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export interface StoredObject {
  key: string;
  body: Buffer;
  contentType?: string;
  contentEncoding?: string;
  metadata: Record<string, string>;
}

/** An s3rver on a free loopback port, with data in a temporary folder, and a client to read it back. */
export class LocalS3 {
  readonly client: S3Client;

  private constructor(
    private readonly server: S3rver,
    readonly endpoint: string,
    private readonly directory: string,
  ) {
    this.client = new S3Client({
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: CREDENTIALS,
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
  }

  static async start(): Promise<LocalS3> {
    const directory = mkdtempSync(path.join(tmpdir(), "s3rver-"));
    const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: TEST_BUCKET }] });
    const { port } = await server.run();
    return new LocalS3(server, `http://127.0.0.1:${port}`, directory);
  }

  async stop(): Promise<void> {
    this.client.destroy();
    await this.server.close();
    rmSync(this.directory, { recursive: true, force: true });
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

  async get(key: string): Promise<StoredObject> {
    const output = await this.client.send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: key }));
    const body = Buffer.from(await output.Body!.transformToByteArray());
    return { key, body, contentType: output.ContentType, contentEncoding: output.ContentEncoding, metadata: output.Metadata ?? {} };
  }

  /** Empties the bucket between tests. */
  async clear(): Promise<void> {
    for (const key of await this.keys()) await this.client.send(new DeleteObjectCommand({ Bucket: TEST_BUCKET, Key: key }));
  }

}
