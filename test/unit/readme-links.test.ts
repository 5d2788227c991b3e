import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const ROOT = path.join(__dirname, "..", "..");

/** The Markdown pages users read: the README and whatever lies in docs/. */
function pages(): string[] {
  const docs = path.join(ROOT, "docs");
  const inDocs = existsSync(docs) ? readdirSync(docs).filter((name) => name.endsWith(".md")).map((name) => path.join("docs", name)) : [];
  return ["README.md", ...inDocs];
}

/** Markdown without its fenced code blocks, where a `](` is code, not a link. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");
}

/** The anchors GitHub and npm give a page's headings: lowercase, punctuation dropped, spaces as hyphens, repeats numbered. */
function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, text] of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = text
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return anchors;
}

describe("links between the README and docs/", () => {
  it("makes anchors as GitHub does", () => {
    assert.deepEqual([...headingAnchors("# A b\n## Writes in flight: `auto`\n### `s3-egress` (the sink)\n## A b\n```\n# not a heading\n```\n")], [
      "a-b",
      "writes-in-flight-auto",
      "s3-egress-the-sink",
      "a-b-1",
    ]);
  });

  for (const page of pages()) {
    it(`${page}: every relative link names a file that exists and a heading that exists`, () => {
      const text = readFileSync(path.join(ROOT, page), "utf8");
      const broken: string[] = [];
      for (const [, target] of prose(text).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        const [file, anchor] = target.split("#", 2) as [string, string | undefined];
        const linked = file === "" ? page : path.join(path.dirname(page), decodeURIComponent(file));
        if (!existsSync(path.join(ROOT, linked))) {
          broken.push(`${target}: no file ${linked}`);
          continue;
        }
        if (anchor !== undefined && linked.endsWith(".md") && !headingAnchors(readFileSync(path.join(ROOT, linked), "utf8")).has(anchor)) {
          broken.push(`${target}: no heading #${anchor} in ${linked}`);
        }
      }
      assert.deepEqual(broken, []);
    });
  }
});
