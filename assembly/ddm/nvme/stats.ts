// What one NVMe controller has done, beyond what every DDM counts (../block_stats.ts), for the stats task, inventory
// and the tests. Counters only ever go up.
import { BLOCK_STATS_COUNT, blockStatGet, BlockStats } from "../block_stats";

export class NvmeStats extends BlockStats {
  aborts: u32 = 0; // ABORT commands sent for timed-out commands
  adminCommands: u64 = 0; // admin commands submitted
  prpLists: u64 = 0; // I/O commands whose PRP2 pointed at a PRP list
  sglCommands: u64 = 0; // I/O commands whose data went as an SGL (their segments did not fit PRP rules)
  disksInserted: u32 = 0; // empty slots found holding a disk after a Namespace Attribute Changed event
}

// Indexes for the tests' single accessor (test/firmware/ddm_probe.ts): BlockStat's, then these, in field order.
export enum NvmeStat {
  Aborts = 11,
  AdminCommands = 12,
  PrpLists = 13,
  SglCommands = 14,
  DisksInserted = 15,
}
// @ts-ignore: ERROR is an AssemblyScript builtin
if (NvmeStat.Aborts != BLOCK_STATS_COUNT) ERROR("NVMe's counters follow BlockStat's");

export function nvmeStatGet(stats: NvmeStats, which: u32): u64 {
  if (which < BLOCK_STATS_COUNT) return blockStatGet(stats, which);
  switch (<i32>which) {
    case NvmeStat.Aborts: return <u64>stats.aborts;
    case NvmeStat.AdminCommands: return stats.adminCommands;
    case NvmeStat.PrpLists: return stats.prpLists;
    case NvmeStat.SglCommands: return stats.sglCommands;
    case NvmeStat.DisksInserted: return <u64>stats.disksInserted;
    default: assert(false, "nvme: unknown stat"); return 0;
  }
}
