// A thin volume's geometry on its pool (docs/volumes.md, "On-disk formats"): the pool starts with the metadata, a
// superblock area of THIN_METADATA_BASE_BYTES and then the chunk map, THIN_MAP_BLOCK_BYTES per map block and two
// copies of each (a torn write of one leaves the other); the whole metadata rounded up to THIN_METADATA_ALIGN_BYTES.
// Data chunks follow it. The host's board loader computes the same (host/board/volume_geometry.ts; a test checks).
//   byte 0                      superblock copy 0 (THIN_MAP_BLOCK_BYTES), copy 1 right after it
//   THIN_METADATA_BASE_BYTES    map block 0 copy 0, copy 1, map block 1 copy 0, copy 1, …
//   metadataBytes               pool chunk 0, 1, … (chunkBytes each)
import { Volume, volumeAt } from "./volume";

export const THIN_METADATA_BASE_BYTES: u64 = 1 << 20;
export const THIN_METADATA_ALIGN_BYTES: u64 = 1 << 20;
export const THIN_MAP_BLOCK_BYTES: u32 = 4096;
export const THIN_MAP_HEADER_BYTES: u32 = 32;
export const THIN_MAP_ENTRY_BYTES: u32 = 4;
export const THIN_MAP_ENTRIES_PER_BLOCK: u32 = (THIN_MAP_BLOCK_BYTES - THIN_MAP_HEADER_BYTES) / THIN_MAP_ENTRY_BYTES; // 1016
export const THIN_MAP_COPIES: u32 = 2;
export const THIN_SUPERBLOCK_AREA_BYTES: u32 = THIN_MAP_BLOCK_BYTES * 2; // both superblock copies
export const THIN_CHUNK_NONE: u32 = 0xffff_ffff;

/** Virtual chunks: a partial last chunk counts as one. */
export function thinVirtualChunks(v: Volume): u32 {
  if (v.chunkBytes == 0) return 0;
  return <u32>((v.virtualBytes + <u64>v.chunkBytes - 1) / <u64>v.chunkBytes);
}

export function thinMapBlocks(v: Volume): u32 {
  return (thinVirtualChunks(v) + THIN_MAP_ENTRIES_PER_BLOCK - 1) / THIN_MAP_ENTRIES_PER_BLOCK;
}

/** Bytes of metadata at the start of the pool: the base, both copies of every map block, rounded up to whole MiB. */
export function thinMetadataBytes(v: Volume): u64 {
  const raw = THIN_METADATA_BASE_BYTES + <u64>thinMapBlocks(v) * <u64>(THIN_MAP_BLOCK_BYTES * THIN_MAP_COPIES);
  return (raw + THIN_METADATA_ALIGN_BYTES - 1) / THIN_METADATA_ALIGN_BYTES * THIN_METADATA_ALIGN_BYTES;
}

/** Pool chunks after the metadata (0 when none fits or the pool has no size yet). */
export function thinPoolChunks(v: Volume): u64 {
  const pool = volumeAt(v.poolVolume);
  const poolBytes = pool.blockCount * <u64>pool.blockSizeBytes;
  const meta = thinMetadataBytes(v);
  if (v.chunkBytes == 0 || poolBytes < meta + <u64>v.chunkBytes) return 0;
  return (poolBytes - meta) / <u64>v.chunkBytes;
}

/** The pool chunks the volume can ever use: no more than it has virtual chunks (each maps at most one). */
export function thinUsableChunks(v: Volume): u32 {
  return <u32>min(thinPoolChunks(v), <u64>thinVirtualChunks(v));
}

/** The pool's block size allows the format: whole blocks in a map block. */
export function thinBlockSizeFits(v: Volume): bool {
  const b = v.blockSizeBytes;
  return b != 0 && b <= THIN_MAP_BLOCK_BYTES && THIN_MAP_BLOCK_BYTES % b == 0 && v.chunkBytes % b == 0;
}

/** Pool LBA of map block `index`'s copy `copy`. */
export function thinMapCopyLba(v: Volume, index: u32, copy: u32): u64 {
  const byte = THIN_METADATA_BASE_BYTES + (<u64>index * <u64>THIN_MAP_COPIES + <u64>copy) * <u64>THIN_MAP_BLOCK_BYTES;
  return byte / <u64>v.blockSizeBytes;
}

/** Pool LBA of the first block of pool chunk `chunk`. */
export function thinChunkLba(v: Volume, chunk: u32): u64 {
  return (thinMetadataBytes(v) + <u64>chunk * <u64>v.chunkBytes) / <u64>v.blockSizeBytes;
}

/** Blocks in a map block (or a superblock copy). */
@inline export function thinMapBlockBlocks(v: Volume): u32 { return THIN_MAP_BLOCK_BYTES / v.blockSizeBytes; }
