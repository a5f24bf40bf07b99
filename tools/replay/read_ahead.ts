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
import { RECORD_PAYLOAD_BYTES_MAX } from "./format.ts";

// The shared counters: windows posted by the worker, taken by the reader; the worker failed; the reader asks it to stop.
const POSTED = 0;
const TAKEN = 1;
const FAILED = 2;
const STOP = 3;

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { openSync, readSync, closeSync, fstatSync } = require("node:fs");
const { crc32 } = require("node:zlib");
const { path, start, windowBytes, windowCount, counters, upTo, port, PAYLOAD_MAX, POSTED, TAKEN, FAILED, STOP } = workerData;
const fd = openSync(path, "r");
const size = fstatSync(fd).size;
let offset = start;
try {
  for (let n = 0; ; n++) {
    for (let taken = Atomics.load(counters, TAKEN); n - taken >= windowCount; taken = Atomics.load(counters, TAKEN)) {
      if (Atomics.load(counters, STOP) !== 0) throw 0;
      Atomics.wait(counters, TAKEN, taken, 1000);
    }
    if (Atomics.load(counters, STOP) !== 0) break;
    const buf = Buffer.allocUnsafeSlow(Math.max(0, Math.min(windowBytes, size - offset))); // every byte read below
    const want = buf.length;
    let filled = 0;
    while (filled < want) { const got = readSync(fd, buf, filled, want - filled, offset + filled); if (got === 0) break; filled += got; }
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
    port.postMessage({ start: offset, length: p, last: stopped, buffer: buf.buffer }, [buf.buffer]);
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
        PAYLOAD_MAX: RECORD_PAYLOAD_BYTES_MAX, POSTED, TAKEN, FAILED, STOP,
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
        const m = got.message as { start: number; length: number; last: boolean; buffer: ArrayBuffer };
        this.taken += 1;
        Atomics.store(this.counters, TAKEN, this.taken);
        Atomics.notify(this.counters, TAKEN);
        if (m.last) this.ended = true;
        return { start: m.start, bytes: new Uint8Array(m.buffer, 0, m.length), last: m.last };
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
