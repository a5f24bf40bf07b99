// The storage behind an emulated SCSI disk: a sparse file (so a board keeps its disks between runs) or sparse
// memory (tests, scratch disks). Every call is synchronous so a run replays the same way each time: the virtual
// clock, not the host's I/O scheduler, decides when a command completes.
import { closeSync, existsSync, fdatasyncSync, fstatSync, ftruncateSync, openSync, readSync, renameSync, writeSync, writevSync } from "node:fs";

export type BlockSize = 512 | 4096;

export interface DiskBackend {
  readonly sizeBytes: number;
  readonly blockSize: BlockSize;
  readonly name: string;
  /** Fills `into` from `offsetBytes`; ranges never written (or unmapped since) read as zeros. */
  read(offsetBytes: number, into: Uint8Array): void;
  /** Stores `data` at `offsetBytes`; later reads see it at once. */
  write(offsetBytes: number, data: Uint8Array): void;
  /**
   * As write(), but the backend may keep `data` and store it later: at its next call of any other kind, or at
   * releaseHeld() at the latest, so that adjacent held writes reach the host in one system call. The caller leaves
   * `data` unchanged until releaseHeld() and answers nothing before it. Returns the write's index among those held
   * since the last releaseHeld() (from 0). A failure to store it is reported by releaseHeld(), not thrown.
   * Optional: a backend without it (memory: nothing to gain) is written with write().
   */
  writeHeld?(offsetBytes: number, data: Uint8Array): number;
  /** Stores every held write; returns the indexes (writeHeld's) of those the host failed (empty when none did). */
  releaseHeld?(): readonly number[];
  /** Makes every completed write durable (fdatasync for a file; nothing to do in memory). */
  flush(): void;
  /** Deallocates the range: later reads return zeros. */
  unmap(offsetBytes: number, lengthBytes: number): void;
  /** True when every block the range touches holds written data (exact in memory; a file always answers true). */
  isMapped(offsetBytes: number, lengthBytes: number): boolean;
  close(): void;
}

/** A disk file that exists with another size, is not a regular file, or cannot be opened. */
export class DiskFileError extends Error {
  override name = "DiskFileError";
}

/** The host failed an I/O call on an open disk; the logical unit reports it as a MEDIUM ERROR. */
export class DiskIoError extends Error {
  override name = "DiskIoError";
}

const KIB = 1024;
/** Memory disks allocate in chunks this size: large enough that the Map stays small, small enough to stay sparse. */
export const MEMORY_CHUNK_SIZE_BYTES = 64 * KIB;
/** A file disk's unmap reads and zeroes the file in steps this size, so it never holds more than one step. */
const FILE_UNMAP_STEP_BYTES = 1024 * KIB;
/** A run of held writes is stored once it reaches either bound (pwritev takes at most IOV_MAX, 1024, pieces). */
const HELD_RUN_PIECES_MAX = 256;
const HELD_RUN_BYTES_MAX = 4096 * KIB;
const NONE_FAILED: readonly number[] = [];

function checkGeometry(name: string, sizeBytes: number, blockSize: number): void {
  if (blockSize !== 512 && blockSize !== 4096) throw new RangeError(`disk ${name}: block size ${blockSize} is neither 512 nor 4096`);
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % blockSize !== 0) {
    throw new RangeError(`disk ${name}: size ${sizeBytes} is not a positive whole number of ${blockSize}-byte blocks`);
  }
}

/** Out-of-range access is the caller's bug (the logical unit checks every LBA first), so it throws at once. */
function checkRange(name: string, sizeBytes: number, offsetBytes: number, lengthBytes: number): void {
  if (!Number.isSafeInteger(offsetBytes) || !Number.isSafeInteger(lengthBytes) || offsetBytes < 0 || lengthBytes < 0 ||
    offsetBytes + lengthBytes > sizeBytes) {
    throw new RangeError(`disk ${name}: access 0x${offsetBytes.toString(16)}+${lengthBytes} outside its ${sizeBytes} bytes`);
  }
}

