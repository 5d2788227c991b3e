import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { assertBucketHolds, egressSpoolDir, range, scenarioMsg, spoolSegments } from "../support/deliveries";
import { faultContext } from "../support/fault-context";
import { CREDENTIALS, TEST_BUCKET } from "../support/s3";
import { scanSegment } from "../../nodes/lib/delivery/spool";

/** Records in the spool of the node "egress", counted from its segment files. */
function spooledRecords(userDir: string): number {
  return spoolSegments(userDir).reduce((sum, name) => sum + scanSegment(readFileSync(path.join(egressSpoolDir(userDir), name))).records.length, 0);
}

const PACKAGE_ROOT = path.join(__dirname, "..", "..");
const CHILD = path.join(__dirname, "..", "support", "runtime-child.js");

/** A Node-RED process started by runtime-child.js, with what it reported so far. */
class Runtime {
  readonly done = new Set<number>();
  readonly failed: string[] = [];
  readonly exited: Promise<number | null>;
  private listeners: (() => void)[] = [];
  private readonly child: ChildProcess;

  constructor(userDir: string, indices: number[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [CHILD, userDir, JSON.stringify(indices)], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const [marker, event, index, ...rest] = line.split(" ");
      if (marker !== "@@") return;
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
function installWithFlow(userDir: string, endpoint: string, egress: Record<string, unknown>): void {
  mkdirSync(path.join(userDir, "node_modules", "@iot-sinks"), { recursive: true });
  symlinkSync(PACKAGE_ROOT, path.join(userDir, "node_modules", "@iot-sinks", "node-red-s3-egress"), "dir");
  const flows = [
    { id: "tab", type: "tab", label: "crash" },
    { id: "cfg", type: "s3-egress-config", bucket: TEST_BUCKET, region: "us-east-1", endpoint, forcePathStyle: true },
    { id: "egress", type: "s3-egress", z: "tab", sink: "cfg", spool: true, wires: [[]], ...egress },
  ];
  writeFileSync(path.join(userDir, "flows.json"), JSON.stringify(flows));
  writeFileSync(path.join(userDir, "flows_cred.json"), JSON.stringify({ cfg: CREDENTIALS }));
}

describe("faults: the runtime process killed with SIGKILL mid-load, restarted with the spool", function () {
  this.timeout(120_000);
  const context = faultContext();

  it("every msg the killed runtime accepted is written after the restart; resent msgs make no strays", async () => {
    const { s3, proxy, userDir } = context;
    installWithFlow(userDir, proxy.endpoint, { concurrency: 4, maxQueue: 20 });
    const total = 600;
    proxy.script([{ action: { kind: "latency", ms: 25 } }]);
    const first = new Runtime(userDir, range(total));
    await first.until(() => first.done.size >= 250);
    // Kill it while it writes: some objects are in the bucket, many accepted msgs only in the spool.
    for (let tries = 0; tries < 600 && (await s3.keys()).length < 40; tries++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(await first.kill("SIGKILL"), null);
    const accepted = new Set(first.done);
    const inBucketAtKill = (await s3.keys()).length;
    assert.ok(inBucketAtKill >= 40 && inBucketAtKill < accepted.size, `the spool held accepted msgs at the kill: ${inBucketAtKill} objects, ${accepted.size} accepted`);

    // Upstream redelivers what was never acknowledged (as MQTT QoS 1 or Kafka would).
    proxy.script([]);
    const resend = range(total).filter((index) => !accepted.has(index));
    const second = new Runtime(userDir, resend);
    await second.until(() => resend.every((index) => second.done.has(index)));
    for (let tries = 0; tries < 600 && spoolSegments(userDir).length > 0; tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await second.kill("SIGTERM");
    assert.deepEqual([...first.failed, ...second.failed], []);
    assert.deepEqual(spoolSegments(userDir), [], "the spool is empty");
    assert.ok(!existsSync(path.join(egressSpoolDir(userDir), "damaged")), "a SIGKILL leaves no damaged records behind");
    assert.equal(await assertBucketHolds(s3, range(total).map((index) => scenarioMsg(index, { bytes: 2048 }))), total);
  });

  it("Batch Completions: every msg the killed runtime acknowledged is in its batch after the restart, in arrival order", async () => {
    const { s3, proxy, userDir } = context;
    installWithFlow(userDir, proxy.endpoint, { input: "batches", concatenation: "newline", idleTimeout: 1, concurrency: 4 });
    const text = { S3_EGRESS_CHILD_TEXT: "1" };
    const first = new Runtime(userDir, range(1000), text);
    await first.until(() => first.done.size >= 300);
    assert.equal(await first.kill("SIGKILL"), null);
    const accepted = [...first.done];
    assert.deepEqual(await s3.keys(), [], "no batch was complete at the kill");

    // Nothing is resent: the batches are rebuilt from the spool and completed by the idle timeout.
    const second = new Runtime(userDir, [], text);
    for (let tries = 0; tries < 600 && (await s3.keys()).length < 5; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
    await second.kill("SIGTERM");
    assert.deepEqual([...first.failed, ...second.failed], []);
    const keys = range(5).map((device) => `batches/faults/telemetry/dev-${device}/b1`);
    assert.deepEqual(await s3.keys(), keys);
    for (const [device, key] of keys.entries()) {
      const lines = (await s3.get(key)).body.toString().split("\n");
      const indices = lines.map((line) => Number(line.replace("reading ", "")));
      assert.ok(indices.every((index, position) => index % 5 === device && (position === 0 || index > indices[position - 1])), `${key}: this device's readings in arrival order`);
      const missing = accepted.filter((index) => index % 5 === device && !indices.includes(index));
      assert.deepEqual(missing, [], `${key}: every acknowledged reading`);
    }
  });

  it("S3 down (503) while 200 msgs arrive, killed, S3 back, restarted at the default settings: all 200 written, as a transient failure never ends a spooled msg", async () => {
    const { s3, proxy, userDir } = context;
    installWithFlow(userDir, proxy.endpoint, {});
    proxy.script([{ action: { kind: "error", status: 503, code: "ServiceUnavailable" } }]);
    const downSince = Date.now();
    const first = new Runtime(userDir, range(200));
    // Accepted: each msg's record is durable in the spool (its done() waits for the write).
    for (let tries = 0; tries < 600 && spooledRecords(userDir) < 200; tries++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(spooledRecords(userDir), 200);
    // S3 stays down for 3 s: the writes keep failing and retrying until the kill.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, 3000 - (Date.now() - downSince))));
    assert.equal(await first.kill("SIGKILL"), null);
    assert.deepEqual(first.failed, []);
    assert.equal(first.done.size, 0, "no msg was done: none was written");
    assert.ok(proxy.seen.length > 0 && proxy.seen.every((request) => request.outcome === "503 ServiceUnavailable"), "nothing was written before the kill");

    proxy.script([]);
    const second = new Runtime(userDir, []);
    for (let tries = 0; tries < 600 && (spoolSegments(userDir).length > 0 || (await s3.keys()).length < 200); tries++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await second.kill("SIGTERM");
    assert.deepEqual(second.failed, []);
    assert.deepEqual(spoolSegments(userDir), [], "the spool is empty");
    assert.equal(await assertBucketHolds(s3, range(200).map((index) => scenarioMsg(index, { bytes: 2048 }))), 200);
  });
});
