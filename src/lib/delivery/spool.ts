import { promises as fs } from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import type { ObjectLock } from "../s3/client";

/** One write as the spool keeps it: everything needed to repeat it after a restart. */
export interface SpooledWrite {
  /** The _msgid of the msg it came from, so a later failure can name it. */
  msgid: string;
  key: string;
  contentType: string;
  /** User metadata, names without the x-amz-meta- prefix. */
  metadata: Record<string, string>;
  /** Further object headers (storage class, encryption, …). */
  headers: Record<string, string>;
  /** Object Lock, its retention counted from the write (absent: none). */
  objectLock?: ObjectLock;
  body: Buffer;
}

/** Where one record lives on disk; the handle to release it once it is written. */
export interface SpoolEntry {
  readonly segment: Segment;
  readonly offset: number;
  readonly length: number;
  /** The body's bytes, the last of the record: a reader can take them straight from the segment file. */
  readonly bodyLength: number;
}

/** A record could not be made durable (a full disk, lost permissions): the msgs it held are not accepted. */
export class SpoolWriteError extends Error {
  override readonly name = "SpoolWriteError";
  readonly code: string;
  constructor(directory: string, cause: NodeJS.ErrnoException) {
    super(`cannot store the msg in the spool in ${directory}: ${cause.message}; msg not accepted`);
    this.code = cause.code ?? cause.name;
  }
}

/** Told when an appended record is durable, or why it could not be made so. */
export interface AppendWaiter {
  appended(entry: SpoolEntry): void;
  appendFailed(error: Error): void;
}

/** A deferred record read back: its write, or why it could not be read. */
export interface DeferredRecord {
  entry: SpoolEntry;
  write: SpooledWrite | string;
}

/** Damage found while reading the spool: one record (or a run of bytes) skipped. */
export interface SpoolProblem {
  file: string;
  offset: number;
  problem: string;
}

export interface Segment {
  readonly file: string;
  /** Records not yet released; the file is deleted when this drops to 0. */
  outstanding: number;
  /** When its records were made durable (epoch ms): the age of the oldest unwritten record. */
  readonly durableAt: number;
}

/** Segments a spool leaves alone: written by the node's other route (see SpoolOptions.owns). */
export interface ForeignRecords {
  records: number;
  files: string[];
}

export interface SpoolOptions {
  /**
   * Whether a segment's records are this spool's to take: a segment whose first record it does
   * not own (written while the node had its other route) is left on disk untouched and counted
   * in `foreign`, to be taken when the node has that route again.
   */
  owns?(write: SpooledWrite): boolean;
}

/*
 * Record layout: MAGIC (4) | payload length (u32 BE) | CRC-32 of the payload (u32 BE) | payload,
 * payload = JSON length (u32 BE) | JSON of the write without body | body bytes.
 * Every record carries its own magic, so a damaged record is skipped by looking for the next one.
 */
const MAGIC = Buffer.from("S3SR");
const HEADER_BYTES = 12;
/** Records arriving while a segment is being made durable go into the next one, up to this size. */
const SEGMENT_BYTES = 8 * 1024 * 1024;
const SEGMENT_SUFFIX = ".seg";
const TEMP_SUFFIX = ".tmp";
/** Device data on disk: readable by the Node-RED user only, whatever the umask. */
const PRIVATE_DIRECTORY = 0o700;
const PRIVATE_FILE = 0o600;
/**
 * Records released while other records of their segment are still outstanding, one
 * "<segment file> <offset>" a line: read at open so they are never taken again (see releaseAll).
 */
const RELEASED_LOG = "released.log";

/** A write laid out as a record: the JSON of its fields and the record's length, header included. */
interface RecordLayout {
  write: SpooledWrite;
  json: string;
  jsonLength: number;
  length: number;
}

function layoutOf(write: SpooledWrite): RecordLayout {
  const { body, ...rest } = write;
  const json = JSON.stringify(rest);
  const jsonLength = Buffer.byteLength(json, "utf8");
  return { write, json, jsonLength, length: HEADER_BYTES + 4 + jsonLength + body.length };
}

/** Writes the record of `layout` into `target` at `offset`. */
function writeRecord(target: Buffer, offset: number, { write, json, jsonLength, length }: RecordLayout): void {
  const record = target.subarray(offset, offset + length);
  MAGIC.copy(record, 0);
  record.writeUInt32BE(length - HEADER_BYTES, 4);
  record.writeUInt32BE(jsonLength, HEADER_BYTES);
  record.write(json, HEADER_BYTES + 4, "utf8");
  write.body.copy(record, HEADER_BYTES + 4 + jsonLength);
  record.writeUInt32BE(crc32(record.subarray(HEADER_BYTES)), 8);
}

