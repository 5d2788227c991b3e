// The "S3 egress" sidebar tab in Debian's Chromium: the packed package in a fresh Node-RED, two sinks
// deployed, the tab opened from the sidebar's tab menu; the inject button raises a node's count, and
// clicking its row reveals the node. Run by `npm run test:e2e`; the screenshot is docs/monitoring.md's.
import assert from "node:assert/strict";
import path from "node:path";
import { SCREENSHOTS } from "../support/chromium";
import { editorSession } from "../support/editor-session";
import { CREDENTIALS, TEST_BUCKET } from "../support/s3";


/** A tab with an inject node wired to an s3-egress node; `repeat` in seconds, or none for the button only. */
function sinkFlow(suffix: string, label: string, name: string, repeat: string): Record<string, unknown>[] {
  const fields = ["streamGroup", "stream", "deviceId", "batchId"].map((p) => ({ p, v: `${label.toLowerCase()}-${p}`, vt: "str" }));
  return [
    { id: `t${suffix}`, type: "tab", label },
    { id: `i${suffix}`, type: "inject", z: `t${suffix}`, name: "reading", props: [{ p: "payload", v: '{"t":21.5}', vt: "json" }, ...fields], repeat, once: false, x: 140, y: 80, wires: [[`e${suffix}`]] },
    { id: `e${suffix}`, type: "s3-egress", z: `t${suffix}`, name, sink: "c1", input: "messages", concurrency: 16, messageIdAutofill: "auto", x: 360, y: 80, wires: [[]] },
  ];
}

describe("sidebar tab S3 egress in Chromium (packed package)", function () {
  this.timeout(180_000);
  const session = editorSession({ width: 1400, height: 900 });

  before(async () => {
    const flows = [
      ...sinkFlow("1", "Plant", "plant sink", ""),
      ...sinkFlow("2", "Fleet", "fleet sink", "0.5"),
      { id: "c1", type: "s3-egress-config", name: "test S3", bucket: TEST_BUCKET, region: "us-east-1", endpoint: session.s3.endpoint, forcePathStyle: true, credentials: CREDENTIALS },
    ];
    const deployed = await fetch(`${session.nodeRed.url}/flows`, { method: "POST", headers: { "content-type": "application/json", "node-red-deployment-type": "full" }, body: JSON.stringify(flows) });
    assert.ok(deployed.ok, `deploy answered ${deployed.status}`);
  });

  it("lists both sinks; an inject raises the plant sink's count, which matches the bucket; clicking the row reveals the node", async () => {
    const { page, s3, browser } = session;
    await session.openEditor();

    // Open the tab as a person does: Node-RED 5 shows each sidebar tab as a button of its tab bar;
    // Node-RED 4 lists them in the sidebar's tab menu.
    await page.locator("#red-ui-sidebar").waitFor();
    const tabButton = page.locator('button[data-tab-id="s3-egress-monitor"]');
    if ((await tabButton.count()) > 0) {
      await tabButton.click();
    } else {
      await page.locator("#red-ui-sidebar .red-ui-tab-link-button-menu").click();
      await page.locator("#red-ui-tabs-menu-option-s3-egress-monitor").click();
    }
    const plant = page.locator('.s3-egress-monitor-row[data-node-id="e1"]');
    const fleet = page.locator('.s3-egress-monitor-row[data-node-id="e2"]');
    await plant.waitFor();
    assert.equal(await plant.locator(".s3-egress-monitor-name").textContent(), "plant sink");
    assert.equal(await fleet.locator(".s3-egress-monitor-flow").textContent(), "Fleet");
    const plantWritten = plant.locator('dd[data-figure="written"]');
    await page.waitForFunction(() => document.querySelector('.s3-egress-monitor-row[data-node-id="e1"] dd[data-figure="written"]')?.textContent === "0 · 0 B");

    // The plant sink writes once per press of its inject button; the row follows within a second or two.
    await page.locator("#red-ui-workspace-tabs .red-ui-tab", { hasText: "Plant" }).click();
    for (let press = 1; press <= 2; press++) {
      await page.locator('[id="i1"] .red-ui-flow-node-button').click();
      await page.waitForFunction((count) => document.querySelector('.s3-egress-monitor-row[data-node-id="e1"] dd[data-figure="written"]')?.textContent?.startsWith(`${count} · `), press);
    }
    assert.equal((await s3.keys("messages/plant-streamGroup/")).length, 2);
    assert.match((await plantWritten.textContent()) ?? "", /^2 · \d+ B$/);

    // The fleet sink's own inject repeats: its sparkline rises and its count grows.
    await page.waitForFunction(() => Number(document.querySelector('.s3-egress-monitor-row[data-node-id="e2"] dd[data-figure="written"]')?.textContent?.split(" ")[0]) >= 10);
    const sparkline = fleet.locator("svg.s3-egress-monitor-spark");
    const peak = Number((await sparkline.getAttribute("viewBox"))?.split(" ")[3]);
    const perSecond = ((await sparkline.locator("polyline").getAttribute("points")) ?? "").split(" ").map((point) => peak - Number(point.split(",")[1]));
    assert.ok(Math.max(...perSecond) >= 1, `the sparkline rises to at least one object per second: ${perSecond.join(" ")}`);
    await page.locator("#red-ui-sidebar").screenshot({ path: path.join(SCREENSHOTS, "s3-egress-sidebar.png") });

    // A click on a row reveals that node: its flow opens.
    await fleet.click();
    await page.locator("#red-ui-workspace-tabs .red-ui-tab.active", { hasText: "Fleet" }).waitFor();
    await page.locator('[id="e2"] .red-ui-flow-node').waitFor();
    assert.deepEqual(browser.pageErrors, []);
  });
});
