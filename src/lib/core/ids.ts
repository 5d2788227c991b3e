import { randomBytes } from "node:crypto";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/**
 * Makes ULIDs: 26 characters that sort by creation time, unique across restarts (48 bits of
 * milliseconds, 80 random bits). Within one millisecond the random part counts up, so ids made
 * by one generator also sort in the order they were made.
 */
export class MessageIdGenerator {
  private lastTime = -1;
  private readonly random = new Uint8Array(10);

  constructor(private readonly now: () => number = Date.now) {}

  next(): string {
    let time = this.now();
    if (time > this.lastTime) {
      this.random.set(randomBytes(10));
      this.lastTime = time;
    } else {
      time = this.lastTime;
      this.incrementRandom();
    }
    return encodeTime(time) + encodeRandom(this.random);
  }

  private incrementRandom(): void {
    for (let i = this.random.length - 1; i >= 0; i--) {
      if (this.random[i] < 0xff) {
        this.random[i]++;
        return;
      }
      this.random[i] = 0;
    }
    // All 80 bits overflowed within one millisecond: move on to the next one.
    this.lastTime++;
  }
}

function encodeTime(time: number): string {
  let text = "";
  for (let i = 0; i < 10; i++) {
    text = CROCKFORD[time % 32] + text;
    time = Math.floor(time / 32);
  }
  return text;
}

function encodeRandom(bytes: Uint8Array): string {
  let text = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      text += CROCKFORD[(buffer >> bits) & 31];
    }
    buffer &= (1 << bits) - 1;
  }
  return text;
}

/** The UTC date of `time` as YYYY-MM-DD, the seed's batch id autofill. */
export function utcDate(time: number): string {
  return new Date(time).toISOString().slice(0, 10);
}
