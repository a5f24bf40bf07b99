// The capacity rules of volumes (docs/volumes.md, "Board file"): how much of each member a RAID volume uses, how
// large a thin volume's metadata is, and what each volume offers to the LUN or volume above it. The loader refuses
// a board whose sizes break these rules, and `wasm-iop inventory` checks the firmware's volumes against them. The
// firmware computes the same from the configuration ROM's volume records (assembly/volumes/, issue 16): the one rule
// stands on both sides of the board ABI, so a test is to compare the two once the firmware's side exists.
import type { DiskSpec, RaidVolumeSpec, VolumeSpec } from "./load.ts";

export const MIB_BYTES = 1024 * 1024;
export const KIB_BYTES = 1024;
/** Each RAID member's first MiB holds the volume's metadata (superblock, dirty-stripe bitmap), never data. */
export const RAID_METADATA_BYTES = MIB_BYTES;
/** A thin volume's metadata on its pool: this (the superblock's area), then its chunk map ... */
export const THIN_METADATA_BASE_BYTES = MIB_BYTES;
/** ... in map blocks of this size, each holding a 32-byte header and 4-byte entries, one per virtual chunk ... */
export const THIN_MAP_BLOCK_BYTES = 4096;
export const THIN_MAP_ENTRIES_PER_BLOCK = (THIN_MAP_BLOCK_BYTES - 32) / 4; // 1016
/** ... each map block twice (a torn write of one copy leaves the other) ... */
export const THIN_MAP_COPIES = 2;
/** ... rounded up to whole MiB, so that the first data chunk starts on a MiB boundary. */
export const THIN_METADATA_ALIGN_BYTES = MIB_BYTES;

/**
 * The data area of each member of a RAID volume whose smallest member holds `memberBytesMin`: what follows the
 * metadata, in whole stripe units of `chunkBytes` (a partial stripe unit at the end is not used). 0 when not even
 * one stripe unit fits, which the loader refuses.
 */
export function raidDataAreaBytes(memberBytesMin: number, chunkBytes: number): number {
  const afterMetadataBytes = memberBytesMin - RAID_METADATA_BYTES;
  if (afterMetadataBytes < chunkBytes) return 0;
  return Math.floor(afterMetadataBytes / chunkBytes) * chunkBytes;
}

/** What a RAID volume offers: every member's data area (raid0), one (raid1), all but one, for parity (raid5). */
export function raidCapacityBytes(type: RaidVolumeSpec["type"], memberCount: number, dataAreaBytes: number): number {
  switch (type) {
    case "raid0": return memberCount * dataAreaBytes;
    case "raid1":
    case "replica": return dataAreaBytes;
    case "raid5": return (memberCount - 1) * dataAreaBytes;
  }
}

/** The chunks a thin volume of `virtualBytes` is divided into: a partial last chunk counts as one. */
export function thinVirtualChunkCount(virtualBytes: number, chunkBytes: number): number {
  return Math.ceil(virtualBytes / chunkBytes);
}

/**
 * A thin volume's metadata on its pool: the base, then both copies of every map block (1 016 virtual chunks each),
 * rounded up to whole MiB (assembly/volumes/thin.ts computes the same; docs/volumes.md, "On-disk formats").
 */
export function thinMetadataBytes(virtualBytes: number, chunkBytes: number): number {
  const mapBlocks = Math.ceil(thinVirtualChunkCount(virtualBytes, chunkBytes) / THIN_MAP_ENTRIES_PER_BLOCK);
  const rawBytes = THIN_METADATA_BASE_BYTES + mapBlocks * THIN_MAP_BLOCK_BYTES * THIN_MAP_COPIES;
  return Math.ceil(rawBytes / THIN_METADATA_ALIGN_BYTES) * THIN_METADATA_ALIGN_BYTES;
}

/** The chunks a pool of `poolBytes` can hand out after the thin volume's metadata; 0 when not even one fits. */
export function thinPoolChunkCount(poolBytes: number, virtualBytes: number, chunkBytes: number): number {
  const afterMetadataBytes = poolBytes - thinMetadataBytes(virtualBytes, chunkBytes);
  return afterMetadataBytes < chunkBytes ? 0 : Math.floor(afterMetadataBytes / chunkBytes);
}

/**
 * What `volume` offers to the LUN or volume above it, in bytes. A thin volume offers its virtual size whatever its
 * pool holds. `disks` and `volumes` resolve the names it uses (a thin volume's pool is an earlier volume); the
 * board must have passed the loader's reference checks.
 */
export function volumeCapacityBytes(volume: VolumeSpec, disks: readonly DiskSpec[], volumes: readonly VolumeSpec[]): number {
  switch (volume.type) {
    case "disk": return diskBytes(disk(volume.disk, disks));
    case "raid0":
    case "raid1":
    case "raid5":
    case "replica": {
      const memberBytesMin = Math.min(...volume.members.map((name) => diskBytes(disk(name, disks))));
      return raidCapacityBytes(volume.type, volume.members.length, raidDataAreaBytes(memberBytesMin, volume.chunkKiB * KIB_BYTES));
    }
    case "thin": return volume.sizeMiB * MIB_BYTES;
  }
}

/** The logical block size `volume` reports: its disks' (the loader checks a RAID volume's disks agree), or its pool's. */
export function volumeBlockSizeBytes(volume: VolumeSpec, disks: readonly DiskSpec[], volumes: readonly VolumeSpec[]): number {
  // A thin volume's pool is an earlier volume that is not thin, so this takes at most one step down.
  const base = volume.type === "thin" ? volumes.find((v) => v.name === volume.pool) : volume;
  if (base === undefined || base.type === "thin") throw new RangeError(`volume ${volume.name}: no pool ${JSON.stringify(volume.type === "thin" ? volume.pool : "")}`);
  return disk(base.type === "disk" ? base.disk : base.members[0]!, disks).blockSize;
}

export function diskBytes(spec: DiskSpec): number {
  return spec.sizeMiB * MIB_BYTES;
}

function disk(name: string, disks: readonly DiskSpec[]): DiskSpec {
  const found = disks.find((d) => d.name === name);
  if (found === undefined) throw new RangeError(`no disk ${JSON.stringify(name)}`);
  return found;
}
