import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";
/** Screenshots of the browser tests (git-ignored); those of the README and docs/ are copied there from here. */
export const SCREENSHOTS = path.join(__dirname, "..", "..", ".screenshots");

export interface EditorBrowser {
  context: BrowserContext;
  page: Page;
  /** Uncaught errors of the page. */
  pageErrors: string[];
  close(): Promise<void>;
}

/** Debian's Chromium, headless, in a throwaway profile, with no background traffic of its own. */
export async function openChromium(viewport: { width: number; height: number }): Promise<EditorBrowser> {
  // Fail loudly rather than skip: CI installs Chromium in .ci/run.
  assert.ok(existsSync(CHROMIUM), `Chromium is missing at ${CHROMIUM}: install it with apt-get install chromium (.ci/run does)`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  const profile = mkdtempSync(path.join(tmpdir(), "s3-egress-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  const pageErrors: string[] = [];
  page.on("pageerror", (error) => pageErrors.push(error.message));
  return {
    context,
    page,
    pageErrors,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
