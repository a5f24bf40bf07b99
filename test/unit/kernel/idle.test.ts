// An idle board sleeps: between requests, the only wake-ups are the health check's (once a second per processor),
// not a driver's tick every 100 ms or the UMA's poll every 1 ms. Each wake-up is a run() call the board pays for
// (and the fuzzer pays for in every input that waits out a timeout). While a storage processor stays silent, the
// UMA still resends StartAgent and still reports the processor missing at the discovery deadline.
import { describe, expect, it } from "vitest";
import { testBoard } from "../../support/board.ts";

const MS = 1_000_000;

function runCalls(t: ReturnType<typeof testBoard>): number {
  return t.board.firmwareCallStats().runCount;
}

describe("idle wake-ups", () => {
  it("an idle host and storage processor, each with a disk, wake about once a second each", () => {
    const t = testBoard({ image: "release", ramMiB: [16, 8], disksMiB: [[4], [4]] });
    t.board.runFor(3_000 * MS); // discovery, the volumes advertised
    expect(t.console.some((l) => l.startsWith("host 1: inventory done processors=2 disks=2"))).toBe(true);
    const before = runCalls(t);
    t.board.runFor(10_000 * MS);
    const calls = runCalls(t) - before;
    expect(calls).toBeGreaterThanOrEqual(20); // the health checks: 10 s on two processors
    expect(calls).toBeLessThan(40); // a 100 ms driver tick alone would be 200
    expect(t.stops).toEqual([]);
  });

  it("a storage processor that never answers: StartAgent resent every 50 ms, missing at 2 s, no 1 ms polling", () => {
    const t = testBoard({ image: "release", ramMiB: [16, 8], disksMiB: [[4], []] });
    t.board.processors[1]!.halt(); // booted (its messaging unit says ready), then silent
    const before = runCalls(t);
    t.board.runFor(1_900 * MS);
    expect(t.console.some((l) => l.includes("uma: processor 1 did not answer"))).toBe(false);
    t.board.runFor(200 * MS);
    expect(t.console).toContain("host 2: uma: processor 1 did not answer; continuing without it");
    const calls = runCalls(t) - before;
    expect(calls).toBeGreaterThanOrEqual(40); // a StartAgent every 50 ms: the UMA kept trying
    expect(calls).toBeLessThan(300); // ... and the host's own work; a 1 ms poll alone would be 2,000
  });
});
