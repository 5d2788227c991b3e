// What loading the package costs: the AWS SDK and the proxy agents stay unloaded until a call needs them.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";

const ROOT = path.join(__dirname, "..", "..");

/** Runs `body` in a fresh node with `loaded()` (the lazily loaded packages in require.cache) and `sink` (static keys, a closed loopback port); returns what it printed, as JSON. */
function inFreshNode(body: string, env: Record<string, string> = {}): Record<string, string[]> {
  const script = `
    const path = require("node:path");
    require(path.join(${JSON.stringify(ROOT)}, "nodes", "s3-egress-config.js"));
    require(path.join(${JSON.stringify(ROOT)}, "nodes", "s3-egress.js"));
    const { S3Sink } = require(path.join(${JSON.stringify(ROOT)}, "nodes", "lib", "s3", "client.js"));
    const loaded = () => [...new Set(Object.keys(require.cache).map((file) => /node_modules[\\\\/](@aws-sdk[\\\\/]client-s3|https?-proxy-agent)[\\\\/]/.exec(file)?.[1]).filter(Boolean))].sort();
    const sink = (endpoint) => new S3Sink({ bucket: "b", region: "us-east-1", endpoint, forcePathStyle: true, credentials: { accessKeyId: "a", secretAccessKey: "b" } });
    (async () => { const result = {}; ${body}; process.stdout.write(JSON.stringify(result)); })();`;
  const clean = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(https?|no)_proxy$/i.test(name)));
  return JSON.parse(execFileSync(process.execPath, ["--no-warnings", "-e", script], { env: { ...clean, ...env }, encoding: "utf8" }));
}

describe("module loading", () => {
  it("loads neither the AWS SDK nor a proxy agent for single-part writes with static keys; the SDK with the first multipart call", () => {
    const result = inFreshNode(`
      const direct = sink("http://127.0.0.1:9");
      result.constructed = loaded();
      await direct.putObject("k", Buffer.from("x"), { contentType: "text/plain", metadata: {} }).catch(() => undefined);
      result.afterPut = loaded();
      await direct.abortMultipartUpload("k", "upload").catch(() => undefined);
      result.afterMultipartCall = loaded();
      direct.destroy();`);
    assert.deepEqual(result, { constructed: [], afterPut: [], afterMultipartCall: ["@aws-sdk/client-s3"] });
  });

  it("loads the proxy agent of the endpoint's scheme once a proxy variable applies to it", () => {
    const result = inFreshNode(
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
