// The volumes the configuration ROM defines (docs/hardware.md, "Configuration ROM"; docs/volumes.md), read at boot
// and assembled by the UMA once discovery knows which disks are there. Records, in volume order:
//   VolumeBegin  0x20  the name (1..31 bytes); the volume's number is the count of VolumeBegin records before it
//   VolumeLayout 0x21  |0 type u8 (0 disk, 1 raid0, 2 raid1, 3 raid5, 4 thin, 5 replica)|1 softThresholdPercent u8|2 -|4 chunkBytes u32|8 virtualBytes u64|
//   VolumeDisk   0x22  |0 disk index on its processor u32|4 the processor's name|  (a member, in member order)
//   VolumeMember 0x23  u32: a member volume (a thin volume's pool), an earlier one
//   VolumeSpare  0x24  as VolumeDisk: a hot spare
//   VolumeEnd    0x2f
// A ROM without volume records (an older board) gets one disk volume per disk, in processor then disk order.
import { ConfigRomReader } from "../board/config_rom";
import { carve } from "../kernel/carve";
import { line } from "../kernel/console";
import { diskCapacityBlocks } from "./disk";
import { raid0CapacityBlocks } from "./raid0";
import { raid1CapacityBlocks } from "./raid1";
import { raid5CapacityBlocks } from "./raid5";
import { replicaCapacityBlocks } from "./replica";
import { raidMetadataBlocks } from "./raid_area";
import {
  Member, MEMBERS_MAX, SPARES_MAX, Volume, VOLUME_NAME_BYTES_MAX, volumeAt, volumeNext, volumesCount, VolumeState, VolumeType,
  VOLUMES_MAX,
} from "./volume";

export enum VolumeRecord {
  Begin = 0x20,
  Layout = 0x21,
  Disk = 0x22,
  Member = 0x23,
  Spare = 0x24,
  End = 0x2f,
}

const LAYOUT_BYTES: u32 = 16;
const REF_NAME_BYTES: u32 = 32;
const REFS_PER_VOLUME: u32 = MEMBERS_MAX + SPARES_MAX;
const REF_BYTES: u32 = 4 + REF_NAME_BYTES; // |0 disk index u32|4 processor name, NUL-padded|

/** Finds a discovered disk by its processor's name and its index there; fills `into` (present) or answers false. */
export abstract class DiskFinder {
  abstract find(processorName: usize, nameBytes: u32, disk: u32, into: Member): bool;
  /** Fallback without volume records: the n-th disk discovered, in processor then disk order. */
  abstract nth(n: u32, into: Member): bool;
}

// Member and spare references as the ROM gives them, until discovery resolves them.
const refs: usize = carve(VOLUMES_MAX * REFS_PER_VOLUME * REF_BYTES, 4);
let defined: u32 = 0; // volumes the ROM defined (0: the fallback)
let found: Member | null = null; // the fallback's scratch, made at boot

@inline function ref(volume: u32, slot: u32): usize { return refs + <usize>(volume * REFS_PER_VOLUME + slot) * REF_BYTES; }

/** Boot: defines the ROM's volumes (their geometry waits for volumesAssemble). Returns how many. */
export function volumesConfigure(romBase: u64): u32 {
  found = new Member();
  const rom = new ConfigRomReader(romBase, "volumes");
  if (!rom.present) return 0;
  let v: Volume | null = null;
  let number: u32 = 0;
  while (rom.next()) {
    const value = rom.value;
    const length = rom.lengthBytes;
    switch (<i32>rom.type) {
      case VolumeRecord.Begin: {
        v = volumeNext();
        if (v == null) { line().s("volumes: more than 16 in the configuration ROM; the rest ignored").err(); return defined; }
        number = volumesCount() - 1;
        v.nameBytes = min(length, VOLUME_NAME_BYTES_MAX);
        for (let i: u32 = 0; i < v.nameBytes; i++) unchecked(v.name[i] = load<u8>(value + i));
        defined += 1;
        break;
      }
      case VolumeRecord.Layout: {
        if (v == null || length != LAYOUT_BYTES) break;
        v.type = <VolumeType>min(load<u8>(value), <u8>VolumeType.Replica);
        v.softThresholdPercent = load<u8>(value, 1);
        v.chunkBytes = load<u32>(value, 4);
        v.virtualBytes = load<u64>(value, 8);
        break;
      }
      case VolumeRecord.Disk: case VolumeRecord.Spare: {
        if (v == null || length < 5 || length > 4 + REF_NAME_BYTES - 1) break;
        const spare = rom.type == VolumeRecord.Spare;
        const count = spare ? v.spareCount : v.memberCount;
        if (count == (spare ? SPARES_MAX : MEMBERS_MAX)) break;
        const at = ref(number, spare ? MEMBERS_MAX + count : count);
        memory.fill(at, 0, REF_BYTES);
        memory.copy(at, value, length);
        if (spare) v.spareCount += 1;
        else v.memberCount += 1;
        break;
      }
      case VolumeRecord.Member: {
        if (v != null && length == 4 && load<u32>(value) < number) v.poolVolume = load<u32>(value);
        break;
      }
      default: break; // the targets' records, or newer ones
    }
  }
  return defined;
}

