// RAID metadata, kept by the CTA: each member's superblock (assembly/volumes/superblock.ts) read at boot to decide
// which members hold current data, written again (a new generation) whenever that changes, and a probe that notices
// a failed member answering again (a replaced disk) so that it can be rebuilt (rebuild.ts).
//
// At boot the UMA sends VolumesLoad once the volumes are assembled; the volumes are loaded one at a time: read every
// present member's superblock; the members whose superblock is this volume's, at the highest generation (or one
// below it: below) and not in its failed mask, are current; the others (blank, older, foreign, unreadable) are
// failed.
// One generation below: a generation goes to the members in parallel, so a reset can leave some at G + 1 and the
// rest at G. A member at G that G + 1's failed mask does not name was current when G + 1 was made, and missed no
// answered write since: a write that skipped a failed member is answered only once a superblock naming it failed
// is written (CtaTask.degradedAckWaits), and a member whose superblock write fails is failed. Two generations
// below cannot come from one cut update (one update is out at a time): that member is stale. A volume whose members
// are all blank is new (their zeros are consistent parity). Then every current member (and a rebuild's target) gets
// the superblock of the next generation, with FUA, and the volume serves I/O. VolumesLoaded goes back to the UMA
// when every volume is loaded. One page buffer per member slot is reserved at start for all of it.
import { FrameFunction, FrameStatus } from "../board/frame";
import { clockNowNs } from "../board/wasi";
import { BUFFER_CLASS_PAGE, BUFFER_PAGE_BYTES } from "../config";
import { bufferPool, bufferReserve } from "../kernel/buffers";
import { ConsoleLine, line } from "../kernel/console";
import { POOL_NONE } from "../kernel/pool";
import { timerStartParked, timerWakeBy } from "../kernel/scheduler";
import { TIMER_NONE } from "../kernel/timer";
import { stateOf } from "../volumes/config";
import { volumeStateLine } from "../volumes/report";
import {
  SUPERBLOCK_BYTES, superblockBlank, superblockBuild, superblockFailedMask, superblockGeneration, superblockMatches,
  superblockMember, superblockRebuildMember, superblockRebuildRow, superblockRebuildWindow,
} from "../volumes/superblock";
import { MEMBERS_MAX, SPARES_MAX, Volume, volumeAt, volumesCount, VolumeState, VolumeType } from "../volumes/volume";
import { CtaTask, INTERNAL_METADATA, MEMBER_NOT } from "./cta";
import { WRITE_INTENT_BYTES, WRITE_INTENT_OFFSET_BYTES } from "./write_intent";

const PROBE_PERIOD_NS: u64 = 1_000_000_000;
const PROBE_TIMER_TAG: u32 = 1;
const SPARE_PAGE: u32 = MEMBERS_MAX; // pages[SPARE_PAGE + i]: spare i's superblock

enum Phase {
  Idle = 0,
  Read = 1, // the superblocks at boot
  Write = 2, // a new generation
  Probe = 3, // a failed member's superblock
  ReadIntent = 4, // the write-intent bitmap at boot (write_intent.ts)
}

export class RaidMetadata {
  // One page per member slot, then one per spare (SPARE_PAGE + i): a spare that took a failed member's slot carries
  // that slot's superblock, and must be found there again after a restart.
  private readonly pages: StaticArray<u32> = new StaticArray<u32>(MEMBERS_MAX + SPARES_MAX);
  private readonly readOk: StaticArray<bool> = new StaticArray<bool>(MEMBERS_MAX + SPARES_MAX);
  private phase: Phase = Phase.Idle;
  private volume: u32 = 0; // the volume being read or written
  private pending: u32 = 0; // internal services not answered
  private loading: bool = false;
  private requester: u32 = 0; // the UMA, while loading
  private updates: u32 = 0; // volumes whose superblocks are to be written again, as a mask
  private probeTimer: u32 = TIMER_NONE;
  private probeMember: u32 = 0;
  // The rebuild checkpoint the generation being written holds (Volume.durableRow once every member has it).
  private writtenRebuildMember: u32 = MEMBERS_MAX;
  private writtenRebuildRow: u64 = 0;
  private writtenRebuildWindow: u32 = 0;
  generationsWritten: u64 = 0;

