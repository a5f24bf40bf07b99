// The capacity rules of volumes (host/board/volume_geometry.ts), each from a worked example: a RAID member's data
// area after its 1 MiB of metadata in whole stripe units, what raid0, raid1 and raid5 offer from it, a thin volume's
// metadata (1 MiB plus 8 bytes per virtual chunk, rounded up to 1 MiB) and the chunks its pool can hand out.
import { describe, expect, it } from "vitest";
import type { DiskSpec, VolumeSpec } from "../../../host/board/load.ts";
import {
  raidCapacityBytes,
  raidDataAreaBytes,
  thinMetadataBytes,
  thinPoolChunkCount,
  thinVirtualChunkCount,
  volumeBlockSizeBytes,
  volumeCapacityBytes,
} from "../../../host/board/volume_geometry.ts";

const KiB = 1024;
const MiB = 1024 * 1024;

describe("RAID geometry", () => {
  it("keeps each member's first MiB for metadata and uses whole stripe units after it", () => {
    expect(raidDataAreaBytes(64 * MiB, 64 * KiB)).toBe(63 * MiB);
    // 1 MiB + 100 KiB leaves one 64 KiB stripe unit and 36 KiB that are not used.
    expect(raidDataAreaBytes(MiB + 100 * KiB, 64 * KiB)).toBe(64 * KiB);
  });

  it("gives no data area when not even one stripe unit fits after the metadata", () => {
    expect(raidDataAreaBytes(MiB + 64 * KiB - 1, 64 * KiB)).toBe(0);
    expect(raidDataAreaBytes(MiB, 4 * KiB)).toBe(0);
    expect(raidDataAreaBytes(MiB + 4 * KiB, 4 * KiB)).toBe(4 * KiB);
  });

  it("offers every member's area for raid0, one for raid1, all but one for raid5", () => {
    expect(raidCapacityBytes("raid0", 3, 63 * MiB)).toBe(189 * MiB);
    expect(raidCapacityBytes("raid1", 3, 63 * MiB)).toBe(63 * MiB);
    expect(raidCapacityBytes("raid5", 3, 63 * MiB)).toBe(126 * MiB);
  });
});

describe("thin geometry", () => {
  it("counts a partial last chunk as a chunk", () => {
    expect(thinVirtualChunkCount(256 * MiB, MiB)).toBe(256);
    expect(thinVirtualChunkCount(MiB, 768 * KiB)).toBe(2);
  });

  it("sizes the metadata as 1 MiB and two copies of each 4 KiB map block (1 016 chunks each) rounded up to 1 MiB", () => {
    expect(thinMetadataBytes(256 * MiB, MiB)).toBe(2 * MiB); // 256 entries: one map block, 8 KiB
    expect(thinMetadataBytes(128 * 1016 * MiB, 1 * MiB)).toBe(2 * MiB); // 128 map blocks, twice: exactly 1 MiB
    expect(thinMetadataBytes(128 * 1016 * MiB + 1, 1 * MiB)).toBe(3 * MiB); // one entry more: a 129th map block
  });

  it("hands out the pool's whole chunks after the metadata, none when even one does not fit", () => {
    expect(thinPoolChunkCount(126 * MiB, 256 * MiB, MiB)).toBe(124);
    expect(thinPoolChunkCount(3 * MiB, 256 * MiB, MiB)).toBe(1);
    expect(thinPoolChunkCount(3 * MiB - 1, 256 * MiB, MiB)).toBe(0);
  });
});

describe("volumeCapacityBytes", () => {
  const disk = (name: string, sizeMiB: number, blockSize: 512 | 4096 = 512): DiskSpec =>
    ({ name, sizeMiB, blockSize, physicalBlockSize: blockSize, backend: "memory" });
  const disks = [disk("a", 64), disk("b", 64), disk("c", 32), disk("d", 8, 4096)];
  const volumes: VolumeSpec[] = [
    { name: "d", type: "disk", disk: "d" },
    { name: "r5", type: "raid5", members: ["a", "b", "c"], chunkKiB: 64, spares: [] },
    { name: "thin0", type: "thin", pool: "r5", sizeMiB: 1024, chunkKiB: 1024, softThresholdPercent: undefined },
  ];

  it("gives a disk volume its disk, a RAID volume the rule over its smallest member, a thin volume its virtual size", () => {
    expect(volumeCapacityBytes(volumes[0]!, disks, volumes)).toBe(8 * MiB);
    expect(volumeCapacityBytes(volumes[1]!, disks, volumes)).toBe(2 * 31 * MiB); // the 32 MiB member sets the area
    expect(volumeCapacityBytes(volumes[2]!, disks, volumes)).toBe(1024 * MiB); // more than the pool: thin
  });

  it("gives each volume its disks' block size, a thin volume its pool's", () => {
    expect(volumes.map((v) => volumeBlockSizeBytes(v, disks, volumes))).toEqual([4096, 512, 512]);
  });
});
