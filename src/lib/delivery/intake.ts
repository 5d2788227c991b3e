import type { MessageRoute, WriteOutcome, WriteReceiver } from "./messages";
import type { AppendWaiter, Spool, SpoolEntry, SpooledWrite } from "./spool";
import { QueueFullError, WriterClosedError, type Writer } from "./writer";

/**
 * What happens to a msg that arrives while the writer holds as much as its bounds allow:
 * - `spool`: it is made durable in the spool and written later, when there is room (needs the spool);
 * - `reject`: it fails at once with QueueFullError, for a Catch node.
 */
export type QueueFullPolicy = "spool" | "reject";

/** Where the end of one accepted msg is reported: written, or failed, or (with the spool) left on disk to be written later. */
export interface AcceptReceiver extends WriteReceiver {
  /** Durable in the spool and no longer in memory: written later (or after a restart) and reported then. */
  spooled(): void;
}

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

/** How much of the spool's backlog one read takes back into memory at most (a few hundred small records). */
const DRAIN_READ_BYTES = 64 * 1024;
/**
 * Records read back from the spool wait in the writer's queue only this many times its
 * concurrency limit (and at least DRAIN_AHEAD_MIN): they are safe on disk, and in memory they
 * would only age into garbage the process collects late (a record that waits through two of
 * V8's young-generation collections is moved to the old generation, collected far less often).
 */
const DRAIN_AHEAD = 1;
const DRAIN_AHEAD_MIN = 64;

/**
 * Takes prepared writes into the writer, through the spool when there is one: with a spool a
 * write is durable before it is queued, is kept in memory while the writer has room and left on
 * disk (deferred) when it has not, and its record is released once it is written or failed for
 * good. Deferred records are read back in arrival order as room frees up. Each msg is one small
 * object on its way (no promise chain), so a burst costs little beyond its payloads.
 */
export class Intake {
  private closing = false;
  private draining = false;
  private spilling = false;
  private spool: Spool | undefined;
  private unusable: Error | undefined;
  /** Msgs that arrived while the spool was opening, in arrival order: one small entry each, no promise. */
  private beforeOpen: { write: SpooledWrite; receiver: AcceptReceiver }[] = [];

