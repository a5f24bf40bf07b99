// A board's disk images under its data directory, read and patched directly (`<disk name>.img`), as a test looks
// past the firmware at what reached the media.
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { join } from "node:path";

/** `length` bytes of disk `disk`'s image at `offset`. */
export function readImage(dataDir: string, disk: string, offset: number, length: number): Uint8Array {
  const fd = openSync(join(dataDir, `${disk}.img`), "r");
  const bytes = new Uint8Array(length);
  readSync(fd, bytes, 0, length, offset);
  closeSync(fd);
  return bytes;
}

/** Overwrites disk `disk`'s image with `bytes` at `offset` (a torn write, a corrupt block). */
export function patchImage(dataDir: string, disk: string, offset: number, bytes: Uint8Array): void {
  const fd = openSync(join(dataDir, `${disk}.img`), "r+");
  writeSync(fd, bytes, 0, bytes.length, offset);
  closeSync(fd);
}
