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

/** The relative links of a page (not in code), each as the repository path of its file and its anchor, if any. */
function relativeLinks(page: string): { target: string; file: string; anchor: string | undefined }[] {
  const text = readFileSync(path.join(ROOT, page), "utf8");
  const links: { target: string; file: string; anchor: string | undefined }[] = [];
  for (const [, target] of prose(text).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    const [file, anchor] = target.split("#", 2) as [string, string | undefined];
    links.push({ target, file: file === "" ? page : path.posix.join(path.posix.dirname(page), decodeURIComponent(file)), anchor });
  }
  return links;
}

/** package.json "files" as patterns: `**` any folders, `*` any name part. */
function shippedPatterns(): RegExp[] {
  const { files } = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")) as { files: string[] };
  return files.map((glob) => {
    const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
    const source = escaped.split("**/").map((part) => part.replace(/\*/g, "[^/]*")).join("(?:.*/)?");
    return new RegExp(`^${source}$`);
  });
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

  it("finds the docs pages (the checks below are not vacuous)", () => {
    assert.ok(pages().length > 1, "no docs/*.md page");
  });

  for (const page of pages()) {
    it(`${page}: every relative link names a file that exists and a heading that exists`, () => {
      const broken: string[] = [];
      for (const { target, file, anchor } of relativeLinks(page)) {
        if (!existsSync(path.join(ROOT, file))) {
          broken.push(`${target}: no file ${file}`);
          continue;
        }
        if (anchor !== undefined && file.endsWith(".md") && !headingAnchors(readFileSync(path.join(ROOT, file), "utf8")).has(anchor)) {
          broken.push(`${target}: no heading #${anchor} in ${file}`);
        }
      }
      assert.deepEqual(broken, []);
    });
  }

  it("the README links to every docs page, and every docs page links back to the README", () => {
    const fromReadme = new Set(relativeLinks("README.md").map((link) => link.file));
    const docs = pages().filter((page) => page !== "README.md");
    assert.deepEqual(docs.filter((page) => !fromReadme.has(page)), [], "docs pages the README does not link to");
    assert.deepEqual(docs.filter((page) => !relativeLinks(page).some((link) => link.file === "README.md")), [], "docs pages without a link to the README");
  });

  it("ships every page the README and the docs pages link to, so the links work in the installed package too", () => {
    const shipped = shippedPatterns();
    const unshipped = pages()
      .flatMap((page) => relativeLinks(page).map((link) => ({ page, file: link.file })))
      .filter(({ file }) => file.endsWith(".md") && !shipped.some((pattern) => pattern.test(file)));
    assert.deepEqual(unshipped, []);
    for (const page of pages()) assert.ok(shipped.some((pattern) => pattern.test(page)), `${page} is not in package.json "files"`);
  });

  it("keeps the README to a page: at most 300 lines", () => {
    const lines = readFileSync(path.join(ROOT, "README.md"), "utf8").trimEnd().split("\n").length;
    assert.ok(lines <= 300, `README.md has ${lines} lines`);
  });
});