/** One allocated chunk of a memory disk and which of its blocks hold data (1) or are deallocated (0). */
interface MemoryChunk {
  bytes: Uint8Array;
  mappedBlocks: Uint8Array;
  mappedBlockCount: number;
}

class MemoryDisk implements DiskBackend {
  // Invariant: a block not marked mapped holds zeros, so dropping or never allocating a chunk loses nothing.
  private readonly chunks = new Map<number, MemoryChunk>();
  private closed = false;

  constructor(
    readonly name: string,
    readonly sizeBytes: number,
    readonly blockSize: BlockSize,
  ) {
    checkGeometry(name, sizeBytes, blockSize);
  }

  read(offsetBytes: number, into: Uint8Array): void {
    this.checkAccess(offsetBytes, into.length);
    let doneBytes = 0;
    while (doneBytes < into.length) { // bounded: each step consumes at least one byte of `into`
      const { chunkIndex, startBytes, stepBytes } = this.step(offsetBytes + doneBytes, into.length - doneBytes);
      const chunk = this.chunks.get(chunkIndex);
      const target = into.subarray(doneBytes, doneBytes + stepBytes);
      if (chunk === undefined) target.fill(0);
      else target.set(chunk.bytes.subarray(startBytes, startBytes + stepBytes));
      doneBytes += stepBytes;
    }
  }

  write(offsetBytes: number, data: Uint8Array): void {
    this.checkAccess(offsetBytes, data.length);
    let doneBytes = 0;
    while (doneBytes < data.length) {
      const { chunkIndex, startBytes, stepBytes } = this.step(offsetBytes + doneBytes, data.length - doneBytes);
      const chunk = this.chunks.get(chunkIndex) ?? this.allocate(chunkIndex);
      chunk.bytes.set(data.subarray(doneBytes, doneBytes + stepBytes), startBytes);
      this.markBlocks(chunk, startBytes, stepBytes);
      doneBytes += stepBytes;
    }
  }

  flush(): void {
    this.checkOpen();
  }

  unmap(offsetBytes: number, lengthBytes: number): void {
    this.checkAccess(offsetBytes, lengthBytes);
    let doneBytes = 0;
    while (doneBytes < lengthBytes) {
      const { chunkIndex, startBytes, stepBytes } = this.step(offsetBytes + doneBytes, lengthBytes - doneBytes);
      const chunk = this.chunks.get(chunkIndex);
      if (chunk !== undefined) this.unmapInChunk(chunkIndex, chunk, startBytes, stepBytes);
      doneBytes += stepBytes;
    }
  }

  isMapped(offsetBytes: number, lengthBytes: number): boolean {
    this.checkAccess(offsetBytes, lengthBytes);
    const firstBlockIndex = Math.floor(offsetBytes / this.blockSize);
    const endBlockIndex = Math.ceil((offsetBytes + lengthBytes) / this.blockSize);
    const blocksPerChunk = MEMORY_CHUNK_SIZE_BYTES / this.blockSize;
    for (let blockIndex = firstBlockIndex; blockIndex < endBlockIndex; blockIndex += 1) {
      const chunk = this.chunks.get(Math.floor(blockIndex / blocksPerChunk));
      if (chunk === undefined || chunk.mappedBlocks[blockIndex % blocksPerChunk] === 0) return false;
    }
    return true;
  }

  close(): void {
    this.closed = true;
    this.chunks.clear();
  }

  /** How many chunks hold memory now, so tests can see that the disk stays sparse. */
  get allocatedChunkCount(): number {
    return this.chunks.size;
  }

  /** The part of [offsetBytes, offsetBytes + lengthBytes) that lies in one chunk. */
  private step(offsetBytes: number, lengthBytes: number): { chunkIndex: number; startBytes: number; stepBytes: number } {
    const chunkIndex = Math.floor(offsetBytes / MEMORY_CHUNK_SIZE_BYTES);
    const startBytes = offsetBytes - chunkIndex * MEMORY_CHUNK_SIZE_BYTES;
    return { chunkIndex, startBytes, stepBytes: Math.min(lengthBytes, MEMORY_CHUNK_SIZE_BYTES - startBytes) };
  }

