// The volume table: what every LUN is built from. A volume is a disk, a RAID set over disks on any processors, a
// replica (two copies on two processors), or a thin volume over another volume (docs/volumes.md). The configuration ROM defines them (config.ts); the UMA
// assembles them from the disks it discovered; the SCSI target reads their geometry; the CTA resolves I/O through
// them (raid0.ts, raid1.ts, raid5.ts) and records member failures. Carved at boot: VOLUMES_MAX volumes of
// MEMBERS_MAX members and SPARES_MAX spares each.

export const VOLUMES_MAX: u32 = 16;
export const MEMBERS_MAX: u32 = 8;
export const SPARES_MAX: u32 = 4;
export const VOLUME_NAME_BYTES_MAX: u32 = 31;
// Every RAID member keeps its first MiB for metadata (superblock, dirty-stripe bitmap): data starts after it. The
// host's board loader computes capacities with the same number (host/board/volume_geometry.ts; a test checks).
export const RAID_METADATA_BYTES: u64 = 1 << 20;

export enum VolumeType {
  Disk = 0,
  Raid0 = 1,
  Raid1 = 2,
  Raid5 = 3,
  Thin = 4,
  Replica = 5, // two copies on two processors, each write acknowledged once both have it on the medium (replica.ts)
}

export enum VolumeState {
  Optimal = 0,
  Degraded = 1, // a member failed; the data is still all there
  Rebuilding = 2, // degraded, with a spare being written
  Failed = 3, // more members failed than the type survives (or the disk of a disk volume is missing): I/O fails
}

/** One member disk (or spare): where it is and whether it still answers. */
export class Member {
  processor: u32 = 0; // the processor index (the UMA's order)
  disk: u32 = 0; // the disk's index on that processor (its RTA's order)
  blockCount: u64 = 0;
  blockSizeBytes: u32 = 0;
  physicalExponent: u32 = 0;
  present: bool = false; // found at discovery (or put into its empty slot since: raid_metadata.ts, probe)
  failed: bool = false; // missing, or its device gave up
  slot: bool = false; // not present, but its processor and disk index are known: an empty slot, probed for a disk

  set(other: Member): void {
    this.processor = other.processor;
    this.disk = other.disk;
    this.blockCount = other.blockCount;
    this.blockSizeBytes = other.blockSizeBytes;
    this.physicalExponent = other.physicalExponent;
    this.present = other.present;
    this.failed = other.failed;
    this.slot = other.slot;
  }
}

export class Volume {
  type: VolumeType = VolumeType.Disk;
  readonly name: StaticArray<u8> = new StaticArray<u8>(VOLUME_NAME_BYTES_MAX);
  nameBytes: u32 = 0;
  readonly members: StaticArray<Member> = new StaticArray<Member>(MEMBERS_MAX);
  memberCount: u32 = 0;
  readonly spares: StaticArray<Member> = new StaticArray<Member>(SPARES_MAX);
  spareCount: u32 = 0;
  poolVolume: u32 = 0; // thin: the volume its chunks come from
  chunkBytes: u32 = 0; // RAID: the stripe unit on each member; thin: the allocation chunk
  chunkBlocks: u32 = 0;
  virtualBytes: u64 = 0; // thin: the size it presents
  softThresholdPercent: u32 = 0; // thin: 0 = none
  chunksUsed: u32 = 0; // thin: pool chunks in use (the CTA's thin layer keeps it)
  chunksVirtual: u32 = 0; // thin: virtual chunks
  // Geometry, as the SCSI target presents it.
  blockCount: u64 = 0;
  blockSizeBytes: u32 = 0;
  physicalExponent: u32 = 0; // a physical block is 2^physicalExponent blocks (SBC-3 LBPPBE)
  state: VolumeState = VolumeState.Optimal;
  metadataBlocks: u64 = 0; // RAID: where data starts on each member
  loaded: bool = false; // its metadata was read at boot (or it has none): it serves I/O
  generation: u64 = 0; // RAID: the superblocks' generation (superblock.ts)
  // RAID 5: a rebuild onto member rebuildMember (MEMBERS_MAX: none) has rebuilt every window before
  // (rebuildRow, rebuildWindow). The member serves (reads go to it, writes include it) only the windows before
  // (durableRow, durableWindow), the checkpoint every superblock written so far holds, and is failed for the rest:
  // a reset then resumes the rebuild from a checkpoint past every window a write included it in, so a rebuild never
  // writes over a window the member held current data in (rebuild.ts, "durable checkpoint").
  rebuildMember: u32 = MEMBERS_MAX;
  rebuildRow: u64 = 0;
  rebuildWindow: u32 = 0;
  durableRow: u64 = 0;
  durableWindow: u32 = 0;
  // Replica: the copy that failed last, when both did (it holds every answered write). RAID 5: the member whose failure
  // failed the volume (it holds every answered write: none is answered after it), when no region of the write-intent
  // bitmap was dirty then; MEMBERS_MAX otherwise (its rows written then may disagree with their parity).
  lastCurrent: u32 = MEMBERS_MAX;
  logRegions: u32 = 0; // RAID 5, replica: regions marked in its write-intent log when it was last written
  resyncPending: bool = false; // RAID 5, replica: its write-intent bitmap had dirty regions at boot (resynchronized)
  // RAID 5: a member failed at run time before those regions were resynchronized (the write hole): reads rebuilt from
  // parity there end MEDIUM ERROR until the resync after the rebuild is done (parity_ops.ts, suspect)
  holeOpen: bool = false;

