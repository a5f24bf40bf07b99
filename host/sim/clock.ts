// The board's virtual clock and its discrete-event queue.
//
// Everything in the emulator that happens "later" is an event on this queue: a device finishing a transfer, a
// packet arriving, a firmware timer. Time is an integer count of nanoseconds that starts at 0 at power-on and
// moves only when the board runs an event or is told to advance, so a run replays exactly from its seed.
import type { Layer, LayerMeter } from "./layer_meter.ts";

/** What at() and after() return, for cancel(): the event itself, opaque to its holders. */
export type EventHandle = { readonly timeNs: number };

// Below this many heap entries cancelled ones are left to drain from the top; compacting would not pay.
const COMPACT_LENGTH_MIN = 64;

// One scheduled event. `fn` is cleared when the event is cancelled or has run, so a stale heap entry is skipped
// when it reaches the top instead of being searched for and removed (cancel stays O(1)).
interface ClockEvent {
  readonly timeNs: number;
  readonly sequence: number; // scheduling order, breaks ties between equal times
  fn: (() => void) | undefined;
  readonly outside: boolean; // the world around the board (a simulated client), not counted in boardRanCount
  readonly layer: Layer; // with a meter: the layer that scheduled it, charged for its host time (layer_meter.ts)
}

// True when `a` must run before `b`: earlier time first, then earlier scheduling.
function eventBefore(a: ClockEvent, b: ClockEvent): boolean {
  return a.timeNs < b.timeNs || (a.timeNs === b.timeNs && a.sequence < b.sequence);
}

export class VirtualClock {
  private currentNs = 0;
  private sequenceNext = 0;
  // A binary min-heap ordered by eventBefore; heap[0] is the earliest entry, live or cancelled.
  private readonly heap: ClockEvent[] = [];
  // Live events: not yet run, not cancelled (their `fn` is set).
  private liveCount = 0;
  private runningEvent = false; // inside runNext(): what gets scheduled now comes from the board itself
  private boardRan = 0;
  /**
   * Called when something outside the board's own events schedules one (a socket callback, a test): real-time
   * mode's pacer sets it so an input is handled at once instead of at its next timer.
   */
  onOutsideSchedule: (() => void) | undefined;
  /** Benchmarks only: each event's host time is charged to the layer that scheduled it. Never changes the order. */
  meter: LayerMeter | undefined;

  get nowNs(): number {
    return this.currentNs;
  }

  // Schedules `fn` at the absolute time `timeNs`, which may equal the current time but not precede it.
  // Events due at the same time run in the order they were scheduled.
  at(timeNs: number, fn: () => void): EventHandle {
    return this.schedule(timeNs, fn, false);
  }

  /**
   * As at(), for an event of the world around the board rather than of the board: a simulated client or fault
   * injector sharing the clock. It runs in the same order, but is not counted in boardRanCount, so a replay without
   * that world (tools/replay) finds the board's inputs at the same count (docs/replay.md, "Where an input enters").
   */
  atOutside(timeNs: number, fn: () => void): EventHandle {
    return this.schedule(timeNs, fn, true);
  }

  /** As after(), for an event of the world around the board (see atOutside). */
  afterOutside(delayNs: number, fn: () => void): EventHandle {
    if (!Number.isSafeInteger(delayNs) || delayNs < 0) {
      throw new RangeError(`VirtualClock.afterOutside: delay ${delayNs} ns is not a non-negative integer`);
    }
    return this.schedule(this.currentNs + delayNs, fn, true);
  }

  private schedule(timeNs: number, fn: () => void, outside: boolean): EventHandle {
    if (!Number.isSafeInteger(timeNs)) throw new RangeError(`VirtualClock.at: time ${timeNs} ns is not an integer`);
    if (timeNs < this.currentNs) {
      throw new RangeError(`VirtualClock.at: time ${timeNs} ns is before now (${this.currentNs} ns)`);
    }
    const event: ClockEvent = { timeNs, sequence: this.sequenceNext, fn, outside, layer: this.meter === undefined ? 0 : this.meter.current };
    this.sequenceNext += 1;
    this.liveCount += 1;
    this.heapPush(event);
    if (!this.runningEvent) this.onOutsideSchedule?.();
    return event;
  }

  // Schedules `fn` `delayNs` from now; a delay of 0 runs after every event already due now.
  after(delayNs: number, fn: () => void): EventHandle {
    if (!Number.isSafeInteger(delayNs) || delayNs < 0) {
      throw new RangeError(`VirtualClock.after: delay ${delayNs} ns is not a non-negative integer`);
    }
    return this.at(this.currentNs + delayNs, fn);
  }

  // Returns true if the event was still pending, false if it had already run or been cancelled.
  cancel(handle: EventHandle): boolean {
    const event = handle as ClockEvent;
    if (event.fn === undefined) return false;
    event.fn = undefined; // the heap entry is dropped lazily when it reaches the top
    this.liveCount -= 1;
    // A timer re-armed over and over leaves cancelled entries deep in the heap; rebuilding once they outnumber
    // the live ones keeps memory bounded by twice the pending count at an amortized O(1) per cancel.
    if (this.heap.length > COMPACT_LENGTH_MIN && this.liveCount * 2 < this.heap.length) this.compact();
    return true;
  }

  nextDeadlineNs(): number | undefined {
    this.dropCancelledTop();
    return this.heap.length > 0 ? this.heap[0]!.timeNs : undefined;
  }

  pendingCount(): number {
    return this.liveCount;
  }