/** One record in one buffer. */
export function encodeRecord(write: SpooledWrite): Buffer {
  const layout = layoutOf(write);
  const record = Buffer.allocUnsafe(layout.length);
  writeRecord(record, 0, layout);
  return record;
}

/**
 * The write in one record (header included), or why it cannot be read. Its body is copied out of
 * `record` (a write kept until it is written must not keep the whole read alive), or, as `view`,
 * is a view of it: for a reader that is done with it at once (a replay, a scan), which spares a
 * copy of every byte in the spool.
 */
export function decodeRecord(record: Buffer, body: "copied" | "view" = "copied"): SpooledWrite | string {
  if (record.length < HEADER_BYTES || !record.subarray(0, 4).equals(MAGIC)) return "no record marker";
  const length = record.readUInt32BE(4);
  if (HEADER_BYTES + length > record.length) return `truncated: ${length} bytes announced, ${record.length - HEADER_BYTES} present`;
  const payload = record.subarray(HEADER_BYTES, HEADER_BYTES + length);
  if (crc32(payload) !== record.readUInt32BE(8)) return "checksum mismatch";
  try {
    const jsonLength = payload.readUInt32BE(0);
    const write = JSON.parse(payload.subarray(4, 4 + jsonLength).toString("utf8")) as SpooledWrite;
    if (typeof write.key !== "string" || typeof write.contentType !== "string") return "record without key or content type";
    // The parsed object becomes the write (no copy of it per record read back).
    const bytes = payload.subarray(4 + jsonLength);
    write.body = body === "view" ? bytes : Buffer.from(bytes);
    return write;
  } catch (error) {
    return `unreadable record: ${(error as Error).message}`;
  }
}

/** The records of one segment file that pass their checksum, and what was skipped. */
export function scanSegment(data: Buffer): { records: { offset: number; length: number; bodyLength: number }[]; problems: { offset: number; problem: string }[] } {
  const records: { offset: number; length: number; bodyLength: number }[] = [];
  const problems: { offset: number; problem: string }[] = [];
  let offset = 0;
  while (offset < data.length) {
    const length = data.length - offset >= HEADER_BYTES ? HEADER_BYTES + data.readUInt32BE(offset + 4) : data.length - offset;
    const decoded = decodeRecord(data.subarray(offset, offset + length), "view");
    if (typeof decoded !== "string") {
      records.push({ offset, length, bodyLength: decoded.body.length });
      offset += length;
      continue;
    }
    // The length may be the damaged part: resume at the next record marker, not after `length`.
    const next = data.indexOf(MAGIC, offset + 1);
    const end = next === -1 ? data.length : next;
    problems.push({ offset, problem: `${decoded}; ${end - offset} bytes skipped` });
    offset = end;
  }
  return { records, problems };
}

/**
 * A durable, append-only spool of writes in one directory. Records arriving together are made
 * durable together (group commit): written to a new segment file, fsynced, renamed into place
 * and the directory fsynced, so a segment file is either complete or absent after a crash. A
 * segment is deleted once every record in it has been released. Records can be kept in memory
 * by their caller or deferred: left on disk and read back when there is room to write them.
 */
export class Spool {
  private nextSequence = 1;
  private pendingRecords = 0;
  private pendingRecordBytes = 0;
  /** Segments with records not yet released, oldest first. */
  private readonly liveSegments = new Set<Segment>();
  private readonly deferredEntries: SpoolEntry[] = [];
  private deferredHead = 0;
  /** Appends not yet durable: encoded only when their segment is written, so a burst waits as its writes, not also as records. */
  private waiting: { write: SpooledWrite; waiter: AppendWaiter }[] = [];
  private flushing: Promise<void> | undefined;
  /** Segment deletions under way, awaited by close() so the next instance never sees a file vanish. */
  private readonly removals = new Set<Promise<void>>();
  /** Appends to the released log, one after the other. */
  private logging: Promise<void> = Promise.resolve();
  private closed = false;
  /** Segments of the other route, left on disk. */
  readonly foreign: ForeignRecords = { records: 0, files: [] };

  private constructor(readonly directory: string) {}

