// The remote transport agent: one per processor. It takes request frames from the CTA (through a local link or the
// messaging unit), keeps them in its transaction store, converts them into block requests for its DDMs (the I/O
// converter), builds the SGLs over the requester's buffers (the DMA manager: zero-copy, the controller moves the
// data straight to and from them, across the bus when the requester is the host), and sends the replies back,
// keeping each until acknowledged so a retransmitted request is answered again rather than executed twice.
import {
  FRAME_BYTES, FrameFunction, FrameStatus, agentAddress, AgentKind,
  frameAck, frameBlockCount, frameBytes, frameDisk, frameFunction, frameInit, frameIsReply, frameLba, frameSegmentAddress,
  frameSegmentCount, frameSegmentLength, frameSetBytes, frameSetReply,
  frameSetStatus, frameSource, frameTarget, frameTransaction, frameValidate, agentProcessor,
} from "../board/frame";
import { PROCESSOR_NAME_BYTES } from "../board/boot_info";
import { PROFILE_DISKS_MAX, profileDisk, profileName, profileSetDisk, profileSetDiskCount } from "../board/profile";
import { LINKS_MAX, REMOTE_PROCESSOR_BASE } from "../fabric/limits";
import { clockNowNs } from "../board/wasi";
import { BlockOp, BlockStatus, DiskInfo } from "../ddm/block";
import { ddmControllerCount, ddmControllerTask, ddmDisk, ddmDiskCount } from "../ddm/registry";
import { sgls } from "../kernel/buffers";
import { line } from "../kernel/console";
import { Msg, MsgKind } from "../kernel/msg";
import { POOL_NONE } from "../kernel/pool";
import { post, timerStartParked, timerWakeBy } from "../kernel/scheduler";
import { SGL_NONE } from "../kernel/sgl";
import { RunResult, Task } from "../kernel/task";
import { TIMER_NONE } from "../kernel/timer";
import { frames, Link } from "./links";
import { TRANSACTION_NONE, TransactionState, TransactionStore, TRANSACTIONS_MAX } from "./transactions";
import { BounceResult, BounceTable } from "./bounce";
import { FabricOpcode } from "../fabric/registers";

export const DISKS_MAX: u32 = 16;
const REMOTE_BOARDS_MAX: u32 = LINKS_MAX - REMOTE_PROCESSOR_BASE;
const ORPHAN_SOURCE: u32 = 0xffff; // processor 255: no link; a transaction whose requester restarted
const RTA_PRIORITY: u32 = 2;
const RTA_INBOX_DEPTH: u32 = 256;
const RTA_BATCH_MAX: u32 = 32;
const SWEEP_RETRY_NS: u64 = 5_000_000; // a queued request or the profile is tried again after this
const RETAIN_NS: u64 = 10_000_000_000; // a reply is dropped after this even if never acknowledged
// RDMAs the RTA has at the fabric task at once (a port without a window): well inside its send ring, which frames and
// hellos share; a transaction whose RDMAs do not fit waits for completions.
const RDMA_IN_FLIGHT_MAX: u32 = 128;

export class RtaTask extends Task {
  link: Link | null = null;
  /** Links to the other boards of a cluster, by board index (rta/fabric_link.ts): their CTAs' requests come by them. */
  readonly remoteLinks: StaticArray<Link | null> = new StaticArray<Link | null>(REMOTE_BOARDS_MAX);
  started: bool = false;
  readonly store: TransactionStore = new TransactionStore();
  private readonly frame: usize = frames().address(frames().acquire()); // receive scratch, held for good
  private readonly out: Msg = new Msg();
  private readonly disks: StaticArray<DiskInfo | null> = new StaticArray<DiskInfo | null>(DISKS_MAX);
  private readonly diskTask: StaticArray<u32> = new StaticArray<u32>(DISKS_MAX);
  diskCount: u32 = 0;
  private controllersReady: u32 = 0;
  private startSource: u32 = 0xffff; // a StartAgent waiting for the DDMs
  private startTransaction: u32 = 0;
  private startPending: bool = false;
  // The requester's RAM size, from the first StartAgent: a segment beyond it would send the controller's DMA through
  // the window to no memory (or to the host's registers), so such a frame is refused as BadFrame. Later StartAgents
  // (retries of the same start) do not change it.
  private requesterRamBytes: u64 = 0;
  private readonly processor: u32;
  private readonly namePtr: usize;
  readonly requestsDone: StaticArray<u64> = new StaticArray<u64>(8);
  // What the sweep's scan of TRANSACTIONS_MAX entries is for, so an idle board skips it: a transaction left Queued
  // (the DDM's inbox was full), or a kept reply older than RETAIN_NS (none before retainCheckNs, a lower bound).
  // The sweep's timer is parked while there is nothing to do (armSweep): an idle RTA never wakes the processor.
  private queuedLeft: bool = false;
  private retainCheckNs: u64 = u64.MAX_VALUE;
  private sweepTimer: u32 = TIMER_NONE;
  // A port without a window (rta/bounce.ts): requests from other boards move their data by RDMA through our buffers.
  private bounce: BounceTable | null = null;
  private fabricTask: u32 = 0;
  private rdmaInFlight: u32 = 0;
  private rdmaWaitingCount: u32 = 0;
  abandonedCount: u64 = 0; // remote transactions dropped unanswered because an RDMA failed (the requester retries)

