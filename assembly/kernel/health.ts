// The health task: a periodic self-check that pools are consistent and the heap has not moved since boot.
import { HEALTH_PERIOD_NS, PRIORITY_LOWEST } from "../config";
import { buffersCheck } from "./buffers";
import { heapTop } from "./carve";
import { MsgKind } from "./msg";
import { timerStart } from "./scheduler";
import { RunResult, Task } from "./task";
import { TIMER_NONE } from "./timer";

export class HealthTask extends Task {
  heapTopAtBoot: usize = 0;
  checkCount: u32 = 0;

  constructor() { super("health", PRIORITY_LOWEST, 4); }

  /** Records the heap top and arms the period. Call last in boot, after every task was added. */
  start(): void {
    this.heapTopAtBoot = heapTop();
    const timer = timerStart(this.index, HEALTH_PERIOD_NS, HEALTH_PERIOD_NS, 0);
    assert(timer != TIMER_NONE, "no timer for the health task");
  }

  run(): RunResult {
    let handled: u32 = 0;
    while (handled < 4 && this.inbox.pop(this.scratch)) {
      switch (<i32>this.scratch.kind) {
        case MsgKind.Timer: this.check(); break;
        default: assert(false, "health: unexpected message kind");
      }
      handled += 1;
    }
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  private check(): void {
    buffersCheck();
    assert(heapTop() == this.heapTopAtBoot, "heap moved after boot");
    this.checkCount += 1;
  }
}