  constructor(private readonly cta: CtaTask) {}

  start(): void {
    for (let m: u32 = 0; m < MEMBERS_MAX + SPARES_MAX; m++) {
      const page = bufferReserve(BUFFER_CLASS_PAGE);
      assert(page != POOL_NONE, "cta: no page buffer for the RAID superblocks");
      unchecked(this.pages[m] = page);
    }
    this.probeTimer = timerStartParked(this.cta.index, PROBE_TIMER_TAG);
    assert(this.probeTimer != TIMER_NONE, "no timer for the RAID probe");
  }

  /** The CTA's timer message `id` was the probe's. */
  onTimer(id: u32): bool {
    if (id != this.probeTimer) return false;
    this.probe();
    return true;
  }

  /** VolumesLoad from `requester`: loads every RAID volume, then hands over to the thin volumes' loader (thin_load.ts). */
  load(requester: u32): void {
    this.requester = requester;
    this.loading = true;
    this.volume = 0;
    this.loadNext();
  }

  /** The superblocks of `volume` are to be written again (a member failed, a rebuild moved on or ended). */
  update(volume: u32): void {
    this.updates |= (<u32>1) << volume;
    if (this.phase == Phase.Idle && !this.loading) this.nextUpdate();
  }

  /** The superblocks of `volume` are to be written, or being written. */
  settling(volume: u32): bool {
    return (this.updates & ((<u32>1) << volume)) != 0 || (this.phase == Phase.Write && this.volume == volume && !this.loading);
  }

