// Saved flows outlive property changes: a property added to a node after a flow (or an example)
// was saved is absent from it. The editor bundles this file, so it stays free of Node.js APIs.

/** One entry of a node's `defaults` in the editor, as far as this file needs it. */
export interface PropertyDefinition {
  value?: unknown;
  // A method, so that validators typed for the editor's node (`this`) fit.
  validate?(this: unknown, value: unknown, options?: unknown): unknown;
}

/**
 * The node's property definitions, each validator judging an absent property as the default it
 * stands for (the runtime reads an absent property as its default too). Node-RED's import leaves
 * absent properties undefined, and a validator that refuses undefined would flag every flow saved
 * before the property existed. Validators keep their two arguments, so their reasons still show.
 */
export function absentMeansDefault<Defaults extends Record<string, PropertyDefinition>>(defaults: Defaults): Defaults {
  for (const definition of Object.values(defaults)) {
    const validate = definition.validate;
    if (!validate) continue;
    definition.validate = function (this: unknown, value: unknown, options?: unknown) {
      return validate.call(this, value === undefined ? definition.value : value, options);
    };
  }
  return defaults;
}

/** The properties `node` lacks, with their defaults: what the dialog fills in, so that saving stores them. */
export function absentProperties(node: Record<string, unknown>, defaults: Record<string, PropertyDefinition>): [string, unknown][] {
  return Object.entries(defaults)
    .filter(([property, definition]) => node[property] === undefined && definition.value !== undefined)
    .map(([property, definition]) => [property, definition.value]);
}
