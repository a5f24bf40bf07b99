// The simulation boards of `wasm-iop simulate`, fixed descriptions the seed runs on (docs/simulation.md, "The
// boards"): `disks`, the original one (a disk on the host processor and one on each storage processor, LUN n is
// disk n), and `volumes`, which adds a RAID-5 with a hot spare and a thin volume on a second RAID-5 whose pool is
// small enough for the workload to fill, and `replica`, which adds a replica volume whose copies sit on sp1 (virtio-scsi)
// and sp2 (NVMe). Each plan says what its LUNs are, so the run knows how to check them.
import { readFileSync } from "node:fs";
import { compileImage } from "../../host/abi/image_module.ts";
import { Board } from "../../host/board/board.ts";
import { parseBoard } from "../../host/board/load.ts";
import type { PanicReport } from "../../host/board/processor.ts";
import type { Trace } from "../../host/sim/trace.ts";
import { FIRMWARE_PATH } from "../build/firmware.ts";
import { BLOCK_BYTES } from "../iscsi/pdu.ts";

export const SIM_BOARD_KINDS = ["disks", "volumes", "replica"] as const;
export type SimBoardKind = (typeof SIM_BOARD_KINDS)[number];

/** A LUN as the run checks it: a whole disk (read back from its image after the run) or a volume (read back over iSCSI). */
export interface LunPlan {
  lun: number;
  volume: string;
  blocks: number;
  disk?: string; // a `disk` volume's disk, whose image the final check reads
  thin?: { chunkBlocks: number; poolChunks: number }; // a thin volume: the workload can fill its pool
  hotBase?: number; // where the hot blocks start (default 0)
}

/** A RAID-5 whose members the `member` fault pulls and replaces, or a replica whose copies it fails and restores. */
export interface RaidPlan {
  volume: string;
  members: readonly string[];
  spares: readonly string[];
  replica?: boolean;
}

export interface SimBoardPlan {
  kind: SimBoardKind;
  name: string;
  target: string;
  luns: readonly LunPlan[];
  raid: readonly RaidPlan[];
}

const DISK_MIB = 8; // the disks behind the `disk` LUNs
const R5_DISK_MIB = 4; // 1 MiB of RAID metadata and 3 MiB of data each: the RAID-5 LUN is 6 MiB
const POOL_DISK_MIB = 3; // 2 MiB of data each: a 4 MiB pool, of which the thin metadata takes 2 MiB: 32 chunks
const THIN_MIB = 8; // 128 virtual chunks over 32 pool chunks: the workload's cold writes fill the pool
const THIN_CHUNK_KIB = 64;
const R5_CHUNK_KIB = 16;
const REPLICA_DISK_MIB = 4; // 1 MiB of metadata and 3 MiB of data each: the replica LUN is 3 MiB
const REPLICA_CHUNK_KIB = 16; // 192 regions in its write-intent log
const MIB_BLOCKS = (1024 * 1024) / BLOCK_BYTES;

function targetOf(name: string): string {
  return `iqn.2026-11.org.wasm-iop:${name}`;
}

