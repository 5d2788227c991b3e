import assert from "node:assert/strict";
import { BufferPool, sizeClass } from "../../nodes/lib/delivery/buffer-pool";

const KiB = 1024;

describe("spare buffers for open batches (BufferPool)", () => {
  it("rounds sizes up to an eighth of their power of two, at most 12.5 % more; small sizes stay as they are", () => {
    assert.equal(sizeClass(100), 100);
    assert.equal(sizeClass(8 * KiB - 1), 8 * KiB - 1);
    assert.equal(sizeClass(16 * KiB), 16 * KiB);
    assert.equal(sizeClass(16 * KiB + 1), 18 * KiB);
    assert.equal(sizeClass(1000 * KiB), 1024 * KiB);
    for (let size = 8 * KiB; size < 64 * 1024 * KiB; size = Math.ceil(size * 1.37)) {
      const rounded = sizeClass(size);
      assert.ok(rounded >= size && rounded <= size * 1.125, `${size} -> ${rounded}`);
      assert.equal(sizeClass(rounded), rounded, "a class is its own class");
    }
  });

  it("gives a buffer back to the next take of its size class instead of allocating one", () => {
    const pool = new BufferPool(1024 * KiB);
    const first = pool.take(16 * KiB + 5);
    assert.equal(first.length, 18 * KiB);
    pool.give(first);
    assert.equal(pool.bytes, 18 * KiB);
    assert.equal(pool.take(17 * KiB), first, "the same class: the spare buffer");
    assert.equal(pool.bytes, 0);
    assert.notEqual(pool.take(17 * KiB), first, "taken already: a new one");
  });

  it("holds at most its capacity, keeps no small or oversized buffers, and makes room with the size that has most bytes", () => {
    const pool = new BufferPool(64 * KiB);
    pool.give(Buffer.alloc(4 * KiB));
    pool.give(Buffer.alloc(128 * KiB));
    assert.equal(pool.bytes, 0);
    const sixteens = [pool.take(16 * KiB), pool.take(16 * KiB), pool.take(16 * KiB), pool.take(16 * KiB)];
    for (const buffer of sixteens) pool.give(buffer);
    assert.equal(pool.bytes, 64 * KiB);
    // Full of 16 KiB spares: a 32 KiB one replaces two of them, so the pool follows the sizes in use.
    const thirtyTwo = pool.take(32 * KiB);
    pool.give(thirtyTwo);
    assert.equal(pool.bytes, 64 * KiB);
    assert.equal(pool.take(32 * KiB), thirtyTwo);
    // A size that has most bytes already is not kept beyond the capacity.
    pool.give(Buffer.alloc(32 * KiB));
    pool.give(Buffer.alloc(16 * KiB));
    assert.ok(pool.bytes <= 64 * KiB);
    pool.clear();
    assert.equal(pool.bytes, 0);
  });

  it("tells whether a take would be served, and lets spares go when the batches need the room", () => {
    const pool = new BufferPool(1024 * KiB);
    for (const size of [16, 16, 16, 32]) pool.give(Buffer.alloc(size * KiB));
    assert.equal(pool.bytes, 80 * KiB);
    assert.ok(pool.has(16 * KiB) && pool.has(31 * KiB), "31 KiB is of the 32 KiB class");
    assert.ok(!pool.has(64 * KiB));
    pool.trim(20 * KiB);
    assert.equal(pool.bytes, 48 * KiB, "two 16 KiB spares (the size with most bytes) went");
    pool.trim(1024 * KiB, 31 * KiB);
    assert.equal(pool.bytes, 32 * KiB, "the spare of the size about to be taken stays");
    assert.ok(pool.has(32 * KiB) && !pool.has(16 * KiB));
    pool.trim(1024 * KiB);
    assert.equal(pool.bytes, 0);
  });
});
