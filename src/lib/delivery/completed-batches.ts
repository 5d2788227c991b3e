import { createHash } from "node:crypto";
import type { WriteOutcome } from "./messages";

/** Batches completed by a msg, remembered (and kept across a graceful restart) to know that msg when it is sent again. */
const COMPLETED_BATCHES_REMEMBERED = 1000;

interface Completion {
  /** The completing msg's identity (completingIdentity). */
  msg: string;
  write: Promise<WriteOutcome | undefined>;
  /** Once written. */
  outcome?: WriteOutcome;
}

/** As a restart keeps it: base key, completing msg's identity, the write's outcome. */
type NotedCompletion = [string, string, WriteOutcome];

/**
 * A completing msg as it is known when sent again: its own message id and its bytes in the batch.
 * Undefined without a message id: a msg with the same bytes may then be another msg (a heartbeat).
 */
export function completingIdentity(messageId: string | undefined, body: string | Buffer | undefined): string | undefined {
  if (messageId === undefined || body === undefined) return undefined;
  return createHash("sha256").update(messageId).update("\0").update(body).digest("base64");
}

/**
 * The last batch written under each base key when a msg completed it, with that msg's identity.
 * A runtime that stops cannot answer the msgs whose batch it writes while it stops (Node-RED closes
 * the nodes that would answer them at once), so their devices send them again: alone, such a msg
 * would open a batch of its own and land at a continuation key. Known, it is answered by the write
 * of the batch that holds it, and nothing more is written.
 */
export class CompletedBatches {
  private readonly byKey = new Map<string, Completion>();

  /** The write of the batch under `base` that the msg `msg` (its identity) completed, when that is the last batch written there. */
  writeOf(base: string, msg: string): Promise<WriteOutcome | undefined> | undefined {
    const completion = this.byKey.get(base);
    return completion?.msg === msg ? completion.write : undefined;
  }

  /** A batch under `base` is being written: completed by the msg `msg` (its identity), or by another trigger (undefined). */
  writing(base: string, msg: string | undefined, write: Promise<WriteOutcome | undefined>): void {
    this.byKey.delete(base);
    if (msg === undefined) return;
    const completion: Completion = { msg, write };
    this.add(base, completion);
    // Not written after all (failed, or kept in the spool as the node closed): that msg sent again is a msg like any other.
    const forget = () => this.byKey.get(base) === completion && this.byKey.delete(base);
    write.then(
      (outcome) => (outcome ? (completion.outcome = outcome) : forget()),
      forget,
    );
  }

  /** The batches written, as `restore` takes them back; undefined when there are none. */
  noted(): string | undefined {
    const noted: NotedCompletion[] = [];
    for (const [base, { msg, outcome }] of this.byKey) if (outcome) noted.push([base, msg, outcome]);
    return noted.length > 0 ? JSON.stringify(noted) : undefined;
  }

  /** Takes back what `noted` gave (before any batch of this run is written); what is unreadable is left out. */
  restore(text: string): void {
    let noted: unknown;
    try {
      noted = JSON.parse(text);
    } catch {
      return;
    }
    if (!Array.isArray(noted)) return;
    for (const entry of noted as NotedCompletion[]) {
      const [base, msg, outcome] = entry;
      if (typeof base === "string" && typeof msg === "string" && typeof outcome?.key === "string") this.add(base, { msg, write: Promise.resolve(outcome), outcome });
    }
  }

  private add(base: string, completion: Completion): void {
    this.byKey.set(base, completion);
    if (this.byKey.size > COMPLETED_BATCHES_REMEMBERED) this.byKey.delete(this.byKey.keys().next().value!);
  }
}
