// The `member` fault of `wasm-iop simulate`: on a board with RAID-5 volumes, one member of each is pulled in
// mid-run and later replaced by a blank disk, both through the board's control door (host/board/control.ts), as
// `wasm-iop fault disk P:N fail|replace` does on a running board. When each happens derives from the seed: the pull
// at a drawn operation count (postponed while the volume is not optimal, so the simulator itself never causes a
// double failure), the replace a drawn board time after it. A volume with a hot spare rebuilds onto the spare at
// once; one without rebuilds onto the replaced disk when its probe finds it.
// A replica's copy is pulled the same way (`wasm-iop fault copy VOLUME:K fail`) and most often put back with what it
// held (`restore`: only the regions written meanwhile are copied to it), sometimes replaced by a blank disk (every
// region copied), and sometimes the other copy is pulled too while the first is out: the volume fails (its I/O fails
// visibly), the stale copy comes back first and must not serve, then the one that failed last, which serves again.
import type { Board } from "../../host/board/board.ts";
import type { BoardControl, ControlAnswer } from "../../host/board/control.ts";
import type { Prng } from "../../host/sim/prng.ts";
import type { RaidPlan } from "./boards.ts";

const PULL_FIRST_SHARE = 0.1; // pulls fall between 10 % and 50 % of the operations
const PULL_SPREAD_SHARE = 0.4;
const REPLACE_AFTER_NS_MIN = 500_000_000;
const REPLACE_AFTER_NS_SPREAD = 4_000_000_000;

interface MemberEvent {
  volume: string;
  disk: string;
  pullAtOp: number;
  replaceAfterNs: number;
  state: "waiting" | "pulled" | "replaced";
  back: "replace" | "restore"; // how the disk comes back (RAID 5: always replace)
  other?: { disk: string; pullAfterNs: number; restoreAfterNs: number; state: "waiting" | "pulled" | "restored" }; // a replica's both-copies case
}

const BOTH_PULL_AFTER_NS_MIN = 50_000_000; // the second copy goes 50-450 ms after the first, before the first is back
const BOTH_PULL_AFTER_NS_SPREAD = 400_000_000;
const BOTH_RESTORE_AFTER_NS_MIN = 500_000_000; // the one that failed last comes back 0.5-2.5 s after the stale one
const BOTH_RESTORE_AFTER_NS_SPREAD = 2_000_000_000;

export class MemberFaults {
  private readonly events: MemberEvent[];
  pulls = 0;
  replaces = 0;

  constructor(private readonly board: Board, private readonly control: BoardControl, prng: Prng, raid: readonly RaidPlan[], ops: number,
    private readonly isOptimal: (volume: string) => boolean) {
    this.events = raid.map((r) => {
      const event: MemberEvent = {
        volume: r.volume,
        disk: r.members[prng.intBelow(r.members.length)]!,
        pullAtOp: Math.floor(ops * PULL_FIRST_SHARE) + prng.intBelow(Math.max(1, Math.floor(ops * PULL_SPREAD_SHARE))),
        replaceAfterNs: REPLACE_AFTER_NS_MIN + prng.intBelow(REPLACE_AFTER_NS_SPREAD),
        state: "waiting",
        back: "replace",
      };
      if (r.replica === true) {
        // Draws only for replicas, so a RAID-5 board's seeds draw as before.
        const mode = prng.intBelow(8); // 0: a blank disk; 1-2: both copies; 3-7: restored with what it held
        event.back = mode === 0 ? "replace" : "restore";
        if (mode === 1 || mode === 2) {
          event.other = {
            disk: r.members.find((m) => m !== event.disk)!,
            pullAfterNs: BOTH_PULL_AFTER_NS_MIN + prng.intBelow(BOTH_PULL_AFTER_NS_SPREAD),
            restoreAfterNs: BOTH_RESTORE_AFTER_NS_MIN + prng.intBelow(BOTH_RESTORE_AFTER_NS_SPREAD),
            state: "waiting",
          };
          event.replaceAfterNs = Math.max(event.replaceAfterNs, event.other.pullAfterNs + 100_000_000);
        }
      }
      return event;
    });
  }

  /** After each operation issued: pulls the members whose time has come (and whose volume is optimal). */
  onIssued(opsIssued: number): void {
    for (const event of this.events) {
      if (event.state !== "waiting" || opsIssued < event.pullAtOp || !this.isOptimal(event.volume)) continue;
      event.state = "pulled";
      this.submit(event, event.disk, "fail", () => {
        this.pulls += 1;
        this.board.clock.afterOutside(event.replaceAfterNs, () => this.replace(event));
        const other = event.other;
        if (other !== undefined) {
          this.board.clock.afterOutside(other.pullAfterNs, () => {
            if (other.state !== "waiting" || event.state !== "pulled") return;
            other.state = "pulled";
            this.submit(event, other.disk, "fail", () => (this.pulls += 1));
          });
        }
      });
    }
  }

  /** At the end of the run: every member still pulled is replaced now (a pull not yet done never happens). */
  replaceAll(): void {
    for (const event of this.events) {
      if (event.state === "pulled") this.replace(event);
      else if (event.state === "waiting") event.state = "replaced";
      if (event.other !== undefined) this.restoreOther(event);
    }
  }

  private replace(event: MemberEvent): void {
    if (event.state !== "pulled") return;
    event.state = "replaced";
    this.submit(event, event.disk, event.back, () => (this.replaces += 1));
    // Both copies out: the one pulled first (stale) came back now; the one that failed last comes back later.
    const other = event.other;
    if (other?.state === "pulled") this.board.clock.afterOutside(other.restoreAfterNs, () => this.restoreOther(event));
    else if (other?.state === "waiting") other.state = "restored"; // never pulled
  }

  private restoreOther(event: MemberEvent): void {
    const other = event.other!;
    if (other.state !== "pulled") return;
    other.state = "restored";
    this.submit(event, other.disk, "restore", () => (this.replaces += 1));
  }

  // The disk's control name (PROCESSOR:INDEX, the RTA's order) from the controllers of the last power-on.
  private submit(event: MemberEvent, disk: string, action: "fail" | "replace" | "restore", done: () => void): void {
    const name = this.controlName(disk);
    this.control.submit({ object: "disk", name, action }, (answer: ControlAnswer) => {
      this.board.ingress.note("sim", "fault", { kind: "member", where: `${event.volume} ${disk} (${name}) ${action}` });
      if (!answer.ok) throw new Error(`member fault: ${name} ${action}: ${answer.message}`);
      done();
    });
  }

  private controlName(disk: string): string {
    for (const processor of this.board.processors) {
      const index = this.board.controllersOf(processor.name).flatMap((s) => s.disks).indexOf(disk);
      if (index >= 0) return `${processor.name}:${index}`;
    }
    throw new Error(`member fault: disk ${disk} is on no controller`);
  }
}
