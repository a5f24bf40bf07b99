// What a replay computes over every send of the board, on a worker thread: each send's CRC-32 (checked against its
// record) and the SHA-256 of every byte sent. submit() copies the send into shared slabs and returns its number; the
// worker publishes each send's CRC-32 in a ring as it gets there. The replay compares them a little later, in order
// (replay.ts), so the board's thread pays a copy (about 0.04 ms a MiB) instead of the CRC (0.22 ms) and the SHA-256
// (0.6 ms). When the worker is RING sends behind, or every slab is full, submit() waits. A replay's network gives the
// NIC room for a send straight in the slab (space()): the NIC gathers the payload there, and submit() of those bytes
// only writes their header, so a send is not copied at all.
import { Worker } from "node:worker_threads";
import { copyBytes } from "../../host/bus/shared_copy.ts";
import { SLAB_FULL, SlabRing } from "../../host/sim/slab_ring.ts";
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
  private readonly ring: SlabRing;
  private readonly results: Int32Array;
  private readonly done: Int32Array;
  private readonly digestBytes: Uint8Array;
  private readonly worker: Worker;
  private submitted = 0;
  private closed = false;
  private scratch = new Uint8Array(0); // space() for a send larger than a slab

  constructor(options: { slabBytes?: number; slabCount?: number } = {}) {
    this.ring = new SlabRing(options.slabBytes ?? 1 << 20, options.slabCount ?? 8, "SendCheckThread: the checking thread failed");
    this.results = new Int32Array(new SharedArrayBuffer(4 * RING));
    this.done = new Int32Array(new SharedArrayBuffer(4));
    this.digestBytes = new Uint8Array(new SharedArrayBuffer(32));
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { ...this.ring.workerData, results: this.results, done: this.done, digest: this.digestBytes, RING },
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

  /**
   * Room for the next send's `lengthBytes` in the slab being filled, after room for its header: bytes gathered there
   * and given to submit() as this view (or its start) are not copied. Valid until the next space() or submit(); a
   * send larger than a slab gets room of its own (then copied by submit()).
   */
  space(lengthBytes: number): Uint8Array {
    if (this.closed) throw new Error("SendCheckThread: space after close");
    this.waitRing();
    const ring = this.ring;
    if (4 + lengthBytes > ring.slab.length) {
      if (this.scratch.length < lengthBytes) this.scratch = new Uint8Array(lengthBytes);
      return this.scratch.subarray(0, lengthBytes);
    }
    if (ring.slab.length - ring.used < 4 + lengthBytes) ring.handOver(SLAB_FULL);
    return ring.slab.subarray(ring.used + 4, ring.used + 4 + lengthBytes);
  }

  /** Copies one send (not empty) for its CRC-32 and the SHA-256; returns its number, from 0. */
  submit(bytes: Uint8Array): number {
    if (this.closed) throw new Error("SendCheckThread: submit after close");
    const ring = this.ring;
    // Gathered where space() said, and the ring has room for one more: only the header is written.
    if (bytes.buffer === ring.slab.buffer && bytes.byteOffset === ring.slab.byteOffset + ring.used + 4 && this.submitted - Atomics.load(this.done, 0) < RING) {
      this.ring.putLength(bytes.length);
      ring.used += bytes.length;
      return this.submitted++;
    }
    if (bytes.buffer === ring.slab.buffer) bytes = bytes.slice(); // in the slab, but not where it goes: the waits below may hand it over
    this.waitRing();
    if (ring.slab.length - ring.used < 4) ring.handOver(SLAB_FULL);
    const n = bytes.length;
    this.ring.putLength(n);
    let slab = ring.slab;
    let from = 0;
    while (from < n) {
      if (ring.used === slab.length) {
        ring.handOver(SLAB_FULL);
        slab = ring.slab;
      }
      const take = Math.min(n - from, slab.length - ring.used);
      copyBytes(slab, ring.used, bytes.subarray(from, from + take));
      ring.used += take;
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
    return this.ring.digest(this.digestBytes);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ring.stop();
  }

  // Until the worker is less than RING sends behind: a send's CRC must not overwrite one not yet taken.
  private waitRing(): void {
    while (this.submitted - Atomics.load(this.done, 0) >= RING) this.waitDone(this.submitted - RING);
  }

  private waitDone(ordinal: number): void {
    if (this.ring.used > 0) this.ring.handOver(SLAB_FULL); // the sends waited for may be in the slab being filled
    for (let seen = Atomics.load(this.done, 0); seen <= ordinal; seen = Atomics.load(this.done, 0)) {
      if (this.ring.workerFailed) throw new Error("SendCheckThread: the checking thread failed");
      Atomics.wait(this.done, 0, seen, 1000);
    }
  }
}
