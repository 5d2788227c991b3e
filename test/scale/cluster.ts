// Three Node-RED 4 runtimes, each its own process and user directory with the packed package installed
// and its flow deployed, on fixed loopback ports (so a balancer finds a restarted one where it was).
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { type NodeRedProcess, startNodeRedProcess } from "../support/packed";
import { CREDENTIALS, TEST_BUCKET } from "../support/s3";
import { freePort } from "./services";

export type FlowNode = Record<string, unknown> & { id: string; type: string };

/** The example file `name`.json as a user imports it, its bucket configuration pointed at `endpoint` and the tests' bucket. */
export function exampleFlow(name: string, endpoint: string): FlowNode[] {
  const flow = JSON.parse(readFileSync(path.join(__dirname, "..", "..", "examples", `${name}.json`), "utf8")) as FlowNode[];
  return flow.map((node) => (node.type === "s3-egress-config" ? { ...node, endpoint, bucket: TEST_BUCKET } : node));
}

export class Cluster {
  private readonly processes: (NodeRedProcess | undefined)[];

  private constructor(
    readonly userDirs: string[],
    readonly ports: number[],
  ) {
    this.processes = userDirs.map(() => undefined);
  }

  /**
   * `count` user directories under `directory`, each using the package installed in `installed`
   * (a user directory where installPackedPackage ran) and deploying `flow(index)`; none started yet.
   */
  static async create(directory: string, installed: string, flow: (index: number) => FlowNode[], count = 3): Promise<Cluster> {
    const userDirs: string[] = [];
    const ports: number[] = [];
    for (let index = 0; index < count; index++) {
      const userDir = path.join(directory, `node-red-${index + 1}`);
      mkdirSync(userDir, { recursive: true });
      symlinkSync(path.join(installed, "node_modules"), path.join(userDir, "node_modules"), "dir");
      writeFileSync(path.join(userDir, "package.json"), readFileSync(path.join(installed, "package.json")));
      const flows = flow(index);
      writeFileSync(path.join(userDir, "flows.json"), JSON.stringify(flows));
      const sinks = flows.filter((node) => node.type === "s3-egress-config").map((node) => [node.id, CREDENTIALS]);
      writeFileSync(path.join(userDir, "flows_cred.json"), JSON.stringify(Object.fromEntries(sinks)));
      userDirs.push(userDir);
      ports.push(await freePort());
    }
    return new Cluster(userDirs, ports);
  }

  /** host:port of each runtime. */
  get addresses(): string[] {
    return this.ports.map((port) => `127.0.0.1:${port}`);
  }

  async start(index: number): Promise<void> {
    this.processes[index] = await startNodeRedProcess(this.userDirs[index], {}, this.ports[index]);
  }

  async startAll(): Promise<void> {
    await Promise.all(this.userDirs.map((_, index) => this.start(index)));
  }

  /** SIGKILL (no close) or SIGTERM (Node-RED stops its flows); resolves once the process has exited. */
  async kill(index: number, signal: NodeJS.Signals): Promise<void> {
    await this.processes[index]?.kill(signal);
    this.processes[index] = undefined;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.userDirs.map((_, index) => this.kill(index, "SIGTERM")));
  }

  /** Objects each runtime wrote since it started (s3_egress_objects_written_total of its /s3-egress/metrics, all nodes). */
  async objectsWritten(): Promise<number[]> {
    return Promise.all(
      this.ports.map(async (port) => {
        const text = await (await fetch(`http://127.0.0.1:${port}/s3-egress/metrics`)).text();
        const counts = [...text.matchAll(/^s3_egress_objects_written_total\{[^}]*\} (\d+)/gm)];
        return counts.reduce((sum, match) => sum + Number(match[1]), 0);
      }),
    );
  }

  /** Segment files in the spools of every s3-egress node of every runtime: 0 once every accepted msg and batch is written. */
  spooledSegments(): number {
    let segments = 0;
    for (const userDir of this.userDirs) {
      const spool = path.join(userDir, "s3-egress-spool");
      if (!existsSync(spool)) continue;
      for (const node of readdirSync(spool)) segments += readdirSync(path.join(spool, node)).filter((name) => name.endsWith(".seg")).length;
    }
    return segments;
  }

  /** Waits until every spool is empty (checked twice, 0.5 s apart), at most `ms`. */
  async drained(ms: number): Promise<void> {
    const until = Date.now() + ms;
    let empty = 0;
    while (empty < 2) {
      if (Date.now() > until) throw new Error(`the spools still hold ${this.spooledSegments()} segments after ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      empty = this.spooledSegments() === 0 ? empty + 1 : 0;
    }
  }
}
