/** Below this a buffer comes from Node's shared slab or is too small to be worth keeping. */
const MIN_POOLED = 8 * 1024;
/** A spare up to this many times the size asked for serves a take when none of its size is left. */
const LARGER_SERVES = 4;

/**
 * Spare buffers for open batches: a buffer whose bytes moved to disk serves the next batch instead
 * of becoming garbage. Without it a fleet's bytes pass through fresh buffers at the ingest rate,
 * and memory freed only when V8 next collects (tens of MiB later) is memory the process holds.
 * Sizes go up in steps of an eighth of a power of two, so buffers of similar sizes are shared at
 * most 12.5 % over what was asked for, or up to LARGER_SERVES times when none of the size is
 * left: batches grow by doubling, so the sizes given back are rarely those asked for next, and a
 * spare left over becomes garbage when the batches need its room. Holds at most `capacity` bytes.
 */
export class BufferPool {
  private readonly spare = new Map<number, Buffer[]>();
  private held = 0;

  constructor(readonly capacity: number) {}

  /** Bytes of spare buffers held. */
  get bytes(): number {
    return this.held;
  }

  /** Whether `take(size)` would be served by a spare buffer. */
  has(size: number): boolean {
    return this.serving(size) !== undefined;
  }

  /** The size of the spare `take(size)` would use: of its size class, else the smallest larger one within LARGER_SERVES. */
  private serving(size: number): number | undefined {
    const length = sizeClass(size);
    if ((this.spare.get(length)?.length ?? 0) > 0) return length;
    let best: number | undefined;
    for (const [larger, list] of this.spare) if (list.length > 0 && larger > length && larger <= length * LARGER_SERVES && (best === undefined || larger < best)) best = larger;
    return best;
  }

  /**
   * Lets go of spare buffers, those of the size with most bytes first, until `bytes` are freed or
   * only spares of the size a take of `keep` would use are left (it is about to use one).
   */
  trim(bytes: number, keep = 0): void {
    const kept = this.serving(keep) ?? sizeClass(keep);
    const goal = Math.max(0, this.held - bytes);
    while (this.held > goal) {
      const [size, largest] = this.mostBytes(kept);
      if (largest.length === 0) return;
      largest.pop();
      this.held -= size;
    }
  }

  /** A buffer of at least `size` bytes (its length is its size class, or a spare's up to LARGER_SERVES times that), uninitialised. */
  take(size: number): Buffer {
    const length = this.serving(size);
    if (length === undefined) return Buffer.allocUnsafe(sizeClass(size));
    const buffer = this.spare.get(length)!.pop()!;
    this.held -= length;
    return buffer;
  }

  /**
   * Keeps a buffer from `take` that nothing refers to any more. When full, spares of the size that
   * has most bytes make room: the pool follows the sizes in use instead of filling up with one.
   */
  give(buffer: Buffer): void {
    const length = buffer.length;
    if (length < MIN_POOLED || length > this.capacity) return;
    while (this.held + length > this.capacity) {
      const [size, largest] = this.mostBytes(length);
      if (largest.length === 0) return;
      largest.pop();
      this.held -= size;
    }
    const list = this.spare.get(length);
    if (list) list.push(buffer);
    else this.spare.set(length, [buffer]);
    this.held += length;
  }

  /** The size whose spares hold the most bytes (other than `except`), and its spares. */
  private mostBytes(except = 0): [number, Buffer[]] {
    let most: [number, Buffer[]] = [0, []];
    for (const [size, list] of this.spare) if (size !== except && size * list.length > most[0] * most[1].length) most = [size, list];
    return most;
  }

  clear(): void {
    this.spare.clear();
    this.held = 0;
  }
}

/** `size` rounded up to the next eighth of its power of two (sizes below MIN_POOLED as they are). */
export function sizeClass(size: number): number {
  if (size < MIN_POOLED) return size;
  const step = 2 ** (Math.floor(Math.log2(size)) - 3);
  return Math.ceil(size / step) * step;
}