  /** An internal service of ours answered: `tag` holds the member. */
  onDone(tag: u64, status: FrameStatus): void {
    const m = <u32>(tag & 0xff);
    this.pending -= 1;
    if (this.phase == Phase.Read) {
      unchecked(this.readOk[m] = status == FrameStatus.Ok);
      if (this.pending == 0) this.decide();
    } else if (this.phase == Phase.Write) {
      if (this.pending == 0) this.written();
    } else if (this.phase == Phase.ReadIntent) {
      const v = volumeAt(this.volume);
      if (status != FrameStatus.Ok) memory.fill(this.cta.intent.bits(this.volume), 0xff, WRITE_INTENT_BYTES); // unknown: all dirty
      const dirty = this.cta.intent.anyDirty(this.volume);
      v.logRegions = this.cta.intent.dirtyCount(this.volume);
      // A replica with a copy down: its bits are that copy's to-do list, copied when it answers again (the probe).
      v.resyncPending = dirty && (v.type == VolumeType.Raid5 || v.failedCount() == 0);
      if (v.resyncPending && v.type == VolumeType.Replica) {
        this.say(v).s(": stopped with writes in flight; the regions they touched are copied from copy 0 to copy 1").err();
      } else if (v.resyncPending) {
        this.say(v).s(v.failedCount() == 0
          ? ": stopped with writes in flight; the rows they touched are resynchronized"
          : ": stopped with writes in flight and a member down; rows they touched may be wrong on it (the write hole)").err();
      }
      this.writeGeneration();
    } else if (this.phase == Phase.Probe) {
      this.phase = Phase.Idle;
      const v = volumeAt(this.volume);
      if (status == FrameStatus.Ok && !v.member(m).present) this.inserted(v, m);
      if (status == FrameStatus.Ok && v.member(m).failed && v.type == VolumeType.Replica && v.state == VolumeState.Failed) {
        // Both copies down: the one that failed last holds every answered write (the CTA noted which). When it answers
        // with this volume's superblock (the same disk, not a blank one in its place) it serves again; the other
        // waits to be copied to.
        if (m == v.lastCurrent && superblockMatches(this.page(m), v, m)) {
          v.member(m).failed = false;
          v.lastCurrent = MEMBERS_MAX;
          v.state = stateOf(v);
          line().s("volumes: copy ").u32(m).s(" of volume ").u32(this.volume).s(" answers again; it failed last and holds every answered write: it serves").out();
          volumeStateLine(this.volume);
          this.update(this.volume);
        }
      } else if (status == FrameStatus.Ok && v.member(m).failed && v.type == VolumeType.Raid5 && v.state == VolumeState.Failed) {
        // A failed RAID 5: the member whose failure failed it holds every answered write, and with no row dirty then,
        // rows that agree with their parity. When it answers with this volume's superblock (the same disk) it serves
        // again and the volume is degraded; any other member (or a blank disk) waits.
        if (m == v.lastCurrent && superblockMatches(this.page(m), v, m)) {
          v.member(m).failed = false;
          v.lastCurrent = MEMBERS_MAX;
          v.state = stateOf(v);
          line().s("volumes: member ").u32(m).s(" of volume ").u32(this.volume).s(" answers again; it failed last and holds every answered write: it serves").out();
          volumeStateLine(this.volume);
          this.update(this.volume);
          this.cta.rebuild.consider();
        }
      } else if (status == FrameStatus.Ok && v.member(m).failed && v.rebuildMember == MEMBERS_MAX && v.type == VolumeType.Raid1) {
        // A RAID 1 keeps no log of what its members missed: the member answering again is copied to whole.
        line().s("volumes: member ").u32(m).s(" of volume ").u32(this.volume).s(" answers again; the volume will be copied to it").out();
        this.cta.replicaResync.startOn(this.volume, m, true);
      } else if (status == FrameStatus.Ok && v.member(m).failed && v.rebuildMember == MEMBERS_MAX && v.type == VolumeType.Replica) {
        // Its own superblock, of an older generation: it holds the volume up to its failure, and the log names what
        // changed since. Anything else (blank, foreign) holds nothing of it: copied whole.
        const partial = superblockMatches(this.page(m), v, m);
        line().s("volumes: copy ").u32(m).s(" of volume ").u32(this.volume).s(" answers again; ")
          .s(partial ? "the regions written meanwhile will be copied to it" : "it holds nothing of the volume; it will be copied whole").out();
        this.cta.replicaResync.startOn(this.volume, m, !partial);
      } else if (status == FrameStatus.Ok && v.member(m).failed && v.rebuildMember == MEMBERS_MAX) {
        line().s("volumes: member ").u32(m).s(" of volume ").u32(this.volume).s(" answers again; it will be rebuilt").out();
        this.cta.rebuild.startOn(this.volume, m);
      }
      this.idle();
    }
  }

  private loadNext(): void {
    while (this.volume < volumesCount()) {
      const v = volumeAt(this.volume);
      if (!isRaid(v)) {
        v.loaded = true;
        this.volume += 1;
        continue;
      }
      this.phase = Phase.Read;
      this.pending = 0;
      for (let m: u32 = 0; m < v.memberCount; m++) {
        unchecked(this.readOk[m] = false);
        if (v.member(m).present && this.io(FrameFunction.Read, this.volume, m)) this.pending += 1;
      }
      for (let i: u32 = 0; i < v.spareCount; i++) {
        unchecked(this.readOk[SPARE_PAGE + i] = false);
        if (unchecked(v.spares[i]).present && this.io(FrameFunction.Read, this.volume, SPARE_PAGE + i)) this.pending += 1;
      }
      if (this.pending == 0) this.decide();
      return;
    }
    this.loading = false;
    this.phase = Phase.Idle;
    // The thin volumes next (their pools may be RAID, loaded now); their loader answers VolumesLoaded.
    this.cta.thin.loader.start(this.requester);
    timerWakeBy(this.probeTimer, clockNowNs() + PROBE_PERIOD_NS);
    this.cta.rebuild.consider();
    this.cta.replicaResync.consider();
    this.idle();
  }

