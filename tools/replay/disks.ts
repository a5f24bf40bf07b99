// A disk's initial contents as a recording holds them (docs/replay.md, "Disks"): a SHA-256 that skips the chunks that
// are all zeros, so a blank or sparse disk hashes as fast as it reads, and, with --record-disks, those non-zero chunks
// themselves. A replay rebuilds each disk in memory from them, answering as the recorded backend did.
import { createHash, type Hash } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import { type DiskBackend, memoryDisk } from "../../host/devices/disk_backend.ts";
import { DISK_CHUNK_BYTES, type RecordedDisk } from "./format.ts";

const READ_BYTES = 16 * DISK_CHUNK_BYTES;

const zeros = new Map<number, Buffer>();

function isZero(bytes: Uint8Array): boolean {
  // One native comparison with a zero block of the same size: a disk of zeros is the common case, and a chunk
  // from a recording may start at any byte offset.
  let zero = zeros.get(bytes.length);
  if (zero === undefined) zeros.set(bytes.length, (zero = Buffer.alloc(bytes.length)));
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).equals(zero);
}

/** Hashes a disk's contents chunk by chunk: |chunk index u64 LE|chunk| for every non-zero chunk, then |size u64 LE|. */
export class DiskContentsHash {
  private readonly hash: Hash = createHash("sha256");
  private readonly index = Buffer.alloc(8);

  /** Adds chunk `chunk` (DISK_CHUNK_BYTES); false when it is all zeros (skipped). */
  add(chunk: number, bytes: Uint8Array): boolean {
    if (isZero(bytes)) return false;
    this.index.writeBigUInt64LE(BigInt(chunk));
    this.hash.update(this.index);
    this.hash.update(bytes);
    return true;
  }

  finish(sizeBytes: number): string {
    this.index.writeBigUInt64LE(BigInt(sizeBytes));
    this.hash.update(this.index);
    return this.hash.digest("hex");
  }
}

/** The hash of a disk of `sizeBytes` zeros. */
export function blankDiskHash(sizeBytes: number): string {
  return new DiskContentsHash().finish(sizeBytes);
}

/**
 * Reads a disk image file (absent: a blank disk, as the board would create it) and hashes it; `onChunk` gets each
 * non-zero chunk (the buffer is reused: copy it). Sizes that are not whole chunks are refused (boards size in MiB).
 */
export function hashDiskFile(path: string | undefined, sizeBytes: number, onChunk?: (chunk: number, bytes: Uint8Array) => void): string {
  if (sizeBytes % DISK_CHUNK_BYTES !== 0) throw new RangeError(`disk of ${sizeBytes} bytes is not a whole number of ${DISK_CHUNK_BYTES}-byte chunks`);
  const hash = new DiskContentsHash();
  if (path === undefined || !existsSync(path)) return hash.finish(sizeBytes);
  const fd = openSync(path, "r");
  try {
    const fileBytes = Math.min(fstatSync(fd).size, sizeBytes);
    const buffer = new Uint8Array(READ_BYTES);
    for (let offset = 0; offset < fileBytes; offset += READ_BYTES) {
      const want = Math.min(READ_BYTES, sizeBytes - offset);
      buffer.fill(0);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, buffer, got, want - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      for (let at = 0; at < want; at += DISK_CHUNK_BYTES) {
        const chunk = buffer.subarray(at, at + DISK_CHUNK_BYTES);
        if (hash.add((offset + at) / DISK_CHUNK_BYTES, chunk)) onChunk?.((offset + at) / DISK_CHUNK_BYTES, chunk);
      }
    }
  } finally {
    closeSync(fd);
  }
  return hash.finish(sizeBytes);
}

/**
 * A replay's disk: in memory, filled with `chunks`, answering as the recorded backend did (a file disk says every
 * range is mapped, docs of host/devices/disk_backend.ts). Returns it with the hash of what it was filled with.
 */
export function replayDisk(disk: RecordedDisk, chunks: readonly { chunk: number; bytes: Uint8Array }[]): { backend: DiskBackend; sha256: string } {
  const memory = memoryDisk(disk.name, disk.sizeBytes, disk.blockSize);
  const hash = new DiskContentsHash();
  const sorted = [...chunks].sort((a, b) => a.chunk - b.chunk);
  for (const { chunk, bytes } of sorted) {
    if (hash.add(chunk, bytes)) memory.write(chunk * DISK_CHUNK_BYTES, bytes);
  }
  const sha256 = hash.finish(disk.sizeBytes);
  if (disk.backend === "memory") return { backend: memory, sha256 };
  const backend: DiskBackend = {
    sizeBytes: memory.sizeBytes,
    blockSize: memory.blockSize,
    name: memory.name,
    read: (offsetBytes, into) => memory.read(offsetBytes, into),
    write: (offsetBytes, data) => memory.write(offsetBytes, data),
    flush: () => memory.flush(),
    unmap: (offsetBytes, lengthBytes) => memory.unmap(offsetBytes, lengthBytes),
    isMapped: () => true,
    close: () => memory.close(),
  };
  return { backend, sha256 };
}
