// The RAID superblock: block 0 of every member's metadata area (the first RAID_METADATA_BYTES; docs/volumes.md,
// "On-disk formats"). Which volume and slot the disk belongs to, and the array's generation: the members whose
// superblock has the highest generation, and are not in its failed mask, hold current data. A blank or older disk
// is a replacement, rebuilt from the others. Little-endian, 512 bytes, FNV-1a 32 over bytes 0..507 at 508.
// |0 magic u32 "WRSB"|4 version u16|6 member u8|7 memberCount u8|8 type u8|9 -|10 -|12 chunkBytes u32|
// |16 volumeId u64|24 generation u64|32 failedMask u32|36 rebuildMember u8 (0xFF none)|37 -|40 rebuildRow u64|
// |48 rebuildWindow u32|52 - .. 508|508 checksum u32|
import { Volume } from "./volume";

export const SUPERBLOCK_MAGIC: u32 = 0x4253_5257; // "WRSB"
export const SUPERBLOCK_VERSION: u16 = 1;
export const SUPERBLOCK_BYTES: u32 = 512;
export const SUPERBLOCK_REBUILD_NONE: u32 = 0xff;
const CHECKSUM_OFFSET: u32 = 508;

@inline export function superblockMagic(at: usize): u32 { return load<u32>(at, 0); }
@inline export function superblockVersion(at: usize): u16 { return load<u16>(at, 4); }
@inline export function superblockMember(at: usize): u32 { return load<u8>(at, 6); }
@inline export function superblockMemberCount(at: usize): u32 { return load<u8>(at, 7); }
@inline export function superblockType(at: usize): u32 { return load<u8>(at, 8); }
@inline export function superblockChunkBytes(at: usize): u32 { return load<u32>(at, 12); }
@inline export function superblockVolumeId(at: usize): u64 { return load<u64>(at, 16); }
@inline export function superblockGeneration(at: usize): u64 { return load<u64>(at, 24); }
@inline export function superblockFailedMask(at: usize): u32 { return load<u32>(at, 32); }
@inline export function superblockRebuildMember(at: usize): u32 { return load<u8>(at, 36); }
@inline export function superblockRebuildRow(at: usize): u64 { return load<u64>(at, 40); }
@inline export function superblockRebuildWindow(at: usize): u32 { return load<u32>(at, 48); }

/** What identifies a volume on its disks: its name, type, member count and chunk. */
export function volumeId(v: Volume): u64 {
  let h: u64 = 0xcbf2_9ce4_8422_2325;
  for (let i: u32 = 0; i < v.nameBytes; i++) h = (h ^ <u64>unchecked(v.name[i])) * 0x100_0000_01b3;
  h = (h ^ <u64>v.type) * 0x100_0000_01b3;
  h = (h ^ <u64>v.memberCount) * 0x100_0000_01b3;
  return (h ^ <u64>v.chunkBytes) * 0x100_0000_01b3;
}

function checksum(at: usize): u32 {
  let h: u32 = 0x811c_9dc5;
  for (let i: u32 = 0; i < CHECKSUM_OFFSET; i++) h = (h ^ <u32>load<u8>(at + i)) * 0x0100_0193;
  return h;
}

/** Writes member `member`'s superblock of `v` at its current generation and rebuild state into `at`. */
export function superblockBuild(at: usize, v: Volume, member: u32): void {
  memory.fill(at, 0, SUPERBLOCK_BYTES);
  store<u32>(at, SUPERBLOCK_MAGIC, 0);
  store<u16>(at, SUPERBLOCK_VERSION, 4);
  store<u8>(at, <u8>member, 6);
  store<u8>(at, <u8>v.memberCount, 7);
  store<u8>(at, <u8>v.type, 8);
  store<u32>(at, v.chunkBytes, 12);
  store<u64>(at, volumeId(v), 16);
  store<u64>(at, v.generation, 24);
  store<u32>(at, v.failedMask(), 32);
  store<u8>(at, <u8>(v.rebuildMember < v.memberCount ? v.rebuildMember : SUPERBLOCK_REBUILD_NONE), 36);
  store<u64>(at, v.rebuildRow, 40);
  store<u32>(at, v.rebuildWindow, 48);
  store<u32>(at, checksum(at), CHECKSUM_OFFSET);
}

/** A superblock of `v` for slot `member`, intact. */
export function superblockMatches(at: usize, v: Volume, member: u32): bool {
  return superblockMagic(at) == SUPERBLOCK_MAGIC && superblockVersion(at) == SUPERBLOCK_VERSION
    && load<u32>(at, CHECKSUM_OFFSET) == checksum(at) && superblockVolumeId(at) == volumeId(v)
    && superblockMember(at) == member && superblockMemberCount(at) == v.memberCount;
}

/** Every byte zero: a disk never written (a new array, or a replacement). */
export function superblockBlank(at: usize): bool {
  for (let i: u32 = 0; i < SUPERBLOCK_BYTES; i += 8) if (load<u64>(at + i) != 0) return false;
  return true;
}
