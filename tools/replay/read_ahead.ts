// A recording file read ahead of its reader on a worker thread, its records' CRC-32s checked there (docs/replay.md,
// "Reading a recording"). A replay of a busy session reads gigabytes of records: the system calls' copies and the
// CRC-32s were a tenth of its board's thread. The worker reads the file in order into windows, each starting at a
// record and holding only whole records whose CRC-32 is right, and hands them to the reader in order (next()); the
// reader takes records straight from them. The worker stops after the last good record before anything it does not
// like (a bad checksum, a truncated record, a length out of bounds, a record larger than a window) and marks that
// window the last: the reader reads the rest of the file itself and checks it record by record, so a damaged record
// gets the same one line. It is at most `windowCount` windows ahead of the reader (a replay stopped early by --until
// does not read the rest).
//
// Each window is a buffer of its own, made by the worker and transferred to the reader's thread (a MessagePort read
// with receiveMessageOnPort), never reused: so it is not shared memory (copies out of it run at memmove speed, where
// V8 copies shared bytes at another alignment one at a time; host/bus/shared_copy.ts), and the received bytes a
// record holds can be handed to the NIC as a view of the window, not copied (lasting()).
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { PAD_ALIGN_BYTES, RECORD_PAYLOAD_BYTES_MAX } from "./format.ts";

// O_DIRECT reads: whole blocks of this, from block boundaries (the recording's writer's block).
const DIRECT_BLOCK_BYTES = PAD_ALIGN_BYTES;

