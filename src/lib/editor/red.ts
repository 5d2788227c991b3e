// The part of Node-RED's editor API (4.x and 5.x) the dialogs and the sidebar use, typed as they
// use it. The published @types/node-red__editor-client describe 1.3 (validators that may not
// return a reason, callbacks that must return a boolean), so these few are declared here.

/** A node (or config node) of the workspace, as its editor callbacks see it through `this`. */
export interface EditorNode {
  id: string;
  type: string;
  z?: string;
  name?: string;
  /** Text of the node's own catalog. */
  _(key: string, substitutions?: Record<string, unknown>): string;
  [property: string]: unknown;
}

/** Since Node-RED 3.0 a validator may return the reason as text instead of `false`. */
export type Validator = (this: EditorNode, value: unknown, options?: unknown) => boolean | string;

export interface PropertyDefinition {
  value: unknown;
  required?: boolean;
  type?: string;
  validate?: Validator;
}

export type PropertyDefinitions = Record<string, PropertyDefinition>;

export interface NodeDefinition {
  category: string;
  defaults: PropertyDefinitions;
  credentials?: Record<string, { type: "text" | "password" }>;
  color?: string;
  inputs?: 0 | 1;
  outputs?: number;
  icon?: string;
  align?: "left" | "right";
  paletteLabel?: string;
  label?: (this: EditorNode) => string;
  labelStyle?: (this: EditorNode) => string;
  inputLabels?: (this: EditorNode) => string;
  outputLabels?: (this: EditorNode) => string;
  onadd?: (this: EditorNode) => void;
  oneditprepare?: (this: EditorNode) => void;
  oneditsave?: (this: EditorNode) => void;
}

/** A flow tab or subflow. */
interface Workspace {
  label?: string;
  name?: string;
}

export interface PluginDefinition {
  onadd: (this: { _(key: string, substitutions?: Record<string, unknown>): string }) => void;
}

export interface EditorRED {
  _(key: string, substitutions?: Record<string, unknown>): string;
  validators: { number(blankAllowed?: boolean): Validator };
  nodes: {
    eachNode(visit: (node: EditorNode) => boolean | void): void;
    eachConfig(visit: (node: EditorNode) => boolean | void): void;
    node(id: string): EditorNode | null;
    workspace(id: string | undefined): Workspace | undefined;
    subflow(id: string | undefined): Workspace | undefined;
  };
  plugins: { registerPlugin(id: string, definition: PluginDefinition): void };
  sidebar: {
    addTab(tab: { id: string; label: string; name: string; iconClass: string; content: JQuery; enableOnEdit?: boolean; onchange?: () => void }): void;
  };
  comms: { subscribe(topic: string, receive: (topic: string, message: unknown) => void): void };
  events: { on(event: string, handler: () => void): void };
  view: { reveal(id: string): void };
  utils: { getNodeLabel(node: EditorNode, defaultLabel?: string): string };
}

/** One entry of a TypedInput's `types`: a built-in type's name or a type of its own. */
export type TypedInputType = string | { value: string; label: string; icon?: string; validate?: (value: string) => boolean | string };

declare global {
  const RED: EditorRED;
  interface JQuery {
    typedInput(options: { types: TypedInputType[]; typeField: string }): JQuery;
    typedInput(method: "value" | "type"): string;
  }
}
