// The volumes the configuration ROM defines (docs/hardware.md, "Configuration ROM"; docs/volumes.md), read at boot
// and assembled by the UMA once discovery knows which disks are there. Records, in volume order:
//   VolumeBegin  0x20  the name (1..31 bytes); the volume's number is the count of VolumeBegin records before it
//   VolumeLayout 0x21  |0 type u8 (0 disk, 1 raid0, 2 raid1, 3 raid5, 4 thin, 5 replica)|1 softThresholdPercent u8|2 -|4 chunkBytes u32|8 virtualBytes u64|
//   VolumeDisk   0x22  |0 disk index on its processor u32|4 the processor's name|  (a member, in member order)
//   VolumeMember 0x23  u32: a member volume (a thin volume's pool), an earlier one
//   VolumeSpare  0x24  as VolumeDisk: a hot spare
//   VolumeEnd    0x2f
//   VolumeRemoteDisk 0x50  a member on another board of the cluster (a replica's copy there; docs/volumes.md,
//                "Copies on two boards"): |0 disk index on that board's host processor u32|4 board id u16|
//                |6 physicalExponent u8|7 - u8|8 blocks u64|16 blockSize u32| (the geometry: no discovery sees it)
// A ROM without volume records (an older board) gets one disk volume per disk, in processor then disk order.
import { ConfigRomReader } from "../board/config_rom";
import { carve } from "../kernel/carve";
import { line } from "../kernel/console";
import { CLUSTER_NONE, routingTable } from "../cluster/routing_table";
import { LINKS_MAX, REMOTE_PROCESSOR_BASE } from "../fabric/limits";
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
  RemoteDisk = 0x50,
}

const LAYOUT_BYTES: u32 = 16;
const REF_NAME_BYTES: u32 = 32;
const REFS_PER_VOLUME: u32 = MEMBERS_MAX + SPARES_MAX;
const REF_BYTES: u32 = 4 + REF_NAME_BYTES; // |0 disk index u32|4 processor name, NUL-padded|
const REMOTE_DISK_BYTES: u32 = 20; // a VolumeRemoteDisk value
// Its fields (host/bus/config_rom.ts, remoteDiskRecord, writes them at the same CONFIG_REMOTE_DISK_AT_… offsets;
// test/unit/volumes/shared_constants.test.ts checks both): |0 disk index u32|4 board id u16|6 physicalExponent u8|
// |7 -|8 blocks u64|16 blockSize u32|.
const REMOTE_DISK_AT_INDEX: usize = 0;
const REMOTE_DISK_AT_BOARD_ID: usize = 4;
const REMOTE_DISK_AT_PHYSICAL_EXPONENT: usize = 6;
const REMOTE_DISK_AT_BLOCKS: usize = 8;
const REMOTE_DISK_AT_BLOCK_SIZE: usize = 16;
if (REMOTE_DISK_AT_BLOCK_SIZE + 4 != REMOTE_DISK_BYTES) ERROR("volumes: the remote disk record's last field ends it");
@inline function remoteDiskIndex(at: usize): u32 { return load<u32>(at, REMOTE_DISK_AT_INDEX); }
@inline function remoteDiskBoardId(at: usize): u32 { return <u32>load<u16>(at, REMOTE_DISK_AT_BOARD_ID); }
@inline function remoteDiskPhysicalExponent(at: usize): u32 { return <u32>load<u8>(at, REMOTE_DISK_AT_PHYSICAL_EXPONENT); }
@inline function remoteDiskBlocks(at: usize): u64 { return load<u64>(at, REMOTE_DISK_AT_BLOCKS); }
@inline function remoteDiskBlockSize(at: usize): u32 { return load<u32>(at, REMOTE_DISK_AT_BLOCK_SIZE); }

/** Finds a discovered disk by its processor's name and its index there; fills `into` (present) or answers false. */
export abstract class DiskFinder {
  abstract find(processorName: usize, nameBytes: u32, disk: u32, into: Member): bool;
  /** Fallback without volume records: the n-th disk discovered, in processor then disk order. */
  abstract nth(n: u32, into: Member): bool;
}

// Member and spare references as the ROM gives them, until discovery resolves them.
const refs: usize = carve(VOLUMES_MAX * REFS_PER_VOLUME * REF_BYTES, 4);
// Per member reference: 0, or 1 + a VolumeRemoteDisk's value (a member on another board).
const remotes: usize = carve(VOLUMES_MAX * MEMBERS_MAX * (4 + REMOTE_DISK_BYTES), 4);
let defined: u32 = 0; // volumes the ROM defined (0: the fallback)
let found: Member | null = null; // the fallback's scratch, made at boot

@inline function ref(volume: u32, slot: u32): usize { return refs + <usize>(volume * REFS_PER_VOLUME + slot) * REF_BYTES; }
@inline function remote(volume: u32, member: u32): usize { return remotes + <usize>(volume * MEMBERS_MAX + member) * (4 + REMOTE_DISK_BYTES); }

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
        if (!spare) store<u32>(remote(number, count), 0);
        if (spare) v.spareCount += 1;
        else v.memberCount += 1;
        break;
      }
      case VolumeRecord.RemoteDisk: {
        // Only a replica's copy may live on another board (the loader says so); the firmware takes it on any RAID
        // type alike, it is just a member whose processor is REMOTE_PROCESSOR_BASE + the board's index.
        if (v == null || length != REMOTE_DISK_BYTES || v.memberCount == MEMBERS_MAX) break;
        const at = remote(number, v.memberCount);
        store<u32>(at, 1);
        memory.copy(at + 4, value, REMOTE_DISK_BYTES);
        memory.fill(ref(number, v.memberCount), 0, REF_BYTES);
        v.memberCount += 1;
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
      for (let i: u32 = 0; i < v.memberCount; i++) {
        if (load<u32>(remote(n, i)) != 0) resolveRemote(remote(n, i) + 4, v.member(i));
        else resolve(finder, ref(n, i), v.member(i));
      }
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

// A member on another board: there when the routing table has that board (not this one) and the fabric reaches it;
// whether it answers is the CTA's to find out (its parts go to processor REMOTE_PROCESSOR_BASE + the board's index,
// and a board that is down fails it as a disk that is gone would).
function resolveRemote(at: usize, into: Member): void {
  const table = routingTable();
  const board = table.present ? table.boardIndexOfId(remoteDiskBoardId(at)) : CLUSTER_NONE;
  into.present = board != CLUSTER_NONE && board != table.thisBoard && REMOTE_PROCESSOR_BASE + board < LINKS_MAX;
  into.failed = !into.present;
  into.processor = into.present ? REMOTE_PROCESSOR_BASE + board : 0;
  into.disk = remoteDiskIndex(at);
  into.physicalExponent = remoteDiskPhysicalExponent(at);
  into.blockCount = remoteDiskBlocks(at);
  into.blockSizeBytes = remoteDiskBlockSize(at);
  if (!into.present) {
    line().s("volumes: a member on board id ").u32(remoteDiskBoardId(at)).s(" is not on another board of this board's routing table; it is missing").err();
  }
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