  /** Events scheduled since power-on: a deterministic measure of how much work a stretch of board time did. */
  get scheduledCount(): number {
    return this.sequenceNext;
  }

  /** Board events run since power-on (events scheduled with atOutside() not counted): where an input entered. */
  get boardRanCount(): number {
    return this.boardRan;
  }

  /**
   * Moves the clock to `timeNs` without running anything; a replay uses it to stand where an input entered. Throws
   * when an event is due before `timeNs` (it would run late).
   */
  skipTo(timeNs: number): void {
    if (!Number.isSafeInteger(timeNs) || timeNs < this.currentNs) throw new RangeError(`VirtualClock.skipTo: ${timeNs} ns is before now (${this.currentNs} ns)`);
    const next = this.nextDeadlineNs();
    if (next !== undefined && next < timeNs) throw new RangeError(`VirtualClock.skipTo: an event is due at ${next} ns, before ${timeNs} ns`);
    this.currentNs = timeNs;
  }

  // Runs the earliest pending event after moving the clock to its time; false when nothing is pending.
  runNext(): boolean {
    this.dropCancelledTop();
    const event = this.heapPop();
    if (event === undefined) return false;
    const fn = event.fn!;
    // Retire the event before running it, so that it counts as done if it cancels its own handle or throws.
    event.fn = undefined;
    this.liveCount -= 1;
    if (!event.outside) this.boardRan += 1;
    this.currentNs = event.timeNs;
    const outer = this.runningEvent;
    this.runningEvent = true;
    const meter = this.meter;
    const outerLayer = meter === undefined ? 0 : meter.enter(event.layer);
    try {
      fn();
    } finally {
      this.runningEvent = outer;
      if (meter !== undefined) meter.leave(outerLayer);
    }
    return true;
  }

  // Runs every event due at or before `timeNs`, including those the events themselves schedule within the window,
  // then leaves the clock at `timeNs`.
  advanceTo(timeNs: number): void {
    if (!Number.isSafeInteger(timeNs)) throw new RangeError(`VirtualClock.advanceTo: ${timeNs} ns is not an integer`);
    if (timeNs < this.currentNs) {
      throw new RangeError(`VirtualClock.advanceTo: ${timeNs} ns is before now (${this.currentNs} ns)`);
    }
    // Each pass runs one event; the loop ends once the earliest pending event lies beyond `timeNs`.
    for (;;) {
      const deadlineNs = this.nextDeadlineNs();
      if (deadlineNs === undefined || deadlineNs > timeNs) break;
      this.runNext();
    }
    this.currentNs = timeNs;
  }

  /**
   * advanceTo in pieces, for a caller that must not hold its thread for the whole run: runs at most `maxEvents` of
   * the events due at or before `timeNs`. Returns true, with the clock at `timeNs`, once none is left; false, with
   * the clock at the last event run, otherwise. Calling it until it returns true runs exactly what one
   * advanceTo(timeNs) runs, in the same order.
   */
  advanceToAtMost(timeNs: number, maxEvents: number): boolean {
    if (!Number.isSafeInteger(timeNs)) throw new RangeError(`VirtualClock.advanceToAtMost: ${timeNs} ns is not an integer`);
    if (timeNs < this.currentNs) {
      throw new RangeError(`VirtualClock.advanceToAtMost: ${timeNs} ns is before now (${this.currentNs} ns)`);
    }
    for (let ran = 0; ran < maxEvents; ran++) {
      const deadlineNs = this.nextDeadlineNs();
      if (deadlineNs === undefined || deadlineNs > timeNs) break;
      this.runNext();
    }
    const deadlineNs = this.nextDeadlineNs();
    if (deadlineNs !== undefined && deadlineNs <= timeNs) return false;
    this.currentNs = timeNs;
    return true;
  }

  // Keeps only live entries and restores heap order bottom-up (Floyd's heapify), O(length).
  private compact(): void {
    const live = this.heap.filter((event) => event.fn !== undefined);
    this.heap.length = 0;
    for (const event of live) this.heap.push(event);
    for (let index = (live.length >> 1) - 1; index >= 0; index -= 1) this.siftDown(index);
  }

  // Pops cancelled entries off the top so heap[0], if any, is live.
  private dropCancelledTop(): void {
    while (this.heap.length > 0 && this.heap[0]!.fn === undefined) this.heapPop();
  }

  private heapPush(event: ClockEvent): void {
    const heap = this.heap;
    let index = heap.length;
    heap.push(event);
    // Sift up: the loop moves one level per pass and stops at the root.
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex]!;
      if (!eventBefore(event, parent)) break;
      heap[index] = parent;
      index = parentIndex;
    }
    heap[index] = event;
  }

  private heapPop(): ClockEvent | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    heap[0] = last;
    this.siftDown(0);
    return top;
  }

  // Moves the entry at `index` down until both children come after it: one level per pass, at most log2(length).
  private siftDown(index: number): void {
    const heap = this.heap;
    const count = heap.length;
    const event = heap[index]!;
    for (;;) {
      const leftIndex = 2 * index + 1;
      if (leftIndex >= count) break;
      const rightIndex = leftIndex + 1;
      let childIndex = leftIndex;
      if (rightIndex < count && eventBefore(heap[rightIndex]!, heap[leftIndex]!)) childIndex = rightIndex;
      const child = heap[childIndex]!;
      if (!eventBefore(child, event)) break;
      heap[index] = child;
      index = childIndex;
    }
    heap[index] = event;
  }
}
