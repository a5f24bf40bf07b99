// One-shot and periodic timers on the board clock: a fixed table, scanned in id order so expiry is deterministic.
// The scheduler turns a due timer into a Timer message for its task; a full inbox leaves the timer due (retried).
import { TIMERS_MAX } from "../config";

export const TIMER_NONE: u32 = 0xffff_ffff;
export const DEADLINE_NONE: u64 = 0xffff_ffff_ffff_ffff;
/** The period of a parked timer: armed with no deadline until wakeBy gives it one; once fired, parked again. */
export const PERIOD_PARKED: u64 = DEADLINE_NONE;

export enum TimerState {
  Free = 0, // in no one's hands
  Armed = 1, // waiting for its deadline
}

export class TimerTable {
  private readonly state: StaticArray<u32> = new StaticArray<u32>(TIMERS_MAX);
  private readonly deadlineNs: StaticArray<u64> = new StaticArray<u64>(TIMERS_MAX);
  private readonly periodNs: StaticArray<u64> = new StaticArray<u64>(TIMERS_MAX);
  private readonly task: StaticArray<u32> = new StaticArray<u32>(TIMERS_MAX);
  private readonly tag: StaticArray<u32> = new StaticArray<u32>(TIMERS_MAX);
  armedCount: u32 = 0;
  // No armed deadline is earlier than this: due() answers at once before it, which is most calls (the scheduler asks
  // on every pass of its loop). Lowered when a deadline is set, made exact by a scan that finds nothing due.
  private earliestNs: u64 = DEADLINE_NONE;

  /** Arms a timer for `task` at `nowNs + delayNs` (never, for a delay of DEADLINE_NONE), repeating every
   * `periodNs` if non-zero (PERIOD_PARKED: parked again once fired); TIMER_NONE when full. */
  start(task: u32, nowNs: u64, delayNs: u64, periodNs: u64, tag: u32): u32 {
    for (let id: u32 = 0; id < TIMERS_MAX; id++) {
      if (unchecked(this.state[id]) != TimerState.Free) continue;
      unchecked(this.state[id] = TimerState.Armed);
      const deadlineNs = delayNs == DEADLINE_NONE ? DEADLINE_NONE : nowNs + delayNs;
      unchecked(this.deadlineNs[id] = deadlineNs);
      if (deadlineNs < this.earliestNs) this.earliestNs = deadlineNs;
      unchecked(this.periodNs[id] = periodNs);
      unchecked(this.task[id] = task);
      unchecked(this.tag[id] = tag);
      this.armedCount += 1;
      return id;
    }
    return TIMER_NONE;
  }

  /** Disarms `id`; false if it was not armed (already fired one-shot, or cancelled). */
  cancel(id: u32): bool {
    assert(id < TIMERS_MAX, "timer id out of range");
    if (unchecked(this.state[id]) != TimerState.Armed) return false;
    unchecked(this.state[id] = TimerState.Free);
    this.armedCount -= 1;
    return true;
  }

  /** The lowest id due at `nowNs` at or after `fromId`, or TIMER_NONE. */
  due(nowNs: u64, fromId: u32): u32 {
    if (nowNs < this.earliestNs) return TIMER_NONE;
    let earliest = DEADLINE_NONE;
    for (let id = fromId; id < TIMERS_MAX; id++) {
      if (unchecked(this.state[id]) != TimerState.Armed) continue;
      const deadlineNs = unchecked(this.deadlineNs[id]);
      if (deadlineNs <= nowNs) return id;
      if (deadlineNs < earliest) earliest = deadlineNs;
    }
    if (fromId == 0) this.earliestNs = earliest; // a whole scan: exact
    return TIMER_NONE;
  }

  /** Moves armed timer `id`'s deadline to `atNs` if that is earlier (a parked timer gets one). */
  wakeBy(id: u32, atNs: u64): void {
    assert(id < TIMERS_MAX && unchecked(this.state[id]) == TimerState.Armed, "timer to wake is not armed");
    if (atNs < unchecked(this.deadlineNs[id])) unchecked(this.deadlineNs[id] = atNs);
    if (atNs < this.earliestNs) this.earliestNs = atNs;
  }

  /** After `id`'s message was delivered: a one-shot frees, a periodic one moves past `nowNs` (missed periods skipped),
   * a parked one parks again. */
  fired(id: u32, nowNs: u64): void {
    assert(id < TIMERS_MAX && unchecked(this.state[id]) == TimerState.Armed, "fired timer is not armed");
    const period = unchecked(this.periodNs[id]);
    if (period == PERIOD_PARKED) {
      unchecked(this.deadlineNs[id] = DEADLINE_NONE);
      return;
    }
    if (period == 0) {
      unchecked(this.state[id] = TimerState.Free);
      this.armedCount -= 1;
      return;
    }
    const deadline = unchecked(this.deadlineNs[id]);
    const missed = (nowNs - deadline) / period + 1;
    const next = deadline + missed * period;
    unchecked(this.deadlineNs[id] = next);
    assert(next > nowNs);
    if (next < this.earliestNs) this.earliestNs = next;
  }

  taskOf(id: u32): u32 { assert(id < TIMERS_MAX); return unchecked(this.task[id]); }

  tagOf(id: u32): u32 { assert(id < TIMERS_MAX); return unchecked(this.tag[id]); }

  /** The earliest armed deadline, or DEADLINE_NONE. */
  nextDeadlineNs(): u64 {
    let earliest = DEADLINE_NONE;
    for (let id: u32 = 0; id < TIMERS_MAX; id++) {
      if (unchecked(this.state[id]) == TimerState.Armed && unchecked(this.deadlineNs[id]) < earliest) {
        earliest = unchecked(this.deadlineNs[id]);
      }
    }
    this.earliestNs = earliest;
    return earliest;
  }
}
