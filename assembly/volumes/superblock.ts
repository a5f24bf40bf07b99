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
// The fields' offsets, as drawn above.
const AT_MAGIC: usize = 0;
const AT_VERSION: usize = 4;
const AT_MEMBER: usize = 6;
const AT_MEMBER_COUNT: usize = 7;
const AT_TYPE: usize = 8;
const AT_CHUNK_BYTES: usize = 12;
const AT_VOLUME_ID: usize = 16;
const AT_GENERATION: usize = 24;
const AT_FAILED_MASK: usize = 32;
const AT_REBUILD_MEMBER: usize = 36;
const AT_REBUILD_ROW: usize = 40;
const AT_REBUILD_WINDOW: usize = 48;
const AT_CHECKSUM: usize = 508;
if (<u32>AT_CHECKSUM + 4 != SUPERBLOCK_BYTES) ERROR("superblock: the checksum ends it");

@inline export function superblockMagic(at: usize): u32 { return load<u32>(at, AT_MAGIC); }
@inline export function superblockVersion(at: usize): u16 { return load<u16>(at, AT_VERSION); }
@inline export function superblockMember(at: usize): u32 { return load<u8>(at, AT_MEMBER); }
@inline export function superblockMemberCount(at: usize): u32 { return load<u8>(at, AT_MEMBER_COUNT); }
@inline export function superblockType(at: usize): u32 { return load<u8>(at, AT_TYPE); }
@inline export function superblockChunkBytes(at: usize): u32 { return load<u32>(at, AT_CHUNK_BYTES); }
@inline export function superblockVolumeId(at: usize): u64 { return load<u64>(at, AT_VOLUME_ID); }
@inline export function superblockGeneration(at: usize): u64 { return load<u64>(at, AT_GENERATION); }
@inline export function superblockFailedMask(at: usize): u32 { return load<u32>(at, AT_FAILED_MASK); }
@inline export function superblockRebuildMember(at: usize): u32 { return load<u8>(at, AT_REBUILD_MEMBER); }
@inline export function superblockRebuildRow(at: usize): u64 { return load<u64>(at, AT_REBUILD_ROW); }
@inline export function superblockRebuildWindow(at: usize): u32 { return load<u32>(at, AT_REBUILD_WINDOW); }

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
  for (let i: u32 = 0; i < AT_CHECKSUM; i++) h = (h ^ <u32>load<u8>(at + i)) * 0x0100_0193;
  return h;
}

/** Writes member `member`'s superblock of `v` at its current generation and rebuild state into `at`. */
export function superblockBuild(at: usize, v: Volume, member: u32): void {
  memory.fill(at, 0, SUPERBLOCK_BYTES);
  store<u32>(at, SUPERBLOCK_MAGIC, AT_MAGIC);
  store<u16>(at, SUPERBLOCK_VERSION, AT_VERSION);
  store<u8>(at, <u8>member, AT_MEMBER);
  store<u8>(at, <u8>v.memberCount, AT_MEMBER_COUNT);
  store<u8>(at, <u8>v.type, AT_TYPE);
  store<u32>(at, v.chunkBytes, AT_CHUNK_BYTES);
  store<u64>(at, volumeId(v), AT_VOLUME_ID);
  store<u64>(at, v.generation, AT_GENERATION);
  store<u32>(at, v.failedMask(), AT_FAILED_MASK);
  store<u8>(at, <u8>(v.rebuildMember < v.memberCount ? v.rebuildMember : SUPERBLOCK_REBUILD_NONE), AT_REBUILD_MEMBER);
  store<u64>(at, v.rebuildRow, AT_REBUILD_ROW);
  store<u32>(at, v.rebuildWindow, AT_REBUILD_WINDOW);
  store<u32>(at, checksum(at), AT_CHECKSUM);
}

/** A superblock of `v` for slot `member`, intact. */
export function superblockMatches(at: usize, v: Volume, member: u32): bool {
  return superblockMagic(at) == SUPERBLOCK_MAGIC && superblockVersion(at) == SUPERBLOCK_VERSION
    && load<u32>(at, AT_CHECKSUM) == checksum(at) && superblockVolumeId(at) == volumeId(v)
    && superblockMember(at) == member && superblockMemberCount(at) == v.memberCount;
}

/** Every byte zero: a disk never written (a new array, or a replacement). */
export function superblockBlank(at: usize): bool {
  for (let i: u32 = 0; i < SUPERBLOCK_BYTES; i += 8) if (load<u64>(at + i) != 0) return false;
  return true;
}
