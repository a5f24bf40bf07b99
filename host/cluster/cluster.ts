// A cluster run in one process (docs/cluster.md, "Running a cluster"): every board of a cluster file on one virtual
// clock, their cluster ports on one fabric. Nothing is shared but the clock and the fabric: each board keeps its own
// processors, disks, trace and random stream, so a cluster replays from its seeds as a board does, and simulate, the
// fuzzer and the trace hash apply to all of it.
import { Board, type BoardOptions } from "../board/board.ts";
import type { DiskBackend } from "../devices/disk_backend.ts";
import { Fabric } from "../fabric/fabric.ts";
import { VirtualClock } from "../sim/clock.ts";
import type { ClusterFile } from "./cluster_file.ts";

export interface ClusterOptions {
  cluster: ClusterFile;
  firmware: WebAssembly.Module;
  /** Per board: what the board needs that the cluster does not decide (its network, portals as bound, console). */
  boardOptions?: (name: string) => Partial<BoardOptions>;
  log?: (message: string) => void;
  /** false: the fabric's ports have no window (revision 2) and move data only by RDMA, as over TCP (default true). */
  window?: boolean;
}

export class Cluster {
  readonly clock = new VirtualClock();
  readonly fabric: Fabric;
  readonly boards: readonly Board[];

  constructor(options: ClusterOptions) {
    this.fabric = new Fabric(this.clock, { log: options.log, window: options.window });
    this.boards = options.cluster.boards.map((entry) => new Board({
      spec: entry.spec,
      firmware: options.firmware,
      dataDir: entry.dataDir,
      seed: entry.seed,
      ...options.boardOptions?.(entry.name),
      clock: this.clock,
      fabric: this.fabric,
    }));
  }

  board(name: string): Board {
    const found = this.boards.find((b) => b.name === name);
    if (found === undefined) throw new RangeError(`cluster: no board ${name}`);
    return found;
  }

  /** Powers every board on, in the cluster file's order, at the same board time; true when all booted. */
  powerOn(): boolean {
    let booted = true;
    for (const board of this.boards) booted = board.powerOn() && booted;
    return booted;
  }

  powerOff(): void {
    for (const board of this.boards) board.powerOff();
  }

  /** Simulation mode: runs every board's events due up to `timeNs` on the one clock. */
  runUntil(timeNs: number): void {
    this.clock.advanceTo(timeNs);
  }

  /** The disk `disk` of board `board`, once powered on. */
  disk(board: string, disk: string): DiskBackend | undefined {
    return this.board(board).disk(disk);
  }
}
