import type { Node, NodeAPI, NodeMessage } from "node-red";
import { FIELD_NAMES, type FieldName, type RawFields } from "../core/record";

/** A field's TypedInput as stored on the node: `<field>` and `<field>Type`. */
export interface TypedValue {
  value: string;
  type: string;
}

type Getter = (msg: NodeMessage) => unknown | Promise<unknown>;

/**
 * Reads the key fields of a msg from their TypedInputs. Each source is compiled once at deploy:
 * msg properties are plain lookups, str/num/env are constants, flow/global/jsonata are evaluated
 * per msg. Fields are read synchronously unless a source needs a callback.
 */
export class FieldReader {
  private readonly getters: [FieldName, Getter][];
  private readonly synchronous: boolean;
  /** Each field's source as the user would write it, e.g. "msg.deviceId", for error texts. */
  readonly sources: Partial<Record<FieldName, string>> = {};

  constructor(RED: NodeAPI, node: Node, config: Partial<Record<FieldName, TypedValue>>) {
    this.getters = [];
    let synchronous = true;
    for (const field of FIELD_NAMES) {
      const typed = config[field];
      if (!typed || typed.value === "") continue;
      this.sources[field] = sourceLabel(typed);
      const getter = compile(RED, node, typed);
      synchronous &&= getter.synchronous;
      this.getters.push([field, getter.read]);
    }
    this.synchronous = synchronous;
  }

  read(msg: NodeMessage): RawFields | Promise<RawFields> {
    if (this.synchronous) {
      const raw: RawFields = {};
      for (const [field, read] of this.getters) raw[field] = read(msg);
      return raw;
    }
    return Promise.all(this.getters.map(([, read]) => read(msg))).then((values) => {
      const raw: RawFields = {};
      this.getters.forEach(([field], index) => (raw[field] = values[index]));
      return raw;
    });
  }
}

/** A field's source as the user would write it: "msg.deviceId", "env.SITE", or a literal in quotes. */
export function sourceLabel({ value, type }: TypedValue): string {
  return type === "str" ? `"${value}"` : `${type}.${value}`;
}

/** A msg property that is no path: no dots, brackets or quotes to parse. */
const TOP_LEVEL_PROPERTY = /^[A-Za-z_$][\w$]*$/;

function compile(RED: NodeAPI, node: Node, { value, type }: TypedValue): { read: Getter; synchronous: boolean } {
  switch (type) {
    case "msg":
      // A top-level property (the defaults, msg.deviceId and the like) is read directly; a path is parsed per msg by Node-RED.
      if (TOP_LEVEL_PROPERTY.test(value)) return { read: (msg) => (msg as Record<string, unknown>)[value], synchronous: true };
      return { read: (msg) => RED.util.getMessageProperty(msg, value), synchronous: true };
    case "str":
      return { read: () => value, synchronous: true };
    case "num":
    case "env": {
      const constant: unknown = RED.util.evaluateNodeProperty(value, type, node, {});
      return { read: () => constant, synchronous: true };
    }
    case "jsonata": {
      const expression = RED.util.prepareJSONataExpression(value, node);
      return {
        read: (msg) =>
          new Promise((resolve, reject) =>
            RED.util.evaluateJSONataExpression(expression, msg, (error, result) => (error ? reject(error) : resolve(result))),
          ),
        synchronous: false,
      };
    }
    default:
      // flow and global: the context store may be asynchronous, so use the callback form.
      return {
        read: (msg) =>
          new Promise((resolve, reject) =>
            RED.util.evaluateNodeProperty(value, type, node, msg, (error, result) => (error ? reject(error) : resolve(result))),
          ),
        synchronous: false,
      };
  }
}
