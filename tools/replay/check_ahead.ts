// The records' CRC-32s of a recording file checked ahead of its reader, on a worker thread (docs/replay.md, "Reading a
// recording"). A replay of a busy session reads gigabytes of records; their CRC-32 on the board's thread was 5 % of
// it. The worker walks the same framing as reader.ts from the first record on, with its own descriptor, and publishes
// how far every record is known good. The reader skips its own CRC for a record that ends there, and checks any other
// one itself as before, so a damaged record gets the same one line: the worker stops at the first thing it does not
// like (a bad checksum, a truncated record, a length out of bounds) and leaves the rest to the reader. It keeps at most
// 64 MiB ahead of the reader.
import { Worker } from "node:worker_threads";
import { RECORD_PAYLOAD_BYTES_MAX } from "./format.ts";

// Bytes the worker reads at a time, and how often it publishes its progress.
const CHUNK_BYTES = 4 << 20;
const PUBLISH_BYTES = 256 << 10;
// How far the worker may run ahead of the reader (a replay with --until stops early: the rest is not checked), and
// how often the reader says where it is.
const AHEAD_BYTES = 64 << 20;
const REPORT_BYTES = 8 << 20;

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { openSync, readSync, closeSync, fstatSync } = require("node:fs");
const { crc32 } = require("node:zlib");
const { path, start, cells, PAYLOAD_MAX, CHUNK_BYTES, PUBLISH_BYTES, AHEAD_BYTES } = workerData;
// cells[0]: every record before this byte is good (published here); cells[1]: where the reader is.
const fd = openSync(path, "r");
const size = fstatSync(fd).size;
let buffer = Buffer.allocUnsafe(CHUNK_BYTES);
let bufferAt = 0, bufferLength = 0;
// [from, from + n) into the buffer; false when the file ends first.
const have = (from, n) => {
  if (from >= bufferAt && from + n <= bufferAt + bufferLength) return true;
  if (n > buffer.length) buffer = Buffer.allocUnsafe(n);
  const want = Math.min(buffer.length, size - from);
  let filled = 0;
  while (filled < want) { const got = readSync(fd, buffer, filled, want - filled, from + filled); if (got === 0) break; filled += got; }
  bufferAt = from; bufferLength = filled;
  return from + n <= bufferAt + bufferLength;
};
let offset = start, published = start;
try {
  while (offset < size) {
    for (let reader = Atomics.load(cells, 1); offset - Number(reader) > AHEAD_BYTES; reader = Atomics.load(cells, 1)) {
      if (offset !== published) { Atomics.store(cells, 0, BigInt(offset)); published = offset; }
      Atomics.wait(cells, 1, reader, 1000);
    }
    if (!have(offset, Math.min(9, size - offset))) break;
    let p = offset - bufferAt + 1;
    let length = 0, scale = 1, ended = false;
    for (let i = 0; i < 8 && p < bufferLength; i++) {
      const b = buffer[p++];
      length += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) { ended = true; break; }
    }
    if (!ended || length > PAYLOAD_MAX) break;
    const payloadAt = p - (offset - bufferAt);
    const recordBytes = payloadAt + length + 4;
    if (offset + recordBytes > size || !have(offset, recordBytes)) break;
    const s = offset - bufferAt;
    const crcAt = s + payloadAt + length;
    if (crc32(buffer.subarray(s, crcAt)) !== buffer.readUInt32LE(crcAt)) break;
    offset += recordBytes;
    if (offset - published >= PUBLISH_BYTES) { Atomics.store(cells, 0, BigInt(offset)); published = offset; }
  }
} finally {
  Atomics.store(cells, 0, BigInt(offset));
  closeSync(fd);
}
`;

export class CheckAheadThread {
  private readonly cells = new BigInt64Array(new SharedArrayBuffer(16)); // checked up to; the reader's position
  private readonly worker: Worker;
  private known: number;
  private nextReport: number;

  /** Checks the records of the file at `path` from byte `start` (the first record, after the header) on. */
  constructor(path: string, start: number) {
    this.known = start;
    this.nextReport = start + REPORT_BYTES;
    this.cells[0] = BigInt(start);
    this.cells[1] = BigInt(start);
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path, start, cells: this.cells, PAYLOAD_MAX: RECORD_PAYLOAD_BYTES_MAX, CHUNK_BYTES, PUBLISH_BYTES, AHEAD_BYTES },
    });
    this.worker.unref();
    this.worker.on("error", () => undefined); // it only stops checking: the reader checks the rest itself
  }

  /** True when every record before byte `end` (a record's end) is known to carry its right CRC-32. */
  checked(end: number): boolean {
    if (end >= this.nextReport) {
      this.nextReport = end + REPORT_BYTES;
      Atomics.store(this.cells, 1, BigInt(end));
      Atomics.notify(this.cells, 1);
    }
    if (end <= this.known) return true;
    this.known = Number(Atomics.load(this.cells, 0));
    return end <= this.known;
  }

  /** Where the worker has got to (every record before this byte is good), without saying where the reader is. */
  get goodUpTo(): number {
    return Number(Atomics.load(this.cells, 0));
  }

  stop(): void {
    void this.worker.terminate();
  }
}
