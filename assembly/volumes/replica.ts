// A replica: two copies of the volume, each a disk on its own processor, laid out as a RAID 1 (the first MiB of each
// copy for metadata: superblock, write-intent log; data after it). What makes it a replica rather than a mirror is
// the CTA's handling (docs/volumes.md, "Replication"): a write goes to both copies with FUA and is answered only
// when both copies' reply frames are back; overlapping writes are ordered (one at a time per range, so both copies
// see them in the same order); while a copy is down the regions written are kept in the write-intent log on the
// other, and only those are copied to it when it comes back (assembly/cta/replica_resync.ts).
// A read goes to either copy (by chunk, to spread them), and to the other when that one fails.
import { Extent } from "./extent";
import { raid1Map, raid1ReadMember } from "./raid1";
import { raidAreaBlocks } from "./raid_area";
import { Volume } from "./volume";

export const REPLICA_COPIES: u32 = 2;

export function replicaCapacityBlocks(v: Volume): u64 { return raidAreaBlocks(v); }

/** The part of [lba, lba + blocks) inside lba's chunk on copy `copy`. */
export function replicaMap(v: Volume, copy: u32, lba: u64, blocks: u64, into: Extent): void {
  assert(copy < REPLICA_COPIES, "replica: copy out of range");
  raid1Map(v, copy, lba, blocks, into);
}

/** The copy a read of lba's chunk goes to: not failed (nor being resynchronized), not in `notMask`; MEMBERS_MAX when none. */
export function replicaReadCopy(v: Volume, lba: u64, notMask: u32 = 0): u32 { return raid1ReadMember(v, lba, notMask); }

/** The copy that receives writes: not failed, or the target of a resynchronization. */
export function replicaWritesTo(v: Volume, copy: u32): bool {
  const m = v.member(copy);
  return m.present && (!m.failed || copy == v.rebuildMember);
}

/** Whether [aLba, aLba + aBlocks) and [bLba, bLba + bBlocks) share a block. */
@inline export function rangesOverlap(aLba: u64, aBlocks: u64, bLba: u64, bBlocks: u64): bool {
  return aLba < bLba + bBlocks && bLba < aLba + aBlocks;
}
