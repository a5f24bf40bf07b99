// The faults of a cluster run (`wasm-iop simulate --cluster`), beside each board's own (faults.ts): fabric packets
// lost or duplicated, one link of a board's bonded pair down for a while (the port fails over), a board partitioned
// (both links down) and a board losing power and booting again. Each fault that takes something down also schedules
// its end on the cluster's clock, drawn from the same stream, so a seed replays exactly. Links are counted down: a
// link that two faults took down comes up when both have ended.
import type { Board } from "../../host/board/board.ts";
import type { Fabric } from "../../host/fabric/fabric.ts";
import { FABRIC_LINKS_PER_PORT } from "../../host/fabric/fabric.ts";
import type { Prng } from "../../host/sim/prng.ts";
import type { ClusterFaultKind } from "./faults.ts";

const BURST_MAX = 4; // packets a drop or duplicate fault takes
const LINK_DOWN_NS = [1_000_000, 200_000_000] as const;
const PARTITION_NS = [50_000_000, 2_000_000_000] as const;
const OFF_NS = [100_000_000, 2_000_000_000] as const;

export interface ClusterFaultHooks {
  /** The board lost power (it is off until `powerOn`): the run stops counting on it. */
  poweredOff(board: Board): void;
  /** The board is powered on again (it boots now). */
  poweredOn(board: Board): void;
}

export class ClusterFaults {
  /** Boards powered off by a board-off fault, not yet back. */
  readonly off = new Set<Board>();
  private readonly downCount: number[][];

  constructor(private readonly fabric: Fabric, private readonly boards: readonly Board[], private readonly ids: readonly number[], private readonly hooks: ClusterFaultHooks) {
    this.downCount = ids.map(() => new Array<number>(FABRIC_LINKS_PER_PORT).fill(0));
  }

  /** Injects `kind`; a description of where, or undefined when it does not fit now (every board off, say). */
  inject(kind: ClusterFaultKind, prng: Prng): string | undefined {
    const between = ([low, high]: readonly [number, number]) => low + prng.intBelow(high - low + 1);
    switch (kind) {
      case "link-drop":
      case "link-dup": {
        const count = 1 + prng.intBelow(BURST_MAX);
        this.fabric.inject({ kind: kind === "link-drop" ? "drop-next" : "duplicate-next", count });
        return `next ${count} packets ${kind === "link-drop" ? "dropped" : "duplicated"}`;
      }
      case "link-down": {
        const b = prng.intBelow(this.boards.length);
        const link = prng.intBelow(FABRIC_LINKS_PER_PORT);
        const ns = between(LINK_DOWN_NS);
        this.down(b, [link], ns);
        return `${this.boards[b]!.name} link ${link} down for ${(ns / 1e6).toFixed(1)} ms`;
      }
      case "partition": {
        const b = prng.intBelow(this.boards.length);
        const ns = between(PARTITION_NS);
        this.down(b, Array.from({ length: FABRIC_LINKS_PER_PORT }, (_, i) => i), ns);
        return `${this.boards[b]!.name} partitioned for ${(ns / 1e6).toFixed(1)} ms`;
      }
      case "board-off": {
        const on = this.boards.filter((board) => !this.off.has(board));
        if (on.length === 0) return undefined;
        const board = on[prng.intBelow(on.length)]!;
        const ns = between(OFF_NS);
        this.off.add(board);
        board.powerCut();
        this.hooks.poweredOff(board);
        this.fabric.clock.afterOutside(ns, () => {
          this.off.delete(board);
          board.ingress.note("sim", "power-on", { board: board.name });
          board.powerOn();
          this.hooks.poweredOn(board);
        });
        return `${board.name} off for ${(ns / 1e6).toFixed(1)} ms`;
      }
    }
  }

  private down(b: number, links: readonly number[], ns: number): void {
    const id = this.ids[b]!;
    for (const link of links) {
      if (this.downCount[b]![link]!++ === 0) this.fabric.setLink(id, link, false);
    }
    this.fabric.clock.afterOutside(ns, () => {
      for (const link of links) {
        const counts = this.downCount[b]!;
        if (counts[link] === 0) continue; // restored by restoreAll meanwhile
        if (--counts[link]! === 0) this.fabric.setLink(id, link, true);
      }
    });
  }
}