/** After discovery: finds every member, sets each volume's geometry and state, and prints an inventory line each. */
export function volumesAssemble(finder: DiskFinder): void {
  if (defined == 0) {
    // An older ROM: every disk is a volume.
    const m = found!;
    for (let n: u32 = 0; n < VOLUMES_MAX && finder.nth(n, m); n++) {
      const v = volumeNext()!;
      v.type = VolumeType.Disk;
      v.memberCount = 1;
      v.member(0).set(m);
      v.nameBytes = 0;
    }
  } else {
    for (let n: u32 = 0; n < defined; n++) {
      const v = volumeAt(n);
      for (let i: u32 = 0; i < v.memberCount; i++) resolve(finder, ref(n, i), v.member(i));
      for (let i: u32 = 0; i < v.spareCount; i++) resolve(finder, ref(n, MEMBERS_MAX + i), unchecked(v.spares[i]));
    }
  }
  for (let n: u32 = 0; n < volumesCount(); n++) geometry(volumeAt(n));
}

function resolve(finder: DiskFinder, at: usize, into: Member): void {
  let nameBytes: u32 = 0;
  while (nameBytes < REF_NAME_BYTES && load<u8>(at + 4 + nameBytes) != 0) nameBytes += 1;
  into.present = finder.find(at + 4, nameBytes, load<u32>(at), into);
  into.failed = !into.present;
}

function geometry(v: Volume): void {
  if (v.type == VolumeType.Thin) {
    const pool = volumeAt(v.poolVolume);
    v.blockSizeBytes = pool.blockSizeBytes;
    v.physicalExponent = pool.physicalExponent;
    v.chunkBlocks = v.blockSizeBytes == 0 ? 0 : v.chunkBytes / v.blockSizeBytes;
    v.blockCount = v.blockSizeBytes == 0 ? 0 : v.virtualBytes / <u64>v.blockSizeBytes;
    v.state = pool.state == VolumeState.Failed ? VolumeState.Failed : VolumeState.Optimal;
    return;
  }
  // Block size and physical exponent from the first member present; a member that disagrees is treated as failed.
  let first: u32 = MEMBERS_MAX;
  for (let i: u32 = 0; i < v.memberCount; i++) if (v.member(i).present) { first = i; break; }
  if (first == MEMBERS_MAX) {
    v.state = VolumeState.Failed;
    v.blockCount = 0;
    return;
  }
  v.blockSizeBytes = v.member(first).blockSizeBytes;
  v.physicalExponent = v.member(first).physicalExponent;
  for (let i: u32 = 0; i < v.memberCount; i++) {
    const m = v.member(i);
    if (m.present && m.blockSizeBytes != v.blockSizeBytes) m.failed = true;
  }
  if (v.type == VolumeType.Disk) {
    v.chunkBlocks = 0;
    v.blockCount = diskCapacityBlocks(v);
  } else {
    v.chunkBlocks = v.chunkBytes / v.blockSizeBytes;
    v.metadataBlocks = raidMetadataBlocks(v.blockSizeBytes);
    v.blockCount = v.chunkBlocks == 0 ? 0
      : v.type == VolumeType.Raid0 ? raid0CapacityBlocks(v)
      : v.type == VolumeType.Raid1 ? raid1CapacityBlocks(v)
      : v.type == VolumeType.Replica ? replicaCapacityBlocks(v)
      : raid5CapacityBlocks(v);
  }
  v.state = stateOf(v);
}

/** What a volume's failed members leave of it. */
export function stateOf(v: Volume): VolumeState {
  const failed = v.failedCount();
  if (failed == 0) return VolumeState.Optimal;
  if (failed == 1 && v.rebuildMember < v.memberCount) return VolumeState.Rebuilding;
  const survives: u32 = v.type == VolumeType.Raid1 || v.type == VolumeType.Replica ? v.memberCount - 1 : v.type == VolumeType.Raid5 ? 1 : 0;
  return failed <= survives ? VolumeState.Degraded : VolumeState.Failed;
}
