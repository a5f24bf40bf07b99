// What RAID levels share: each member's data area, after RAID_METADATA_BYTES, set by the smallest member present.
import { RAID_METADATA_BYTES, Volume } from "./volume";

/** Blocks of data area per member: the smallest present member less its metadata; 0 when none fits a chunk. */
export function raidAreaBlocks(v: Volume): u64 {
  let smallest: u64 = u64.MAX_VALUE;
  for (let i: u32 = 0; i < v.memberCount; i++) {
    const m = v.member(i);
    if (m.present && m.blockCount < smallest) smallest = m.blockCount;
  }
  const meta = v.metadataBlocks;
  if (smallest == u64.MAX_VALUE || smallest < meta + <u64>v.chunkBlocks) return 0;
  return smallest - meta;
}

export function raidMetadataBlocks(blockSizeBytes: u32): u64 { return RAID_METADATA_BYTES / <u64>blockSizeBytes; }