  constructor(processor: u32, namePtr: usize) {
    super("rta", RTA_PRIORITY, RTA_INBOX_DEPTH, 1_000_000);
    this.processor = processor;
    this.namePtr = namePtr;
  }

  /** Boot, on a board whose cluster port has no window: carve the bounce table; RDMAs go through `fabricTask`. */
  useBounce(fabricTask: u32): void {
    this.bounce = new BounceTable();
    this.fabricTask = fabricTask;
  }

  /** Takes the sweep's timer (parked); call once the kernel has sealed. */
  start(): void {
    this.sweepTimer = timerStartParked(this.index, 0);
    assert(this.sweepTimer != TIMER_NONE, "no timer for the RTA");
    if (ddmControllerCount() == 0) this.collectDisks();
  }

  run(): RunResult {
    let handled: u32 = 0;
    while (handled < RTA_BATCH_MAX && this.inbox.pop(this.scratch)) {
      handled += 1;
      this.dispatch(this.scratch);
    }
    this.armSweep();
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  // Asks for the sweep when it has something to do: a Queued transaction or the profile to try again (in
  // SWEEP_RETRY_NS), or a kept reply to drop (just after retainCheckNs). Only ever brings the timer forward; a sweep
  // with nothing left to do finds so and the timer parks again.
  private armSweep(): void {
    if (this.retainCheckNs != u64.MAX_VALUE) timerWakeBy(this.sweepTimer, this.retainCheckNs + 1);
    if (this.queuedLeft || (this.startPending && this.controllersReady >= ddmControllerCount())) {
      timerWakeBy(this.sweepTimer, clockNowNs() + SWEEP_RETRY_NS);
    }
  }

  private dispatch(msg: Msg): void {
    switch (<i32>msg.kind) {
      case MsgKind.Frame: {
        // A local link's frame: process it and give the slot back.
        this.onFrame(frames().address(msg.a));
        frames().release(msg.a);
        break;
      }
      case MsgKind.Irq: this.drainLink(); break;
      case MsgKind.BlockIoDone: this.onBlockIoDone(msg); break;
      case MsgKind.DdmReady: this.onDdmReady(); break;
      case MsgKind.Timer: this.sweep(); break;
      case MsgKind.FabricPeerRestarted: this.forgetPeer(msg.a); break;
      case MsgKind.FabricRdmaDone: this.onRdmaDone(msg); break;
      default: assert(false, "rta: unexpected message kind");
    }
  }

  private drainLink(): void {
    const link = this.link!;
    for (let i: u32 = 0; i < 256 && link.receive(this.frame); i++) this.onFrame(this.frame);
  }

  private onFrame(f: usize): void {
    if (frameValidate(f) != FrameStatus.Ok || frameIsReply(f)) return; // nothing to answer: the sender retries
    const fn = frameFunction(f);
    if (fn == FrameFunction.StartAgent) {
      this.onStartAgent(f);
      return;
    }
    this.acknowledge(frameSource(f), frameAck(f));
    const existing = this.store.find(frameSource(f), frameTransaction(f));
    if (existing != TRANSACTION_NONE) {
      // A retransmission or a duplicate: answer again if done, else it is still in progress.
      if (this.store.state(existing) == TransactionState.Done) this.sendReply(existing);
      return;
    }
    const link = this.linkFor(frameSource(f));
    if (link == null) return; // a remote processor without a link: nothing to answer through
    if (!this.started || !link.ready()) {
      this.replyNow(f, FrameStatus.NotStarted); // a remote link is ready once the peer's buffers can be reached
      return;
    }
    const t = this.store.open(frameSource(f), frameTransaction(f));
    if (t == TRANSACTION_NONE) {
      this.replyNow(f, FrameStatus.Busy);
      return;
    }
    const status = this.convert(t, f);
    if (status != FrameStatus.Ok) {
      this.finish(t, status, 0);
      return;
    }
    if (this.bounces(t) && (fn == FrameFunction.Write || fn == FrameFunction.WriteFua)) {
      this.store.setState(t, TransactionState.InProgress); // the requester's data comes first
      this.startRdma(t, FabricOpcode.Read);
      return;
    }
    this.issue(t);
  }

  // ---- Bounce buffers (a port without a window: rta/bounce.ts) ----

  @inline private bounces(t: u32): bool { return this.bounce != null && this.bounce!.count(t) > 0; }

  // The requester's segments → bounce buffers, and the SGL over those.
  private convertBounce(t: u32, f: usize, sgl: u32, floor: u64, limit: u64): FrameStatus {
    const b = this.bounce!;
    const board = agentProcessor(frameSource(f)) - REMOTE_PROCESSOR_BASE;
    const count = frameSegmentCount(f);
    for (let i: u32 = 0; i < count; i++) {
      const lengthBytes = frameSegmentLength(f, i);
      const address = frameSegmentAddress(f, i);
      if (lengthBytes == 0 || address < floor || address >= limit || <u64>lengthBytes > limit - address) return FrameStatus.BadFrame;
      const result = b.add(t, board, address, lengthBytes);
      if (result == BounceResult.NoBuffer) return FrameStatus.Busy;
      if (result == BounceResult.TooManyChunks) return FrameStatus.IllegalRequest;
    }
    for (let i: u32 = 0; i < b.count(t); i++) {
      if (!sgls().append(sgl, <u64>b.localAddress(t, i), b.lengthBytes(t, i))) return FrameStatus.Busy;
    }
    return FrameStatus.Ok;
  }

  // Every chunk of t between its bounce buffer and the requester: `opcode` Read fetches, Write delivers. Waits when
  // the RDMAs would pass RDMA_IN_FLIGHT_MAX.
  private startRdma(t: u32, opcode: u32): void {
    const b = this.bounce!;
    const n = b.count(t);
    if (this.rdmaInFlight + n > RDMA_IN_FLIGHT_MAX) {
      if (b.waiting(t) == 0) this.rdmaWaitingCount += 1;
      b.setWaiting(t, opcode);
      return;
    }
    if (b.waiting(t) != 0) {
      b.setWaiting(t, 0);
      this.rdmaWaitingCount -= 1;
    }
    b.setOutstanding(t, n + 1); // one more than posted: held until every post is out
    for (let i: u32 = 0; i < n; i++) {
      this.out.set(MsgKind.FabricRdma, this.index, b.board(t) | (opcode << 16), b.lengthBytes(t, i));
      this.out.c = <u32>b.localAddress(t, i);
      this.out.d = b.remoteAddress(t, i);
      this.out.e = <u64>t;
      if (post(this.fabricTask, this.out)) this.rdmaInFlight += 1;
      else b.completeOne(t, false);
    }
    if (b.completeOne(t, true)) this.rdmaFinished(t);
  }

  private onRdmaDone(msg: Msg): void {
    const t = <u32>msg.e;
    if (this.bounce == null || t >= TRANSACTIONS_MAX) return;
    if (this.rdmaInFlight > 0) this.rdmaInFlight -= 1;
    if (this.store.state(t) == TransactionState.InProgress && this.bounce!.completeOne(t, msg.a == 0)) this.rdmaFinished(t);
    if (this.rdmaWaitingCount == 0) return;
    for (let w: u32 = 0; w < this.store.end && this.rdmaWaitingCount > 0; w++) {
      const opcode = this.bounce!.waiting(w);
      if (opcode == 0) continue;
      if (this.rdmaInFlight + this.bounce!.count(w) > RDMA_IN_FLIGHT_MAX) break;
      this.startRdma(w, opcode);
    }
  }

  // Every RDMA of t is done: a Write's data is here (to the disk), a Read's is at the requester (reply). One failed:
  // t is dropped unanswered, and the requester's retransmission starts it again.
  private rdmaFinished(t: u32): void {
    const f = frames().address(this.store.requestSlot(t));
    if (this.bounce!.failed(t)) {
      this.abandon(t);
      return;
    }
    if (frameFunction(f) == FrameFunction.Read) this.finish(t, FrameStatus.Ok, sgls().totalBytes(this.store.sgl(t)));
    else this.issue(t);
  }

  private abandon(t: u32): void {
    const sgl = this.store.sgl(t);
    if (sgl != (POOL_NONE & 0xffff)) {
      sgls().release(sgl);
      this.store.setSgl(t, POOL_NONE);
    }
    this.bounce!.release(t);
    const slot = this.store.requestSlot(t);
    if (slot != (POOL_NONE & 0xffff)) frames().release(slot);
    this.store.setRequestSlot(t, POOL_NONE);
    this.store.close(t);
    this.abandonedCount += 1;
  }

  // The I/O converter: frame → block request (an SGL over the requester's buffers, in this processor's addresses).
  private convert(t: u32, f: usize): FrameStatus {
    const disk = frameDisk(f);
    if (disk >= this.diskCount || unchecked(this.disks[disk])!.blockCount == 0) return FrameStatus.NoDisk; // none, or an empty slot
    const slot = frames().acquire();
    if (slot == POOL_NONE) return FrameStatus.Busy;
    memory.copy(frames().address(slot), f, FRAME_BYTES);
    this.store.setRequestSlot(t, slot);
    const fn = frameFunction(f);
    if (fn == FrameFunction.Flush || fn == FrameFunction.Unmap) return FrameStatus.Ok;
    if (fn != FrameFunction.Read && fn != FrameFunction.Write && fn != FrameFunction.WriteFua) return FrameStatus.BadFrame;
    const info = unchecked(this.disks[disk])!;
    const expectedBytes = <u64>frameBlockCount(f) * info.blockSizeBytes;
    const sgl = sgls().create();
    if (sgl == SGL_NONE) return FrameStatus.Busy;
    this.store.setSgl(t, sgl);
    const link = this.linkFor(frameSource(f))!; // onFrame found it
    const window = link.dataWindowBase();
    // The requester's data lies in its RAM (a processor of this board) or in the region a peer board registered.
    const floor = link.dataFloor();
    const limit = link.isRemote() ? link.dataLimit() : this.requesterRamBytes;
    if (link.bounces()) {
      const status = this.convertBounce(t, f, sgl, floor, limit);
      if (status != FrameStatus.Ok) return status;
      if (sgls().totalBytes(sgl) != expectedBytes || expectedBytes == 0) return FrameStatus.IllegalRequest;
      sgls().check(sgl);
      return FrameStatus.Ok;
    }
    const count = frameSegmentCount(f);
    for (let i: u32 = 0; i < count; i++) {
      const lengthBytes = frameSegmentLength(f, i);
      const address = frameSegmentAddress(f, i);
      if (lengthBytes == 0 || address < floor || address >= limit || <u64>lengthBytes > limit - address) {
        return FrameStatus.BadFrame;
      }
      if (!sgls().append(sgl, window + address, lengthBytes)) return FrameStatus.Busy;
    }
    if (sgls().totalBytes(sgl) != expectedBytes || expectedBytes == 0) return FrameStatus.IllegalRequest;
    sgls().check(sgl);
    return FrameStatus.Ok;
  }

  // Hands the transaction's block request to the DDM owning its disk; a full inbox leaves it Queued for the sweep.
  private issue(t: u32): void {
    const f = frames().address(this.store.requestSlot(t));
    const disk = frameDisk(f);
    const fn = frameFunction(f);
    const op = fn == FrameFunction.Read ? BlockOp.Read : fn == FrameFunction.Write ? BlockOp.Write
      : fn == FrameFunction.WriteFua ? BlockOp.WriteFua : fn == FrameFunction.Flush ? BlockOp.Flush : BlockOp.Unmap;
    const info = unchecked(this.disks[disk])!;
    this.out.set(MsgKind.BlockIo, this.index, <u32>op | (info.disk << 8), fn == FrameFunction.Flush ? 0 : frameBlockCount(f));
    this.out.c = this.store.sgl(t) == (POOL_NONE & 0xffff) ? SGL_NONE : this.store.sgl(t);
    this.out.d = frameLba(f);
    this.out.e = <u64>t;
    if (post(unchecked(this.diskTask[disk]), this.out)) this.store.setState(t, TransactionState.InProgress);
    else this.queuedLeft = true;
  }

  private onBlockIoDone(msg: Msg): void {
    const t = <u32>msg.e;
    if (t >= TRANSACTIONS_MAX || this.store.state(t) != TransactionState.InProgress) return; // late: already failed
    if (msg.a == BlockStatus.Ok && this.bounces(t) && frameFunction(frames().address(this.store.requestSlot(t))) == FrameFunction.Read) {
      this.startRdma(t, FabricOpcode.Write); // the data is in our buffers: to the requester's, then the reply
      return;
    }
    this.finish(t, frameStatusOf(msg.a), <u64>msg.c);
  }

  // Ends a transaction: frees its SGL, builds the reply into its residual slot, sends it, and keeps it.
  private finish(t: u32, status: FrameStatus, bytes: u64): void {
    if (this.bounce != null) this.bounce!.release(t);
    const sgl = this.store.sgl(t);
    if (sgl != (POOL_NONE & 0xffff)) {
      sgls().release(sgl);
      this.store.setSgl(t, POOL_NONE);
    }
    let slot = this.store.requestSlot(t);
    if (slot == (POOL_NONE & 0xffff)) {
      // No slot was free for the request: answer from the store's fields alone, when a slot frees up.
      slot = frames().acquire();
      if (slot == POOL_NONE) {
        this.store.close(t);
        return; // the requester times out and retries
      }
      frameInit(frames().address(slot), FrameFunction.Read, 0, 0, 0, this.store.transaction(t));
    }
    this.store.setRequestSlot(t, POOL_NONE);
    const f = frames().address(slot);
    this.toReply(f, status);
    frameSetBytes(f, bytes);
    this.store.setReplySlot(t, slot);
    this.store.setState(t, TransactionState.Done);
    const nowNs = clockNowNs();
    this.store.setDoneAtNs(t, nowNs);
    if (nowNs + RETAIN_NS < this.retainCheckNs) this.retainCheckNs = nowNs + RETAIN_NS;
    if (status == FrameStatus.Ok) unchecked(this.requestsDone[frameFunction(f)] += 1);
    this.sendReply(t);
  }

  private sendReply(t: u32): void {
    const f = frames().address(this.store.replySlot(t));
    const link = this.linkFor(frameTarget(f));
    if (link != null) link.send(f); // refused: the requester retransmits, we answer then
  }

  // The link a frame from (or a reply to) agent `address` travels: this board's own, or the peer board's.
  private linkFor(address: u32): Link | null {
    const processor = agentProcessor(address);
    if (processor < REMOTE_PROCESSOR_BASE) return this.link;
    const board = processor - REMOTE_PROCESSOR_BASE;
    return board < REMOTE_BOARDS_MAX ? unchecked(this.remoteLinks[board]) : null;
  }

  // Turns a request frame into its reply in place: swap the agents, set the status.
  private toReply(f: usize, status: FrameStatus): void {
    const source = frameSource(f);
    store<u16>(f, load<u16>(f, 6), 4);
    store<u16>(f, <u16>source, 6);
    frameSetReply(f);
    frameSetStatus(f, status);
  }

  // Answers a frame we will not keep (not started, store full): the requester retries.
  private replyNow(f: usize, status: FrameStatus): void {
    this.toReply(f, status);
    const link = this.linkFor(frameTarget(f));
    if (link != null) link.send(f);
  }

  // Drops the replies the requester has acknowledged: every transaction from `source` below `ack`.
  private acknowledge(source: u32, ack: u32): void {
    if (ack == 0) return;
    for (let t: u32 = 0; t < this.store.end; t++) {
      if (this.store.state(t) != TransactionState.Done || this.store.source(t) != source) continue;
      if (this.store.transaction(t) < ack) this.release(t);
    }
  }

  // Board `board` of the cluster started again: its transaction numbers start again too, so none of its last life may
  // be found by a new request. Answered ones are dropped; ones still at the disk finish with no one to answer (their
  // source becomes an address no link serves) and are dropped when kept too long.
  private forgetPeer(board: u32): void {
    const source = REMOTE_PROCESSOR_BASE + board;
    for (let t: u32 = 0; t < this.store.end; t++) {
      const state = this.store.state(t);
      if (state == TransactionState.Free || agentProcessor(this.store.source(t)) != source) continue;
      if (state == TransactionState.Done) this.release(t);
      else this.store.setSource(t, ORPHAN_SOURCE);
    }
  }

  private release(t: u32): void {
    const slot = this.store.replySlot(t);
    if (slot != (POOL_NONE & 0xffff)) frames().release(slot);
    this.store.close(t);
  }

  // When armSweep asked: issue what the DDMs could not take, drop replies kept too long.
  private sweep(): void {
    if (this.startPending && this.controllersReady >= ddmControllerCount()) this.sendProfile();
    const nowNs = clockNowNs();
    if (!this.queuedLeft && nowNs <= this.retainCheckNs) return;
    this.queuedLeft = false;
    this.retainCheckNs = u64.MAX_VALUE;
    for (let t: u32 = 0; t < this.store.end; t++) {
      const state = this.store.state(t);
      if (state == TransactionState.Queued) this.issue(t); // sets queuedLeft again if the DDM still cannot take it
      else if (state == TransactionState.Done) {
        const doneAtNs = this.store.doneAtNs(t);
        if (nowNs - doneAtNs > RETAIN_NS) this.release(t);
        else if (doneAtNs + RETAIN_NS < this.retainCheckNs) this.retainCheckNs = doneAtNs + RETAIN_NS;
      }
    }
  }

  private onStartAgent(f: usize): void {
    if (!this.started) this.requesterRamBytes = frameBytes(f);
    this.started = true;
    this.startSource = frameSource(f);
    this.startTransaction = frameTransaction(f);
    this.startPending = true;
    if (this.controllersReady >= ddmControllerCount()) this.sendProfile();
  }

  private onDdmReady(): void {
    this.controllersReady += 1;
    if (this.controllersReady == ddmControllerCount()) this.collectDisks();
  }

  // Builds the processor's disk list from every DDM, in controller then LUN order.
  private collectDisks(): void {
    this.diskCount = 0;
    const controllers = ddmControllerCount();
    for (let c: u32 = 0; c < controllers; c++) {
      const count = ddmDiskCount(c);
      for (let d: u32 = 0; d < count && this.diskCount < DISKS_MAX; d++) {
        unchecked(this.disks[this.diskCount] = ddmDisk(c, d));
        unchecked(this.diskTask[this.diskCount] = ddmControllerTask(c));
        this.diskCount += 1;
      }
    }
    line().s("rta: ").u32(controllers).s(" controllers, ").u32(this.diskCount).s(" disks").out();
    if (this.startPending) this.sendProfile();
  }

  // The StartAgent reply: the device profile (the processor's name, disks with capacity and block size).
  private sendProfile(): void {
    const slot = frames().acquire();
    if (slot == POOL_NONE) return; // the UMA asks again
    const f = frames().address(slot);
    frameInit(f, FrameFunction.StartAgent, agentAddress(this.processor, AgentKind.Rta), this.startSource, 0, this.startTransaction);
    frameSetReply(f);
    frameSetStatus(f, FrameStatus.Ok);
    const count = min(this.diskCount, PROFILE_DISKS_MAX);
    profileSetDiskCount(f, count);
    for (let i: u32 = 0; i < count; i++) {
      const info = unchecked(this.disks[i])!;
      assert(info.controller <= 0xff, "rta: the profile holds a controller index in one byte");
      profileSetDisk(profileDisk(f, i), info.blockCount, info.blockSizeBytes, info.controller, info.physicalExponent, info.disk);
    }
    memory.copy(profileName(f), this.namePtr, PROCESSOR_NAME_BYTES);
    if (this.link!.send(f)) this.startPending = false;
    frames().release(slot);
  }
}

function frameStatusOf(status: u32): FrameStatus {
  switch (<i32>status) {
    case BlockStatus.Ok: return FrameStatus.Ok;
    case BlockStatus.MediumError: return FrameStatus.MediumError;
    case BlockStatus.IllegalRequest: return FrameStatus.IllegalRequest;
    case BlockStatus.DeviceError: return FrameStatus.DeviceError;
    case BlockStatus.Timeout: return FrameStatus.Timeout;
    case BlockStatus.Busy: return FrameStatus.Busy;
    case BlockStatus.Aborted: return FrameStatus.Aborted;
    case BlockStatus.NoDisk: return FrameStatus.NoDisk;
    case BlockStatus.Changed: return FrameStatus.DiskChanged;
    default: return FrameStatus.DeviceError;
  }
}
