// What a replay computes over every send of the board, on a worker thread: each send's CRC-32 (checked against its
// record) and the SHA-256 of every byte sent. submit() copies the send into shared slabs and returns its number; the
// worker publishes each send's CRC-32 in a ring as it gets there. The replay compares them a little later, in order
// (replay.ts), so the board's thread pays a copy (about 0.04 ms a MiB) instead of the CRC (0.22 ms) and the SHA-256
// (0.6 ms). When the worker is RING sends behind, or every slab is full, submit() waits.
import { Worker } from "node:worker_threads";

const FREE = 0;
const FULL = 1;
const DIGEST = 2;
const STOP = 3;
/** Sends whose CRC may wait in the ring. */
export const RING = 1 << 16;

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { crc32 } = require("node:zlib");
const { slabs, states, lengths, results, done, digest, RING, FREE, DIGEST, STOP } = workerData;
const bytesOf = slabs.map((s) => new Uint8Array(s));
const FAILED_AT = slabs.length;
const hash = createHash("sha256");
let need = 0, crc = 0, ordinal = 0;
try {
  for (let slab = 0; ; slab = (slab + 1) % slabs.length) {
    Atomics.wait(states, slab, FREE);
    const state = Atomics.load(states, slab);
    if (state === STOP) break;
    const bytes = bytesOf[slab];
    const length = lengths[slab];
    let at = 0;
    while (at < length) {
      if (need === 0) { // a send's header: its length, never cut by a slab's end
        need = bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24);
        at += 4;
        crc = 0;
      }
      const take = Math.min(need, length - at);
      const chunk = bytes.subarray(at, at + take);
      crc = crc32(chunk, crc);
      hash.update(chunk);
      at += take;
      need -= take;
      if (need === 0) {
        results[ordinal % RING] = crc;
        ordinal += 1;
        Atomics.store(done, 0, ordinal);
        Atomics.notify(done, 0);
      }
    }
    if (state === DIGEST) digest.set(hash.copy().digest());
    Atomics.store(states, slab, FREE);
    Atomics.notify(states, slab);
  }
} catch (error) {
  Atomics.store(states, FAILED_AT, 1);
  for (let i = 0; i < slabs.length; i++) Atomics.notify(states, i);
  Atomics.notify(done, 0);
  throw error;
}
`;

export class SendCheckThread {
  private readonly slabs: Uint8Array[];
  private readonly states: Int32Array;
  private readonly lengths: Int32Array;
  private readonly results: Int32Array;
  private readonly done: Int32Array;
  private readonly digestBytes: Uint8Array;
  private readonly worker: Worker;
  private slab = 0;
  private used = 0;
  private submitted = 0;
  private closed = false;

  constructor(options: { slabBytes?: number; slabCount?: number } = {}) {
    const slabBytes = options.slabBytes ?? 1 << 20;
    const slabCount = options.slabCount ?? 8;
    const shared = Array.from({ length: slabCount }, () => new SharedArrayBuffer(slabBytes));
    this.slabs = shared.map((s) => new Uint8Array(s));
    this.states = new Int32Array(new SharedArrayBuffer(4 * (slabCount + 1)));
    this.lengths = new Int32Array(new SharedArrayBuffer(4 * slabCount));
    this.results = new Int32Array(new SharedArrayBuffer(4 * RING));
    this.done = new Int32Array(new SharedArrayBuffer(4));
    this.digestBytes = new Uint8Array(new SharedArrayBuffer(32));
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { slabs: shared, states: this.states, lengths: this.lengths, results: this.results, done: this.done, digest: this.digestBytes, RING, FREE, DIGEST, STOP },
    });
    this.worker.unref();
  }

  /** Sends submitted so far (the next send's number). */
  get count(): number {
    return this.submitted;
  }

  /** Sends whose CRC is known (without waiting). */
  get checked(): number {
    return Atomics.load(this.done, 0);
  }

  /** Copies one send (not empty) for its CRC-32 and the SHA-256; returns its number, from 0. */
  submit(bytes: Uint8Array): number {
    if (this.closed) throw new Error("SendCheckThread: submit after close");
    while (this.submitted - Atomics.load(this.done, 0) >= RING) this.waitDone(this.submitted - RING);
    if (this.slabs[this.slab]!.length - this.used < 4) this.handOver(FULL);
    let slab = this.slabs[this.slab]!;
    const n = bytes.length;
    slab[this.used] = n & 0xff;
    slab[this.used + 1] = (n >>> 8) & 0xff;
    slab[this.used + 2] = (n >>> 16) & 0xff;
    slab[this.used + 3] = (n >>> 24) & 0xff;
    this.used += 4;
    let from = 0;
    while (from < n) {
      if (this.used === slab.length) {
        this.handOver(FULL);
        slab = this.slabs[this.slab]!;
      }
      const take = Math.min(n - from, slab.length - this.used);
      slab.set(bytes.subarray(from, from + take), this.used);
      this.used += take;
      from += take;
    }
    return this.submitted++;
  }

  /** Send `ordinal`'s CRC-32 (waits for the worker to get there). */
  crc(ordinal: number): number {
    if (ordinal >= this.submitted || ordinal < this.submitted - RING) throw new RangeError(`SendCheckThread: send ${ordinal} is not in the ring`);
    if (Atomics.load(this.done, 0) <= ordinal) this.waitDone(ordinal);
    return this.results[ordinal % RING]! >>> 0;
  }

  /** The SHA-256 of every byte submitted, in hex. */
  sha256(): string {
    const index = this.slab;
    this.handOver(DIGEST);
    this.waitFree(index);
    return Buffer.from(this.digestBytes).toString("hex");
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const index = this.slab;
    this.waitFree(index);
    Atomics.store(this.states, index, STOP);
    Atomics.notify(this.states, index);
  }

  private waitDone(ordinal: number): void {
    if (this.used > 0) this.handOver(FULL); // the sends waited for may be in the slab being filled
    for (let seen = Atomics.load(this.done, 0); seen <= ordinal; seen = Atomics.load(this.done, 0)) {
      if (Atomics.load(this.states, this.slabs.length) !== 0) throw new Error("SendCheckThread: the checking thread failed");
      Atomics.wait(this.done, 0, seen, 1000);
    }
  }

  private handOver(state: number): void {
    const index = this.slab;
    this.lengths[index] = this.used;
    Atomics.store(this.states, index, state);
    Atomics.notify(this.states, index);
    this.slab = (index + 1) % this.slabs.length;
    this.used = 0;
    this.waitFree(this.slab);
  }

  private waitFree(index: number): void {
    for (let state = Atomics.load(this.states, index); state !== FREE; state = Atomics.load(this.states, index)) {
      if (Atomics.load(this.states, this.slabs.length) !== 0) throw new Error("SendCheckThread: the checking thread failed");
      Atomics.wait(this.states, index, state, 1000);
    }
  }
}