  // Which members are current, from what their superblocks say; then the next generation is written.
  private decide(): void {
    const v = volumeAt(this.volume);
    let newest: u32 = MEMBERS_MAX;
    let allBlank = true;
    for (let m: u32 = 0; m < v.memberCount; m++) {
      if (!unchecked(this.readOk[m])) continue;
      const at = this.page(m);
      if (!superblockBlank(at)) allBlank = false;
      if (superblockMatches(at, v, m) && (newest == MEMBERS_MAX || superblockGeneration(at) > superblockGeneration(this.page(newest)))) newest = m;
    }
    // A spare that took a slot and holds a newer generation than every member (the slot's own disk stale) counts too.
    for (let i: u32 = 0; i < v.spareCount; i++) {
      const at = this.page(SPARE_PAGE + i);
      if (!unchecked(this.readOk[SPARE_PAGE + i]) || superblockMember(at) >= v.memberCount) continue;
      if (superblockMatches(at, v, superblockMember(at)) && (newest == MEMBERS_MAX || superblockGeneration(at) > superblockGeneration(this.page(newest)))) newest = SPARE_PAGE + i;
    }
    if (newest == MEMBERS_MAX) {
      if (!allBlank) this.say(v).s(": its disks hold data but no superblock of this volume; created anew (parity as found)").err();
      for (let m: u32 = 0; m < v.memberCount; m++) v.member(m).failed = !unchecked(this.readOk[m]);
      v.generation = 0;
    } else {
      const sb = this.page(newest);
      const generation = superblockGeneration(sb);
      const failedMask = superblockFailedMask(sb);
      for (let m: u32 = 0; m < v.memberCount; m++) {
        const at = this.page(m);
        const current = unchecked(this.readOk[m]) && superblockMatches(at, v, m) && generationCurrent(superblockGeneration(at), generation)
          && (failedMask & ((<u32>1) << m)) == 0;
        v.member(m).failed = !current;
        if (current && superblockGeneration(at) != generation) {
          this.say(v).s(": member ").u32(m).s(" holds generation ").u64(superblockGeneration(at)).s(" of ").u64(generation)
            .s(": a reset cut the superblock update; it is current").out();
        }
      }
      this.takeBackSpares(v, generation);
      const target = superblockRebuildMember(sb);
      if (v.type == VolumeType.Raid5 && target < v.memberCount && v.member(target).present && unchecked(this.readOk[target])) {
        v.rebuildMember = target; // resumed where the last checkpoint left it
        v.rebuildRow = superblockRebuildRow(sb);
        v.rebuildWindow = superblockRebuildWindow(sb);
        v.durableRow = v.rebuildRow;
        v.durableWindow = v.rebuildWindow;
        v.member(target).failed = true;
      }
      v.generation = generation;
    }
    v.state = stateOf(v);
    // A RAID 5 or replica that existed: its write-intent bitmap, from a current member, before the next generation.
    let source = MEMBERS_MAX;
    for (let m: u32 = 0; m < v.memberCount && newest != MEMBERS_MAX && (v.type == VolumeType.Raid5 || v.type == VolumeType.Replica); m++) {
      if (!v.member(m).failed) { source = m; break; }
    }
    if (source == MEMBERS_MAX) { this.writeGeneration(); return; }
    this.phase = Phase.ReadIntent;
    const s = this.cta.internalOpen(this.volume, INTERNAL_METADATA | <u64>source);
    if (s == POOL_NONE) { this.writeGeneration(); return; }
    this.pending = 1;
    this.cta.internalIo(s, FrameFunction.Read, this.volume, source, WRITE_INTENT_OFFSET_BYTES / <u64>v.blockSizeBytes,
      WRITE_INTENT_BYTES / v.blockSizeBytes, this.cta.intent.bits(this.volume));
    this.cta.internalDone(s);
  }