  private allocate(chunkIndex: number): MemoryChunk {
    // The last chunk may extend past the disk's end; the range check keeps every access inside the disk.
    const chunk = {
      bytes: new Uint8Array(MEMORY_CHUNK_SIZE_BYTES),
      mappedBlocks: new Uint8Array(MEMORY_CHUNK_SIZE_BYTES / this.blockSize),
      mappedBlockCount: 0,
    };
    this.chunks.set(chunkIndex, chunk);
    return chunk;
  }

  /** Every block the written bytes touch becomes mapped, even when only part of it was written. */
  private markBlocks(chunk: MemoryChunk, startBytes: number, lengthBytes: number): void {
    const firstBlockIndex = Math.floor(startBytes / this.blockSize);
    const endBlockIndex = Math.ceil((startBytes + lengthBytes) / this.blockSize);
    for (let blockIndex = firstBlockIndex; blockIndex < endBlockIndex; blockIndex += 1) {
      if (chunk.mappedBlocks[blockIndex] === 0) chunk.mappedBlockCount += 1;
      chunk.mappedBlocks[blockIndex] = 1;
    }
  }

  /** Zeroes the bytes; only blocks the range covers whole become deallocated; an empty chunk is dropped. */
  private unmapInChunk(chunkIndex: number, chunk: MemoryChunk, startBytes: number, lengthBytes: number): void {
    chunk.bytes.fill(0, startBytes, startBytes + lengthBytes);
    const firstBlockIndex = Math.ceil(startBytes / this.blockSize);
    const endBlockIndex = Math.floor((startBytes + lengthBytes) / this.blockSize);
    for (let blockIndex = firstBlockIndex; blockIndex < endBlockIndex; blockIndex += 1) {
      if (chunk.mappedBlocks[blockIndex] === 1) chunk.mappedBlockCount -= 1;
      chunk.mappedBlocks[blockIndex] = 0;
    }
    if (chunk.mappedBlockCount === 0) this.chunks.delete(chunkIndex);
  }

  private checkAccess(offsetBytes: number, lengthBytes: number): void {
    this.checkOpen();
    checkRange(this.name, this.sizeBytes, offsetBytes, lengthBytes);
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`disk ${this.name} is closed`);
  }
}

class FileDisk implements DiskBackend {
  private fd: number | null;
  private unmapScratch: Uint8Array | null = null; // one step's worth, made on the first unmap
  // Held writes (writeHeld): the one run of adjacent ones not stored yet, [runStartBytes, runEndBytes) of the file,
  // its pieces in order, the first one's index; how many were held since the last releaseHeld(); which failed.
  private readonly runPieces: Uint8Array[] = [];
  private runStartBytes = 0;
  private runEndBytes = 0;
  private runFirstIndex = 0;
  private heldCount = 0;
  private heldFailed: number[] = [];

  constructor(
    readonly name: string,
    readonly sizeBytes: number,
    readonly blockSize: BlockSize,
    fd: number,
  ) {
    this.fd = fd;
  }

  read(offsetBytes: number, into: Uint8Array): void {
    const fd = this.checkAccess(offsetBytes, into.length);
    if (this.runPieces.length > 0) this.storeRun(); // held writes first: a read sees every write before it
    let doneBytes = 0;
    while (doneBytes < into.length) { // readSync may return fewer bytes than asked; each pass moves at least one
      let readBytes: number;
      try { // inline rather than through io(): no closure made per transfer on the data path
        readBytes = readSync(fd, into, doneBytes, into.length - doneBytes, offsetBytes + doneBytes);
      } catch (error) {
        throw this.ioError("read", error);
      }
      if (readBytes === 0) { // past the end of a file someone shortened under us: the unwritten tail reads as zeros
        into.fill(0, doneBytes);
        return;
      }
      doneBytes += readBytes;
    }
  }

