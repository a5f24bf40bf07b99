// RAID 5, left-symmetric (the md default): in stripe row r of n members, the parity chunk is on member
// n - 1 - r % n and data chunk j (0 ≤ j < n - 1) on member (parity + 1 + j) % n; every chunk is at
// metadataBlocks + r * chunk on its member. One failed member: reads of it reconstruct from the others, writes go on.
import { Extent } from "./extent";
import { raidAreaBlocks } from "./raid_area";
import { Volume } from "./volume";

export function raid5CapacityBlocks(v: Volume): u64 {
  const chunk = <u64>v.chunkBlocks;
  return <u64>(v.memberCount - 1) * (raidAreaBlocks(v) / chunk * chunk);
}

/** Blocks of data in one stripe row. */
@inline export function raid5RowBlocks(v: Volume): u64 { return <u64>(v.memberCount - 1) * <u64>v.chunkBlocks; }

export function raid5ParityMember(v: Volume, row: u64): u32 {
  return v.memberCount - 1 - <u32>(row % <u64>v.memberCount);
}

/** The member holding data chunk `j` of `row`. */
export function raid5DataMember(v: Volume, row: u64, j: u32): u32 {
  return (raid5ParityMember(v, row) + 1 + j) % v.memberCount;
}

/** Which data chunk of its row `member` holds (n - 1 for the parity member). */
export function raid5DataIndex(v: Volume, row: u64, member: u32): u32 {
  return (member + v.memberCount - raid5ParityMember(v, row) - 1) % v.memberCount;
}

/** The LBA on any member of `offset` blocks into row `row`'s chunk. */
export function raid5MemberLba(v: Volume, row: u64, offset: u64): u64 {
  return v.metadataBlocks + row * <u64>v.chunkBlocks + offset;
}

/** The part of [lba, lba + blocks) inside lba's data chunk: its member and the LBA there. */
export function raid5Map(v: Volume, lba: u64, blocks: u64, into: Extent): void {
  const chunk = <u64>v.chunkBlocks;
  const row = lba / raid5RowBlocks(v);
  const inRow = lba % raid5RowBlocks(v);
  const member = raid5DataMember(v, row, <u32>(inRow / chunk));
  const m = v.member(member);
  into.member = member;
  into.processor = m.processor;
  into.disk = m.disk;
  into.lba = raid5MemberLba(v, row, inRow % chunk);
  into.blocks = min(blocks, chunk - inRow % chunk);
}