  // A spare whose superblock says it holds slot m at this generation took that slot before the restart: it goes
  // back into it (the board file still names the slot's first disk), current, or as the target of the rebuild the
  // superblock records; the slot's first disk is forgotten, as when the spare took it.
  private takeBackSpares(v: Volume, generation: u64): void {
    let i: u32 = 0;
    while (i < v.spareCount) {
      const at = this.page(SPARE_PAGE + i);
      const slot = superblockMember(at);
      const holds = unchecked(this.readOk[SPARE_PAGE + i]) && slot < v.memberCount && superblockMatches(at, v, slot)
        && generationCurrent(superblockGeneration(at), generation) && v.member(slot).failed;
      if (!holds) { i += 1; continue; }
      const current = (superblockFailedMask(at) & ((<u32>1) << slot)) == 0;
      v.member(slot).set(unchecked(v.spares[i]));
      v.member(slot).failed = !current;
      memory.copy(this.page(slot), at, SUPERBLOCK_BYTES); // the slot's superblock, for the rebuild check below
      unchecked(this.readOk[slot] = true);
      this.say(v).s(": spare ").u32(i).s(" holds member ").u32(slot).s(" since before the restart (processor ")
        .u32(v.member(slot).processor).s(" disk ").u32(v.member(slot).disk).s(")").out();
      for (let j = i; j + 1 < v.spareCount; j++) unchecked(v.spares[j]).set(unchecked(v.spares[j + 1]));
      v.spareCount -= 1;
      // Its page moves with it.
      for (let j = i; j < v.spareCount; j++) {
        memory.copy(this.page(SPARE_PAGE + j), this.page(SPARE_PAGE + j + 1), SUPERBLOCK_BYTES);
        unchecked(this.readOk[SPARE_PAGE + j] = unchecked(this.readOk[SPARE_PAGE + j + 1]));
      }
    }
  }

  // A disk answers in member m's slot, empty at boot (put in since; the DDM found it, e.g. on NVMe's Namespace
  // Attribute Changed event): it is the member's disk from now on, failed until rebuilt (or copied to). Its geometry
  // is taken as the smallest present member's: the data area is the same on every member.
  private inserted(v: Volume, m: u32): void {
    const member = v.member(m);
    let smallest: u64 = u64.MAX_VALUE;
    for (let i: u32 = 0; i < v.memberCount; i++) {
      if (v.member(i).present && v.member(i).blockCount < smallest) smallest = v.member(i).blockCount;
    }
    if (smallest == u64.MAX_VALUE) return; // no member to take the geometry from: the volume stays as it is
    member.present = true;
    member.slot = false;
    member.blockCount = smallest;
    member.blockSizeBytes = v.blockSizeBytes;
    member.physicalExponent = v.physicalExponent;
    this.say(v).s(": a disk is in the empty slot of member ").u32(m).out();
  }

  private nextUpdate(): void {
    if (this.updates == 0) return;
    this.volume = <u32>ctz(this.updates);
    this.updates &= ~((<u32>1) << this.volume);
    this.writeGeneration();
  }

  // Every current member (and a rebuild's target) gets the next generation's superblock.
  private writeGeneration(): void {
    const v = volumeAt(this.volume);
    // With no member current (the volume failed) nothing is written, and the generation stays the one the last
    // current member holds: a replica's copy that failed last is told by it (probe).
    let current: u32 = 0;
    for (let m: u32 = 0; m < v.memberCount; m++) if (v.member(m).present && !v.member(m).failed) current += 1;
    if (current == 0 && v.type == VolumeType.Replica) {
      this.phase = Phase.Write;
      this.pending = 0;
      this.written();
      return;
    }
    v.generation += 1;
    this.generationsWritten += 1;
    this.writtenRebuildMember = v.rebuildMember;
    this.writtenRebuildRow = v.rebuildRow;
    this.writtenRebuildWindow = v.rebuildWindow;
    this.phase = Phase.Write;
    this.pending = 0;
    for (let m: u32 = 0; m < v.memberCount; m++) {
      const member = v.member(m);
      if (!member.present || (member.failed && m != v.rebuildMember)) continue;
      // A replica copy being resynchronized gets the volume's superblock only once it holds all of it: until then a
      // restart finds it stale (or blank) and copies to it again what the log (or the whole volume) says.
      if (member.failed && (v.type == VolumeType.Replica || v.type == VolumeType.Raid1)) continue;
      memory.fill(this.page(m), 0, BUFFER_PAGE_BYTES);
      superblockBuild(this.page(m), v, m);
      if (this.io(FrameFunction.WriteFua, this.volume, m)) this.pending += 1;
    }
    if (this.pending == 0) this.written();
  }

