// The common transport agent: the host's router between transports (TTS) and the RTAs that own the data.
// A service request (ServiceIo) names a volume (the LUN's), a range and an SGL over the requester's buffers. The CTA
// resolves it through the volume (assembly/volumes/: a disk, RAID 0/1/5 over disks on any processor) into pieces,
// each on one member disk, sends each piece as frames of at most FRAME_SEGMENTS_MAX segments to the RTA of the
// disk's processor over that processor's link, retransmits frames not answered in time, and calls the requester back
// (ServiceIoDone) once every part is answered. A RAID-5 write (or a read of a failed member) is a parity operation
// (parity_ops.ts) over one stripe row. A service is emitted piece by piece as parts and buffers allow (`advance`), so
// a long request never needs more than the pools hold. A member whose device gives up is marked failed: redundant
// volumes go on degraded (volume lines on the console), the others fail the request.
//
// ServiceIo (to the CTA): a: FrameFunction | lun << 8; b: blockCount; c: SGL (host bus addresses; SGL_NONE for
//   Flush and Unmap); d: lba; e: tag; source: the requester's task.
// ServiceIoDone (to the requester): a: FrameStatus; c: bytes transferred; e: tag.
import {
  agentAddress, AgentKind, FRAME_BYTES, FRAME_SEGMENTS_MAX, FrameFunction, FrameStatus, frameAddSegment, frameBytes,
  frameFunction, frameInit, frameIsReply, frameSetAck, frameSetAttempt, frameSetBlocks, frameSetTransaction, frameStatus, frameTransaction,
  frameValidate, agentProcessor, frameSource,
} from "../board/frame";
import { clockNowNs } from "../board/wasi";
import { line } from "../kernel/console";
import { sgls } from "../kernel/buffers";
import { carve } from "../kernel/carve";
import { Msg, MsgKind } from "../kernel/msg";
import { POOL_NONE } from "../kernel/pool";
import { post, timerStartParked, timerWakeBy } from "../kernel/scheduler";
import { SGL_NONE, sglSegmentAddress, sglSegmentLengthBytes } from "../kernel/sgl";
import { RunResult, Task } from "../kernel/task";
import { TIMER_NONE } from "../kernel/timer";
import { frames, Link } from "../rta/links";
import { stateOf } from "../volumes/config";
import { diskMap } from "../volumes/disk";
import { Extent } from "../volumes/extent";
import { partitionMap, partitionRemoteBoards } from "../volumes/partitioned";
import { LINKS_MAX, REMOTE_PROCESSOR_BASE } from "../fabric/limits";
import { raid0Map } from "../volumes/raid0";
import { raid1Map, raid1ReadMember } from "../volumes/raid1";
import { raid5Map, raid5RowBlocks } from "../volumes/raid5";
import { rangesOverlap, replicaMap, replicaReadCopy, replicaWritesTo } from "../volumes/replica";
import { volumeStateLine } from "../volumes/report";
import { Member, MEMBERS_MAX, Volume, volumeAt, volumesCount, VolumeState, VolumeType } from "../volumes/volume";
import { OP_NONE, ParityOpKind, ParityOps } from "./parity_ops";
import { RaidMetadata } from "./raid_metadata";
import { Rebuild } from "./rebuild";
import { ReplicaResync } from "./replica_resync";
import { WriteIntent } from "./write_intent";
import { THIN_CHILDREN_MAX, ThinLayer } from "./thin";
import {
  PART_BYTES, partAttempts, partCopy, partDeadlineNs, partDisk, partFunction, partGiveUpNs, partMember, partOp,
  partProcessor, partRetries, partService, partSetAttempts, partSetBlocks, partSetCopy, partSetDeadlineNs, partSetDisk,
  partSetFunction, partSetGiveUpNs, partSetMember, partSetOp, partSetProcessor, partSetRetries, partSetService,
  partSetSglOffset, partSetSlot, partSetStale, partSetState, partSetTransaction, partSetVolumeLba, partSlot, partStale,
  partState, PartState, partTransaction, partBlocks, partVolumeLba,
} from "./part_record";
import {
  SERVICE_BYTES, serviceArrival, serviceBlocks, serviceBytes, serviceCursor, serviceCursorWindow, serviceFunction,
  serviceInternal, serviceLba, serviceOrdered, serviceOutstanding, servicePending, serviceRequester, serviceSetArrival,
  serviceSetBlocks, serviceSetBytes, serviceSetCursor, serviceSetCursorWindow, serviceSetFunction, serviceSetInternal,
  serviceSetLba, serviceSetOrdered, serviceSetOutstanding, serviceSetPending, serviceSetRequester, serviceSetSgl,
  serviceSetState, serviceSetStatus, serviceSetTag, serviceSetVolume, serviceSgl, serviceState, ServiceState,
  serviceStatus, serviceTag, serviceVolume,
} from "./service_record";

export const PROCESSORS_MAX: u32 = 8;
export const SERVICES_MAX: u32 = 128;
export const PARTS_MAX: u32 = 512;
const CTA_PRIORITY: u32 = 2;
const CTA_INBOX_DEPTH: u32 = 256 + THIN_CHILDREN_MAX; // the thin layer's children come back here too
const CTA_BATCH_MAX: u32 = 32;
const RETRANSMIT_NS: u64 = 200_000_000; // longer than a healthy request; shorter than the DDM's device timeout
const BUSY_RETRY_NS: u64 = 1_000_000; // the first retry after BUSY or NOT STARTED (or a full link); doubled per attempt
const BUSY_RETRY_SHIFT_MAX: u32 = 7; // up to 128 ms between retries
// A part is given up this long after it was first sent: past the DDM's 2 s device timeout and controller reset, so a
// storage processor that resets (and answers NOT STARTED meanwhile) or a lossy link does not fail the request. Time,
// not a count of attempts: how often a part is retried depends on why (BUSY answers come back in microseconds).
const GIVE_UP_NS: u64 = 5_000_000_000;
const ATTEMPTS_MAX: u32 = 255; // the attempt field (u8, in the frame for the trace) saturates here
// A member of a redundant volume whose device answers an error (or times out) gets the piece again, as a new
// transaction, this many times before it is failed: a DMA error, a controller reset or a lost frame is not a dead
// disk, and failing members for those soon fails the volume. A disk that is gone ("no disk") fails at once, and so
// does one that powered on since its last command (DiskChanged: a disk put in a pulled one's place holds nothing of
// the volume; the probe then finds it answering and rebuilds it).
const MEMBER_RETRIES_MAX: u32 = 3;
export const MEMBER_NOT: u32 = 0xff; // a part's member field for a disk that is no member (a spare being read)
// A piece is emitted only while this many parts and frames are free: a piece of a requester's SGL takes one part per
// FRAME_SEGMENTS_MAX segments, and a parity operation one per member.
const PIECE_PARTS_MAX: u32 = 16;

