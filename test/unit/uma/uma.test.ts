// The UMA's discovery of the storage processors, proved on a two-processor test board: StartAgent is resent to a
// processor that does not answer, a processor silent to the end is reported missing at the discovery deadline, and
// while it only waits for answers (no messaging unit left to poll) the host processor is not woken every poll period.
import { describe, expect, it } from "vitest";
import { testBoard } from "../../support/board.ts";

const MS = 1_000_000;
const MISSING = "host 2: uma: processor 1 did not answer; continuing without it";

function done(t: ReturnType<typeof testBoard>): boolean {
  return t.console.some((l) => l.includes("inventory done"));
}

describe("UMA discovery", () => {
  it("resends StartAgent every 50 ms to a processor whose posts are lost, and takes its profile when one arrives", () => {
    const t = testBoard({ ramMiB: [16, 16] });
    for (let i = 0; i < 3; i++) t.board.bridges[0]!.inject({ kind: "drop-next-inbound-post" });
    let readyNs = -1;
    for (let ns = 0; ns < 1_000 * MS && readyNs < 0; ns += MS) {
      t.board.runFor(MS);
      if (done(t)) readyNs = t.board.clock.nowNs;
    }
    // Three StartAgents lost, the fourth answered: not before the third resend, 150 ms after the first.
    expect(readyNs).toBeGreaterThanOrEqual(150 * MS);
    expect(readyNs).toBeLessThan(200 * MS);
    expect(t.console).toContain("host 1: inventory done processors=2 disks=0 volumes=0");
    expect(t.console).not.toContain(MISSING);
    expect(t.stops).toEqual([]);
  });

  it("reports a processor that never answers missing at the 2 s deadline, waking for the resends only", () => {
    const t = testBoard({ ramMiB: [16, 16] });
    for (let i = 0; i < 1_000; i++) t.board.bridges[0]!.inject({ kind: "drop-next-inbound-post" });
    const host = t.board.processors[0]!;
    t.board.runFor(100 * MS); // its unit is ready: StartAgent sent, lost, resent
    const runsBefore = host.runCount;
    t.board.runFor(1_899 * MS);
    expect(t.console).not.toContain(MISSING);
    // About 38 resends in 1.9 s and the odd other timer: not a wake-up every 1 ms poll period.
    expect(host.runCount - runsBefore).toBeLessThan(200);
    t.board.runFor(3 * MS);
    expect(t.console).toContain(MISSING);
    expect(t.console).toContain("host 1: inventory done processors=2 disks=0 volumes=0");
    expect(t.stops).toEqual([]);
  });

  it("polls a processor whose messaging unit never becomes ready until the deadline, then reports it missing", () => {
    const t = testBoard({ ramMiB: [16, 16] });
    t.board.processors[1]!.halt(); // its firmware never marks the unit ready
    t.board.runFor(1_999 * MS);
    expect(t.console).not.toContain(MISSING);
    t.board.runFor(3 * MS);
    expect(t.console).toContain(MISSING);
    expect(t.stops.filter((s) => s.processor === "host")).toEqual([]);
  });
});
