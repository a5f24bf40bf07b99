// The common transport agent: the host's router between transports (TTS) and the RTAs that own the data.
// A service request (ServiceIo) names a LUN, a range and an SGL over the requester's buffers; the CTA resolves the
// volume to an extent, splits the SGL into frames of at most FRAME_SEGMENTS_MAX segments, sends each to the RTA of
// the extent's processor over that processor's link, retransmits frames not answered in time, and calls the
// requester back (ServiceIoDone) once every part is answered.
//
// ServiceIo (to the CTA): a: FrameFunction | lun << 8; b: blockCount; c: SGL (host bus addresses; SGL_NONE for
//   Flush and Unmap); d: lba; e: tag; source: the requester's task.
// ServiceIoDone (to the requester): a: FrameStatus; c: bytes transferred; e: tag.
import {
  agentAddress, AgentKind, FRAME_BYTES, FRAME_SEGMENTS_MAX, FrameFunction, FrameStatus, frameAddSegment, frameBytes,
  frameFunction, frameInit, frameIsReply, frameSetAck, frameSetAttempt, frameSetBlocks, frameStatus, frameTransaction,
  frameValidate,
} from "../board/frame";
import { clockNowNs } from "../board/wasi";
import { sgls } from "../kernel/buffers";
import { carve } from "../kernel/carve";
import { Msg, MsgKind } from "../kernel/msg";
import { POOL_NONE } from "../kernel/pool";
import { post, timerStartParked, timerWakeBy } from "../kernel/scheduler";
import { SGL_NONE } from "../kernel/sgl";
import { RunResult, Task } from "../kernel/task";
import { TIMER_NONE } from "../kernel/timer";
import { frames, Link } from "../rta/links";
import { Extent, volumeResolve } from "./volumes";

export const PROCESSORS_MAX: u32 = 8;
export const SERVICES_MAX: u32 = 128;
export const PARTS_MAX: u32 = 512;
const CTA_PRIORITY: u32 = 2;
const CTA_INBOX_DEPTH: u32 = 256;
const CTA_BATCH_MAX: u32 = 32;
const RETRANSMIT_NS: u64 = 200_000_000; // longer than a healthy request; shorter than the DDM's device timeout
const BUSY_RETRY_NS: u64 = 1_000_000; // the first retry after BUSY or NOT STARTED (or a full link); doubled per attempt
const BUSY_RETRY_SHIFT_MAX: u32 = 7; // up to 128 ms between retries
// A part is given up this long after it was first sent: past the DDM's 2 s device timeout and controller reset, so a
// storage processor that resets (and answers NOT STARTED meanwhile) or a lossy link does not fail the request. Time,
// not a count of attempts: how often a part is retried depends on why (BUSY answers come back in microseconds).
const GIVE_UP_NS: u64 = 5_000_000_000;
const ATTEMPTS_MAX: u32 = 255; // the attempt field (u8, in the frame for the trace) saturates here

export enum PartState {
  Free = 0, // unused
  Queued = 1, // built, waiting for room on its link (or a retry time)
  Sent = 2, // on its way or at the RTA; retransmitted at its deadline
}

enum ServiceState {
  Free = 0,
  Active = 1,
}

// Part: |0 state u8|1 attempts u8|2 processor u8|3 -|4 service u16|6 slot u16|8 transaction u32|12 -|16 deadlineNs u64|
// |24 giveUpNs u64|
const PART_BYTES: u32 = 32;
// Service: |0 state u8|1 status u8|2 requester u16|4 outstanding u32|8 tag u64|16 bytes u64|
const SERVICE_BYTES: u32 = 24;

