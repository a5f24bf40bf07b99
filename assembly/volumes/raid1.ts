// RAID 1: every member holds every block, after its metadata area. Writes go to every member that has not failed;
// a read goes to one (chosen by chunk, to spread them) and to another when that one fails.
import { Extent } from "./extent";
import { MEMBERS_MAX, Volume } from "./volume";
import { raidAreaBlocks } from "./raid_area";

export function raid1CapacityBlocks(v: Volume): u64 { return raidAreaBlocks(v); }

/** The part of [lba, lba + blocks) inside lba's chunk on member `member`. */
export function raid1Map(v: Volume, member: u32, lba: u64, blocks: u64, into: Extent): void {
  const chunk = <u64>v.chunkBlocks;
  const m = v.member(member);
  into.member = member;
  into.processor = m.processor;
  into.disk = m.disk;
  into.lba = v.metadataBlocks + lba;
  into.blocks = min(blocks, chunk - lba % chunk);
}

/** The member a read of lba's chunk goes to: by chunk number, skipping failed members; MEMBERS_MAX when none is left. */
export function raid1ReadMember(v: Volume, lba: u64, notMask: u32 = 0): u32 {
  const n = v.memberCount;
  const first = <u32>((lba / <u64>v.chunkBlocks) % <u64>n);
  const avoid = v.failedMask() | notMask;
  for (let i: u32 = 0; i < n; i++) {
    const member = (first + i) % n;
    if ((avoid & ((<u32>1) << member)) == 0) return member;
  }
  return MEMBERS_MAX;
}
