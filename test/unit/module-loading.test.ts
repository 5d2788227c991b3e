// What loading the package costs: the AWS SDK and the proxy agents stay unloaded until a call needs them.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

const ROOT = path.join(__dirname, "..", "..");

/**
 * Runs `body` in a fresh node with `loaded()` (the lazily loaded packages in require.cache) and
 * `sink(endpoint)` (static keys, path style, bucket "b");
 * returns what it put in `result`.
 */
async function inFreshNode(body: string, env: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const script = `
    const path = require("node:path");
    require(path.join(${JSON.stringify(ROOT)}, "nodes", "s3-egress-config.js"));
    require(path.join(${JSON.stringify(ROOT)}, "nodes", "s3-egress.js"));
    const { S3Sink } = require(path.join(${JSON.stringify(ROOT)}, "nodes", "lib", "s3", "client.js"));
    const loaded = () => [...new Set(Object.keys(require.cache).map((file) => /node_modules[\\\\/](@aws-sdk[\\\\/]client-s3|https?-proxy-agent)[\\\\/]/.exec(file)?.[1]).filter(Boolean))].sort();
    const sink = (endpoint) => new S3Sink({ bucket: "b", region: "us-east-1", endpoint, forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
    (async () => { const result = {}; ${body}; process.stdout.write(JSON.stringify(result)); })();`;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(https?|no)_proxy$/i.test(name)));
  const { stdout } = await promisify(execFile)(process.execPath, ["--no-warnings", "-e", script], { env: { ...clean, ...env }, encoding: "utf8" });
  return JSON.parse(stdout);
}

describe("module loading", () => {
  it("loads neither the AWS SDK nor a proxy agent with static keys, for single-part and multipart uploads (to s3rver) alike", async () => {
    const result = await inFreshNode(`
      const { mkdtempSync, rmSync } = require("node:fs");
      const S3rver = require(require.resolve("s3rver", { paths: [${JSON.stringify(ROOT)}] }));
      const directory = mkdtempSync(path.join(require("node:os").tmpdir(), "s3rver-"));
      const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: "b" }] });
      const { port } = await server.run();
      const direct = sink("http://127.0.0.1:" + port);
      result.constructed = loaded();
      const options = { contentType: "text/plain", metadata: { "device-id": "d1" } };
      await direct.putObject("single", Buffer.from("x"), options);
      result.afterPut = loaded();
      const uploadId = await direct.createMultipartUpload("multi", options);
      const { etag } = await direct.uploadPart("multi", uploadId, 1, Buffer.from("part"));
      result.etag = (await direct.completeMultipartUpload("multi", uploadId, [{ partNumber: 1, etag }])).etag;
      result.afterMultipart = loaded();
      await direct.abortMultipartUpload("multi", "gone").catch((error) => (result.abort = error.name));
      result.afterAbort = loaded();
      direct.destroy();
      await server.close();
      rmSync(directory, { recursive: true, force: true });`);
    const { etag, ...loading } = result;
    assert.match(String(etag), /^"[0-9a-f]+(-1)?"$/, "the upload was completed");
    assert.deepEqual(loading, { constructed: [], afterPut: [], afterMultipart: [], abort: "S3Error", afterAbort: [] });
  });

  it("loads the AWS SDK for the default credential chain, when the config node has no keys", async () => {
    const result = await inFreshNode(
      `
      const chained = new S3Sink({ bucket: "b", region: "us-east-1", endpoint: "http://127.0.0.1:9", forcePathStyle: true });
      result.constructed = loaded();
      await chained.putObject("k", Buffer.from("x"), { contentType: "text/plain", metadata: {} }).catch(() => undefined);
      result.afterPut = loaded();
      chained.destroy();`,
      { AWS_ACCESS_KEY_ID: "a", AWS_SECRET_ACCESS_KEY: "b", AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/credentials", AWS_CONFIG_FILE: "/nonexistent/config", AWS_EC2_METADATA_DISABLED: "true" },
    );
    assert.deepEqual(result, { constructed: [], afterPut: ["@aws-sdk/client-s3"] });
  });

  it("loads the proxy agent of the endpoint's scheme once a proxy variable applies to it", async () => {
    const result = await inFreshNode(
      `
      sink("http://127.0.0.1:9").destroy();
      result.http = loaded();
      sink("https://127.0.0.1:9").destroy();
      result.https = loaded();`,
      { HTTP_PROXY: "http://127.0.0.1:8", HTTPS_PROXY: "http://127.0.0.1:8" },
    );
    assert.deepEqual(result, { http: ["http-proxy-agent"], https: ["http-proxy-agent", "https-proxy-agent"] });
  });
});