  constructor(
    readonly writer: Writer,
    readonly route: MessageRoute,
    readonly policy: QueueFullPolicy,
    readonly events: IntakeEvents,
    /** The spool being opened, or undefined without one. */
    private readonly opening?: Promise<Spool>,
  ) {
    opening?.then(
      (spool) => {
        this.spool = spool;
        this.drain();
        for (const { write, receiver } of this.takeBeforeOpen()) this.accept(write, receiver);
      },
      (error: Error) => {
        this.unusable = error;
        for (const { receiver } of this.takeBeforeOpen()) receiver.failed(error);
      },
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

  /** Takes one prepared write; `receiver` hears how it ends. */
  accept(write: SpooledWrite, receiver: AcceptReceiver): void {
    if (!this.opening) return this.start(write, receiver);
    if (this.refuses(write.body.length)) return receiver.failed(this.writer.fullError());
    if (this.unusable) return receiver.failed(this.unusable);
    if (!this.spool) {
      this.beforeOpen.push({ write, receiver });
      return;
    }
    this.spool.appendThen(write, new SpooledDelivery(this, this.spool, write, receiver));
  }

  private takeBeforeOpen(): { write: SpooledWrite; receiver: AcceptReceiver }[] {
    const waiting = this.beforeOpen;
    this.beforeOpen = [];
    return waiting;
  }

  /** A record of `delivery` is durable: into the writer if there is room and nothing deferred is ahead of it, else left on disk. */
  appended(delivery: SpooledDelivery): void {
    // Closing: the record stays on disk for the next start.
    if (this.closing) return delivery.receiver.spooled();
    const bytes = delivery.write.body.length;
    if (this.writer.hasRoom(bytes) && (this.policy === "reject" || delivery.spool.deferred === 0)) return this.start(delivery.write, delivery);
    if (this.policy === "reject") {
      // The queue filled up while the record was made durable.
      delivery.spool.release(delivery.entry);
      return delivery.receiver.failed(this.writer.fullError());
    }
    this.defer(delivery);
  }

  /** How many writes from the spool may wait in the writer's queue. */
  private readAhead(): number {
    return Math.max(DRAIN_AHEAD_MIN, DRAIN_AHEAD * this.writer.limit.limit);
  }

  /** Leaves a durable record on disk only, as the queue is full (the log is told once per episode); its msg is done. */
  defer(delivery: SpooledDelivery): void {
    if (!this.spilling) {
      this.spilling = true;
      this.events.onSpill();
    }
    delivery.spool.defer(delivery.entry);
    delivery.receiver.spooled();
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
      if (spool.deferred > 0 && this.writer.queued < DRAIN_AHEAD_MIN && this.writer.hasRoom(spool.peekDeferredBytes() ?? 0)) this.drain();
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

  private start(write: SpooledWrite, receiver: WriteReceiver): void {
    const refusal = this.route.start(write, receiver);
    if (refusal) receiver.failed(refusal);
  }

  private async drainSteps(spool: Spool): Promise<void> {
    for (;;) {
      const bytes = spool.peekDeferredBytes();
      const wanted = this.readAhead() - this.writer.queued;
      if (bytes === undefined || this.closing || wanted <= 0 || !this.writer.hasRoom(bytes)) return;
      const run = await spool.takeDeferredRun(wanted, DRAIN_READ_BYTES);
      for (const [index, { entry, write }] of run.entries()) {
        if (typeof write === "string") {
          this.events.onUnreadable(`${entry.segment.file} at byte ${entry.offset}: ${write}`);
          spool.release(entry);
          continue;
        }
        if (this.closing || !this.writer.hasRoom(write.body.length)) {
          // No room for the rest of the run: back to the head of the backlog, in order.
          for (const rest of run.slice(index).reverse()) spool.returnDeferred(rest.entry);
          return;
        }
        const delivery = new SpooledDelivery(this, spool, write, new LaterReceiver(this.events, write));
        delivery.entry = entry;
        this.start(write, delivery);
      }
    }
  }
}

/**
 * One msg through the spool: waits for its record to be durable, then for its write; releases
 * the record once written or failed for good, and leaves it on disk when the node closes first.
 */
class SpooledDelivery implements AppendWaiter, WriteReceiver {
  entry!: SpoolEntry;
  constructor(
    private readonly intake: Intake,
    readonly spool: Spool,
    readonly write: SpooledWrite,
    readonly receiver: AcceptReceiver,
  ) {}

  appended(entry: SpoolEntry): void {
    this.entry = entry;
    this.intake.appended(this);
  }

  appendFailed(error: Error): void {
    this.receiver.failed(error);
  }

  written(outcome: WriteOutcome): void {
    this.spool.release(this.entry);
    this.receiver.written(outcome);
  }

  failed(error: Error): void {
    // Closed first: it stays on disk for the next start.
    if (error instanceof WriterClosedError) return this.receiver.spooled();
    // Room vanished between the check and the write: left on disk for the next drain.
    if (error instanceof QueueFullError) return this.intake.defer(this);
    this.spool.release(this.entry);
    this.receiver.failed(error);
  }
}

/** A msg read back from the spool: its original msg is gone, so its end is reported by events. */
class LaterReceiver implements AcceptReceiver {
  constructor(
    private readonly events: IntakeEvents,
    private readonly write: SpooledWrite,
  ) {}

  written(outcome: WriteOutcome): void {
    this.events.onLaterWritten(this.write, outcome);
  }

  failed(error: Error): void {
    this.events.onLaterFailed(this.write, error);
  }

  spooled(): void {}
}
