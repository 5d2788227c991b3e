#!/usr/bin/env node
// Removes build output, so a renamed or deleted source leaves nothing stale behind.
// `clean.js nodes` removes only the compiled files under nodes/, never the editor HTML or locales.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const target = path.resolve(__dirname, "..", process.argv[2]);
if (path.basename(target) === "nodes") {
  fs.rmSync(path.join(target, "lib"), { recursive: true, force: true });
  for (const name of fs.readdirSync(target)) {
    if (/\.(js|d\.ts)$/.test(name)) fs.rmSync(path.join(target, name));
  }
} else {
  fs.rmSync(target, { recursive: true, force: true });
}
