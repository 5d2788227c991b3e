// Flows as earlier versions of the package saved them (test/fixtures/saved-flows/<date>-<change>.json):
// every property each version's dialog stored, and none it did not know yet.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";

export type SavedNode = Record<string, unknown> & { id: string; type: string };

const SAVED_FLOWS = path.join(__dirname, "..", "..", "test", "fixtures", "saved-flows");

/** Each fixture by its file name, oldest first. */
export function savedFlows(): Map<string, SavedNode[]> {
  const flows = new Map<string, SavedNode[]>();
  for (const file of readdirSync(SAVED_FLOWS).filter((name) => name.endsWith(".json")).sort()) {
    flows.set(file, JSON.parse(readFileSync(path.join(SAVED_FLOWS, file), "utf8")) as SavedNode[]);
  }
  return flows;
}

/** The one node of `type` in a flow. */
export function nodeOf(flow: SavedNode[], type: string): SavedNode {
  return flow.find((node) => node.type === type)!;
}
