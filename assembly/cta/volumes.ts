// The CTA's volume layer: LUN → volume → extents (processor, disk, LBA range). Today every volume is one whole disk
// (1:1); thin provisioning, RAID and volumes on other boards plug in here by resolving a volume range to extents.
import { FrameStatus } from "../board/frame";

export const VOLUMES_MAX: u32 = 16;

export class Volume {
  processor: u32 = 0;
  disk: u32 = 0; // the disk's index on its processor (the RTA's order)
  firstLba: u64 = 0; // where the extent starts on that disk
  blockCount: u64 = 0;
  blockSizeBytes: u32 = 0;
  physicalExponent: u32 = 0; // a physical block is 2^physicalExponent blocks (SBC-3 LBPPBE)
}

/** Where a request lands: the extent's processor and disk and the LBA there. */
export class Extent {
  processor: u32 = 0;
  disk: u32 = 0;
  lba: u64 = 0;
  blockSizeBytes: u32 = 0;
}

const volumes = new StaticArray<Volume>(VOLUMES_MAX);
let volumeCount: u32 = 0;

export function volumesInit(): void {
  for (let i: u32 = 0; i < VOLUMES_MAX; i++) unchecked(volumes[i] = new Volume());
}

/** Adds a volume over a whole disk; returns its LUN, or VOLUMES_MAX when the table is full. */
export function volumeAdd(processor: u32, disk: u32, blockCount: u64, blockSizeBytes: u32, physicalExponent: u32 = 0): u32 {
  if (volumeCount == VOLUMES_MAX) return VOLUMES_MAX;
  const v = unchecked(volumes[volumeCount]);
  v.processor = processor;
  v.disk = disk;
  v.firstLba = 0;
  v.blockCount = blockCount;
  v.blockSizeBytes = blockSizeBytes;
  v.physicalExponent = physicalExponent;
  volumeCount += 1;
  return volumeCount - 1;
}

export function volumesCount(): u32 { return volumeCount; }

export function volumeAt(lun: u32): Volume {
  assert(lun < volumeCount, "volume out of range");
  return unchecked(volumes[lun]);
}

/** Resolves [lba, lba + blockCount) of `lun` into `into`; NoDisk or IllegalRequest when it does not fit one extent. */
export function volumeResolve(lun: u32, lba: u64, blockCount: u64, into: Extent): FrameStatus {
  if (lun >= volumeCount) return FrameStatus.NoDisk;
  const v = unchecked(volumes[lun]);
  if (lba > v.blockCount || blockCount > v.blockCount - lba) return FrameStatus.IllegalRequest;
  into.processor = v.processor;
  into.disk = v.disk;
  into.lba = v.firstLba + lba;
  into.blockSizeBytes = v.blockSizeBytes;
  return FrameStatus.Ok;
}
