// The recording's file, written off the board's thread (docs/replay.md, "What recording costs"). The recorder hands
// over whole records with their CRC-32 left as zeros; they are copied into shared slabs, and a worker thread computes
// each record's CRC, deflates received bytes that compress (when asked), and writes the slab out. So the board's
// thread pays a copy per byte received (0.21 ms a MiB in the recorder's A/B at load 10) instead of a CRC and a system
// call's copy into the page cache (0.57 ms a MiB); the process as a whole pays more (1.05 against 0.62 ms a MiB: the
// copy, and the worker's reading of bytes another core wrote). What the board sends is not copied: its CRC-32 on the
// board's thread is cheaper than the copy (0.22 against 0.29 ms a MiB). When every slab is still being written the
// board's thread waits (Atomics.wait): a recording loses nothing, it slows the board down instead.
import { closeSync, openSync, writeSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { crc32 } from "node:zlib";

// A slab's state in `states`: free for the board's thread to fill; full (its length in `lengths`) for the worker;
// or the worker's signal to stop.
const FREE = 0;
const FULL = 1;
const STOP = 2;

export interface RecordFileOptions {
  /** Bytes a slab holds; a record larger than this is written by the board's thread itself, after the worker drains. */
  slabBytes?: number;
  /** Slabs: how far the worker may fall behind before the board waits. */
  slabCount?: number;
  /** Deflate received bytes that look compressible (format.ts, RecordKind.ReceivedDeflated). */
  compress?: boolean;
}

export interface RecordFileStats {
  /** Bytes of records handed over, and bytes the file got (less when received bytes were deflated). */
  recordBytes: number;
  slabsWritten: number;
  /** Times the board's thread waited for a slab, and for how long in all. */
  waits: number;
  waitMs: number;
}

// The worker's program: plain JavaScript (it is evaluated, not bundled), with no state but the slab it is on. For
// each full slab, in order: each record's CRC, received records deflated when they shrink, the slab written.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { writeSync } = require("node:fs");
const { crc32, deflateRawSync } = require("node:zlib");
const { fd, slabs, states, lengths, compress, RECEIVED, RECEIVED_DEFLATED, FREE, STOP, DEFLATE_BYTES_MIN, DISTINCT_MAX } = workerData;
const bytesOf = slabs.map((s) => new Uint8Array(s));
const FAILED_AT = slabs.length; // states[FAILED_AT] = 1: this thread failed (the board's thread must not wait for ever)
const varint = (out, at, value) => { do { let b = value % 128; value = Math.floor(value / 128); if (value > 0) b |= 0x80; out[at++] = b; } while (value > 0); return at; };
const writeAll = (data) => { let done = 0; while (done < data.length) done += writeSync(fd, data, done, data.length - done); };
const seen = new Uint8Array(256);
// Random data (a disk image being copied) has nearly every byte value in a strided sample of 1024: not worth a deflate.
const looksCompressible = (data, from) => {
  seen.fill(0);
  let distinct = 0;
  const step = Math.max(1, Math.floor((data.length - from) / 1024));
  for (let i = from; i < data.length; i += step) if (seen[data[i]]++ === 0) distinct++;
  return distinct <= DISTINCT_MAX;
};
let deflatedIn = 0, deflatedOut = 0;
try {
for (let slab = 0; ; slab = (slab + 1) % slabs.length) {
  Atomics.wait(states, slab, FREE);
  if (Atomics.load(states, slab) === STOP) break;
  const bytes = bytesOf[slab].subarray(0, lengths[slab]);
  const pieces = [];
  let pieceStart = 0;
  for (let at = 0; at < bytes.length; ) {
    const start = at;
    const kind = bytes[at++];
    let length = 0, scale = 1;
    for (;;) { const b = bytes[at++]; length += (b & 0x7f) * scale; scale *= 128; if ((b & 0x80) === 0) break; }
    const payloadAt = at;
    const crcAt = payloadAt + length;
    at = crcAt + 4;
    if (compress && kind === RECEIVED && length >= DEFLATE_BYTES_MIN) {
      // |at: two varints|connection varint|bytes|: the three varints stay, the bytes are replaced.
      let p = payloadAt;
      for (let v = 0; v < 3; v++) while (bytes[p++] & 0x80);
      const data = bytes.subarray(p, crcAt);
      if (looksCompressible(data, 0)) {
        const deflated = deflateRawSync(data, { level: 1 });
        if (deflated.length < data.length - (data.length >> 2)) {
          const fields = bytes.subarray(payloadAt, p);
          const out = new Uint8Array(1 + 8 + fields.length + 8 + deflated.length + 4);
          let o = 0;
          out[o++] = RECEIVED_DEFLATED;
          const lengthAt = o;
          const payloadBytes = fields.length + (varint(new Uint8Array(8), 0, data.length)) + deflated.length;
          o = varint(out, o, payloadBytes);
          out.set(fields, o); o += fields.length;
          o = varint(out, o, data.length);
          out.set(deflated, o); o += deflated.length;
          const c = crc32(out.subarray(0, o));
          out[o++] = c & 0xff; out[o++] = (c >>> 8) & 0xff; out[o++] = (c >>> 16) & 0xff; out[o++] = (c >>> 24) & 0xff;
          if (start > pieceStart) pieces.push(bytes.subarray(pieceStart, start));
          pieces.push(out.subarray(0, o));
          pieceStart = at;
          deflatedIn += at - start; deflatedOut += o;
          continue;
        }
      }
    }
    const c = crc32(bytes.subarray(start, crcAt));
    bytes[crcAt] = c & 0xff; bytes[crcAt + 1] = (c >>> 8) & 0xff; bytes[crcAt + 2] = (c >>> 16) & 0xff; bytes[crcAt + 3] = (c >>> 24) & 0xff;
  }
  if (bytes.length > pieceStart) pieces.push(bytes.subarray(pieceStart));
  for (const piece of pieces) writeAll(piece);
  Atomics.store(states, slab, FREE);
  Atomics.notify(states, slab);
}
} catch (error) {
  Atomics.store(states, FAILED_AT, 1);
  for (let i = 0; i < slabs.length; i++) Atomics.notify(states, i);
  throw error;
}
parentPort.postMessage({ deflatedIn, deflatedOut });
`;

// Records of received bytes shorter than this are not worth a deflate's setup.
const DEFLATE_BYTES_MIN = 512;
// At most this many byte values among 1024 sampled for a record to be deflated (random data shows about 250).
const DISTINCT_MAX = 160;

export class RecordFile {
  private readonly fd: number;
  private readonly slabs: Uint8Array[];
  private readonly states: Int32Array;
  private readonly lengths: Int32Array;
  private readonly worker: Worker;
  private slab = 0; // the slab being filled
  private used = 0; // bytes in it
  private closed = false;
  readonly stats: RecordFileStats = { recordBytes: 0, slabsWritten: 0, waits: 0, waitMs: 0 };
  /** The worker's count of received-record bytes it deflated, and what they became (after close()). */
  deflated: Promise<{ deflatedIn: number; deflatedOut: number }>;

  constructor(readonly path: string, options: RecordFileOptions = {}) {
    const slabBytes = options.slabBytes ?? 4 << 20;
    const slabCount = options.slabCount ?? 8;
    this.fd = openSync(path, "w");
    const shared = Array.from({ length: slabCount }, () => new SharedArrayBuffer(slabBytes));
    this.slabs = shared.map((s) => new Uint8Array(s));
    this.states = new Int32Array(new SharedArrayBuffer(4 * (slabCount + 1))); // and the worker's failure flag
    this.lengths = new Int32Array(new SharedArrayBuffer(4 * slabCount));
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        fd: this.fd, slabs: shared, states: this.states, lengths: this.lengths, compress: options.compress === true,
        RECEIVED: 4, RECEIVED_DEFLATED: 16, FREE, STOP, DEFLATE_BYTES_MIN, DISTINCT_MAX,
      },
    });
    this.worker.unref();
    this.deflated = new Promise((resolve, reject) => {
      this.worker.once("message", resolve);
      this.worker.once("error", reject);
    });
  }

  /**
   * Takes bytes to write as they are: the file's header, before any record. The pieces of one call are written
   * together and in order with the records around them.
   */
  appendRaw(pieces: readonly Uint8Array[]): void {
    this.drain();
    for (const piece of pieces) this.writeAll(piece);
  }

  /**
   * Takes one whole record (format.ts), its CRC-32 left as zeros for the worker: its pieces are copied now and may
   * change once this returns.
   */
  appendRecord(pieces: readonly Uint8Array[]): void {
    if (this.closed) throw new Error(`RecordFile ${this.path}: append after close`);
    let total = 0;
    for (const piece of pieces) total += piece.length;
    this.stats.recordBytes += total;
    const slabBytes = this.slabs[0]!.length;
    if (total > slabBytes) {
      // Larger than a slab: written here, after everything before it, with its CRC computed here.
      this.drain();
      const whole = Buffer.concat(pieces as Uint8Array[]);
      const c = crc32(whole.subarray(0, whole.length - 4));
      whole.writeUInt32LE(c, whole.length - 4);
      this.writeAll(whole);
      return;
    }
    if (this.used + total > slabBytes) this.handOver();
    const slab = this.slabs[this.slab]!;
    for (const piece of pieces) {
      slab.set(piece, this.used);
      this.used += piece.length;
    }
  }

  /** Hands the slab being filled to the worker (a no-op when it is empty). */
  flush(): void {
    if (this.used > 0) this.handOver();
  }

  /** Everything handed over is in the file once this returns (after close(), it is already). */
  drain(): void {
    if (this.closed) return; // the worker has stopped: one slab holds its STOP mark, not FREE
    this.flush();
    for (let i = 0; i < this.slabs.length; i++) this.waitFree(i);
  }

  /** Drains, stops the worker and closes the file. */
  close(): void {
    if (this.closed) return;
    this.drain();
    this.closed = true;
    Atomics.store(this.states, this.slab, STOP);
    Atomics.notify(this.states, this.slab);
    closeSync(this.fd);
  }

  private handOver(): void {
    const index = this.slab;
    this.lengths[index] = this.used;
    Atomics.store(this.states, index, FULL);
    Atomics.notify(this.states, index);
    this.stats.slabsWritten += 1;
    this.slab = (index + 1) % this.slabs.length;
    this.used = 0;
    this.waitFree(this.slab);
  }

  private waitFree(index: number): void {
    if (Atomics.load(this.states, index) === FREE) return;
    const started = performance.now();
    for (let state = Atomics.load(this.states, index); state !== FREE; state = Atomics.load(this.states, index)) {
      if (state !== FULL) throw new Error(`RecordFile ${this.path}: slab ${index} in state ${state}, neither free nor full`);
      if (Atomics.load(this.states, this.slabs.length) !== 0) throw new Error(`recording ${this.path}: the thread writing it failed`);
      Atomics.wait(this.states, index, FULL, 1000);
    }
    this.stats.waits += 1;
    this.stats.waitMs += performance.now() - started;
  }

  private writeAll(data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done);
  }
}
