"use strict";
// The bench's private certificate authority: a CA and a certificate for 127.0.0.1 it signed, made
// with openssl in a temporary folder, as an S3-compatible store behind a company CA would have.
// The endpoint serves the certificate; the contenders trust the CA through NODE_EXTRA_CA_CERTS
// (read once at process start, as Node-RED reads it), certificate checks on.

const { execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

/** Makes the CA and the server certificate; returns their folder and the CA file. */
function makeCertificates() {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), "s3-egress-bench-tls-"));
  const file = (name) => path.join(directory, name);
  const openssl = (...args) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "2", "-subj", "/CN=s3-egress bench CA");
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", file("server.key"), "-out", file("server.csr"), "-subj", "/CN=127.0.0.1");
  fs.writeFileSync(file("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n");
  openssl("x509", "-req", "-in", file("server.csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"), "-CAcreateserial", "-out", file("server.crt"), "-days", "2", "-extfile", file("server.ext"));
  return { directory, caFile: file("ca.crt"), remove: () => fs.rmSync(directory, { recursive: true, force: true }) };
}

module.exports = { makeCertificates };
