// The RAID-5 write-intent bitmap (the write hole): one bit per region of stripe rows, set on every member's disk
// before a parity operation writes in the region, cleared once the region has been quiet for a whole tick. After a
// crash or a reset the regions whose bit is set may hold parity that disagrees with the data (the data and parity
// writes of a row are not atomic); they are resynchronized (rebuild.ts) before a member's failure could make the
// array trust that parity. Written at block WRITE_INTENT_OFFSET_BYTES of every member's metadata area, one 4 KiB
// block: bit r of byte r / 8 (LSB first) is region r (docs/volumes.md, "On-disk formats").
// A replica keeps the same log, its rows being chunks: set before a write goes to the copies; cleared only while both
// copies are current, so while one is down (or being resynchronized) it names every region written since, which is
// what replica_resync.ts copies when it comes back.
import { FrameFunction, FrameStatus } from "../board/frame";
import { BUFFER_CLASS_PAGE, BUFFER_PAGE_BYTES } from "../config";
import { bufferPool, bufferReserve } from "../kernel/buffers";
import { carve } from "../kernel/carve";
import { POOL_NONE } from "../kernel/pool";
import { raid5RowBlocks } from "../volumes/raid5";
import { Volume, volumeAt, volumesCount, VOLUMES_MAX, VolumeType } from "../volumes/volume";
import { CtaTask, INTERNAL_INTENT } from "./cta";

export const WRITE_INTENT_OFFSET_BYTES: u64 = 4096; // after the superblock's 4 KiB
export const WRITE_INTENT_BYTES: u32 = 4096;
const REGIONS_MAX: u64 = <u64>WRITE_INTENT_BYTES * 8;

export class WriteIntent {
  // One bitmap block per RAID-5 volume (the volumes are configured before the CTA is made), by slot.
  private readonly slots: StaticArray<u32> = new StaticArray<u32>(VOLUMES_MAX);
  private readonly dirty: usize; // in memory: what the disks must say
  private readonly touched: usize; // written in since the last tick
  private readonly setSeq: StaticArray<u32> = new StaticArray<u32>(VOLUMES_MAX); // bits set so far, counted
  private readonly durableSeq: StaticArray<u32> = new StaticArray<u32>(VOLUMES_MAX); // as far as the disks have them
  private readonly flushSeq: StaticArray<u32> = new StaticArray<u32>(VOLUMES_MAX); // what the flush in flight covers
  private readonly flushing: StaticArray<u32> = new StaticArray<u32>(VOLUMES_MAX); // its writes not answered
  private readonly again: StaticArray<bool> = new StaticArray<bool>(VOLUMES_MAX); // flush again when it is done
  private page: u32 = POOL_NONE; // the snapshot a flush writes (one flush at a time)
  private pageVolume: u32 = VOLUMES_MAX;
  private busy: bool = false; // a write of the flush in flight was not taken
  flushes: u64 = 0;

  constructor(private readonly cta: CtaTask) {
    let count: u32 = 0;
    for (let n: u32 = 0; n < volumesCount(); n++) {
      unchecked(this.slots[n] = count);
      if (hasLog(volumeAt(n))) count += 1;
    }
    this.dirty = carve(max(count, 1) * WRITE_INTENT_BYTES, 8);
    this.touched = carve(max(count, 1) * WRITE_INTENT_BYTES, 8);
  }

  start(): void {
    this.page = bufferReserve(BUFFER_CLASS_PAGE);
    assert(this.page != POOL_NONE, "cta: no page buffer for the write-intent bitmap");
  }

  /** Rows per region of `v`: the whole volume fits one block of bits. */
  regionRows(v: Volume): u64 {
    const rows = v.blockCount / intentRowBlocks(v);
    return max((rows + REGIONS_MAX - 1) / REGIONS_MAX, 1);
  }

  /** Regions of `v` (the bits in use). */
  regionCount(v: Volume): u64 {
    const rows = v.blockCount / intentRowBlocks(v);
    return (rows + this.regionRows(v) - 1) / this.regionRows(v);
  }

  /** Dirty regions of `volume`, counted. */
  dirtyCount(volume: u32): u32 {
    const at = this.bits(volume);
    let count: u32 = 0;
    for (let i: u32 = 0; i < WRITE_INTENT_BYTES; i += 8) count += <u32>popcnt(load<u64>(at + i));
    return count;
  }

