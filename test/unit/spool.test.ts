import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { decodeRecord, encodeRecord, scanSegment, Spool, type SpooledWrite, type SpoolProblem } from "../../nodes/lib/delivery/spool";

const write = (index: number, bytes = 10): SpooledWrite => ({
  msgid: `id${index}`,
  key: `messages/g/s/d/b/m${index}`,
  contentType: "application/octet-stream",
  metadata: { "device-id": "d", "message-id": `m${index}` },
  headers: { "x-amz-storage-class": "STANDARD_IA" },
  body: Buffer.alloc(bytes, index),
});

describe("spool records", () => {
  it("decode what encode wrote, byte for byte", () => {
    assert.deepEqual(decodeRecord(encodeRecord(write(1, 300))), write(1, 300));
    // A msg's Object Lock goes with it, its retention still counted from the write after a restart.
    const locked = { ...write(2), objectLock: { mode: "COMPLIANCE" as const, retainForMs: 86_400_000, legalHold: true } };
    assert.deepEqual(decodeRecord(encodeRecord(locked)), locked);
  });

  it("skip a record with a bad checksum, garbage between records and a truncated tail, record by record", () => {
    const damaged = encodeRecord(write(2));
    damaged[damaged.length - 1] ^= 0xff;
    const tail = encodeRecord(write(4)).subarray(0, 20);
    const data = Buffer.concat([encodeRecord(write(1)), damaged, Buffer.from("junk"), encodeRecord(write(3)), tail]);
    const { records, problems } = scanSegment(data);
    assert.deepEqual(
      records.map((record) => (decodeRecord(data.subarray(record.offset, record.offset + record.length)) as SpooledWrite).key),
      ["messages/g/s/d/b/m1", "messages/g/s/d/b/m3"],
    );
    assert.deepEqual(
      problems.map((problem) => problem.problem),
      ["checksum mismatch; 4 bytes skipped".replace("4", String(damaged.length + 4)), `truncated: ${encodeRecord(write(4)).length - 12} bytes announced, 8 present; 20 bytes skipped`],
    );
  });
});

