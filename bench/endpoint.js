"use strict";
// A local endpoint for the bench, in its own process so its CPU and memory stay out of the
// figures of the process measured. Prints {"port": N} once listening; stops when stdin closes.
//   node bench/endpoint.js plain <delayMs>   answers every PUT 200 with the body's MD5 as ETag
//   node bench/endpoint.js s3rver            s3rver 3.7.1 with bucket "bench" in a temporary folder

const crypto = require("node:crypto");
const fs = require("node:fs");
const http = require("node:http");
const os = require("node:os");
const path = require("node:path");

const BUCKET = "bench";
const EMPTY_LISTING =
  '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
  `<Name>${BUCKET}</Name><Prefix></Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`;

async function startPlain(delayMs) {
  const server = http.createServer((request, response) => {
    const md5 = crypto.createHash("md5");
    request.on("data", (chunk) => md5.update(chunk));
    request.on("end", () => {
      const answer = () => {
        if (request.method === "PUT") {
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
  });
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
  const [kind, delay] = process.argv.slice(2);
  const endpoint = kind === "s3rver" ? await startS3rver() : await startPlain(Number(delay) || 0);
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
