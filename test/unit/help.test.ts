import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";

const NODES = path.join(__dirname, "..", "..", "nodes");
// Node-RED's markdown reads ": name (type) : description" as a property list entry, at the start of a
// line and inside a paragraph alike, and no ":" may occur in its parts: a paragraph line with a colon,
// a parenthesis and another colon comes out garbled. Property lists are HTML (dl.message-properties).
const PROPERTY_ENTRY = /^:([^:\n]+)\(([^:\n]+)\).*?:([^:\n]*)(?:\n|$)/;

function helpLines(type: string): string[] {
  const html = readFileSync(path.join(NODES, `${type}.html`), "utf8");
  const help = /<script type="text\/markdown" data-help-name="[^"]+">([\s\S]*?)<\/script>/.exec(html)![1];
  let inCode = false;
  return help
    .split("\n")
    .filter((line) => {
      if (line.startsWith("```")) inCode = !inCode;
      // Lines of HTML blocks (the property lists) and code blocks are not read as markdown.
      return !inCode && !line.startsWith("```") && !/^\s*</.test(line);
    })
    .map((line) => line.replace(/`[^`]*`/g, "`code`")); // code spans are read first

}

describe("help", () => {
  for (const type of ["s3-egress", "s3-egress-config"]) {
    it(`${type}: no markdown line is misread as a property list entry`, () => {
      const misread = helpLines(type).filter((line) => [...line.matchAll(/:/g)].some((colon) => PROPERTY_ENTRY.test(line.slice(colon.index))));
      assert.deepEqual(misread, []);
    });
  }
});
