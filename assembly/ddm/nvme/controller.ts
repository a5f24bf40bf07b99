// The NVMe DDM: one task per controller (NVMe 1.4). It brings the controller up (§7.6.1: CC.EN 0, wait CSTS.RDY 0,
// the admin queue in AQA/ASQ/ACQ, CC.EN 1, wait CSTS.RDY 1), identifies it and its active namespaces, creates one
// I/O queue pair on its own MSI-X vector, and serves BlockIo requests there. A command that misses its deadline is
// aborted (ABORT); if that does not end it, or anything the controller writes breaks the protocol (a command
// identifier it was never given, more completions with the current phase than commands in flight, an SQ head
// outside the queue, a completion on the wrong queue, CSTS.CFS), the controller is reset (CC.EN 0) and brought up
// again, and what was in flight fails exactly once. Nothing the controller writes is trusted: it is validated, and a
// lie is a device fault, never an assert.
//
// Requests: every accepted BlockIo takes one of NVME_REQUESTS_MAX request slots, with its 2 KiB data-pointer area,
// until its completion is sent; the I/O queue holds every slot, so a slot goes out as soon as the controller is up.
// With every slot taken, the BlockIo is answered Busy at once. A slot waits Queued, in arrival order, while the
// controller is resetting. The command identifier is the slot index in bits 6:0 and a sequence number above, so a
// completion for an earlier use of the slot is told apart.
import { PciFunctionInfo } from "../../board/pci";
import { clockNowNs } from "../../board/wasi";
import { sgls } from "../../kernel/buffers";
import { line } from "../../kernel/console";
import { Msg, MsgKind } from "../../kernel/msg";
import { wakeTask } from "../../kernel/ready";
import { post } from "../../kernel/scheduler";
import { SGL_NONE } from "../../kernel/sgl";
import { DEADLINE_NONE } from "../../kernel/timer";
import { RunResult, Task } from "../../kernel/task";
import { blockIoBlockCount, blockIoDisk, blockIoLba, blockIoOp, blockIoSgl, blockIoTag, BlockOp, BlockStatus, DiskInfo } from "../block";
import { BlockRequest, REQUEST_NONE, RequestState } from "../block_request";
import { CompletionOutbox } from "../completion_outbox";
import { RequestPool } from "../request_pool";
import { RequestQueue } from "../request_queue";
import { DdmRevival } from "../revival";
import { DdmTick } from "../tick";
import {
  ADMIN_ABORT, ADMIN_ASYNC_EVENT_REQUEST, ADMIN_CREATE_CQ, ADMIN_CREATE_SQ, ADMIN_GET_LOG_PAGE, ADMIN_IDENTIFY,
  ADMIN_SET_FEATURES, CNS_ACTIVE_NAMESPACES, CNS_CONTROLLER, CNS_NAMESPACE, cqeCid, cqeDw0, cqeDw3, cqeSqHead, cqeSqId,
  dw3Status, FEATURE_NUMBER_OF_QUEUES, idCtrlCqes, idCtrlMdts, idCtrlNn, idCtrlOncs, idCtrlSgls, idCtrlSqes,
  idNsFeatures, idNsFormat, idNsFormatCount, idNsFormatIndex, idNsPreferredWriteGranularity, idNsSize,
  IO_DATASET_MANAGEMENT, IO_FLUSH, IO_READ, IO_WRITE, IO_WRITE_ZEROES, LOG_CHANGED_NAMESPACES, NSFEAT_OPTPERF,
  ONCS_DATASET_MANAGEMENT, ONCS_WRITE_ZEROES, PSDT_PRP, sqeInit, sqeSetCdw10, sqeSetCdw11, sqeSetCdw12, sqeSetPrp,
  sqeSetSgl,
} from "./command";
import { DataPointer, PointerKind, pointerBuild, sglFitsDescriptors, sglFitsPrp } from "./data_pointer";
import {
  NVME_ABORT_WAIT_NS, NVME_ADMIN_QUEUE_ENTRIES, NVME_ADMIN_TIMEOUT_NS, NVME_BATCH_MAX, NVME_BRINGUP_ATTEMPTS_MAX,
  NVME_BUDGET_NS, NVME_DISKS_MAX, NVME_FAULTS_IN_ROW_MAX, NVME_INBOX_DEPTH, NVME_IO_QUEUE_ENTRIES, NVME_OUTBOX_DEPTH,
  NVME_PAGE_BYTES, NVME_POINTER_AREA_BYTES, NVME_PRIORITY, NVME_READY_WAIT_NS_MAX, NVME_REQUEST_TIMEOUT_NS,
  NVME_REQUESTS_MAX, NVME_SEGMENTS_MAX, NVME_TICK_NS, NVME_TRANSFER_BYTES_MAX,
} from "./limits";
import { NvmeMemory } from "./memory";
import { QueuePair } from "./queue_pair";
import {
  capDoorbellStrideBytes, capNvmCommandSet, capPageBytesMin, capQueueEntriesMax, capTimeoutNs,
  CC_ENABLE, CSTS_ALL_ONES, CSTS_CFS, CSTS_RDY, NvmeRegisters, REG_ACQ, REG_AQA, REG_ASQ, REG_CAP, REG_CC, REG_CSTS,
} from "./registers";
import { NvmeStats } from "./stats";
import {
  blockStatusOf, SC_ABORT_REQUESTED, SCT_GENERIC, SENSE_INVALID_FIELD_IN_CDB, SENSE_LBA_OUT_OF_RANGE, senseOf,
  statusCode, statusType,
} from "./status";

export enum NvmeState {
  Off = 0, // before its first run: nothing written to the controller yet
  Disabling = 1, // CC.EN 0 written; waiting (every tick, bounded by CAP.TO) for CSTS.RDY 0
  Enabling = 2, // the admin queue programmed and CC.EN 1 written; waiting for CSTS.RDY 1
  Configuring = 3, // the bring-up's admin commands, one at a time (BringUp)
  Ready = 4, // serving BlockIo
  Failed = 5, // given up: CC.EN 0, bus mastering off, every request fails with DeviceError until the revival
  // (ddm/revival.ts) brings a discovered controller up again
}

enum FaultCause {
  None = 0, // no fault: the first bring-up
  Timeout = 1, // commands past their deadline fail with Timeout, the others in flight with Aborted
  Device = 2, // the queues cannot be trusted: every command in flight fails with DeviceError
}

// The bring-up's admin commands, in order (NVMe 1.4 §7.6.1 steps 6-9).
enum BringUp {
  IdentifyController = 0,
  SetQueues = 1, // Number of Queues: one I/O SQ, one I/O CQ
  CreateCq = 2,
  CreateSq = 3,
  ActiveNamespaces = 4, // first bring-up only, as are the next
  IdentifyNamespace = 5, // for nsidList[probeIndex]
  Done = 6,
}

// Admin command slots: the CID is the slot in bits 1:0 and a sequence number above.
const ADMIN_SLOT_BRINGUP: u32 = 0;
const ADMIN_SLOT_ABORT: u32 = 1;
const ADMIN_SLOT_EVENT: u32 = 2; // the ASYNCHRONOUS EVENT REQUEST, outstanding while Ready
const ADMIN_SLOT_LOG: u32 = 3; // GET LOG PAGE (Changed Namespace List) after a namespace event
const ADMIN_SLOTS: u32 = 4;

