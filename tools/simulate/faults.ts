// The faults the simulator injects, each mapped onto the fault injection the board's device models offer
// (host/devices/): the list, its parsing for --faults, and the injector that picks one fault at a time from a seeded
// stream. Where a fault lands (which controller, bridge or connection) is drawn from the same stream.
import type { Board } from "../../host/board/board.ts";
import type { IopBridgeFault } from "../../host/devices/iop_bridge.ts";
import { NvmeDevice, type NvmeFault } from "../../host/devices/nvme.ts";
import type { VirtioScsiFault } from "../../host/devices/virtio_scsi.ts";
import type { Prng } from "../../host/sim/prng.ts";

export const FAULT_KINDS = ["dma", "timeout", "reset", "mu-drop", "mu-dup", "conn-drop", "panic", "member", "link-drop", "link-dup", "link-down", "partition", "board-off", "lie"] as const;
/** The faults of a cluster's fabric and boards (cluster_faults.ts): drawn only in `simulate --cluster`. */
export const CLUSTER_FAULT_KINDS = ["link-drop", "link-dup", "link-down", "partition", "board-off"] as const;
export type ClusterFaultKind = (typeof CLUSTER_FAULT_KINDS)[number];
export type FaultKind = (typeof FAULT_KINDS)[number];
/** What "all" means: every fault a correct target survives. "lie" is for checking the checkers. */
export const FAULT_KINDS_ALL: readonly FaultKind[] = FAULT_KINDS.filter((k) => k !== "lie");

/** One line per fault for --help and the docs. */
export const FAULT_HELP: Record<FaultKind, string> = {
  dma: "a storage request's data DMA fails (virtio-scsi TRANSPORT_FAILURE, NVMe Data Transfer Error; the disk never sees it)",
  timeout: "a storage request is taken and never completed (virtio-scsi: the DDM's deadline resets the controller; NVMe: ABORT, then a reset if that fails)",
  reset: "a controller fails or breaks its queues: virtio-scsi DEVICE_NEEDS_RESET, unknown id, duplicate, index jump; NVMe CSTS.CFS, a lying CSTS, unknown CID, duplicate completion, stale phase, lying SQ head",
  "mu-drop": "a messaging-unit frame between the host and a storage processor is lost (inbound or outbound)",
  "mu-dup": "a messaging-unit frame is delivered twice (inbound or outbound)",
  "conn-drop": "an initiator's TCP connection breaks (bytes on the wire both ways are lost)",
  panic: "a processor stops on a fatal fault; the board resets as with run --reset-on-panic",
  member: "(--board volumes) one member of each RAID-5 is pulled mid-run and replaced by a blank disk later (spare rebuild, rebuild onto the new disk); (--board replica) a copy fails and is restored (resync of the logged regions), replaced, or both copies fail",
  "link-drop": "(--cluster) the next 1-4 fabric packets are lost",
  "link-dup": "(--cluster) the next 1-4 fabric packets are delivered twice",
  "link-down": "(--cluster) one link of a board's bonded pair goes down for 1-200 ms of board time (the port fails over)",
  partition: "(--cluster) both links of a board go down for 50 ms-2 s: the board is cut off from the others",
  "board-off": "(--cluster) a board loses power for 100 ms-2 s, then boots again (its disks keep what they hold)",
  lie: "(not in all) a disk acknowledges a WRITE and stores nothing: the run must report it; proves the checks work",
};

// How often each kind is drawn relative to the others: a panic resets the whole board, so it comes rarely. A member
// fault is never drawn here: it is scheduled once per RAID-5 volume (member_faults.ts).
// A board-off, like a panic, takes a whole board down, so it is as rare. The cluster kinds count only in a cluster run,
// and mu-drop and mu-dup only on boards with messaging units: a single board's draws are what they were before them.
const WEIGHT: Record<FaultKind, number> = {
  dma: 8, timeout: 8, reset: 8, "mu-drop": 8, "mu-dup": 8, "conn-drop": 8, panic: 1, member: 0,
  "link-drop": 8, "link-dup": 8, "link-down": 8, partition: 2, "board-off": 1, lie: 8,
};

const DEVICE_RESETS: VirtioScsiFault[] = [{ kind: "needs-reset-next" }, { kind: "unknown-id" }, { kind: "duplicate-used" }, { kind: "used-index-jump", by: 3 }];
const NVME_RESETS: NvmeFault[] = [{ kind: "fatal-next" }, { kind: "csts-lie" }, { kind: "unknown-cid" }, { kind: "duplicate-cqe" }, { kind: "stale-phase" }, { kind: "bad-sq-head" }];
const MU_DROPS: IopBridgeFault[] = [{ kind: "drop-next-inbound-post" }, { kind: "drop-next-outbound-post" }];
const MU_DUPLICATES: IopBridgeFault[] = [{ kind: "duplicate-next-inbound-post" }, { kind: "duplicate-next-outbound-post" }];

/** "all", "none" or a comma-separated list of kinds; an unknown name is an error that names it. */
export function parseFaults(text: string): FaultKind[] {
  if (text === "all") return [...FAULT_KINDS_ALL];
  if (text === "none" || text === "") return [];
  const kinds: FaultKind[] = [];
  for (const name of text.split(",")) {
    const kind = FAULT_KINDS.find((k) => k === name.trim());
    if (kind === undefined) throw new RangeError(`unknown fault "${name}" (expected all, none, or a comma-separated list of ${FAULT_KINDS.join(", ")})`);
    if (!kinds.includes(kind)) kinds.push(kind);
  }
  return kinds;
}

