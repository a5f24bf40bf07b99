// The recording's file, written off the board's thread (docs/replay.md, "What recording costs"). The recorder hands
// over whole records with their CRC-32 left as zeros; they are copied into shared slabs, and a worker thread computes
// each record's CRC, deflates received bytes that compress (when asked), and writes the slab out. So the board's
// thread pays a copy per byte received (0.21 ms a MiB in the recorder's A/B at load 10) instead of a CRC and a system
// call's copy into the page cache (0.57 ms a MiB); the process as a whole pays more (1.05 against 0.62 ms a MiB: the
// copy, and the worker's reading of bytes another core wrote). What the board sends is not copied: its CRC-32 on the
// board's thread is cheaper than the copy (0.22 against 0.29 ms a MiB). When every slab is still being written the
// board's thread waits (Atomics.wait): a recording loses nothing, it slows the board down instead.
import { closeSync, constants, openSync, writeSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { copyBytes } from "../../host/bus/shared_copy.ts";
import { crc32 } from "node:zlib";
import { SlabRing } from "../../host/sim/slab_ring.ts";
import { RX_BYTES } from "../../host/devices/tcp_backend.ts";
import { PAD_ALIGN_BYTES, PAD_BYTES_MAX, PAD_FRAMING_BYTES, padBytesAt, putPad, RecordKind, SPARSE_BLOCK_BYTES } from "./format.ts";

export interface RecordFileOptions {
  /** Bytes a slab holds; a record larger than this is written by the board's thread itself, after the worker drains. */
  slabBytes?: number;
  /** Slabs: how far the worker may fall behind before the board waits. */
  slabCount?: number;
  /** Deflate received bytes that look compressible (format.ts, RecordKind.ReceivedDeflated). */
  compress?: boolean;
  /**
   * Write the slabs with O_DIRECT where the file system takes it (default true): the file is then padded to
   * PAD_ALIGN_BYTES after each slab and after what the board's thread writes itself (format.ts, RecordKind.Pad).
   */
  direct?: boolean;
}

export interface RecordFileStats {
  /** Bytes of records handed over, and bytes the file got (less when received bytes were deflated). */
  recordBytes: number;
  slabsWritten: number;
  /** Times the board's thread waited for a slab, and for how long in all. */
  waits: number;
  waitMs: number;
  /** The slabs are written with O_DIRECT (the file system took it, and a slab's address was found for it). */
  direct: boolean;
}

// Received bytes at least this long are placed in the slab at their source's address modulo 8 (redundant varint
// bytes in the record's head), so that their copy runs at word speed (host/bus/shared_copy.ts) in one pass.
const ALIGN_DATA_BYTES_MIN = 4096;

// The worker's program: plain JavaScript (it is evaluated, not bundled), with no state but the slab it is on. For
// each full slab, in order: each record's CRC, received records deflated when they shrink, the slab written.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { writeSync } = require("node:fs");
const { crc32, deflateRawSync } = require("node:zlib");
const { fd, fdDirect, position, slabs, slabOffsets, slabBytes, states, lengths, compress, RECEIVED, RECEIVED_DEFLATED, RECEIVED_SPARSE, PAD, PAD_ALIGN, PAD_FRAMING,
  FREE, STOP, DEFLATE_BYTES_MIN, DISTINCT_MAX, SPARSE_BYTES_MIN, SPARSE_BLOCK_BYTES, SAMPLE_ZEROS_MIN } = workerData;
const bytesOf = slabs.map((s, i) => Buffer.from(s, slabOffsets[i], slabBytes));
const FAILED_AT = slabs.length; // states[FAILED_AT] = 1: this thread failed (the board's thread must not wait for ever)
const varint = (out, at, value) => { do { let b = value % 128; value = Math.floor(value / 128); if (value > 0) b |= 0x80; out[at++] = b; } while (value > 0); return at; };
const varintBytes = (value) => { let n = 1; while (value >= 128) { value = Math.floor(value / 128); n++; } return n; };
// Every write is positional, at position[0] (the board's thread writes there too, but only while this thread is idle).
const writeAll = (data) => {
  const at = position[0];
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, at + done);
  position[0] = at + data.length;
};
// A slab whose records end on a PAD_ALIGN boundary (the board's thread padded it), straight from shared memory with
// O_DIRECT: no copy into the page cache. A slab whose address the device refuses (EINVAL) is written as above.
const refused = new Uint8Array(slabs.length);
let directBytes = 0, directFailures = 0;
const writeDirect = (slab, data) => {
  if (fdDirect < 0 || refused[slab] !== 0 || data.length % PAD_ALIGN !== 0 || position[0] % PAD_ALIGN !== 0) return writeAll(data);
  const at = position[0];
  let done = 0;
  try {
    while (done < data.length) done += writeSync(fdDirect, data, done, data.length - done, at + done);
  } catch (error) {
    if (error.code !== "EINVAL") throw error;
    refused[slab] = 1;
    directFailures += 1;
    position[0] = at + done;
    return writeAll(data.subarray(done));
  }
  directBytes += data.length;
  position[0] = at + data.length;
};
const seen = new Uint32Array(256);
const zeros = Buffer.alloc(8 * SPARSE_BLOCK_BYTES);
// How many of 64 bytes spread over data[from, to) are zeros (random data: none or one).
const sampledZeros = (data, from, to) => {
  const step = Math.max(1, Math.floor((to - from) / 64));
  let count = 0;
  for (let i = from, n = 0; i < to && n < 64; i += step, n++) if (data[i] === 0) count++;
  return count;
};
// Distinct byte values among 1024 bytes spread over data[from, to) (random data shows about 250).
const sampledDistinct = (data, from, to) => {
  seen.fill(0);
  let distinct = 0;
  const step = Math.max(1, Math.floor((to - from) / 1024));
  for (let i = from; i < to; i += step) if (seen[data[i]]++ === 0) distinct++;
  return distinct;
};
// The blocks of data[from, to) (SPARSE_BLOCK_BYTES each, the last maybe shorter) that hold a non-zero byte, as a
// bitmap (bit set: stored); returns the zero blocks' count. Compared 8 blocks at a time first (memcmp), then one by one.
let bitmap = new Uint8Array(256);
const sparseBlocks = (data, from, to) => {
  const blocks = Math.ceil((to - from) / SPARSE_BLOCK_BYTES);
  const bitmapBytes = (blocks + 7) >> 3;
  if (bitmap.length < bitmapBytes) bitmap = new Uint8Array(bitmapBytes * 2);
  bitmap.fill(0, 0, bitmapBytes);
  let zeroBlocks = 0;
  for (let b = 0; b < blocks; b += 8) {
    const at = from + b * SPARSE_BLOCK_BYTES;
    const groupEnd = Math.min(to, at + 8 * SPARSE_BLOCK_BYTES);
    if (data.compare(zeros, 0, groupEnd - at, at, groupEnd) === 0) { zeroBlocks += Math.min(8, blocks - b); continue; }
    for (let k = b; k < Math.min(blocks, b + 8); k++) {
      const s = from + k * SPARSE_BLOCK_BYTES;
      const e = Math.min(to, s + SPARSE_BLOCK_BYTES);
      if (data.compare(zeros, 0, e - s, s, e) === 0) zeroBlocks++;
      else bitmap[k >> 3] |= 1 << (k & 7);
    }
  }
  return zeroBlocks;
};
// A slab that holds replaced records is written from here: its records copied or replaced, in order, then one write.
const out = Buffer.allocUnsafe(bytesOf[0].length + 65536);
let o = 0;
const room = (bytes) => { if (o + bytes > out.length) { writeAll(out.subarray(0, o)); o = 0; } };
const copyOut = (bytes, from, to) => {
  while (from < to) { room(Math.min(to - from, 65536)); const n = Math.min(to - from, out.length - o); bytes.copy(out, o, from, from + n); o += n; from += n; }
};
// Writes |kind|length|fields|body|CRC-32| into out; body(o) writes bodyBytes bytes at o.
const emit = (kind, bytes, fieldsFrom, fieldsTo, bodyBytes, body) => {
  const payloadBytes = fieldsTo - fieldsFrom + bodyBytes;
  room(1 + 8 + payloadBytes + 4);
  const startO = o;
  out[o++] = kind;
  o = varint(out, o, payloadBytes);
  bytes.copy(out, o, fieldsFrom, fieldsTo);
  o += fieldsTo - fieldsFrom;
  body(o);
  o += bodyBytes;
  const c = crc32(out.subarray(startO, o));
  out[o++] = c & 0xff; out[o++] = (c >>> 8) & 0xff; out[o++] = (c >>> 16) & 0xff; out[o++] = (c >>> 24) & 0xff;
  return o - startO;
};
// A pad record (format.ts, putPad) of \`bytes\` at o of out.
const pad = (bytes) => {
  const zeros = bytes - PAD_FRAMING;
  const startO = o;
  out[o++] = PAD; out[o++] = (zeros & 0x7f) | 0x80; out[o++] = zeros >> 7;
  out.fill(0, o, o + zeros);
  o += zeros;
  const c = crc32(out.subarray(startO, o));
  out[o++] = c & 0xff; out[o++] = (c >>> 8) & 0xff; out[o++] = (c >>> 16) & 0xff; out[o++] = (c >>> 24) & 0xff;
};
const padBytesAt = (at) => { const gap = (PAD_ALIGN - (at % PAD_ALIGN)) % PAD_ALIGN; return gap === 0 ? 0 : gap < PAD_FRAMING ? gap + PAD_ALIGN : gap; };
let deflatedIn = 0, deflatedOut = 0, sparseIn = 0, sparseOut = 0;
try {
for (let slab = 0; ; slab = (slab + 1) % slabs.length) {
  Atomics.wait(states, slab, FREE);
  if (Atomics.load(states, slab) === STOP) break;
  const bytes = bytesOf[slab].subarray(0, lengths[slab]);
  let replaced = false; // once true, everything from pieceStart on goes through out
  let pieceStart = 0;
  o = 0;
  for (let at = 0; at < bytes.length; ) {
    const start = at;
    const kind = bytes[at++];
    let length = 0, scale = 1;
    for (;;) { const b = bytes[at++]; length += (b & 0x7f) * scale; scale *= 128; if ((b & 0x80) === 0) break; }
    const payloadAt = at;
    const crcAt = payloadAt + length;
    at = crcAt + 4;
    if (kind === RECEIVED && length >= Math.min(SPARSE_BYTES_MIN, DEFLATE_BYTES_MIN)) {
      // |at: two varints|connection varint|bytes|: the three varints stay, the bytes are replaced.
      let p = payloadAt;
      for (let v = 0; v < 3; v++) while (bytes[p++] & 0x80);
      const dataBytes = crcAt - p;
      let sparse = false;
      let deflated;
      if (dataBytes >= SPARSE_BYTES_MIN && sampledZeros(bytes, p, crcAt) >= SAMPLE_ZEROS_MIN) {
        // Mostly zeros (a disk being zeroed, a new file system, qemu-img bench's writes): the zero blocks left out.
        sparse = sparseBlocks(bytes, p, crcAt) * SPARSE_BLOCK_BYTES * 4 >= dataBytes;
      }
      if (!sparse && compress && dataBytes >= DEFLATE_BYTES_MIN && sampledDistinct(bytes, p, crcAt) <= DISTINCT_MAX) {
        const d = deflateRawSync(bytes.subarray(p, crcAt), { level: 1 });
        if (d.length < dataBytes - (dataBytes >> 2)) deflated = d;
      }
      if (sparse || deflated !== undefined) {
        copyOut(bytes, pieceStart, start);
        replaced = true;
        pieceStart = at;
        const lengthField = varintBytes(dataBytes);
        if (sparse) {
          const blocks = Math.ceil(dataBytes / SPARSE_BLOCK_BYTES);
          const bitmapBytes = (blocks + 7) >> 3;
          let storedBytes = 0;
          for (let k = 0; k < blocks; k++) if ((bitmap[k >> 3] & (1 << (k & 7))) !== 0) storedBytes += Math.min(SPARSE_BLOCK_BYTES, dataBytes - k * SPARSE_BLOCK_BYTES);
          sparseOut += emit(RECEIVED_SPARSE, bytes, payloadAt, p, lengthField + bitmapBytes + storedBytes, (w) => {
            w = varint(out, w, dataBytes);
            out.set(bitmap.subarray(0, bitmapBytes), w);
            w += bitmapBytes;
            for (let k = 0; k < blocks; k++) {
              if ((bitmap[k >> 3] & (1 << (k & 7))) === 0) continue;
              const s = p + k * SPARSE_BLOCK_BYTES;
              const e = Math.min(crcAt, s + SPARSE_BLOCK_BYTES);
              bytes.copy(out, w, s, e);
              w += e - s;
            }
          });
          sparseIn += at - start;
        } else {
          deflatedOut += emit(RECEIVED_DEFLATED, bytes, payloadAt, p, lengthField + deflated.length, (w) => {
            w = varint(out, w, dataBytes);
            out.set(deflated, w);
          });
          deflatedIn += at - start;
        }
        continue;
      }
    }
    const c = crc32(bytes.subarray(start, crcAt));
    bytes[crcAt] = c & 0xff; bytes[crcAt + 1] = (c >>> 8) & 0xff; bytes[crcAt + 2] = (c >>> 16) & 0xff; bytes[crcAt + 3] = (c >>> 24) & 0xff;
  }
  if (!replaced) writeDirect(slab, bytes);
  else {
    copyOut(bytes, pieceStart, bytes.length);
    if (fdDirect >= 0) { // records replaced: the slab's length changed, so the file is padded again for the next slab
      room(PAD_ALIGN + PAD_FRAMING);
      const bytes = padBytesAt(position[0] + o);
      if (bytes > 0) pad(bytes);
    }
    writeAll(out.subarray(0, o));
  }
  Atomics.store(states, slab, FREE);
  Atomics.notify(states, slab);
}
} catch (error) {
  Atomics.store(states, FAILED_AT, 1);
  for (let i = 0; i < slabs.length; i++) Atomics.notify(states, i);
  throw error;
}
parentPort.postMessage({ deflatedIn, deflatedOut, sparseIn, sparseOut, directBytes, directFailures });
`;

// Records of received bytes shorter than this are left as they are.
const DEFLATE_BYTES_MIN = 512;
const SPARSE_BYTES_MIN = 512;
// At least this many zeros among 64 sampled bytes for a record to be searched for zero blocks (random data: 0 or 1).
const SAMPLE_ZEROS_MIN = 16;
// At most this many byte values among 1024 sampled for a record to be deflated (random data shows about 250).
const DISTINCT_MAX = 160;

function varintBytes(value: number): number {
  let count = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    count += 1;
  }
  return count;
}

function putVarint(out: Uint8Array, at: number, value: number): number {
  if (!(value >= 0 && Number.isSafeInteger(value))) throw new RangeError(`RecordFile: ${value} is not a non-negative integer`);
  while (value >= 128) {
    out[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

function putU32(out: Uint8Array, at: number, value: number): number {
  out[at++] = value & 0xff;
  out[at++] = (value >>> 8) & 0xff;
  out[at++] = (value >>> 16) & 0xff;
  out[at++] = (value >>> 24) & 0xff;
  return at;
}

/** `value` as a varint followed by `extra` redundant bytes (the last minimal byte gets 0x80, then 0x80s and a 0). */
function putVarintPadded(out: Uint8Array, at: number, value: number, extra: number): number {
  const end = putVarint(out, at, value);
  if (extra === 0) return end;
  out[end - 1]! |= 0x80;
  for (let i = 1; i < extra; i++) out[end - 1 + i] = 0x80;
  out[end - 1 + extra] = 0;
  return end + extra;
}

/** A timed record's fields before its data, |kind|length|eventDelta|timeDelta|v1|v2|u32|, at `at` of `into` (a field
 * given as -1 absent); the length and v1 take extraLength and extraV1 redundant bytes. Returns where the data goes. */
function putTimedHead(into: Uint8Array, at: number, kind: number, payload: number, eventDelta: number, timeDelta: number, v1: number, v2: number, u32: number,
  extraLength = 0, extraV1 = 0): number {
  into[at++] = kind;
  at = putVarintPadded(into, at, payload, extraLength);
  at = putVarint(into, at, eventDelta);
  at = putVarint(into, at, timeDelta);
  if (v1 >= 0) at = putVarintPadded(into, at, v1, extraV1);
  if (v2 >= 0) at = putVarint(into, at, v2);
  if (u32 >= 0) at = putU32(into, at, u32);
  return at;
}

/**
 * The redundant varint bytes (in the length, then in v1) that put a timed record's data at `dataAddress` modulo 8
 * when its head starts at `headAt` (both byte offsets in buffers whose starts are 8-aligned); undefined when none do.
 */
export function alignedHead(headAt: number, dataAddress: number, payload: number, headOthers: number, v1: number): { extraLength: number; extraV1: number } | undefined {
  for (let extraV1 = 0; extraV1 <= 8 - varintBytes(v1); extraV1++) {
    const lengthBytes = varintBytes(payload + extraV1);
    for (let extraLength = 0; extraLength <= 8 - lengthBytes; extraLength++) {
      const dataAt = headAt + 1 + lengthBytes + extraLength + headOthers + extraV1;
      if (((dataAt - dataAddress) & 7) === 0) return { extraLength, extraV1 };
    }
  }
  return undefined;
}

// The most a timed record adds to its data: kind, length and four varints of up to 8 bytes, the u32, the CRC, and the
// 16 bytes of room appendTimed keeps for redundant varint bytes.
const TIMED_FRAMING_BYTES_MAX = 1 + 8 * 5 + 4 + 4 + 16;
/** A slab holds two received records of a whole socket read and the longest pad, in whole O_DIRECT blocks. */
export const SLAB_BYTES_DEFAULT =
  Math.ceil((2 * (RX_BYTES + TIMED_FRAMING_BYTES_MAX) + PAD_BYTES_MAX) / PAD_ALIGN_BYTES) * PAD_ALIGN_BYTES;

export class RecordFile {
  private readonly fd: number;
  private readonly fdDirect: number; // -1: no O_DIRECT
  /** Where the next write goes in the file (the worker's and this thread's writes are positional; shared). */
  private readonly position = new Float64Array(new SharedArrayBuffer(8));
  /** A slab's bytes of records: with O_DIRECT, room is kept for the pad that ends it. */
  private readonly capacity: number;
  private readonly ring: SlabRing;
  private readonly worker: Worker;
  private closed = false;
  private recordBytes = 0;
  /** The worker's count of received-record bytes it deflated, and what they became; bytes it wrote with O_DIRECT (after close()). */
  deflated: Promise<{ deflatedIn: number; deflatedOut: number; sparseIn: number; sparseOut: number; directBytes: number; directFailures: number }>;

  constructor(readonly path: string, options: RecordFileOptions = {}) {
    // Slabs of 512 KiB: the kernel copies a 512 KiB write into the page cache at 0.26 ms a MiB here, a 4 MiB one at
    // 1.0-1.9 ms (measured, ext4, load 7). 128 of them (64 MiB): on a loaded machine the writer thread is off a core
    // for tens of milliseconds at a time, and a ring of 8 MiB (eight 1 MiB writes) then made the board wait for it
    // (bench --record-ab 1m-write-qd8, ten pairs each at load 12-17: waits in 4 pairs with 16 slabs, in none with 128).
    // Not 512 KiB exactly: a socket read is up to RX_BYTES (tcp_backend.ts, 256 KiB), and two such records with the
    // pad's room must fit, or slabs go out half empty; SLAB_BYTES_DEFAULT is derived from it (520 KiB).
    const slabBytes = options.slabBytes ?? SLAB_BYTES_DEFAULT;
    const slabCount = options.slabCount ?? 128;
    // O_DIRECT (measured with 512 KiB writes from shared memory, 2 GiB, ext4 on this machine's virtio disk, load 10):
    // 116-142 µs of CPU a MiB, against 1 010-1 107 through the page cache once writeback lags (and 200-270 while it
    // does not). A write must then be whole blocks from an aligned address: the slabs are placed at an address the
    // file takes (found by trying, below), and each ends with a pad record.
    const direct = (options.direct ?? true) && slabBytes % PAD_ALIGN_BYTES === 0;
    this.fd = openSync(path, "w");
    this.ring = new SlabRing(slabBytes, slabCount, `recording ${path}: the thread writing it failed`, direct ? PAD_ALIGN_BYTES : 0);
    this.fdDirect = direct ? this.openDirect(path) : -1;
    this.capacity = slabBytes - (this.fdDirect >= 0 ? PAD_BYTES_MAX : 0);
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        ...this.ring.workerData, fd: this.fd, fdDirect: this.fdDirect, position: this.position, compress: options.compress === true,
        PAD: RecordKind.Pad, PAD_ALIGN: PAD_ALIGN_BYTES, PAD_FRAMING: PAD_FRAMING_BYTES,
        RECEIVED: RecordKind.Received, RECEIVED_DEFLATED: RecordKind.ReceivedDeflated, RECEIVED_SPARSE: RecordKind.ReceivedSparse,
        DEFLATE_BYTES_MIN, DISTINCT_MAX, SPARSE_BYTES_MIN, SPARSE_BLOCK_BYTES, SAMPLE_ZEROS_MIN,
      },
    });
    this.worker.unref();
    this.deflated = new Promise((resolve, reject) => {
      this.worker.once("message", resolve);
      this.worker.once("error", reject);
    });
  }

  /** Bytes of records handed over, slabs written, and the board's thread's waits for the writer. */
  get stats(): RecordFileStats {
    return { recordBytes: this.recordBytes, slabsWritten: this.ring.handedOver, waits: this.ring.waits, waitMs: this.ring.waitMs, direct: this.fdDirect >= 0 };
  }

  // The file opened a second time with O_DIRECT, and the slabs (one shared buffer, slabBytes a multiple of a block)
  // placed where its writes are taken: tried with one block at each 16-byte step of the buffer (V8's buffers start
  // 16-aligned), written at the file's start (the header and its pad overwrite it). -1 where the file system refuses
  // O_DIRECT (tmpfs) or every place.
  private openDirect(path: string): number {
    let fd: number;
    try {
      fd = openSync(path, constants.O_WRONLY | constants.O_DIRECT);
    } catch {
      return -1;
    }
    const buffer = this.ring.shared[0]!;
    for (let offset = 0; offset <= PAD_ALIGN_BYTES - 16; offset += 16) {
      try {
        writeSync(fd, new Uint8Array(buffer, offset, PAD_ALIGN_BYTES), 0, PAD_ALIGN_BYTES, 0);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EINVAL") continue;
        break;
      }
      this.ring.place(offset);
      return fd;
    }
    closeSync(fd);
    return -1;
  }

  /**
   * Takes bytes to write as they are: the file's header, before any record. The pieces of one call are written
   * together and in order with the records around them.
   */
  appendRaw(pieces: readonly Uint8Array[]): void {
    this.drain();
    for (const piece of pieces) this.writeAll(piece);
    this.padFile();
  }

  /**
   * Takes one whole record (format.ts), its CRC-32 left as zeros for the worker: its pieces are copied now and may
   * change once this returns.
   */
  appendRecord(pieces: readonly Uint8Array[]): void {
    if (this.closed) throw new Error(`RecordFile ${this.path}: append after close`);
    let total = 0;
    for (const piece of pieces) total += piece.length;
    this.recordBytes += total;
    if (total > this.capacity) {
      // Larger than a slab: written here, after everything before it, with its CRC computed here.
      this.drain();
      const whole = Buffer.concat(pieces as Uint8Array[]);
      const c = crc32(whole.subarray(0, whole.length - 4));
      whole.writeUInt32LE(c, whole.length - 4);
      this.writeAll(whole);
      this.padFile();
      return;
    }
    const ring = this.ring;
    if (ring.used + total > this.capacity) this.handOver();
    const slab = ring.slab;
    for (const piece of pieces) {
      copyBytes(slab, ring.used, piece);
      ring.used += piece.length;
    }
  }

  /**
   * Takes one timed record given by its fields, written straight into the slab (no pieces, no closures: the board's
   * thread pays a few stores per field and one copy of `data`): |kind|length|eventDelta|timeDelta|v1|v2|u32|data|CRC
   * left as zeros|, where a field given as -1 is absent (v1, v2: varints; u32: 4 bytes LE). Same bytes as RecordWriter.
   */
  appendTimed(kind: number, eventDelta: number, timeDelta: number, v1: number, v2: number, u32: number, data: Uint8Array | undefined): void {
    if (this.closed) throw new Error(`RecordFile ${this.path}: append after close`);
    const payload = varintBytes(eventDelta) + varintBytes(timeDelta) + (v1 >= 0 ? varintBytes(v1) : 0) + (v2 >= 0 ? varintBytes(v2) : 0) +
      (u32 >= 0 ? 4 : 0) + (data === undefined ? 0 : data.length);
    const total = 1 + varintBytes(payload) + payload + 4;
    const ring = this.ring;
    if (total + 16 > this.capacity) { // (16: room for redundant varint bytes)
      const head = new Uint8Array(1 + 8 * 6 + 4);
      const at = putTimedHead(head, 0, kind, payload, eventDelta, timeDelta, v1, v2, u32);
      this.appendRecord([head.subarray(0, at), data ?? new Uint8Array(0), new Uint8Array(4)]);
      return;
    }
    if (ring.used + total + 16 > this.capacity) this.handOver();
    const slab = ring.slab;
    let extra: { extraLength: number; extraV1: number } | undefined;
    if (data !== undefined && data.length >= ALIGN_DATA_BYTES_MIN && v1 >= 0) {
      const others = varintBytes(eventDelta) + varintBytes(timeDelta) + varintBytes(v1) + (v2 >= 0 ? varintBytes(v2) : 0) + (u32 >= 0 ? 4 : 0);
      extra = alignedHead(slab.byteOffset + ring.used, data.byteOffset, payload, others, v1);
    }
    const extraV1 = extra?.extraV1 ?? 0;
    const extraLength = extra?.extraLength ?? 0;
    this.recordBytes += total + extraV1 + extraLength + (varintBytes(payload + extraV1) - varintBytes(payload));
    let at = putTimedHead(slab, ring.used, kind, payload + extraV1, eventDelta, timeDelta, v1, v2, u32, extraLength, extraV1);
    if (data !== undefined) {
      copyBytes(slab, at, data);
      at += data.length;
    }
    slab[at++] = 0;
    slab[at++] = 0;
    slab[at++] = 0;
    slab[at++] = 0;
    ring.used = at;
  }

  /** Hands the slab being filled to the worker (a no-op when it is empty). */
  flush(): void {
    if (this.ring.used > 0) this.handOver();
  }

  // With O_DIRECT the slab ends with a pad record to a whole number of blocks (it starts on one: see padFile).
  private handOver(): void {
    const ring = this.ring;
    if (this.fdDirect >= 0) {
      const bytes = padBytesAt(ring.used);
      if (bytes > 0) ring.used = putPad(ring.slab, ring.used, bytes);
    }
    ring.handOver();
  }

  // With O_DIRECT, after what this thread wrote itself: a pad record to the next block, where the worker goes on.
  private padFile(): void {
    if (this.fdDirect < 0) return;
    const bytes = padBytesAt(this.position[0]!);
    if (bytes === 0) return;
    const pad = new Uint8Array(bytes);
    putPad(pad, 0, bytes);
    this.writeAll(pad);
  }

  /** Everything handed over is in the file once this returns (after close(), it is already). */
  drain(): void {
    if (this.closed) return; // the worker has stopped: one slab holds its STOP mark, not FREE
    this.flush();
    this.ring.drain();
  }

  /** Drains, stops the worker and closes the file. */
  close(): void {
    if (this.closed) return;
    this.drain();
    this.closed = true;
    this.ring.stop();
    closeSync(this.fd);
    if (this.fdDirect >= 0) closeSync(this.fdDirect);
  }

  // Only while the worker is idle (after drain()): it writes at the same shared position.
  private writeAll(data: Uint8Array): void {
    const at = this.position[0]!;
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, at + done);
    this.position[0] = at + data.length;
  }
}
