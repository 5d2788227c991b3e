// The editor as a person uses it, in Debian's Chromium: the packed package installed into a fresh
// Node-RED user directory, an example imported through Import → Examples, the config dialog
// filled in, deploy, inject, and the object read back from s3rver; a node dragged from the palette
// and a default inject; every other example imported one after the other and deployed; the
// rendered help of both nodes; the batch preview against the object written. The steps run in
// order on one page. Run by `npm run test:e2e`.
import assert from "node:assert/strict";
import path from "node:path";
import type { Page } from "playwright-core";
import { SCREENSHOTS } from "../support/chromium";
import { editorSession } from "../support/editor-session";
import { type LocalS3, TEST_BUCKET } from "../support/s3";
import { nodeOf, savedFlows } from "../support/saved-flows";
import { EGRESS_DEFAULTS } from "../../nodes/s3-egress/migrations";

const PACKAGE = "@iot-sinks/node-red-s3-egress";
// Node ids of examples/messages-from-simulated-devices.json; its config node is pointed at this test's s3rver.
const INJECT_ID = "6f1d0c2a8e4b1002";
const EGRESS_ID = "6f1d0c2a8e4b1004";
const CONFIG_ID = "6f1d0c2a8e4b1009";
const MESSAGES_TAB = "6f1d0c2a8e4b1001";
// The "no device id" inject of examples/error-handling-with-catch-and-status.json and its s3-egress node.
const BAD_INJECT_ID = "6f1d0c2a8e4be003";
const BAD_EGRESS_ID = "6f1d0c2a8e4be005";
const WORKSPACE = "69f09b3f-ec0d-4b9e-a5ec-87150b935296";

/** Polls s3rver (at most `attempts` times) until an object appears under `prefix`. */
async function firstKey(s3: LocalS3, prefix: string, attempts = 60): Promise<string> {
  for (let attempt = 0; attempt < attempts; attempt++) {
    const keys = await s3.keys(prefix);
    if (keys.length > 0) return keys[0];
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`no object under ${prefix} in the bucket`);
}

/** What the tests read of the editor's own API in the page. */
interface EditorNode {
  id: string;
  type: string;
  valid?: boolean;
  validationErrors?: string[];
  sink?: string;
}
interface EditorApi {
  nodes: {
    eachNode(visit: (node: EditorNode) => void): void;
    eachConfig(visit: (node: EditorNode) => void): void;
    node(id: string): EditorNode | null;
    addLink(link: { source: EditorNode; sourcePort: number; target: EditorNode }): void;
    import(nodes: Record<string, unknown>[], options: Record<string, unknown>): void;
    dirty(dirty: boolean): void;
  };
  view: { redraw(updateActive?: boolean): void };
  tray: { close(): void };
  sidebar: { help: { show(type: string): void }; show(tab: string): void };
}
declare const RED: EditorApi;

/** Imports one of this package's examples through Import → Examples; fails on a conflict prompt. */
async function importExample(page: Page, example: string, tab: string): Promise<void> {
  await page.locator("#red-ui-header-button-sidemenu").click();
  await page.locator("#menu-item-import").click();
  // A click on the tab while the dialog is still opening can go unheeded: click until the examples show.
  const examplesTab = page.locator('#red-ui-clipboard-dialog-import-tabs a[href="#red-ui-clipboard-dialog-import-tab-examples"]');
  const examples = page.locator("#red-ui-clipboard-dialog-import-tab-examples");
  for (let attempt = 0; attempt < 5 && !(await examples.isVisible()); attempt++) {
    await examplesTab.click();
    await examples.waitFor({ timeout: 2_000 }).catch(() => undefined);
  }
  const entry = examples.locator(".red-ui-treeList-label", { hasText: example });
  if (!(await entry.isVisible())) await examples.locator(".red-ui-treeList-label", { hasText: PACKAGE }).click();
  await entry.click();
  await page.locator("#red-ui-clipboard-dialog-ok").click();
  // Ids already in the workspace would reopen the dialog asking what to do with the conflicting nodes.
  await page.locator(".red-ui-notification", { hasText: "Imported" }).waitFor();
  assert.equal(await page.locator("#red-ui-clipboard-dialog").isVisible(), false, `importing ${example} asked about conflicting nodes`);
  await page.locator("#red-ui-workspace-tabs .red-ui-tab", { hasText: tab }).click();
  // The "Imported …" notification closes by itself; wait, so it does not cover what comes next.
  await page.locator(".red-ui-notification", { hasText: "Imported" }).waitFor({ state: "detached" });
}