/** What each board is, for the run's checks. */
export function simBoardPlan(kind: SimBoardKind): SimBoardPlan {
  const diskLuns: LunPlan[] = ["host-disk0", "sp1-disk0", "sp2-disk0"].map((disk, lun) => ({ lun, volume: disk, disk, blocks: DISK_MIB * MIB_BLOCKS }));
  if (kind === "disks") return { kind, name: "sim-board", target: targetOf("sim-board"), luns: diskLuns, raid: [] };
  if (kind === "replica") {
    return {
      kind, name: "sim-replica", target: targetOf("sim-replica"),
      luns: [...diskLuns, { lun: 3, volume: "rep", blocks: (REPLICA_DISK_MIB - 1) * MIB_BLOCKS }],
      raid: [{ volume: "rep", members: ["sp1-disk1", "sp2-disk1"], spares: [], replica: true }],
    };
  }
  const thinChunkBlocks = (THIN_CHUNK_KIB * 1024) / BLOCK_BYTES;
  const poolDataMiB = 2 * (POOL_DISK_MIB - 1);
  const thinMetadataMiB = 2; // 1 MiB + one map block twice (8 KiB), rounded up to whole MiB (docs/volumes.md, "Sizes")
  return {
    kind, name: "sim-volumes", target: targetOf("sim-volumes"),
    luns: [
      ...diskLuns,
      { lun: 3, volume: "r5", blocks: 2 * (R5_DISK_MIB - 1) * MIB_BLOCKS },
      { lun: 4, volume: "thin0", blocks: THIN_MIB * MIB_BLOCKS, thin: { chunkBlocks: thinChunkBlocks, poolChunks: ((poolDataMiB - thinMetadataMiB) * MIB_BLOCKS) / thinChunkBlocks } },
    ],
    raid: [
      { volume: "r5", members: ["sp1-disk1", "sp2-disk1", "host-disk1"], spares: ["host-disk2"] },
      { volume: "pool5", members: ["sp1-disk2", "sp2-disk2", "host-disk3"], spares: [] },
    ],
  };
}

let firmware: WebAssembly.Module | undefined;

/** The release image, compiled once per process. */
export function firmwareModule(): WebAssembly.Module {
  firmware ??= compileImage(readFileSync(FIRMWARE_PATH));
  return firmware;
}

