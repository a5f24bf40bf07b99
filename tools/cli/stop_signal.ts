// The stop signal of a serving command (run, run --cluster, run --cluster --board): SIGINT or SIGTERM, remembered
// when it comes before the board serves, and the real-time serving that ends on it (exit 0) or on a panic (exit 1).
import type { VirtualClock } from "../../host/sim/clock.ts";
import { RealTimePacer } from "../../host/sim/realtime.ts";

export class StopSignal {
  private signalled: string | undefined;
  private onSignal: (signal: string) => void = (signal) => (this.signalled ??= signal);

  constructor() {
    process.once("SIGINT", () => this.onSignal("SIGINT"));
    process.once("SIGTERM", () => this.onSignal("SIGTERM"));
  }

  /** The signal received so far, if any (also the one that ended serve()). */
  get received(): string | undefined {
    return this.signalled;
  }

  /**
   * Paces `clock` to wall time until a signal (0; also one that came earlier) or until `failed()` holds (1, asked
   * every 20 ms; it may act first: run --reset-on-panic resets the board and answers false). `what` names what
   * Ctrl-C stops in the line printed once serving.
   */
  async serve(clock: VirtualClock, what: string, failed: () => boolean, out: (text: string) => void): Promise<number> {
    const pacer = new RealTimePacer(clock);
    pacer.start();
    out(`running; Ctrl-C stops the ${what}`);
    let watch: NodeJS.Timeout | undefined;
    const code = await new Promise<number>((resolveCode) => {
      this.onSignal = (signal) => {
        this.signalled ??= signal;
        out(`${signal}: stopping`);
        resolveCode(0);
      };
      if (this.signalled !== undefined) this.onSignal(this.signalled);
      watch = setInterval(() => { if (failed()) resolveCode(1); }, 20);
      watch.unref();
    });
    clearInterval(watch);
    pacer.stop();
    return code;
  }
}
