// A SHA-256 computed on a worker thread: update() copies the bytes (or a string's UTF-8) into shared slabs and returns;
// the worker hashes each slab as it fills. digest() waits for the worker to reach the last byte given and returns the
// hex digest, the same as node:crypto's of the same bytes. A replay hashes every byte the board sent and every trace
// line (docs/replay.md, "Replay's speed"): on the board's thread that was about a quarter of its CPU; here it costs a
// copy (about 0.04 ms a MiB), and the hashing runs beside the board on another core. When every slab is still being
// hashed, update() waits (Atomics.wait): nothing is lost.
import { Worker } from "node:worker_threads";

// A slab's state: free for the owner to fill; full for the worker; full and then a digest asked for; stop.
const FREE = 0;
const FULL = 1;
const DIGEST = 2;
const STOP = 3;

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { slabs, states, lengths, result, FREE, DIGEST, STOP } = workerData;
const bytesOf = slabs.map((s) => new Uint8Array(s));
const FAILED_AT = slabs.length;
const hash = createHash("sha256");
try {
  for (let slab = 0; ; slab = (slab + 1) % slabs.length) {
    Atomics.wait(states, slab, FREE);
    const state = Atomics.load(states, slab);
    if (state === STOP) break;
    if (lengths[slab] > 0) hash.update(bytesOf[slab].subarray(0, lengths[slab]));
    if (state === DIGEST) result.set(hash.copy().digest());
    Atomics.store(states, slab, FREE);
    Atomics.notify(states, slab);
  }
} catch (error) {
  Atomics.store(states, FAILED_AT, 1);
  for (let i = 0; i < slabs.length; i++) Atomics.notify(states, i);
  throw error;
}
`;

export class Sha256Thread {
  private readonly slabs: Uint8Array[];
  private readonly states: Int32Array;
  private readonly lengths: Int32Array;
  private readonly result: Uint8Array;
  private readonly worker: Worker;
  private readonly encoder = new TextEncoder();
  private slab = 0;
  private used = 0;
  private final: string | undefined; // the digest at close()

  constructor(options: { slabBytes?: number; slabCount?: number } = {}) {
    const slabBytes = options.slabBytes ?? 1 << 20;
    const slabCount = options.slabCount ?? 8;
    const shared = Array.from({ length: slabCount }, () => new SharedArrayBuffer(slabBytes));
    this.slabs = shared.map((s) => new Uint8Array(s));
    this.states = new Int32Array(new SharedArrayBuffer(4 * (slabCount + 1))); // and the worker's failure flag
    this.lengths = new Int32Array(new SharedArrayBuffer(4 * slabCount));
    this.result = new Uint8Array(new SharedArrayBuffer(32));
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { slabs: shared, states: this.states, lengths: this.lengths, result: this.result, FREE, DIGEST, STOP },
    });
    this.worker.unref();
  }

  /** Adds `data` (a string as UTF-8, as node:crypto's update does); copied before this returns. */
  update(data: Uint8Array | string): this {
    if (this.final !== undefined) throw new Error("Sha256Thread: update after close");
    if (typeof data === "string") {
      let text = data;
      for (;;) {
        const slab = this.slabs[this.slab]!;
        const { read, written } = this.encoder.encodeInto(text, slab.subarray(this.used));
        this.used += written;
        if (read === text.length) break;
        text = text.slice(read);
        this.handOver(FULL); // full, or too little room left for the next character
      }
      return this;
    }
    let from = 0;
    while (from < data.length) {
      const slab = this.slabs[this.slab]!;
      const n = Math.min(data.length - from, slab.length - this.used);
      slab.set(data.subarray(from, from + n), this.used);
      this.used += n;
      from += n;
      if (this.used === slab.length) this.handOver(FULL);
    }
    return this;
  }

  /** The SHA-256 of everything given so far, in hex (waits for the worker to hash it). */
  digest(): string {
    if (this.final !== undefined) return this.final;
    const index = this.slab;
    this.handOver(DIGEST);
    this.waitFree(index);
    return Buffer.from(this.result).toString("hex");
  }

  /** Stops the worker; digest() then keeps returning the final digest. */
  close(): string {
    if (this.final !== undefined) return this.final;
    const final = this.digest();
    this.final = final;
    const index = this.slab;
    this.waitFree(index);
    Atomics.store(this.states, index, STOP);
    Atomics.notify(this.states, index);
    return final;
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
      if (Atomics.load(this.states, this.slabs.length) !== 0) throw new Error("Sha256Thread: the hashing thread failed");
      Atomics.wait(this.states, index, state, 1000);
    }
  }
}