export const NVME_VECTORS: u32 = 2; // MSI-X table entries used: 0 the admin CQ, 1 the I/O CQ
const MSIX_ENTRY_ADMIN: u32 = 0;
const MSIX_ENTRY_IO: u32 = 1;
const IO_QUEUE_ID: u32 = 1;
const CID_SLOT_BITS: u32 = 7;
const IDENTIFY_BYTES: u32 = 4096;
const EVENT_NOTICE: u32 = 0x2;
const PCI_COMMAND: u32 = 0x04;
const PCI_COMMAND_MEMORY: u32 = 1 << 1;
const PCI_COMMAND_BUS_MASTER: u32 = 1 << 2;
const DSM_ATTRIBUTE_DEALLOCATE: u32 = 1 << 2;
const WRITE_FUA: u32 = 1 << 30;
const WRITE_ZEROES_DEALLOCATE: u32 = 1 << 25;
const LBADS_MIN: u32 = 9;
const LBADS_MAX: u32 = 16;

// A BlockIo on this controller; its area is the request's 2 KiB data-pointer area (a PRP list, an SGL, DSM ranges).
class Request extends BlockRequest {
  cid: u32 = 0; // the command identifier of its latest submission
  aborting: bool = false; // an ABORT was sent for it

  constructor(area: usize) { super(area); }
}

export class NvmeController extends Task {
  state: NvmeState = NvmeState.Off;
  readonly stats: NvmeStats = new NvmeStats();
  readonly disks: StaticArray<DiskInfo | null> = new StaticArray<DiskInfo | null>(NVME_DISKS_MAX);
  readonly diskNsid: StaticArray<u32> = new StaticArray<u32>(NVME_DISKS_MAX);
  private readonly diskChanged: StaticArray<bool> = new StaticArray<bool>(NVME_DISKS_MAX);
  diskCount: u32 = 0; // published when discovery completes
  private diskFound: u32 = 0;
  // Empty slots a Namespace Attribute Changed event named (a disk put in at run time), as a bit mask by disk: each
  // gets an IDENTIFY NAMESPACE on the bring-up slot (idle while Ready), one at a time; insertDisk is the one out.
  private insertPending: u64 = 0;
  private insertDisk: u32 = 0xffff_ffff;
  discovered: bool = false;
  readonly admin: QueuePair;
  readonly io: QueuePair;
  readonly pool: RequestPool<Request> = new RequestPool<Request>(NVME_REQUESTS_MAX, 0);
  readonly queue: RequestQueue<Request> = new RequestQueue<Request>(this.pool); // accepted, waiting for the controller
  inFlightCount: u32 = 0;
  private readonly adminCid: StaticArray<u32> = new StaticArray<u32>(ADMIN_SLOTS); // in flight: its CID; else 0xffff_ffff
  private readonly adminDeadlineNs: StaticArray<u64> = new StaticArray<u64>(ADMIN_SLOTS);
  private adminSequence: u32 = 0;
  private ioSequence: u32 = 0;
  private readonly outbox: CompletionOutbox = new CompletionOutbox(NVME_OUTBOX_DEPTH, this.stats);
  private readonly out: Msg = new Msg();
  private readonly pointer: DataPointer = new DataPointer();
  private readonly identifyBuffer: usize;
  private readonly logBuffer: usize;
  private readonly nsidList: StaticArray<u32> = new StaticArray<u32>(NVME_DISKS_MAX);
  private nsidCount: u32 = 0;
  private probeIndex: u32 = 0;
  private step: BringUp = BringUp.IdentifyController;
  private readyPosted: bool = false;
  private readonly tick: DdmTick = new DdmTick(NVME_TICK_NS); // while it has work (tickNeeded)
  readonly revival: DdmRevival = new DdmRevival(); // a given-up controller tried again later
  private waitStartNs: u64 = 0;
  private readyWaitNs: u64 = NVME_READY_WAIT_NS_MAX;
  private doorbellStrideBytes: u32 = 4;
  private ioEntries: u32 = NVME_IO_QUEUE_ENTRIES;
  segmentsMax: u32 = NVME_SEGMENTS_MAX;
  transferBytesMax: u32 = NVME_TRANSFER_BYTES_MAX;
  sglSupported: bool = false;
  namespaceCount: u32 = 0; // NN
  private unmapOpcode: u32 = IO_DATASET_MANAGEMENT; // or WRITE ZEROES with DEAC, or none (0xff)
  private abortTarget: u32 = REQUEST_NONE;
  private faultCause: FaultCause = FaultCause.None;
  private faultNs: u64 = 0;
  private faultsInRow: u32 = 0;
  private bringUpFailures: u32 = 0;
  private refusalSense: u32 = 0;

  /** Lays the queues, the request areas and the buffers over `dma` (reserved by the caller). Boot only. */
  constructor(
    readonly controllerIndex: u32,
    name: string,
    readonly pci: PciFunctionInfo,
    readonly regs: NvmeRegisters,
    dma: NvmeMemory,
    readonly vectorBase: u32,
    readonly rtaTask: u32,
  ) {
    super(name, NVME_PRIORITY, NVME_INBOX_DEPTH, NVME_BUDGET_NS);
    this.admin = new QueuePair(0, NVME_ADMIN_QUEUE_ENTRIES, dma.adminSq, dma.adminCq);
    this.io = new QueuePair(IO_QUEUE_ID, NVME_IO_QUEUE_ENTRIES, dma.ioSq, dma.ioCq);
    this.identifyBuffer = dma.identify;
    this.logBuffer = dma.log;
    for (let r: u32 = 0; r < NVME_REQUESTS_MAX; r++) this.pool.slotSet(r, new Request(dma.area(r)));
    this.pool.open();
    for (let d: u32 = 0; d < NVME_DISKS_MAX; d++) unchecked(this.disks[d] = new DiskInfo());
    for (let s: u32 = 0; s < ADMIN_SLOTS; s++) unchecked(this.adminCid[s] = 0xffff_ffff);
  }

  /** Takes the tick's timer and asks for a first run, which resets the controller. Boot, after taskAdd. */
  start(): void {
    this.tick.start(this.index);
    wakeTask(this.index);
  }

