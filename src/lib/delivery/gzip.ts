import { createGzip, type Gzip } from "node:zlib";
import type { ObjectWriter, UploadResult } from "./multipart";

/** Raw bytes gathered before each hand-over to zlib: every write to zlib is a trip to the thread pool. */
const STAGE_SIZE = 64 * 1024;
/** What one deflate stream holds besides its input: window and hash tables at zlib's defaults (windowBits 15, memLevel 8). */
export const DEFLATE_STATE_BYTES = (1 << 17) + (1 << 17);

/**
 * Compresses an object while it is written: raw bytes go through one gzip stream, whose output
 * goes on to the upload, so neither the raw nor the compressed object is ever held whole.
 */
export class GzipWriter implements ObjectWriter {
  private readonly gzip: Gzip = createGzip();
  private readonly ended: Promise<void>;
  private stage = Buffer.allocUnsafe(STAGE_SIZE);
  private staged = 0;
  /** Shared by every writer waiting for zlib to take more. */
  private drain: Promise<void> | undefined;

  constructor(private readonly upload: ObjectWriter) {
    this.gzip.on("data", (compressed: Buffer) => upload.write(compressed));
    this.ended = new Promise((resolve, reject) => {
      this.gzip.once("end", resolve);
      this.gzip.once("error", reject);
    });
    // finish() reports a zlib failure; until then it must not count as unhandled.
    this.ended.catch(() => undefined);
  }

  /** Bytes held in memory: the stage, zlib's input and state, and the upload's part buffers. */
  get buffered(): number {
    return STAGE_SIZE + DEFLATE_STATE_BYTES + this.gzip.writableLength + this.upload.buffered;
  }

  get backlogged(): boolean {
    return this.gzip.writableNeedDrain || this.upload.backlogged;
  }

  async drained(): Promise<void> {
    if (this.gzip.writableNeedDrain) {
      // Once end() was called zlib never emits "drain": the end of its output releases the waiters too.
      this.drain ??= new Promise<void>((resolve) => this.gzip.once("drain", resolve)).finally(() => (this.drain = undefined));
      await Promise.race([this.drain, this.ended.catch(() => undefined)]);
    }
    await this.upload.drained();
  }

  get failed(): Error | undefined {
    return this.upload.failed;
  }

  write(bytes: Buffer): void {
    if (this.staged + bytes.length > STAGE_SIZE) this.handOver();
    if (bytes.length >= STAGE_SIZE) {
      this.gzip.write(bytes);
      return;
    }
    bytes.copy(this.stage, this.staged);
    this.staged += bytes.length;
  }

  writeText(text: string): void {
    if (text.length * 3 > STAGE_SIZE - this.staged) {
      this.write(Buffer.from(text, "utf8"));
      return;
    }
    this.staged += this.stage.write(text, this.staged, "utf8");
  }

  async finish(): Promise<UploadResult> {
    this.handOver();
    this.gzip.end();
    await this.ended;
    return this.upload.finish();
  }

  /** Gives the staged bytes to zlib, which keeps the buffer until it has compressed it. */
  private handOver(): void {
    if (this.staged === 0) return;
    this.gzip.write(this.stage.subarray(0, this.staged));
    this.stage = Buffer.allocUnsafe(STAGE_SIZE);
    this.staged = 0;
  }
}