// The owner of an internal service, in its tag's top byte.
export const INTERNAL_METADATA: u64 = 1 << 56;
export const INTERNAL_REBUILD: u64 = 2 << 56;
export const INTERNAL_INTENT: u64 = 3 << 56;
export const INTERNAL_REPLICA: u64 = 4 << 56;
// Service slots a replica volume's requests leave free: the write-intent log's writes and a resync's steps, which
// its writes may wait for, always find one.
const SERVICES_INTERNAL_RESERVE: u32 = 8;
const INTERNAL_MASK: u64 = 0xff << 56;


export class CtaTask extends Task {
  // This board's processors (0..PROCESSORS_MAX-1), then the other boards of a cluster (REMOTE_PROCESSOR_BASE + b).
  readonly links: StaticArray<Link | null> = new StaticArray<Link | null>(LINKS_MAX);
  umaTask: u32 = 0;
  private readonly parts: usize = carve(PARTS_MAX * PART_BYTES, 16);
  // A finished part's record, kept while its service is told: failing a member writes superblocks, whose parts may
  // take the finished part's slot.
  private readonly finished: usize = carve(PART_BYTES, 16);
  private readonly services: usize = carve(SERVICES_MAX * SERVICE_BYTES, 16);
  private readonly frame: usize = frames().address(frames().acquire()); // receive scratch, held for good
  private readonly out: Msg = new Msg();
  private readonly extent: Extent = new Extent();
  private readonly piece: Extent = new Extent(); // emitExtent's own, so that the caller's extent stays as it was
  private emittingCopy: bool = false; // the parts being built are a RAID-1 write's further copies
  readonly ops: ParityOps = new ParityOps(this);
  readonly metadata: RaidMetadata = new RaidMetadata(this);
  readonly rebuild: Rebuild = new Rebuild(this);
  readonly replicaResync: ReplicaResync = new ReplicaResync(this);
  readonly intent: WriteIntent = new WriteIntent(this);
  readonly thin: ThinLayer = new ThinLayer(this); // thin volumes (thin.ts): requests resolved into children on the pool
  private nextTransaction: u32 = 1;
  // Every part at or above this index is Free: the scans stop here. Parts are taken lowest first, so it stays near
  // the number in flight, not PARTS_MAX.
  private partsEnd: u32 = 0;
  private partsFree: u32 = PARTS_MAX;
  // Services with pieces not yet emitted (waiting for parts, frames or parity operations): advanced after each run.
  private servicesPending: u32 = 0;
  private servicesUsed: u32 = 0; // services not Free
  private servicesArrived: u32 = 0; // services opened so far (wraps): each one's arrival number
  // No part's deadline is earlier than this: the sweep skips its scan of the parts until then. Lowered
  // whenever a deadline is set, recomputed by each scan; the sweep's timer is brought forward to it after every
  // run (parked while it is MAX_VALUE: an idle CTA never wakes the processor).
  private sweepAtNs: u64 = u64.MAX_VALUE;
  private sweepTimer: u32 = TIMER_NONE;
  retransmitCount: u64 = 0;
  lateReplyCount: u64 = 0;
  servicesDone: u64 = 0;
  memberFailures: u64 = 0;
  memberRetries: u64 = 0; // parts sent again after a member's error (partRetry)

  constructor() { super("cta", CTA_PRIORITY, CTA_INBOX_DEPTH, 1_000_000); }

  start(): void {
    this.sweepTimer = timerStartParked(this.index, 0);
    assert(this.sweepTimer != TIMER_NONE, "no timer for the CTA");
    this.metadata.start();
    this.intent.start();
    this.replicaResync.start();
  }

  run(): RunResult {
    let handled: u32 = 0;
    while (handled < CTA_BATCH_MAX && this.inbox.pop(this.scratch)) {
      handled += 1;
      this.dispatch(this.scratch);
    }
    const moved = this.ops.poll();
    const thinMoved = this.thin.poll();
    if (this.servicesPending > 0) this.advanceAll();
    this.rebuild.pump(this.servicesPending == 0);
    this.replicaResync.pump(this.servicesPending == 0);
    if (this.sweepAtNs != u64.MAX_VALUE) timerWakeBy(this.sweepTimer, this.sweepAtNs);
    return handled > 0 || moved || thinMoved ? RunResult.Busy : RunResult.Idle;
  }

  /** Requests in flight: services not yet answered. */
  servicesActive(): u32 {
    let count: u32 = 0;
    for (let s: u32 = 0; s < SERVICES_MAX; s++) if (serviceState(this.service(s)) != ServiceState.Free) count += 1;
    return count;
  }

  private dispatch(msg: Msg): void {
    switch (<i32>msg.kind) {
      case MsgKind.ServiceIo: this.onService(msg); break;
      case MsgKind.Frame: {
        this.onReply(frames().address(msg.a));
        frames().release(msg.a);
        break;
      }
      case MsgKind.Irq: this.drainLinks(); break;
      case MsgKind.Timer: {
        if (!this.metadata.onTimer(msg.a)) this.sweep();
        break;
      }
      case MsgKind.ServiceIoDone: {
        // One of the CTA's own services: the RAID metadata's, a rebuild's, the write-intent bitmap's, or a thin
        // volume's child on its pool.
        const owner = msg.e & INTERNAL_MASK;
        if (owner == INTERNAL_METADATA) this.metadata.onDone(msg.e & ~INTERNAL_MASK, <FrameStatus>msg.a);
        else if (owner == INTERNAL_INTENT) this.intent.onDone(msg.e & ~INTERNAL_MASK, <FrameStatus>msg.a);
        else if (owner == INTERNAL_REBUILD) this.rebuild.onDone(msg.e & ~INTERNAL_MASK, <FrameStatus>msg.a);
        else if (owner == INTERNAL_REPLICA) this.replicaResync.onDone(msg.e & ~INTERNAL_MASK, <FrameStatus>msg.a);
        else this.thin.onChildDone(msg);
        break;
      }
      case MsgKind.VolumesLoad: this.metadata.load(msg.source); break;
      case MsgKind.XorDone: this.ops.onXorDone(msg); break;
      default: assert(false, "cta: unexpected message kind");
    }
  }

  private drainLinks(): void {
    for (let p: u32 = 0; p < PROCESSORS_MAX; p++) {
      const link = unchecked(this.links[p]);
      if (link == null) continue;
      for (let i: u32 = 0; i < 256 && link.receive(this.frame); i++) this.onReply(this.frame);
    }
  }

  // ---- Services ----