  write(offsetBytes: number, data: Uint8Array): void {
    const fd = this.checkAccess(offsetBytes, data.length);
    if (this.runPieces.length > 0) this.storeRun(); // in order: a held write before this one is stored first
    this.writeAt(fd, offsetBytes, data);
  }

  // All of `data` at `offsetBytes`, in as many pwrite calls as the host needs; DiskIoError when it fails.
  private writeAt(fd: number, offsetBytes: number, data: Uint8Array): void {
    let doneBytes = 0;
    while (doneBytes < data.length) { // each pass moves at least one byte, or throws
      let writtenBytes: number;
      try {
        writtenBytes = writeSync(fd, data, doneBytes, data.length - doneBytes, offsetBytes + doneBytes);
      } catch (error) {
        throw this.ioError("write", error);
      }
      if (writtenBytes === 0) throw new DiskIoError(`disk ${this.name}: write at 0x${(offsetBytes + doneBytes).toString(16)} made no progress`);
      doneBytes += writtenBytes;
    }
  }

  // A write that continues the held run joins it; any other first stores the run and starts a new one.
  writeHeld(offsetBytes: number, data: Uint8Array): number {
    this.checkAccess(offsetBytes, data.length);
    const pieces = this.runPieces;
    if (pieces.length > 0 && (offsetBytes !== this.runEndBytes || pieces.length >= HELD_RUN_PIECES_MAX ||
      this.runEndBytes - this.runStartBytes + data.length > HELD_RUN_BYTES_MAX)) this.storeRun();
    if (pieces.length === 0) {
      this.runStartBytes = offsetBytes;
      this.runEndBytes = offsetBytes;
      this.runFirstIndex = this.heldCount;
    }
    pieces.push(data);
    this.runEndBytes += data.length;
    return this.heldCount++;
  }

  releaseHeld(): readonly number[] {
    if (this.runPieces.length > 0) this.storeRun();
    this.heldCount = 0;
    if (this.heldFailed.length === 0) return NONE_FAILED;
    const failed = this.heldFailed;
    this.heldFailed = [];
    return failed;
  }

  flush(): void {
    const fd = this.checkAccess(0, 0);
    if (this.runPieces.length > 0) this.storeRun();
    this.io("fdatasync", () => fdatasyncSync(fd));
  }

  /**
   * Node has no hole-punching call, so the range is zeroed instead; steps that already read as zeros (never
   * written, or holes) are skipped, which keeps a sparse file sparse when the range was never written.
   */
  unmap(offsetBytes: number, lengthBytes: number): void {
    this.checkAccess(offsetBytes, lengthBytes);
    const scratch = this.unmapScratch ?? (this.unmapScratch = new Uint8Array(FILE_UNMAP_STEP_BYTES));
    let doneBytes = 0;
    while (doneBytes < lengthBytes) {
      const step = scratch.subarray(0, Math.min(FILE_UNMAP_STEP_BYTES, lengthBytes - doneBytes));
      this.read(offsetBytes + doneBytes, step);
      if (step.some((byte) => byte !== 0)) this.write(offsetBytes + doneBytes, step.fill(0));
      doneBytes += step.length;
    }
  }

  isMapped(offsetBytes: number, lengthBytes: number): boolean {
    this.checkAccess(offsetBytes, lengthBytes);
    return true;
  }

