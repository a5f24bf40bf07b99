// No allocation after boot: 100 000 message-and-buffer cycles (a probe takes a buffer, puts an SGL over it, posts
// both to another probe, which checks and releases them) leave the heap top where boot left it and every pool full.
import { describe, expect, it } from "vitest";
import { testBoard } from "../../support/board.ts";

const Op = { Cycle: 21 } as const;
const CYCLES = 100_000;

describe("static memory", () => {
  it(`runs ${CYCLES} message and buffer cycles without moving the heap`, () => {
    const t = testBoard();
    const heapAtBoot = t.host.heapTopAtBoot;
    expect(heapAtBoot).toBeGreaterThan(0);
    const inbox = t.call("testInboxCapacity", 0) as number;
    let sent = 0;
    while (sent < CYCLES) {
      // Fill probe 0's inbox; it sends each result on to probe 1 (whose inbox is as deep), then let them drain.
      for (let i = 0; i < inbox && sent < CYCLES; i++, sent++) expect(t.call("testPost", 0, Op.Cycle, sent % 3, 1, sent)).toBe(1);
      t.board.runFor(200_000);
    }
    t.board.runFor(10_000_000);
    expect(t.stops).toEqual([]);
    expect(t.call("testCyclesDone")).toBe(CYCLES);
    expect(t.host.heapTop()).toBe(heapAtBoot);
    expect(t.call("testBuffersAllFree")).toBe(1);
    for (const c of [0, 1, 2]) t.call("testPoolCheck", c);
    // The health task's own periodic check (heap unmoved, pools consistent) ran and passed along the way.
    expect(t.call("testHealthChecks") as number).toBeGreaterThan(0);
  });
});
