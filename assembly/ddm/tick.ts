// A DDM's tick: a parked timer that fires on a grid of periodNs from start(), but only while the controller has work
// for it (deadlines, a reset or a ready bit to poll, completions waiting, DdmReady to post), so an idle controller
// never wakes the processor; and once at a given time for a given-up controller's revival (wakeAt). The grid is skipped forward over the points it slept through.
import { clockNowNs } from "../board/wasi";
import { timerStartParked, timerWakeBy } from "../kernel/scheduler";
import { TIMER_NONE } from "../kernel/timer";

export class DdmTick {
  private timer: u32 = TIMER_NONE;
  private atNs: u64 = 0; // the next grid point
  private armed: bool = false; // the timer is set for atNs

  constructor(private readonly periodNs: u64) {
    assert(periodNs > 0, "ddm tick: period 0");
  }

  /** Boot, after taskAdd: takes a parked timer for `task`; the grid starts one period from now. */
  start(task: u32): void {
    this.timer = timerStartParked(task, 0);
    assert(this.timer != TIMER_NONE, "ddm tick: no timer");
    this.atNs = clockNowNs() + this.periodNs;
  }

  /** On the timer's message: the time now, with the grid moved past it and the timer no longer set. */
  fired(): u64 {
    assert(this.timer != TIMER_NONE, "ddm tick: fired before start");
    const nowNs = clockNowNs();
    this.armed = false;
    this.skipPast(nowNs);
    return nowNs;
  }

  /**
   * After every run, with whether the tick has work: sets the timer for the next grid point if it is not set already.
   * The clock is read only then, when the controller goes from idle to busy.
   */
  arm(needed: bool): void {
    if (this.armed || !needed) return;
    this.skipPast(clockNowNs());
    timerWakeBy(this.timer, this.atNs);
    this.armed = true;
  }

  /**
   * A wake-up at `atNs` exactly, off the grid (a given-up controller's revival, ddm/revival.ts), unless the timer is
   * set already (for an earlier grid point: the run after it sets this again).
   */
  wakeAt(atNs: u64): void {
    if (this.armed) return;
    timerWakeBy(this.timer, atNs);
    this.armed = true;
  }

  private skipPast(nowNs: u64): void {
    while (this.atNs <= nowNs) this.atNs += this.periodNs;
  }
}