// The board file of each kind. sp2's controller is NVMe on both, the others virtio-scsi, so every run drives both
// DDMs and the faults land on both models (faults.ts). On `volumes` no controller holds two members of one volume (a spare included), so
// a controller fault (timeout, reset) fails at most one member of each RAID-5 and never breaks one by itself. The
// storage processors have one controller each and the host two: one more does not fit the memory their agents have
// at boot (256 KiB on a storage processor, 2 MiB on the host), and the processor fails at boot.
function boardFile(plan: SimBoardPlan, seed: number): object {
  const bridges = [{ slot: 1, model: "iop-bridge", processor: "sp1" }, { slot: 2, model: "iop-bridge", processor: "sp2" }];
  const disk = (name: string, sizeMiB: number) => ({ name, sizeMiB, blockSize: 512, backend: "memory" });
  if (plan.kind === "replica") {
    // Each copy on its own processor and controller model: a controller fault fails at most one copy.
    return {
      name: plan.name, seed,
      processors: [
        { name: "host", role: "host", ramMiB: 64, pci: [...bridges, { slot: 4, model: "nic" }, { slot: 8, model: "virtio-scsi", disks: ["host-disk0"] }] },
        { name: "sp1", role: "storage", ramMiB: 32, pci: [{ slot: 8, model: "virtio-scsi", disks: ["sp1-disk0", "sp1-disk1"] }] },
        { name: "sp2", role: "storage", ramMiB: 32, pci: [{ slot: 8, model: "nvme", disks: ["sp2-disk0", "sp2-disk1"] }] },
      ],
      disks: [
        ...["host-disk0", "sp1-disk0", "sp2-disk0"].map((name) => disk(name, DISK_MIB)),
        ...["sp1-disk1", "sp2-disk1"].map((name) => disk(name, REPLICA_DISK_MIB)),
      ],
      volumes: [
        { name: "host-disk0", type: "disk", disk: "host-disk0" },
        { name: "sp1-disk0", type: "disk", disk: "sp1-disk0" },
        { name: "sp2-disk0", type: "disk", disk: "sp2-disk0" },
        { name: "rep", type: "replica", copies: plan.raid[0]!.members, chunkKiB: REPLICA_CHUNK_KIB },
      ],
      targets: [{ name: plan.target, luns: plan.luns.map((l) => l.volume) }],
    };
  }
  if (plan.kind === "disks") {
    return {
      name: plan.name, seed,
      processors: [
        { name: "host", role: "host", ramMiB: 64, pci: [...bridges, { slot: 4, model: "nic" }, { slot: 8, model: "virtio-scsi", disks: ["host-disk0"] }] },
        { name: "sp1", role: "storage", ramMiB: 32, pci: [{ slot: 8, model: "virtio-scsi", disks: ["sp1-disk0"] }] },
        { name: "sp2", role: "storage", ramMiB: 32, pci: [{ slot: 8, model: "nvme", disks: ["sp2-disk0"] }] },
      ],
      disks: ["host-disk0", "sp1-disk0", "sp2-disk0"].map((name) => disk(name, DISK_MIB)),
    };
  }
  return {
    name: plan.name, seed,
    processors: [
      {
        name: "host", role: "host", ramMiB: 64, pci: [
          ...bridges, { slot: 4, model: "nic" }, { slot: 5, model: "xor-engine" },
          { slot: 8, model: "virtio-scsi", disks: ["host-disk0", "host-disk1"] }, { slot: 9, model: "virtio-scsi", disks: ["host-disk2", "host-disk3"] },
        ],
      },
      { name: "sp1", role: "storage", ramMiB: 32, pci: [{ slot: 8, model: "virtio-scsi", disks: ["sp1-disk0", "sp1-disk1", "sp1-disk2"] }] },
      { name: "sp2", role: "storage", ramMiB: 32, pci: [{ slot: 8, model: "nvme", disks: ["sp2-disk0", "sp2-disk1", "sp2-disk2"] }] },
    ],
    disks: [
      disk("host-disk0", DISK_MIB), disk("sp1-disk0", DISK_MIB), disk("sp2-disk0", DISK_MIB),
      ...["sp1-disk1", "sp2-disk1", "host-disk1", "host-disk2"].map((name) => disk(name, R5_DISK_MIB)),
      ...["sp1-disk2", "sp2-disk2", "host-disk3"].map((name) => disk(name, POOL_DISK_MIB)),
    ],
    volumes: [
      { name: "host-disk0", type: "disk", disk: "host-disk0" },
      { name: "sp1-disk0", type: "disk", disk: "sp1-disk0" },
      { name: "sp2-disk0", type: "disk", disk: "sp2-disk0" },
      { name: "r5", type: "raid5", members: plan.raid[0]!.members, chunkKiB: R5_CHUNK_KIB, spares: plan.raid[0]!.spares },
      { name: "pool5", type: "raid5", members: plan.raid[1]!.members, chunkKiB: R5_CHUNK_KIB },
      { name: "thin0", type: "thin", pool: "pool5", sizeMiB: THIN_MIB, chunkKiB: THIN_CHUNK_KIB },
    ],
    targets: [{ name: plan.target, luns: plan.luns.map((l) => l.volume) }],
  };
}

/** The NIC portal NBD sessions connect to on a simulation board with NBD (the iSCSI portal is 0). */
export const SIM_NBD_PORTAL = 1;
/** The NBD export of LUN n on a simulation board with NBD. */
export const simNbdExport = (lun: number): string => `lun${lun}`;

/** The board of `plan`: its description is fixed; the seed varies everything that happens on it. */
export function simulationBoard(plan: SimBoardPlan, seed: number, trace: Trace, onConsole: (processor: string, fd: 1 | 2, line: string) => void, onStop: (processor: string, report: PanicReport | undefined) => void, nbd = false): Board {
  const file = boardFile(plan, seed);
  // With NBD sessions: the iSCSI portal is listed (NIC portal 0), the NBD one follows (NIC portal SIM_NBD_PORTAL),
  // exporting each LUN's volume as "lunN". Without them the board stays as it was, configuration ROM and all.
  const withNbd = nbd ? { ...file, portals: [{ host: "127.0.0.1", port: 3260 }], nbd: { exports: plan.luns.map((l) => ({ name: simNbdExport(l.lun), volume: l.volume })) } } : file;
  const spec = parseBoard(withNbd, `${plan.name}.json`);
  return new Board({ spec, firmware: firmwareModule(), trace, onConsole, onStop });
}
