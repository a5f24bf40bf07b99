// Rebuilding a RAID-5 member, in the background: onto a hot spare that takes a failed member's slot, onto a
// replaced disk that answers again (raid_metadata.ts probes), or resumed from the superblocks' checkpoint at boot.
// One window at a time (a parity operation of kind Rebuild: read the others, XOR, write the member), in row order,
// so that everything before (rebuildRow, rebuildWindow) is current on the member (Volume.downMember) and writes
// there include it. Throttled: a step goes out when no request waits for parts, or REBUILD_GAP_NS after the last.
// The position is written to the superblocks every 1/16 of the rows, and progress printed every 10%.
// Durable checkpoint: the member serves (reads go to it, writes include it) only the windows a superblock already
// says are rebuilt (Volume.durableRow). A write to a window rebuilt since waits for the next checkpoint
// (ParityOps.poll asks for it), and the rebuild ends (the member current) only once a superblock holds its last
// row. So however a reset cuts the superblock writes, the checkpoint a resumed rebuild starts from is past every
// window a write included the member in: it never rebuilds from parity a window the member held newer data in (the
// parity of a row dirty at the reset may disagree with its data).
// The same driver resynchronizes a RAID 5 whose write-intent bitmap (write_intent.ts) has regions dirty at boot: each
// row of a dirty region gets its parity member rebuilt from the data, then the region is marked clean.
import { FrameStatus } from "../board/frame";
import { clockNowNs } from "../board/wasi";
import { line } from "../kernel/console";
import { POOL_NONE } from "../kernel/pool";
import { stateOf } from "../volumes/config";
import { raid5ParityMember, raid5RowBlocks } from "../volumes/raid5";
import { volumeStateLine } from "../volumes/report";
import { MEMBERS_MAX, Volume, volumeAt, volumesCount, VolumeState, VolumeType } from "../volumes/volume";
import { CtaTask, INTERNAL_REBUILD } from "./cta";

const REBUILD_GAP_NS: u64 = 2_000_000; // at least one step per 2 ms of board time, however busy the volume is
const CHECKPOINTS: u64 = 16;
const VOLUME_NONE: u32 = 0xffff_ffff;

export class Rebuild {
  active: bool = false;
  private resync: bool = false; // the active run resynchronizes dirty regions rather than rebuilding a member
  private resyncRow: u64 = 0;
  private resyncWindow: u32 = 0;
  private volume: u32 = VOLUME_NONE;
  private inFlight: bool = false;
  // Each run (a rebuild or a resync) has its own epoch, in its steps' tags: a step of a run that ended (a resync a
  // member failure stopped, then a rebuild began) answers into nothing, instead of moving the new run on.
  private epoch: u32 = 0;
  private lastStepNs: u64 = 0;
  private lastTenth: u64 = 0;
  private lastCheckpoint: u64 = 0;
  stepsDone: u64 = 0;
  rebuildsDone: u64 = 0;

  constructor(private readonly cta: CtaTask) {}

  /** Starts the next rebuild that can run: one resumed at boot, or a failed member's slot given a spare. */
  consider(): void {
    if (this.active) return;
    for (let n: u32 = 0; n < volumesCount(); n++) {
      const v = volumeAt(n);
      if (v.type != VolumeType.Raid5 || !v.loaded || v.state == VolumeState.Failed || v.failedCount() != 1) continue;
      if (v.rebuildMember < v.memberCount) { this.begin(n, true); return; }
      const f = v.firstFailed();
      if (this.takeSpare(v, f)) {
        line().s("volumes: a spare takes member ").u32(f).s(" of volume ").u32(n).out();
        this.startOn(n, f);
        return;
      }
    }
    for (let n: u32 = 0; n < volumesCount(); n++) {
      const v = volumeAt(n);
      if (v.type != VolumeType.Raid5 || !v.loaded || v.failedCount() != 0 || !v.resyncPending) continue;
      this.active = true;
      this.resync = true;
      this.volume = n;
      this.inFlight = false;
      this.epoch += 1;
      this.resyncRow = 0;
      this.resyncWindow = 0;
      line().s("volumes: resynchronizing the dirty regions of volume ").u32(n).out();
      return;
    }
  }


