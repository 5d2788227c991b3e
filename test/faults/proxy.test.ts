import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import http from "node:http";
import https from "node:https";
import { readFileSync } from "node:fs";
import path from "node:path";
import { proxyFor } from "../../nodes/lib/s3/proxy";
import { ConnectProxy } from "../support/connect-proxy";
import { type LoopbackEndpoint, listenOnLoopback } from "../support/loopback";
import { CREDENTIALS, LocalS3, TEST_BUCKET } from "../support/s3";

const TLS = path.join(__dirname, "..", "..", "test", "support", "tls");
const CHILD = path.join(__dirname, "..", "support", "proxied-writes.js");
/** What a child process would inherit of the proxy settings of whoever runs the tests: nothing. */
const CLEAN_ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(https?|no|all)_proxy$/i.test(name)));

/** Runs the writes of proxied-writes.js with `env`, resolving with what it printed. */
function writeInChild(endpoint: string, prefix: string, env: Record<string, string>): Promise<{ written?: string[]; error?: string }> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [CHILD, endpoint, TEST_BUCKET, JSON.stringify(CREDENTIALS), prefix], { env: { ...CLEAN_ENV, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split("\n").pop() ?? "{}"));
    }),
  );
}

/** s3rver behind TLS on a loopback port, with the test certificate (trusted through NODE_EXTRA_CA_CERTS). */
function tlsFront(upstream: string): Promise<LoopbackEndpoint> {
  const target = new URL(upstream);
  const server = https.createServer({ key: readFileSync(path.join(TLS, "loopback.key")), cert: readFileSync(path.join(TLS, "loopback.crt")) }, (request, response) => {
    const forward = http.request({ hostname: target.hostname, port: target.port, path: request.url, method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    forward.on("error", () => response.destroy());
    request.pipe(forward);
  });
  return listenOnLoopback(server, "https");
}

describe("proxies from the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY)", function () {
  this.timeout(90_000);
  let s3: LocalS3;
  let proxy: ConnectProxy;

  before(async () => {
    s3 = await LocalS3.start();
    proxy = await ConnectProxy.start();
  });
  after(async () => {
    await proxy.stop();
    await s3.stop();
  });
  afterEach(async () => {
    proxy.tunnels.length = 0;
    proxy.forwarded.length = 0;
    await s3.clear();
  });

  it("an https endpoint: PutObject, UploadPart and the multipart control calls go through CONNECT tunnels, a private CA trusted through NODE_EXTRA_CA_CERTS", async () => {
    const front = await tlsFront(s3.endpoint);
    try {
      const result = await writeInChild(front.endpoint, "tls", { HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: path.join(TLS, "loopback.crt") });
      assert.deepEqual(result, { written: ["tls/single", "tls/multipart"] });
      assert.ok(proxy.tunnels.length >= 1, "the sockets are tunnels");
      assert.ok(proxy.tunnels.every((tunnel) => tunnel === front.endpoint.slice("https://".length)));
      assert.deepEqual(proxy.forwarded, []);
      assert.deepEqual((await s3.get("tls/multipart")).body, Buffer.from("one part"));
    } finally {
      await front.stop();
    }
  });

  it("an http endpoint: every request is passed on by the proxy (absolute URI), none goes direct", async () => {
    const result = await writeInChild(s3.endpoint, "plain", { HTTP_PROXY: proxy.url });
    assert.deepEqual(result, { written: ["plain/single", "plain/multipart"] });
    const base = `${s3.endpoint}/test-bucket/plain`;
    assert.deepEqual(proxy.forwarded.map((line) => line.replace(/uploadId=[^&]*/, "uploadId=ID")), [
      `PUT ${base}/single`,
      `POST ${base}/multipart?uploads=`,
      `PUT ${base}/multipart?partNumber=1&uploadId=ID`,
      `POST ${base}/multipart?uploadId=ID`,
    ]);
    assert.deepEqual(proxy.tunnels, []);
  });

  it("NO_PROXY naming the endpoint's host: direct, the proxy sees nothing", async () => {
    const result = await writeInChild(s3.endpoint, "direct", { HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: "example.com, 127.0.0.1" });
    assert.deepEqual(result, { written: ["direct/single", "direct/multipart"] });
    assert.deepEqual([proxy.forwarded, proxy.tunnels], [[], []]);
  });

  it("reads the variables as curl does: lower case first, NO_PROXY by host, subdomain, port and *", () => {
    const url = new URL("https://bucket.s3.eu-central-1.amazonaws.com/");
    assert.equal(proxyFor(url, {}), undefined);
    assert.equal(proxyFor(url, { HTTPS_PROXY: "http://proxy:3128" })?.href, "http://proxy:3128/");
    assert.equal(proxyFor(url, { https_proxy: "http://lower:1", HTTPS_PROXY: "http://upper:2" })?.host, "lower:1");
    assert.equal(proxyFor(url, { HTTPS_PROXY: "proxy.corp:8080" })?.href, "http://proxy.corp:8080/", "no scheme: an http proxy");
    assert.equal(proxyFor(url, { HTTP_PROXY: "http://proxy:3128" }), undefined, "HTTP_PROXY is for http endpoints");
    assert.equal(proxyFor(new URL("http://minio.local:9000/"), { HTTP_PROXY: "http://proxy:3128" })?.host, "proxy:3128");
    for (const noProxy of ["amazonaws.com", ".amazonaws.com", "*.amazonaws.com", "other, s3.eu-central-1.amazonaws.com", "*", "bucket.s3.eu-central-1.amazonaws.com:443"]) {
      assert.equal(proxyFor(url, { HTTPS_PROXY: "http://proxy:3128", NO_PROXY: noProxy }), undefined, noProxy);
    }
    for (const noProxy of ["zonaws.com", "amazonaws.com:80", "eu-central-1", ""]) {
      assert.ok(proxyFor(url, { HTTPS_PROXY: "http://proxy:3128", no_proxy: noProxy }), noProxy);
    }
    assert.equal(proxyFor(new URL("http://[::1]:9000/"), { HTTP_PROXY: "http://proxy:3128", NO_PROXY: "[::1]:9000" }), undefined);
  });
});
