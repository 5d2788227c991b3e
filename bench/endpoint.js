"use strict";
// A local endpoint for the bench, in its own process so its CPU and memory stay out of the
// figures of the process measured. Prints {"port": N} once listening; stops when stdin closes.
//   node bench/endpoint.js plain <delayMs> [allowedPerSec]
//       answers every PUT 200 with the body's MD5 as ETag; with allowedPerSec, a PUT beyond that
//       rate (a token bucket holding 50 ms of it) gets 503 SlowDown (after the same delay), as S3 does per prefix.
//       GET /__stats answers {"seconds":[{"ok":n,"slowDown":n},…]}, counted per second since the first PUT.
//   node bench/endpoint.js tls <delayMs> <certDir>
//       the same over HTTPS, with the certificate bench/tls.js made in certDir (for 127.0.0.1, signed
//       by the bench's private CA, which the contenders trust through NODE_EXTRA_CA_CERTS)
//   node bench/endpoint.js s3rver            s3rver 3.7.1 with bucket "bench" in a temporary folder

const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const https = require("node:https");
const os = require("node:os");
const path = require("node:path");
const { performance } = require("node:perf_hooks");

const BUCKET = "bench";
const EMPTY_LISTING =
  '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
  `<Name>${BUCKET}</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`;

const SLOW_DOWN =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

/** Admits at most `perSecond` requests a second, with a burst of 50 ms worth. */
function tokenBucket(perSecond) {
  const capacity = Math.max(1, perSecond / 20);
  let tokens = capacity;
  let last = performance.now();
  return () => {
    const now = performance.now();
    tokens = Math.min(capacity, tokens + ((now - last) / 1000) * perSecond);
    last = now;
    if (tokens < 1) return false;
    tokens--;
    return true;
  };
}

async function startPlain(delayMs, allowedPerSec, tls) {
  const admit = allowedPerSec > 0 ? tokenBucket(allowedPerSec) : () => true;
  const seconds = [];
  let firstPut;
  const count = (outcome) => {
    firstPut ??= performance.now();
    const second = Math.floor((performance.now() - firstPut) / 1000);
    while (seconds.length <= second) seconds.push({ ok: 0, slowDown: 0 });
    seconds[second][outcome]++;
  };
  const handle = (request, response) => {
    if (request.url === "/__stats") {
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end(JSON.stringify({ seconds }));
      return;
    }
    if (request.method === "PUT" && !admit()) {
      count("slowDown");
      request.resume();
      request.on("end", () =>
        setTimeout(() => {
          response.writeHead(503, { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(SLOW_DOWN) });
          response.end(SLOW_DOWN);
        }, delayMs),
      );
      return;
    }
    const md5 = crypto.createHash("md5");
    request.on("data", (chunk) => md5.update(chunk));
    request.on("end", () => {
      const answer = () => {
        if (request.method === "PUT") {
          count("ok");
          response.writeHead(200, { ETag: `"${md5.digest("hex")}"`, "Content-Length": "0" });
          response.end();
        } else {
          // The peer node lists the bucket once at start to check its credentials.
          response.writeHead(200, { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(EMPTY_LISTING) });
          response.end(EMPTY_LISTING);
        }
      };
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  };
  const server = tls ? https.createServer(tls, handle) : http.createServer(handle);
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: server.address().port, stop: () => server.close() };
}

async function startS3rver() {
  const S3rver = require("s3rver");
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "s3-egress-bench-s3-"));
  const s3 = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory, configureBuckets: [{ name: BUCKET }] });
  const { port } = await s3.run();
  return {
    port,
    stop: async () => {
      await s3.close();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}

async function main() {
  const [kind, delay, allowed] = process.argv.slice(2);
  let endpoint;
  if (kind === "s3rver") endpoint = await startS3rver();
  else if (kind === "tls") {
    const directory = allowed;
    const tls = { key: fs.readFileSync(path.join(directory, "server.key")), cert: fs.readFileSync(path.join(directory, "server.crt")) };
    endpoint = await startPlain(Number(delay) || 0, 0, tls);
  } else endpoint = await startPlain(Number(delay) || 0, Number(allowed) || 0);
  process.stdout.write(JSON.stringify({ port: endpoint.port }) + "\n");
  process.stdin.resume();
  process.stdin.on("end", async () => {
    await endpoint.stop();
    process.exit(0);
  });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