  private written(): void {
    this.phase = Phase.Idle;
    // Every member written holds the checkpoint now: the rebuild's member serves up to it.
    const w = volumeAt(this.volume);
    if (w.rebuildMember < w.memberCount && w.rebuildMember == this.writtenRebuildMember
      && (this.writtenRebuildRow > w.durableRow || (this.writtenRebuildRow == w.durableRow && this.writtenRebuildWindow > w.durableWindow))) {
      w.durableRow = this.writtenRebuildRow;
      w.durableWindow = this.writtenRebuildWindow;
    }
    if (this.loading) {
      const v = volumeAt(this.volume);
      v.loaded = true;
      volumeStateLine(this.volume);
      this.volume += 1;
      this.loadNext();
      return;
    }
    this.idle();
  }

  // Nothing in flight: the next update, if any.
  private idle(): void {
    if (this.phase == Phase.Idle && !this.loading) this.nextUpdate();
  }

  // Once a period: the next failed member that is not being rebuilt gets its superblock read; if it answers, the
  // disk is back (replaced, or its controller recovered) and is rebuilt.
  private probe(): void {
    timerWakeBy(this.probeTimer, clockNowNs() + PROBE_PERIOD_NS);
    this.cta.intent.tick();
    if (this.phase != Phase.Idle || this.loading || this.cta.rebuild.active || this.cta.replicaResync.active) return;
    const count = volumesCount() * MEMBERS_MAX;
    for (let i: u32 = 0; i < count; i++) {
      const slot = (this.probeMember + i) % count;
      const volume = slot / MEMBERS_MAX;
      const m = slot % MEMBERS_MAX;
      const v = volumeAt(volume);
      if ((v.type != VolumeType.Raid5 && v.type != VolumeType.Replica && v.type != VolumeType.Raid1) || !v.loaded || m >= v.memberCount) continue;

      const member = v.member(m);
      // A failed volume's members are probed even with a rebuild stopped in it: the one that failed last may come back.
      if (!member.failed || (!member.present && !member.slot) || (v.rebuildMember != MEMBERS_MAX && v.state != VolumeState.Failed)) continue;
      this.probeMember = slot + 1;
      this.volume = volume;
      this.phase = Phase.Probe;
      this.pending = 0;
      if (this.io(FrameFunction.Read, volume, m)) this.pending = 1;
      else this.phase = Phase.Idle;
      return;
    }
  }

  // Block 0 of member `m` of `volume` (or spare m - SPARE_PAGE), to or from its page, as an internal service of its own.
  private io(fn: u32, volume: u32, m: u32): bool {
    const s = this.cta.internalOpen(volume, INTERNAL_METADATA | <u64>m);
    if (s == POOL_NONE) return false;
    if (m < SPARE_PAGE) this.cta.internalIo(s, fn, volume, m, 0, 1, this.page(m));
    else this.cta.internalIoDisk(s, fn, volumeAt(volume).spares[m - SPARE_PAGE], MEMBER_NOT, 0, 1, this.page(m));
    this.cta.internalDone(s);
    return true;
  }

  private say(v: Volume): ConsoleLine {
    return line().s("volumes: ").bytes(changetype<usize>(v.name), v.nameBytes);
  }

  @inline private page(m: u32): usize { return bufferPool(BUFFER_CLASS_PAGE).address(unchecked(this.pages[m])); }
}

// A member's superblock generation counts as the newest's: equal, or one below (a cut update; the header above).
@inline function generationCurrent(generation: u64, newest: u64): bool {
  return generation == newest || generation + 1 == newest;
}

@inline function isRaid(v: Volume): bool {
  return v.type == VolumeType.Raid0 || v.type == VolumeType.Raid1 || v.type == VolumeType.Raid5 || v.type == VolumeType.Replica;
}