  run(): RunResult {
    if (this.state == NvmeState.Off) this.disable();
    this.outbox.flush(this.index);
    let handled: u32 = 0;
    while (handled < NVME_BATCH_MAX && this.inbox.pop(this.scratch)) {
      handled += 1;
      this.dispatch(this.scratch);
    }
    this.issueQueued();
    this.tick.arm(this.tickNeeded());
    if (this.state == NvmeState.Failed && this.revival.atNs != DEADLINE_NONE) this.tick.wakeAt(this.revival.atNs);
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  private dispatch(msg: Msg): void {
    switch (<i32>msg.kind) {
      case MsgKind.Irq: this.onInterrupt(msg.a); break;
      case MsgKind.Timer: this.onTick(); break;
      case MsgKind.BlockIo: this.onBlockIo(msg); break;
      default: assert(false, "nvme: unexpected message kind");
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Requests in.

  private onBlockIo(msg: Msg): void {
    this.stats.requests += 1;
    if (this.state == NvmeState.Failed) {
      this.refuse(msg, BlockStatus.DeviceError, 0);
      return;
    }
    if (this.discovered) {
      const status = this.validate(blockIoOp(msg), blockIoDisk(msg), blockIoBlockCount(msg), blockIoSgl(msg), blockIoLba(msg));
      if (status != BlockStatus.Ok) {
        this.refuse(msg, status, this.refusalSense);
        return;
      }
    }
    const r = this.pool.acquire();
    if (r == REQUEST_NONE) {
      this.stats.busyRejects += 1;
      this.refuse(msg, BlockStatus.Busy, 0);
      return;
    }
    this.pool.at(r).take(msg, this.discovered);
    this.queue.pushBack(r);
  }

  /** Ok, or why the request is refused without touching the controller (the sense in refusalSense). */
  private validate(op: u32, disk: u32, blockCount: u32, sgl: u32, lba: u64): BlockStatus {
    this.refusalSense = SENSE_INVALID_FIELD_IN_CDB;
    if (disk >= this.diskCount) {
      this.refusalSense = 0;
      return BlockStatus.NoDisk;
    }
    const info = unchecked(this.disks[disk])!;
    if (info.blockCount == 0) { // an empty slot (a namespace that was not active at discovery)
      this.refusalSense = 0;
      return BlockStatus.NoDisk;
    }
    switch (<i32>op) {
      case BlockOp.Flush: return BlockStatus.Ok;
      case BlockOp.Unmap: {
        if (blockCount == 0 || this.unmapOpcode == 0xff) return BlockStatus.IllegalRequest;
        if (this.unmapOpcode == IO_WRITE_ZEROES && blockCount > 0x10000) return BlockStatus.IllegalRequest; // NLB is 16 bits
        return this.rangeCheck(info, lba, blockCount);
      }
      case BlockOp.Read:
      case BlockOp.Write:
      case BlockOp.WriteFua: return this.transferCheck(info, lba, blockCount, sgl);
      default: return BlockStatus.IllegalRequest;
    }
  }

  private rangeCheck(info: DiskInfo, lba: u64, blockCount: u32): BlockStatus {
    if (!info.holds(lba, blockCount)) {
      this.refusalSense = SENSE_LBA_OUT_OF_RANGE;
      return BlockStatus.IllegalRequest;
    }
    return BlockStatus.Ok;
  }

  // A transfer: a length within the limits (NLB is 16 bits), inside the disk, an SGL of exactly that many bytes that
  // PRPs or, where the controller offers them, NVMe SGLs (at most segmentsMax segments) can describe.
  private transferCheck(info: DiskInfo, lba: u64, blockCount: u32, sgl: u32): BlockStatus {
    const bytes = <u64>blockCount * <u64>info.blockSizeBytes;
    if (blockCount == 0 || blockCount > 0x10000 || bytes > <u64>this.transferBytesMax) return BlockStatus.IllegalRequest;
    const range = this.rangeCheck(info, lba, blockCount);
    if (range != BlockStatus.Ok) return range;
    if (sgl == SGL_NONE) return BlockStatus.IllegalRequest;
    sgls().check(sgl);
    if (sgls().totalBytes(sgl) != bytes) return BlockStatus.IllegalRequest;
    // PRPs take any number of segments (a transfer's pages fit the list); an NVMe SGL one descriptor per segment.
    if (sglFitsPrp(sgl)) return BlockStatus.Ok;
    if (!this.sglSupported || sgls().segmentCount(sgl) > this.segmentsMax || !sglFitsDescriptors(sgl)) return BlockStatus.IllegalRequest;
    return BlockStatus.Ok;
  }

  // Sends queued requests in order; refuses, in order, those that fail validation. The I/O queue holds every slot.
  private issueQueued(): void {
    if (this.state != NvmeState.Ready) return;
    let issued: u32 = 0;
    for (let n: u32 = 0; n < NVME_REQUESTS_MAX && this.queue.head != REQUEST_NONE; n++) {
      if (this.inFlightCount >= this.io.size - 1) break; // CAP.MQES gave a smaller queue: wait for completions
      const r = this.queue.popFront();
      const req = this.pool.at(r);
      if (!req.validated) {
        const status = this.validate(req.op, req.disk, req.blockCount, req.sgl, req.lba);
        req.validated = true;
        if (status != BlockStatus.Ok) {
          this.requestDone(r, status, this.refusalSense, 0);
          continue;
        }
      }
      if (unchecked(this.diskChanged[req.disk])) {
        // The namespace was replaced since its last command (a Namespace Attribute Changed event named it): said once
        // to the requester, as a disk that powered on is (BlockStatus.Changed).
        unchecked(this.diskChanged[req.disk] = false);
        this.requestDone(r, BlockStatus.Changed, 0, 0);
        continue;
      }
      this.issue(r);
      issued += 1;
    }
    if (issued > 0) this.regs.ring(this.io.sqDoorbell, this.io.sqTail);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Commands out.

  /** Puts request `r` on the I/O submission queue (the doorbell is rung once per batch). */
  private issue(r: u32): void {
    const req = this.pool.at(r);
    assert(this.inFlightCount < this.io.size - 1, "nvme: I/O queue over its entries");
    const info = unchecked(this.disks[req.disk])!;
    const nsid = unchecked(this.diskNsid[req.disk]);
    this.ioSequence = (this.ioSequence + 1) & ((1 << (16 - CID_SLOT_BITS)) - 1);
    req.cid = r | (this.ioSequence << CID_SLOT_BITS);
    const sqe = this.io.sqeNext();
    req.dataBytes = 0;
    switch (<i32>req.op) {
      case BlockOp.Read:
      case BlockOp.Write:
      case BlockOp.WriteFua: {
        req.dataBytes = req.blockCount * info.blockSizeBytes;
        const asSgl = !sglFitsPrp(req.sgl);
        pointerBuild(req.sgl, req.area, asSgl, this.pointer);
        sqeInit(sqe, req.op == BlockOp.Read ? IO_READ : IO_WRITE, req.cid, nsid, this.pointer.psdt);
        if (this.pointer.kind == PointerKind.Sgl) {
          sqeSetSgl(sqe, this.pointer.prp1, this.pointer.sglLengthBytes, this.pointer.sglType);
          this.stats.sglCommands += 1;
        } else {
          sqeSetPrp(sqe, this.pointer.prp1, this.pointer.prp2);
          if (this.pointer.kind == PointerKind.PrpList) this.stats.prpLists += 1;
        }
        this.lbaSet(sqe, req.lba, req.blockCount, req.op == BlockOp.WriteFua ? WRITE_FUA : 0);
        break;
      }
      case BlockOp.Flush: sqeInit(sqe, IO_FLUSH, req.cid, nsid); break;
      case BlockOp.Unmap: {
        if (this.unmapOpcode == IO_DATASET_MANAGEMENT) {
          // One range (NVMe 1.4 Figure 364): |0 context attributes|4 length in blocks (1-based)|8 starting LBA|.
          memory.fill(req.area, 0, 16);
          store<u32>(req.area, req.blockCount, 4);
          store<u64>(req.area, req.lba, 8);
          sqeInit(sqe, IO_DATASET_MANAGEMENT, req.cid, nsid);
          sqeSetPrp(sqe, <u64>req.area, 0);
          sqeSetCdw10(sqe, 0); // NR: one range (0-based)
          sqeSetCdw11(sqe, DSM_ATTRIBUTE_DEALLOCATE);
        } else {
          sqeInit(sqe, IO_WRITE_ZEROES, req.cid, nsid);
          this.lbaSet(sqe, req.lba, req.blockCount, WRITE_ZEROES_DEALLOCATE);
        }
        break;
      }
      default: assert(false, "nvme: request with an unknown op");
    }
    this.io.push();
    req.deadlineNs = clockNowNs() + NVME_REQUEST_TIMEOUT_NS;
    req.aborting = false;
    req.state = RequestState.InFlight;
    this.inFlightCount += 1;
    if (this.inFlightCount > this.stats.inFlightMax) this.stats.inFlightMax = this.inFlightCount;
    this.stats.submitted += 1;
  }

  // SLBA in CDW10-11, NLB (0-based) and flags in CDW12.
  private lbaSet(sqe: usize, lba: u64, blockCount: u32, flags: u32): void {
    assert(blockCount >= 1 && blockCount <= 0x10000);
    sqeSetCdw10(sqe, <u32>lba);
    sqeSetCdw11(sqe, <u32>(lba >> 32));
    sqeSetCdw12(sqe, (blockCount - 1) | flags);
  }

  /** An admin command in `slot`, built by the caller after this returns its SQE; rung at once. */
  private adminBegin(slot: u32, opcode: u32, nsid: u32): usize {
    assert(slot < ADMIN_SLOTS && unchecked(this.adminCid[slot]) == 0xffff_ffff, "nvme: admin slot busy");
    this.adminSequence = (this.adminSequence + 1) & 0x3fff;
    const cid = slot | (this.adminSequence << 2);
    unchecked(this.adminCid[slot] = cid);
    unchecked(this.adminDeadlineNs[slot] = slot == ADMIN_SLOT_EVENT ? u64.MAX_VALUE : clockNowNs() + NVME_ADMIN_TIMEOUT_NS);
    const sqe = this.admin.sqeNext();
    sqeInit(sqe, opcode, cid, nsid);
    this.stats.adminCommands += 1;
    return sqe;
  }

  private adminSubmit(): void {
    this.admin.push();
    this.regs.ring(this.admin.sqDoorbell, this.admin.sqTail);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Completions.

  private onInterrupt(vector: u32): void {
    const live = this.state == NvmeState.Configuring || this.state == NvmeState.Ready;
    if (!live) {
      this.stats.spuriousInterrupts += 1;
      return;
    }
    if (vector == this.vectorBase + MSIX_ENTRY_ADMIN) this.adminDrain();
    else {
      assert(vector == this.vectorBase + MSIX_ENTRY_IO, "nvme: interrupt on a vector not routed here");
      if (this.state == NvmeState.Ready) this.ioDrain();
      else this.stats.spuriousInterrupts += 1;
    }
  }

  // Every completion with the expected phase, at most one per command in flight: one more cannot be real.
  private ioDrain(): void {
    const io = this.io;
    const expected = this.inFlightCount;
    let consumed: u32 = 0;
    for (let n: u32 = 0; n <= io.size && io.fresh(); n++) {
      if (consumed == expected) {
        line().s(this.name).s(": more I/O completions than commands in flight (").u32(expected).s(")").err();
        this.fault(FaultCause.Device);
        return;
      }
      const cqe = io.cqeHead();
      if (!this.ioComplete(cqe)) return; // reset: the queues are gone
      io.cqAdvance();
      consumed += 1;
    }
    if (consumed == 0) {
      this.stats.spuriousInterrupts += 1;
      return;
    }
    this.regs.ring(io.cqDoorbell, io.cqHead);
  }

  /** One I/O completion entry. False when it broke the protocol and the controller was reset. */
  private ioComplete(cqe: usize): bool {
    const cid = cqeCid(cqe);
    const r = cid & ((1 << CID_SLOT_BITS) - 1);
    const sqHead = cqeSqHead(cqe);
    if (cqeSqId(cqe) != IO_QUEUE_ID || sqHead >= this.io.size) {
      line().s(this.name).s(": I/O completion for SQ ").u32(cqeSqId(cqe)).s(" head ").u32(sqHead).err();
      this.fault(FaultCause.Device);
      return false;
    }
    if (r >= NVME_REQUESTS_MAX || this.pool.at(r).state != RequestState.InFlight || this.pool.at(r).cid != cid) {
      this.stats.unknownCompletions += 1;
      line().s(this.name).s(": completion for command ").hex(cid, 4).s(", not in flight").err();
      this.fault(FaultCause.Device);
      return false;
    }
    const req = this.pool.at(r);
    const status = dw3Status(cqeDw3(cqe));
    this.inFlightCount -= 1;
    req.state = RequestState.Free;
    if (r == this.abortTarget) this.abortTarget = REQUEST_NONE;
    let result = blockStatusOf(status);
    if (req.aborting && statusType(status) == SCT_GENERIC && statusCode(status) == SC_ABORT_REQUESTED) {
      result = BlockStatus.Timeout; // the abort we sent ended it
      this.stats.timeouts += 1;
    }
    this.requestDone(r, result, result == BlockStatus.Ok ? 0 : senseOf(status), result == BlockStatus.Ok ? req.dataBytes : 0);
    return true;
  }

  private adminDrain(): void {
    const admin = this.admin;
    let consumed: u32 = 0;
    for (let n: u32 = 0; n <= admin.size && admin.fresh(); n++) {
      const cqe = admin.cqeHead();
      const cid = cqeCid(cqe);
      const slot = cid & (ADMIN_SLOTS - 1);
      if (cqeSqId(cqe) != 0 || cqeSqHead(cqe) >= admin.size || unchecked(this.adminCid[slot]) != cid) {
        this.stats.unknownCompletions += 1;
        line().s(this.name).s(": admin completion for command ").hex(cid, 4).s(", not in flight").err();
        this.fault(FaultCause.Device);
        return;
      }
      unchecked(this.adminCid[slot] = 0xffff_ffff);
      const status = dw3Status(cqeDw3(cqe));
      const dw0 = cqeDw0(cqe);
      admin.cqAdvance();
      consumed += 1;
      if (!this.onAdminDone(slot, status, dw0)) return; // reset
    }
    if (consumed == 0) {
      this.stats.spuriousInterrupts += 1;
      return;
    }
    this.regs.ring(admin.cqDoorbell, admin.cqHead);
  }

  /** False when the completion made the driver reset the controller (the queues are gone). */
  private onAdminDone(slot: u32, status: u32, dw0: u32): bool {
    switch (slot) {
      case ADMIN_SLOT_BRINGUP: {
        if (this.insertDisk != 0xffff_ffff) { this.insertIdentified(status); return true; }
        return this.onBringUpDone(status, dw0);
      }
      case ADMIN_SLOT_ABORT: {
        // DW0 bit 0 set: the command was not aborted. If it is still in flight, only a reset ends it.
        if ((status != 0 || (dw0 & 1) != 0) && this.abortTarget != REQUEST_NONE) {
          line().s(this.name).s(": ABORT did not end command ").hex(this.pool.at(this.abortTarget).cid, 4).err();
          this.fault(FaultCause.Timeout);
          return false;
        }
        return true;
      }
      case ADMIN_SLOT_EVENT: {
        if (status != 0) return true; // aborted or refused: not asked again until the next bring-up
        if ((dw0 & 0x7) == EVENT_NOTICE && ((dw0 >> 16) & 0xff) == LOG_CHANGED_NAMESPACES) this.changedLogRequest();
        this.eventRequest();
        return true;
      }
      case ADMIN_SLOT_LOG: {
        if (status == 0) this.changedLogTake();
        return true;
      }
      default: assert(false, "nvme: unknown admin slot"); return true;
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Bring-up: NVMe 1.4 §7.6.1. CC.EN 0 and CSTS.RDY 0 first (a controller reset), then the admin queue.

  private disable(): void {
    const cap = this.regs.read64(REG_CAP);
    this.readyWaitNs = min(max(capTimeoutNs(cap), NVME_TICK_NS), NVME_READY_WAIT_NS_MAX);
    this.regs.write32(REG_CC, 0);
    this.state = NvmeState.Disabling;
    this.waitStartNs = clockNowNs();
    this.readyPoll(this.waitStartNs);
  }

  // Polled at once and on every tick while Disabling or Enabling; bounded by CAP.TO.
  private readyPoll(nowNs: u64): void {
    const csts = this.regs.read32(REG_CSTS);
    if (this.state == NvmeState.Disabling) {
      if (csts != CSTS_ALL_ONES && (csts & CSTS_RDY) == 0) {
        this.disabled();
        return;
      }
    } else {
      if (csts != CSTS_ALL_ONES && (csts & CSTS_CFS) != 0) {
        this.bringUpRefused("CSTS.CFS set while enabling");
        return;
      }
      if (csts != CSTS_ALL_ONES && (csts & CSTS_RDY) != 0) {
        this.state = NvmeState.Configuring;
        this.step = BringUp.IdentifyController;
        this.bringUpNext();
        return;
      }
    }
    if (nowNs - this.waitStartNs > this.readyWaitNs) {
      this.bringUpRefused(this.state == NvmeState.Disabling ? "CSTS.RDY stayed 1 after CC.EN 0" : "CSTS.RDY stayed 0 after CC.EN 1");
    }
  }

  // The controller has stopped: what was in flight fails now (no DMA can follow), then the admin queue goes in.
  private disabled(): void {
    this.failInFlight();
    const cap = this.regs.read64(REG_CAP);
    if (!capNvmCommandSet(cap) || capPageBytesMin(cap) > NVME_PAGE_BYTES || !this.doorbellsFit(cap)) {
      this.bringUpRefused("CAP: no NVM command set, pages over 4 KiB, or doorbells outside BAR 0");
      return;
    }
    const entriesMax = capQueueEntriesMax(cap);
    if (entriesMax < 2) {
      this.bringUpRefused("CAP.MQES below 2 entries");
      return;
    }
    this.ioEntries = min(NVME_IO_QUEUE_ENTRIES, entriesMax);
    const adminEntries = min(NVME_ADMIN_QUEUE_ENTRIES, entriesMax);
    this.admin.reset(adminEntries);
    this.io.reset(this.ioEntries);
    this.admin.sqDoorbell = this.regs.doorbell(0, this.doorbellStrideBytes);
    this.admin.cqDoorbell = this.regs.doorbell(1, this.doorbellStrideBytes);
    this.io.sqDoorbell = this.regs.doorbell(2 * IO_QUEUE_ID, this.doorbellStrideBytes);
    this.io.cqDoorbell = this.regs.doorbell(2 * IO_QUEUE_ID + 1, this.doorbellStrideBytes);
    for (let s: u32 = 0; s < ADMIN_SLOTS; s++) unchecked(this.adminCid[s] = 0xffff_ffff);
    this.insertDisk = 0xffff_ffff; // an IDENTIFY of an empty slot cut by the reset: asked again once Ready
    this.regs.write32(REG_AQA, ((adminEntries - 1) << 16) | (adminEntries - 1));
    this.regs.write64(REG_ASQ, <u64>this.admin.sq);
    this.regs.write64(REG_ACQ, <u64>this.admin.cq);
    this.regs.write32(REG_CC, CC_ENABLE);
    this.state = NvmeState.Enabling;
    this.waitStartNs = clockNowNs();
    this.readyPoll(this.waitStartNs);
  }

  private doorbellsFit(cap: u64): bool {
    this.doorbellStrideBytes = capDoorbellStrideBytes(cap);
    const end = this.regs.doorbell(2 * IO_QUEUE_ID + 2, this.doorbellStrideBytes) - this.regs.base;
    return end <= this.regs.sizeBytes;
  }

  private bringUpRefused(what: string): void {
    line().s(this.name).s(": bring-up refused: ").s(what).err();
    this.bringUpFailures += 1;
    if (this.bringUpFailures >= NVME_BRINGUP_ATTEMPTS_MAX) {
      this.giveUp("bring-up refused");
      return;
    }
    this.disable();
  }

  // The next admin command of the bring-up, or Ready.
  private bringUpNext(): void {
    switch (this.step) {
      case BringUp.IdentifyController: this.identify(CNS_CONTROLLER, 0); break;
      case BringUp.SetQueues: {
        const sqe = this.adminBegin(ADMIN_SLOT_BRINGUP, ADMIN_SET_FEATURES, 0);
        sqeSetCdw10(sqe, FEATURE_NUMBER_OF_QUEUES);
        sqeSetCdw11(sqe, 0); // one I/O SQ and one I/O CQ (0-based)
        this.adminSubmit();
        break;
      }
      case BringUp.CreateCq: {
        const sqe = this.adminBegin(ADMIN_SLOT_BRINGUP, ADMIN_CREATE_CQ, 0);
        sqeSetPrp(sqe, <u64>this.io.cq, 0);
        sqeSetCdw10(sqe, ((this.io.size - 1) << 16) | IO_QUEUE_ID);
        sqeSetCdw11(sqe, (MSIX_ENTRY_IO << 16) | 0b11); // IV, IEN, PC
        this.adminSubmit();
        break;
      }
      case BringUp.CreateSq: {
        const sqe = this.adminBegin(ADMIN_SLOT_BRINGUP, ADMIN_CREATE_SQ, 0);
        sqeSetPrp(sqe, <u64>this.io.sq, 0);
        sqeSetCdw10(sqe, ((this.io.size - 1) << 16) | IO_QUEUE_ID);
        sqeSetCdw11(sqe, (IO_QUEUE_ID << 16) | 0b1); // CQID, PC
        this.adminSubmit();
        break;
      }
      case BringUp.ActiveNamespaces: this.identify(CNS_ACTIVE_NAMESPACES, 0); break;
      case BringUp.IdentifyNamespace: this.identify(CNS_NAMESPACE, unchecked(this.nsidList[this.probeIndex])); break;
      case BringUp.Done: this.broughtUp(); break;
      default: assert(false, "nvme: unknown bring-up step");
    }
  }

  private identify(cns: u32, nsid: u32): void {
    memory.fill(this.identifyBuffer, 0, IDENTIFY_BYTES);
    const sqe = this.adminBegin(ADMIN_SLOT_BRINGUP, ADMIN_IDENTIFY, nsid);
    sqeSetPrp(sqe, <u64>this.identifyBuffer, 0); // one page, page aligned
    sqeSetCdw10(sqe, cns);
    this.adminSubmit();
  }

  /** The bring-up command completed. False when it made the driver reset. */
  private onBringUpDone(status: u32, dw0: u32): bool {
    switch (this.step) {
      case BringUp.IdentifyController: {
        if (status != 0 || !this.controllerTake()) {
          this.bringUpRefused("IDENTIFY controller");
          return false;
        }
        this.step = BringUp.SetQueues;
        break;
      }
      case BringUp.SetQueues: {
        // NSQA/NCQA (0-based) of at least one queue each; a refusal leaves the controller's default, which must then do.
        if (status == 0 && ((dw0 & 0xffff) == 0xffff || (dw0 >> 16) == 0xffff)) {
          this.bringUpRefused("Number of Queues");
          return false;
        }
        this.step = BringUp.CreateCq;
        break;
      }
      case BringUp.CreateCq:
      case BringUp.CreateSq: {
        if (status != 0) {
          this.bringUpRefused(this.step == BringUp.CreateCq ? "CREATE I/O CQ" : "CREATE I/O SQ");
          return false;
        }
        this.step = this.step == BringUp.CreateCq ? BringUp.CreateSq : this.discovered ? BringUp.Done : BringUp.ActiveNamespaces;
        break;
      }
      case BringUp.ActiveNamespaces: {
        this.nsidsTake(status == 0);
        this.diskFound = 0;
        for (let d: u32 = 0; d < NVME_DISKS_MAX; d++) {
          unchecked(this.disks[d])!.blockCount = 0;
          unchecked(this.diskNsid[d] = d + 1);
        }
        this.probeIndex = 0;
        this.step = this.nsidCount > 0 ? BringUp.IdentifyNamespace : BringUp.Done;
        break;
      }
      case BringUp.IdentifyNamespace: {
        if (status == 0) this.namespaceTake(unchecked(this.nsidList[this.probeIndex]));
        else line().s(this.name).s(": namespace ").u32(unchecked(this.nsidList[this.probeIndex])).s(": IDENTIFY refused").err();
        this.probeIndex += 1;
        if (this.probeIndex >= this.nsidCount) this.step = BringUp.Done;
        break;
      }
      default: assert(false, "nvme: bring-up completion in no step");
    }
    this.bringUpNext();
    return true;
  }

  // Identify Controller: entry sizes, the largest transfer, the namespace count, DSM/WRITE ZEROES, SGLs.
  private controllerTake(): bool {
    const data = this.identifyBuffer;
    if ((idCtrlSqes(data) & 0xf) > 6 || (idCtrlSqes(data) >> 4) < 6 || (idCtrlCqes(data) & 0xf) > 4 || (idCtrlCqes(data) >> 4) < 4) {
      line().s(this.name).s(": SQES/CQES do not allow 64/16-byte entries").err();
      return false;
    }
    const mdts = idCtrlMdts(data);
    const mdtsBytes: u64 = mdts == 0 || mdts > 20 ? <u64>NVME_TRANSFER_BYTES_MAX : (<u64>NVME_PAGE_BYTES) << mdts;
    this.transferBytesMax = <u32>min(mdtsBytes, <u64>NVME_TRANSFER_BYTES_MAX);
    this.namespaceCount = idCtrlNn(data);
    const oncs = idCtrlOncs(data);
    this.unmapOpcode = (oncs & ONCS_DATASET_MANAGEMENT) != 0 ? IO_DATASET_MANAGEMENT : (oncs & ONCS_WRITE_ZEROES) != 0 ? IO_WRITE_ZEROES : 0xff;
    this.sglSupported = (idCtrlSgls(data) & 0x3) == 1; // supported, without an alignment requirement
    return true;
  }

  // The active namespace list (NSIDs ascending, 0 ends it), or NSIDs 1..NN when it was refused; the lowest kept.
  private nsidsTake(listed: bool): void {
    this.nsidCount = 0;
    if (!listed) {
      for (let nsid: u32 = 1; nsid <= this.namespaceCount && this.nsidCount < NVME_DISKS_MAX; nsid++) {
        unchecked(this.nsidList[this.nsidCount] = nsid);
        this.nsidCount += 1;
      }
      return;
    }
    let last: u32 = 0;
    for (let i: u32 = 0; i < IDENTIFY_BYTES / 4 && this.nsidCount < NVME_DISKS_MAX; i++) {
      const nsid = load<u32>(this.identifyBuffer + <usize>i * 4);
      if (nsid == 0) break;
      if (nsid <= last || nsid >= 0xffff_fffe) break; // not ascending: the rest cannot be trusted
      last = nsid;
      unchecked(this.nsidList[this.nsidCount] = nsid);
      this.nsidCount += 1;
    }
  }

  // Identify Namespace: size, the format in use (LBADS, no metadata), the preferred write granularity.
  private namespaceTake(nsid: u32): void {
    const data = this.identifyBuffer;
    const blocks = idNsSize(data);
    const formatIndex = idNsFormatIndex(data);
    const format = formatIndex < idNsFormatCount(data) ? idNsFormat(data, formatIndex) : 0;
    const lbads = (format >> 16) & 0xff;
    if (blocks == 0 || lbads < LBADS_MIN || lbads > LBADS_MAX || (format & 0xffff) != 0) {
      line().s(this.name).s(": namespace ").u32(nsid).s(": not usable (size ").u64(blocks).s(", LBADS ").u32(lbads).s(")").err();
      return;
    }
    // A controller whose namespaces all fit the table (NN at most NVME_DISKS_MAX: one namespace per bay) numbers its
    // disks by NSID, an inactive one an empty slot, so a disk missing at power-on does not renumber the ones after it
    // (a RAID member named by its index would be another volume's disk). Others number them in NSID order.
    const d = this.slotsByNsid() ? nsid - 1 : this.diskFound;
    if (d >= NVME_DISKS_MAX) return;
    const info = unchecked(this.disks[d])!;
    info.controller = this.controllerIndex;
    info.disk = d;
    info.blockCount = blocks;
    info.blockSizeBytes = (<u32>1) << lbads;
    const granularity = (idNsFeatures(data) & NSFEAT_OPTPERF) != 0 ? idNsPreferredWriteGranularity(data) : 1;
    info.physicalExponent = (granularity & (granularity - 1)) == 0 && granularity <= 0x8000 ? 31 - clz(granularity) : 0;
    unchecked(this.diskNsid[d] = nsid);
    unchecked(this.diskChanged[d] = false);
    this.diskFound = max(this.diskFound, d + 1);
  }

  private slotsByNsid(): bool { return this.namespaceCount <= NVME_DISKS_MAX; }

  private broughtUp(): void {
    this.bringUpFailures = 0;
    this.state = NvmeState.Ready;
    this.eventRequest();
    this.insertNext();
    line().s(this.name).s(": up, I/O queue of ").u32(this.io.size).s(" entries, ").u32(this.transferBytesMax)
      .s(" bytes per command").s(this.sglSupported ? ", SGLs" : "").out();
    if (this.discovered) return;
    this.discovered = true;
    this.diskCount = this.slotsByNsid() ? this.namespaceCount : this.diskFound;
    // The inventory of this controller (wasm-iop inventory reads these lines; tools/cli/inventory.ts).
    line().s("inventory controller index=").u32(this.controllerIndex).s(" model=nvme name=").s(this.name).s(" slot=").u32(this.pci.device)
      .s(" vendor=").hex(this.pci.vendorId, 4).s(" device=").hex(this.pci.deviceId, 4).s(" adminQueueEntries=").u32(this.admin.size)
      .s(" ioQueues=1 ioQueueEntries=").u32(this.io.size).s(" vectors=").u32(NVME_VECTORS).s(" transferBytesMax=").u32(this.transferBytesMax)
      .s(" sgls=").u32(this.sglSupported ? 1 : 0).s(" namespaces=").u32(this.namespaceCount).out();
    for (let d: u32 = 0; d < this.diskCount; d++) {
      const info = unchecked(this.disks[d])!;
      if (info.blockCount == 0) {
        line().s(this.name).s(": disk ").u32(d).s(" NSID ").u32(unchecked(this.diskNsid[d])).s(": empty").out();
        continue;
      }
      line().s("inventory namespace controller=").u32(this.controllerIndex).s(" disk=").u32(d).s(" nsid=").u32(unchecked(this.diskNsid[d]))
        .s(" blocks=").u64(info.blockCount).s(" blockSize=").u32(info.blockSizeBytes).s(" physicalExponent=").u32(info.physicalExponent).out();
    }
    this.readyPost();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Asynchronous events: a Namespace Attribute Changed notice reads the Changed Namespace List.

  private eventRequest(): void {
    if (this.state != NvmeState.Ready || unchecked(this.adminCid[ADMIN_SLOT_EVENT]) != 0xffff_ffff) return;
    this.adminBegin(ADMIN_SLOT_EVENT, ADMIN_ASYNC_EVENT_REQUEST, 0);
    this.adminSubmit();
  }

  private changedLogRequest(): void {
    if (unchecked(this.adminCid[ADMIN_SLOT_LOG]) != 0xffff_ffff) return; // one in flight reads the whole list
    memory.fill(this.logBuffer, 0, IDENTIFY_BYTES);
    const sqe = this.adminBegin(ADMIN_SLOT_LOG, ADMIN_GET_LOG_PAGE, 0xffff_ffff);
    sqeSetPrp(sqe, <u64>this.logBuffer, 0);
    sqeSetCdw10(sqe, LOG_CHANGED_NAMESPACES | ((IDENTIFY_BYTES / 4 - 1) << 16)); // NUMDL: 1024 dwords, 0-based
    this.adminSubmit();
  }

  // Every listed NSID we serve is marked: its next request is answered Changed. 0xFFFFFFFF in entry 0: more changed
  // than the list holds, so every namespace is. A listed empty slot (its disk missing at discovery) may hold a disk
  // now: it is identified again (hot insert).
  private changedLogTake(): void {
    const all = load<u32>(this.logBuffer) == 0xffff_ffff;
    for (let i: u32 = 0; i < IDENTIFY_BYTES / 4; i++) {
      const nsid = load<u32>(this.logBuffer + <usize>i * 4);
      if (nsid == 0 && !all) break;
      for (let d: u32 = 0; d < this.diskCount; d++) {
        if (!all && unchecked(this.diskNsid[d]) != nsid) continue;
        unchecked(this.diskChanged[d] = true);
        if (unchecked(this.disks[d])!.blockCount == 0 && this.slotsByNsid() && d < 64) this.insertPending |= (<u64>1) << d;
      }
      if (all) break;
    }
    this.insertNext();
  }

  // The next empty slot to identify, when the bring-up slot is free.
  private insertNext(): void {
    if (this.state != NvmeState.Ready || this.insertPending == 0 || unchecked(this.adminCid[ADMIN_SLOT_BRINGUP]) != 0xffff_ffff) return;
    const d = <u32>ctz(this.insertPending);
    this.insertPending &= ~((<u64>1) << d);
    this.insertDisk = d;
    this.identify(CNS_NAMESPACE, unchecked(this.diskNsid[d]));
  }

  // IDENTIFY NAMESPACE of an empty slot answered: an active namespace there is a disk from now on (its first request
  // answered Changed, as a disk that powered on: the requester learns the slot holds another disk than before).
  private insertIdentified(status: u32): void {
    const d = this.insertDisk;
    this.insertDisk = 0xffff_ffff;
    const nsid = unchecked(this.diskNsid[d]);
    if (status == 0 && unchecked(this.disks[d])!.blockCount == 0) {
      this.namespaceTake(nsid);
      const info = unchecked(this.disks[d])!;
      if (info.blockCount != 0) {
        unchecked(this.diskChanged[d] = true);
        this.stats.disksInserted += 1;
        line().s(this.name).s(": disk ").u32(d).s(" NSID ").u32(nsid).s(": inserted, ").u64(info.blockCount).s(" blocks of ")
          .u32(info.blockSizeBytes).out();
      }
    }
    this.insertNext();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Time: deadlines (ABORT, then reset), the controller status, the ready waits, DdmReady.

  private onTick(): void {
    const nowNs = this.tick.fired();
    switch (this.state) {
      case NvmeState.Off: break;
      case NvmeState.Failed: if (this.revival.take(nowNs, this.name)) this.revive(); break;
      case NvmeState.Disabling:
      case NvmeState.Enabling: this.readyPoll(nowNs); break;
      case NvmeState.Configuring:
      case NvmeState.Ready: {
        if (!this.statusCheck()) this.deadlineCheck(nowNs);
        break;
      }
      default: assert(false, "nvme: unknown controller state");
    }
    this.readyPost();
  }

  private tickNeeded(): bool {
    if (this.state == NvmeState.Disabling || this.state == NvmeState.Enabling || this.state == NvmeState.Configuring) return true;
    if (this.outbox.count > 0) return true;
    if (this.state == NvmeState.Ready && (this.inFlightCount > 0 || this.adminBusy())) return true;
    return !this.readyPosted && (this.discovered || this.state == NvmeState.Failed);
  }

  private adminBusy(): bool {
    return unchecked(this.adminCid[ADMIN_SLOT_ABORT]) != 0xffff_ffff || unchecked(this.adminCid[ADMIN_SLOT_LOG]) != 0xffff_ffff
      || this.insertDisk != 0xffff_ffff;
  }



  /** CSTS: a fatal status (or no device answering) resets the controller. True if it did. */
  private statusCheck(): bool {
    const csts = this.regs.read32(REG_CSTS);
    if (csts != CSTS_ALL_ONES && (csts & CSTS_CFS) == 0 && (csts & CSTS_RDY) != 0) return false;
    line().s(this.name).s(": CSTS ").hex(csts, 8).s(": controller fatal status or not ready").err();
    this.fault(FaultCause.Device);
    return true;
  }

  // An admin command past its deadline resets; an I/O command past its deadline is aborted (one ABORT at a time),
  // and an ABORT that has not ended its command within NVME_ABORT_WAIT_NS resets.
  private deadlineCheck(nowNs: u64): void {
    for (let s: u32 = 0; s < ADMIN_SLOTS; s++) {
      if (unchecked(this.adminCid[s]) != 0xffff_ffff && unchecked(this.adminDeadlineNs[s]) <= nowNs) {
        line().s(this.name).s(": admin command ").hex(unchecked(this.adminCid[s]), 4).s(" timed out").err();
        this.fault(FaultCause.Timeout);
        return;
      }
    }
    if (this.state != NvmeState.Ready) return;
    if (unchecked(this.adminCid[ADMIN_SLOT_ABORT]) != 0xffff_ffff) return; // the ABORT's own deadline covers it
    for (let r: u32 = 0; r < NVME_REQUESTS_MAX; r++) {
      const req = this.pool.at(r);
      if (req.state == RequestState.InFlight && req.aborting && req.deadlineNs + NVME_ABORT_WAIT_NS <= nowNs) {
        line().s(this.name).s(": aborted command ").hex(req.cid, 4).s(" never completed").err();
        this.fault(FaultCause.Timeout);
        return;
      }
    }
    for (let r: u32 = 0; r < NVME_REQUESTS_MAX; r++) {
      const req = this.pool.at(r);
      if (req.state != RequestState.InFlight || req.deadlineNs > nowNs || req.aborting) continue;
      this.abortSend(r);
      return;
    }
  }

  // NVMe 1.4 §5.1: ABORT names the command by SQ and CID.
  private abortSend(r: u32): void {
    const req = this.pool.at(r);
    req.aborting = true;
    this.abortTarget = r;
    this.stats.aborts += 1;
    line().s(this.name).s(": command ").hex(req.cid, 4).s(" timed out: aborting it").err();
    const sqe = this.adminBegin(ADMIN_SLOT_ABORT, ADMIN_ABORT, 0);
    unchecked(this.adminDeadlineNs[ADMIN_SLOT_ABORT] = clockNowNs() + NVME_ABORT_WAIT_NS);
    sqeSetCdw10(sqe, IO_QUEUE_ID | (req.cid << 16));
    this.adminSubmit();
  }

  private readyPost(): void {
    if (this.readyPosted || (!this.discovered && this.state != NvmeState.Failed)) return;
    this.readyPosted = post(this.rtaTask, this.out.set(MsgKind.DdmReady, this.index, this.controllerIndex, 0));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Faults and resets.

  private fault(cause: FaultCause): void {
    this.stats.resets += 1;
    if (cause != FaultCause.Timeout) this.stats.deviceErrors += 1;
    this.faultsInRow += 1;
    this.faultCause = cause;
    this.faultNs = clockNowNs();
    line().s(this.name).s(": resetting the controller (reset ").u32(this.stats.resets).s(")").err();
    if (this.faultsInRow > NVME_FAULTS_IN_ROW_MAX) {
      this.giveUp("too many faults in a row");
      return;
    }
    this.disable();
  }

  // Every command in flight ends here exactly once, with the status the pending fault gives it.
  private failInFlight(): void {
    for (let r: u32 = 0; r < NVME_REQUESTS_MAX; r++) {
      const req = this.pool.at(r);
      if (req.state != RequestState.InFlight) continue;
      let status = BlockStatus.Aborted;
      if (this.faultCause == FaultCause.Device) status = BlockStatus.DeviceError;
      if (this.faultCause == FaultCause.Timeout && (req.aborting || req.deadlineNs <= this.faultNs)) status = BlockStatus.Timeout;
      if (status == BlockStatus.Timeout) this.stats.timeouts += 1;
      this.inFlightCount -= 1;
      req.state = RequestState.Free;
      this.requestDone(r, status, 0, 0);
    }
    assert(this.inFlightCount == 0, "nvme: in-flight count disagrees with the requests");
    for (let s: u32 = 0; s < ADMIN_SLOTS; s++) unchecked(this.adminCid[s] = 0xffff_ffff);
    this.insertDisk = 0xffff_ffff;
    this.abortTarget = REQUEST_NONE;
    this.faultCause = FaultCause.None;
  }

  // The controller is beyond help: stop its DMA first, then fail everything it holds, and every request after.
  private giveUp(reason: string): void {
    line().s(this.name).s(": giving up: ").s(reason).err();
    this.pci.write16(PCI_COMMAND, (this.pci.read16(PCI_COMMAND) | PCI_COMMAND_MEMORY) & ~PCI_COMMAND_BUS_MASTER);
    this.regs.write32(REG_CC, 0);
    this.state = NvmeState.Failed;
    if (this.faultCause == FaultCause.None) this.faultCause = FaultCause.Device;
    this.failInFlight();
    for (let n: u32 = 0; n < NVME_REQUESTS_MAX && this.queue.head != REQUEST_NONE; n++) {
      this.requestDone(this.queue.popFront(), BlockStatus.DeviceError, 0, 0);
    }
    this.readyPost();
    // Only a discovered controller comes back: the RTA built its disk list once, when every DDM was ready.
    if (!this.discovered) return;
    this.revival.schedule(clockNowNs(), this.name);
  }

  // The revival: bus mastering back on, then the reset and bring-up of a fault. On probation: a fault before a
  // command succeeds gives it up again (and the next revival waits twice as long).
  private revive(): void {
    this.pci.write16(PCI_COMMAND, this.pci.read16(PCI_COMMAND) | PCI_COMMAND_MEMORY | PCI_COMMAND_BUS_MASTER);
    this.faultsInRow = NVME_FAULTS_IN_ROW_MAX;
    this.bringUpFailures = 0;
    this.disable();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Completions to requesters.

  private requestDone(r: u32, status: BlockStatus, sense: u32, bytes: u32): void {
    const req = this.pool.at(r);
    if (status == BlockStatus.Ok) {
      this.faultsInRow = 0;
      this.revival.succeeded();
    }
    this.outbox.send(this.index, req.source, status, sense, req.isTransfer() ? bytes : 0, req.lba, req.tag);
    this.pool.release(r);
  }

  // A BlockIo answered at once, without taking a request slot.
  private refuse(msg: Msg, status: BlockStatus, sense: u32): void {
    this.outbox.send(this.index, <u32>msg.source, status, sense, 0, blockIoLba(msg), blockIoTag(msg));
  }
}
