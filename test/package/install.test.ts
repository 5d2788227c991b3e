import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type NodeRedProcess, installPackedPackage, startNodeRedProcess } from "../support/packed";

const NAME = "@iot-sinks/node-red-s3-egress";
const ROOT = path.join(__dirname, "..", "..");

interface NodeSet {
  id: string;
  module: string;
  types: string[];
  enabled: boolean;
  err?: string;
}

describe("the packed package, installed into a fresh Node-RED user directory", function () {
  this.timeout(120_000);
  let userDir: string;
  let red: NodeRedProcess | undefined;

  before(async () => {
    userDir = mkdtempSync(path.join(tmpdir(), "s3-egress-install-"));
    installPackedPackage(userDir);
    red = await startNodeRedProcess(userDir);
  });
  after(async () => {
    await red?.stop();
    rmSync(userDir, { recursive: true, force: true });
  });

  it("installs from the tarball with its production dependencies and nothing of the development tree", () => {
    const installed = path.join(userDir, "node_modules", ...NAME.split("/"));
    const pkg = JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8"));
    assert.equal(pkg.name, NAME);
    assert.deepEqual(readdirSync(installed).sort(), ["LICENSE", "README.md", "docs", "examples", "icons", "nodes", "package.json", "resources"]);
    const modules = readdirSync(path.join(userDir, "node_modules"));
    assert.ok(modules.includes("@aws-sdk"));
    for (const devOnly of ["node-red", "mocha", "s3rver", "typescript"]) assert.ok(!modules.includes(devOnly), devOnly);
  });

  it("registers both node types in Node-RED, with their editor HTML, icon and examples", async () => {
    const response = await fetch(`${red!.url}/nodes`, { headers: { accept: "application/json" } });
    assert.equal(response.status, 200);
    const sets = ((await response.json()) as NodeSet[]).filter((set) => set.module === NAME);
    assert.deepEqual(sets.flatMap((set) => set.types).sort(), ["s3-egress", "s3-egress-config"]);
    for (const set of sets) {
      assert.equal(set.err, undefined, `${set.id}: ${set.err}`);
      assert.ok(set.enabled, set.id);
    }
    // What the editor loads: the HTML of every node set.
    const html = await (await fetch(`${red!.url}/nodes`, { headers: { accept: "text/html" } })).text();
    assert.match(html, /RED\.nodes\.registerType\("s3-egress"/);
    assert.match(html, /RED\.nodes\.registerType\("s3-egress-config"/);
    // The editor scripts they load from the package's resources/ (src/<type>/editor.ts, bundled).
    for (const type of ["s3-egress", "s3-egress-config"]) {
      const src = `resources/${NAME}/${type}.js`;
      assert.ok(html.includes(`src="${src}"`), src);
      const script = await fetch(`${red!.url}/${src}`);
      assert.equal(script.status, 200, src);
      assert.match(await script.text(), /definition/);
    }
    const icon = await fetch(`${red!.url}/icons/${NAME}/s3-egress.svg`);
    assert.equal(icon.status, 200);
    assert.match(await icon.text(), /<svg/);
    // Import → Examples lists the package with every flow in examples/, and each one loads.
    const modules = (await (await fetch(`${red!.url}/library/examples/flows/`)).json()) as string[];
    assert.ok(modules.includes(NAME));
    const listed = (await (await fetch(`${red!.url}/library/examples/flows/${NAME}`)).json()) as { fn: string }[];
    const examples = readdirSync(path.join(ROOT, "examples")).filter((name) => name.endsWith(".json")).map((name) => name.slice(0, -5));
    assert.deepEqual(listed.map((entry) => entry.fn).sort(), examples.sort());
    for (const example of examples) {
      const flow = (await (await fetch(`${red!.url}/library/examples/flows/${NAME}/${example}`)).json()) as { type: string }[];
      assert.ok(flow.some((node) => node.type === "s3-egress"), `${example} uses s3-egress`);
    }
  });
});
