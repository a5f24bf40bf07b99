// The thin volume's on-disk records (docs/volumes.md, "On-disk formats"), little-endian, each THIN_MAP_BLOCK_BYTES
// long and checked by a 64-bit FNV-1a over its 8-byte words with the checksum field read as zero.
// Superblock: |0 magic u64 "WIOPTHIN"|8 version u32|12 blockSizeBytes u32|16 generation u64|24 chunkBytes u32|
//   |28 mapBlocks u32|32 virtualBytes u64|40 poolChunks u64|48 metadataBytes u64|56 checksum u64|64- zero|
// Map block: |0 magic u32 "TMAP"|4 version u16|6 copy u16|8 index u32|12 entryCount u32|16 generation u64|
//   |24 checksum u64|32 entries u32 × THIN_MAP_ENTRIES_PER_BLOCK| (entry: 0 unmapped, else pool chunk + 1)
import { THIN_MAP_BLOCK_BYTES, THIN_MAP_ENTRIES_PER_BLOCK, THIN_MAP_HEADER_BYTES } from "./thin";

export const THIN_SUPER_MAGIC: u64 = 0x4e49_4854_504f_4957; // "WIOPTHIN" in memory order
export const THIN_MAP_MAGIC: u32 = 0x5041_4d54; // "TMAP"
export const THIN_FORMAT_VERSION: u32 = 1;

const AT_SUPER_MAGIC: usize = 0;
const AT_SUPER_VERSION: usize = 8;
const AT_SUPER_BLOCK_SIZE: usize = 12;
const AT_SUPER_GENERATION: usize = 16;
const AT_SUPER_CHUNK_BYTES: usize = 24;
const AT_SUPER_MAP_BLOCKS: usize = 28;
const AT_SUPER_VIRTUAL_BYTES: usize = 32;
const AT_SUPER_POOL_CHUNKS: usize = 40;
const AT_SUPER_METADATA_BYTES: usize = 48;
const AT_SUPER_CHECKSUM: usize = 56;

const AT_MAP_MAGIC: usize = 0;
const AT_MAP_VERSION: usize = 4;
const AT_MAP_COPY: usize = 6;
const AT_MAP_INDEX: usize = 8;
const AT_MAP_ENTRY_COUNT: usize = 12;
const AT_MAP_GENERATION: usize = 16;
const AT_MAP_CHECKSUM: usize = 24;

@inline export function superMagic(at: usize): u64 { return load<u64>(at + AT_SUPER_MAGIC); }
@inline export function superVersion(at: usize): u32 { return load<u32>(at + AT_SUPER_VERSION); }
@inline export function superBlockSizeBytes(at: usize): u32 { return load<u32>(at + AT_SUPER_BLOCK_SIZE); }
@inline export function superGeneration(at: usize): u64 { return load<u64>(at + AT_SUPER_GENERATION); }
@inline export function superChunkBytes(at: usize): u32 { return load<u32>(at + AT_SUPER_CHUNK_BYTES); }
@inline export function superMapBlocks(at: usize): u32 { return load<u32>(at + AT_SUPER_MAP_BLOCKS); }
@inline export function superVirtualBytes(at: usize): u64 { return load<u64>(at + AT_SUPER_VIRTUAL_BYTES); }
@inline export function superPoolChunks(at: usize): u64 { return load<u64>(at + AT_SUPER_POOL_CHUNKS); }
@inline export function superMetadataBytes(at: usize): u64 { return load<u64>(at + AT_SUPER_METADATA_BYTES); }

@inline export function mapMagic(at: usize): u32 { return load<u32>(at + AT_MAP_MAGIC); }
@inline export function mapVersion(at: usize): u32 { return load<u16>(at + AT_MAP_VERSION); }
@inline export function mapCopy(at: usize): u32 { return load<u16>(at + AT_MAP_COPY); }
@inline export function mapIndex(at: usize): u32 { return load<u32>(at + AT_MAP_INDEX); }
@inline export function mapEntryCount(at: usize): u32 { return load<u32>(at + AT_MAP_ENTRY_COUNT); }
@inline export function mapGeneration(at: usize): u64 { return load<u64>(at + AT_MAP_GENERATION); }
@inline export function mapEntry(at: usize, i: u32): u32 {
  assert(i < THIN_MAP_ENTRIES_PER_BLOCK, "map entry out of range");
  return load<u32>(at + THIN_MAP_HEADER_BYTES + <usize>i * 4);
}
@inline export function mapSetEntry(at: usize, i: u32, value: u32): void {
  assert(i < THIN_MAP_ENTRIES_PER_BLOCK, "map entry out of range");
  store<u32>(at + THIN_MAP_HEADER_BYTES + <usize>i * 4, value);
}