/**
 * Presses an inject node's button until the editor confirms the injection: a press while the
 * runtime is still starting the deployed flows can go unheard.
 */
async function press(page: Page, id: string, name: string): Promise<void> {
  const confirmed = page.locator(".red-ui-notification", { hasText: `Successfully injected: ${name}` });
  for (let attempt = 0; attempt < 5; attempt++) {
    await page.locator(`[id="${id}"] .red-ui-flow-node-button`).click();
    if (await confirmed.first().waitFor({ timeout: 3_000 }).then(() => true, () => false)) return;
  }
  throw new Error(`the editor never confirmed injecting ${name}`);
}

/** Closes any edit tray an earlier step left open: its code editor would take the next click on the workspace. */
async function closeTrays(page: Page): Promise<void> {
  await page.waitForFunction(
    () => {
      const open = document.querySelector("#red-ui-editor-stack .red-ui-tray") !== null;
      if (open) RED.tray.close();
      return !open;
    },
    undefined,
    { polling: 500, timeout: 20_000 },
  );
}

/** Deploys, and fails if the editor asks to confirm a deploy of nodes that are not properly configured. */
async function deploy(page: Page): Promise<void> {
  // Earlier notifications close by themselves; wait, so that the one read below is this deploy's.
  const earlier = page.locator(".red-ui-notification-success");
  while ((await earlier.count()) > 0) await earlier.first().waitFor({ state: "detached" });
  await page.locator("#red-ui-header-button-deploy").click();
  const outcome = page.locator(".red-ui-notification-success, .red-ui-notification:has-text('not properly configured')").first();
  await outcome.waitFor();
  assert.doesNotMatch(await outcome.innerText(), /not properly configured/);
}

/** The nodes (and config nodes) of the workspace that the editor marks invalid. */
function invalidNodes(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const invalid: string[] = [];
    const check = (node: EditorNode) => node.valid === false && invalid.push(`${node.type} ${node.id}: ${JSON.stringify(node.validationErrors)}`);
    RED.nodes.eachNode(check);
    RED.nodes.eachConfig(check);
    return invalid;
  });
}

/** The property lists of a node type's help as the help sidebar renders them. */
async function renderedHelp(page: Page, type: string): Promise<{ properties: { name: string; type: string; description: string }[]; looseTerms: string[]; text: string }> {
  await page.evaluate((helpType) => RED.sidebar.help.show(helpType), type);
  // The help sidebar nests .red-ui-help containers: the innermost holds the rendered help.
  const help = page.locator(".red-ui-help", { has: page.locator("dl.message-properties") }).last();
  await help.locator("dl.message-properties").first().waitFor();
  const properties = await help.locator("dl.message-properties > dt").evaluateAll((terms) =>
    terms.map((term) => ({
      name: (term.firstChild?.textContent ?? "").trim(),
      type: term.querySelector(".property-type")?.textContent ?? "",
      description: term.nextElementSibling?.tagName === "DD" ? (term.nextElementSibling.textContent ?? "") : "",
    })),
  );
  // Markdown's ": name (type) : description" syntax also fires inside a paragraph with colons and parentheses: loose terms.
  const looseTerms = await help.locator("dt").evaluateAll((terms) =>
    terms.filter((term) => !term.parentElement?.matches("dl.message-properties")).map((term) => term.parentElement?.textContent ?? ""),
  );
  return { properties, looseTerms, text: await help.innerText() };
}