  /**
   * Opens (creating) the spool in `directory` and defers every record found there, oldest first.
   * Damaged records are reported through `onProblem` and skipped; a damaged file is copied to
   * `damaged/` for inspection.
   */
  static async open(directory: string, onProblem: (problem: SpoolProblem) => void, options: SpoolOptions = {}): Promise<Spool> {
    const spool = new Spool(directory);
    await fs.mkdir(directory, { recursive: true, mode: PRIVATE_DIRECTORY });
    // A spool made by an older version (or under a lax umask) holds device data too: close it to others.
    await fs.chmod(directory, PRIVATE_DIRECTORY);
    const released = await readReleasedLog(directory);
    const names = (await fs.readdir(directory)).sort();
    const kept: string[] = [];
    const scratch = { buffer: Buffer.alloc(0) };
    for (const name of names) {
      const file = path.join(directory, name);
      // A temporary file is a segment whose writer crashed before it was durable: nothing in it was accepted.
      if (name.endsWith(TEMP_SUFFIX)) await fs.rm(file, { force: true });
      if (!name.endsWith(SEGMENT_SUFFIX)) continue;
      spool.nextSequence = Math.max(spool.nextSequence, Number.parseInt(name, 10) + 1 || 1);
      const read = await readSegment(file, scratch);
      if (!read) continue;
      const { data, modifiedMs } = read;
      const scanned = scanSegment(data);
      for (const problem of scanned.problems) onProblem({ file, offset: problem.offset, problem: problem.problem });
      if (scanned.problems.length > 0) {
        await fs.mkdir(path.join(directory, "damaged"), { recursive: true, mode: PRIVATE_DIRECTORY });
        await fs.copyFile(file, path.join(directory, "damaged", name));
        await fs.chmod(path.join(directory, "damaged", name), PRIVATE_FILE);
      }
      const records = scanned.records.filter((record) => !released.lines.has(`${name} ${record.offset}`));
      if (records.length === 0) {
        await fs.rm(file, { force: true });
        continue;
      }
      const first = decodeRecord(data.subarray(records[0].offset, records[0].offset + records[0].length), "view");
      if (options.owns && typeof first !== "string" && !options.owns(first)) {
        spool.foreign.records += records.length;
        spool.foreign.files.push(file);
      } else {
        const segment: Segment = { file, outstanding: records.length, durableAt: modifiedMs };
        spool.liveSegments.add(segment);
        for (const record of records) {
          spool.deferredEntries.push({ segment, ...record });
          spool.pendingRecordBytes += record.length;
        }
        spool.pendingRecords += records.length;
      }
      kept.push(name);
    }
    // Segment numbers named in the log are never reused, so a stale line can never hide a new record.
    spool.nextSequence = Math.max(spool.nextSequence, released.highestSequence + 1);
    await rewriteReleasedLog(directory, [...released.lines].filter((line) => kept.includes(line.split(" ")[0])));
    return spool;
  }

  /** Records on disk not yet released. */
  get pending(): number {
    return this.pendingRecords;
  }

  /** Bytes of the records not yet released, as they are on disk. */
  get pendingBytes(): number {
    return this.pendingRecordBytes;
  }

  /** When the oldest record not yet released was made durable (epoch ms), or undefined when none is pending. */
  get oldestPendingAt(): number | undefined {
    for (const segment of this.liveSegments) return segment.durableAt;
    return undefined;
  }

  /** Records left on disk to be read back by `takeDeferred`. */
  get deferred(): number {
    return this.deferredEntries.length - this.deferredHead;
  }

  /** Resolves once the write is durable on disk. */
  append(write: SpooledWrite): Promise<SpoolEntry> {
    return new Promise((resolve, reject) => this.appendThen(write, { appended: resolve, appendFailed: reject }));
  }

  /** `append` for many small msgs: tells `waiter` once the write is durable, without a promise per record. */
  appendThen(write: SpooledWrite, waiter: AppendWaiter): void {
    if (this.closed) return waiter.appendFailed(new Error("the spool is closed"));
    this.waiting.push({ write, waiter });
    this.flushing ??= this.flush();
  }

  /** Leaves a durable record on disk only, to be read back later in arrival order. */
  defer(entry: SpoolEntry): void {
    this.deferredEntries.push(entry);
  }

  /** Puts an entry just taken back at the head, when there was no room to write it after all. */
  returnDeferred(entry: SpoolEntry): void {
    if (this.deferredHead > 0) this.deferredEntries[--this.deferredHead] = entry;
    else this.deferredEntries.unshift(entry);
  }

  /** The next deferred entry's size, or undefined when none is deferred. */
  peekDeferredBytes(): number | undefined {
    return this.deferred > 0 ? this.deferredEntries[this.deferredHead].length : undefined;
  }

