// Buffer pools: exhaustion is a status and backpressure, never a trap; release checks its argument; the free list
// and the held bitmap always agree. Driven on the test build through its pool exports; the property test runs
// random acquire/release sequences against a model (a set of held indexes).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { testBoard } from "../../support/board.ts";

const POOL_NONE = 0xffff;
const Op = { Acquire: 19 } as const;

describe("buffer pools", () => {
  it("carves three size classes, sized from RAM, with aligned slots", () => {
    const t = testBoard({ ramMiB: [16] });
    const sizes = [0, 1, 2].map((c) => t.call("testPoolSlotBytes", c));
    expect(sizes).toEqual([512, 4096, 65536]);
    for (const c of [0, 1, 2]) {
      const capacity = t.call("testPoolCapacity", c) as number;
      expect(capacity).toBeGreaterThan(0);
      // All free but what tasks reserved for good at boot (the iSCSI transport's staging slots, 64 KiB buffers).
      expect(t.call("testPoolFree", c)).toBe(capacity - (t.call("testPoolReserved", c) as number));
      const address = t.call("testPoolAddress", c, 1) as number;
      expect(address % Math.min(sizes[c] as number, 4096)).toBe(0);
    }
    // A bigger processor gets more buffers.
    const big = testBoard({ ramMiB: [64] });
    expect(big.call("testPoolCapacity", 2) as number).toBeGreaterThan(t.call("testPoolCapacity", 2) as number);
  });

  it("answers POOL_NONE when empty, counts it, and hands slots out again after release", () => {
    const t = testBoard();
    const capacity = (t.call("testPoolCapacity", 2) as number) - (t.call("testPoolReserved", 2) as number); // what is left to take
    const held = Array.from({ length: capacity }, () => t.call("testPoolAcquire", 2) as number);
    expect(new Set(held).size).toBe(capacity);
    expect(held.every((i) => i < (t.call("testPoolCapacity", 2) as number))).toBe(true);
    expect(t.call("testPoolAcquire", 2)).toBe(POOL_NONE);
    expect(t.call("testPoolAcquireFailed", 2)).toBe(1);
    t.call("testPoolRelease", 2, held[5]);
    expect(t.call("testPoolAcquire", 2)).toBe(held[5]);
    expect(t.stops).toEqual([]);
  });

  it("puts a task that finds the pool empty to wait, without spinning, and wakes it on release", () => {
    const t = testBoard();
    const capacity = (t.call("testPoolCapacity", 2) as number) - (t.call("testPoolReserved", 2) as number); // what is left to take
    const held = Array.from({ length: capacity }, () => t.call("testPoolAcquire", 2) as number);
    t.call("testPost", 1, Op.Acquire, 2, 0, 0);
    t.call("testPost", 1, Op.Acquire, 2, 0, 0);
    t.board.runFor(10_000_000);
    const dispatches = t.call("testDispatchCount", 1);
    t.board.runFor(10_000_000);
    expect(t.call("testDispatchCount", 1)).toBe(dispatches); // waiting, not polling
    expect(t.call("testLogCount")).toBe(0);
    t.call("testPoolRelease", 2, held[3]);
    t.board.runFor(1_000_000);
    expect(t.call("testLogCount")).toBe(1);
    expect(t.call("testLogAt", 0)).toBe((1 << 16) | held[3]!);
    t.call("testPoolRelease", 2, held[4]);
    t.board.runFor(1_000_000);
    expect(t.call("testLogAt", 1)).toBe((1 << 16) | held[4]!);
  });

  it("panics on a double release, naming it", () => {
    const t = testBoard();
    const index = t.call("testPoolAcquire", 0);
    t.call("testPoolRelease", 0, index);
    t.call("testPoolRelease", 0, index);
    expect(t.stops[0]!.report?.message).toMatch(/^pool slot released twice/);
  });

  it("panics on a release out of range", () => {
    const t = testBoard();
    t.call("testPoolRelease", 1, 60000);
    expect(t.stops[0]!.report?.message).toMatch(/^pool release out of range/);
  });

  it("matches a model of held slots over random acquire/release sequences", () => {
    const t = testBoard();
    const capacity = (t.call("testPoolCapacity", 2) as number) - (t.call("testPoolReserved", 2) as number); // what is left to take
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat()), { maxLength: 300 }), (steps) => {
        const held: number[] = [];
        for (const [acquire, pick] of steps) {
          if (acquire) {
            const index = t.call("testPoolAcquire", 2) as number;
            if (held.length === capacity) expect(index).toBe(POOL_NONE);
            else {
              expect(held).not.toContain(index);
              held.push(index);
            }
          } else if (held.length > 0) {
            const [index] = held.splice(pick % held.length, 1);
            t.call("testPoolRelease", 2, index);
          }
          expect(t.call("testPoolFree", 2)).toBe(capacity - held.length);
        }
        t.call("testPoolCheck", 2);
        for (const index of held) t.call("testPoolRelease", 2, index);
        expect(t.stops).toEqual([]);
      }),
      { numRuns: 50, seed: 42 },
    );
  });
});
