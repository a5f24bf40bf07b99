// The producer's side of a ring of shared slabs (host/sim/slab_ring.ts): slabs go round in order with their lengths
// and states, the producer waits only for a slab the worker still holds (and counts those waits), and a worker that
// fails makes the producer throw its owner's message instead of waiting for ever.
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { SLAB_DIGEST, SlabRing } from "../../../host/sim/slab_ring.ts";

// A worker that sums each slab's bytes into sums[slab index order], slowly; with failAfter, it fails after that many slabs.
const WORKER = `
const { workerData } = require("node:worker_threads");
const { slabs, states, lengths, sums, FREE, DIGEST, STOP, failAfter } = workerData;
const bytes = slabs.map((s) => new Uint8Array(s));
let n = 0;
for (let slab = 0; ; slab = (slab + 1) % slabs.length) {
  Atomics.wait(states, slab, FREE);
  const state = Atomics.load(states, slab);
  if (state === STOP) break;
  if (n === failAfter) { Atomics.store(states, slabs.length, 1); for (let i = 0; i < slabs.length; i++) Atomics.notify(states, i); break; }
  const end = Date.now() + 5; while (Date.now() < end);
  let sum = 0; for (let i = 0; i < lengths[slab]; i++) sum += bytes[slab][i];
  sums[n++] = state === DIGEST ? -sum : sum;
  Atomics.store(states, slab, FREE);
  Atomics.notify(states, slab);
}
`;

function start(failAfter: number): { ring: SlabRing; sums: Int32Array; worker: Worker } {
  const ring = new SlabRing(64, 3, "Owner: the summing thread failed");
  const sums = new Int32Array(new SharedArrayBuffer(4 * 64));
  const worker = new Worker(WORKER, { eval: true, workerData: { ...ring.workerData, sums, failAfter } });
  worker.unref();
  return { ring, sums, worker };
}

describe("SlabRing", () => {
  it("hands slabs over in order with their lengths and states, and waits for the ones the worker holds", () => {
    const { ring, sums, worker } = start(-1);
    for (let k = 0; k < 10; k++) {
      ring.slab.fill(k + 1, 0, 10 + k);
      ring.used = 10 + k;
      ring.handOver(k === 9 ? SLAB_DIGEST : undefined);
    }
    ring.drain();
    ring.stop();
    expect([...sums.subarray(0, 10)]).toEqual(Array.from({ length: 10 }, (_, k) => (k === 9 ? -1 : 1) * (k + 1) * (10 + k)));
    expect(ring.handedOver).toBe(10);
    expect(ring.waits).toBeGreaterThan(0); // 10 slabs through a ring of 3, each held 5 ms by the worker
    void worker.terminate();
  });

  it("throws the owner's message when the worker has failed, instead of waiting", () => {
    const { ring, worker } = start(2);
    expect(() => {
      for (let k = 0; k < 10; k++) {
        ring.used = 1;
        ring.handOver();
      }
    }).toThrow("Owner: the summing thread failed");
    expect(ring.workerFailed).toBe(true);
    void worker.terminate();
  });
});