  /**
   * Reads back the oldest deferred records that lie one after the other in one segment, up to
   * `maxRecords` and `maxBytes` (at least one record), with a single read: a long backlog drains
   * at disk speed. `body`: as decodeRecord gives it.
   * A record that no longer reads comes back as a problem string.
   */
  async takeDeferredRun(maxRecords: number, maxBytes: number, body: "copied" | "view" = "copied"): Promise<DeferredRecord[]> {
    if (this.deferred === 0) return [];
    const first = this.deferredEntries[this.deferredHead];
    const run = [first];
    let end = first.offset + first.length;
    for (let index = this.deferredHead + 1; index < this.deferredEntries.length && run.length < maxRecords; index++) {
      const next = this.deferredEntries[index];
      if (next.segment !== first.segment || next.offset !== end || end + next.length - first.offset > maxBytes) break;
      run.push(next);
      end += next.length;
    }
    for (let taken = 0; taken < run.length; taken++) this.deferredEntries[this.deferredHead++] = undefined as unknown as SpoolEntry;
    if (this.deferredHead > 1024 && this.deferredHead * 2 > this.deferredEntries.length) {
      this.deferredEntries.splice(0, this.deferredHead);
      this.deferredHead = 0;
    }
    let data: Buffer | string;
    try {
      const handle = await fs.open(first.segment.file, "r");
      try {
        const buffer = Buffer.allocUnsafe(end - first.offset);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, first.offset);
        data = buffer.subarray(0, bytesRead);
      } finally {
        await handle.close();
      }
    } catch (error) {
      data = `cannot be read: ${(error as Error).message}`;
    }
    return run.map((entry) => ({
      entry,
      write: typeof data === "string" ? data : decodeRecord(data.subarray(entry.offset - first.offset, entry.offset - first.offset + entry.length), body),
    }));
  }

  /** The record is written (or failed for good): its segment goes once all its records have. */
  release(entry: SpoolEntry): void {
    if (this.closed) return;
    this.pendingRecords--;
    this.pendingRecordBytes -= entry.length;
    if (--entry.segment.outstanding > 0) return;
    this.liveSegments.delete(entry.segment);
    const removal = fs.rm(entry.segment.file, { force: true }).catch(() => undefined);
    this.removals.add(removal);
    void removal.finally(() => this.removals.delete(removal));
  }

  /**
   * Releases records for good, e.g. all the records of one written batch: those whose segment
   * still holds other outstanding records are first named in the released log (fsynced), so they
   * are never taken again at the next start, even though their segment stays on disk.
   */
  releaseAll(entries: SpoolEntry[]): Promise<void> {
    if (this.closed || entries.length === 0) return Promise.resolve();
    const leaving = new Map<Segment, number>();
    for (const entry of entries) leaving.set(entry.segment, (leaving.get(entry.segment) ?? 0) + 1);
    const lines = entries
      .filter((entry) => entry.segment.outstanding > (leaving.get(entry.segment) ?? 0))
      .map((entry) => `${path.basename(entry.segment.file)} ${entry.offset}\n`)
      .join("");
    const logged = lines === "" ? Promise.resolve() : (this.logging = this.logging.catch(() => undefined).then(() => writeSynced(path.join(this.directory, RELEASED_LOG), "a", lines)));
    return logged.then(() => entries.forEach((entry) => this.release(entry)));
  }

  /**
   * Stops changing the directory: appends under way finish, later releases leave files alone, so
   * every record not yet released stays on disk for the next start.
   */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing) await this.flushing;
    await this.logging.catch(() => undefined);
    await Promise.all([...this.removals]);
  }

  /** Keeps `text` durably in the file `name` beside the records (replacing it): what a route remembers for its next start besides them. */
  async keep(name: string, text: string): Promise<void> {
    const file = path.join(this.directory, name);
    await writeDurably(file, Buffer.from(text, "utf8"), `${file}${TEMP_SUFFIX}`);
  }

  /** What `keep` left under `name`, taken (the file is removed); undefined when there is none. */
  async takeKept(name: string): Promise<string | undefined> {
    const file = path.join(this.directory, name);
    const data = await readIfPresent(file);
    if (data) await fs.rm(file, { force: true });
    return data?.toString("utf8");
  }

  /**
   * Takes the oldest waiting appends, up to one segment's size (at least one), encoded one after
   * the other into `buffer` when it is large enough (one buffer serves a whole burst), else into a
   * new one; each taken append comes with where its record lies in the segment.
   */
  private nextSegment(buffer: Buffer | undefined): { appends: { waiter: AppendWaiter; offset: number; length: number; bodyLength: number }[]; buffer: Buffer; data: Buffer } {
    const layouts: RecordLayout[] = [];
    let bytes = 0;
    while (layouts.length < this.waiting.length) {
      const layout = layoutOf(this.waiting[layouts.length].write);
      if (layouts.length > 0 && bytes + layout.length > SEGMENT_BYTES) break;
      layouts.push(layout);
      bytes += layout.length;
    }
    const backing = buffer && buffer.length >= bytes ? buffer : Buffer.allocUnsafe(bytes);
    const data = backing.subarray(0, bytes);
    let offset = 0;
    const appends = this.waiting.splice(0, layouts.length).map(({ waiter }, index) => {
      const { length, write } = layouts[index];
      writeRecord(data, offset, layouts[index]);
      offset += length;
      return { waiter, offset: offset - length, length, bodyLength: write.body.length };
    });
    return { appends, buffer: backing, data };
  }

  private async flush(): Promise<void> {
    let buffer: Buffer | undefined;
    try {
      while (this.waiting.length > 0) {
        const next = this.nextSegment(buffer);
        const { appends, data } = next;
        buffer = next.buffer;
        const file = path.join(this.directory, `${String(this.nextSequence++).padStart(12, "0")}${SEGMENT_SUFFIX}`);
        try {
          await writeDurably(file, data);
        } catch (error) {
          const failure = new SpoolWriteError(this.directory, error as NodeJS.ErrnoException);
          for (const { waiter } of appends) waiter.appendFailed(failure);
          continue;
        }
        const segment: Segment = { file, outstanding: appends.length, durableAt: Date.now() };
        this.liveSegments.add(segment);
        this.pendingRecords += appends.length;
        this.pendingRecordBytes += data.length;
        for (const { waiter, offset, length, bodyLength } of appends) waiter.appended({ segment, offset, length, bodyLength });
      }
    } finally {
      this.flushing = undefined;
    }
  }
}