  /** Every region of `volume` dirty (a copy that holds nothing of it is to be resynchronized whole). */
  markAll(volume: u32): void {
    const v = volumeAt(volume);
    const at = this.bits(volume);
    const regions = this.regionCount(v);
    for (let r: u64 = 0; r < regions; r++) store<u8>(at + <usize>(r >> 3), load<u8>(at + <usize>(r >> 3)) | (<u8>1 << <u8>(r & 7)));
    unchecked(this.setSeq[volume] += 1);
  }

  /** The bitmap of `volume` as it is in memory (loaded at boot into here: raid_metadata.ts). */
  bits(volume: u32): usize {
    assert(hasLog(volumeAt(volume)), "write intent: not a RAID 5 or replica");
    return this.dirty + <usize>unchecked(this.slots[volume]) * WRITE_INTENT_BYTES;
  }

  private touchedBits(volume: u32): usize { return this.touched + <usize>unchecked(this.slots[volume]) * WRITE_INTENT_BYTES; }

  /** Any region of `volume` dirty. */
  anyDirty(volume: u32): bool {
    const at = this.bits(volume);
    for (let i: u32 = 0; i < WRITE_INTENT_BYTES; i += 8) if (load<u64>(at + i) != 0) return true;
    return false;
  }

  isDirty(volume: u32, row: u64): bool {
    const region = row / this.regionRows(volumeAt(volume));
    return (load<u8>(this.bits(volume) + <usize>(region >> 3)) & (<u8>1 << <u8>(region & 7))) != 0;
  }

  /** Clears the bit of `row`'s region (resynchronized); written with the next flush. */
  clean(volume: u32, row: u64): void {
    const region = row / this.regionRows(volumeAt(volume));
    const at = this.bits(volume) + <usize>(region >> 3);
    store<u8>(at, load<u8>(at) & ~(<u8>1 << <u8>(region & 7)));
  }

  /**
   * A parity operation is about to write `row` of `volume`: true when the region's bit is on the disks; otherwise it
   * is set, a flush is started, and the operation waits (asks again).
   */
  ready(volume: u32, row: u64): bool {
    const v = volumeAt(volume);
    const region = row / this.regionRows(v);
    const byte = <usize>(region >> 3);
    const bit = <u8>1 << <u8>(region & 7);
    const touched = this.touchedBits(volume) + byte;
    store<u8>(touched, load<u8>(touched) | bit);
    const at = this.bits(volume) + byte;
    if ((load<u8>(at) & bit) == 0) {
      store<u8>(at, load<u8>(at) | bit);
      unchecked(this.setSeq[volume] += 1);
    }
    if (unchecked(this.durableSeq[volume]) == unchecked(this.setSeq[volume])) return true;
    // Not on the disks yet: a flush that covers it, unless one in flight already does.
    if (unchecked(this.flushing[volume]) == 0 || unchecked(this.flushSeq[volume]) != unchecked(this.setSeq[volume])) this.flush(volume);
    return false;
  }

  /** Once a period: bits of regions not written since the last tick, with no operation on them, are cleared. */
  tick(): void {
    for (let n: u32 = 0; n < volumesCount(); n++) {
      const v = volumeAt(n);
      if (!hasLog(v) || !v.loaded || v.resyncPending) continue; // its boot-time bits wait for the resync
      // A replica's bits are the copy that is down's to-do list: kept until both copies are current.
      if (v.type == VolumeType.Replica && (v.failedCount() != 0 || this.cta.replicaResync.on(n))) continue;
      const bits = this.bits(n);
      const touched = this.touchedBits(n);
      let cleared = false;
      for (let i: u32 = 0; i < WRITE_INTENT_BYTES; i += 8) {
        const quiet = load<u64>(bits + i) & ~load<u64>(touched + i);
        if (quiet == 0) continue;
        // Keep the bits of regions an operation is still on.
        let clear = quiet;
        for (let b: u32 = 0; b < 64 && clear != 0; b++) {
          if ((clear & (<u64>1 << b)) != 0 && this.onRegion(v, n, <u64>(i * 8 + b))) clear &= ~(<u64>1 << b);
        }
        if (clear == 0) continue;
        store<u64>(bits + i, load<u64>(bits + i) & ~clear);
        cleared = true;
      }
      memory.fill(touched, 0, WRITE_INTENT_BYTES);
      if (cleared) this.flush(n);
    }
  }