  private onService(msg: Msg): void {
    const fn = msg.a & 0xff;
    const volume = msg.a >> 8;
    if (this.thin.claims(fn, volume)) { this.thin.onService(msg); return; }
    const reserve = volume < volumesCount() && volumeAt(volume).type == VolumeType.Replica;
    const s = reserve && this.servicesUsed + SERVICES_INTERNAL_RESERVE >= SERVICES_MAX ? POOL_NONE : this.serviceOpen(msg.source, msg.e);
    if (s == POOL_NONE) {
      this.answer(msg.source, msg.e, FrameStatus.Busy, 0);
      return;
    }
    const service = this.service(s);
    const blocks: u64 = fn == FrameFunction.Flush ? 0 : <u64>msg.b;
    serviceSetFunction(service, fn);
    serviceSetVolume(service, volume);
    serviceSetBlocks(service, blocks);
    serviceSetLba(service, msg.d);
    serviceSetCursor(service, msg.d);
    serviceSetSgl(service, msg.c);
    const status = this.serviceCheck(fn, volume, msg.d, blocks, msg.c);
    if (status != FrameStatus.Ok) {
      this.serviceFail(s, status);
      this.serviceEmitted(s);
      this.serviceFinishIfDone(s);
      return;
    }
    const v = volumeAt(volume);
    // A RAID-5 write's cursor is a stripe row from the start: an LBA that also reads as a row number later on (a
    // write at LBA 1 reaching row 1) would otherwise send the write back to its first row, over and over.
    if (v.type == VolumeType.Raid5 && fn != FrameFunction.Read && fn != FrameFunction.Flush) serviceSetCursor(service, msg.d / raid5RowBlocks(v));
    if (fn == FrameFunction.Flush) this.emitFlush(s, v);
    else this.advance(s);
    this.serviceFinishIfDone(s);
  }

  private serviceCheck(fn: u32, volume: u32, lba: u64, blocks: u64, sgl: u32): FrameStatus {
    if (volume >= volumesCount()) return FrameStatus.NoDisk;
    const v = volumeAt(volume);
    if (!v.loaded) return FrameStatus.NotStarted;
    if (v.state == VolumeState.Failed || v.type == VolumeType.Thin) return FrameStatus.NoDisk;
    if (lba > v.blockCount || blocks > v.blockCount - lba) return FrameStatus.IllegalRequest;
    if (!isData(fn)) return FrameStatus.Ok;
    if (sgl == SGL_NONE || blocks == 0 || sgls().totalBytes(sgl) != blocks * <u64>v.blockSizeBytes) return FrameStatus.IllegalRequest;
    sgls().check(sgl);
    const count = sgls().segmentCount(sgl);
    for (let i: u32 = 0; i < count; i++) if (sglSegmentLengthBytes(sgls().segment(sgl, i)) % v.blockSizeBytes != 0) return FrameStatus.IllegalRequest;
    return FrameStatus.Ok;
  }

  // Emits the service's next pieces while parts, frames and parity operations allow; marks it pending otherwise.
  private advance(s: u32): void {
    const service = this.service(s);
    const v = volumeAt(serviceVolume(service));
    const fn = serviceFunction(service);
    const end = serviceLba(service) + serviceBlocks(service);
    const raid5Write = v.type == VolumeType.Raid5 && fn != FrameFunction.Read;
    while (serviceStatus(service) == FrameStatus.Ok) {
      const cursor = serviceCursor(service);
      if (raid5Write ? cursor == u64.MAX_VALUE : cursor >= end) break;
      if (this.partsFree < PIECE_PARTS_MAX || frames().freeCount < PIECE_PARTS_MAX) break;
      if (raid5Write) {
        if (!this.emitParityWrite(s, v)) break;
      } else if (!this.emitPiece(s, v, fn, cursor, end - cursor)) break;
    }
    const pending = serviceStatus(service) == FrameStatus.Ok
      && (raid5Write ? serviceCursor(service) != u64.MAX_VALUE : serviceCursor(service) < end);
    if (pending != servicePending(service)) {
      serviceSetPending(service, pending);
      if (pending) this.servicesPending += 1;
      else this.servicesPending -= 1;
    }
  }

  private advanceAll(): void {
    for (let s: u32 = 0; s < SERVICES_MAX && this.servicesPending > 0; s++) {
      const service = this.service(s);
      if (serviceState(service) != ServiceState.Active || !servicePending(service)) continue;
      this.advance(s);
      this.serviceFinishIfDone(s);
    }
  }

  // Nothing more will be emitted for `s` (it failed): it finishes when what is out comes back.
  private serviceEmitted(s: u32): void {
    const service = this.service(s);
    serviceSetCursor(service, serviceLba(service) + serviceBlocks(service));
    if (servicePending(service)) {
      serviceSetPending(service, false);
      this.servicesPending -= 1;
    }
  }

  // One piece of a service at volume LBA `lba` (on one member, within one chunk): its parts. False when it could not.
  private emitPiece(s: u32, v: Volume, fn: u32, lba: u64, blocks: u64): bool {
    const service = this.service(s);
    const e = this.extent;
    switch (<i32>v.type) {
      case VolumeType.Disk: {
        diskMap(v, lba, blocks, e);
        // A partitioned volume's page on another board; no owner known yet (this board has not caught up with the
        // cluster's table since it started): unavailable, as a page of a board it cannot reach.
        if (!partitionMap(serviceVolume(service), lba, e)) {
          this.serviceFail(s, FrameStatus.Unreachable);
          this.serviceEmitted(s);
          return false;
        }
        break;
      }
      case VolumeType.Raid0: raid0Map(v, lba, blocks, e); break;
      case VolumeType.Raid1: {
        if (fn == FrameFunction.Read) {
          const member = raid1ReadMember(v, lba);
          if (member == MEMBERS_MAX) { this.serviceFail(s, FrameStatus.DeviceError); return false; }
          raid1Map(v, member, lba, blocks, e);
        } else {
          // Every member that has not failed gets the piece, and a member being copied to (replica_resync.ts): then
          // the write holds its range, so that it never lands between a window's read and its write.
          const volume = serviceVolume(service);
          if (this.replicaResync.on(volume) && !serviceOrdered(service)) {
            const from = serviceLba(service);
            const count = serviceBlocks(service);
            if (this.replicaRangeHeld(volume, from, count, s) || this.replicaResync.holds(volume, from, count)) return false;
            serviceSetOrdered(service);
          }
          raid1Map(v, 0, lba, blocks, e);
          const pieceBlocks = e.blocks;
          this.emittingCopy = false;
          for (let m: u32 = 0; m < v.memberCount; m++) {
            if (v.member(m).failed && m != v.rebuildMember) continue;
            raid1Map(v, m, lba, pieceBlocks, e);
            const sent = this.emitExtent(s, fn, lba, e);
            this.emittingCopy = true;
            if (!sent) break;
          }
          this.emittingCopy = false;
          if (this.serviceFailed(s)) return false;
          serviceSetCursor(service, lba + pieceBlocks);
          return true;
        }
        break;
      }
      case VolumeType.Replica: {
        if (fn != FrameFunction.Read) return this.emitReplicaWrite(s, v, fn, lba, blocks);
        const copy = replicaReadCopy(v, lba);
        if (copy == MEMBERS_MAX) { this.serviceFail(s, FrameStatus.DeviceError); return false; }
        replicaMap(v, copy, lba, blocks, e);
        break;
      }
      default: {
        raid5Map(v, lba, blocks, e);
        if (!this.serves(v, e.member, lba, e.blocks)) {
          // A read of a failed member: rebuilt from the others, one parity operation per window.
          if (!this.ops.startRead(s, serviceVolume(service), lba, e.blocks)) return false;
          serviceSetCursor(service, lba + e.blocks);
          return true;
        }
      }
    }
    if (!this.emitExtent(s, fn, lba, e)) return false;
    serviceSetCursor(service, lba + e.blocks);
    return true;
  }

