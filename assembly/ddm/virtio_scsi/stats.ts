// What one virtio-scsi controller has done, beyond what every DDM counts (../block_stats.ts: there `submitted` counts
// the chains made available to the device, discovery commands and retries included), for the stats task and the
// tests. Counters only ever go up.
import { BLOCK_STATS_COUNT, blockStatGet, BlockStats } from "../block_stats";

export class VscsiStats extends BlockStats {
  retries: u32 = 0; // commands issued again after a UNIT ATTENTION
}

// Indexes for the tests' single accessor (test/firmware/ddm_probe.ts): BlockStat's, then these, in field order.
export enum VscsiStat {
  Retries = 11,
}
// @ts-ignore: ERROR is an AssemblyScript builtin
if (VscsiStat.Retries != BLOCK_STATS_COUNT) ERROR("virtio-scsi's counters follow BlockStat's");

export function vscsiStatGet(stats: VscsiStats, which: u32): u64 {
  if (which < BLOCK_STATS_COUNT) return blockStatGet(stats, which);
  switch (<i32>which) {
    case VscsiStat.Retries: return <u64>stats.retries;
    default: assert(false, "vscsi: unknown stat"); return 0;
  }
}
