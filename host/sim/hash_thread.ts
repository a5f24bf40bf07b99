// A SHA-256 computed on a worker thread: update() copies the bytes (or a string's UTF-8) into shared slabs and returns;
// the worker hashes each slab as it fills. digest() waits for the worker to reach the last byte given and returns the
// hex digest, the same as node:crypto's of the same bytes. A replay hashes every byte the board sent and every trace
// line (docs/replay.md, "Replay's speed"): on the board's thread that was about a quarter of its CPU; here it costs a
// copy (about 0.04 ms a MiB), and the hashing runs beside the board on another core. When every slab is still being
// hashed, update() waits (Atomics.wait): nothing is lost.
import { Worker } from "node:worker_threads";
import { copyBytes } from "../bus/shared_copy.ts";
import { SLAB_FULL, SlabRing, slabWorkerLoop } from "./slab_ring.ts";

const WORKER_SOURCE = `
const { workerData } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const { slabs, states, lengths, result, FREE, DIGEST, STOP } = workerData;
const bytesOf = slabs.map((s) => new Uint8Array(s));
const hash = createHash("sha256");
${slabWorkerLoop(`
    if (lengths[slab] > 0) hash.update(bytesOf[slab].subarray(0, lengths[slab]));
    if (state === DIGEST) result.set(hash.copy().digest());`)}`;

export class Sha256Thread {
  private readonly ring: SlabRing;
  private readonly result: Uint8Array;
  private readonly worker: Worker;
  private readonly encoder = new TextEncoder();
  private final: string | undefined; // the digest at close()

  constructor(options: { slabBytes?: number; slabCount?: number } = {}) {
    this.ring = new SlabRing(options.slabBytes ?? 1 << 20, options.slabCount ?? 8, "Sha256Thread: the hashing thread failed");
    this.result = new Uint8Array(new SharedArrayBuffer(32));
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ...this.ring.workerData, result: this.result } });
    this.worker.unref();
  }

  /** Adds `data` (a string as UTF-8, as node:crypto's update does); copied before this returns. */
  update(data: Uint8Array | string): this {
    if (this.final !== undefined) throw new Error("Sha256Thread: update after close");
    const ring = this.ring;
    if (typeof data === "string") {
      let text = data;
      for (;;) {
        const { read, written } = this.encoder.encodeInto(text, ring.slab.subarray(ring.used));
        ring.used += written;
        if (read === text.length) break;
        text = text.slice(read);
        ring.handOver(SLAB_FULL); // full, or too little room left for the next character
      }
      return this;
    }
    let from = 0;
    while (from < data.length) {
      const slab = ring.slab;
      const n = Math.min(data.length - from, slab.length - ring.used);
      copyBytes(slab, ring.used, data.subarray(from, from + n));
      ring.used += n;
      from += n;
      if (ring.used === slab.length) ring.handOver(SLAB_FULL);
    }
    return this;
  }

  /** The SHA-256 of everything given so far, in hex (waits for the worker to hash it). */
  digest(): string {
    if (this.final !== undefined) return this.final;
    return this.ring.digest(this.result);
  }

  /** Stops the worker; digest() then keeps returning the final digest. */
  close(): string {
    if (this.final !== undefined) return this.final;
    const final = this.digest();
    this.final = final;
    this.ring.stop();
    return final;
  }
}
