// Real-time mode: paces the virtual clock to wall time, for serving real clients. This is the one place in host/
// that reads a wall clock or sets a timer; both come in as parameters so a test can drive the pacer by hand.
//
// Board time follows wall time, but may run ahead of it by at most LEAD_NS_MAX: an event due within the lead runs at
// once instead of after a sleep. Host timers cannot sleep for microseconds (Node's are 1 ms at best), so without the
// lead every modelled device latency on an I/O's path (a NIC event, a disk access, each some µs) would cost a whole
// millisecond of wall time. With it the board is never slower than its model, and never more than the lead early:
// a firmware timer fires at most LEAD_NS_MAX before its wall-clock time. Inputs from outside (a socket's bytes)
// schedule an event through the clock's onOutsideSchedule, which runs a tick as soon as the socket's callback returns
// (a microtask: the answer leaves in the same turn of the event loop).
import type { VirtualClock } from "./clock.ts";

export interface WallClock {
  nowMs(): number;
  setTimer(fn: () => void, delayMs: number): { cancel(): void };
  /** Runs `fn` once the host has handled pending I/O (setImmediate), with no timer granularity. */
  soon(fn: () => void): { cancel(): void };
  /**
   * Runs `fn` as soon as the current callback returns (a microtask): for an input from outside (a socket's bytes),
   * so the board answers within the same turn of the event loop. Optional: without it, soon().
   */
  next?(fn: () => void): { cancel(): void };
}

export const systemWallClock: WallClock = {
  nowMs: () => performance.now(),
  setTimer: (fn, delayMs) => {
    const timer = setTimeout(fn, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
  soon: (fn) => {
    const immediate = setImmediate(fn);
    return { cancel: () => clearImmediate(immediate) };
  },
  next: (fn) => {
    let cancelled = false;
    queueMicrotask(() => {
      if (!cancelled) fn();
    });
    return { cancel: () => (cancelled = true) };
  },
};

// Sleep at most this long between checks, so a signal or an external input is noticed quickly.
const SLEEP_MS_MAX = 50;
// How far board time may run ahead of wall time to run an event now rather than sleep for it.
export const LEAD_NS_MAX = 1_000_000;

export class RealTimePacer {
  private running = false;
  private ticking = false;
  // At most one of each: a tick to come at once (soon, or next after an outside input), and a sleep. A sleep stays
  // armed across ticks while it is due no later than needed (an early one only costs a tick that finds nothing due):
  // a request at QD1 used to cancel one timer and arm another every time.
  private pending: { cancel(): void } | undefined;
  private sleep: { cancel(): void } | undefined;
  private sleepDueMs = Infinity;
  private startWallMs = 0;
  private startVirtualNs = 0;
  /** Events handled late: how far behind wall time the board fell at worst, in ns. */
  lagNsMax = 0;

  constructor(private readonly clock: VirtualClock, private readonly wall: WallClock = systemWallClock) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.startWallMs = this.wall.nowMs();
    this.startVirtualNs = this.clock.nowNs;
    this.clock.onOutsideSchedule = () => this.wake();
    this.tick();
  }

  stop(): void {
    this.running = false;
    this.pending?.cancel();
    this.pending = undefined;
    this.sleep?.cancel();
    this.sleep = undefined;
    this.sleepDueMs = Infinity;
    this.clock.onOutsideSchedule = undefined;
  }

  /**
   * Runs every event due by now in wall time, and those due within the lead after it; then comes back at once
   * (setImmediate, after the host's pending I/O) when more are due within the lead, else sleeps until one is.
   */
  tick(): void {
    if (!this.running) return;
    this.ticking = true;
    try {
      const wallNs = this.startVirtualNs + Math.floor((this.wall.nowMs() - this.startWallMs) * 1e6);
      if (wallNs > this.clock.nowNs) {
        const next = this.clock.nextDeadlineNs();
        if (next !== undefined && next < wallNs) this.lagNsMax = Math.max(this.lagNsMax, wallNs - next);
        this.clock.advanceTo(wallNs);
      }
      // Ahead of wall time, up to the lead: bounded because the limit is fixed for this tick, and measured from wall
      // time, not from board time (which a periodic event due every LEAD_NS_MAX would otherwise ratchet ahead of wall
      // time a lead per tick: a board alone whose hellos retry every 1 ms ran 11x faster than wall time).
      const limitNs = wallNs + LEAD_NS_MAX;
      for (let next = this.clock.nextDeadlineNs(); this.running && next !== undefined && next <= limitNs; next = this.clock.nextDeadlineNs()) {
        this.clock.runNext();
      }
    } finally {
      this.ticking = false;
    }
    if (!this.running) return;
    this.schedule();
  }

  private schedule(): void {
    const next = this.clock.nextDeadlineNs();
    const nowMs = this.wall.nowMs();
    const wallNs = this.startVirtualNs + Math.floor((nowMs - this.startWallMs) * 1e6);
    if (next !== undefined && next <= wallNs + LEAD_NS_MAX) {
      this.pending ??= this.wall.soon(() => this.fromPending());
      return;
    }
    const sleepMs = next === undefined ? SLEEP_MS_MAX : Math.min(SLEEP_MS_MAX, Math.max(0, (next - LEAD_NS_MAX - wallNs) / 1e6));
    if (this.sleep !== undefined && this.sleepDueMs <= nowMs + sleepMs) return; // the armed sleep comes in time
    this.sleep?.cancel();
    this.sleepDueMs = nowMs + sleepMs;
    this.sleep = this.wall.setTimer(() => this.fromSleep(), sleepMs);
  }

  private fromPending(): void {
    this.pending = undefined;
    this.tick();
  }

  private fromSleep(): void {
    this.sleep = undefined;
    this.sleepDueMs = Infinity;
    this.tick();
  }

  // Something outside scheduled an event: a tick as soon as the caller's callback returns, the sleep left as it is.
  // Inside a tick, the tick sees the event itself.
  private wake(): void {
    if (!this.running || this.ticking || this.pending !== undefined) return;
    const fn = (): void => this.fromPending();
    this.pending = this.wall.next !== undefined ? this.wall.next(fn) : this.wall.soon(fn);
  }
}
