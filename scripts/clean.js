#!/usr/bin/env node
// Removes build output folders (arguments, relative to the package root), so a renamed or deleted
// source leaves nothing stale behind. Only folders the build writes whole are ever given.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

for (const folder of process.argv.slice(2)) fs.rmSync(path.resolve(__dirname, "..", folder), { recursive: true, force: true });