/** FNV-1a, 64 bits, over the record's 8-byte words, the word at `checksumAt` read as zero. */
export function thinChecksum(at: usize, checksumAt: usize): u64 {
  let h: u64 = 0xcbf2_9ce4_8422_2325;
  for (let i: usize = 0; i < <usize>THIN_MAP_BLOCK_BYTES; i += 8) {
    const word = i == checksumAt ? <u64>0 : load<u64>(at + i);
    h = (h ^ word) * 0x0000_0100_0000_01b3;
  }
  return h;
}

/** Writes a superblock into the THIN_MAP_BLOCK_BYTES at `at`. */
export function superWrite(at: usize, blockSizeBytes: u32, chunkBytes: u32, mapBlocks: u32, virtualBytes: u64,
  poolChunks: u64, metadataBytes: u64, generation: u64): void {
  memory.fill(at, 0, THIN_MAP_BLOCK_BYTES);
  store<u64>(at + AT_SUPER_MAGIC, THIN_SUPER_MAGIC);
  store<u32>(at + AT_SUPER_VERSION, THIN_FORMAT_VERSION);
  store<u32>(at + AT_SUPER_BLOCK_SIZE, blockSizeBytes);
  store<u64>(at + AT_SUPER_GENERATION, generation);
  store<u32>(at + AT_SUPER_CHUNK_BYTES, chunkBytes);
  store<u32>(at + AT_SUPER_MAP_BLOCKS, mapBlocks);
  store<u64>(at + AT_SUPER_VIRTUAL_BYTES, virtualBytes);
  store<u64>(at + AT_SUPER_POOL_CHUNKS, poolChunks);
  store<u64>(at + AT_SUPER_METADATA_BYTES, metadataBytes);
  store<u64>(at + AT_SUPER_CHECKSUM, thinChecksum(at, AT_SUPER_CHECKSUM));
}

/** The superblock at `at` has its magic, version and checksum. */
export function superValid(at: usize): bool {
  return superMagic(at) == THIN_SUPER_MAGIC && superVersion(at) == THIN_FORMAT_VERSION
    && load<u64>(at + AT_SUPER_CHECKSUM) == thinChecksum(at, AT_SUPER_CHECKSUM);
}

/** Every byte of the THIN_MAP_BLOCK_BYTES at `at` is zero (a blank pool). */
export function recordBlank(at: usize): bool {
  for (let i: usize = 0; i < <usize>THIN_MAP_BLOCK_BYTES; i += 8) if (load<u64>(at + i) != 0) return false;
  return true;
}

/** Seals a map block whose entries are in place: the header, then the checksum. */
export function mapSeal(at: usize, index: u32, copy: u32, entryCount: u32, generation: u64): void {
  memory.fill(at, 0, THIN_MAP_HEADER_BYTES);
  store<u32>(at + AT_MAP_MAGIC, THIN_MAP_MAGIC);
  store<u16>(at + AT_MAP_VERSION, <u16>THIN_FORMAT_VERSION);
  store<u16>(at + AT_MAP_COPY, <u16>copy);
  store<u32>(at + AT_MAP_INDEX, index);
  store<u32>(at + AT_MAP_ENTRY_COUNT, entryCount);
  store<u64>(at + AT_MAP_GENERATION, generation);
  store<u64>(at + AT_MAP_CHECKSUM, thinChecksum(at, AT_MAP_CHECKSUM));
}

/** The map block copy at `at` is whole: magic, version, checksum, and the index and entry count expected. */
export function mapValid(at: usize, index: u32, entryCount: u32): bool {
  return mapMagic(at) == THIN_MAP_MAGIC && mapVersion(at) == THIN_FORMAT_VERSION && mapIndex(at) == index
    && mapEntryCount(at) == entryCount && load<u64>(at + AT_MAP_CHECKSUM) == thinChecksum(at, AT_MAP_CHECKSUM);
}
