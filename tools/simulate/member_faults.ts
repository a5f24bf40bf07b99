// The `member` fault of `wasm-iop simulate`: on a board with RAID-5 volumes, one member of each is pulled in
// mid-run and later replaced by a blank disk, both through the board's control door (host/board/control.ts), as
// `wasm-iop fault disk P:N fail|replace` does on a running board. When each happens derives from the seed: the pull
// at a drawn operation count (postponed while the volume is not optimal, so the simulator itself never causes a
// double failure), the replace a drawn board time after it. A volume with a hot spare rebuilds onto the spare at
// once; one without rebuilds onto the replaced disk when its probe finds it.
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
}

export class MemberFaults {
  private readonly events: MemberEvent[];
  pulls = 0;
  replaces = 0;

  constructor(private readonly board: Board, private readonly control: BoardControl, prng: Prng, raid: readonly RaidPlan[], ops: number,
    private readonly isOptimal: (volume: string) => boolean) {
    this.events = raid.map((r) => ({
      volume: r.volume,
      disk: r.members[prng.intBelow(r.members.length)]!,
      pullAtOp: Math.floor(ops * PULL_FIRST_SHARE) + prng.intBelow(Math.max(1, Math.floor(ops * PULL_SPREAD_SHARE))),
      replaceAfterNs: REPLACE_AFTER_NS_MIN + prng.intBelow(REPLACE_AFTER_NS_SPREAD),
      state: "waiting",
    }));
  }

  /** After each operation issued: pulls the members whose time has come (and whose volume is optimal). */
  onIssued(opsIssued: number): void {
    for (const event of this.events) {
      if (event.state !== "waiting" || opsIssued < event.pullAtOp || !this.isOptimal(event.volume)) continue;
      event.state = "pulled";
      this.submit(event, "fail", () => {
        this.pulls += 1;
        this.board.clock.afterOutside(event.replaceAfterNs, () => this.replace(event));
      });
    }
  }

  /** At the end of the run: every member still pulled is replaced now (a pull not yet done never happens). */
  replaceAll(): void {
    for (const event of this.events) {
      if (event.state === "pulled") this.replace(event);
      else if (event.state === "waiting") event.state = "replaced";
    }
  }

  private replace(event: MemberEvent): void {
    if (event.state !== "pulled") return;
    event.state = "replaced";
    this.submit(event, "replace", () => (this.replaces += 1));
  }

  // The disk's control name (PROCESSOR:INDEX, the RTA's order) from the controllers of the last power-on.
  private submit(event: MemberEvent, action: "fail" | "replace", done: () => void): void {
    const name = this.controlName(event.disk);
    this.control.submit({ object: "disk", name, action }, (answer: ControlAnswer) => {
      this.board.ingress.note("sim", "fault", { kind: "member", where: `${event.volume} ${event.disk} (${name}) ${action}` });
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