  // One piece of a replica write (or unmap) within one chunk: once the service holds its range and the chunk's
  // region is in the write-intent log on the copies, to every copy that takes writes, a write with FUA (the reply
  // frame of each says its copy has it on the medium). False when it must wait (the range is held, the log is being
  // written) or failed.
  private emitReplicaWrite(s: u32, v: Volume, fn: u32, lba: u64, blocks: u64): bool {
    const service = this.service(s);
    const volume = serviceVolume(service);
    if (!serviceOrdered(service)) {
      const from = serviceLba(service);
      const count = serviceBlocks(service);
      if (this.replicaRangeHeld(volume, from, count, s) || this.replicaResync.holds(volume, from, count)) return false;
      serviceSetOrdered(service);
    }
    const e = this.extent;
    replicaMap(v, 0, lba, blocks, e);
    const pieceBlocks = e.blocks;
    if (!this.intent.ready(volume, lba / <u64>v.chunkBlocks)) return false;
    const copyFn = fn == FrameFunction.Write ? <u32>FrameFunction.WriteFua : fn;
    this.emittingCopy = false;
    for (let m: u32 = 0; m < v.memberCount; m++) {
      if (!replicaWritesTo(v, m)) continue;
      replicaMap(v, m, lba, pieceBlocks, e);
      const sent = this.emitExtent(s, copyFn, lba, e);
      this.emittingCopy = true;
      if (!sent) break;
    }
    if (!this.emittingCopy) this.serviceFail(s, FrameStatus.DeviceError); // no copy takes writes
    this.emittingCopy = false;
    if (this.serviceFailed(s)) return false;
    serviceSetCursor(service, lba + pieceBlocks);
    return true;
  }

  // A replica write that succeeded while a copy is down is answered only once the superblock saying the copy is down
  // is on the current copy: a restart before that would take both copies for current, and the crash resync could
  // copy the stale one over the one that has the write.
  // A RAID-5 or RAID-1 write likewise, while a member is failed: a restart before the superblock is written would find the member
  // current (one generation below counts as current, raid_metadata.ts) although it missed the write.
  private degradedAckWaits(service: usize): bool {
    if (serviceStatus(service) != FrameStatus.Ok) return false;
    const volume = serviceVolume(service);
    const v = volumeAt(volume);
    if (v.type == VolumeType.Raid5 || v.type == VolumeType.Raid1) {
      if (!isWrite(serviceFunction(service)) || serviceInternal(service)) return false;
    } else if (!serviceOrdered(service)) {
      return false;
    }
    return v.failedCount() != 0 && this.metadata.settling(volume);
  }

  /** A write (not the CTA's own) on `volume` is in flight over blocks of [lba, lba + blocks). */
  writeInFlight(volume: u32, lba: u64, blocks: u64): bool {
    for (let t: u32 = 0; t < SERVICES_MAX; t++) {
      const other = this.service(t);
      if (serviceState(other) != ServiceState.Active || serviceVolume(other) != volume || serviceInternal(other)) continue;
      if (isWrite(serviceFunction(other)) && rangesOverlap(lba, blocks, serviceLba(other), serviceBlocks(other))) return true;
    }
    return false;
  }

  /**
   * Some replica write of `volume` holds blocks of [lba, lba + blocks); with `waiter` (a service asking to hold
   * them), also one that arrived before it and waits for them: overlapping writes take their range in the order they
   * arrived, so a long write is never passed over, again and again, by shorter ones that overlap it.
   */
  replicaRangeHeld(volume: u32, lba: u64, blocks: u64, waiter: u32 = POOL_NONE): bool {
    const arrived = waiter == POOL_NONE ? 0 : serviceArrival(this.service(waiter));
    for (let t: u32 = 0; t < SERVICES_MAX; t++) {
      const other = this.service(t);
      if (t == waiter || serviceState(other) != ServiceState.Active || serviceVolume(other) != volume || serviceInternal(other)) continue;
      const holds = serviceOrdered(other);
      const before = waiter != POOL_NONE && isWrite(serviceFunction(other)) && serviceStatus(other) == FrameStatus.Ok && <i32>(serviceArrival(other) - arrived) < 0;
      if (!holds && !before) continue;
      if (rangesOverlap(lba, blocks, serviceLba(other), serviceBlocks(other))) return true;
    }
    return false;
  }

  // Member `m` of a RAID 5 holds current data for [lba, lba + blocks) (within one chunk): not failed, or rebuilt
  // past it and a superblock says so (Volume.durableRow).
  private serves(v: Volume, m: u32, lba: u64, blocks: u64): bool {
    if (!v.member(m).failed) return true;
    if (m != v.rebuildMember) return false;
    const row = lba / raid5RowBlocks(v);
    const lastWindow = <u32>(((lba % raid5RowBlocks(v)) % <u64>v.chunkBlocks + blocks - 1) / <u64>this.ops.windowBlocks(v));
    return row < v.durableRow || (row == v.durableRow && lastWindow < v.durableWindow);
  }

  // The next stripe row's parity operations of a RAID-5 write (or unmap: zeros). False when none could start.
  private emitParityWrite(s: u32, v: Volume): bool {
    const service = this.service(s);
    const lba = serviceLba(service);
    const end = lba + serviceBlocks(service);
    const rowBlocks = raid5RowBlocks(v);
    let cursor = serviceCursor(service); // a row (onService)
    const kind = serviceFunction(service) == FrameFunction.Unmap ? ParityOpKind.Zero : ParityOpKind.Write;
    if (!this.ops.startWrite(s, serviceVolume(service), cursor, serviceCursorWindow(service), kind)) {
      serviceSetCursor(service, cursor);
      return false;
    }
    // Next window of this row, or the next row, or done.
    let window = serviceCursorWindow(service) + 1;
    if (window >= this.ops.windowsPerChunk(v)) {
      window = 0;
      cursor += 1;
    }
    serviceSetCursorWindow(service, window);
    serviceSetCursor(service, cursor * rowBlocks >= end ? u64.MAX_VALUE : cursor);
    return true;
  }

