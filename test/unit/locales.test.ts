import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

const LOCALES = path.join(__dirname, "..", "..", "nodes", "locales");

/** Every text key of a catalog, as dotted paths. */
function keysOf(catalog: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(catalog).flatMap(([name, value]) =>
    typeof value === "object" && value !== null ? keysOf(value as Record<string, unknown>, `${prefix}${name}.`) : [`${prefix}${name}`],
  );
}

function catalog(locale: string, file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(LOCALES, locale, file), "utf8")) as Record<string, unknown>;
}

function textAt(entry: Record<string, unknown>, key: string): string {
  return String(key.split(".").reduce<unknown>((value, part) => (value as Record<string, unknown>)[part], entry));
}

function substitutions(text: string): string[] {
  return (text.match(/__\w+__/g) ?? []).sort();
}

describe("locales", () => {
  for (const locale of readdirSync(LOCALES).filter((name) => name !== "en-US")) {
    for (const file of readdirSync(path.join(LOCALES, "en-US"))) {
      it(`${locale}/${file} translates exactly the keys of en-US/${file}, keeping their substitutions`, () => {
        const english = catalog("en-US", file);
        const translated = catalog(locale, file);
        const englishKeys = keysOf(english);
        const translatedKeys = keysOf(translated);
        assert.deepEqual(
          { missing: englishKeys.filter((key) => !translatedKeys.includes(key)), unknown: translatedKeys.filter((key) => !englishKeys.includes(key)) },
          { missing: [], unknown: [] },
        );
        // A substitution (__name__) lost in translation would show as a blank.
        for (const key of englishKeys) {
          assert.deepEqual(substitutions(textAt(translated, key)), substitutions(textAt(english, key)), `${locale}/${file} ${key}`);
        }
      });
    }
  }
});
