// RAID 0: chunks dealt round-robin over the members, no redundancy. Chunk k of the volume is chunk k / n of member
// k % n, after the member's metadata area. Any member failing fails the volume.
import { Extent } from "./extent";
import { raidAreaBlocks } from "./raid_area";
import { Volume } from "./volume";

export function raid0CapacityBlocks(v: Volume): u64 {
  const chunk = <u64>v.chunkBlocks;
  return <u64>v.memberCount * (raidAreaBlocks(v) / chunk * chunk);
}

/** The part of [lba, lba + blocks) inside lba's chunk: its member and the LBA there. */
export function raid0Map(v: Volume, lba: u64, blocks: u64, into: Extent): void {
  const chunk = <u64>v.chunkBlocks;
  const k = lba / chunk;
  const offset = lba % chunk;
  const member = <u32>(k % <u64>v.memberCount);
  const m = v.member(member);
  into.member = member;
  into.processor = m.processor;
  into.disk = m.disk;
  into.lba = v.metadataBlocks + k / <u64>v.memberCount * chunk + offset;
  into.blocks = min(blocks, chunk - offset);
}