  private emitFlush(s: u32, v: Volume): void {
    // Each member's disk is flushed (a failed one is skipped: its data lives in the others).
    for (let m: u32 = 0; m < v.memberCount; m++) {
      const member = v.member(m);
      if (member.failed) continue;
      this.extent.member = m;
      this.extent.processor = member.processor;
      this.extent.disk = member.disk;
      this.extent.lba = 0;
      this.extent.blocks = 0;
      if (!this.partAdd(s, OP_NONE, FrameFunction.Flush, this.extent, SGL_NONE, 0, 0, 0, 0)) return;
    }
    // A partitioned volume's pages on other boards: their disks too (the same disk number there).
    const remote = v.type == VolumeType.Disk ? partitionRemoteBoards(serviceVolume(this.service(s))) : 0;
    for (let b: u32 = 0; b < 32; b++) {
      if ((remote & (1 << b)) == 0) continue;
      // A board this one has no fabric link to (no cluster port, or its peer never said hello) cannot be flushed:
      // the flush fails as a command to its pages does (emitExtent), instead of a part with no link to go on.
      if (unchecked(this.links[REMOTE_PROCESSOR_BASE + b]) == null) {
        this.serviceFail(s, FrameStatus.Unreachable);
        continue;
      }
      this.extent.member = 0;
      this.extent.processor = REMOTE_PROCESSOR_BASE + b;
      this.extent.disk = v.member(0).disk;
      this.extent.lba = 0;
      this.extent.blocks = 0;
      if (!this.partAdd(s, OP_NONE, FrameFunction.Flush, this.extent, SGL_NONE, 0, 0, 0, 0)) return;
    }
    this.serviceEmitted(s);
  }

  // The requester's data for volume [lba, lba + e.blocks) at extent `e`: one part per FRAME_SEGMENTS_MAX segments.
  private emitExtent(s: u32, fn: u32, lba: u64, e: Extent): bool {
    const service = this.service(s);
    if (unchecked(this.links[e.processor]) == null) {
      // Another board's pages without a fabric link to it: unreachable (ALUA unavailable), not a missing disk.
      this.serviceFail(s, e.processor >= REMOTE_PROCESSOR_BASE ? FrameStatus.Unreachable : FrameStatus.NoDisk);
      this.serviceEmitted(s);
      return false;
    }
    if (!isData(fn)) return this.partAdd(s, OP_NONE, fn, e, SGL_NONE, 0, 0, <u32>e.blocks, lba);
    const v = volumeAt(serviceVolume(service));
    const blockBytes = <u64>v.blockSizeBytes;
    const sgl = serviceSgl(service);
    const offset = (lba - serviceLba(service)) * blockBytes;
    const endOffset = offset + e.blocks * blockBytes;
    // Find the segment that holds `offset`, then take up to FRAME_SEGMENTS_MAX segments (or pieces of them) per part.
    const count = sgls().segmentCount(sgl);
    let i: u32 = 0;
    let start: u64 = 0; // the offset of segment i
    while (i < count && start + <u64>sglSegmentLengthBytes(sgls().segment(sgl, i)) <= offset) {
      start += <u64>sglSegmentLengthBytes(sgls().segment(sgl, i));
      i += 1;
    }
    let at = offset;
    const piece = this.piece;
    piece.member = e.member;
    piece.processor = e.processor;
    piece.disk = e.disk;
    piece.lba = e.lba;
    while (at < endOffset) {
      const first = i;
      const firstSkip = at - start;
      let bytes: u64 = 0;
      let segments: u32 = 0;
      let walk = start;
      let j = i;
      while (j < count && segments < FRAME_SEGMENTS_MAX && walk < endOffset) {
        const length = <u64>sglSegmentLengthBytes(sgls().segment(sgl, j));
        const from = max(walk, at);
        const to = min(walk + length, endOffset);
        bytes += to - from;
        segments += 1;
        walk += length;
        j += 1;
      }
      piece.blocks = bytes / blockBytes;
      if (!this.partAdd(s, OP_NONE, fn, piece, sgl, first, firstSkip, <u32>at, lba + (at - offset) / blockBytes)) return false;
      piece.lba += piece.blocks;
      at += bytes;
      // The next part starts at segment j, unless the last one was cut by endOffset (then we are done).
      i = j;
      start = walk;
    }
    return true;
  }

  // ---- Parts ----

  /**
   * Builds a part's frame and sends it (or queues it). The data: `bytes`-long run of `sgl` from segment `first`
   * (skipping `skip` bytes of it) for a requester's piece, or one flat buffer for a parity operation (partAddFlat).
   * False when no part or frame slot is free: the service (or operation) fails Busy.
   */
  private partAdd(s: u32, op: u32, fn: u32, e: Extent, sgl: u32, first: u32, skip: u64, sglOffset: u32, volumeLba: u64): bool {
    const p = this.partBuild(s, op, fn, e);
    if (p == POOL_NONE) return false;
    const part = this.part(p);
    partSetSglOffset(part, sglOffset);
    partSetBlocks(part, e.blocks);
    partSetVolumeLba(part, volumeLba);
    if (sgl != SGL_NONE) {
      const f = frames().address(partSlot(part));
      let remaining = e.blocks * <u64>volumeAt(serviceVolume(this.service(s))).blockSizeBytes;
      let i = first;
      let offset = skip;
      while (remaining > 0) {
        const segment = sgls().segment(sgl, i);
        const run = min(<u64>sglSegmentLengthBytes(segment) - offset, remaining);
        assert(frameAddSegment(f, sglSegmentAddress(segment) + offset, <u32>run), "cta: part over FRAME_SEGMENTS_MAX segments");
        remaining -= run;
        offset = 0;
        i += 1;
      }
    }
    this.partSend(p, clockNowNs());
    return true;
  }

  /** A parity operation's part: `e.blocks` blocks at `e`, from or into the flat buffer at `address`. */
  partAddFlat(s: u32, op: u32, fn: u32, e: Extent, address: usize): bool {
    if (unchecked(this.links[e.processor]) == null) return false;
    const p = this.partBuild(s, op, fn, e);
    if (p == POOL_NONE) return false;
    const part = this.part(p);
    partSetBlocks(part, e.blocks);
    const blockBytes = volumeAt(serviceVolume(this.service(s))).blockSizeBytes;
    assert(frameAddSegment(frames().address(partSlot(part)), <u64>address, <u32>(e.blocks * <u64>blockBytes)));
    this.partSend(p, clockNowNs());
    return true;
  }

