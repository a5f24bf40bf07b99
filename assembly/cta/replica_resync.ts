// Resynchronizing a replica's copy, in the background: the regions its write-intent log (write_intent.ts) names are
// copied from the current copy to the other, one window (up to one 64 KiB buffer of a chunk) at a time: read the
// source, write the target with FUA. Three cases start it:
// - a copy that was down answers again with its own superblock (the probe, raid_metadata.ts): it holds the volume up
//   to its failure, and the log, kept on the current copy since, names every region written meanwhile;
// - a copy that answers blank or foreign (a replaced disk): every region is marked and copied;
// - a restart after a crash with writes in flight (both copies current, the log dirty): the regions written then may
//   differ between the copies; copy 1 gets copy 0's.
// The target is failed for reads (Volume.rebuildMember: it takes writes) until the end, and it gets the volume's
// superblock only then, so a restart meanwhile begins again from what the log still names. Each window is held
// against the replica's writes (CtaTask.replicaRangeHeld, holds()): a write never lands between a window's read and
// its write, so the target cannot end with older bytes than the source. A region whose windows are all copied, with
// no write on it, is marked clean. Throttled as a RAID rebuild: a step when no request waits, or every 2 ms.
// The same driver rebuilds a RAID-1 member (onto a hot spare, or a member that answers again): a RAID 1 keeps no
// log, so the whole volume is copied, from a current member. Its writes include the target and hold their range
// while the copy runs (CtaTask's RAID-1 write path), and a window waits for any write in flight over it.
import { FrameFunction, FrameStatus } from "../board/frame";
import { clockNowNs } from "../board/wasi";
import { BUFFER_CLASS_LARGE, BUFFER_LARGE_BYTES } from "../config";
import { bufferPool, bufferReserve } from "../kernel/buffers";
import { line } from "../kernel/console";
import { POOL_NONE } from "../kernel/pool";
import { stateOf } from "../volumes/config";
import { rangesOverlap } from "../volumes/replica";
import { volumeStateLine } from "../volumes/report";
import { MEMBERS_MAX, Volume, volumeAt, volumesCount, VolumeState, VolumeType } from "../volumes/volume";
import { CtaTask, INTERNAL_REPLICA } from "./cta";

const RESYNC_GAP_NS: u64 = 2_000_000;
const VOLUME_NONE: u32 = 0xffff_ffff;

enum Step {
  Idle = 0, // no window out
  Reading = 1, // the window is being read from the source
  Writing = 2, // and written to the target
}

export class ReplicaResync {
  active: bool = false;
  private volume: u32 = VOLUME_NONE;
  private source: u32 = 0;
  private target: u32 = 0;
  private row: u64 = 0; // the chunk being copied
  private window: u32 = 0; // its window
  private step: Step = Step.Idle;
  private lockLba: u64 = 0; // the window out, held against writes while step != Idle
  private lockBlocks: u64 = 0;
  private buffer: u32 = POOL_NONE;
  private epoch: u32 = 0; // in each step's tag: a step of a run that ended answers into nothing
  private lastStepNs: u64 = 0;
  private lastTenth: u64 = 0;
  private regionsAtStart: u32 = 0;
  private logged: bool = true; // a replica's run copies what its write-intent log names; a RAID 1's, everything
  windowsCopied: u64 = 0;
  resyncsDone: u64 = 0;

  constructor(private readonly cta: CtaTask) {}

  /** One large buffer, when the board has a replica or a RAID 1. */
  start(): void {
    for (let n: u32 = 0; n < volumesCount(); n++) {
      if (volumeAt(n).type != VolumeType.Replica && volumeAt(n).type != VolumeType.Raid1) continue;
      this.buffer = bufferReserve(BUFFER_CLASS_LARGE);
      assert(this.buffer != POOL_NONE, "cta: no large buffer for the replica resync");
      return;
    }
  }

  /** A resync runs on `volume`. */
  on(volume: u32): bool { return this.active && this.volume == volume; }

  /** The window out overlaps [lba, lba + blocks) of `volume`. */
  holds(volume: u32, lba: u64, blocks: u64): bool {
    return this.active && this.step != Step.Idle && this.volume == volume && rangesOverlap(lba, blocks, this.lockLba, this.lockBlocks);
  }

