// Proves the real-time pacer holds board time to wall time with a bounded lead: events due within LEAD_NS_MAX of
// wall time run at once (and the pacer comes back through `soon`, not a timer), later ones wait for a sleep, an
// input scheduled from outside cuts a sleep short, and stop() detaches it. A hand-driven WallClock stands in for
// the host's, so no test waits on real time.
import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../../host/sim/clock.ts";
import { LEAD_NS_MAX, RealTimePacer, type WallClock } from "../../../host/sim/realtime.ts";

class HandWall implements WallClock {
  nowMsValue = 0;
  sleeps: { fn: () => void; delayMs: number; cancelled: boolean }[] = [];
  soons: { fn: () => void; cancelled: boolean }[] = [];
  nowMs(): number {
    return this.nowMsValue;
  }
  setTimer(fn: () => void, delayMs: number): { cancel(): void } {
    const entry = { fn, delayMs, cancelled: false };
    this.sleeps.push(entry);
    return { cancel: () => (entry.cancelled = true) };
  }
  soon(fn: () => void): { cancel(): void } {
    const entry = { fn, cancelled: false };
    this.soons.push(entry);
    return { cancel: () => (entry.cancelled = true) };
  }
  live<T extends { cancelled: boolean }>(list: T[]): T[] {
    return list.filter((entry) => !entry.cancelled);
  }
}

describe("RealTimePacer", () => {
  it("runs an event due within the lead at once, ahead of wall time, and comes back through soon()", () => {
    const clock = new VirtualClock();
    const wall = new HandWall();
    const ran: number[] = [];
    clock.at(LEAD_NS_MAX / 2, () => ran.push(clock.nowNs));
    clock.at(LEAD_NS_MAX / 2 + 10, () => clock.after(100, () => ran.push(clock.nowNs))); // due within the lead too
    const pacer = new RealTimePacer(clock, wall);
    pacer.start();
    expect(ran).toEqual([LEAD_NS_MAX / 2, LEAD_NS_MAX / 2 + 110]);
    expect(clock.nowNs).toBe(LEAD_NS_MAX / 2 + 110); // board time leads wall time (still 0)
    pacer.stop();
  });

  it("does not run an event beyond the lead until wall time comes within the lead of it", () => {
    const clock = new VirtualClock();
    const wall = new HandWall();
    const ran: number[] = [];
    const dueNs = 10_000_000; // 10 ms
    clock.at(dueNs, () => ran.push(clock.nowNs));
    const pacer = new RealTimePacer(clock, wall);
    pacer.start();
    expect(ran).toEqual([]);
    const sleep = wall.live(wall.sleeps)[0]!;
    expect(sleep.delayMs).toBe((dueNs - LEAD_NS_MAX) / 1e6);
    wall.nowMsValue = 8.5; // 1.5 ms short of the event: still beyond the lead
    sleep.fn();
    expect(ran).toEqual([]);
    expect(clock.nowNs).toBe(8_500_000);
    wall.nowMsValue = 9.2; // within the lead
    wall.live(wall.sleeps).at(-1)!.fn();
    expect(ran).toEqual([dueNs]);
    pacer.stop();
  });

  it("wakes from a sleep when something outside schedules an event, but not for the board's own events", () => {
    const clock = new VirtualClock();
    const wall = new HandWall();
    const pacer = new RealTimePacer(clock, wall);
    pacer.start(); // nothing pending: a sleep of SLEEP_MS_MAX
    expect(wall.live(wall.sleeps)).toHaveLength(1);
    expect(wall.live(wall.soons)).toHaveLength(0);
    let ran = false;
    clock.at(clock.nowNs, () => (ran = true)); // as a socket callback does
    expect(wall.live(wall.sleeps)).toHaveLength(0); // the sleep was cancelled
    expect(wall.live(wall.soons)).toHaveLength(1);
    wall.live(wall.soons)[0]!.fn();
    expect(ran).toBe(true);
    pacer.stop();
    expect(clock.onOutsideSchedule).toBeUndefined();
  });

  it("tells the clock's listener only of events scheduled outside a running event", () => {
    const clock = new VirtualClock();
    let outside = 0;
    clock.onOutsideSchedule = () => (outside += 1);
    clock.at(10, () => clock.after(5, () => undefined)); // the inner one is the board's own
    expect(outside).toBe(1);
    clock.advanceTo(100);
    expect(outside).toBe(1);
  });
});