  /** Rebuilds member `m` of `volume` from its first row (the disk in its slot answers but holds nothing current). */
  startOn(volume: u32, m: u32): void {
    if (this.active) return;
    const v = volumeAt(volume);
    v.rebuildMember = m;
    v.rebuildRow = 0;
    v.rebuildWindow = 0;
    v.durableRow = 0;
    v.durableWindow = 0;
    this.begin(volume, false);
  }

  /** The rebuild of `volume` stops (its target failed): the member stays failed. */
  abort(volume: u32): void {
    const v = volumeAt(volume);
    v.rebuildMember = MEMBERS_MAX;
    v.rebuildRow = 0;
    v.rebuildWindow = 0;
    v.durableRow = 0;
    v.durableWindow = 0;
    if (this.active && this.volume == volume) {
      this.active = false;
      line().s("volumes: rebuild of volume ").u32(volume).s(" stopped: its target failed").err();
    }
  }

  /** From the CTA's run: the next step, when none is out and the volume's clients leave room (or it is time). */
  pump(idle: bool): void {
    if (!this.active || this.inFlight) return;
    const v = volumeAt(this.volume);
    if (!this.resync && v.rebuildRow >= rowsOf(v)) {
      // Every row rebuilt: the member becomes current once a superblock says so (asked for in onDone).
      if (v.durableRow >= rowsOf(v)) this.finish(v);
      return;
    }
    const nowNs = clockNowNs();
    if (!idle && nowNs - this.lastStepNs < REBUILD_GAP_NS) return;
    if (!this.cta.ops.hasRoom()) return;
    if (this.resync && !this.nextDirtyRow(v)) return;
    const s = this.cta.internalOpen(this.volume, INTERNAL_REBUILD | <u64>this.epoch);
    if (s == POOL_NONE) return;
    if (this.resync) {
      assert(this.cta.ops.startRebuild(s, this.volume, this.resyncRow, this.resyncWindow, raid5ParityMember(v, this.resyncRow)), "resync: no room");
    } else {
      assert(this.cta.ops.startRebuild(s, this.volume, v.rebuildRow, v.rebuildWindow, v.rebuildMember), "rebuild: no room");
    }
    this.inFlight = true;
    this.lastStepNs = nowNs;
    this.cta.internalDone(s);
  }

  /** A step's internal service answered (`tag`: its run's epoch). */
  onDone(tag: u64, status: FrameStatus): void {
    if (<u32>tag != this.epoch) return; // a step of a run that ended
    this.inFlight = false;
    if (!this.active) return;
    const v = volumeAt(this.volume);
    if (status != FrameStatus.Ok) {
      if (v.state == VolumeState.Failed) {
        this.active = false;
        line().s("volumes: rebuild of volume ").u32(this.volume).s(" stopped: the volume failed").err();
      }
      if (this.resync && v.failedCount() != 0) {
        this.active = false;
        line().s("volumes: resynchronization of volume ").u32(this.volume).s(" stopped: a member failed").err();
        this.consider(); // a spare, if there is one
      }
      return; // a busy step is tried again
    }
    this.stepsDone += 1;
    if (this.resync) {
      this.resyncStepDone(v);
      return;
    }
    v.rebuildWindow += 1;
    if (v.rebuildWindow >= this.cta.ops.windowsPerChunk(v)) {
      v.rebuildWindow = 0;
      v.rebuildRow += 1;
    }
    const rows = rowsOf(v);
    if (v.rebuildRow >= rows) {
      this.cta.metadata.update(this.volume); // the last checkpoint; pump finishes once it is durable
      return;
    }
    const tenth = v.rebuildRow * 10 / rows;
    if (tenth != this.lastTenth) {
      this.lastTenth = tenth;
      volumeStateLine(this.volume);
    }
    const checkpoint = v.rebuildRow * CHECKPOINTS / rows;
    if (checkpoint != this.lastCheckpoint) {
      this.lastCheckpoint = checkpoint;
      this.cta.metadata.update(this.volume);
    }
  }