/** The file's bytes, or undefined when it is gone (a segment deleted as it was listed). */
async function readIfPresent(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * A segment's bytes, read into `scratch.buffer` (replaced by a larger one when the file does not
 * fit), and when it was last modified (made durable); undefined when the file is gone. A spool of
 * thousands of segments is scanned at open with one buffer instead of thousands of 8 MiB ones left
 * for V8 to collect.
 */
async function readSegment(file: string, scratch: { buffer: Buffer }): Promise<{ data: Buffer; modifiedMs: number } | undefined> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, "r");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const { size, mtimeMs } = await handle.stat();
    if (scratch.buffer.length < size) scratch.buffer = Buffer.allocUnsafe(size);
    const { bytesRead } = await handle.read(scratch.buffer, 0, size, 0);
    return { data: scratch.buffer.subarray(0, bytesRead), modifiedMs: mtimeMs };
  } finally {
    await handle.close();
  }
}

/** The released log's lines, and the highest segment number they name. */
async function readReleasedLog(directory: string): Promise<{ lines: Set<string>; highestSequence: number }> {
  const text = (await readIfPresent(path.join(directory, RELEASED_LOG)))?.toString("utf8") ?? "";
  // A line cut short by a crash names no record: it is dropped.
  const lines = new Set(text.split("\n").filter((line) => /^\d+\.seg \d+$/.test(line)));
  const highestSequence = Math.max(0, ...[...lines].map((line) => Number.parseInt(line, 10)));
  return { lines, highestSequence };
}

/** Keeps only the lines still needed (their segment is still on disk). */
async function rewriteReleasedLog(directory: string, lines: string[]): Promise<void> {
  const file = path.join(directory, RELEASED_LOG);
  if (lines.length === 0) {
    await fs.rm(file, { force: true });
    return;
  }
  await writeDurably(file, Buffer.from(lines.map((line) => `${line}\n`).join("")), `${file}${TEMP_SUFFIX}`);
}

/** Writes (`w`) or appends (`a`) `data` to `file` and waits until it is on the disk. */
async function writeSynced(file: string, flags: "w" | "a", data: Buffer | string): Promise<void> {
  const handle = await fs.open(file, flags, PRIVATE_FILE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes a file so that after a crash it is either complete or absent: temporary file, fsync, rename, directory fsync. */
async function writeDurably(file: string, data: Buffer, temporary = file.slice(0, -SEGMENT_SUFFIX.length) + TEMP_SUFFIX): Promise<void> {
  try {
    await writeSynced(temporary, "w", data);
  } catch (error) {
    // A partial file would take more of a disk that may be full (the next start removes it too).
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
  await fs.rename(temporary, file);
  const directory = await fs.open(path.dirname(file), "r");
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