  private partBuild(s: u32, op: u32, fn: u32, e: Extent): u32 {
    const p = this.partFree();
    const slot = p == POOL_NONE ? POOL_NONE : frames().acquire();
    if (slot == POOL_NONE) {
      if (op == OP_NONE) {
        this.serviceFail(s, FrameStatus.Busy);
        this.serviceEmitted(s);
      }
      return POOL_NONE;
    }
    const transaction = this.nextTransaction;
    this.nextTransaction += 1;
    const f = frames().address(slot);
    frameInit(f, <FrameFunction>fn, agentAddress(0, AgentKind.Cta), agentAddress(e.processor, AgentKind.Rta), s, transaction);
    frameSetBlocks(f, e.disk, e.lba, <u32>e.blocks);
    const part = this.part(p);
    memory.fill(part, 0, PART_BYTES);
    partSetState(part, PartState.Queued);
    if (p >= this.partsEnd) this.partsEnd = p + 1;
    this.partsFree -= 1;
    partSetProcessor(part, e.processor);
    partSetMember(part, e.member);
    partSetDisk(part, e.disk);
    partSetService(part, s);
    partSetSlot(part, slot);
    partSetTransaction(part, transaction);
    partSetOp(part, op);
    partSetFunction(part, fn);
    partSetCopy(part, this.emittingCopy);
    partSetGiveUpNs(part, clockNowNs() + GIVE_UP_NS);
    serviceSetOutstanding(this.service(s), serviceOutstanding(this.service(s)) + 1);
    return p;
  }

  private partSend(p: u32, nowNs: u64): void {
    const part = this.part(p);
    const processor = partProcessor(part);
    const link = unchecked(this.links[processor])!; // checked when the service was accepted
    const f = frames().address(partSlot(part));
    const attempts = partAttempts(part);
    frameSetAttempt(f, attempts);
    frameSetAck(f, this.ackFor(processor));
    if (!link.send(f)) {
      this.partRetryLater(part, nowNs);
      return;
    }
    if (attempts > 0) this.retransmitCount += 1;
    partSetAttempts(part, min(attempts + 1, ATTEMPTS_MAX));
    partSetState(part, PartState.Sent);
    this.partDeadline(part, nowNs + RETRANSMIT_NS);
  }

  // Queued again, to be sent after a delay that grows with the part's attempts.
  private partRetryLater(part: usize, nowNs: u64): void {
    partSetState(part, PartState.Queued);
    this.partDeadline(part, nowNs + (BUSY_RETRY_NS << min(partAttempts(part), BUSY_RETRY_SHIFT_MAX)));
  }

  private partDeadline(part: usize, atNs: u64): void {
    partSetDeadlineNs(part, atNs);
    if (atNs < this.sweepAtNs) this.sweepAtNs = atNs;
  }

  private onReply(f: usize): void {
    if (frameValidate(f) != 0 || !frameIsReply(f)) return;
    if (frameFunction(f) == FrameFunction.StartAgent) {
      this.forwardToUma(f);
      return;
    }
    const p = this.partFind(frameTransaction(f));
    // Only the processor (or board) a part went to answers it: another board's reply naming its transaction is a lie.
    if (p == POOL_NONE || partProcessor(this.part(p)) != agentProcessor(frameSource(f))) {
      this.lateReplyCount += 1; // a duplicate, an answer to a part already answered, or from the wrong peer
      return;
    }
    const status = <FrameStatus>frameStatus(f);
    if (status == FrameStatus.Busy || status == FrameStatus.NotStarted) {
      // The RTA (or its DDM) could not take it yet: send again shortly, within the same time budget, as a new
      // transaction: the RTA keeps its BUSY answer to the old one and would repeat it to a retransmission.
      this.partRenumber(this.part(p));
      this.partRetryLater(this.part(p), clockNowNs());
      return;
    }
    this.partFinish(p, status, frameBytes(f));
  }

  private forwardToUma(f: usize): void {
    const slot = frames().acquire();
    if (slot == POOL_NONE) return; // the UMA asks again
    memory.copy(frames().address(slot), f, FRAME_BYTES);
    if (!post(this.umaTask, this.out.set(MsgKind.Frame, this.index, slot, 0))) frames().release(slot);
  }

  // `unanswered`: the part's time budget ran out with no answer to any of its retransmits (the sweep).
  private partFinish(p: u32, status: FrameStatus, bytes: u64, unanswered: bool = false): void {
    const stale = partStale(this.part(p));
    // A read its member's failure overtook: the disk that answered may be a blank one put in the pulled one's place
    // (only the first command after its power-on says DiskChanged; the others read its zeros), so its data is not
    // trusted: the read is recovered (rebuilt from parity, or read from another copy) as if the member had failed it.
    if (stale && status == FrameStatus.Ok && partFunction(this.part(p)) == FrameFunction.Read) status = FrameStatus.DiskChanged;
    if (!stale && this.partRetry(p, status, unanswered)) return;
    // A write a redundant volume's member did not take, retries spent: the member no longer holds what the parity or
    // the other copies say; it is failed (and rebuilt), so the write stands degraded and is never read back wrong.
    if (!stale && status != FrameStatus.Ok && !isMemberFailure(status) && this.partRedundantWrite(this.part(p))) status = FrameStatus.DeviceError;
    const part = this.finished;
    memory.copy(part, this.part(p), PART_BYTES);
    const s = partService(part);
    const op = partOp(part);
    const member = partMember(part);
    frames().release(partSlot(part));
    partSetState(this.part(p), PartState.Free);
    this.partsFree += 1;
    while (this.partsEnd > 0 && partState(this.part(this.partsEnd - 1)) == PartState.Free) this.partsEnd -= 1;
    const service = this.service(s);
    serviceSetOutstanding(service, serviceOutstanding(service) - 1);
    const volume = serviceVolume(service);
    if (status == FrameStatus.MediumError && this.partRedundantWrite(part)) status = FrameStatus.DeviceError; // not read back: failed
    if (status != FrameStatus.Ok && isMemberFailure(status) && !stale) this.memberFail(volume, member, status, partProcessor(part), partDisk(part));
    if (op != OP_NONE) {
      this.ops.partDone(op, member, status);
    } else if (status == FrameStatus.Ok) {
      if (!partCopy(part)) serviceSetBytes(service, serviceBytes(service) + bytes);
    } else if (serviceInternal(service) || !this.partRecover(s, part, status)) {
      this.serviceFail(s, status);
      this.serviceEmitted(s);
    }
    this.serviceFinishIfDone(s);
  }

