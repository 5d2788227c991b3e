// The checks of `node-red-dev validate` that need no network, made against this package by hand
// (the tool itself clones the repository and queries npm and the flow library catalogue).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import semver from "semver";

const ROOT = path.join(__dirname, "..", "..");
const pkg = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8"));
const NODE_TYPES = Object.keys(pkg["node-red"].nodes);
/** The oldest Node.js the newest Node-RED line (5) runs on, from its engines field. */
const NODE_RED_5_MIN_NODE = "22.9.0";

function readJson(file: string) {
  return JSON.parse(readFileSync(path.join(ROOT, file), "utf8"));
}

/** The types an HTML file registers, with whether the call is a plain string literal and its category. */
function registrations(html: string): { literal: boolean; type?: string; category?: string }[] {
  return [...html.matchAll(/registerType\(\s*([^,]*),\s*\{/g)].map((match) => {
    const literal = /^(["'])([\w-]+)\1$/.exec(match[1].trim());
    const after = html.slice(match.index! + match[0].length);
    const category = /^\s*category:\s*(["'])([^"']*)\1/.exec(after)?.[2];
    return { literal: literal !== null, type: literal?.[2], category };
  });
}

describe("package hygiene (the offline checks of node-red-dev validate)", () => {
  it("P01: has an SPDX license, and a LICENSE file with its text", () => {
    assert.equal(pkg.license, "Apache-2.0");
    const license = readFileSync(path.join(ROOT, "LICENSE"), "utf8");
    assert.match(license, /Apache License\s+Version 2\.0, January 2004/);
    assert.match(license, /END OF TERMS AND CONDITIONS/);
  });

  it("P03: links a git repository", () => {
    assert.equal(pkg.repository.type, "git");
    assert.match(pkg.repository.url, /^git\+https:\/\/github\.com\/[\w.-]+\/[\w.-]+\.git$/);
  });

  it("P04: uses a scoped name", () => {
    assert.equal(pkg.name, "@iot-sinks/node-red-s3-egress");
    assert.match(pkg.name, /^@[a-z\d][\w.-]+\/[a-z\d][\w.-]*$/);
  });

  it("P05: has the node-red keyword", () => {
    assert.ok(pkg.keywords.includes("node-red"));
  });

  it("P06: declares the Node-RED versions it supports, 4 and 5", () => {
    assert.equal(pkg["node-red"].version, ">=4.0.0");
    for (const version of ["4.0.0", readJson("node_modules/node-red/package.json").version, "5.0.0"]) {
      assert.ok(semver.satisfies(version, pkg["node-red"].version), version);
    }
  });

  it("P07: declares a Node.js range that holds the minimum Node.js of the newest Node-RED, and Node.js 20 for Node-RED 4", () => {
    for (const version of [NODE_RED_5_MIN_NODE, "20.0.0", process.versions.node]) {
      assert.ok(semver.satisfies(version, pkg.engines.node), `Node.js ${version} in engines.node ${pkg.engines.node}`);
    }
    assert.ok(!semver.satisfies("18.20.0", pkg.engines.node), "Node.js 18, past its end of life, is not claimed");
  });

  it("node definitions (parsed before N01/N02): registers each node type with a plain string literal and an inline category, as listed in package.json", () => {
    const registered: string[] = [];
    for (const type of NODE_TYPES) {
      const html = readFileSync(path.join(ROOT, pkg["node-red"].nodes[type].replace(/\.js$/, ".html")), "utf8");
      for (const registration of registrations(html)) {
        assert.ok(registration.literal, `registerType in ${type}.html takes a string literal`);
        assert.ok(registration.category, `${registration.type} has a literal category`);
        registered.push(registration.type!);
      }
    }
    assert.deepEqual(registered.sort(), [...NODE_TYPES].sort());
  });

  it("N02: uses every node type in an example flow", () => {
    const used = new Set<string>();
    for (const file of readdirSync(path.join(ROOT, "examples")).filter((name) => name.endsWith(".json"))) {
      const flow = readJson(`examples/${file}`);
      assert.ok(Array.isArray(flow), `${file} is a flow (an array of nodes)`);
      for (const node of flow) used.add(node.type);
    }
    for (const type of NODE_TYPES) assert.ok(used.has(type), `an example uses ${type}`);
  });

  it("D01: has at most 6 production dependencies (SPEC: the S3 client and at most four more), node-red not among them", () => {
    const dependencies = Object.keys(pkg.dependencies ?? {});
    assert.ok(dependencies.length <= 6, dependencies.join(", "));
    assert.ok(dependencies.includes("@aws-sdk/client-s3"));
    assert.ok(dependencies.filter((name) => name !== "@aws-sdk/client-s3" && name !== "@aws-sdk/lib-storage").length <= 4);
    for (const name of ["node-red", "node-red-node-test-helper", "mocha", "s3rver", "typescript"]) {
      assert.ok(!dependencies.includes(name), `${name} is a devDependency`);
      assert.ok(pkg.devDependencies[name], `${name} is a devDependency`);
    }
  });

  it("D02: has no known-incompatible package (agent-base < 6) in its production dependency tree", () => {
    const lock = readJson("package-lock.json");
    for (const [location, entry] of Object.entries<{ version?: string; dev?: boolean }>(lock.packages)) {
      if (entry.dev || !location.endsWith("node_modules/agent-base")) continue;
      assert.ok(semver.gte(entry.version!, "6.0.0"), `${location}@${entry.version}`);
    }
  });

  it("keeps sources apart from build output: git tracks nothing in nodes/ or resources/, which the build writes whole", () => {
    const tracked = execFileSync("git", ["ls-files", "--", "nodes", "resources"], { cwd: ROOT, encoding: "utf8" }).trim();
    assert.equal(tracked, "");
    assert.deepEqual(readFileSync(path.join(ROOT, ".gitignore"), "utf8").split("\n").filter((line) => ["nodes/", "resources/"].includes(line)), ["nodes/", "resources/"]);
  });

  it("ships only what a user needs, and builds before packing", function () {
    this.timeout(30_000);
    const [{ files }] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: ROOT, encoding: "utf8" }));
    const shipped: string[] = files.map((file: { path: string }) => file.path).sort();
    const allowed = [/^nodes\/.+\.(js|html)$/, /^resources\/[\w-]+\.js$/, /^nodes\/locales\/[\w-]+\/[\w-]+\.json$/, /^icons\/[\w-]+\.svg$/, /^examples\/[\w-]+\.json$/, /^(package\.json|README\.md|LICENSE)$/, /^docs\/[\w-]+\.md$/];
    for (const file of shipped) assert.ok(allowed.some((pattern) => pattern.test(file)), `${file} is not for users`);
    for (const type of NODE_TYPES) {
      assert.ok(shipped.includes(`nodes/${type}.js`) && shipped.includes(`nodes/${type}.html`) && shipped.includes(`resources/${type}.js`), type);
      assert.ok(shipped.includes(`nodes/locales/en-US/${type}.json`), `${type} en-US catalog`);
    }
    assert.ok(shipped.includes("LICENSE") && shipped.includes("README.md"));
    // The pages the README links to, so its links work in the installed package too (the screenshots stay on GitHub).
    assert.ok(shipped.some((file) => file.startsWith("docs/") && file.endsWith(".md")) && !shipped.some((file) => file.endsWith(".png")));
    assert.ok(shipped.some((file) => file.startsWith("icons/")) && shipped.some((file) => file.startsWith("examples/")));
    assert.ok(!shipped.some((file) => file.endsWith(".d.ts") || file.startsWith("src/") || file.startsWith("test/")));
    // Every module a shipped file requires is shipped too.
    for (const file of shipped.filter((name) => name.endsWith(".js"))) {
      for (const [, required] of readFileSync(path.join(ROOT, file), "utf8").matchAll(/require\("(\.[^"]+)"\)/g)) {
        const target = path.posix.join(path.posix.dirname(file), required);
        assert.ok(shipped.includes(`${target}.js`) || shipped.includes(target), `${file} requires ${required}`);
      }
    }
    assert.match(pkg.scripts.prepack, /npm run build/);
    assert.ok(existsSync(path.join(ROOT, "tsconfig.json")));
  });
});