  // Moves the resync to the next row of a dirty region; false (and the resync is over) when there is none.
  private nextDirtyRow(v: Volume): bool {
    const rows = rowsOf(v);
    const regionRows = this.cta.intent.regionRows(v);
    while (this.resyncRow < rows && !this.cta.intent.isDirty(this.volume, this.resyncRow)) {
      this.resyncRow = (this.resyncRow / regionRows + 1) * regionRows;
      this.resyncWindow = 0;
    }
    if (this.resyncRow < rows) return true;
    this.active = false;
    this.resync = false;
    v.resyncPending = false;
    v.holeOpen = false;
    this.cta.intent.flush(this.volume);
    line().s("volumes: volume ").u32(this.volume).s(" resynchronized").out();
    this.consider();
    return false;
  }

  private resyncStepDone(v: Volume): void {
    const regionRows = this.cta.intent.regionRows(v);
    const row = this.resyncRow;
    this.resyncWindow += 1;
    if (this.resyncWindow < this.cta.ops.windowsPerChunk(v)) return;
    this.resyncWindow = 0;
    this.resyncRow += 1;
    // A region done, with nothing else on it: clean.
    if ((this.resyncRow % regionRows == 0 || this.resyncRow == rowsOf(v)) && !this.cta.ops.onRegion(this.volume, row / regionRows, regionRows)) this.cta.intent.clean(this.volume, row);
  }

  private begin(volume: u32, resumed: bool): void {
    const v = volumeAt(volume);
    this.active = true;
    this.resync = false;
    this.volume = volume;
    this.inFlight = false;
    this.epoch += 1;
    this.lastTenth = v.rebuildRow * 10 / rowsOf(v);
    this.lastCheckpoint = v.rebuildRow * CHECKPOINTS / rowsOf(v);
    v.state = stateOf(v);
    line().s("volumes: rebuilding member ").u32(v.rebuildMember).s(" of volume ").u32(volume)
      .s(resumed ? " from its checkpoint at row " : " from row ").u64(v.rebuildRow).out();
    volumeStateLine(volume);
    this.cta.metadata.update(volume);
  }

  private finish(v: Volume): void {
    v.member(v.rebuildMember).failed = false;
    v.rebuildMember = MEMBERS_MAX;
    v.rebuildRow = 0;
    v.rebuildWindow = 0;
    v.durableRow = 0;
    v.durableWindow = 0;
    v.state = stateOf(v);
    this.active = false;
    this.rebuildsDone += 1;
    volumeStateLine(this.volume);
    this.cta.metadata.update(this.volume);
    this.consider();
  }

  // A present spare at least as large as the smallest member takes slot `f`.
  private takeSpare(v: Volume, f: u32): bool {
    let smallest: u64 = u64.MAX_VALUE;
    for (let m: u32 = 0; m < v.memberCount; m++) if (v.member(m).present && v.member(m).blockCount < smallest) smallest = v.member(m).blockCount;
    for (let i: u32 = 0; i < v.spareCount; i++) {
      const spare = unchecked(v.spares[i]);
      if (!spare.present || spare.failed || spare.blockCount < smallest || spare.blockSizeBytes != v.blockSizeBytes) continue;
      v.member(f).set(spare);
      v.member(f).failed = true; // until rebuilt
      for (let j = i; j + 1 < v.spareCount; j++) unchecked(v.spares[j]).set(unchecked(v.spares[j + 1]));
      v.spareCount -= 1;
      return true;
    }
    return false;
  }
}

function rowsOf(v: Volume): u64 { return v.blockCount / raid5RowBlocks(v); }
