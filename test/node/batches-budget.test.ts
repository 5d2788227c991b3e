import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import type { RecordFields } from "../../nodes/lib/core/record";
import type { BatchMsg } from "../../nodes/lib/delivery/batch-records";
import { isBatchRecord } from "../../nodes/lib/delivery/batch-records";
import { type Admission, type BatchSettings, Batches, type CompletionTrigger } from "../../nodes/lib/delivery/batches";
import { FixedLimit } from "../../nodes/lib/delivery/concurrency";
import type { WriteOutcome } from "../../nodes/lib/delivery/messages";
import { Spool } from "../../nodes/lib/delivery/spool";
import { Writer } from "../../nodes/lib/delivery/writer";
import { S3Sink } from "../../nodes/lib/s3/client";
import { ParquetFile, duckdb, duckdbSchema } from "../support/parquet-readers";
import { CREDENTIALS, LocalS3, TEST_BUCKET } from "../support/s3";

const KiB = 1024;
const MiB = 1024 * KiB;
/** Small parts, so that batches of a few hundred KiB stream as multipart uploads (s3rver takes parts of any size). */
const PART = 256 * KiB;
const BUDGET = 1 * MiB;

/** What the Batches tell besides msg outcomes. */
class Events {
  readonly completed: { outcome: WriteOutcome; trigger: CompletionTrigger }[] = [];
  readonly failed: { error: Error; key: string }[] = [];
  readonly unusable: string[] = [];
  readonly handlers = {
    completed: (outcome: WriteOutcome, trigger: CompletionTrigger) => this.completed.push({ outcome, trigger }),
    failed: (error: Error, key: string) => this.failed.push({ error, key }),
    unusable: (problem: string) => this.unusable.push(problem),
  };
}

const fieldsOf = (device: number): RecordFields => ({ streamGroup: "fleet", stream: "telemetry", deviceId: `device-${device}`, batchId: "day-1" }) as RecordFields;
const keyOf = (device: number) => `batches/fleet/telemetry/device-${device}/day-1`;

/** The payload of msg `index` of `device`: bytes that tell where they belong, so a misplaced run shows. */
function payloadOf(device: number, index: number, bytes: number): Buffer {
  const payload = Buffer.alloc(bytes, (device * 31 + index * 7) & 0xff);
  payload.write(`<${device}:${index}>`, 0, "latin1");
  return payload;
}

function msgOf(device: number, payload: unknown, complete = false): BatchMsg {
  return { fields: fieldsOf(device), payload, contentType: undefined, complete, arrival: Date.now(), msgid: `m-${device}` };
}

/** Sends one msg and waits as the node's done() would. */
async function join(batches: Batches, msg: BatchMsg): Promise<Admission> {
  const admission = await batches.accept(msg);
  if ("ready" in admission) await admission.ready;
  return admission;
}

