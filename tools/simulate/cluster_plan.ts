// The cluster of `wasm-iop simulate --cluster FILE` (docs/simulation.md, "A cluster"): every board of a cluster file in
// one process on one clock and one fabric (host/cluster/cluster.ts), each board's disks in memory (kept across its
// power cuts), one trace for all of them, and each board's seed drawn from the run's seed. The plan says what the
// run checks: the LUNs of the first board's first target (every board presents the same), and for each block which
// board's disk holds it (the owner of its page, for a partitioned volume); a replica LUN (copy 1 on another board,
// docs/volumes.md "Copies on two boards") is read back over iSCSI and its two copies compared after the run.
import type { Board } from "../../host/board/board.ts";
import type { ClusterVolumeSpec } from "../../host/board/cluster_spec.ts";
import { type DiskSpec, remoteDiskAsLocal } from "../../host/board/load.ts";
import { volumeBlockSizeBytes, volumeCapacityBytes } from "../../host/board/volume_geometry.ts";
import type { PanicReport } from "../../host/board/processor.ts";
import { Cluster } from "../../host/cluster/cluster.ts";
import { type ClusterFile, loadClusterFile } from "../../host/cluster/cluster_file.ts";
import type { Prng } from "../../host/sim/prng.ts";
import type { Trace } from "../../host/sim/trace.ts";
import { BLOCK_BYTES } from "../iscsi/pdu.ts";
import { firmwareModule } from "./boards.ts";
import type { LunPlan, RaidPlan, SimBoardPlan } from "./boards.ts";

export interface SimCluster {
  readonly cluster: Cluster;
  readonly plan: SimBoardPlan;
  /** Each board's fabric address (its routing-table id), in the order of cluster.boards. */
  readonly ids: readonly number[];
  /** The index in cluster.boards of the board whose disk holds block `lba` of LUN `lun`. */
  ownerOf(lun: number, lba: number): number;
  /** The boards presenting the target (indexes in cluster.boards): every board for partitioned volumes, the first
   * alone for a replica whose copy 1 is another board's disk. */
  readonly presenters: readonly number[];
  /** Each replica's two copies, as (board index, disk name): identical past their metadata after the run. */
  readonly replicaCopies: readonly { volume: string; copies: readonly { board: number; disk: string }[] }[];
}

// Each cluster file is read once per process: every seed of a campaign runs the same cluster, even if the file is
// edited while the campaign runs (it reads the schema once, too).
const loaded = new Map<string, ClusterFile>();

export interface SimClusterHooks {
  onConsole(board: Board, processor: string, fd: 1 | 2, line: string): void;
  onStop(board: Board, processor: string, report: PanicReport | undefined): void;
}

/** The cluster of the file at `path` for one seed; throws a BoardFileError naming the file and field. */
/** `rdma`: the ports have no window (revision 2): a remote request's data moves by RDMA, as over TCP. */
export function simulationCluster(path: string, prng: Prng, trace: Trace, hooks: SimClusterHooks, rdma = false): SimCluster {
  const file = loaded.get(path) ?? loadClusterFile(path);
  loaded.set(path, file);
  const names = file.boards.map((b) => b.name);
  const first = file.boards[0]!.spec;
  const target = first.targets[0]!;
  const replicaCopies: { volume: string; copies: { board: number; disk: string }[] }[] = [];
  const raid: RaidPlan[] = [];
  const luns: LunPlan[] = (target.luns ?? first.volumes.map((_, volume) => ({ volume, readOnly: false }))).map((l, lun) => {
    const volume = first.volumes[l.volume]!;
    if (volume.type === "replica") {
      // Read back over iSCSI once optimal (checkVolumes), and its copies compared, wherever they are.
      const disks = [...first.disks, ...(first.remoteDisks ?? []).map(remoteDiskAsLocal)];
      if (volumeBlockSizeBytes(volume, disks, first.volumes) !== BLOCK_BYTES) throw new RangeError(`${path}: simulate --cluster needs ${BLOCK_BYTES}-byte blocks; replica ${volume.name} has others`);
      raid.push({ volume: volume.name, members: volume.members, spares: [], replica: true });
      replicaCopies.push({
        volume: volume.name,
        copies: volume.members.map((m) => {
          const remote = first.remoteDisks?.find((d) => d.name === m);
          return remote === undefined ? { board: 0, disk: m } : { board: names.indexOf(remote.board), disk: remote.disk.name };
        }),
      });
      return { lun, volume: volume.name, blocks: volumeCapacityBytes(volume, disks, first.volumes) / BLOCK_BYTES };
    }
    if (volume.type !== "disk") throw new RangeError(`${path}: simulate --cluster checks disk and replica volumes only; LUN ${lun} is ${volume.type} volume ${volume.name}`);
    const disk = first.disks.find((d) => d.name === volume.disk)!;
    if (disk.blockSize !== BLOCK_BYTES) throw new RangeError(`${path}: simulate --cluster needs ${BLOCK_BYTES}-byte blocks; disk ${disk.name} has ${disk.blockSize}`);
    const partition = first.cluster?.volumes.find((v) => v.volume === l.volume);
    // A partitioned volume's hot blocks straddle its first page boundary, so hot commands split across two boards.
    const hotBase = partition === undefined ? 0 : Math.max(0, partition.pageBlocks - 512);
    return { lun, volume: volume.name, disk: disk.name, blocks: (disk.sizeMiB * 1024 * 1024) / BLOCK_BYTES, hotBase };
  });
  const owners = luns.map((l) => {
    const partition = first.cluster?.volumes.find((v) => first.volumes[v.volume]!.name === l.volume);
    return partition === undefined ? undefined : ownerTable(partition, names);
  });
  const cluster = new Cluster({
    cluster: file,
    firmware: firmwareModule(),
    window: !rdma,
    boardOptions: (name) => {
      const entry = file.boards.find((b) => b.name === name)!;
      return {
        spec: { ...entry.spec, disks: entry.spec.disks.map(inMemory) },
        seed: prng.fork(`board/${name}`).nextU32(),
        trace,
        onConsole: (processor, fd, line) => hooks.onConsole(cluster.board(name), processor, fd, line),
        onStop: (processor, report) => hooks.onStop(cluster.board(name), processor, report),
      };
    },
  });
  return {
    cluster,
    plan: { kind: raid.length > 0 ? "replica" : "disks", name: file.name, target: target.name, luns, raid },
    ids: file.boards.map((b) => b.id),
    presenters: file.boards.flatMap((b, i) => (b.spec.targets.some((t) => t.name === target.name) ? [i] : [])),
    replicaCopies,
    ownerOf: (lun, lba) => {
      const table = owners[lun];
      return table === undefined ? 0 : table.boards[Math.floor(lba / table.pageBlocks)]!;
    },
  };
}

function inMemory(disk: DiskSpec): DiskSpec {
  return { name: disk.name, sizeMiB: disk.sizeMiB, blockSize: disk.blockSize, physicalBlockSize: disk.physicalBlockSize, backend: "memory" };
}

// Page p's owner as an index in `names` (the cluster file's board order, which the routing table keeps).
function ownerTable(v: ClusterVolumeSpec, names: readonly string[]): { pageBlocks: number; boards: number[] } {
  const boards = Array.from({ length: v.pageCount }, (_, p) => {
    if (v.owners.kind === "explicit") return names.indexOf(v.owners.boards[p]!);
    return (names.indexOf(v.owners.from) + p) % names.length;
  });
  return { pageBlocks: v.pageBlocks, boards };
}
