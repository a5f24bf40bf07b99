// Real-time mode: paces the virtual clock to wall time, for serving real clients. This is the one place in host/
// that reads a wall clock or sets a timer; both come in as parameters so a test can drive the pacer by hand.
import type { VirtualClock } from "./clock.ts";

export interface WallClock {
  nowMs(): number;
  setTimer(fn: () => void, delayMs: number): { cancel(): void };
}

export const systemWallClock: WallClock = {
  nowMs: () => performance.now(),
  setTimer: (fn, delayMs) => {
    const timer = setTimeout(fn, delayMs);
    return { cancel: () => clearTimeout(timer) };
  },
};

// Sleep at most this long between checks, so a signal or an external input is noticed quickly.
const SLEEP_MS_MAX = 50;

export class RealTimePacer {
  private running = false;
  private timer: { cancel(): void } | undefined;
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
    this.tick();
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  /** Runs every event due by now in wall time, then sleeps until the next one (or SLEEP_MS_MAX). */
  tick(): void {
    this.timer = undefined;
    if (!this.running) return;
    const targetNs = this.startVirtualNs + Math.floor((this.wall.nowMs() - this.startWallMs) * 1e6);
    if (targetNs > this.clock.nowNs) {
      const next = this.clock.nextDeadlineNs();
      if (next !== undefined && next < targetNs) this.lagNsMax = Math.max(this.lagNsMax, targetNs - next);
      this.clock.advanceTo(targetNs);
    }
    if (!this.running) return;
    const next = this.clock.nextDeadlineNs();
    const sleepMs = next === undefined ? SLEEP_MS_MAX : Math.min(SLEEP_MS_MAX, Math.max(0, (next - this.clock.nowNs) / 1e6));
    this.timer = this.wall.setTimer(() => this.tick(), sleepMs);
  }
}
