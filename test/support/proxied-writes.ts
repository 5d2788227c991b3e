// Writes through an S3Sink in a process of its own, so that the environment it reads at start
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, NODE_EXTRA_CA_CERTS) is the one a test gives it:
// `node proxied-writes.js <endpoint> <bucket> <credentials JSON> <key prefix>`. Prints one JSON line:
// the keys written, or the error.
import { type Credentials, S3Sink } from "../../nodes/lib/s3/client";

async function main(): Promise<void> {
  const [endpoint, bucket, credentials, prefix] = process.argv.slice(2);
  const sink = new S3Sink({ bucket, region: "us-east-1", endpoint, forcePathStyle: true, credentials: JSON.parse(credentials) as Credentials });
  const options = { contentType: "text/plain", metadata: { "device-id": "d1" } };
  try {
    // A single-part and a multipart upload: every kind of request the node sends but Abort.
    await sink.putObject(`${prefix}/single`, Buffer.from("one request"), options);
    const uploadId = await sink.createMultipartUpload(`${prefix}/multipart`, options);
    const { etag } = await sink.uploadPart(`${prefix}/multipart`, uploadId, 1, Buffer.from("one part"));
    await sink.completeMultipartUpload(`${prefix}/multipart`, uploadId, [{ partNumber: 1, etag }]);
    process.stdout.write(`${JSON.stringify({ written: [`${prefix}/single`, `${prefix}/multipart`] })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ error: (error as Error).message })}\n`);
  } finally {
    sink.destroy();
  }
}

void main();
