export const MiB = 1024 * 1024;

/** `size` bytes that differ from chunk to chunk and from position to position, so a misplaced byte shows. */
export function patternBytes(index: number, size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  const words = Math.floor(size / 4);
  for (let i = 0; i < words; i++) bytes.writeUInt32LE((index * 2654435761 + i * 40503) >>> 0, i * 4);
  bytes.fill(index & 0xff, words * 4);
  return bytes;
}
