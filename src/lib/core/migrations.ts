// Saved flows outlive property changes. Each node keeps an ordered list of migrations
// (src/<type>/migrations.ts), one per change of its saved properties; the runtime applies them to
// a node's properties before it reads them, and the dialog applies them when it opens, so that
// saving stores the upgraded form. The editor bundles this file: no Node.js APIs.

/** A node's saved properties, as the flow file holds them. */
export type SavedProperties = Record<string, unknown>;

export interface Migration {
  /** The change, as the flow it upgrades was saved before it (a fixture of that form is tested). */
  change: string;
  /**
   * Whether a node saved before the change still has the old form; a node saved after it, or one
   * already upgraded, does not, so applying the list twice changes nothing.
   */
  applies(saved: SavedProperties): boolean;
  /** The properties the change sets (undefined: removed), from the saved ones. */
  up(saved: SavedProperties): SavedProperties;
}

/** The node's properties upgraded by every migration that applies to them, in order; `saved` is left as it is. */
export function migrated<Saved extends object>(saved: Saved, migrations: readonly Migration[]): Saved {
  let properties = saved as SavedProperties;
  for (const migration of migrations) {
    if (!migration.applies(properties)) continue;
    properties = { ...properties, ...migration.up(properties) };
    for (const [name, value] of Object.entries(properties)) if (value === undefined) delete properties[name];
  }
  return properties as Saved;
}

/** The properties a migration adds: those of `defaults` the node lacks, with their defaults. */
export function added(defaults: Readonly<SavedProperties>): Pick<Migration, "applies" | "up"> {
  const names = Object.keys(defaults);
  return {
    applies: (saved) => names.some((name) => saved[name] === undefined),
    up: (saved) => Object.fromEntries(names.filter((name) => saved[name] === undefined).map((name) => [name, defaults[name]])),
  };
}

/** The defaults of `names` alone, for the migration that added them. */
export function defaultsOf<Defaults extends SavedProperties>(defaults: Defaults, ...names: (keyof Defaults & string)[]): SavedProperties {
  return Object.fromEntries(names.map((name) => [name, defaults[name]]));
}