  constructor() {
    for (let i: u32 = 0; i < MEMBERS_MAX; i++) unchecked(this.members[i] = new Member());
    for (let i: u32 = 0; i < SPARES_MAX; i++) unchecked(this.spares[i] = new Member());
  }

  member(i: u32): Member {
    assert(i < this.memberCount, "volume member out of range");
    return unchecked(this.members[i]);
  }

  /** The member that is down for window `window` of stripe row `row` (a failed one not yet rebuilt there), or
   * MEMBERS_MAX when none is; MEMBERS_MAX + 1 when more than one is. */
  downMember(row: u64, window: u32): u32 {
    let down = MEMBERS_MAX;
    for (let i: u32 = 0; i < this.memberCount; i++) {
      if (!unchecked(this.members[i]).failed) continue;
      if (i == this.rebuildMember && (row < this.durableRow || (row == this.durableRow && window < this.durableWindow))) continue;
      if (down != MEMBERS_MAX) return MEMBERS_MAX + 1;
      down = i;
    }
    return down;
  }

  /** Window `window` of stripe row `row` is rebuilt on the rebuild's member but no superblock says so yet: a write
   * there waits for the checkpoint (it would include the member, which a reset would then rebuild over). */
  rebuiltNotDurable(row: u64, window: u32): bool {
    if (this.rebuildMember >= this.memberCount) return false;
    const afterDurable = row > this.durableRow || (row == this.durableRow && window >= this.durableWindow);
    const beforeRebuilt = row < this.rebuildRow || (row == this.rebuildRow && window < this.rebuildWindow);
    return afterDurable && beforeRebuilt;
  }

  /** Members that failed, as a bit mask. */
  failedMask(): u32 {
    let mask: u32 = 0;
    for (let i: u32 = 0; i < this.memberCount; i++) if (unchecked(this.members[i]).failed) mask |= (<u32>1) << i;
    return mask;
  }

  failedCount(): u32 { return <u32>popcnt(this.failedMask()); }

  /** The lowest failed member, or MEMBERS_MAX when none. */
  firstFailed(): u32 {
    const mask = this.failedMask();
    return mask == 0 ? MEMBERS_MAX : <u32>ctz(mask);
  }
}

const volumes = new StaticArray<Volume>(VOLUMES_MAX);
let volumeCount: u32 = 0;

export function volumesInit(): void {
  for (let i: u32 = 0; i < VOLUMES_MAX; i++) unchecked(volumes[i] = new Volume());
}

/** The next volume to define, or null when the table is full. Its number is volumesCount() before the call. */
export function volumeNext(): Volume | null {
  if (volumeCount == VOLUMES_MAX) return null;
  const v = unchecked(volumes[volumeCount]);
  volumeCount += 1;
  return v;
}

export function volumesCount(): u32 { return volumeCount; }

export function volumeAt(lun: u32): Volume {
  assert(lun < volumeCount, "volume out of range");
  return unchecked(volumes[lun]);
}

export function volumeTypeName(type: VolumeType): string {
  switch (<i32>type) {
    case VolumeType.Disk: return "disk";
    case VolumeType.Raid0: return "raid0";
    case VolumeType.Raid1: return "raid1";
    case VolumeType.Raid5: return "raid5";
    case VolumeType.Replica: return "replica";
    default: return "thin";
  }
}

export function volumeStateName(state: VolumeState): string {
  switch (<i32>state) {
    case VolumeState.Optimal: return "optimal";
    case VolumeState.Degraded: return "degraded";
    case VolumeState.Rebuilding: return "rebuilding";
    default: return "failed";
  }
}
