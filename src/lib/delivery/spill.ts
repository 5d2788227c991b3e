import fsCallbacks, { promises as fs } from "node:fs";
import path from "node:path";

/** Batch bytes on disk: readable by the Node-RED user only, whatever the umask (as the spool). */
const PRIVATE_DIRECTORY = 0o700;
const PRIVATE_FILE = 0o600;
const NEWLINE = 0x0a;

/** One spill file; deleted once none of its runs is needed any more. */
export interface SpillFile {
  readonly path: string;
  /** Runs still needed. */
  live: number;
}

/**
 * A run of a batch's bytes that lies on disk (or, while it is being written there, still in
 * `data`): a stretch of a spill file, or the body of a spool record, with the "\n" that goes
 * before it in a newline-concatenated batch. A class whose constructor sets every field: a fleet's
 * batches keep hundreds of thousands of runs, and one fixed shape holds them all in-object (80
 * bytes each; an object literal that later gained `buffer` and `spill` took 104).
 */
export class DiskRun {
  constructor(
    /** The file the bytes are in: a spill file's or a spool segment's path. */
    public path: string,
    public offset: number,
    public length: number,
    /** A "\n" comes before the bytes (it is not in the file). */
    public newline: boolean,
    /** The bytes themselves while they are not (yet) on disk: being written, or refused by the disk. */
    public data: Buffer | undefined = undefined,
    /** The batch buffer `data` lies in, for its owner to reuse once the data is on disk. */
    public buffer: Buffer | undefined = undefined,
    /** The spill file the run is in, released when the run is read or dropped; spool records are released with their batch. */
    public spill: SpillFile | undefined = undefined,
  ) {}
}

/** The disk refused batch bytes (full, permissions): the msg that needed the room is not accepted; the bytes stay in memory. */
export class SpillWriteError extends Error {
  override readonly name = "SpillWriteError";
  readonly code: string;
  constructor(directory: string, cause: NodeJS.ErrnoException) {
    super(`cannot move open batches to disk in ${directory} (over Batch memory): ${cause.message}; msg not accepted`);
    this.code = cause.code ?? cause.name;
  }
}

/**
 * Where open batches put their bytes beyond the memory budget when there is no spool: one file
 * per spill, written in one go (not synced: without the spool, open batches are not promised to
 * survive a crash), deleted when its last run has been read.
 */
export class SpillStore {
  private nextFile = 1;

  private constructor(readonly directory: string) {}

  /** Empties (creating) `directory`: what an earlier run left there belongs to batches that are gone. */
  static async open(directory: string): Promise<SpillStore> {
    await fs.rm(directory, { recursive: true, force: true });
    await fs.mkdir(directory, { recursive: true, mode: PRIVATE_DIRECTORY });
    return new SpillStore(directory);
  }

  /**
   * Writes the runs' data into one new file; each run then points there, unless its data was let
   * go of meanwhile. Returns the bytes that left memory. Throws SpillWriteError (the runs keep their data).
   */
  async write(runs: DiskRun[]): Promise<number> {
    const data = runs.map((run) => run.data!);
    const file: SpillFile = { path: path.join(this.directory, `${String(this.nextFile++).padStart(12, "0")}.spill`), live: 0 };
    try {
      const handle = await fs.open(file.path, "w", PRIVATE_FILE);
      try {
        // A disk that fills up takes part of the data without an error: what is left is written again, and then refused.
        const left = [...data];
        while (left.length > 0) {
          let { bytesWritten } = await handle.writev(left);
          while (left.length > 0 && bytesWritten >= left[0].length) bytesWritten -= left.shift()!.length;
          if (left.length > 0 && bytesWritten > 0) left[0] = left[0].subarray(bytesWritten);
        }
      } finally {
        await handle.close();
      }
    } catch (error) {
      await fs.rm(file.path, { force: true }).catch(() => undefined);
      throw new SpillWriteError(this.directory, error as NodeJS.ErrnoException);
    }
    let offset = 0;
    let moved = 0;
    runs.forEach((run, index) => {
      if (run.data === data[index]) {
        run.path = file.path;
        run.offset = offset;
        run.spill = file;
        run.data = undefined;
        file.live++;
        moved += run.length;
      }
      offset += data[index].length;
    });
    if (file.live === 0) void fs.rm(file.path, { force: true }).catch(() => undefined);
    return moved;
  }
}

/** The run is no longer needed: a spill file goes once its last run has. */
export function releaseRun(run: DiskRun): void {
  const file = run.spill;
  if (!file) return;
  run.spill = undefined;
  if (--file.live === 0) void fs.rm(file.path, { force: true }).catch(() => undefined);
}

/**
 * Takes the first `bytes` bytes off the front of `runs` (which it shortens): the runs that hold
 * them, the first and last cut to fit. Cut-off parts keep the run's file alive.
 */
export function takeRuns(runs: DiskRun[], bytes: number): DiskRun[] {
  const taken: DiskRun[] = [];
  let left = bytes;
  let used = 0;
  while (left > 0) {
    const run = runs[used];
    const size = run.length + (run.newline ? 1 : 0);
    if (size <= left) {
      taken.push(run);
      left -= size;
      used++;
      continue;
    }
    // Part of this run: the front goes, the rest stays for later.
    const newline = run.newline;
    if (newline) {
      run.newline = false;
      left--;
    }
    const front = new DiskRun(run.path, run.offset, left, newline, run.data?.subarray(0, left));
    if (run.data) run.data = run.data.subarray(left);
    run.offset += left;
    run.length -= left;
    taken.push(front);
    left = 0;
  }
  runs.splice(0, used);
  return taken;
}

/** Reads the runs' bytes, one after the other, into `target` from `at`; each file is opened once. */
export function readRuns(runs: DiskRun[], target: Buffer, at: number): Promise<void> {
  const reads = new Map<string, Stretch[]>();
  let into = at;
  for (const run of runs) {
    if (run.newline) target[into++] = NEWLINE;
    if (run.data) run.data.copy(target, into);
    else if (run.length > 0) {
      const list = reads.get(run.path) ?? [];
      if (list.length === 0) reads.set(run.path, list);
      list.push({ position: run.offset, length: run.length, into });
    }
    into += run.length;
  }
  return Promise.all([...reads].map(([file, list]) => readStretches(file, list, target))).then(() => undefined);
}

/** Bytes of a file to read into a buffer. */
interface Stretch {
  position: number;
  length: number;
  into: number;
}

/**
 * Reads stretches of one file into `target`, with fs callbacks: a completion storm reads back a
 * batch from a dozen files, and fs.promises (a FileHandle and promises per read) left some 80 KiB
 * of garbage per batch, gigabytes over ten thousand batches.
 */
function readStretches(file: string, list: Stretch[], target: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    fsCallbacks.open(file, "r", (openError, fd) => {
      if (openError) return reject(openError);
      let left = list.length;
      let failure: Error | undefined;
      const read = (error: Error | null, bytesRead: number, { position, length }: Stretch) => {
        failure ??= error ?? (bytesRead === length ? undefined : new Error(`${file}: ${length} bytes expected at ${position}, ${bytesRead} read`));
        if (--left > 0) return;
        fsCallbacks.close(fd, (closeError) => {
          const problem = failure ?? closeError;
          if (problem) reject(problem);
          else resolve();
        });
      };
      for (const stretch of list) fsCallbacks.read(fd, target, stretch.into, stretch.length, stretch.position, (error, bytesRead) => read(error, bytesRead, stretch));
    });
  });
}
