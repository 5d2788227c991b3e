import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { type NodeRedProcess, installPackedPackage, startNodeRedProcess } from "../support/packed";
import { NODE_RED_RUNTIME } from "../support/runtime";
import { CREDENTIALS, LocalS3, TEST_BUCKET } from "../support/s3";

const PLUGIN = "@iot-sinks/node-red-s3-egress/s3-egress-monitor";
const PASSWORD = "scrape-me-42";

/** Node-RED's own bcrypt, beside the runtime under test: the hash adminAuth wants for a password. */
function passwordHash(password: string): string {
  const bcrypt = require(require.resolve("bcryptjs", { paths: [path.dirname(NODE_RED_RUNTIME)] })) as { hashSync(text: string, rounds: number): string };
  return bcrypt.hashSync(password, 8);
}

describe("monitoring in a Node-RED with admin auth (packed package): Prometheus route with a token, HTTP-in opt-in, sidebar plugin", function () {
  this.timeout(120_000);
  let userDir: string;
  let s3: LocalS3;
  let red: NodeRedProcess | undefined;
  let adminToken: string;

  /** A bearer token as `curl -d … /auth/token` gets it; the scope asked for is the user's permission. */
  async function token(username: string, scope: string): Promise<string> {
    const body = new URLSearchParams({ client_id: "node-red-admin", grant_type: "password", scope, username, password: PASSWORD });
    const response = await fetch(`${red!.url}/auth/token`, { method: "POST", body });
    assert.equal(response.status, 200, `token for ${username}: ${await response.clone().text()}`);
    return ((await response.json()) as { access_token: string }).access_token;
  }

  before(async () => {
    userDir = mkdtempSync(path.join(tmpdir(), "s3-egress-monitoring-"));
    s3 = await LocalS3.start();
    installPackedPackage(userDir);
    const users = ["admin", "prometheus"].map((username) => ({ username, password: passwordHash(PASSWORD), permissions: username === "admin" ? "*" : "read" }));
    red = await startNodeRedProcess(userDir, { adminAuth: { type: "credentials", users }, s3EgressMetrics: { httpNode: true } });
    adminToken = await token("admin", "*");
  });
  after(async () => {
    await red?.stop();
    await s3?.stop();
    rmSync(userDir, { recursive: true, force: true });
  });

  it("serves exposition text to a read-only token whose counts match the objects in the bucket, and refuses a scrape without one", async () => {
    const fields = ["streamGroup", "stream", "deviceId", "batchId"].map((p) => ({ p, v: `v-${p}`, vt: "str" }));
    const flow = [
      { id: "t1", type: "tab", label: "Plant" },
      { id: "i1", type: "inject", z: "t1", props: [{ p: "payload", v: '{"t":21.5}', vt: "json" }, ...fields], repeat: "", once: false, wires: [["e1"]] },
      { id: "e1", type: "s3-egress", z: "t1", name: "plant sink", sink: "c1", messageIdAutofill: "auto", wires: [[]] },
      { id: "c1", type: "s3-egress-config", bucket: TEST_BUCKET, region: "us-east-1", endpoint: s3.endpoint, forcePathStyle: true, credentials: CREDENTIALS },
    ];
    const admin = { authorization: `Bearer ${adminToken}` };
    const deployed = await fetch(`${red!.url}/flows`, { method: "POST", headers: { ...admin, "content-type": "application/json", "node-red-deployment-type": "full" }, body: JSON.stringify(flow) });
    assert.ok(deployed.ok, `deploy answered ${deployed.status}`);
    // The inject button, pressed three times once the deployed flow has started.
    for (let pressed = 0, attempt = 0; pressed < 3 && attempt < 100; attempt++) {
      if ((await fetch(`${red!.url}/inject/i1`, { method: "POST", headers: admin })).ok) pressed++;
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (let attempt = 0; attempt < 100 && (await s3.keys()).length < 3; attempt++) await new Promise((resolve) => setTimeout(resolve, 100));
    const objects = await s3.keys();
    assert.equal(objects.length, 3);

    assert.equal((await fetch(`${red!.url}/s3-egress/metrics`)).status, 401);
    const scrape = await fetch(`${red!.url}/s3-egress/metrics`, { headers: { authorization: `Bearer ${await token("prometheus", "read")}` } });
    assert.equal(scrape.status, 200, `token scrape: ${await scrape.clone().text()}`);
    const written = parsePrometheusTextFormat(await scrape.text()).find((family) => family.name === "s3_egress_objects_written_total");
    assert.deepEqual(written?.metrics, [{ labels: { node_id: "e1", node_name: "plant sink", flow: "Plant", bucket: TEST_BUCKET }, value: String(objects.length) }]);

    // Opted in by settings.js: the same text on the HTTP-in path, without admin auth.
    const open = await fetch(`${red!.url}/api/s3-egress/metrics`);
    assert.equal(open.status, 200, await open.clone().text());
    const families = parsePrometheusTextFormat(await open.text());
    assert.equal(families.find((family) => family.name === "s3_egress_objects_written_total")?.metrics[0].value, "3");
  });

  it("loads the sidebar plugin into the editor, with its English and German texts", async () => {
    const admin = { authorization: `Bearer ${adminToken}` };
    const plugins = (await (await fetch(`${red!.url}/plugins`, { headers: { ...admin, accept: "application/json" } })).json()) as { id: string; enabled: boolean }[];
    assert.deepEqual(plugins.filter((plugin) => plugin.id === PLUGIN).map((plugin) => plugin.enabled), [true]);
    const html = await (await fetch(`${red!.url}/plugins`, { headers: { ...admin, accept: "text/html" } })).text();
    // Its editor script, bundled from src/s3-egress-monitor/editor.ts, served from the package's resources/.
    const src = /src="(resources\/[^"]+\/s3-egress-monitor\.js)"/.exec(html)?.[1];
    assert.ok(src, "the plugin's HTML loads its script");
    const script = await (await fetch(`${red!.url}/${src}`)).text();
    assert.ok(script.includes('RED.plugins.registerPlugin("s3-egress-monitor"'));
    for (const [language, empty] of [["en-US", "No s3-egress node in this workspace"], ["de", "Kein s3-egress-Node in diesem Arbeitsbereich"]]) {
      const catalogs = (await (await fetch(`${red!.url}/plugins/messages?lng=${language}`, { headers: admin })).json()) as Record<string, { monitor: { empty: string } }>;
      assert.equal(catalogs[PLUGIN]?.monitor.empty, empty, language);
    }
  });
});
