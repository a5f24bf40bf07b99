// Scatter-gather lists: fixed blocks of 8 segments chained for longer lists. A property test appends random
// segments and compares count, total, block count and every segment with the list it meant to build; exhaustion
// of blocks answers false and leaves the list as it was; release returns every block.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { testBoard } from "../../support/board.ts";

const SEGMENTS_PER_BLOCK = 8;

describe("scatter-gather lists", () => {
  it("match the segments appended, chaining a block per 8 segments", () => {
    const t = testBoard();
    const blocksFree = t.call("testSglBlocksFree") as number;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: 1, max: 0xffff_ffff })), { minLength: 0, maxLength: 40 }),
        (segments) => {
          const sgl = t.call("testSglCreate") as number;
          for (const [address, length] of segments) expect(t.call("testSglAppend", sgl, BigInt.asIntN(64, address), length)).toBe(1);
          t.call("testSglCheck", sgl);
          expect(t.call("testSglSegmentCount", sgl)).toBe(segments.length);
          expect(t.call("testSglBlockCount", sgl)).toBe(Math.max(1, Math.ceil(segments.length / SEGMENTS_PER_BLOCK)));
          expect(BigInt.asUintN(64, t.call("testSglTotalBytes", sgl) as bigint)).toBe(segments.reduce((sum, [, l]) => sum + BigInt(l), 0n));
          segments.forEach(([address, length], i) => {
            expect(BigInt.asUintN(64, t.call("testSglSegmentAddress", sgl, i) as bigint)).toBe(address);
            expect(t.call("testSglSegmentLength", sgl, i)).toBe(length);
          });
          t.call("testSglRelease", sgl);
          expect(t.call("testSglBlocksFree")).toBe(blocksFree);
          expect(t.stops).toEqual([]);
        },
      ),
      { numRuns: 100, seed: 7 },
    );
  });

  it("answers false when no block is free for the next segment, and leaves the list unchanged", () => {
    const t = testBoard();
    const capacity = t.call("testSglBlocksCapacity") as number;
    const sgl = t.call("testSglCreate") as number;
    let appended = 0;
    while (t.call("testSglAppend", sgl, BigInt(appended * 512), 512) === 1) appended += 1;
    expect(appended).toBe(capacity * SEGMENTS_PER_BLOCK);
    expect(t.call("testSglSegmentCount", sgl)).toBe(appended);
    expect(t.call("testSglCreate")).toBe(0xffff); // and no room for another list
    t.call("testSglCheck", sgl);
    t.call("testSglRelease", sgl);
    expect(t.call("testSglBlocksFree")).toBe(capacity);
    expect(t.stops).toEqual([]);
  });

  it("rejects an empty segment as a programmer error", () => {
    const t = testBoard();
    const sgl = t.call("testSglCreate");
    t.call("testSglAppend", sgl, 0n, 0);
    expect(t.stops[0]!.report?.message).toMatch(/^SGL segments are not empty/);
  });
});