/** Screenshots the open edit tray from its title down to the end of `content` (for the docs). */
async function screenshotDialog(page: Page, content: string, file: string): Promise<void> {
  const tray = await page.locator(".red-ui-tray").last().boundingBox();
  const dialog = await page.locator(content).boundingBox();
  assert.ok(tray && dialog, `${content} is on screen`);
  const height = Math.min(dialog.y + dialog.height + 16, tray.y + tray.height) - tray.y;
  await page.screenshot({ path: path.join(SCREENSHOTS, file), clip: { x: tray.x, y: tray.y, width: tray.width, height } });
}

describe("editor in Chromium (packed package, Import → Examples, deploy, inject)", function () {
  this.timeout(180_000);
  const session = editorSession({ width: 1400, height: 1500 });

  it("imports the example, configures the bucket in the dialog, deploys, and the inject lands an object with the seed's key and metadata", async () => {
    const { page, s3, browser } = session;
    await session.openEditor();

    // Import → Examples → our package → the simulated devices flow.
    await page.locator("#red-ui-header-button-sidemenu").click();
    await page.locator("#menu-item-import").click();
    await page.locator('#red-ui-clipboard-dialog-import-tabs a[href="#red-ui-clipboard-dialog-import-tab-examples"]').click();
    const examples = page.locator("#red-ui-clipboard-dialog-import-tab-examples");
    await examples.locator(".red-ui-treeList-label", { hasText: PACKAGE }).click();
    await examples.locator(".red-ui-treeList-label", { hasText: "messages-from-simulated-devices" }).click();
    await page.locator("#red-ui-clipboard-dialog-ok").click();
    await page.locator("#red-ui-workspace-tabs .red-ui-tab", { hasText: "S3 egress: messages" }).click();
    // The "Imported …" notification closes by itself; wait, so it does not cover the dialog.
    await page.locator(".red-ui-notification", { hasText: "Imported" }).waitFor({ state: "detached" });

    // The egress node's dialog, with the preview computed by the runtime.
    await closeTrays(page);
    await page.locator(`[id="${EGRESS_ID}"] .red-ui-flow-node`).dblclick();
    const preview = page.locator("#s3-egress-preview-result table");
    await preview.waitFor();
    assert.match(await preview.innerText(), /demo\/messages\/factory\/telemetry\/robot-125\/\d{4}-\d{2}-\d{2}\/[0-9A-Z]{26}/);
    await screenshotDialog(page, "#s3-egress-preview-result", "s3-egress-dialog.png");

    // The route input shows only what applies: message id and its autofill for Messages, batch fields for Batches.
    const messageIdRow = page.locator(".form-row:has(#node-input-messageId)");
    await page.locator("#node-input-input").selectOption("batches");
    await messageIdRow.waitFor({ state: "hidden" });
    assert.ok(await page.locator(".s3-egress-batches-only").first().isVisible());
    // Never overwrite applies to Messages only (batch objects are never replaced anyway).
    assert.equal(await page.locator("#node-input-neverOverwrite").isVisible(), false);
    await page.locator("#node-input-input").selectOption("messages");
    await messageIdRow.waitFor({ state: "visible" });
    assert.ok(await page.locator("#node-input-neverOverwrite").isVisible());
    assert.equal(await page.locator(".s3-egress-batches-only").first().isVisible(), false);

    // Live validation: a literal (string) workspace id that is not a GUID marks the field.
    const workspaceRow = page.locator(".form-row:has(#node-input-workspaceId)");
    await workspaceRow.locator("button.red-ui-typedInput-type-select").click();
    await page.locator('.red-ui-typedInput-options:visible a[value="str"]').click();
    const workspaceText = workspaceRow.locator("input.red-ui-typedInput-input");
    await workspaceText.fill("not-a-guid");
    await workspaceText.press("Tab");
    await workspaceRow.locator(".red-ui-typedInput-container.input-error").waitFor();
    await workspaceText.fill(WORKSPACE);
    await workspaceText.press("Tab");
    assert.equal(await workspaceRow.locator(".red-ui-typedInput-container.input-error").count(), 0);

    // The config dialog, filled as a user would: this test's s3rver and its keys.
    await page.locator("#node-input-btn-sink-edit").click();
    await page.locator("#node-config-input-bucket").fill(TEST_BUCKET);
    await page.locator("#node-config-input-endpoint").fill("ftp://nowhere");
    await page.locator("#node-config-input-endpoint").press("Tab");
    await page.locator("#node-config-input-endpoint.input-error").waitFor();
    // An endpoint with a path: the dialog says what the path does.
    await page.locator("#node-config-input-endpoint").fill("http://minio.local:9000/iot");
    await page.locator("#s3-egress-config-endpoint-path", { hasText: "Requests go below /iot" }).waitFor();
    await page.locator("#node-config-input-endpoint").fill(s3.endpoint);
    await page.locator("#node-config-input-endpoint").press("Tab");
    await page.locator("#s3-egress-config-endpoint-path").waitFor({ state: "hidden" });
    // A configuration without a bucket cannot be saved; the KMS key id shows for SSE-KMS only.
    await page.locator("#node-config-input-bucket").fill("");
    assert.ok(await page.locator("#node-config-dialog-ok").isDisabled());
    await page.locator("#node-config-input-bucket").fill(TEST_BUCKET);
    assert.equal(await page.locator("#node-config-dialog-ok").isDisabled(), false);
    assert.equal(await page.locator("#node-config-input-kmsKeyId").isVisible(), false);
    await page.locator("#node-config-input-serverSideEncryption").selectOption("aws:kms");
    assert.ok(await page.locator("#node-config-input-kmsKeyId").isVisible());
    await page.locator("#node-config-input-serverSideEncryption").selectOption("");
    assert.equal(await page.locator("#node-config-input-kmsKeyId").isVisible(), false);
    // Object Lock without a checksum cannot be saved: the dialog names both settings. The retention shows with a mode only.
    assert.equal(await page.locator("#node-config-input-checksum").inputValue(), "auto");
    assert.equal(await page.locator("#node-config-input-objectLockRetention").isVisible(), false);
    await page.locator("#node-config-input-objectLockMode").selectOption("COMPLIANCE");
    assert.ok(await page.locator("#node-config-input-objectLockRetention").isVisible());
    await page.locator("#s3-egress-config-lock-problem", { hasText: "objectLockRetention is required with objectLockMode COMPLIANCE" }).waitFor();
    assert.ok(await page.locator("#node-config-dialog-ok").isDisabled());
    await page.locator("#node-config-input-objectLockRetention").fill("365d");
    await page.locator("#s3-egress-config-lock-problem").waitFor({ state: "hidden" });
    assert.equal(await page.locator("#node-config-dialog-ok").isDisabled(), false);
    await page.locator("#node-config-input-checksum").selectOption("none");
    await page.locator("#s3-egress-config-lock-problem", { hasText: 'checksum "none" cannot be used with Object Lock (objectLockMode COMPLIANCE)' }).waitFor();
    assert.ok(await page.locator("#node-config-dialog-ok").isDisabled());
    await page.locator("#node-config-input-checksum").selectOption("auto");
    await page.locator("#node-config-input-objectLockMode").selectOption("");
    assert.equal(await page.locator("#node-config-dialog-ok").isDisabled(), false);
    await page.locator("#node-config-input-accessKeyId").fill("S3RVER");
    await page.locator("#node-config-input-secretAccessKey").fill("S3RVER");
    assert.equal(await page.locator("#node-config-input-endpoint.input-error").count(), 0);
    await screenshotDialog(page, ".s3-egress-config-dialog", "s3-egress-config-dialog.png");
    await page.locator("#node-config-dialog-ok").click();
    await page.locator("#node-dialog-ok").click();

    await page.locator("#red-ui-header-button-deploy").click();
    await page.locator(".red-ui-notification-success").first().waitFor();
    await page.locator(`[id="${INJECT_ID}"] .red-ui-flow-node-button`).click();

    const day = new Date().toISOString().slice(0, 10);
    const key = await firstKey(s3, `demo/messages/factory/telemetry/robot-125/`);
    assert.match(key, /^demo\/messages\/factory\/telemetry\/robot-125\/\d{4}-\d{2}-\d{2}\/[0-9A-HJKMNP-TV-Z]{26}$/);
    const stored = await s3.get(key);
    const segments = key.split("/");
    assert.ok([day, new Date(Date.now() - 60_000).toISOString().slice(0, 10)].includes(segments[5]), `batch id ${segments[5]} is today's UTC date`);
    assert.deepEqual(stored.metadata, {
      "stream-group-name": "factory",
      "stream-name": "telemetry",
      "device-id": "robot-125",
      "batch-id": segments[5],
      "message-id": segments[6],
      "workspace-id": WORKSPACE,
    });
    assert.equal(stored.contentType, "application/json");
    assert.equal(typeof JSON.parse(stored.body.toString("utf8")).temperature, "number");

    // The node status in the editor turns green with the count written.
    // The simulated devices keep writing: wait for a moment between writes, when it shows green with the count.
    await page.locator(`[id="${EGRESS_ID}"]:has(.red-ui-flow-node-status-dot-green) .red-ui-flow-node-status-label`, { hasText: /^ok \(\d+\)$/ }).waitFor();

    // The secret never comes back to the editor: reopening the config dialog shows a placeholder only.
    await closeTrays(page);
    await page.locator(`[id="${EGRESS_ID}"] .red-ui-flow-node`).dblclick();
    await page.locator("#node-input-btn-sink-edit").click();
    assert.notEqual(await page.locator("#node-config-input-secretAccessKey").inputValue(), "S3RVER");
    await page.locator("#node-config-dialog-cancel").click();
    await page.locator("#node-dialog-cancel").click();

    assert.deepEqual(browser.pageErrors, []);
  });

  it("a node dragged from the palette takes the only bucket configuration; a default inject fails it with every field to set named, in a red ring and under its label", async () => {
    const { page } = session;
    const chart = page.locator("#red-ui-workspace-chart");
    await page.locator('.red-ui-palette-node[data-palette-type="s3-egress"]').dragTo(chart, { targetPosition: { x: 520, y: 420 } });
    await page.locator('.red-ui-palette-node[data-palette-type="inject"]').dragTo(chart, { targetPosition: { x: 220, y: 420 } });
    const ids = await page.evaluate((known) => {
      const added = (type: string) => {
        let found: EditorNode | undefined;
        RED.nodes.eachNode((node) => {
          if (node.type === type && !known.includes(node.id)) found = node;
        });
        return found!;
      };
      const egress = added("s3-egress");
      const inject = added("inject");
      RED.nodes.addLink({ source: inject, sourcePort: 0, target: egress });
      RED.view.redraw();
      return { egress: egress.id, inject: inject.id, sink: egress.sink };
    }, [INJECT_ID]);
    assert.equal(ids.sink, CONFIG_ID, "the only s3-egress-config is chosen");
    assert.deepEqual(await invalidNodes(page), []);
    await deploy(page);
    await page.evaluate(() => RED.sidebar.show("debug"));
    await page.locator(`[id="${ids.inject}"] .red-ui-flow-node-button`).click();

    const missing = "missing msg.streamGroup, msg.stream, msg.deviceId, msg.batchId, msg.messageId";
    await page.locator(`[id="${ids.egress}"] .red-ui-flow-node-status-ring-red`).waitFor();
    assert.equal(await page.locator(`[id="${ids.egress}"] .red-ui-flow-node-status-label`).textContent(), `bad input: ${missing}`);
    // The debug sidebar lists the error whole, under the node's label.
    const entry = page.locator(".red-ui-debug-msg", { has: page.locator(".red-ui-debug-msg-name", { hasText: "node: S3 messages" }) }).last();
    await entry.waitFor();
    assert.equal(await entry.locator(".red-ui-debug-msg-type-string").first().innerText(), `"${missing}"`);
  });

  it("imports every other example through Import → Examples, one after the other, with no conflict prompt, and deploys with no 'not properly configured' prompt", async () => {
    const { page } = session;
    await importExample(page, "batches-from-simulated-devices", "S3 egress: batches");
    await importExample(page, "error-handling-with-catch-and-status", "S3 egress: error handling");
    await importExample(page, "mqtt-in-to-s3", "S3 egress: MQTT in");
    // A flow saved by an early version: nodes with none of the properties added since.
    await page.evaluate(
      ({ sink, z }) => {
        RED.nodes.import(
          [
            { id: "e2e00000000000b1", type: "s3-egress", z, name: "saved long ago", sink, x: 580, y: 700, wires: [[]] },
            { id: "e2e00000000000b2", type: "s3-egress-config", name: "saved long ago", bucket: "iot-data", region: "us-east-1" },
          ],
          { generateIds: false },
        );
        RED.nodes.dirty(true);
        RED.view.redraw(true);
      },
      { sink: CONFIG_ID, z: MESSAGES_TAB },
    );
    // Properties added after an example or flow was saved (absent from its JSON) validate as their defaults.
    assert.deepEqual(await invalidNodes(page), []);
    await deploy(page);

    // A bad msg turns the node's status into a red ring saying what is wrong.
    await page.locator("#red-ui-workspace-tabs .red-ui-tab", { hasText: "S3 egress: error handling" }).click();
    await press(page, BAD_INJECT_ID, "no device id");
    await page.locator(`[id="${BAD_EGRESS_ID}"] .red-ui-flow-node-status-ring-red`).waitFor();
    assert.equal(await page.locator(`[id="${BAD_EGRESS_ID}"] .red-ui-flow-node-status-label`).textContent(), "bad input: deviceId (msg.deviceId) is missing");

    // The palette shows this package's nodes beside Node-RED's own, nothing else.
    const modules = await page.evaluate(() => fetch("nodes", { headers: { Accept: "application/json" } }).then((response) => response.json() as Promise<{ module: string }[]>));
    assert.deepEqual([...new Set(modules.map((set) => set.module))].sort(), [PACKAGE, "node-red"]);
  });

  it("renders the help of both nodes with every property in its list, descriptions whole", async () => {
    const { page } = session;
    const egress = await renderedHelp(page, "s3-egress");
    const names = egress.properties.map((property) => property.name);
    for (const name of ["payload", "streamGroup", "stream", "deviceId", "batchId", "batchSliceId", "messageId", "workspaceId", "contentType", "complete", "s3"]) {
      assert.ok(names.includes(name), `s3-egress help lists ${name}: ${names.join(", ")}`);
    }
    const described = (name: string) => egress.properties.find((property) => property.name === name)!.description;
    assert.match(described("messageId"), /^Messages only: the last key segment/);
    assert.match(described("complete"), /^Batch Completions only: true completes/);
    assert.match(described("contentType"), /overrides the derived Content-Type/);

    const config = await renderedHelp(page, "s3-egress-config");
    assert.deepEqual(
      config.properties.map((property) => property.name),
      [
        "Bucket",
        "Region",
        "Endpoint",
        "Path-style addressing",
        "Access Key",
        "Secret Access Key",
        "Session token",
        "Storage class",
        "Encryption",
        "KMS key id",
        "Cache-Control",
        "Content-Type",
        "Checksum",
        "Object Lock",
        "Retain for",
        "Legal hold",
      ],
    );
    const pathStyle = config.properties.find((property) => property.name === "Path-style addressing")!;
    assert.equal(pathStyle.type, "boolean");
    assert.match(pathStyle.description, /^https:\/\/host\/bucket\/key instead of https:\/\/bucket\.host\/key; most S3-compatible services need it\.$/);
    for (const help of [egress, config]) {
      for (const property of help.properties) assert.ok(property.type && property.description, `${property.name} has a type and a description`);
      // Markdown's ": name (type) : description" syntax, where it did not apply, shows as raw text.
      assert.doesNotMatch(help.text, /(^|\n): /);
      assert.deepEqual(help.looseTerms, []);
    }
  });

  it("previews a batch as the node writes it: key, NDJSON Content-Type and the concatenated size of the sample msgs", async () => {
    const { page, s3, browser } = session;
    const readings = [
      { streamGroup: "factory", stream: "telemetry", deviceId: "press-7", batchId: "shift-1", payload: { temperature: 20.5 } },
      { streamGroup: "factory", stream: "telemetry", deviceId: "press-7", batchId: "shift-1", payload: { temperature: 21 } },
      { streamGroup: "factory", stream: "telemetry", deviceId: "press-7", batchId: "shift-1", payload: "text too", complete: true },
    ];
    await page.locator("#red-ui-workspace-tabs .red-ui-tab", { hasText: "S3 egress: messages" }).click();
    await page.evaluate(
      ({ sink, z, msgs }) => {
        RED.nodes.import(
          [
            { id: "e2e0000000000001", type: "inject", z, name: "send the batch", props: [{ p: "payload" }], payload: "", payloadType: "date", repeat: "", crontab: "", once: false, onceDelay: 0.1, topic: "", x: 160, y: 600, wires: [["e2e0000000000002"]] },
            { id: "e2e0000000000002", type: "function", z, name: "three readings", func: `return [${JSON.stringify(msgs)}];`, outputs: 1, x: 360, y: 600, wires: [["e2e0000000000003"]] },
            { id: "e2e0000000000003", type: "s3-egress", z, name: "batch to S3", sink, input: "batches", path: "e2e", concatenation: "newline", x: 580, y: 600, wires: [[]] },
          ],
          { generateIds: false },
        );
        RED.nodes.dirty(true);
        RED.view.redraw(true);
      },
      { sink: CONFIG_ID, z: MESSAGES_TAB, msgs: readings },
    );
    await closeTrays(page);
    await page.locator('[id="e2e0000000000003"] .red-ui-flow-node').dblclick();
    await page.locator("#s3-egress-preview-sample").fill(JSON.stringify(readings, null, 2));
    await page.locator("#s3-egress-preview-result td", { hasText: "e2e/batches/factory/telemetry/press-7/shift-1" }).waitFor();
    const rows = Object.fromEntries(
      await page.locator("#s3-egress-preview-result tr").evaluateAll((trs) => trs.map((tr) => [tr.children[0]?.textContent ?? "", tr.children[1]?.textContent ?? ""])),
    ) as Record<string, string>;
    const notifications = page.locator(".red-ui-notification");
    while ((await notifications.count()) > 0) await notifications.first().waitFor({ state: "detached" });
    await screenshotDialog(page, "#s3-egress-preview-result", "s3-egress-batch-preview.png");
    await page.locator("#node-dialog-ok").click();
    await deploy(page);
    await press(page, "e2e0000000000001", "send the batch");

    const key = await firstKey(s3, "e2e/batches/");
    assert.equal(key, rows.Key);
    const stored = await s3.get(key);
    assert.equal(stored.contentType, rows["Content-Type"]);
    assert.equal(String(stored.body.length), rows["Body bytes"]);
    assert.equal(stored.body.toString(), '{"temperature":20.5}\n{"temperature":21}\ntext too');
    assert.deepEqual(browser.pageErrors, []);
  });

  it("flags a concatenation this version does not know, naming it, shows it in the dialog, and previews a Parquet batch with its codec and schema", async () => {
    const { page, browser } = session;
    const id = "e2e0000000000011";
    await page.evaluate(
      ({ sink, z, id }) => {
        RED.nodes.import([{ id, type: "s3-egress", z, name: "unknown concatenation", sink, input: "batches", concatenation: "orc", x: 580, y: 700, wires: [[]] }], { generateIds: false });
        RED.nodes.dirty(true);
        RED.view.redraw(true);
      },
      { sink: CONFIG_ID, z: MESSAGES_TAB, id },
    );
    await closeTrays(page);
    // Read from the node itself: the editor's eachNode stops at a callback that returns false.
    const flagged = await page.evaluate((nodeId) => {
      const node = RED.nodes.node(nodeId);
      return { valid: node?.valid, errors: node?.validationErrors };
    }, id);
    assert.deepEqual(flagged, { valid: false, errors: ['concatenation "orc" is not a value this version knows (plain, none, newline, parquet)'] });
    await page.locator(`[id="${id}"] .red-ui-flow-node`).dblclick();
    const concatenation = page.locator("#node-input-concatenation");
    assert.equal(await concatenation.inputValue(), "orc", "the saved value shown, not a blank");
    assert.match(await concatenation.locator("option:checked").innerText(), /orc/);
    await concatenation.selectOption("parquet");
    await page.locator("#node-input-parquetCodec").waitFor({ state: "visible" });
    assert.equal(await page.locator("#node-input-compression").isVisible(), false, "gzip Content-Encoding does not apply to Parquet");
    await page.locator("#node-input-parquetSchema").fill('{"temperature": "float"}');
    await page.locator("#node-input-parquetSchema").blur();
    await page.locator("#node-input-parquetSchema.input-error").waitFor();
    await page.locator("#node-input-parquetSchema").fill('{"temperature": "double", "note": "string?"}');
    const readings = [
      { streamGroup: "factory", stream: "telemetry", deviceId: "press-7", batchId: "shift-2", payload: { temperature: 20.5 } },
      { streamGroup: "factory", stream: "telemetry", deviceId: "press-7", batchId: "shift-2", payload: { temperature: 21, note: "ok" } },
    ];
    await page.locator("#s3-egress-preview-sample").fill(JSON.stringify(readings, null, 2));
    await page.locator("#s3-egress-preview-result td", { hasText: "application/vnd.apache.parquet" }).waitFor();
    await page.locator("#node-dialog-cancel").click();
    assert.deepEqual(browser.pageErrors, []);
  });

  it("opens a node saved by an earlier version upgraded, and an imported node without key fields with theirs", async () => {
    const { page, browser } = session;
    // Saved with Attempts, a fixed number of writes in flight, and without the later properties.
    const saved = nodeOf(savedFlows().get("2026-11-25b-delivery.json")!, "s3-egress");
    const keyless: Record<string, unknown> = { ...EGRESS_DEFAULTS, name: "no key fields" };
    await page.evaluate(
      ({ sink, z, nodes }) => {
        RED.nodes.import(nodes.map((node, index) => ({ ...node, id: `e2e00000000002${index}`, type: "s3-egress", z, sink, x: 580, y: 800 + 60 * index, wires: [[]] })), { generateIds: false });
        RED.nodes.dirty(true);
        RED.view.redraw(true);
      },
      { sink: CONFIG_ID, z: MESSAGES_TAB, nodes: [{ ...saved, name: "saved before Give up after" }, keyless] },
    );
    await closeTrays(page);
    await page.locator('[id="e2e000000000020"] .red-ui-flow-node').dblclick();
    const shown = async (property: string) => page.locator(`#node-input-${property}`).inputValue();
    assert.deepEqual(
      { concurrency: await shown("concurrency"), giveUpAfter: await shown("giveUpAfter"), maxRetryDelay: await shown("maxRetryDelay"), maxBatchMemoryMB: await shown("maxBatchMemoryMB"), parquetCodec: await shown("parquetCodec") },
      { concurrency: "16", giveUpAfter: "", maxRetryDelay: "2", maxBatchMemoryMB: "32", parquetCodec: "snappy" },
    );
    await page.locator("#node-dialog-cancel").click();
    await page.locator('[id="e2e000000000021"] .red-ui-flow-node').dblclick();
    await page.locator("#node-input-streamGroup").waitFor({ state: "attached" });
    const fields = await page.evaluate(() => ["streamGroup", "deviceId"].map((field) => [$(`#node-input-${field}`).typedInput("value"), $(`#node-input-${field}`).typedInput("type")]));
    assert.deepEqual(fields, [["streamGroup", "msg"], ["deviceId", "msg"]]);
    await page.locator("#node-dialog-cancel").click();
    assert.deepEqual(browser.pageErrors, []);
  });
});