  // A part of a redundant volume's member that failed for a reason a retry may cure: sent again as a new transaction
  // (the RTA keeps the failed answer of the old one), within a fresh time budget. True when it was.
  // A part a controller reset caught in flight (ABORTED: the member did not take it, or not for sure) is sent again
  // within its own time budget, never counted done: a write a member never took acknowledged would be a lost write
  // (the parity or the other copies say one thing, the member another), and past the budget it times out and the
  // member is failed as above.
  // A copy on another board (a replica's copy 1 there) that answered none of GIVE_UP_NS of retransmits is not retried:
  // that board is off or cut off (its own device faults come back as answers), so the copy fails after one budget,
  // not four, and a write that found the board gone is answered degraded 5 s later, not 20 s.
  private partRetry(p: u32, status: FrameStatus, unanswered: bool): bool {
    const part = this.part(p);
    const v = volumeAt(serviceVolume(this.service(partService(part))));
    if (v.type != VolumeType.Raid1 && v.type != VolumeType.Raid5 && v.type != VolumeType.Replica) return false;
    if (unanswered && partProcessor(part) >= REMOTE_PROCESSOR_BASE) return false;
    const nowNs = clockNowNs();
    if (status == FrameStatus.Aborted) {
      this.partRenumber(part);
      this.memberRetries += 1;
      this.partRetryLater(part, nowNs);
      return true;
    }
    if (status != FrameStatus.DeviceError && status != FrameStatus.Timeout && status != FrameStatus.MediumError) return false;
    const retries = partRetries(part);
    if (retries >= MEMBER_RETRIES_MAX) return false;
    partSetRetries(part, retries + 1);
    this.partRenumber(part);
    partSetAttempts(part, 0); // attempts: a fresh start
    partSetGiveUpNs(part, nowNs + GIVE_UP_NS);
    this.memberRetries += 1;
    this.partRetryLater(part, nowNs);
    return true;
  }

  // `part`: a part's record.
  private partRedundantWrite(part: usize): bool {
    const fn = partFunction(part);
    if (fn != FrameFunction.Write && fn != FrameFunction.WriteFua) return false;
    const v = volumeAt(serviceVolume(this.service(partService(part))));
    return v.type == VolumeType.Raid1 || v.type == VolumeType.Raid5 || v.type == VolumeType.Replica;
  }

  // The part goes out again as a new transaction (its time budget and attempts stay: the retries back off).
  private partRenumber(part: usize): void {
    const transaction = this.nextTransaction;
    this.nextTransaction += 1;
    partSetTransaction(part, transaction);
    frameSetTransaction(frames().address(partSlot(part)), transaction);
  }

  // A requester's piece whose member failed, on a volume that survives it: a write is done (the other copies or the
  // parity hold it), a read goes to another copy or is rebuilt from parity. False when the failure stands. `part`:
  // the finished part's record.
  private partRecover(s: u32, part: usize, status: FrameStatus): bool {
    const service = this.service(s);
    const v = volumeAt(serviceVolume(service));
    if (!isMemberFailure(status) || v.state == VolumeState.Failed) return false;
    if (v.type != VolumeType.Raid1 && v.type != VolumeType.Raid5 && v.type != VolumeType.Replica) return false;
    const fn = partFunction(part);
    const blocks = partBlocks(part);
    const lba = partVolumeLba(part);
    if (fn != FrameFunction.Read) {
      if (isData(fn) && !partCopy(part)) serviceSetBytes(service, serviceBytes(service) + blocks * <u64>v.blockSizeBytes);
      return true;
    }
    if (v.type == VolumeType.Replica) {
      const copy = replicaReadCopy(v, lba, (<u32>1) << partMember(part));
      if (copy == MEMBERS_MAX) return false;
      replicaMap(v, copy, lba, blocks, this.extent);
      this.extent.blocks = blocks;
      return this.emitExtent(s, fn, lba, this.extent);
    }
    if (v.type == VolumeType.Raid1) {
      const member = raid1ReadMember(v, lba, (<u32>1) << partMember(part));
      if (member == MEMBERS_MAX) return false;
      raid1Map(v, member, lba, blocks, this.extent);
      this.extent.blocks = blocks;
      return this.emitExtent(s, fn, lba, this.extent);
    }
    return this.ops.startRead(s, serviceVolume(service), lba, blocks);
  }

  /**
   * Marks `member` of `volume` failed (once), and says so on the console. `processor` and `disk`: where the failed
   * part went (a part to a disk a spare has since replaced in that slot says nothing about the spare).
   */
  memberFail(volume: u32, member: u32, status: FrameStatus, processor: u32, disk: u32): void {
    const v = volumeAt(volume);
    if (v.type == VolumeType.Disk || v.type == VolumeType.Raid0 || status == FrameStatus.MediumError) return;
    if (member >= v.memberCount || v.member(member).processor != processor || v.member(member).disk != disk) return;
    if (v.member(member).failed && member != v.rebuildMember) return;
    v.member(member).failed = true;
    if (v.type == VolumeType.Raid5 && v.resyncPending && !v.holeOpen && this.intent.anyDirty(volume)) {
      v.holeOpen = true;
      line().s("volumes: volume ").u32(volume).s(": member ").u32(member).s(" failed before the rows written when it stopped were resynchronized")
        .s(" (the write hole): reads rebuilt from those rows end MEDIUM ERROR").err();
    }
    if (v.type == VolumeType.Replica && v.failedCount() == v.memberCount && v.lastCurrent == MEMBERS_MAX) v.lastCurrent = member;
    if (v.type == VolumeType.Raid5 && v.failedCount() == 2 && member != v.rebuildMember) {
      // This failure fails the volume. With no region dirty (no write in the last second) the member's rows agree
      // with their parity: when it answers again with its superblock, the volume serves again, degraded (probe).
      v.lastCurrent = this.intent.anyDirty(volume) ? MEMBERS_MAX : member;
      if (v.lastCurrent == MEMBERS_MAX) {
        line().s("volumes: volume ").u32(volume).s(": member ").u32(member).s(" failed with rows written in the last second")
          .s(" (their parity may disagree): the volume stays failed if it answers again").err();
      }
    }
    this.partsStale(processor, disk);
    if (member == v.rebuildMember) {
      if (v.type == VolumeType.Replica || v.type == VolumeType.Raid1) this.replicaResync.abort(volume);
      else this.rebuild.abort(volume);
    }
    v.state = stateOf(v);
    this.memberFailures += 1;
    volumeStateLine(volume);
    this.metadata.update(volume);
    this.rebuild.consider();
    this.replicaResync.consider();
  }

  // Every part out to `disk` of `processor` (a member that has just failed) is stale: what it reads is not trusted,
  // its errors are not retried and fail nothing more.
  private partsStale(processor: u32, disk: u32): void {
    for (let p: u32 = 0; p < this.partsEnd; p++) {
      const part = this.part(p);
      if (partState(part) != PartState.Free && partProcessor(part) == processor && partDisk(part) == disk) partSetStale(part);
    }
  }

  // ---- The CTA's own services (raid_metadata.ts, rebuild.ts) ----

  /** An internal service on `volume`, answered to the CTA with `tag`; POOL_NONE when none is free. Call
   * internalDone(s) once its parts and operations are added. */
  internalOpen(volume: u32, tag: u64): u32 {
    const s = this.serviceOpen(this.index, tag);
    if (s == POOL_NONE) return POOL_NONE;
    const service = this.service(s);
    serviceSetVolume(service, volume);
    serviceSetInternal(service);
    return s;
  }