describe("open batches within the memory budget (Batch memory)", function () {
  let s3: LocalS3;
  let sink: S3Sink;
  let directory: string;
  before(async () => {
    s3 = await LocalS3.start();
  });
  after(async () => {
    await s3.stop();
  });
  beforeEach(async () => {
    await s3.clear();
    sink = new S3Sink({ bucket: TEST_BUCKET, region: "us-east-1", endpoint: s3.endpoint, forcePathStyle: true, credentials: CREDENTIALS });
    directory = mkdtempSync(path.join(tmpdir(), "batch-budget-"));
  });
  afterEach(() => {
    sink.destroy();
    rmSync(directory, { recursive: true, force: true });
  });

  const settingsOf = (changes: Partial<BatchSettings>): BatchSettings => ({
    path: "",
    concatenation: "plain",
    idleTimeoutMs: 0,
    compression: "none",
    parquetCodec: "snappy",
    maxOpenBatches: 100_000,
    atOpenLimit: "complete-oldest",
    maxBatchMemoryBytes: BUDGET,
    partSize: PART,
    ...changes,
  });

  /**
   * `devices` batches fed round-robin, `rounds` msgs of `bytes` each; the bytes held in memory are
   * checked after every msg. Returns what each device's object must hold.
   */
  async function feed(batches: Batches, devices: number, rounds: number, bytes: number, separator = ""): Promise<{ expected: Map<number, Buffer>; peak: number }> {
    const sent = new Map<number, Buffer[]>();
    let peak = 0;
    for (let round = 0; round < rounds; round++) {
      for (let device = 0; device < devices; device++) {
        const payload = payloadOf(device, round, bytes);
        const pieces = sent.get(device) ?? [];
        if (pieces.length > 0 && separator) pieces.push(Buffer.from(separator));
        pieces.push(payload);
        sent.set(device, pieces);
        await join(batches, msgOf(device, payload));
        peak = Math.max(peak, batches.bufferedBytes);
      }
    }
    return { expected: new Map([...sent].map(([device, pieces]) => [device, Buffer.concat(pieces)])), peak };
  }

  async function assertStored(expected: Map<number, Buffer>, decode = (body: Buffer) => body): Promise<void> {
    assert.equal((await s3.keys()).length, expected.size, "one object per batch, none twice");
    for (const [device, bytes] of expected) {
      const stored = decode((await s3.get(keyOf(device))).body);
      assert.equal(stored.length, bytes.length, `${keyOf(device)}: length`);
      assert.ok(stored.equals(bytes), `${keyOf(device)}: byte-identical`);
    }
  }

  it("without the spool, moves the idle batches' bytes to spill files, keeps memory within the budget, and writes every batch byte-identical", async () => {
    const events = new Events();
    const spill = path.join(directory, "spill");
    const batches = new Batches(sink, new Writer(new FixedLimit(16)), settingsOf({ spillDirectory: spill }), events.handlers);
    // 60 batches of 120 KiB (7 MiB open): seven times the budget, a few of them past a part.
    const { expected, peak } = await feed(batches, 60, 30, 4 * KiB);
    assert.ok(peak <= BUDGET + 4 * KiB, `memory peaked at ${peak} bytes, budget ${BUDGET}`);
    assert.ok(batches.spilledBytes > 4 * MiB, `on disk: ${batches.spilledBytes}`);
    assert.ok(readdirSync(spill).length > 0, "spill files");
    for (const name of readdirSync(spill)) assert.equal(statSync(path.join(spill, name)).mode & 0o777, 0o600, name);
    assert.equal(statSync(spill).mode & 0o777, 0o700);
    await batches.close();
    assert.deepEqual(events.failed, []);
    assert.equal(events.completed.length, 60);
    await assertStored(expected);
    assert.equal(batches.spilledBytes, 0);
    assert.ok(batches.bufferedBytes <= 0, `nothing held after close: ${batches.bufferedBytes}`);
    assert.deepEqual(readdirSync(spill), [], "spill files removed once their batches are written");
  });

  it("empties the spill directory at start: what a crashed run left there is of no batch any more", async () => {
    const spill = path.join(directory, "spill");
    mkdirSync(spill);
    execFileSync("sh", ["-c", `echo stale > ${spill}/000000000001.spill`]);
    const batches = new Batches(sink, new Writer(new FixedLimit(16)), settingsOf({ spillDirectory: spill }), new Events().handlers);
    const { expected } = await feed(batches, 40, 10, 4 * KiB);
    await batches.close();
    await assertStored(expected);
    assert.ok(!readdirSync(spill).includes("stale"));
    assert.deepEqual(readdirSync(spill), []);
  });

  it("keeps newline-joined text batches and gzip batches byte-exact across memory, disk and parts", async () => {
    const spill = path.join(directory, "spill");
    const batches = new Batches(sink, new Writer(new FixedLimit(16)), settingsOf({ spillDirectory: spill, concatenation: "newline" }), new Events().handlers);
    const expected = new Map<number, string[]>();
    for (let round = 0; round < 40; round++) {
      for (let device = 0; device < 30; device++) {
        // Text with multi-byte characters, so character and byte counts differ.
        const line = JSON.stringify({ device, round, text: "Grüße €".repeat(300 + device) });
        expected.set(device, [...(expected.get(device) ?? []), line]);
        await join(batches, msgOf(device, line));
      }
    }
    await batches.close();
    await assertStored(new Map([...expected].map(([device, lines]) => [device, Buffer.from(lines.join("\n"))])));

    await s3.clear();
    const zipped = new Batches(sink, new Writer(new FixedLimit(16)), settingsOf({ spillDirectory: spill, compression: "gzip" }), new Events().handlers);
    const { expected: raw, peak } = await feed(zipped, 30, 30, 12 * KiB);
    assert.ok(zipped.spilledBytes > 0 || peak > 0);
    await zipped.close();
    await assertStored(raw, (body) => gunzipSync(body));
  });

  /** Newline-joined batches and the spool in `<directory>/spool` they will use (opened as a node's start opens it; not resumed yet). */
  async function spooledBatches(events: Events): Promise<{ spool: Spool; batches: Batches }> {
    const spool = await Spool.open(path.join(directory, "spool"), () => undefined, { owns: isBatchRecord });
    return { spool, batches: new Batches(sink, new Writer(new FixedLimit(16)), settingsOf({ concatenation: "newline" }), events.handlers) };
  }

  it("with the spool, holds open batches' bytes once (in its records), rebuilds them after a restart within the budget, and writes each once", async () => {
    const spoolDirectory = path.join(directory, "spool");
    const events = new Events();
    const { spool, batches: first } = await spooledBatches(events);
    await first.resume(spool);
    const { expected, peak } = await feed(first, 50, 24, 6 * KiB, "\n");
    assert.ok(peak <= BUDGET + 6 * KiB, `memory peaked at ${peak} bytes, budget ${BUDGET}`);
    assert.ok(first.spilledBytes > 3 * MiB, `on disk, in the spool's records: ${first.spilledBytes}`);
    assert.ok(!existsSync(path.join(directory, "spill")), "no second copy beside the spool");
    // A redeploy: the open batches stay in the spool.
    await first.suspend();
    await spool.close();

    const { spool: reopened, batches: second } = await spooledBatches(events);
    let rebuildPeak = 0;
    const sampler = setInterval(() => (rebuildPeak = Math.max(rebuildPeak, second.bufferedBytes)), 1);
    assert.equal(await second.resume(reopened), 50 * 24);
    clearInterval(sampler);
    assert.equal(second.openCount, 50);
    assert.ok(rebuildPeak <= BUDGET + 6 * KiB, `memory peaked at ${rebuildPeak} bytes during the rebuild`);
    // One more msg each, then all complete.
    for (let device = 0; device < 50; device++) {
      const payload = payloadOf(device, 99, 100);
      expected.set(device, Buffer.concat([expected.get(device)!, Buffer.from("\n"), payload]));
      const admission = await join(second, msgOf(device, payload, true));
      assert.ok("completed" in admission);
      assert.ok(await admission.completed);
    }
    assert.deepEqual(events.failed, []);
    assert.deepEqual(events.unusable, []);
    await assertStored(expected);
    await second.close();
    await reopened.close();
    assert.deepEqual(readdirSync(spoolDirectory).filter((name) => name.endsWith(".seg")), [], "every record released");
  });

  it("a msg that arrives after the open batches were let go (a node closing with the spool) stays in the spool and joins its batch at the next start; sent again (its answer lost with the node), the completing msg is answered by that batch's write", async () => {
    const events = new Events();
    const { spool, batches: first } = await spooledBatches(events);
    await first.resume(spool);
    const lines = [0, 1, 2].map((index) => Buffer.from(`line ${index}`));
    await join(first, msgOf(0, lines[0]));
    await join(first, msgOf(0, lines[1]));
    await first.suspend();
    // Still on its way when the node closed: it completes the batch, but not alone under the batch's key.
    const completing = { ...msgOf(0, lines[2], true), messageId: "m2" };
    assert.deepEqual(await join(first, completing), { held: true });
    await spool.close();
    assert.deepEqual(await s3.keys(), [], "nothing written while closing");

    const { spool: reopened, batches: second } = await spooledBatches(events);
    assert.equal(await second.resume(reopened), 3);
    const again = await second.accept(completing);
    assert.ok("completed" in again);
    const outcome = await again.completed;
    assert.deepEqual([outcome?.key, outcome?.alreadyWritten], [keyOf(0), true]);
    await second.close();
    await reopened.close();
    assert.deepEqual(events.failed, []);
    assert.deepEqual(await s3.keys(), [keyOf(0)]);
    assert.equal((await s3.get(keyOf(0))).body.toString(), "line 0\nline 1\nline 2");
  });

  it("Parquet batches kept in the spool are rebuilt after a restart within the budget, their columns inferred again from the rows read back; DuckDB reads each whole", async () => {
    const spoolDirectory = path.join(directory, "spool");
    const events = new Events();
    const settings = settingsOf({ concatenation: "parquet" });
    const row = (device: number, round: number) => ({ device, round, reading: round / 4, state: round % 2 ? "on" : "off", text: "t".repeat(6000) });
    const spool = await Spool.open(spoolDirectory, () => undefined, { owns: isBatchRecord });
    const first = new Batches(sink, new Writer(new FixedLimit(16)), settings, events.handlers);
    await first.resume(spool);
    for (let round = 0; round < 24; round++) for (let device = 0; device < 20; device++) await join(first, msgOf(device, row(device, round)));
    assert.ok(first.spilledBytes > 1 * MiB, `on disk, in the spool's records: ${first.spilledBytes}`);
    await first.suspend();
    await spool.close();

    const reopened = await Spool.open(spoolDirectory, () => undefined, { owns: isBatchRecord });
    const second = new Batches(sink, new Writer(new FixedLimit(16)), settings, events.handlers);
    assert.equal(await second.resume(reopened), 20 * 24);
    for (let device = 0; device < 20; device++) {
      const admission = await join(second, msgOf(device, row(device, 24), true));
      assert.ok("completed" in admission && (await admission.completed));
    }
    assert.deepEqual(events.failed, []);
    assert.deepEqual(events.unusable, []);
    for (let device = 0; device < 20; device++) {
      const file = new ParquetFile((await s3.get(keyOf(device))).body);
      try {
        if (device === 0) assert.deepEqual(await duckdbSchema(file), { _arrival: "TIMESTAMP WITH TIME ZONE", _msgid: "VARCHAR", device: "BIGINT", round: "BIGINT", reading: "DOUBLE", state: "VARCHAR", text: "VARCHAR" });
        const read = await duckdb(file, "SELECT count(*) AS n, sum(round) AS rounds, sum(reading) AS readings, min(device) AS low, max(device) AS high, min(length(text)) AS text FROM read_parquet(?)");
        assert.deepEqual(read, [{ n: "25", rounds: "300", readings: 75, low: String(device), high: String(device), text: "6000" }], keyOf(device));
      } finally {
        file.remove();
      }
    }
    await second.close();
    await reopened.close();
    assert.deepEqual(readdirSync(spoolDirectory).filter((name) => name.endsWith(".seg")), [], "every record released");
  });

  it("writes 400 batches completing at once (a close without the spool) with memory within the budget", async () => {
    const spill = path.join(directory, "spill");
    const batches = new Batches(sink, new Writer(new FixedLimit(64)), settingsOf({ spillDirectory: spill }), new Events().handlers);
    const { expected } = await feed(batches, 400, 4, 8 * KiB);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, batches.bufferedBytes)), 1);
    await batches.close();
    clearInterval(sampler);
    assert.ok(peak <= BUDGET + 32 * KiB, `memory peaked at ${peak} bytes while 400 batches completed`);
    await assertStored(expected);
  });

  describe("on a disk that fills up", function () {
    let mounted: string | undefined;
    before(function () {
      // A real, small file system: tmpfs needs root, as CI has.
      const point = mkdtempSync(path.join(tmpdir(), "small-disk-"));
      try {
        execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", point], { stdio: "ignore" });
        mounted = point;
      } catch {
        rmSync(point, { recursive: true, force: true });
        this.skip();
      }
    });
    after(() => {
      if (!mounted) return;
      execFileSync("umount", [mounted]);
      rmSync(mounted, { recursive: true, force: true });
    });

    it("fails the msg that needed room with ENOSPC naming the directory, keeps every batch already held, and goes on once there is room", async () => {
      const spill = path.join(mounted!, "spill");
      const events = new Events();
      const batches = new Batches(sink, new Writer(new FixedLimit(16)), settingsOf({ spillDirectory: spill, partSize: 8 * MiB }), events.handlers);
      const accepted = new Map<number, Buffer[]>();
      const refusals: (Error & { code?: string })[] = [];
      for (let round = 0; round < 20; round++) {
        for (let device = 0; device < 40; device++) {
          const payload = payloadOf(device, round, 8 * KiB);
          try {
            await join(batches, msgOf(device, payload));
            accepted.set(device, [...(accepted.get(device) ?? []), payload]);
          } catch (error) {
            refusals.push(error as Error);
          }
        }
      }
      // 6.4 MiB sent, 1 MiB of memory and 1 MiB of disk: most msgs were refused, each saying why.
      assert.ok(refusals.length > 0, "refused for want of disk");
      for (const error of refusals) {
        assert.equal(error.name, "SpillWriteError");
        assert.equal(error.code, "ENOSPC");
        assert.match(error.message, new RegExp(spill.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
      }
      // Room again: the node goes on, and what was accepted before is all there.
      execFileSync("mount", ["-o", "remount,size=64m", mounted!]);
      for (let device = 0; device < 40; device++) {
        const payload = payloadOf(device, 100, 8 * KiB);
        await join(batches, msgOf(device, payload));
        accepted.set(device, [...(accepted.get(device) ?? []), payload]);
      }
      await batches.close();
      assert.deepEqual(events.failed, []);
      await assertStored(new Map([...accepted].map(([device, pieces]) => [device, Buffer.concat(pieces)])));
    });
  });
});
