// Proves the real-time pacer holds board time to wall time with a bounded lead: events due within LEAD_NS_MAX of
// wall time run at once (and the pacer comes back through `soon`, not a timer), later ones wait for a sleep, an
// input scheduled from outside runs a tick right after its callback (`next`) without re-arming the sleep, a sleep
// that would come too late is replaced, and stop() detaches it. A hand-driven WallClock stands in for
// the host's, so no test waits on real time.
import { describe, expect, it } from "vitest";
import { VirtualClock } from "../../../host/sim/clock.ts";
import { LEAD_NS_MAX, RealTimePacer, type WallClock } from "../../../host/sim/realtime.ts";

class HandWall implements WallClock {
  nowMsValue = 0;
  sleeps: { fn: () => void; delayMs: number; cancelled: boolean }[] = [];
  soons: { fn: () => void; cancelled: boolean }[] = [];
  nexts: { fn: () => void; cancelled: boolean }[] = [];
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
  next(fn: () => void): { cancel(): void } {
    const entry = { fn, cancelled: false };
    this.nexts.push(entry);
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

  it("runs a tick right after an outside input (next), keeps the sleep armed, and does not wake for the board's own events", () => {
    const clock = new VirtualClock();
    const wall = new HandWall();
    const pacer = new RealTimePacer(clock, wall);
    pacer.start(); // nothing pending: a sleep of SLEEP_MS_MAX
    expect(wall.live(wall.sleeps)).toHaveLength(1);
    expect(wall.live(wall.soons)).toHaveLength(0);
    let ran = 0;
    clock.at(clock.nowNs, () => (ran += 1)); // as a socket callback does
    clock.at(clock.nowNs, () => (ran += 1)); // a second input before the tick: the same tick takes it
    expect(wall.live(wall.nexts)).toHaveLength(1);
    expect(wall.live(wall.soons)).toHaveLength(0);
    wall.live(wall.nexts)[0]!.fn();
    expect(ran).toBe(2);
    // The sleep armed at start still comes in time: no timer cancelled, none armed, per input.
    expect(wall.sleeps).toHaveLength(1);
    expect(wall.live(wall.sleeps)).toHaveLength(1);
    // An event of the board's own, scheduled by a running event, needs no wake-up from outside.
    clock.at(clock.nowNs + 10, () => clock.after(5, () => (ran += 1)));
    expect(wall.nexts).toHaveLength(2); // one more for this event
    wall.nexts.at(-1)!.fn();
    expect(ran).toBe(3);
    expect(wall.nexts).toHaveLength(2); // none for the inner one
    pacer.stop();
    expect(clock.onOutsideSchedule).toBeUndefined();
    expect(wall.live(wall.sleeps)).toHaveLength(0);
  });

  it("replaces an armed sleep that would come too late for an event scheduled since", () => {
    const clock = new VirtualClock();
    const wall = new HandWall();
    const pacer = new RealTimePacer(clock, wall);
    pacer.start(); // a sleep of SLEEP_MS_MAX
    const ran: number[] = [];
    clock.at(5_000_000, () => ran.push(clock.nowNs)); // 5 ms: beyond the lead, before the sleep's end
    wall.live(wall.nexts)[0]!.fn();
    const live = wall.live(wall.sleeps);
    expect(live).toHaveLength(1);
    expect(live[0]!.delayMs).toBe((5_000_000 - LEAD_NS_MAX) / 1e6);
    wall.nowMsValue = 4;
    live[0]!.fn();
    expect(ran).toEqual([5_000_000]);
    pacer.stop();
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
