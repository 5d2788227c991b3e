// What both node dialogs do alike.
import { type Migration, migrated } from "../core/migrations";
import { absentProperties } from "../core/saved-properties";
import type { PropertyDefinitions } from "./red";

const MODULE = "@iot-sinks/node-red-s3-egress";

/**
 * Texts of one node type's catalog, for code that runs outside the node's own `_` (validators
 * are called with the node being validated, which may be of any state).
 */
export function catalogOf(type: string): (key: string, substitutions?: Record<string, unknown>) => string {
  return (key, substitutions) => RED._(`${MODULE}/${type}:${type}.${key}`, substitutions);
}

/**
 * A node saved by an earlier version opens upgraded: its dialog shows what the migrations make of
 * its properties (those added since it was saved, with their defaults; those changed, converted),
 * and any property still missing (a hand-written or imported node) as its default, so that saving
 * stores them. `inputPrefix` is "node-input-" or "node-config-input-".
 */
export function showUpgraded(node: Record<string, unknown>, migrations: readonly Migration[], defaults: PropertyDefinitions, inputPrefix: string): void {
  // A copy: when no migration applies, migrated() gives the node itself, which the dialog must not change.
  const upgraded = { ...migrated(node, migrations) };
  for (const [property, value] of absentProperties(upgraded, defaults)) upgraded[property] = value;
  for (const [property, value] of Object.entries(upgraded)) {
    if (value === node[property]) continue;
    const input = $(`#${inputPrefix}${property}`);
    if (input.is(":checkbox")) input.prop("checked", value === true);
    else input.val(String(value));
  }
}