describe("Spool on disk", () => {
  let directory: string;
  beforeEach(() => (directory = mkdtempSync(path.join(tmpdir(), "spool-"))));
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it("keeps appended records across a reopen, in order, and deletes a segment once all its records are released", async () => {
    const problems: SpoolProblem[] = [];
    const spool = await Spool.open(directory, (problem) => problems.push(problem));
    const entries = await Promise.all([1, 2, 3].map((index) => spool.append(write(index))));
    assert.equal(spool.pending, 3);
    spool.release(entries[0]);
    await spool.close();

    const reopened = await Spool.open(directory, (problem) => problems.push(problem));
    // The first append is made durable alone, the next two together; released records do not come back.
    assert.equal(reopened.pending, 2);
    const keys: string[] = [];
    for (let [taken] = await reopened.takeDeferredRun(1, 0); taken; [taken] = await reopened.takeDeferredRun(1, 0)) {
      keys.push((taken.write as SpooledWrite).key);
      reopened.release(taken.entry);
    }
    assert.deepEqual(keys, ["messages/g/s/d/b/m2", "messages/g/s/d/b/m3"]);
    assert.deepEqual(problems, []);
    await reopened.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(readdirSync(directory).filter((name) => name.endsWith(".seg")), []);
  });

  it("makes a burst larger than a segment durable segment by segment, every record intact and in order across a reopen", async () => {
    const spool = await Spool.open(directory, () => undefined);
    // 40 records of 512 KiB: the first alone, then segments of at most 8 MiB, encoded one after the other into one buffer.
    const writes = Array.from({ length: 40 }, (_, index) => write(index, 512 * 1024));
    const entries = await Promise.all(writes.map((item) => spool.append(item)));
    assert.deepEqual(new Set(entries.map((entry) => entry.segment.file)).size, 4);
    await spool.close();

    const reopened = await Spool.open(directory, () => undefined);
    const read: SpooledWrite[] = [];
    for (let [taken] = await reopened.takeDeferredRun(1, 0); taken; [taken] = await reopened.takeDeferredRun(1, 0)) read.push(taken.write as SpooledWrite);
    assert.deepEqual(read, writes);
    await reopened.close();
  });

  it("tells the bytes pending and when its oldest pending record was made durable, across a reopen", async () => {
    const spool = await Spool.open(directory, () => undefined);
    assert.equal(spool.oldestPendingAt, undefined);
    const before = Date.now();
    const first = await spool.append(write(1));
    const after = Date.now();
    const second = await spool.append(write(2));
    assert.equal(spool.pendingBytes, encodeRecord(write(1)).length + encodeRecord(write(2)).length);
    const oldest = spool.oldestPendingAt!;
    assert.ok(oldest >= before && oldest <= after, "the first segment's time");
    spool.release(first);
    assert.equal(spool.pendingBytes, encodeRecord(write(2)).length);
    assert.ok(spool.oldestPendingAt! >= oldest, "the second segment's time once the first is released");
    await spool.close();

    // Reopened: the segment file's time stands for its records.
    const reopened = await Spool.open(directory, () => undefined);
    assert.equal(reopened.pendingBytes, second.length);
    assert.ok(Math.abs(reopened.oldestPendingAt! - oldest) < 5_000);
    const [taken] = await reopened.takeDeferredRun(1, 0);
    reopened.release(taken!.entry);
    assert.equal(reopened.pendingBytes, 0);
    assert.equal(reopened.oldestPendingAt, undefined);
    await reopened.close();
  });

  it("drops a temporary file (never acknowledged), reports a damaged segment, keeps a copy and resumes its good records", async () => {
    const damaged = encodeRecord(write(2));
    damaged[30] ^= 0xff;
    writeFileSync(path.join(directory, "000000000001.seg"), Buffer.concat([encodeRecord(write(1)), damaged, encodeRecord(write(3))]));
    writeFileSync(path.join(directory, "000000000002.tmp"), encodeRecord(write(9)));
    writeFileSync(path.join(directory, "000000000003.seg"), Buffer.from("not a spool file at all"));
    const problems: SpoolProblem[] = [];
    const spool = await Spool.open(directory, (problem) => problems.push(problem));
    assert.deepEqual(
      problems.map((problem) => [path.basename(problem.file), problem.offset, problem.problem.split(";")[0]]),
      [
        ["000000000001.seg", encodeRecord(write(1)).length, "checksum mismatch"],
        ["000000000003.seg", 0, "no record marker"],
      ],
    );
    assert.equal(spool.pending, 2);
    assert.ok(!existsSync(path.join(directory, "000000000002.tmp")));
    assert.ok(!existsSync(path.join(directory, "000000000003.seg")), "a segment with nothing readable is removed");
    assert.ok(readFileSync(path.join(directory, "damaged", "000000000003.seg")).length > 0, "and kept for inspection");
    const next = await spool.append(write(4));
    assert.equal(path.basename(next.segment.file), "000000000004.seg", "numbering continues after what is on disk");
    await spool.close();
  });

  it("keeps device data private: directories 0700 and segment files 0600 whatever the umask, an older open spool closed to others", async () => {
    const older = path.join(directory, "older");
    mkdirSync(older, { mode: 0o755 });
    chmodSync(older, 0o755);
    const fresh = path.join(directory, "spool", "node-id");
    const previousUmask = process.umask(0o000);
    try {
      for (const spoolDirectory of [older, fresh]) {
        const spool = await Spool.open(spoolDirectory, () => undefined);
        const entry = await spool.append(write(1));
        assert.equal(statSync(spoolDirectory).mode & 0o777, 0o700, spoolDirectory);
        assert.equal(statSync(entry.segment.file).mode & 0o777, 0o600, entry.segment.file);
        await spool.close();
      }
      assert.equal(statSync(path.join(directory, "spool")).mode & 0o777, 0o700, "the parent made for it too");
    } finally {
      process.umask(previousUmask);
    }
  });

  it("releaseAll names records of a segment still in use in released.log, so a reopen never takes them again", async () => {
    const spool = await Spool.open(directory, () => undefined);
    // m1 is made durable alone, m2 and m3 together, in one segment: m2's batch is written, m3's is still open.
    const [, second, third] = await Promise.all([1, 2, 3].map((index) => spool.append(write(index))));
    assert.equal(second.segment, third.segment);
    await spool.releaseAll([second]);
    assert.match(readFileSync(path.join(directory, "released.log"), "utf8"), /^000000000002\.seg \d+\n$/);
    await spool.close();

    const reopened = await Spool.open(directory, () => undefined);
    const keys: string[] = [];
    for (let [taken] = await reopened.takeDeferredRun(1, 0); taken; [taken] = await reopened.takeDeferredRun(1, 0)) keys.push((taken.write as SpooledWrite).key);
    assert.deepEqual(keys, ["messages/g/s/d/b/m1", "messages/g/s/d/b/m3"]);
    await reopened.close();
    // A segment gone makes its lines moot: the next open drops them, and its number is never reused.
    rmSync(path.join(directory, "000000000002.seg"));
    const afterRemoval = await Spool.open(directory, () => undefined);
    assert.ok(!existsSync(path.join(directory, "released.log")));
    assert.equal(path.basename((await afterRemoval.append(write(4))).segment.file), "000000000003.seg");
    await afterRemoval.close();
  });

  it("leaves segments it does not own (the node's other route) on disk, untouched and counted", async () => {
    const spool = await Spool.open(directory, () => undefined);
    await spool.append(write(1));
    await spool.close();
    const other = await Spool.open(directory, () => undefined, { owns: (found) => found.key.startsWith("batches/") });
    assert.deepEqual({ pending: other.pending, foreign: other.foreign.records, files: other.foreign.files.map((file) => path.basename(file)) }, { pending: 0, foreign: 1, files: ["000000000001.seg"] });
    assert.equal(path.basename((await other.append({ ...write(2), key: "batches/g/s/d/b" })).segment.file), "000000000002.seg");
    await other.close();
    const back = await Spool.open(directory, () => undefined, { owns: (found) => !found.key.startsWith("batches/") });
    assert.equal(back.pending, 1);
    assert.equal(back.foreign.records, 1);
    await back.close();
  });
});
