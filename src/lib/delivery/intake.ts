import type { WriteOutcome } from "./messages";
import type { Spool, SpoolEntry, SpooledWrite } from "./spool";
import { QueueFullError, WriterClosedError, type Writer } from "./writer";

/**
 * What happens to a msg that arrives while the writer holds as much as its bounds allow:
 * - `spool`: it is made durable in the spool and written later, when there is room (needs the spool);
 * - `reject`: it fails at once with QueueFullError, for a Catch node.
 */
export type QueueFullPolicy = "spool" | "reject";

/** How an accepted write ended for the msg that brought it. */
export type Acceptance =
  /** Written (or, in never-overwrite mode, found written). */
  | { state: "written"; outcome: WriteOutcome }
  /** Durable in the spool and no longer in memory: written later (or after a restart) and reported then. */
  | { state: "spooled" };

export interface IntakeEvents {
  /** A write that had left memory (spilled, or found in the spool at start) was written. */
  onLaterWritten(write: SpooledWrite, outcome: WriteOutcome): void;
  /** A write that had left memory failed for good. */
  onLaterFailed(write: SpooledWrite, error: Error): void;
  /** A spooled record could not be read back and was skipped. */
  onUnreadable(problem: string): void;
  /** Msgs started to go to the spool because the queue is full (once per episode). */
  onSpill(): void;
}

/**
 * Takes prepared writes into the writer, through the spool when there is one: with a spool a
 * write is durable before it is queued, is kept in memory while the writer has room and left on
 * disk (deferred) when it has not, and its record is released once it is written or failed for
 * good. Deferred records are read back in arrival order as room frees up.
 */
export class Intake {
  private closing = false;
  private draining = false;
  private spilling = false;
  private spool: Spool | undefined;

  constructor(
    private readonly writer: Writer,
    private readonly put: (write: SpooledWrite) => Promise<WriteOutcome>,
    private readonly policy: QueueFullPolicy,
    private readonly events: IntakeEvents,
    /** The spool being opened, or undefined without one. */
    private readonly opening?: Promise<Spool>,
  ) {
    opening?.then(
      (spool) => {
        this.spool = spool;
        this.drain();
      },
      () => undefined,
    );
  }

  /** Records in the spool not yet written. */
  get spooled(): number {
    return this.spool?.pending ?? 0;
  }

  /** Whether a write of `bytes` would be refused now (policy "reject" and a full queue), so it can be refused before it is prepared. */
  refuses(bytes: number): boolean {
    return this.policy === "reject" && !this.writer.hasRoom(bytes);
  }

  async accept(write: SpooledWrite): Promise<Acceptance> {
    const bytes = write.body.length;
    if (!this.opening) return { state: "written", outcome: await this.put(write) };
    if (this.policy === "reject" && !this.writer.hasRoom(bytes)) return { state: "written", outcome: await this.put(write) };
    const spool = await this.opening;
    const entry = await spool.append(write);
    // Closing: the record stays on disk for the next start.
    if (this.closing) return { state: "spooled" };
    if (this.writer.hasRoom(bytes) && (this.policy === "reject" || spool.deferred === 0)) return this.putHeld(entry, write);
    if (this.policy === "reject") {
      // The queue filled up while the record was made durable: put() rejects with QueueFullError.
      spool.release(entry);
      return { state: "written", outcome: await this.put(write) };
    }
    if (!this.spilling) {
      this.spilling = true;
      this.events.onSpill();
    }
    spool.defer(entry);
    return { state: "spooled" };
  }

  /** Moves deferred records into the writer while it has room. Call whenever the writer's load drops. */
  drain(): void {
    const spool = this.spool;
    if (!spool || this.draining || this.closing) return;
    if (spool.deferred === 0) {
      this.spilling = false;
      return;
    }
    this.draining = true;
    void this.drainSteps(spool).finally(() => {
      this.draining = false;
      // Writes may have finished while this drain read from disk; their wake-ups were swallowed.
      if (spool.deferred > 0 && this.writer.hasRoom(spool.peekDeferredBytes() ?? 0)) this.drain();
    });
  }

  /**
   * Closes within `timeoutMs`: without a spool the queue keeps draining until then; with one the
   * queue stops at once (it is on disk). Writes in flight get the rest of the time. Queued writes
   * end as "spooled" with a spool, or fail with WriterClosedError without one.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    try {
      if (!this.opening) await Promise.race([this.writer.idle(), deadline]);
      this.writer.close();
      await Promise.race([this.writer.idle(), deadline]);
      const spool = await this.opening?.catch(() => undefined);
      await spool?.close();
    } finally {
      clearTimeout(timer);
    }
  }

  private async drainSteps(spool: Spool): Promise<void> {
    for (;;) {
      const bytes = spool.peekDeferredBytes();
      if (bytes === undefined || this.closing || !this.writer.hasRoom(bytes)) return;
      const taken = await spool.takeDeferred();
      if (!taken) return;
      const { entry, write } = taken;
      if (typeof write === "string") {
        this.events.onUnreadable(`${entry.segment.file} at byte ${entry.offset}: ${write}`);
        spool.release(entry);
        continue;
      }
      if (this.closing || !this.writer.hasRoom(write.body.length)) {
        spool.returnDeferred(entry);
        return;
      }
      this.putHeld(entry, write).then(
        (acceptance) => acceptance.state === "written" && this.events.onLaterWritten(write, acceptance.outcome),
        (error: Error) => this.events.onLaterFailed(write, error),
      );
    }
  }

  /** Writes a durable record held in memory, and releases it unless the node closed first (then it stays for the next start). */
  private async putHeld(entry: SpoolEntry, write: SpooledWrite): Promise<Acceptance> {
    const spool = this.spool ?? (await this.opening!);
    try {
      const outcome = await this.put(write);
      spool.release(entry);
      return { state: "written", outcome };
    } catch (error) {
      if (error instanceof WriterClosedError) return { state: "spooled" };
      if (error instanceof QueueFullError) {
        // Room vanished between the check and the write: leave it on disk for the next drain.
        spool.defer(entry);
        return { state: "spooled" };
      }
      spool.release(entry);
      throw error;
    }
  }
}
