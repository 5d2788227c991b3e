/** Below this a buffer comes from Node's shared slab or is too small to be worth keeping. */
const MIN_POOLED = 8 * 1024;

/**
 * Spare buffers for open batches: a buffer whose bytes moved to disk serves the next batch instead
 * of becoming garbage. Without it a fleet's bytes pass through fresh buffers at the ingest rate,
 * and memory freed only when V8 next collects (tens of MiB later) is memory the process holds.
 * Sizes go up in steps of an eighth of a power of two, so buffers of similar sizes are shared at
 * most 12.5 % over what was asked for. Holds at most `capacity` bytes.
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
    return (this.spare.get(sizeClass(size))?.length ?? 0) > 0;
  }

  /**
   * Lets go of spare buffers, those of the size with most bytes first, until `bytes` are freed or
   * only spares of `keep`'s size class are left (a take of that size is about to use one).
   */
  trim(bytes: number, keep = 0): void {
    const kept = sizeClass(keep);
    const goal = Math.max(0, this.held - bytes);
    while (this.held > goal) {
      const [size, largest] = this.mostBytes(kept);
      if (largest.length === 0) return;
      largest.pop();
      this.held -= size;
    }
  }

  /** A buffer of at least `size` bytes (its length is its size class), uninitialised. */
  take(size: number): Buffer {
    const length = sizeClass(size);
    const buffer = this.spare.get(length)?.pop();
    if (buffer === undefined) return Buffer.allocUnsafe(length);
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
