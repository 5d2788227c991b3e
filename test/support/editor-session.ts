import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Page } from "playwright-core";
import { type EditorBrowser, openChromium, SCREENSHOTS } from "./chromium";
import { installPackedPackage, type NodeRedProcess, startNodeRedProcess } from "./packed";
import { LocalS3 } from "./s3";

export interface EditorSession {
  s3: LocalS3;
  /** Node-RED in its own process, with the packed package installed into a fresh user directory. */
  nodeRed: NodeRedProcess;
  browser: EditorBrowser;
  /** browser.page */
  page: Page;
  /** Opens the editor on the page and waits until the palette shows the package's nodes. */
  openEditor(): Promise<void>;
}

/**
 * Registers mocha hooks for the browser tests of one describe block: s3rver, the packed package in
 * a fresh Node-RED, and Debian's Chromium at `viewport` (the editor not yet opened). A failed
 * test's screen is saved to SCREENSHOTS, to see why; all is stopped and removed after the block.
 */
export function editorSession(viewport: { width: number; height: number }): EditorSession {
  const session = {
    async openEditor() {
      await session.page.goto(session.nodeRed.url);
      await session.page.locator('.red-ui-palette-node[data-palette-type="s3-egress"]').waitFor();
    },
  } as EditorSession;
  let userDir: string | undefined;
  before(async () => {
    session.s3 = await LocalS3.start();
    userDir = mkdtempSync(path.join(tmpdir(), "s3-egress-e2e-"));
    installPackedPackage(userDir);
    session.nodeRed = await startNodeRedProcess(userDir);
    session.browser = await openChromium(viewport);
    session.page = session.browser.page;
  });
  afterEach(async function () {
    if (this.currentTest?.state === "failed") {
      await session.page.screenshot({ path: path.join(SCREENSHOTS, `failure-${this.currentTest.title.slice(0, 24).replace(/\W+/g, "-")}.png`) });
    }
  });
  after(async () => {
    await session.browser?.close();
    await session.nodeRed?.stop();
    await session.s3?.stop();
    if (userDir) rmSync(userDir, { recursive: true, force: true });
  });
  return session;
}
