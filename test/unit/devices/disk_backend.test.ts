// Proves the two disk backends: a file disk is created sparse at its declared size and refuses an existing file of
// another size; both backends return exactly what was written, across the 64 KiB chunk boundaries of the memory
// disk, read zeros where nothing was written or where a range was unmapped, and reject accesses outside the disk; a
// file disk's held writes (writeHeld) are stored in order, adjacent ones together, and their failures reported.
// Temp files live under os.tmpdir() and are removed afterwards.
import { closeSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type DiskBackend, DiskFileError, MEMORY_CHUNK_SIZE_BYTES, memoryDisk, openFileDisk } from "../../../host/devices/disk_backend.ts";

const MIB = 1024 * 1024;
const tempDir = mkdtempSync(join(tmpdir(), "disk-backend-"));
afterAll(() => rmSync(tempDir, { recursive: true, force: true }));

let fileCount = 0;
function tempPath(): string {
  fileCount += 1;
  return join(tempDir, `disk-${fileCount}.img`);
}

/** A pattern no two nearby offsets share, so a copy from the wrong place cannot pass for the right one. */
function pattern(lengthBytes: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(lengthBytes);
  for (let index = 0; index < lengthBytes; index += 1) bytes[index] = (index * 31 + seed * 7 + (index >> 8)) & 0xff || 1;
  return bytes;
}

function readBack(disk: DiskBackend, offsetBytes: number, lengthBytes: number): Uint8Array {
  const into = new Uint8Array(lengthBytes).fill(0xaa); // stale bytes that a read must overwrite
  disk.read(offsetBytes, into);
  return into;
}

const backends: Array<[string, () => DiskBackend]> = [
  ["memory", () => memoryDisk("mem0", 4 * MIB, 512)],
  ["file", () => openFileDisk(tempPath(), 4 * MIB, 512)],
];

describe("file disk creation", () => {
  it("creates a missing file sparse, at exactly the declared size", () => {
    // A 64 MiB disk: stat must show the full size but almost no allocated blocks (ftruncate, nothing written).
    const path = tempPath();
    const disk = openFileDisk(path, 64 * MIB, 4096);
    const stats = statSync(path);
    expect(stats.size).toBe(64 * MIB);
    expect(stats.blocks * 512).toBeLessThan(1 * MIB);
    expect([disk.sizeBytes, disk.blockSize, disk.name]).toEqual([64 * MIB, 4096, path]);
    disk.close();
  });

  it("refuses an existing file of another size, naming the path and both sizes", () => {
    // The file is 1000 bytes; the board asks for 1 MiB; the message must carry all three facts.
    const path = tempPath();
    writeFileSync(path, new Uint8Array(1000));
    expect(() => openFileDisk(path, MIB, 512)).toThrow(DiskFileError);
    expect(() => openFileDisk(path, MIB, 512)).toThrow(`disk file ${path} is 1000 bytes; expected ${MIB}`);
    expect(statSync(path).size).toBe(1000); // refused, not resized
  });

  it("keeps its data across close and reopen", () => {
    // Written, flushed and closed; a second open of the same path reads it back.
    const path = tempPath();
    const first = openFileDisk(path, MIB, 512);
    first.write(4096, pattern(1024, 3));
    first.flush();
    first.close();
    const second = openFileDisk(path, MIB, 512);
    expect(readBack(second, 4096, 1024)).toEqual(pattern(1024, 3));
    second.close();
  });

  it("refuses a size that is not whole blocks, and a directory", () => {
    // Geometry is checked before the file is touched; a path that is not a regular file is a DiskFileError.
    expect(() => openFileDisk(tempPath(), 1000, 512)).toThrow(RangeError);
    expect(() => memoryDisk("odd", 4096 + 512, 4096)).toThrow(RangeError);
    expect(() => openFileDisk(tempDir, MIB, 512)).toThrow(DiskFileError);
  });
});

