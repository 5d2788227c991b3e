import helper from "node-red-node-test-helper";
import type { Node, NodeMessage, NodeStatus } from "node-red";
import { NODE_RED_RUNTIME } from "./runtime";
import { CREDENTIALS, TEST_BUCKET } from "./s3";

import { readFileSync } from "node:fs";
import path from "node:path";
import type { NodeAPI } from "node-red";

const NODES = path.join(__dirname, "..", "..", "nodes");

/**
 * The node module with RED._ reading its real en-US catalog: the test helper's own RED._ returns
 * keys, and the tests check the texts users see.
 */
function withCatalog(type: string): (RED: NodeAPI) => void {
  const register = require(path.join(NODES, `${type}.js`)) as (RED: NodeAPI) => void;
  const catalog = JSON.parse(readFileSync(path.join(NODES, "locales", "en-US", `${type}.json`), "utf8"));
  const translate = (key: string, substitutions: Record<string, unknown> = {}): string => {
    const text = key.split(".").reduce((entry, part) => entry?.[part], catalog);
    if (typeof text !== "string") return key;
    return text.replace(/__(\w+)__/g, (_, name: string) => String(substitutions[name]));
  };
  return (RED) => register(Object.assign(Object.create(RED), { _: translate }));
}

export const configNode = withCatalog("s3-egress-config");
export const egressNode = withCatalog("s3-egress");

helper.init(NODE_RED_RUNTIME);

export type Msg = NodeMessage & Record<string, unknown>;

export interface CaughtError {
  message: string;
  msg: Msg;
}

/** A deployed flow: config node, one s3-egress node, and helper nodes that collect its output, errors and status. */
export class EgressFlow {
  readonly outputs: Msg[] = [];
  readonly errors: CaughtError[] = [];
  readonly statuses: NodeStatus[] = [];
  private waiters = new Map<string, { resolve: (msg: Msg) => void; reject: (error: CaughtError) => void }>();
  private doneWaiters = new Map<string, { resolve: (msg: Msg) => void; reject: (error: CaughtError) => void }>();
  private outputWaiters: { test: (msg: Msg) => boolean; resolve: (msg: Msg) => void }[] = [];
  private errorWaiters: { test: (error: CaughtError) => boolean; resolve: (error: CaughtError) => void }[] = [];
  private statusWaiters: { test: (status: NodeStatus) => boolean; resolve: (status: NodeStatus) => void }[] = [];

  private constructor(
    public egress: Node,
    private readonly flow: Record<string, unknown>[],
    private readonly credentials: Record<string, string>,
  ) {
    helper.getNode("out").on("input", (msg: Msg) => {
      this.outputs.push(msg);
      this.settle(String(msg._msgid), (waiter) => waiter.resolve(msg));
      this.outputWaiters = this.outputWaiters.filter((waiter) => !(waiter.test(msg) && (waiter.resolve(msg), true)));
    });
    helper.getNode("completed").on("input", (msg: Msg) => {
      const waiter = this.doneWaiters.get(String(msg._msgid));
      this.doneWaiters.delete(String(msg._msgid));
      waiter?.resolve(msg);
    });
    helper.getNode("caught").on("input", (msg: Msg) => {
      const error = { message: String((msg.error as { message?: string }).message), msg };
      this.errors.push(error);
      this.settle(String(msg._msgid), (waiter) => waiter.reject(error));
      const doneWaiter = this.doneWaiters.get(String(msg._msgid));
      this.doneWaiters.delete(String(msg._msgid));
      doneWaiter?.reject(error);
      this.errorWaiters = this.errorWaiters.filter((waiter) => !(waiter.test(error) && (waiter.resolve(error), true)));
    });
    helper.getNode("statuses").on("input", (msg: Msg) => {
      const status = msg.status as NodeStatus;
      this.statuses.push(status);
      this.statusWaiters = this.statusWaiters.filter((waiter) => !(waiter.test(status) && (waiter.resolve(status), true)));
    });
  }

  static async load(
    endpoint: string,
    egressProps: Record<string, unknown> = {},
    configProps: Record<string, unknown> = {},
    credentials: Record<string, string> = CREDENTIALS,
  ): Promise<EgressFlow> {
    // Catch and Status nodes come first, so they see what the egress node reports at start.
    const flow = [
      { id: "tab", type: "tab", label: "test" },
      { id: "out", type: "helper", z: "tab" },
      // Unscoped, so redeploying the egress node alone leaves it running to see what the closing node reports.
      { id: "errors-catch", type: "catch", z: "tab", scope: null, uncaught: false, wires: [["caught"]] },
      { id: "caught", type: "helper", z: "tab" },
      { id: "status-watch", type: "status", z: "tab", scope: ["egress"], wires: [["statuses"]] },
      { id: "statuses", type: "helper", z: "tab" },
      { id: "complete-watch", type: "complete", z: "tab", scope: ["egress"], uncaught: false, wires: [["completed"]] },
      { id: "completed", type: "helper", z: "tab" },
      { id: "cfg", type: "s3-egress-config", bucket: TEST_BUCKET, region: "us-east-1", endpoint, forcePathStyle: true, ...configProps },
      { id: "egress", type: "s3-egress", z: "tab", sink: "cfg", wires: [["out"]], ...egressProps },
    ];
    await helper.load([configNode, egressNode], flow, { cfg: credentials });
    return new EgressFlow(helper.getNode("egress"), flow, credentials);
  }