export class CtaTask extends Task {
  readonly links: StaticArray<Link | null> = new StaticArray<Link | null>(PROCESSORS_MAX);
  umaTask: u32 = 0;
  private readonly parts: usize = carve(PARTS_MAX * PART_BYTES, 16);
  private readonly services: usize = carve(SERVICES_MAX * SERVICE_BYTES, 16);
  private readonly frame: usize = frames().address(frames().acquire()); // receive scratch, held for good
  private readonly out: Msg = new Msg();
  private readonly extent: Extent = new Extent();
  private nextTransaction: u32 = 1;
  // Every part at or above this index is Free: the scans stop here. Parts are taken lowest first, so it stays near
  // the number in flight, not PARTS_MAX.
  private partsEnd: u32 = 0;
  // No part's deadline is earlier than this: the sweep skips its scan of the parts until then. Lowered
  // whenever a deadline is set, recomputed by each scan; the sweep's timer is brought forward to it after every
  // run (parked while it is MAX_VALUE: an idle CTA never wakes the processor).
  private sweepAtNs: u64 = u64.MAX_VALUE;
  private sweepTimer: u32 = TIMER_NONE;
  retransmitCount: u64 = 0;
  lateReplyCount: u64 = 0;
  servicesDone: u64 = 0;

  constructor() { super("cta", CTA_PRIORITY, CTA_INBOX_DEPTH, 1_000_000); }

  start(): void {
    this.sweepTimer = timerStartParked(this.index, 0);
    assert(this.sweepTimer != TIMER_NONE, "no timer for the CTA");
  }