describe.each(backends)("%s disk", (_kind, make) => {
  it("reads zeros where nothing was written", () => {
    // The read buffer starts as 0xAA, so a backend that leaves it alone fails.
    const disk = make();
    expect(readBack(disk, 0, 8192).every((byte) => byte === 0)).toBe(true);
    expect(readBack(disk, disk.sizeBytes - 512, 512).every((byte) => byte === 0)).toBe(true);
    disk.close();
  });

  it("round-trips writes that cross chunk boundaries, leaving neighbours untouched", () => {
    // One write straddles the first chunk boundary, another spans three chunks; bytes just outside stay zero.
    const disk = make();
    const straddle = pattern(2000, 1);
    const wide = pattern(3 * MEMORY_CHUNK_SIZE_BYTES - 100, 2);
    disk.write(MEMORY_CHUNK_SIZE_BYTES - 700, straddle);
    disk.write(3 * MEMORY_CHUNK_SIZE_BYTES + 50, wide);
    expect(readBack(disk, MEMORY_CHUNK_SIZE_BYTES - 700, 2000)).toEqual(straddle);
    expect(Buffer.from(readBack(disk, 3 * MEMORY_CHUNK_SIZE_BYTES + 50, wide.length)).equals(wide)).toBe(true); // fast for 192 KiB
    expect([...readBack(disk, MEMORY_CHUNK_SIZE_BYTES - 701, 1), ...readBack(disk, MEMORY_CHUNK_SIZE_BYTES + 1300, 1)]).toEqual([0, 0]);
    // Reads that cut across what was written see the same bytes at the same places.
    expect(readBack(disk, MEMORY_CHUNK_SIZE_BYTES - 10, 20)).toEqual(straddle.subarray(690, 710));
    disk.close();
  });

  it("reads zeros over an unmapped range and keeps the data around it", () => {
    // Written over 3 chunks, then a range inside (cutting chunk edges and blocks) unmapped.
    const disk = make();
    const data = pattern(3 * MEMORY_CHUNK_SIZE_BYTES, 5);
    disk.write(0, data);
    const startBytes = MEMORY_CHUNK_SIZE_BYTES - 1000;
    const lengthBytes = MEMORY_CHUNK_SIZE_BYTES + 3000;
    disk.unmap(startBytes, lengthBytes);
    const after = readBack(disk, 0, data.length);
    expect(Buffer.from(after.subarray(0, startBytes)).equals(data.subarray(0, startBytes))).toBe(true);
    expect(after.subarray(startBytes, startBytes + lengthBytes).every((byte) => byte === 0)).toBe(true);
    expect(Buffer.from(after.subarray(startBytes + lengthBytes)).equals(data.subarray(startBytes + lengthBytes))).toBe(true);
    disk.close();
  });

  it("rejects accesses outside the disk and use after close", () => {
    // Off the end by one byte, negative and fractional offsets are the caller's bug: RangeError, nothing changed.
    const disk = make();
    expect(() => disk.write(disk.sizeBytes - 511, new Uint8Array(512))).toThrow(RangeError);
    expect(() => disk.read(-1, new Uint8Array(1))).toThrow(RangeError);
    expect(() => disk.unmap(0.5, 1)).toThrow(RangeError);
    expect(() => disk.isMapped(disk.sizeBytes, 1)).toThrow(RangeError);
    disk.close();
    expect(() => disk.read(0, new Uint8Array(1))).toThrow(/closed/);
  });
});

describe("memory disk sparseness and mapping", () => {
  it("allocates nothing for a 1 GiB disk until written, then one chunk per chunk touched", () => {
    // Reads of an untouched disk allocate nothing; a 2-byte write across a chunk edge allocates exactly two.
    const disk = memoryDisk("big", 1024 * MIB, 512);
    readBack(disk, 512 * MIB, 4096);
    expect(disk.allocatedChunkCount).toBe(0);
    disk.write(MEMORY_CHUNK_SIZE_BYTES * 100 - 1, Uint8Array.of(1, 2));
    expect(disk.allocatedChunkCount).toBe(2);
    disk.unmap(MEMORY_CHUNK_SIZE_BYTES * 99, 2 * MEMORY_CHUNK_SIZE_BYTES);
    expect(disk.allocatedChunkCount).toBe(0); // unmapping every mapped block frees the chunks
  });

  it("answers isMapped per block: written blocks are mapped, whole-block unmaps deallocate, partial ones do not", () => {
    // Blocks 2..5 written; then bytes from the middle of block 3 to the end of block 4 unmapped: block 4 goes
    // unmapped, block 3 stays mapped (part of it still holds data) and reads zeros only where unmapped.
    const disk = memoryDisk("map", MIB, 512);
    disk.write(2 * 512, pattern(4 * 512, 9));
    expect(disk.isMapped(2 * 512, 4 * 512)).toBe(true);
    expect(disk.isMapped(1 * 512, 2 * 512)).toBe(false); // block 1 was never written
    disk.unmap(3 * 512 + 256, 256 + 512);
    expect(disk.isMapped(3 * 512, 512)).toBe(true);
    expect(disk.isMapped(4 * 512, 512)).toBe(false);
    expect(disk.isMapped(5 * 512, 512)).toBe(true);
    const block3 = readBack(disk, 3 * 512, 512);
    expect(block3.subarray(0, 256)).toEqual(pattern(4 * 512, 9).subarray(512, 768));
    expect(block3.subarray(256).every((byte) => byte === 0)).toBe(true);
  });
});