  /** Member `member`'s blocks [lba, lba + blocks) of `volume`, to or from the flat buffer at `address`. */
  internalIo(s: u32, fn: u32, volume: u32, member: u32, lba: u64, blocks: u32, address: usize): bool {
    return this.internalIoDisk(s, fn, volumeAt(volume).member(member), member, lba, blocks, address);
  }

  /** As internalIo, on `disk`, in slot `member` (MEMBER_NOT: no member, a spare: its failure fails none). */
  internalIoDisk(s: u32, fn: u32, disk: Member, member: u32, lba: u64, blocks: u32, address: usize): bool {
    const e = this.extent;
    e.member = member;
    e.processor = disk.processor;
    e.disk = disk.disk;
    e.lba = lba;
    e.blocks = <u64>blocks;
    if (this.partAddFlat(s, OP_NONE, fn, e, address)) return true;
    this.serviceFail(s, FrameStatus.Busy);
    return false;
  }

  internalDone(s: u32): void { this.serviceFinishIfDone(s); }

  // ---- For the parity operations (parity_ops.ts) ----

  /** One more thing `s` waits for (a parity operation). */
  serviceHold(s: u32): void { serviceSetOutstanding(this.service(s), serviceOutstanding(this.service(s)) + 1); }

  /** A parity operation of `s` ended: `bytes` of the requester's data moved, or `status` failed it. */
  serviceRelease(s: u32, status: FrameStatus, bytes: u64): void {
    const service = this.service(s);
    serviceSetOutstanding(service, serviceOutstanding(service) - 1);
    if (status != FrameStatus.Ok) {
      this.serviceFail(s, status);
      this.serviceEmitted(s);
    } else {
      serviceSetBytes(service, serviceBytes(service) + bytes);
    }
    this.serviceFinishIfDone(s);
  }

  serviceFunction(s: u32): u32 { return serviceFunction(this.service(s)); }
  serviceVolume(s: u32): u32 { return serviceVolume(this.service(s)); }
  serviceLba(s: u32): u64 { return serviceLba(this.service(s)); }
  serviceBlocks(s: u32): u64 { return serviceBlocks(this.service(s)); }
  serviceSgl(s: u32): u32 { return serviceSgl(this.service(s)); }
  serviceFailed(s: u32): bool { return serviceStatus(this.service(s)) != FrameStatus.Ok; }
  freeParts(): u32 { return this.partsFree; }

  // At the earliest part deadline: send what waited for room, retransmit what was not answered, give up after GIVE_UP_NS.
  private sweep(): void {
    const nowNs = clockNowNs();
    if (nowNs < this.sweepAtNs) return;
    this.sweepAtNs = u64.MAX_VALUE;
    for (let p: u32 = 0; p < this.partsEnd; p++) {
      const part = this.part(p);
      const state = partState(part);
      if (state == PartState.Free) continue;
      const deadlineNs = partDeadlineNs(part);
      if (deadlineNs > nowNs) {
        if (deadlineNs < this.sweepAtNs) this.sweepAtNs = deadlineNs;
        continue;
      }
      if (nowNs >= partGiveUpNs(part)) this.partFinish(p, FrameStatus.Timeout, 0, true);
      else this.partSend(p, nowNs); // sets its new deadline, lowering sweepAtNs
    }
  }

  // Everything below the oldest transaction still open on this link has been answered: the RTA may forget it.
  private ackFor(processor: u32): u32 {
    let oldest = this.nextTransaction;
    for (let p: u32 = 0; p < this.partsEnd; p++) {
      const part = this.part(p);
      if (partState(part) != PartState.Free && partProcessor(part) == processor) oldest = min(oldest, partTransaction(part));
    }
    return oldest;
  }

  private partFree(): u32 {
    for (let p: u32 = 0; p < PARTS_MAX; p++) if (partState(this.part(p)) == PartState.Free) return p;
    return POOL_NONE;
  }

  private partFind(transaction: u32): u32 {
    for (let p: u32 = 0; p < this.partsEnd; p++) {
      const part = this.part(p);
      if (partState(part) != PartState.Free && partTransaction(part) == transaction) return p;
    }
    return POOL_NONE;
  }

  private serviceOpen(requester: u32, tag: u64): u32 {
    for (let s: u32 = 0; s < SERVICES_MAX; s++) {
      const service = this.service(s);
      if (serviceState(service) != ServiceState.Free) continue;
      memory.fill(service, 0, SERVICE_BYTES);
      serviceSetState(service, ServiceState.Active);
      this.servicesUsed += 1;
      serviceSetArrival(service, this.servicesArrived);
      this.servicesArrived += 1;
      serviceSetRequester(service, requester);
      serviceSetTag(service, tag);
      return s;
    }
    return POOL_NONE;
  }

  private serviceFail(s: u32, status: FrameStatus): void {
    const service = this.service(s);
    if (serviceStatus(service) == FrameStatus.Ok) serviceSetStatus(service, status);
  }

  private serviceFinishIfDone(s: u32): void {
    const service = this.service(s);
    if (serviceState(service) != ServiceState.Active || serviceOutstanding(service) != 0 || servicePending(service)) return;
    if (this.degradedAckWaits(service)) {
      // Looked at again after every run (advanceAll) until the superblock is written.
      serviceSetPending(service, true);
      this.servicesPending += 1;
      return;
    }
    serviceSetState(service, ServiceState.Free);
    this.servicesUsed -= 1;
    this.servicesDone += 1;
    this.answer(serviceRequester(service), serviceTag(service), serviceStatus(service), serviceBytes(service));
  }

  private answer(requester: u32, tag: u64, status: FrameStatus, bytes: u64): void {
    this.out.set(MsgKind.ServiceIoDone, this.index, <u32>status, 0);
    this.out.c = <u32>bytes;
    this.out.e = tag;
    // The requester sized its inbox for its own requests; a full one is a programmer error there.
    assert(post(requester, this.out), "cta: requester inbox full");
  }

  @inline private part(p: u32): usize { assert(p < PARTS_MAX); return this.parts + <usize>p * PART_BYTES; }
  @inline private service(s: u32): usize { assert(s < SERVICES_MAX); return this.services + <usize>s * SERVICE_BYTES; }
}

// Changes the volume's blocks.
@inline function isWrite(fn: u32): bool {
  return fn == FrameFunction.Write || fn == FrameFunction.WriteFua || fn == FrameFunction.Unmap;
}

@inline function isData(fn: u32): bool {
  return fn == FrameFunction.Read || fn == FrameFunction.Write || fn == FrameFunction.WriteFua;
}

// A member's device gave up on the request (not the request's own fault): the member is failed.
@inline function isMemberFailure(status: FrameStatus): bool {
  return status == FrameStatus.DeviceError || status == FrameStatus.Timeout || status == FrameStatus.NoDisk
    || status == FrameStatus.MediumError || status == FrameStatus.DiskChanged;
}