  close(): void {
    if (this.fd !== null && this.runPieces.length > 0) this.storeRun();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /**
   * Stores the held run: its pieces in one pwritev (the rest piece by piece when the host takes fewer bytes). When
   * that fails, each piece is written alone, so that only the writes the host refuses are reported as failed.
   */
  private storeRun(): void {
    const pieces = this.runPieces;
    const fd = this.fd!;
    try {
      let doneBytes = pieces.length === 1 ? 0 : writevSync(fd, pieces, this.runStartBytes);
      let at = this.runStartBytes;
      for (const piece of pieces) { // bounded by the pieces; what writev did not take, written by write()
        if (doneBytes >= piece.length) doneBytes -= piece.length;
        else {
          this.writeAt(fd, at + doneBytes, piece.subarray(doneBytes));
          doneBytes = 0;
        }
        at += piece.length;
      }
    } catch {
      let at = this.runStartBytes;
      for (const [index, piece] of pieces.entries()) {
        try {
          this.writeAt(fd, at, piece);
        } catch (error) {
          if (!(error instanceof DiskIoError)) throw error;
          this.heldFailed.push(this.runFirstIndex + index);
        }
        at += piece.length;
      }
    } finally {
      pieces.length = 0;
    }
  }

  private checkAccess(offsetBytes: number, lengthBytes: number): number {
    if (this.fd === null) throw new Error(`disk ${this.name} is closed`);
    checkRange(this.name, this.sizeBytes, offsetBytes, lengthBytes);
    return this.fd;
  }

  /** Host I/O failures become DiskIoError so the logical unit can answer MEDIUM ERROR instead of crashing. */
  private io<T>(operation: string, call: () => T): T {
    try {
      return call();
    } catch (error) {
      throw this.ioError(operation, error);
    }
  }

  private ioError(operation: string, error: unknown): DiskIoError {
    return new DiskIoError(`disk ${this.name}: ${operation} failed: ${(error as Error).message}`);
  }
}

/**
 * Opens the disk file at `path`, creating it sparse (ftruncate, no data written) when missing. An existing file
 * must already be `sizeBytes` long: growing or cutting a disk behind the guest's back would move its data.
 */
export function openFileDisk(path: string, sizeBytes: number, blockSize: BlockSize): DiskBackend {
  checkGeometry(path, sizeBytes, blockSize);
  const { fd, created } = openOrCreate(path);
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new DiskFileError(`disk file ${path} is not a regular file`);
    if (created) ftruncateSync(fd, sizeBytes);
    else if (stats.size !== sizeBytes) throw new DiskFileError(`disk file ${path} is ${stats.size} bytes; expected ${sizeBytes}`);
  } catch (error) {
    closeSync(fd);
    if (error instanceof DiskFileError) throw error;
    throw new DiskFileError(`cannot size disk file ${path}: ${(error as Error).message}`);
  }
  return new FileDisk(path, sizeBytes, blockSize, fd);
}

// More set-aside copies of one image than this is a loop gone wrong, not a test engineer replacing a disk.
const SET_ASIDE_COUNT_MAX = 10_000;

/**
 * Renames the disk file at `path` to the first free `<path>.replaced-<n>` (n from 1) and returns that name: a
 * replaced disk's data is kept, never overwritten or deleted. A missing file has nothing to keep (undefined).
 */
export function setAsideDiskFile(path: string): string | undefined {
  if (!existsSync(path)) return undefined;
  for (let n = 1; n <= SET_ASIDE_COUNT_MAX; n++) {
    const aside = `${path}.replaced-${n}`;
    if (existsSync(aside)) continue;
    try {
      renameSync(path, aside);
    } catch (error) {
      throw new DiskFileError(`cannot rename disk file ${path} to ${aside}: ${(error as Error).message}`);
    }
    return aside;
  }
  throw new DiskFileError(`disk file ${path}: ${SET_ASIDE_COUNT_MAX} replaced images already kept beside it; remove some`);
}

/** Opens an existing file, or creates one; `created` tells the caller it is new (and empty) so it may be sized. */
function openOrCreate(path: string): { fd: number; created: boolean } {
  try {
    return { fd: openSync(path, "r+"), created: false };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new DiskFileError(`cannot open disk file ${path}: ${(error as Error).message}`);
    }
  }
  try {
    return { fd: openSync(path, "wx+"), created: true }; // exclusive: never truncate a file that appeared meanwhile
  } catch (error) {
    throw new DiskFileError(`cannot create disk file ${path}: ${(error as Error).message}`);
  }
}

/** A sparse disk in memory: 64 KiB chunks appear on first write, so a 1 GiB disk costs nothing until written. */
export function memoryDisk(name: string, sizeBytes: number, blockSize: BlockSize): DiskBackend & { readonly allocatedChunkCount: number } {
  return new MemoryDisk(name, sizeBytes, blockSize);
}