describe("file disk unmap", () => {
  it("does not allocate blocks when unmapping a range that was never written", () => {
    // Unmap zeroes by writing, but skips steps that already read as zeros, so a sparse file stays sparse.
    const path = tempPath();
    const disk = openFileDisk(path, 64 * MIB, 512);
    disk.unmap(0, 64 * MIB);
    expect(statSync(path).blocks * 512).toBeLessThan(1 * MIB);
    expect(disk.isMapped(0, 512)).toBe(true); // a file cannot tell: it always answers mapped
    disk.close();
  });
});

describe("file disk held writes", () => {
  // Proves writeHeld/releaseHeld: held writes reach the file no later than releaseHeld or the disk's next call of
  // another kind, a run of adjacent ones together and in order with the writes around them (the file, read through
  // a descriptor of its own, shows when); releaseHeld names the held writes the host failed, by their indexes.
  it("stores a run of adjacent held writes at the first write that does not continue it, the rest at releaseHeld", () => {
    const path = tempPath();
    const disk = openFileDisk(path, 4 * MIB, 512);
    const onFile = (offsetBytes: number, lengthBytes: number) => new Uint8Array(readFileSync(path).subarray(offsetBytes, offsetBytes + lengthBytes));
    const pieces = [pattern(4096, 1), pattern(4096, 2), pattern(8192, 3), pattern(4096, 4)];
    expect(disk.writeHeld!(0, pieces[0]!)).toBe(0);
    expect(disk.writeHeld!(4096, pieces[1]!)).toBe(1);
    expect(disk.writeHeld!(8192, pieces[2]!)).toBe(2);
    expect(onFile(0, 16384).every((byte) => byte === 0)).toBe(true); // held, not stored yet
    expect(disk.writeHeld!(MIB, pieces[3]!)).toBe(3); // not adjacent: the run of three goes first
    expect(onFile(0, 16384)).toEqual(new Uint8Array([...pieces[0]!, ...pieces[1]!, ...pieces[2]!]));
    expect(onFile(MIB, 4096).every((byte) => byte === 0)).toBe(true);
    expect(disk.releaseHeld!()).toEqual([]);
    expect(onFile(MIB, 4096)).toEqual(pieces[3]);
    expect(disk.writeHeld!(2 * MIB, pieces[0]!)).toBe(0); // indexes start again after a release
    expect(readBack(disk, 2 * MIB, 4096)).toEqual(pieces[0]); // a read stores what is held first
    disk.writeHeld!(3 * MIB, pieces[1]!);
    disk.write(3 * MIB, pieces[2]!.subarray(0, 4096)); // a later plain write over it wins: the held one is stored first
    expect(disk.releaseHeld!()).toEqual([]);
    expect(onFile(3 * MIB, 4096)).toEqual(pieces[2]!.subarray(0, 4096));
    disk.close();
  });

  it("names at releaseHeld the held writes the host failed to store, and throws nothing before", () => {
    const path = tempPath();
    const disk = openFileDisk(path, 4 * MIB, 512);
    disk.write(0, pattern(4096, 5));
    // The disk's descriptor taken from under it (found through /proc; this file's tests run in a process of their
    // own): every write it makes from now on fails as the host's I/O error would.
    const fd = readdirSync("/proc/self/fd").map(Number).find((n) => { try { return readlinkSync(`/proc/self/fd/${n}`) === path; } catch { return false; } });
    expect(fd).toBeDefined();
    closeSync(fd!);
    disk.writeHeld!(0, pattern(4096, 6));
    disk.writeHeld!(4096, pattern(4096, 7));
    disk.writeHeld!(MIB, pattern(4096, 8));
    expect(disk.releaseHeld!()).toEqual([0, 1, 2]);
    expect(disk.releaseHeld!()).toEqual([]);
    expect(() => disk.close()).toThrow(); // its descriptor is gone already
  });
});