  /**
   * After loading, and whenever a member fails: a replica with a copy failed and a hot spare gives the spare the
   * copy's place and copies the whole volume to it; a replica restarted with writes in flight gets its log's regions
   * copied.
   */
  consider(): void {
    if (this.active) return;
    for (let n: u32 = 0; n < volumesCount(); n++) {
      const v = volumeAt(n);
      const raid1 = v.type == VolumeType.Raid1 && v.failedCount() < v.memberCount;
      if ((v.type != VolumeType.Replica && !raid1) || !v.loaded || v.spareCount == 0 || v.rebuildMember != MEMBERS_MAX) continue;
      if (!raid1 && v.failedCount() != 1) continue;
      if (v.failedCount() == 0) continue;
      const f = v.firstFailed();
      if (!takeSpare(v, f)) continue;
      // Which disk: `wasm-iop fault copy` names it by the copy's place from then on (host/board/control.ts).
      const m = v.member(f);
      line().s(raid1 ? "volumes: a spare takes member " : "volumes: a spare takes copy ").u32(f).s(" of volume ").u32(n)
        .s("; the whole volume is copied to it (processor ").u32(m.processor).s(" disk ").u32(m.disk).s(")").out();
      this.startOn(n, f, true);
      return;
    }
    for (let n: u32 = 0; n < volumesCount(); n++) {
      const v = volumeAt(n);
      if (v.type != VolumeType.Replica || !v.loaded || v.failedCount() != 0 || !v.resyncPending) continue;
      v.member(1).failed = true; // read from copy 0 only until copy 1 has its bytes
      this.startOn(n, 1, false);
      return;
    }
  }

  /** Copies to copy `target` of `volume` what its log names (`whole`: first marks every region). */
  startOn(volume: u32, target: u32, whole: bool): void {
    if (this.active || this.buffer == POOL_NONE) return;
    const v = volumeAt(volume);
    assert((v.type == VolumeType.Replica || v.type == VolumeType.Raid1) && target < v.memberCount, "replica resync: not a replica copy or RAID-1 member");
    this.logged = v.type == VolumeType.Replica;
    let source: u32 = MEMBERS_MAX;
    for (let m: u32 = 0; m < v.memberCount; m++) if (m != target && !v.member(m).failed) { source = m; break; }
    if (source == MEMBERS_MAX) return; // nothing current to copy from
    if (whole && this.logged) this.cta.intent.markAll(volume);
    this.active = true;
    this.volume = volume;
    this.source = source;
    this.target = target;
    this.row = 0;
    this.window = 0;
    this.step = Step.Idle;
    this.epoch += 1;
    this.lastTenth = 0;
    v.rebuildMember = target;
    v.member(target).failed = true;
    v.state = stateOf(v);
    this.regionsAtStart = this.logged ? this.cta.intent.dirtyCount(volume) : 0;
    if (this.logged) {
      line().s("volumes: copying ").u32(this.regionsAtStart).s(" regions of volume ").u32(volume).s(" from copy ").u32(source)
        .s(" to copy ").u32(target).out();
    } else {
      line().s("volumes: copying volume ").u32(volume).s(" from member ").u32(source).s(" to member ").u32(target).out();
    }
    volumeStateLine(volume);
    this.cta.metadata.update(volume);
    if (this.logged) this.cta.intent.flush(volume); // every marked region in the log before anything is copied (ready() below waits)
  }

  /** The target failed (or the source: the volume failed): the copy stays failed, the log keeps what is left. */
  abort(volume: u32): void {
    if (!this.on(volume)) return;
    const v = volumeAt(volume);
    v.rebuildMember = MEMBERS_MAX;
    this.active = false;
    this.step = Step.Idle;
    v.resyncPending = false;
    line().s("volumes: resynchronization of volume ").u32(volume).s(" stopped: a copy failed").err();
  }

  /** From the CTA's run: the next window, when none is out and clients leave room (or it is time). */
  pump(idle: bool): void {
    if (!this.active || this.step != Step.Idle) return;
    const nowNs = clockNowNs();
    if (!idle && nowNs - this.lastStepNs < RESYNC_GAP_NS) return;
    const v = volumeAt(this.volume);
    if (v.state == VolumeState.Failed || v.member(this.source).failed) { this.abort(this.volume); return; }
    if (!this.nextDirtyRow(v)) return;
    const windowBlocks = this.windowBlocks(v);
    const lba = this.row * <u64>v.chunkBlocks + <u64>(this.window * windowBlocks);
    const blocks = <u64>min(windowBlocks, v.chunkBlocks - this.window * windowBlocks);
    if (this.cta.replicaRangeHeld(this.volume, lba, blocks)) return; // a write there first
    // A RAID-1 write that began before the copy did not hold its range, nor go to the target: it ends first.
    if (!this.logged && this.cta.writeInFlight(this.volume, lba, blocks)) return;
    // The log must hold the region before the target is written (a crash then copies it again).
    if (this.logged && !this.cta.intent.ready(this.volume, this.row)) return;
    if (!this.io(FrameFunction.Read, this.source, lba, blocks)) return;
    this.lockLba = lba;
    this.lockBlocks = blocks;
    this.step = Step.Reading;
    this.lastStepNs = nowNs;
  }

