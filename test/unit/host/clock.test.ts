// Proves the virtual clock runs events in (time, scheduling order), skips cancelled ones, runs events scheduled
// from inside an event after it, advances time only as told and refuses to go back. A fast-check property drives
// random schedule/cancel/run/advance programs against a naive sorted-array model and compares every outcome.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type EventHandle, VirtualClock } from "../../../host/sim/clock.ts";

describe("VirtualClock", () => {
  it("counts board events, not the world's (atOutside), which still run in time and scheduling order", () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    clock.at(10, () => seen.push("board"));
    clock.atOutside(10, () => seen.push("world"));
    clock.afterOutside(5, () => seen.push("world-early"));
    clock.at(20, () => seen.push("board-late"));
    while (clock.runNext());
    expect(seen).toEqual(["world-early", "board", "world", "board-late"]);
    expect(clock.boardRanCount).toBe(2);
  });

  it("skipTo moves time without running anything, and refuses to pass a due event or go back", () => {
    const clock = new VirtualClock();
    let ran = false;
    clock.at(100, () => (ran = true));
    clock.skipTo(100);
    expect(clock.nowNs).toBe(100);
    expect(ran).toBe(false);
    expect(() => clock.skipTo(101)).toThrow(/an event is due at 100 ns, before 101 ns/);
    expect(() => clock.skipTo(50)).toThrow(/before now/);
    clock.runNext();
    expect(ran).toBe(true);
  });

  it("advanceToAtMost, called until it returns true, runs what advanceTo runs, in order, at most n events a call", () => {
    // Each event schedules followers inside and beyond the window: the pieces must run exactly the same ones.
    const program = (clock: VirtualClock, seen: string[]) => {
      for (let i = 0; i < 10; i++) {
        clock.at(i * 7, function step() {
          seen.push(`${i}@${clock.nowNs}`);
          if (clock.nowNs < 90) clock.after(13, step);
        });
      }
    };
    const whole = new VirtualClock();
    const expected: string[] = [];
    program(whole, expected);
    whole.advanceTo(100);
    const pieces = new VirtualClock();
    const seen: string[] = [];
    program(pieces, seen);
    let calls = 0;
    for (;;) {
      const before = seen.length;
      const done = pieces.advanceToAtMost(100, 3);
      calls++;
      expect(seen.length - before).toBeLessThanOrEqual(3);
      if (done) break;
      expect(pieces.nowNs).toBeLessThan(100); // stopped early: the clock stands at the last event run
    }
    expect(seen).toEqual(expected);
    expect(calls).toBeGreaterThan(expected.length / 3);
    expect(pieces.nowNs).toBe(100);
    expect(pieces.nextDeadlineNs()).toBe(whole.nextDeadlineNs());
    expect(() => pieces.advanceToAtMost(50, 3)).toThrow(/before now/);
  });

  it("starts at 0 with nothing pending", () => {
    const clock = new VirtualClock();
    expect(clock.nowNs).toBe(0);
    expect(clock.pendingCount()).toBe(0);
    expect(clock.nextDeadlineNs()).toBeUndefined();
    expect(clock.runNext()).toBe(false);
  });

  it("runs events in time order and sets nowNs to each event's time", () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    clock.at(30, () => seen.push(`c@${clock.nowNs}`));
    clock.at(10, () => seen.push(`a@${clock.nowNs}`));
    clock.after(20, () => seen.push(`b@${clock.nowNs}`));
    expect(clock.nextDeadlineNs()).toBe(10);
    expect(clock.pendingCount()).toBe(3);
    while (clock.runNext());
    expect(seen).toEqual(["a@10", "b@20", "c@30"]);
    expect(clock.nowNs).toBe(30);
    expect(clock.pendingCount()).toBe(0);
  });

  it("runs events due at the same time in scheduling order", () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    for (let i = 0; i < 50; i += 1) clock.at(5, () => seen.push(i));
    while (clock.runNext());
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("skips cancelled events and reports whether the handle was pending", () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    const first = clock.at(1, () => seen.push("first"));
    const second = clock.at(2, () => seen.push("second"));
    clock.at(3, () => seen.push("third"));
    expect(clock.cancel(first)).toBe(true);
    expect(clock.cancel(first)).toBe(false);
    expect(clock.pendingCount()).toBe(2);
    expect(clock.nextDeadlineNs()).toBe(2);
    expect(clock.runNext()).toBe(true);
    expect(clock.cancel(second)).toBe(false); // already ran
    while (clock.runNext());
    expect(seen).toEqual(["second", "third"]);
  });

  it("runs an event scheduled at the current tick from inside an event after the current one and its peers", () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    clock.at(10, () => {
      seen.push("outer");
      clock.after(0, () => seen.push("inner"));
    });
    clock.at(10, () => seen.push("peer"));
    clock.advanceTo(10);
    expect(seen).toEqual(["outer", "peer", "inner"]);
  });

  it("lets an event cancel a later one", () => {
    const clock = new VirtualClock();
    const seen: string[] = [];
    let later: EventHandle | undefined;
    clock.at(1, () => clock.cancel(later!));
    later = clock.at(2, () => seen.push("later"));
    clock.advanceTo(100);
    expect(seen).toEqual([]);
  });

  it("advanceTo runs everything due up to and including the target, then stops there", () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    for (const timeNs of [5, 10, 15]) clock.at(timeNs, () => seen.push(clock.nowNs));
    // An event that schedules another inside the window: it must run within this advanceTo.
    clock.at(7, () => clock.after(2, () => seen.push(clock.nowNs)));
    clock.advanceTo(10);
    expect(seen).toEqual([5, 9, 10]);
    expect(clock.nowNs).toBe(10);
    expect(clock.pendingCount()).toBe(1);
    clock.advanceTo(12);
    expect(clock.nowNs).toBe(12);
    expect(seen).toEqual([5, 9, 10]);
    clock.advanceTo(12); // advancing to now is allowed and runs nothing new
    clock.advanceTo(20);
    expect(seen).toEqual([5, 9, 10, 15]);
    expect(clock.nowNs).toBe(20);
  });

  it("refuses times in the past and delays that are negative or fractional", () => {
    const clock = new VirtualClock();
    clock.advanceTo(100);
    expect(() => clock.at(99, () => {})).toThrow(RangeError);
    expect(() => clock.advanceTo(99)).toThrow(RangeError);
    expect(() => clock.after(-1, () => {})).toThrow(RangeError);
    expect(() => clock.after(1.5, () => {})).toThrow(RangeError);
    expect(() => clock.at(100.5, () => {})).toThrow(RangeError);
    expect(() => clock.at(Number.NaN, () => {})).toThrow(RangeError);
    expect(clock.pendingCount()).toBe(0);
    clock.at(100, () => {}); // now itself is fine
    expect(clock.pendingCount()).toBe(1);
  });

  it("keeps order through many cancellations (heap compaction)", () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    const handles: EventHandle[] = [];
    for (let i = 0; i < 1000; i += 1) handles.push(clock.at(1000 - i, () => seen.push(1000 - i)));
    for (let i = 0; i < 1000; i += 1) if (i % 10 !== 0) clock.cancel(handles[i]!);
    expect(clock.pendingCount()).toBe(100);
    while (clock.runNext());
    const expected = Array.from({ length: 100 }, (_, k) => 1000 - 10 * k).sort((a, b) => a - b);
    expect(seen).toEqual(expected);
  });

  // Each step of a program, as fast-check generates it. Times are kept small so ties are common.
  type Step =
    | { kind: "after"; delayNs: number; childDelayNs: number | null }
    | { kind: "cancel"; pick: number }
    | { kind: "runNext" }
    | { kind: "advance"; byNs: number };

  const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
    fc.record({
      kind: fc.constant("after" as const),
      delayNs: fc.integer({ min: 0, max: 8 }),
      childDelayNs: fc.option(fc.integer({ min: 0, max: 3 })),
    }),
    fc.record({ kind: fc.constant("cancel" as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant("runNext" as const) }),
    fc.record({ kind: fc.constant("advance" as const), byNs: fc.integer({ min: 0, max: 6 }) }),
  );

  // The model: an array kept sorted by (time, id) with a linear scan; ids double as handles.
  interface ModelEvent {
    timeNs: number;
    id: number;
    childDelayNs: number | null;
  }

  it("matches a sorted-array model on random programs", () => {
    fc.assert(
      fc.property(fc.array(stepArbitrary, { maxLength: 80 }), (steps) => {
        const clock = new VirtualClock();
        const clockLog: string[] = [];
        const model: ModelEvent[] = [];
        const modelLog: string[] = [];
        let modelNowNs = 0;
        let modelIdNext = 0;
        const issued: Array<{ handle: EventHandle; id: number }> = [];

        // Schedules the same event on both sides; an event with a child schedules it when it runs.
        function modelSchedule(timeNs: number, childDelayNs: number | null): number {
          const id = modelIdNext;
          modelIdNext += 1;
          model.push({ timeNs, id, childDelayNs });
          model.sort((a, b) => a.timeNs - b.timeNs || a.id - b.id);
          return id;
        }
        function modelRunNext(): boolean {
          const event = model.shift();
          if (event === undefined) return false;
          modelNowNs = event.timeNs;
          modelLog.push(`${event.id}@${event.timeNs}`);
          if (event.childDelayNs !== null) modelSchedule(modelNowNs + event.childDelayNs, null);
          return true;
        }
        let clockIdNext = 0;
        function clockSchedule(delayNs: number, childDelayNs: number | null): EventHandle {
          const id = clockIdNext;
          clockIdNext += 1;
          return clock.after(delayNs, () => {
            clockLog.push(`${id}@${clock.nowNs}`);
            if (childDelayNs !== null) clockSchedule(childDelayNs, null);
          });
        }

        for (const step of steps) {
          switch (step.kind) {
            case "after": {
              const handle = clockSchedule(step.delayNs, step.childDelayNs);
              const id = modelSchedule(modelNowNs + step.delayNs, step.childDelayNs);
              issued.push({ handle, id });
              break;
            }
            case "cancel": {
              if (issued.length === 0) break;
              const { handle, id } = issued[step.pick % issued.length]!;
              const index = model.findIndex((event) => event.id === id);
              if (index >= 0) model.splice(index, 1);
              expect(clock.cancel(handle)).toBe(index >= 0);
              break;
            }
            case "runNext":
              expect(clock.runNext()).toBe(modelRunNext());
              break;
            case "advance": {
              const targetNs = modelNowNs + step.byNs;
              clock.advanceTo(targetNs);
              while (model.length > 0 && model[0]!.timeNs <= targetNs) modelRunNext();
              modelNowNs = targetNs;
              break;
            }
          }
          expect(clock.nowNs).toBe(modelNowNs);
          expect(clock.pendingCount()).toBe(model.length);
          expect(clock.nextDeadlineNs()).toBe(model[0]?.timeNs);
          expect(clockLog).toEqual(modelLog);
        }
      }),
      { numRuns: 300, seed: 20240601 },
    );
  });
});