  run(): RunResult {
    let handled: u32 = 0;
    while (handled < CTA_BATCH_MAX && this.inbox.pop(this.scratch)) {
      handled += 1;
      this.dispatch(this.scratch);
    }
    if (this.sweepAtNs != u64.MAX_VALUE) timerWakeBy(this.sweepTimer, this.sweepAtNs);
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  /** Requests in flight: services not yet answered. */
  servicesActive(): u32 {
    let count: u32 = 0;
    for (let s: u32 = 0; s < SERVICES_MAX; s++) if (load<u8>(this.service(s)) != ServiceState.Free) count += 1;
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
      case MsgKind.Timer: this.sweep(); break;
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

  private onService(msg: Msg): void {
    const fn = msg.a & 0xff;
    const lun = msg.a >> 8;
    const s = this.serviceOpen(msg.source, msg.e);
    if (s == POOL_NONE) {
      this.answer(msg.source, msg.e, FrameStatus.Busy, 0);
      return;
    }
    let status = volumeResolve(lun, msg.d, fn == FrameFunction.Flush ? 0 : <u64>msg.b, this.extent);
    if (status == FrameStatus.Ok && unchecked(this.links[this.extent.processor]) == null) status = FrameStatus.NoDisk;
    if (status != FrameStatus.Ok) {
      this.serviceFail(s, status);
      this.serviceFinishIfDone(s);
      return;
    }
    if (fn == FrameFunction.Read || fn == FrameFunction.Write || fn == FrameFunction.WriteFua) this.splitData(s, fn, msg);
    else this.partAdd(s, fn, this.extent.lba, msg.b, SGL_NONE, 0, 0);
    this.serviceFinishIfDone(s);
  }

  // One part per FRAME_SEGMENTS_MAX segments of the requester's SGL, each a whole number of blocks.
  private splitData(s: u32, fn: u32, msg: Msg): void {
    const sgl = msg.c;
    const blockBytes = this.extent.blockSizeBytes;
    if (sgl == SGL_NONE || sgls().totalBytes(sgl) != <u64>msg.b * blockBytes || msg.b == 0) {
      this.serviceFail(s, FrameStatus.IllegalRequest);
      return;
    }
    sgls().check(sgl);
    const count = sgls().segmentCount(sgl);
    let lba = this.extent.lba;
    for (let first: u32 = 0; first < count; first += FRAME_SEGMENTS_MAX) {
      const last = min(first + FRAME_SEGMENTS_MAX, count);
      let bytes: u64 = 0;
      for (let i = first; i < last; i++) {
        const lengthBytes = load<u32>(sgls().segment(sgl, i), 8);
        if (lengthBytes % blockBytes != 0) {
          this.serviceFail(s, FrameStatus.IllegalRequest);
          return;
        }
        bytes += lengthBytes;
      }
      const blocks = <u32>(bytes / blockBytes);
      if (!this.partAdd(s, fn, lba, blocks, sgl, first, last)) return;
      lba += blocks;
    }
  }

  // Builds a part's frame and sends it (or queues it). False when no part or frame slot is free: the service fails Busy.
  private partAdd(s: u32, fn: u32, lba: u64, blockCount: u32, sgl: u32, first: u32, last: u32): bool {
    const p = this.partFree();
    const slot = p == POOL_NONE ? POOL_NONE : frames().acquire();
    if (slot == POOL_NONE) {
      this.serviceFail(s, FrameStatus.Busy);
      return false;
    }
    const transaction = this.nextTransaction;
    this.nextTransaction += 1;
    const f = frames().address(slot);
    frameInit(f, <FrameFunction>fn, agentAddress(0, AgentKind.Cta), agentAddress(this.extent.processor, AgentKind.Rta), s, transaction);
    frameSetBlocks(f, this.extent.disk, lba, blockCount);
    for (let i = first; i < last; i++) {
      const segment = sgls().segment(sgl, i);
      assert(frameAddSegment(f, load<u64>(segment, 0), load<u32>(segment, 8)));
    }
    const part = this.part(p);
    memory.fill(part, 0, PART_BYTES);
    store<u8>(part, <u8>PartState.Queued, 0);
    if (p >= this.partsEnd) this.partsEnd = p + 1;
    store<u8>(part, <u8>this.extent.processor, 2);
    store<u16>(part, <u16>s, 4);
    store<u16>(part, <u16>slot, 6);
    store<u32>(part, transaction, 8);
    const nowNs = clockNowNs();
    store<u64>(part, nowNs + GIVE_UP_NS, 24);
    store<u32>(this.service(s), load<u32>(this.service(s), 4) + 1, 4);
    this.partSend(p, nowNs);
    return true;
  }

  private partSend(p: u32, nowNs: u64): void {
    const part = this.part(p);
    const processor = <u32>load<u8>(part, 2);
    const link = unchecked(this.links[processor])!; // checked when the service was accepted
    const f = frames().address(load<u16>(part, 6));
    const attempts = <u32>load<u8>(part, 1);
    frameSetAttempt(f, attempts);
    frameSetAck(f, this.ackFor(processor));
    if (!link.send(f)) {
      this.partRetryLater(part, nowNs);
      return;
    }
    if (attempts > 0) this.retransmitCount += 1;
    store<u8>(part, <u8>min(attempts + 1, ATTEMPTS_MAX), 1);
    store<u8>(part, <u8>PartState.Sent, 0);
    this.partDeadline(part, nowNs + RETRANSMIT_NS);
  }

  // Queued again, to be sent after a delay that grows with the part's attempts.
  private partRetryLater(part: usize, nowNs: u64): void {
    store<u8>(part, <u8>PartState.Queued, 0);
    this.partDeadline(part, nowNs + (BUSY_RETRY_NS << min(<u32>load<u8>(part, 1), BUSY_RETRY_SHIFT_MAX)));
  }

  private partDeadline(part: usize, atNs: u64): void {
    store<u64>(part, atNs, 16);
    if (atNs < this.sweepAtNs) this.sweepAtNs = atNs;
  }

  private onReply(f: usize): void {
    if (frameValidate(f) != 0 || !frameIsReply(f)) return;
    if (frameFunction(f) == FrameFunction.StartAgent) {
      this.forwardToUma(f);
      return;
    }
    const p = this.partFind(frameTransaction(f));
    if (p == POOL_NONE) {
      this.lateReplyCount += 1; // a duplicate, or an answer to a part already answered
      return;
    }
    const status = <FrameStatus>frameStatus(f);
    if (status == FrameStatus.Busy || status == FrameStatus.NotStarted) {
      // The RTA could not take it yet: send again shortly, within the same time budget.
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

  private partFinish(p: u32, status: FrameStatus, bytes: u64): void {
    const part = this.part(p);
    const s = <u32>load<u16>(part, 4);
    frames().release(load<u16>(part, 6));
    store<u8>(part, <u8>PartState.Free, 0);
    while (this.partsEnd > 0 && load<u8>(this.part(this.partsEnd - 1)) == PartState.Free) this.partsEnd -= 1;
    const service = this.service(s);
    if (status != FrameStatus.Ok && load<u8>(service, 1) == FrameStatus.Ok) store<u8>(service, <u8>status, 1);
    store<u64>(service, load<u64>(service, 16) + bytes, 16);
    store<u32>(service, load<u32>(service, 4) - 1, 4);
    this.serviceFinishIfDone(s);
  }

  // At the earliest part deadline: send what waited for room, retransmit what was not answered, give up after GIVE_UP_NS.
  private sweep(): void {
    const nowNs = clockNowNs();
    if (nowNs < this.sweepAtNs) return;
    this.sweepAtNs = u64.MAX_VALUE;
    for (let p: u32 = 0; p < this.partsEnd; p++) {
      const part = this.part(p);
      const state = load<u8>(part);
      if (state == PartState.Free) continue;
      const deadlineNs = load<u64>(part, 16);
      if (deadlineNs > nowNs) {
        if (deadlineNs < this.sweepAtNs) this.sweepAtNs = deadlineNs;
        continue;
      }
      if (nowNs >= load<u64>(part, 24)) this.partFinish(p, FrameStatus.Timeout, 0);
      else this.partSend(p, nowNs); // sets its new deadline, lowering sweepAtNs
    }
  }

  // Everything below the oldest transaction still open on this link has been answered: the RTA may forget it.
  private ackFor(processor: u32): u32 {
    let oldest = this.nextTransaction;
    for (let p: u32 = 0; p < this.partsEnd; p++) {
      const part = this.part(p);
      if (load<u8>(part) != PartState.Free && <u32>load<u8>(part, 2) == processor) oldest = min(oldest, load<u32>(part, 8));
    }
    return oldest;
  }

  private partFree(): u32 {
    for (let p: u32 = 0; p < PARTS_MAX; p++) if (load<u8>(this.part(p)) == PartState.Free) return p;
    return POOL_NONE;
  }

  private partFind(transaction: u32): u32 {
    for (let p: u32 = 0; p < this.partsEnd; p++) {
      const part = this.part(p);
      if (load<u8>(part) != PartState.Free && load<u32>(part, 8) == transaction) return p;
    }
    return POOL_NONE;
  }

  private serviceOpen(requester: u32, tag: u64): u32 {
    for (let s: u32 = 0; s < SERVICES_MAX; s++) {
      const service = this.service(s);
      if (load<u8>(service) != ServiceState.Free) continue;
      memory.fill(service, 0, SERVICE_BYTES);
      store<u8>(service, <u8>ServiceState.Active, 0);
      store<u16>(service, <u16>requester, 2);
      store<u64>(service, tag, 8);
      return s;
    }
    return POOL_NONE;
  }

  private serviceFail(s: u32, status: FrameStatus): void {
    const service = this.service(s);
    if (load<u8>(service, 1) == FrameStatus.Ok) store<u8>(service, <u8>status, 1);
  }

  private serviceFinishIfDone(s: u32): void {
    const service = this.service(s);
    if (load<u8>(service) != ServiceState.Active || load<u32>(service, 4) != 0) return;
    store<u8>(service, <u8>ServiceState.Free, 0);
    this.servicesDone += 1;
    this.answer(load<u16>(service, 2), load<u64>(service, 8), <FrameStatus>load<u8>(service, 1), load<u64>(service, 16));
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