// The shared counters: windows posted by the worker, taken by the reader; the worker failed; the reader asks it to stop.
const POSTED = 0;
const TAKEN = 1;
const FAILED = 2;
const STOP = 3;

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { openSync, readSync, closeSync, fstatSync, constants } = require("node:fs");
const { crc32 } = require("node:zlib");
const { path, start, windowBytes, windowCount, counters, upTo, port, PAYLOAD_MAX, POSTED, TAKEN, FAILED, STOP, BLOCK } = workerData;
const fd = openSync(path, "r");
const size = fstatSync(fd).size;
// O_DIRECT where the file system takes it: whole blocks from a block boundary into the window's buffer at an address
// the file takes (the last window's place tried first, else each 16-byte step), the window then starting \`lead\`
// bytes in. A window the file will not read that way (EINVAL) is read through the page cache, as without O_DIRECT.
let fdDirect = -1;
try { fdDirect = openSync(path, constants.O_RDONLY | constants.O_DIRECT); } catch {}
let lastPlace = -2; // -2: not tried yet; -1: refused
const place = (bytes) => {
  if (lastPlace === -1) return -1;
  if (lastPlace >= 0) { try { readSync(fdDirect, bytes, lastPlace, BLOCK, 0); return lastPlace; } catch (error) { if (error.code !== "EINVAL") return (lastPlace = -1); } }
  for (let k = 0; k <= BLOCK - 16; k += 16) {
    try { readSync(fdDirect, bytes, k, BLOCK, 0); return (lastPlace = k); } catch (error) { if (error.code !== "EINVAL") break; }
  }
  return (lastPlace = -1);
};
// Fills a window's buffer from \`offset\`; returns [where the window starts in the buffer, bytes read from offset].
const fill = (bytes, offset, want) => {
  const k = fdDirect >= 0 && want > 0 ? place(bytes) : -1;
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
      lastPlace = -1;
    }
  }
  let filled = 0;
  while (filled < want) { const got = readSync(fd, bytes, filled, want - filled, offset + filled); if (got === 0) break; filled += got; }
  return [0, filled];
};
let offset = start;
try {
  for (let n = 0; ; n++) {
    for (let taken = Atomics.load(counters, TAKEN); n - taken >= windowCount; taken = Atomics.load(counters, TAKEN)) {
      if (Atomics.load(counters, STOP) !== 0) throw 0;
      Atomics.wait(counters, TAKEN, taken, 1000);
    }
    if (Atomics.load(counters, STOP) !== 0) break;
    // Room for an O_DIRECT read: the window placed up to a block further in for the address, and up to a block more
    // at each end for the reads' block boundaries. Only the window's bytes are read by anyone.
    const want = Math.max(0, Math.min(windowBytes, size - offset));
    const whole = Buffer.allocUnsafeSlow(want + 3 * BLOCK);
    const [at, filled] = fill(whole, offset, want);
    const buf = whole.subarray(at, at + want);
    // Whole records with the right CRC-32, from the window's start; p: the end of the last one.
    let p = 0, stopped = false;
    while (p < filled) {
      let q = p + 1, length = 0, scale = 1, ended = false;
      for (let i = 0; i < 8 && q < filled; i++) { const b = buf[q++]; length += (b & 0x7f) * scale; scale *= 128; if ((b & 0x80) === 0) { ended = true; break; } }
      if (!ended) { if (q - p >= 9 || offset + q >= size) stopped = true; break; } // a bad length, or one the next window holds
      if (length > PAYLOAD_MAX) { stopped = true; break; }
      const recordBytes = q - p + length + 4;
      if (offset + p + recordBytes > size) { stopped = true; break; } // truncated
      if (p + recordBytes > filled) { if (recordBytes > windowBytes) stopped = true; break; } // the next window's, or too large for one
      const crcAt = q + length;
      if (crc32(buf.subarray(p, crcAt)) !== buf.readUInt32LE(crcAt)) { stopped = true; break; }
      p += recordBytes;
    }
    if (offset + p >= size) stopped = true;
    port.postMessage({ start: offset, at: whole.byteOffset + at, length: p, last: stopped, buffer: whole.buffer }, [whole.buffer]);
    offset += p;
    upTo[0] = offset;
    Atomics.store(counters, POSTED, n + 1);
    Atomics.notify(counters, POSTED);
    if (stopped) break;
  }
} catch (error) {
  if (error !== 0) {
    Atomics.store(counters, FAILED, 1);
    Atomics.notify(counters, POSTED);
  }
} finally {
  closeSync(fd);
  if (fdDirect >= 0) closeSync(fdDirect);
}
`;

/** One window the worker filled: file bytes [start, start + bytes.length), whole records, each CRC-32 right. */
export interface ReadAheadWindow {
  start: number;
  /** A buffer of the window's own (not shared, never reused): views of it stay valid. */
  bytes: Uint8Array;
  /** The worker stopped after it: the file's end, or a record it left to the reader. */
  last: boolean;
}

export class ReadAheadThread {
  private readonly counters: Int32Array;
  private readonly upTo: Float64Array; // the end of the last window posted
  private readonly port: MessagePort;
  private readonly worker: Worker;
  private taken = 0; // windows taken by the reader
  private ended = false;

  /** Reads the file at `path` from byte `start` (the first record, after the header) on. */
  constructor(path: string, start: number, options: { windowBytes?: number; windowCount?: number } = {}) {
    const windowBytes = options.windowBytes ?? 8 << 20;
    const windowCount = options.windowCount ?? 6;
    if (windowCount < 1) throw new RangeError("ReadAheadThread: at least one window ahead");
    this.counters = new Int32Array(new SharedArrayBuffer(4 * 4));
    this.upTo = new Float64Array(new SharedArrayBuffer(8));
    this.upTo[0] = start;
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        path, start, windowBytes, windowCount, counters: this.counters, upTo: this.upTo, port: port2,
        PAYLOAD_MAX: RECORD_PAYLOAD_BYTES_MAX, POSTED, TAKEN, FAILED, STOP, BLOCK: DIRECT_BLOCK_BYTES,
      },
      transferList: [port2],
    });
    this.worker.unref();
    this.port.unref();
    this.worker.on("error", () => undefined); // it only stops reading ahead: the reader reads the rest itself
  }

  /** The next window in file order (waits for the worker), or undefined after the last or when the worker failed. */
  next(): ReadAheadWindow | undefined {
    if (this.ended) return undefined;
    for (;;) {
      const got = receiveMessageOnPort(this.port);
      if (got !== undefined) {
        const m = got.message as { start: number; at: number; length: number; last: boolean; buffer: ArrayBuffer };
        this.taken += 1;
        Atomics.store(this.counters, TAKEN, this.taken);
        Atomics.notify(this.counters, TAKEN);
        if (m.last) this.ended = true;
        return { start: m.start, bytes: new Uint8Array(m.buffer, m.at, m.length), last: m.last };
      }
      const posted = Atomics.load(this.counters, POSTED);
      if (posted > this.taken) continue; // posted before counted: the message is there
      if (Atomics.load(this.counters, FAILED) !== 0) {
        this.ended = true;
        return undefined;
      }
      Atomics.wait(this.counters, POSTED, posted, 1000);
    }
  }

  /** Where the worker has got to: every record before this byte is in a window it filled (tests). */
  get readUpTo(): number {
    return this.upTo[0]!;
  }

  stop(): void {
    Atomics.store(this.counters, STOP, 1);
    Atomics.notify(this.counters, TAKEN);
    this.port.close();
    void this.worker.terminate();
  }
}