export interface FaultHooks {
  /** Breaks one initiator connection; a description of which, or undefined when none is up. */
  dropConnection(prng: Prng): string | undefined;
  /**
   * False while a board reset would be a second fault no redundancy covers: a RAID-5 that is not optimal loses the
   * rows its writes in flight touched (the write hole of a degraded array); the panic drawn then is not injected.
   */
  resetSurvivable?(): boolean;
  /** A cluster run: injects a fabric or board fault (cluster_faults.ts); a description of it, or undefined when none fits now. */
  cluster?(kind: ClusterFaultKind, prng: Prng): string | undefined;
}

export class FaultInjector {
  readonly byKind = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  injected = 0;
  private readonly weightTotal: number;
  private readonly kinds: readonly FaultKind[];
  private readonly boards: readonly Board[];

  /** `board`: the board, or a cluster's boards (a fault on a board's devices draws the board first). */
  constructor(board: Board | readonly Board[], private readonly prng: Prng, kinds: readonly FaultKind[], private readonly hooks: FaultHooks) {
    this.boards = Array.isArray(board) ? board : [board as Board];
    const bridges = this.boards.some((b) => b.spec.processors.some((p) => p.pci.some((f) => f.model === "iop-bridge")));
    this.kinds = kinds.filter((k) => (CLUSTER_FAULT_KINDS as readonly string[]).includes(k) ? hooks.cluster !== undefined : k === "mu-drop" || k === "mu-dup" ? bridges : true);
    this.weightTotal = this.kinds.reduce((sum, k) => sum + WEIGHT[k], 0);
  }

  /** With a chance of one in `oneIn`, injects one fault (the draw comes from the faults' own stream). */
  maybeInject(oneIn: number): void {
    if (this.weightTotal > 0 && this.prng.intBelow(oneIn) === 0) this.injectOne();
  }

  /** Injects one fault of a kind drawn from the enabled ones; records it in the trace. False when none is enabled. */
  injectOne(): boolean {
    if (this.weightTotal === 0) return false;
    let draw = this.prng.intBelow(this.weightTotal);
    let kind = this.kinds[0]!;
    for (const k of this.kinds) {
      if (draw < WEIGHT[k]) {
        kind = k;
        break;
      }
      draw -= WEIGHT[k];
    }
    const where = this.inject(kind);
    if (where === undefined) return false;
    this.injected += 1;
    this.byKind[kind] += 1;
    this.boards[0]!.ingress.note("sim", "fault", { kind, where });
    return true;
  }

  private inject(kind: FaultKind): string | undefined {
    const pick = <T>(items: readonly T[]): T => items[this.prng.intBelow(items.length)]!;
    if ((CLUSTER_FAULT_KINDS as readonly string[]).includes(kind)) return this.hooks.cluster?.(kind as ClusterFaultKind, this.prng);
    // A single board draws nothing here, so its faults are drawn as before clusters.
    const board = this.boards.length === 1 ? this.boards[0]! : pick(this.boards);
    const on = this.boards.length === 1 ? "" : `${board.name}/`;
    const { bridges } = board;
    const controllers = [...board.controllers, ...board.nvmeControllers];
    switch (kind) {
      case "dma":
      case "timeout":
      case "reset": {
        const controller = pick(controllers);
        if (controller instanceof NvmeDevice) {
          const fault: NvmeFault = kind === "dma" ? { kind: "dma-fault-next" } : kind === "timeout" ? { kind: "never-complete-next" } : pick(NVME_RESETS);
          board.injectFault({ device: controller.name, fault });
          return `${on}${controller.name} ${fault.kind}`;
        }
        const fault: VirtioScsiFault = kind === "dma" ? { kind: "dma-fault-next" } : kind === "timeout" ? { kind: "never-complete-next" } : pick(DEVICE_RESETS);
        board.injectFault({ device: controller.name, fault });
        return `${on}${controller.name} ${fault.kind}`;
      }
      case "mu-drop":
      case "mu-dup": {
        const bridge = pick(bridges);
        const fault = pick(kind === "mu-drop" ? MU_DROPS : MU_DUPLICATES);
        board.injectFault({ device: bridge.name, fault });
        return `${on}${bridge.name} ${fault.kind}`;
      }
      case "conn-drop": return this.hooks.dropConnection(this.prng);
      case "lie": {
        const controller = pick(controllers);
        board.injectFault({ device: controller.name, fault: { kind: "lose-write-next" } });
        return `${on}${controller.name} lose-write-next`;
      }
      case "member": return undefined; // scheduled by MemberFaults, never drawn
      case "panic": {
        const running = board.processors.filter((p) => p.state === "running");
        if (running.length === 0 || this.hooks.resetSurvivable?.() === false) return undefined;
        const processor = pick(running);
        board.injectFault({ processor: processor.name, fail: "injected fault: processor halted by the simulator" });
        return `${on}${processor.name}`;
      }
      default: throw new Error(`FaultInjector: unknown fault ${String(kind)}`);
    }
  }
}
