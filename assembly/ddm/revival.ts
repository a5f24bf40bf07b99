// A given-up controller tried again later. A DDM gives a controller up after too many faults in a row (or a reset
// or bring-up that never completes); until this existed it stayed given up until the board restarted, so a disk
// reached only by a volume's once-a-second probe (a failed replica copy, a failed RAID member) never came back once
// the faults had stopped. Now the DDM schedules a revival on its tick's timer: after DDM_REVIVAL_FIRST_NS of board
// time it resets the controller and brings it up again, on probation (one more fault before a request succeeds gives
// it up again). Each give-up without a success between doubles the wait, up to DDM_REVIVAL_MAX_NS, so a controller
// that is really dead costs one bring-up attempt every DDM_REVIVAL_MAX_NS; a request that succeeds starts the waits
// over. Board time only: deterministic, and nothing is allocated after boot.
import { line } from "../kernel/console";
import { DEADLINE_NONE } from "../kernel/timer";

export const DDM_REVIVAL_FIRST_NS: u64 = 1_000_000_000; // the wait after the first give-up
export const DDM_REVIVAL_MAX_NS: u64 = 16_000_000_000; // the longest wait, reached after five give-ups in a row

export class DdmRevival {
  private waitNs: u64 = DDM_REVIVAL_FIRST_NS;
  /** The board time of the next revival, DEADLINE_NONE when none is scheduled. */
  atNs: u64 = DEADLINE_NONE;
  /** Revivals so far (tried, whatever came of them). */
  count: u32 = 0;

  /**
   * At a give-up of controller `name`: the revival goes `waitNs` from now (said on the console), and the wait after
   * it is doubled (up to the maximum).
   */
  schedule(nowNs: u64, name: string): void {
    line().s(name).s(": trying it again in ").u64(this.waitNs / 1_000_000).s(" ms").err();
    this.atNs = nowNs + this.waitNs;
    const doubled = this.waitNs * 2;
    this.waitNs = doubled < DDM_REVIVAL_MAX_NS ? doubled : DDM_REVIVAL_MAX_NS;
  }

  /**
   * True, once, when the scheduled revival of controller `name` is due at `nowNs`: it is then taken (no longer
   * scheduled) and said on the console.
   */
  take(nowNs: u64, name: string): bool {
    if (this.atNs == DEADLINE_NONE || nowNs < this.atNs) return false;
    this.atNs = DEADLINE_NONE;
    this.count += 1;
    line().s(name).s(": trying the controller again (revival ").u32(this.count).s(")").err();
    return true;
  }

  /** A request succeeded: the controller works, and the next give-up waits the first wait again. */
  succeeded(): void {
    this.waitNs = DDM_REVIVAL_FIRST_NS;
  }
}
