// The editor as a person uses it, in Debian's Chromium: the packed package installed into a fresh
// Node-RED user directory, an example imported through Import → Examples, the config dialog
// filled in, deploy, inject, and the object read back from s3rver. Run by `npm run test:e2e`.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { type EditorBrowser, openChromium, SCREENSHOTS } from "../support/chromium";
import { installPackedPackage, type NodeRedProcess, startNodeRedProcess } from "../support/packed";
import { LocalS3, TEST_BUCKET } from "../support/s3";

const PACKAGE = "@iot-sinks/node-red-s3-egress";
// Node ids of examples/messages-from-simulated-devices.json.
const INJECT_ID = "6f1d0c2a8e4b1002";
const EGRESS_ID = "6f1d0c2a8e4b1004";
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

/** Screenshots the open edit tray from its title down to the end of `content` (for the README). */
async function screenshotDialog(page: Page, content: string, file: string): Promise<void> {
  const tray = await page.locator(".red-ui-tray").last().boundingBox();
  const dialog = await page.locator(content).boundingBox();
  assert.ok(tray && dialog, `${content} is on screen`);
  const height = Math.min(dialog.y + dialog.height + 16, tray.y + tray.height) - tray.y;
  await page.screenshot({ path: path.join(SCREENSHOTS, file), clip: { x: tray.x, y: tray.y, width: tray.width, height } });
}

describe("editor in Chromium (packed package, Import → Examples, deploy, inject)", function () {
  this.timeout(180_000);
  let s3: LocalS3;
  let userDir: string;
  let nodeRed: NodeRedProcess;
  let browser: EditorBrowser;
  let page: Page;

  before(async () => {
    s3 = await LocalS3.start();
    userDir = mkdtempSync(path.join(tmpdir(), "s3-egress-e2e-"));
    installPackedPackage(userDir);
    nodeRed = await startNodeRedProcess(userDir);
    browser = await openChromium({ width: 1400, height: 1500 });
    page = browser.page;
  });

  afterEach(async function () {
    // What the browser showed when a step failed, to see why.
    if (this.currentTest?.state === "failed") await page.screenshot({ path: path.join(SCREENSHOTS, "failure.png") });
  });

  after(async () => {
    await browser?.close();
    await nodeRed?.stop();
    await s3?.stop();
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });

  it("imports the example, configures the bucket in the dialog, deploys, and the inject lands an object with the seed's key and metadata", async () => {
    await page.goto(nodeRed.url);
    await page.locator('.red-ui-palette-node[data-palette-type="s3-egress"]').waitFor();

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
    await page.locator("#node-input-input").selectOption("messages");
    await messageIdRow.waitFor({ state: "visible" });
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
    await page.locator("#node-config-input-endpoint").fill(s3.endpoint);
    await page.locator("#node-config-input-endpoint").press("Tab");
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
    const status = page.locator(`[id="${EGRESS_ID}"] .red-ui-flow-node-status-dot-green`);
    await status.waitFor();
    assert.match(await page.locator(`[id="${EGRESS_ID}"] .red-ui-flow-node-status-label`).textContent() ?? "", /^ok \(\d+\)$/);

    // The secret never comes back to the editor: reopening the config dialog shows a placeholder only.
    await page.locator(`[id="${EGRESS_ID}"] .red-ui-flow-node`).dblclick();
    await page.locator("#node-input-btn-sink-edit").click();
    assert.notEqual(await page.locator("#node-config-input-secretAccessKey").inputValue(), "S3RVER");
    await page.locator("#node-config-dialog-cancel").click();
    await page.locator("#node-dialog-cancel").click();

    assert.deepEqual(browser.pageErrors, []);
  });
});
