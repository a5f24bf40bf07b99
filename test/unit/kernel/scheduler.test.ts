// The kernel's scheduler, timers, interrupts, watchdog and panics, proved on the test build of the firmware
// driven through the board: probes log what they handle, and the tests read the log and the console.
import { describe, expect, it } from "vitest";
import { testBoard } from "../../support/board.ts";

// Probe ops (test/firmware/harness.ts): MsgKind.User = 16.
const Op = { Log: 16, Spin: 17, Forward: 18, Acquire: 19, Panic: 20, Cycle: 21, CycleDone: 22 } as const;
const Kind = { Timer: 1, Irq: 2 } as const;
const PRIORITY = [3, 1, 2, 5]; // probe i's priority; 0 is highest
const VECTOR_BASE = 56; // probe i takes vector VECTOR_BASE + i

function logOf(t: ReturnType<typeof testBoard>): number[] {
  const count = t.call("testLogCount") as number;
  return Array.from({ length: Math.min(count, 4096) }, (_, i) => t.call("testLogAt", i) as number);
}

describe("scheduler", () => {
  it("dispatches the highest-priority ready task first, whatever the order messages arrived in", () => {
    const t = testBoard();
    for (const probe of [3, 0, 2, 1]) expect(t.call("testPost", probe, Op.Log, 0x10 + probe, 0, 0)).toBe(1);
    t.board.runFor(1_000_000);
    const order = logOf(t).map((entry) => entry >>> 16);
    const byPriority = [0, 1, 2, 3].sort((a, b) => PRIORITY[a]! - PRIORITY[b]!);
    expect(order).toEqual(byPriority);
  });

  it("keeps each task's messages in arrival order", () => {
    const t = testBoard();
    for (let i = 0; i < 8; i++) t.call("testPost", 2, Op.Log, i, 0, 0);
    t.board.runFor(1_000_000);
    expect(logOf(t).map((e) => e & 0xffff)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("answers run() with busy, idle or the next timer deadline", () => {
    const t = testBoard();
    t.board.runFor(100_000_000); // past discovery: only the health task's periodic timer remains
    const now = BigInt(t.board.clock.nowNs);
    const deadline = t.call("run", 1_000_000n) as bigint;
    expect(deadline).toBeGreaterThan(now + 10_000_000n); // the RTA's and CTA's sweep timers are parked on an idle board
    expect(deadline).toBeLessThanOrEqual(now + 1_000_000_000n); // the health task's period
    // A one-shot timer sooner than every periodic one is the answer.
    t.call("testTimerStart", 0, 100_000n, 0n, 1);
    expect(t.call("run", 1_000_000n) as bigint).toBeLessThanOrEqual(BigInt(t.board.clock.nowNs) + 300_000n);
    // With more queued than one tiny budget can dispatch, it answers busy (0).
    for (let i = 0; i < 8; i++) t.call("testPost", 3, Op.Log, i, 0, 0);
    expect(t.call("run", 1n)).toBe(0n);
  });

  it("delivers messages a task forwards to another task", () => {
    const t = testBoard();
    t.call("testPost", 0, Op.Forward, 0x55, 3, 0);
    t.board.runFor(1_000_000);
    expect(logOf(t)).toEqual([(3 << 16) | 0x55]);
  });
});

describe("queues", () => {
  it("refuses a message when an inbox is full, and counts the refusal", () => {
    const t = testBoard();
    const capacity = t.call("testInboxCapacity", 1) as number;
    for (let i = 0; i < capacity; i++) expect(t.call("testPost", 1, Op.Log, i, 0, 0)).toBe(1);
    expect(t.call("testPost", 1, Op.Log, 99, 0, 0)).toBe(0);
    expect(t.call("testInboxPushFailed", 1)).toBe(1);
    t.board.runFor(1_000_000);
    expect(logOf(t).map((e) => e & 0xffff)).toEqual(Array.from({ length: capacity }, (_, i) => i));
  });

  it("wraps around: many more messages than its capacity pass through in order", () => {
    const t = testBoard();
    const sent: number[] = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 5; i++) {
        const value = round * 5 + i;
        expect(t.call("testPost", 2, Op.Log, value, 0, 0)).toBe(1);
        sent.push(value);
      }
      t.board.runFor(100_000);
    }
    expect(logOf(t).map((e) => e & 0xffff)).toEqual(sent);
  });
});

describe("timers", () => {
  it("fires a one-shot timer once, at its deadline", () => {
    const t = testBoard();
    const id = t.call("testTimerStart", 1, 5_000_000n, 0n, 7) as number;
    t.board.runFor(4_900_000);
    expect(logOf(t)).toEqual([]);
    t.board.runFor(50_000_000);
    expect(logOf(t)).toEqual([(1 << 16) | 0xf000 | 7]);
    expect(t.call("testTimerCancel", id)).toBe(0); // already fired
  });

  it("fires a periodic timer every period until cancelled", () => {
    const t = testBoard();
    const id = t.call("testTimerStart", 2, 10_000_000n, 10_000_000n, 3) as number;
    t.board.runFor(55_000_000);
    expect(logOf(t).length).toBe(5);
    expect(t.call("testTimerCancel", id)).toBe(1);
    t.board.runFor(100_000_000);
    expect(logOf(t).length).toBe(5);
  });

  it("fires a parked timer only when woken, at the earliest time asked, then parks it again", () => {
    const t = testBoard();
    const id = t.call("testTimerStartParked", 3, 9) as number;
    t.board.runFor(50_000_000);
    expect(logOf(t)).toEqual([]); // parked: never due
    const now = BigInt(t.board.clock.nowNs);
    t.call("testTimerWakeBy", id, now + 20_000_000n);
    t.call("testTimerWakeBy", id, now + 5_000_000n); // earlier: taken
    t.call("testTimerWakeBy", id, now + 30_000_000n); // later: ignored
    t.board.runFor(4_900_000);
    expect(logOf(t)).toEqual([]);
    t.board.runFor(200_000);
    expect(logOf(t)).toEqual([(3 << 16) | 0xf000 | 9]);
    t.board.runFor(100_000_000);
    expect(logOf(t).length).toBe(1); // parked again, still armed
    expect(t.call("testTimerCancel", id)).toBe(1);
  });

  // The table keeps a lower bound of its deadlines so that "nothing due" costs no scan; a cancelled or fired timer
  // leaves the bound loose. run() must still answer the true next deadline, and a timer armed or woken sooner than
  // the bound must still fire on time.
  it("answers the true next deadline once the earliest timer is cancelled or has fired", () => {
    const t = testBoard();
    t.board.runFor(100_000_000); // past discovery: an idle board
    const start = BigInt(t.board.clock.nowNs);
    const soon = t.call("testTimerStart", 1, 5_000_000n, 0n, 1) as number;
    t.call("testTimerStart", 1, 20_000_000n, 0n, 2);
    const first = t.call("run", 1_000_000n) as bigint;
    expect(first).toBeGreaterThanOrEqual(start + 5_000_000n);
    expect(first).toBeLessThan(start + 5_100_000n);
    expect(t.call("testTimerCancel", soon)).toBe(1);
    const second = t.call("run", 1_000_000n) as bigint;
    expect(second).toBeGreaterThanOrEqual(start + 20_000_000n); // not the cancelled timer's deadline
    expect(second).toBeLessThan(start + 20_100_000n);
    t.board.runFor(20_100_000);
    expect(logOf(t)).toEqual([(1 << 16) | 0xf000 | 2]);
    const third = t.call("run", 1_000_000n) as bigint;
    expect(third).toBeGreaterThan(start + 30_000_000n); // the fired one-shot is gone from the answer too
    // A parked timer woken sooner than everything armed fires at its time, bound or no bound.
    const parked = t.call("testTimerStartParked", 2, 4) as number;
    const now = BigInt(t.board.clock.nowNs);
    t.call("testTimerWakeBy", parked, now + 1_000_000n);
    expect(t.call("run", 1_000_000n) as bigint).toBeLessThan(now + 1_100_000n);
    t.board.runFor(1_100_000);
    expect(logOf(t)).toEqual([(1 << 16) | 0xf000 | 2, (2 << 16) | 0xf000 | 4]);
  });

  it("answers no timer id when the table is full", () => {
    const t = testBoard();
    const armed = t.call("testTimersArmed") as number; // the health task's
    const ids: number[] = [];
    for (let i = armed; i < 32; i++) ids.push(t.call("testTimerStart", 0, 1_000_000_000n, 0n, i) as number);
    expect(new Set(ids).size).toBe(32 - armed);
    expect(t.call("testTimerStart", 0, 1n, 0n, 0)).toBe(0xffff_ffff);
  });
});

describe("interrupts", () => {
  it("delivers a routed vector to its task as a message in the next run", () => {
    const t = testBoard();
    t.host.raiseIrq(VECTOR_BASE + 2);
    t.host.raiseIrq(VECTOR_BASE + 0);
    t.board.runFor(1_000_000);
    // Both latched before the run; delivered in vector order, dispatched in priority order (probe 2 before 0).
    expect(logOf(t)).toEqual([(2 << 16) | 0xe000 | (VECTOR_BASE + 2), (0 << 16) | 0xe000 | VECTOR_BASE]);
  });

  it("counts an unrouted vector as spurious and delivers nothing", () => {
    const t = testBoard();
    t.host.raiseIrq(50);
    t.board.runFor(1_000_000);
    expect(logOf(t)).toEqual([]);
    expect(t.call("testIrqSpurious")).toBe(1);
  });

  it("keeps a vector latched while its task's inbox is full, then delivers it", () => {
    const t = testBoard();
    const capacity = t.call("testInboxCapacity", 3) as number;
    for (let i = 0; i < capacity; i++) t.call("testPost", 3, Op.Log, i, 0, 0);
    t.host.raiseIrq(VECTOR_BASE + 3);
    t.board.runFor(1_000_000);
    const log = logOf(t);
    expect(log.length).toBe(capacity + 1);
    expect(log.at(-1)).toBe((3 << 16) | 0xe000 | (VECTOR_BASE + 3));
  });
});

describe("watchdog", () => {
  it("reports a task that overruns its budget, and the processor keeps running", () => {
    const t = testBoard();
    t.call("testPost", 1, Op.Spin, 300_000, 0, 0); // 300 us against a 100 us budget
    t.board.runFor(10_000_000);
    expect(t.call("testOverrunCount", 1)).toBe(1);
    expect(t.console.some((l) => /watchdog: task probe1 ran \d+ ns, budget 100000 ns \(overrun 1\)/.test(l))).toBe(true);
    t.call("testPost", 1, Op.Log, 1, 0, 0);
    t.board.runFor(1_000_000);
    expect(logOf(t).at(-1)).toBe((1 << 16) | 1);
  });

  it("stops the processor with a watchdog panic when a task holds it past the fatal limit", () => {
    const t = testBoard();
    t.call("testPost", 2, Op.Spin, 150_000_000, 0, 0); // 150 ms: past the kernel's 100 ms limit
    t.board.runFor(1_000_000_000);
    expect(t.stops).toHaveLength(1);
    expect(t.stops[0]!.report).toMatchObject({ processor: "host", kind: "panic", code: 3, task: "probe2", message: "watchdog: task did not yield" });
  });

  it("is backed by the board's own watchdog when a run() call never returns in time", () => {
    const t = testBoard({ costs: { hardWatchdogNs: 50_000_000 } });
    t.call("testPost", 0, Op.Spin, 80_000_000, 0, 0);
    t.board.runFor(1_000_000_000);
    expect(t.stops[0]!.report).toMatchObject({ kind: "watchdog", code: 3, task: "#0" });
  });
});

describe("panic", () => {
  it("reports processor, task, code and message, and stops only that processor", () => {
    const t = testBoard({ ramMiB: [16, 8] });
    t.call("testPost", 3, Op.Panic, 0, 0, 0);
    t.board.runFor(1_000_000);
    expect(t.stops).toHaveLength(1);
    const report = t.stops[0]!.report!;
    expect(report).toMatchObject({ processor: "host", kind: "panic", code: 1, task: "probe3" });
    expect(report.message).toMatch(/^probe asked to panic \(test\/firmware\/harness\.ts:\d+\)$/);
    expect(t.console).toContain(`host 2: PANIC task=probe3 code=1: ${report.message}`);
    expect(t.board.processor("host").state).toBe("stopped");
    const storage = t.board.processor("sp1");
    expect(storage.state).toBe("running");
    storage.invoke("testPost", 0, Op.Log, 9, 0, 0);
    t.board.runFor(1_000_000);
    expect(storage.invoke("testLogCount")).toBe(1);
  });

  it("names the file and field when boot() is given a bad boot-info block", () => {
    const t = testBoard();
    // The board wrote a good block; boot() again at an address with no block returns BadBootInfo (2).
    expect(t.call("boot", 4096)).toBe(2);
    expect(t.console.some((l) => l.includes("boot: bad boot-info block at 0x00001000"))).toBe(true);
  });
});
