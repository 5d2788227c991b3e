// What both node dialogs do alike.
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
 * Properties the saved node lacks (it was saved before they existed) show their defaults in the
 * dialog, so that saving stores them. `inputPrefix` is "node-input-" or "node-config-input-".
 */
export function showAbsentDefaults(node: Record<string, unknown>, defaults: PropertyDefinitions, inputPrefix: string): void {
  for (const [property, value] of absentProperties(node, defaults)) {
    const input = $(`#${inputPrefix}${property}`);
    if (input.is(":checkbox")) input.prop("checked", value === true);
    else input.val(String(value));
  }
}
