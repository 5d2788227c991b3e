// A Node-RED runtime in a process of its own (runtime-child.js), started on a user directory that
// installs this package, with what it reported so far: for the scenarios that kill or limit a process.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { CREDENTIALS, TEST_BUCKET } from "./s3";

const PACKAGE_ROOT = path.join(__dirname, "..", "..");
const CHILD = path.join(__dirname, "runtime-child.js");

/** A Node-RED process started by runtime-child.js, with what it reported so far. */
export class Runtime {
  readonly done = new Set<number>();
  readonly failed: string[] = [];
  /** The texts of the node's status, in order. */
  readonly statuses: string[] = [];
  readonly exited: Promise<number | null>;
  private listeners: (() => void)[] = [];
  private readonly child: ChildProcess;

  /** `openFiles`: the most file descriptors the process may have open (its soft and hard limit). */
  constructor(userDir: string, indices: number[], env: Record<string, string> = {}, openFiles?: number) {
    const command = [process.execPath, CHILD, userDir, JSON.stringify(indices)];
    const options = { stdio: ["ignore", "pipe", "pipe"] as ("ignore" | "pipe")[], env: { ...process.env, ...env } };
    this.child = openFiles
      ? spawn("bash", ["-c", `ulimit -n ${openFiles} && exec "$@"`, "bash", ...command], options)
      : spawn(command[0], command.slice(1), options);
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const [marker, event, index, ...rest] = line.split(" ");
      if (marker !== "@@") return;
      if (event === "status") this.statuses.push(line.slice("@@ status ".length));
      if (event === "done") this.done.add(Number(index));
      if (event === "failed") this.failed.push(`${index} ${rest.join(" ")}`);
      for (const listener of this.listeners) listener();
    });
    this.child.stderr!.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  }

  /** Resolves once `test` holds, checked after every line the runtime prints; rejects if the runtime exits first. */
  until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    const reached = new Promise<void>((resolve) => {
      const listener = () => {
        if (!test()) return;
        this.listeners = this.listeners.filter((other) => other !== listener);
        resolve();
      };
      this.listeners.push(listener);
    });
    const exited = this.exited.then((code) => Promise.reject(new Error(`the runtime exited (${code}) before the test was met`)));
    return Promise.race([reached, exited]);
  }

  kill(signal: NodeJS.Signals): Promise<number | null> {
    this.child.kill(signal);
    return this.exited;
  }
}

/** Installs this package into the user directory, with a flow of one s3-egress node "egress" with `egress` settings. */
export function installWithFlow(userDir: string, endpoint: string, egress: Record<string, unknown>): void {
  mkdirSync(path.join(userDir, "node_modules", "@iot-sinks"), { recursive: true });
  symlinkSync(PACKAGE_ROOT, path.join(userDir, "node_modules", "@iot-sinks", "node-red-s3-egress"), "dir");
  const flows = [
    { id: "tab", type: "tab", label: "runtime" },
    { id: "cfg", type: "s3-egress-config", bucket: TEST_BUCKET, region: "us-east-1", endpoint, forcePathStyle: true },
    { id: "egress", type: "s3-egress", z: "tab", sink: "cfg", spool: true, wires: [[]], ...egress },
  ];
  writeFileSync(path.join(userDir, "flows.json"), JSON.stringify(flows));
  writeFileSync(path.join(userDir, "flows_cred.json"), JSON.stringify({ cfg: CREDENTIALS }));
}
