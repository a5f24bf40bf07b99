// A recording file read ahead of its reader on a worker thread, its records' CRC-32s checked there (docs/replay.md,
// "Reading a recording"). A replay of a busy session reads gigabytes of records: the system calls' copies and the
// CRC-32s were a tenth of its board's thread. The worker reads the file in order into a ring of shared windows, each
// starting at a record and holding only whole records whose CRC-32 is right, and hands them to the reader in order
// (next()); the reader takes records straight from them. The worker stops after the last good record before anything
// it does not like (a bad checksum, a truncated record, a length out of bounds, a record larger than a window) and
// marks that window the last: the reader reads the rest of the file itself and checks it record by record, so a
// damaged record gets the same one line. It is at most the ring's windows ahead of the reader (a replay stopped early
// by --until does not read the rest).
import { Worker } from "node:worker_threads";
import { PAD_ALIGN_BYTES, RECORD_PAYLOAD_BYTES_MAX } from "./format.ts";

// O_DIRECT reads: whole blocks of this, from block boundaries (the recording's writer's block).
const DIRECT_BLOCK_BYTES = PAD_ALIGN_BYTES;

/** A window's state: the worker's to fill; the reader's to read; the reader's, and the worker stopped after it. */
const WINDOW_FREE = 0;
const WINDOW_READY = 1;
const WINDOW_LAST = 2;

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { openSync, readSync, closeSync, fstatSync, constants } = require("node:fs");
const { crc32 } = require("node:zlib");
const { path, start, windows, windowBytes, states, places, PAYLOAD_MAX, FREE, READY, LAST, BLOCK } = workerData;
const K = windows.length;
const FAILED_AT = K, STOP_AT = K + 1; // states[K]: this thread failed; states[K + 1]: the reader asks it to stop
const bytesOf = windows.map((w) => Buffer.from(w));
const fd = openSync(path, "r");
const size = fstatSync(fd).size;
// O_DIRECT where the file system takes it: whole blocks from a block boundary into a window at an address the file
// takes (found by trying each 16-byte step, once per window), the window then starting \`lead\` bytes in. A window
// the file will not read that way (EINVAL) is read through the page cache, as without O_DIRECT.
let fdDirect = -1;
try { fdDirect = openSync(path, constants.O_RDONLY | constants.O_DIRECT); } catch {}
const base = windows.map(() => -2); // -2: not tried yet; -1: refused
const place = (slot) => {
  if (base[slot] !== -2) return base[slot];
  const bytes = bytesOf[slot];
  for (let k = 0; k <= BLOCK - 16; k += 16) {
    try { readSync(fdDirect, bytes, k, BLOCK, 0); return (base[slot] = k); } catch (error) { if (error.code !== "EINVAL") break; }
  }
  return (base[slot] = -1);
};
// Fills a window from \`offset\`; returns [where the window starts in the slot's buffer, bytes read from offset].
const fill = (slot, offset, want) => {
  const bytes = bytesOf[slot];
  const k = fdDirect >= 0 && want > 0 ? place(slot) : -1;
  if (k >= 0) {
    const lead = offset % BLOCK;
    const from = offset - lead;
    const length = Math.ceil((lead + want) / BLOCK) * BLOCK;
    let got = 0;
    try {
      while (got < length) {
        const n = readSync(fdDirect, bytes, k + got, length - got, from + got);
        got += n;
        if (n === 0 || got % BLOCK !== 0) break; // the file's end
      }
      return [k + lead, Math.max(0, Math.min(want, got - lead))];
    } catch (error) {
      if (error.code !== "EINVAL") throw error;
      base[slot] = -1;
    }
  }
  let filled = 0;
  while (filled < want) { const got = readSync(fd, bytes, filled, want - filled, offset + filled); if (got === 0) break; filled += got; }
  return [0, filled];
};
let offset = start;
try {
  for (let n = 0; ; n++) {
    const slot = n % K;
    for (let s = Atomics.load(states, slot); s !== FREE; s = Atomics.load(states, slot)) {
      if (Atomics.load(states, STOP_AT) !== 0) throw 0;
      Atomics.wait(states, slot, s, 1000);
    }
    if (Atomics.load(states, STOP_AT) !== 0) break;
    const [at, filled] = fill(slot, offset, Math.min(windowBytes, size - offset));
    const buf = bytesOf[slot].subarray(at, at + windowBytes);
    // Whole records with the right CRC-32, from the window's start; p: the end of the last one.
    let p = 0, stopped = false;
    while (p < filled) {
      let q = p + 1, length = 0, scale = 1, ended = false;
      for (let i = 0; i < 8 && q < filled; i++) { const b = buf[q++]; length += (b & 0x7f) * scale; scale *= 128; if ((b & 0x80) === 0) { ended = true; break; } }
      if (!ended) { if (q - p >= 9 || offset + q >= size) stopped = true; break; } // a bad length, or one the next window holds
      if (length > PAYLOAD_MAX) { stopped = true; break; }
      const recordBytes = q - p + length + 4;
      if (offset + p + recordBytes > size) { stopped = true; break; } // truncated
      if (p + recordBytes > filled) { if (recordBytes > buf.length) stopped = true; break; } // the next window's, or too large for one
      const crcAt = q + length;
      if (crc32(buf.subarray(p, crcAt)) !== buf.readUInt32LE(crcAt)) { stopped = true; break; }
      p += recordBytes;
    }
    if (offset + p >= size) stopped = true;
    places[3 * slot] = offset;
    places[3 * slot + 1] = p;
    places[3 * slot + 2] = at;
    offset += p;
    Atomics.store(states, slot, stopped ? LAST : READY);
    Atomics.notify(states, slot);
    if (stopped) break;
  }
} catch (error) {
  if (error !== 0) {
    Atomics.store(states, FAILED_AT, 1);
    for (let i = 0; i < K; i++) Atomics.notify(states, i);
  }
} finally {
  closeSync(fd);
  if (fdDirect >= 0) closeSync(fdDirect);
}
`;

/** One window the worker filled: file bytes [start, start + bytes.length), whole records, each CRC-32 right. */
export interface ReadAheadWindow {
  start: number;
  bytes: Uint8Array;
  /** The worker stopped after it: the file's end, or a record it left to the reader. */
  last: boolean;
}

export class ReadAheadThread {
  private readonly windows: Uint8Array[];
  private readonly states: Int32Array; // each window's state, then the failed and stop flags
  private readonly places: Float64Array; // each window's start in the file, length and start in its buffer, written before its state
  private readonly worker: Worker;
  private taken = 0; // windows taken by the reader
  private ended = false;

  /** Reads the file at `path` from byte `start` (the first record, after the header) on. */
  constructor(path: string, start: number, options: { windowBytes?: number; windowCount?: number } = {}) {
    const windowBytes = options.windowBytes ?? 8 << 20;
    const windowCount = options.windowCount ?? 6;
    if (windowCount < 3) throw new RangeError("ReadAheadThread: the reader holds two windows, so at least three");
    // Each buffer has room for an O_DIRECT read: the window placed up to a block further in for the address, and up to
    // a block more at each end for the reads' block boundaries.
    const shared = Array.from({ length: windowCount }, () => new SharedArrayBuffer(windowBytes + 3 * DIRECT_BLOCK_BYTES));
    this.windows = shared.map((s) => new Uint8Array(s));
    this.states = new Int32Array(new SharedArrayBuffer(4 * (windowCount + 2)));
    this.places = new Float64Array(new SharedArrayBuffer(8 * 3 * windowCount));
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path, start, windows: shared, windowBytes, states: this.states, places: this.places, PAYLOAD_MAX: RECORD_PAYLOAD_BYTES_MAX, FREE: WINDOW_FREE, READY: WINDOW_READY, LAST: WINDOW_LAST,
        BLOCK: DIRECT_BLOCK_BYTES },
    });
    this.worker.unref();
    this.worker.on("error", () => undefined); // it only stops reading ahead: the reader reads the rest itself
  }

  /**
   * The next window in file order (waits for the worker), or undefined after the last or when the worker failed. The
   * window taken before it stays valid; the one before that goes back to the worker.
   */
  next(): ReadAheadWindow | undefined {
    if (this.ended) return undefined;
    const count = this.windows.length;
    if (this.taken >= 2) this.free((this.taken - 2) % count);
    const slot = this.taken % count;
    for (let s = Atomics.load(this.states, slot); s === WINDOW_FREE; s = Atomics.load(this.states, slot)) {
      if (Atomics.load(this.states, count) !== 0) {
        this.ended = true;
        return undefined;
      }
      Atomics.wait(this.states, slot, s, 1000);
    }
    this.taken += 1;
    const last = Atomics.load(this.states, slot) === WINDOW_LAST;
    if (last) this.ended = true;
    const start = this.places[3 * slot]!;
    const at = this.places[3 * slot + 2]!;
    return { start, bytes: this.windows[slot]!.subarray(at, at + this.places[3 * slot + 1]!), last };
  }

  /** Where the worker has got to: every record before this byte is in a window it filled (tests). */
  get readUpTo(): number {
    let upTo = 0;
    for (let slot = 0; slot < this.windows.length; slot++) {
      if (Atomics.load(this.states, slot) !== WINDOW_FREE) upTo = Math.max(upTo, this.places[3 * slot]! + this.places[3 * slot + 1]!);
    }
    return upTo;
  }

  stop(): void {
    Atomics.store(this.states, this.windows.length + 1, 1);
    for (let slot = 0; slot < this.windows.length; slot++) Atomics.notify(this.states, slot);
    void this.worker.terminate();
  }

  private free(slot: number): void {
    Atomics.store(this.states, slot, WINDOW_FREE);
    Atomics.notify(this.states, slot);
  }
}