  /** Redeploys the egress node alone ("modified nodes"), with its properties changed; the helper nodes stay. */
  async redeploy(egressProps: Record<string, unknown>): Promise<void> {
    const flow = this.flow.map((node) => (node.id === "egress" ? { ...node, ...egressProps } : node));
    try {
      await helper.setFlows(flow as Parameters<typeof helper.setFlows>[0], "nodes", { cfg: this.credentials });
    } catch (error) {
      // The helper waits for a "flows:started" event that the runtime may have sent already.
      if (!/timeout waiting event/.test(String(error))) throw error;
    }
    this.egress = helper.getNode("egress");
  }

  static async unload(): Promise<void> {
    await helper.unload();
  }

  /** Sends a msg and resolves with the node's output msg, or rejects with what the Catch node got. */
  write(msg: Record<string, unknown>): Promise<Msg> {
    const id = (msg._msgid as string) ?? `m${Math.random().toString(36).slice(2)}`;
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      this.egress.receive({ ...msg, _msgid: id });
    });
  }

  /**
   * Sends a msg and resolves once the node called done() for it without an error (a Complete
   * node saw it), or rejects with what the Catch node got: for msgs that only join a batch.
   */
  join(msg: Record<string, unknown>): Promise<Msg> {
    const id = (msg._msgid as string) ?? `m${Math.random().toString(36).slice(2)}`;
    return new Promise((resolve, reject) => {
      this.doneWaiters.set(id, { resolve, reject });
      this.egress.receive({ ...msg, _msgid: id });
    });
  }

  /**
   * Forgets the calls the test helper recorded: it spies on every node's send() and on the log
   * (whose spy keeps each call's stack, and through it each msg), which a test that pushes
   * hundreds of MiB through must drop.
   */
  forgetRecordedCalls(): void {
    (this.egress.send as unknown as { resetHistory(): void }).resetHistory();
    helper.log().resetHistory();
  }

  /** What the nodes of the flow logged at `level` (the config node's notices among them), as text. */
  logged(level: "warn" | "error"): { id: string; msg: string }[] {
    // Node-RED's log levels, which the helper's spy also carries as spy.WARN / spy.ERROR.
    const wanted = level === "warn" ? 30 : 20;
    const spy = helper.log();
    return (spy.args as [{ level: number; id: string; msg: unknown }][])
      .map(([entry]) => entry)
      .filter((entry) => entry.level === wanted)
      .map((entry) => ({ id: entry.id, msg: entry.msg instanceof Error ? entry.msg.message : String(entry.msg) }));
  }

  /** Resolves with the first output msg, already sent or still to come, that passes `test`. */
  output(test: (msg: Msg) => boolean): Promise<Msg> {
    const seen = this.outputs.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.outputWaiters.push({ test, resolve }));
  }

  /** Resolves with the first error, already caught or still to come, that passes `test`. */
  caught(test: (error: CaughtError) => boolean): Promise<CaughtError> {
    const seen = this.errors.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.errorWaiters.push({ test, resolve }));
  }

  /** Sends a msg that must fail, and resolves with the error. */
  async fail(msg: Record<string, unknown>): Promise<CaughtError> {
    try {
      const output = await this.write(msg);
      throw new Error(`expected an error, got output ${JSON.stringify(output.s3)}`);
    } catch (error) {
      if (error instanceof Error) throw error;
      return error as CaughtError;
    }
  }

  /** Resolves with the first status, already shown or still to come, that passes `test`. */
  status(test: (status: NodeStatus) => boolean): Promise<NodeStatus> {
    const seen = this.statuses.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.statusWaiters.push({ test, resolve }));
  }

  private settle(id: string, action: (waiter: { resolve: (msg: Msg) => void; reject: (error: CaughtError) => void }) => void): void {
    const waiter = this.waiters.get(id);
    if (!waiter) return;
    this.waiters.delete(id);
    action(waiter);
  }
}

export function startServer(): Promise<void> {
  return new Promise((resolve) => helper.startServer(resolve));
}

export function stopServer(): Promise<void> {
  return new Promise((resolve) => helper.stopServer(resolve));
}