  /** A step's internal service answered (`tag`: its run's epoch). */
  onDone(tag: u64, status: FrameStatus): void {
    if (<u32>tag != this.epoch || !this.active) return;
    const v = volumeAt(this.volume);
    if (status != FrameStatus.Ok) {
      this.step = Step.Idle; // Busy: the window again; a copy's failure: memberFail has aborted the run
      if (v.state == VolumeState.Failed) this.abort(this.volume);
      return;
    }
    if (this.step == Step.Reading) {
      this.step = Step.Writing;
      if (!this.io(FrameFunction.WriteFua, this.target, this.lockLba, this.lockBlocks)) this.step = Step.Idle;
      return;
    }
    this.step = Step.Idle;
    this.windowsCopied += 1;
    this.window += 1;
    if (this.window * this.windowBlocks(v) < v.chunkBlocks) return;
    this.window = 0;
    const row = this.row;
    this.row += 1;
    const rows = rowsOf(v);
    if (this.logged) {
      const regionRows = this.cta.intent.regionRows(v);
      if ((this.row % regionRows == 0 || this.row == rows) && !this.cta.intent.onRegion(v, this.volume, row / regionRows)) {
        this.cta.intent.clean(this.volume, row);
      }
    }
    const tenth = this.row * 10 / rows;
    if (tenth != this.lastTenth) {
      this.lastTenth = tenth;
      volumeStateLine(this.volume);
    }
  }

  // Moves to the next chunk of a dirty region; false (and the run ends) when there is none.
  private nextDirtyRow(v: Volume): bool {
    const rows = rowsOf(v);
    const regionRows = this.logged ? this.cta.intent.regionRows(v) : 1;
    while (this.logged && this.row < rows && !this.cta.intent.isDirty(this.volume, this.row)) {
      this.row = (this.row / regionRows + 1) * regionRows;
      this.window = 0;
    }
    if (this.row < rows) return true;
    this.finish(v);
    return false;
  }

  private finish(v: Volume): void {
    v.member(this.target).failed = false;
    v.rebuildMember = MEMBERS_MAX;
    v.resyncPending = false;
    v.state = stateOf(v);
    this.active = false;
    this.resyncsDone += 1;
    if (this.logged) {
      line().s("volumes: volume ").u32(this.volume).s(" resynchronized: copy ").u32(this.target).s(" current again (")
        .u32(this.regionsAtStart).s(" regions)").out();
      this.cta.intent.flush(this.volume); // first: the line below shows what the log holds now
    } else {
      line().s("volumes: volume ").u32(this.volume).s(" rebuilt: member ").u32(this.target).s(" current again").out();
    }
    volumeStateLine(this.volume);
    this.cta.metadata.update(this.volume);
    this.consider(); // a RAID 1 with another member failed and another spare
  }

  // Blocks [lba, lba + blocks) of copy `copy`'s data area, to or from the buffer, as an internal service.
  private io(fn: u32, copy: u32, lba: u64, blocks: u64): bool {
    const v = volumeAt(this.volume);
    const s = this.cta.internalOpen(this.volume, INTERNAL_REPLICA | <u64>this.epoch);
    if (s == POOL_NONE) return false;
    const ok = this.cta.internalIo(s, fn, this.volume, copy, v.metadataBlocks + lba, <u32>blocks, bufferPool(BUFFER_CLASS_LARGE).address(this.buffer));
    this.cta.internalDone(s);
    return ok;
  }

  private windowBlocks(v: Volume): u32 { return min(v.chunkBlocks, BUFFER_LARGE_BYTES / v.blockSizeBytes); }
}

function rowsOf(v: Volume): u64 { return v.blockCount / <u64>v.chunkBlocks; }

// The first spare that answers and fits takes copy `f`'s place (the copy's disk is no longer the volume's): failed
// until the resync has copied every region to it. The superblock it gets at the end names it copy f, so a restart
// takes it back into the slot (raid_metadata.ts, takeBackSpares).
function takeSpare(v: Volume, f: u32): bool {
  for (let i: u32 = 0; i < v.spareCount; i++) {
    const spare = unchecked(v.spares[i]);
    if (!spare.present || spare.failed || spare.blockCount < v.metadataBlocks + v.blockCount || spare.blockSizeBytes != v.blockSizeBytes) continue;
    v.member(f).set(spare);
    v.member(f).failed = true;
    for (let j = i; j + 1 < v.spareCount; j++) unchecked(v.spares[j]).set(unchecked(v.spares[j + 1]));
    v.spareCount -= 1;
    return true;
  }
  return false;
}
