import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";

const ROOT = path.join(__dirname, "..", "..");

/**
 * Packs the package as npm would publish it (prepack builds it) and installs the tarball into the
 * user directory, as `npm install <tarball>` from the palette would; dependencies come from the
 * npm cache when they are there. Returns the tarball's file name.
 */
export function installPackedPackage(userDir: string): string {
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--json", "--pack-destination", userDir], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }));
  writeFileSync(path.join(userDir, "package.json"), JSON.stringify({ name: "node-red-project", private: true }));
  const tarball = path.join(userDir, packed.filename as string);
  execFileSync("npm", ["install", tarball, "--no-audit", "--no-fund", "--prefer-offline"], { cwd: userDir, stdio: ["ignore", "pipe", "pipe"] });
  return packed.filename as string;
}

export interface NodeRedProcess {
  /** The editor and admin API, e.g. http://127.0.0.1:43211 */
  url: string;
  stop(): Promise<void>;
  /** Sends `signal` (SIGKILL: no close, no flush) and resolves once the process has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
}

/**
 * Starts Node-RED for `userDir` in a child process on 127.0.0.1 and `port` (a free one when 0), with
 * `settings` added to the usual ones.
 */
export function startNodeRedProcess(userDir: string, settings: Record<string, unknown> = {}, port = 0): Promise<NodeRedProcess> {
  const child = spawn(process.execPath, [path.join(__dirname, "node-red-process.js"), userDir, JSON.stringify(settings), String(port)], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const port = /listening (\d+)/.exec(output)?.[1];
      if (port) {
        child.stdout!.off("data", onData);
        resolve({ url: `http://127.0.0.1:${port}`, stop: () => stop(child, "SIGTERM"), kill: (signal) => stop(child, signal) });
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("exit", (code) => reject(new Error(`Node-RED exited with code ${code} before it listened:\n${output}`)));
  });
}

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}