  /** Some write is still on `region` of volume `n`. */
  onRegion(v: Volume, n: u32, region: u64): bool {
    const regionRows = this.regionRows(v);
    if (v.type == VolumeType.Raid5) return this.cta.ops.onRegion(n, region, regionRows);
    const regionBlocks = regionRows * intentRowBlocks(v);
    return this.cta.replicaRangeHeld(n, region * regionBlocks, regionBlocks);
  }

  /** Writes `volume`'s bitmap to every current member (and a rebuild's target), with FUA. */
  flush(volume: u32): void {
    if (unchecked(this.flushing[volume]) > 0 || this.pageVolume != VOLUMES_MAX) {
      unchecked(this.again[volume] = true);
      return;
    }
    const v = volumeAt(volume);
    const page = bufferPool(BUFFER_CLASS_PAGE).address(this.page);
    memory.copy(page, this.bits(volume), WRITE_INTENT_BYTES);
    v.logRegions = this.dirtyCount(volume);
    memory.fill(page + WRITE_INTENT_BYTES, 0, BUFFER_PAGE_BYTES - WRITE_INTENT_BYTES);
    unchecked(this.flushSeq[volume] = unchecked(this.setSeq[volume]));
    unchecked(this.again[volume] = false);
    this.pageVolume = volume;
    this.flushes += 1;
    const lba = WRITE_INTENT_OFFSET_BYTES / <u64>v.blockSizeBytes;
    const blocks = WRITE_INTENT_BYTES / v.blockSizeBytes;
    let sent: u32 = 0;
    for (let m: u32 = 0; m < v.memberCount; m++) {
      const member = v.member(m);
      if (!member.present || (member.failed && m != v.rebuildMember)) continue;
      const s = this.cta.internalOpen(volume, INTERNAL_INTENT | <u64>volume);
      if (s == POOL_NONE) { this.busy = true; continue; } // not written, so not durable: flushed again
      this.cta.internalIo(s, FrameFunction.WriteFua, volume, m, lba, blocks, page);
      this.cta.internalDone(s);
      sent += 1;
    }
    unchecked(this.flushing[volume] = sent);
    if (sent > 0) return;
    if (this.busy) {
      // No service slot at all: tried again by the next ready() or tick, not at once (that would spin).
      this.busy = false;
      this.pageVolume = VOLUMES_MAX;
      unchecked(this.again[volume] = true);
      return;
    }
    this.flushed(volume);
  }

  /** One write of a flush answered (`tag`: the volume). */
  onDone(tag: u64, status: FrameStatus): void {
    const volume = <u32>(tag & 0xff);
    // Busy: not written, so not durable: flushed again. Any other failure failed the member (the CTA saw it); the
    // others have the bits.
    if (status == FrameStatus.Busy) this.busy = true;
    unchecked(this.flushing[volume] -= 1);
    if (unchecked(this.flushing[volume]) == 0) this.flushed(volume);
  }

  private flushed(volume: u32): void {
    this.pageVolume = VOLUMES_MAX;
    if (this.busy) unchecked(this.again[volume] = true);
    else unchecked(this.durableSeq[volume] = unchecked(this.flushSeq[volume]));
    this.busy = false;
    for (let n: u32 = 0; n < VOLUMES_MAX; n++) {
      if (unchecked(this.again[n]) || unchecked(this.durableSeq[n]) != unchecked(this.setSeq[n])) {
        if (n < volumesCount() && volumeAt(n).loaded) { this.flush(n); return; }
      }
    }
  }
}

/** The volumes that keep a write-intent log. */
function hasLog(v: Volume): bool { return v.type == VolumeType.Raid5 || v.type == VolumeType.Replica; }

/** Blocks of `v` one bit's row stands for: a RAID-5 stripe row, a replica's chunk. */
function intentRowBlocks(v: Volume): u64 { return v.type == VolumeType.Replica ? <u64>v.chunkBlocks : raid5RowBlocks(v); }
