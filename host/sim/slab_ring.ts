// The producer's side of a ring of shared slabs handed to a worker thread: the board's thread fills a slab, hands it
// over with a state (full, or full and a digest asked for) and goes on with the next, waiting (Atomics.wait) only when
// that one is still the worker's. Used by the trace's SHA-256 thread (hash_thread.ts), a replay's send checker
// (tools/replay/send_check.ts) and the recording's writer (tools/replay/record_file.ts). The worker's side is in each
// worker's source: it waits on states[i] while FREE, does the slab's work, stores FREE and notifies; on failure it sets
// states[slabCount] to 1 and notifies every slab, so the producer never waits for ever.

/**
 * The worker's side of the loop, as source for a worker's eval'd script: runs `setup`, then takes the slabs in order
 * as they are handed over, runs `body` on each (it sees `slab`, its `state` and `lengths[slab]`) and gives it back; on
 * a throw in either it marks the worker failed and wakes the producer. The script must have `slabs`, `states`, FREE
 * and STOP from workerData.
 */
export function slabWorkerLoop(body: string, setup = ""): string {
  return `
try {
${setup}
  for (let slab = 0; ; slab = (slab + 1) % slabs.length) {
    Atomics.wait(states, slab, FREE);
    const state = Atomics.load(states, slab);
    if (state === STOP) break;
${body}
    Atomics.store(states, slab, FREE);
    Atomics.notify(states, slab);
  }
} catch (error) {
  Atomics.store(states, slabs.length, 1);
  for (let i = 0; i < slabs.length; i++) Atomics.notify(states, i);
  throw error;
}
`;
}

/** A slab's state: free for the producer to fill; full for the worker; full and a digest asked for; stop. */
export const SLAB_FREE = 0;
export const SLAB_FULL = 1;
export const SLAB_DIGEST = 2;
export const SLAB_STOP = 3;

export class SlabRing {
  readonly shared: SharedArrayBuffer[];
  readonly slabs: Uint8Array[];
  /** Each slab's state, then the worker's failure flag (states[slabCount]). */
  readonly states: Int32Array;
  /** The bytes of each slab handed over. */
  readonly lengths: Int32Array;
  /** The slab being filled, and the bytes in it. */
  index = 0;
  used = 0;
  /** Slabs handed over; times the producer waited for a slab and for how long in all. */
  handedOver = 0;
  waits = 0;
  waitMs = 0;

  /** Where each slab starts in its shared buffer (shared[i]). */
  readonly slabOffsets: number[];

  /**
   * `failed`: the error's message when the worker has failed (its owner's name and what the worker did).
   * `slackBytes` > 0: the slabs are one after another in one shared buffer this much longer than them all, so that
   * place() can move them all further in at once (the recording's writer puts them at the alignment O_DIRECT asks
   * for); otherwise each slab is a shared buffer of its own.
   */
  constructor(private readonly slabBytes: number, slabCount: number, private readonly failed: string, private readonly slackBytes = 0) {
    const one = slackBytes > 0 ? new SharedArrayBuffer(slabBytes * slabCount + slackBytes) : undefined;
    this.shared = Array.from({ length: slabCount }, () => one ?? new SharedArrayBuffer(slabBytes));
    this.slabOffsets = Array.from({ length: slabCount }, (_, i) => (one === undefined ? 0 : i * slabBytes));
    this.slabs = this.shared.map((s, i) => new Uint8Array(s, this.slabOffsets[i], slabBytes));
    this.states = new Int32Array(new SharedArrayBuffer(4 * (slabCount + 1)));
    this.lengths = new Int32Array(new SharedArrayBuffer(4 * slabCount));
  }

  /** Moves every slab `offset` bytes further into the one shared buffer (at most the slack); before any use. */
  place(offset: number): void {
    if (!(offset >= 0 && offset <= this.slackBytes) || this.handedOver > 0 || this.used > 0) throw new RangeError(`SlabRing.place(${offset}): beyond the slack, or after use`);
    for (let i = 0; i < this.slabs.length; i++) {
      this.slabOffsets[i] = i * this.slabBytes + offset;
      this.slabs[i] = new Uint8Array(this.shared[i]!, this.slabOffsets[i], this.slabBytes);
    }
  }

  /** What the worker is given: the slabs' buffers and where each starts in its own, their states and lengths, the states' values. */
  get workerData(): { slabs: SharedArrayBuffer[]; slabOffsets: number[]; slabBytes: number; states: Int32Array; lengths: Int32Array; FREE: number; FULL: number; DIGEST: number; STOP: number } {
    return { slabs: this.shared, slabOffsets: this.slabOffsets, slabBytes: this.slabBytes, states: this.states, lengths: this.lengths, FREE: SLAB_FREE, FULL: SLAB_FULL, DIGEST: SLAB_DIGEST, STOP: SLAB_STOP };
  }

  /** The slab being filled. */
  get slab(): Uint8Array {
    return this.slabs[this.index]!;
  }

  /** Writes `n` as a u32 (little-endian) at `used` in the slab being filled (the caller knows there is room). */
  putLength(n: number): void {
    const slab = this.slab;
    const at = this.used;
    slab[at] = n & 0xff;
    slab[at + 1] = (n >>> 8) & 0xff;
    slab[at + 2] = (n >>> 16) & 0xff;
    slab[at + 3] = (n >>> 24) & 0xff;
    this.used = at + 4;
  }

  /** Hands the slab being filled (its `used` bytes) to the worker with `state`; then waits until the next is free. */
  handOver(state: number = SLAB_FULL): void {
    const index = this.index;
    this.lengths[index] = this.used;
    Atomics.store(this.states, index, state);
    Atomics.notify(this.states, index);
    this.handedOver += 1;
    this.index = (index + 1) % this.slabs.length;
    this.used = 0;
    this.waitFree(this.index);
  }

  /** Hands the slab being filled over asking for a digest, waits for the worker, and reads it from `result` (hex). */
  digest(result: Uint8Array): string {
    const index = this.index;
    this.handOver(SLAB_DIGEST);
    this.waitFree(index);
    return Buffer.from(result).toString("hex");
  }

  /** Waits until slab `index` is free (the worker is done with it). */
  waitFree(index: number): void {
    if (Atomics.load(this.states, index) === SLAB_FREE) return;
    const started = performance.now();
    for (let state = Atomics.load(this.states, index); state !== SLAB_FREE; state = Atomics.load(this.states, index)) {
      if (this.workerFailed) throw new Error(this.failed);
      if (state === SLAB_STOP) throw new Error(`${this.failed.split(":")[0]}: slab ${index} is stopped`);
      Atomics.wait(this.states, index, state, 1000);
    }
    this.waits += 1;
    this.waitMs += performance.now() - started;
  }

  /** Waits for every slab to be free. */
  drain(): void {
    for (let i = 0; i < this.slabs.length; i++) this.waitFree(i);
  }

  /** Tells the worker to stop, once it is done with the slab being filled (call after handing over the last). */
  stop(): void {
    const index = this.index;
    this.waitFree(index);
    Atomics.store(this.states, index, SLAB_STOP);
    Atomics.notify(this.states, index);
  }

  get workerFailed(): boolean {
    return Atomics.load(this.states, this.slabs.length) !== 0;
  }
}
