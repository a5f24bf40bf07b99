// The virtio-scsi DDM: one task per controller. It brings the controller up (virtio §3.1.1), finds its disks
// (REPORT LUNS, then READ CAPACITY(16) per LUN), serves BlockIo requests on request queue 2, and on a fault (a
// deadline missed, a used index that jumps, DEVICE_NEEDS_RESET, a completion that breaks the protocol) resets the
// controller, fails what was in flight exactly once, and brings it up again. Nothing the device writes is trusted:
// it is validated, and a lie is a device error, never an assert.
//
// Requests: every accepted BlockIo takes one of VSCSI_REQUESTS_MAX request slots (its header, response and UNMAP
// parameter area) until its completion is sent. With every slot taken, the BlockIo is answered Busy at once
// (backpressure: the requester retries). A slot waits Queued, in arrival order, while the controller is resetting
// or the ring lacks descriptors, and goes out when completions free them. Completions a requester's full inbox
// refuses wait in an outbox, retried at every run and tick, in order.
import { PciFunctionInfo } from "../../board/pci";
import { clockNowNs } from "../../board/wasi";
import { sgls } from "../../kernel/buffers";
import { carve } from "../../kernel/carve";
import { line } from "../../kernel/console";
import { Msg, MsgKind } from "../../kernel/msg";
import { wakeTask } from "../../kernel/ready";
import { post } from "../../kernel/scheduler";
import { SGL_NONE, sglSegmentAddress, sglSegmentLengthBytes } from "../../kernel/sgl";
import { DEADLINE_NONE } from "../../kernel/timer";
import { RunResult, Task } from "../../kernel/task";
import {
  blockIoBlockCount, blockIoDisk, blockIoLba, blockIoOp, blockIoSgl, blockIoTag, blockOpIsTransfer, BlockOp, BlockStatus,
  DiskInfo,
} from "../block";
import { BlockRequest, REQUEST_NONE, RequestState } from "../block_request";
import { CompletionOutbox } from "../completion_outbox";
import { RequestPool } from "../request_pool";
import { RequestQueue } from "../request_queue";
import { DdmRevival } from "../revival";
import { DdmTick } from "../tick";
import {
  capacityBlockBytes, capacityLastLba, capacityPhysicalExponent, cdbReadCapacity16, cdbReadWrite16, cdbReportLuns, cdbSynchronizeCache16, cdbUnmap,
  LUN_INVALID, READ_CAPACITY_16_BYTES, reportLunsCount, reportLunsEntry, UNMAP_PARAMETERS_BYTES,
} from "./cdb";
import {
  VSCSI_BATCH_MAX, VSCSI_BRINGUP_ATTEMPTS_MAX, VSCSI_BUDGET_NS, VSCSI_DISKS_MAX, VSCSI_FAULTS_IN_ROW_MAX,
  VSCSI_INBOX_DEPTH, VSCSI_OUTBOX_DEPTH, VSCSI_PRIORITY, VSCSI_REQUEST_TIMEOUT_NS, VSCSI_REQUESTS_MAX,
  VSCSI_RESET_WAIT_NS, VSCSI_RETRIES_MAX, VSCSI_SEGMENTS_MAX, VSCSI_TICK_NS, VSCSI_TRANSFER_BYTES_MAX,
} from "./limits";
import {
  areaParameters, areaResponse, HEADER_BYTES, headerCdb, REQUEST_AREA_BYTES, requestPrepare, RESPONSE_BYTES, RESPONSE_OK,
  RESPONSE_UNWRITTEN, responseCode, responseResidual, responseSense, responseSenseLength, responseStatus, SENSE_BYTES, CDB_BYTES,
} from "./request";
import { VscsiStats } from "./stats";
import {
  blockStatusOf, SENSE_INVALID_FIELD_IN_CDB, SENSE_LBA_OUT_OF_RANGE, senseKeyOf, senseParse,
} from "./status";
import { SENSE_KEY_UNIT_ATTENTION } from "../../protocol/sense_keys";
import { SAM_STATUS_CHECK_CONDITION } from "../../protocol/scsi_status";
import {
  COMMON_CONFIG_GENERATION, COMMON_CONFIG_MSIX_VECTOR, COMMON_DEVICE_FEATURE, COMMON_DEVICE_FEATURE_SELECT,
  COMMON_DEVICE_STATUS, COMMON_DRIVER_FEATURE, COMMON_DRIVER_FEATURE_SELECT, COMMON_NUM_QUEUES, COMMON_QUEUE_DESC,
  COMMON_QUEUE_DEVICE, COMMON_QUEUE_DRIVER, COMMON_QUEUE_ENABLE, COMMON_QUEUE_MSIX_VECTOR, COMMON_QUEUE_NOTIFY_OFF,
  COMMON_QUEUE_SELECT, COMMON_QUEUE_SIZE, FEATURE_VERSION_1_IN_WORD, FEATURE_WORD_VERSION_1, STATUS_ACKNOWLEDGE,
  STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FAILED, STATUS_FEATURES_OK, VirtioCaps,
} from "./virtio_pci";
import { DESC_NONE, Virtqueue } from "./virtqueue";

export enum ControllerState {
  Off = 0, // before its first run: nothing written to the device yet
  Resetting = 1, // 0 written to device_status; waiting (polled every tick, bounded) for it to read back 0
  Discovering = 2, // DRIVER_OK; REPORT LUNS, then READ CAPACITY(16) per LUN, on the internal request
  Ready = 3, // serving BlockIo
  Failed = 4, // given up: bus mastering off, device_status FAILED, every request fails with DeviceError until the
  // revival (ddm/revival.ts) brings a discovered controller up again
}

enum FaultCause {
  None = 0, // no fault: the first bring-up
  Timeout = 1, // requests past their deadline fail with Timeout, the others in flight with Aborted
  Request = 2, // one completion broke the protocol: that request fails with DeviceError, the others with Aborted
  Device = 3, // the queue cannot be trusted (used index jump, DEVICE_NEEDS_RESET, give-up): all DeviceError
}

enum DiscoveryPhase {
  ReportLuns = 0, // REPORT LUNS in flight
  ReadCapacity = 1, // READ CAPACITY(16) in flight for lunList[probeIndex]
}

// The internal request's ops (Request.op, above BlockOp's values): codes of this DDM, not SCSI opcodes.
const INTERNAL_OP_REPORT_LUNS: u32 = 0x10;
const INTERNAL_OP_READ_CAPACITY: u32 = 0x11;

export const VSCSI_VECTORS: u32 = 2; // MSI-X table entries used: 0 configuration change, 1 request queue
const MSIX_ENTRY_CONFIG: u32 = 0;
const MSIX_ENTRY_REQUEST: u32 = 1;
export const REQUEST_QUEUE_INDEX: u32 = 2; // virtio §5.6.2: 0 controlq, 1 eventq, 2 the first request queue
const QUEUES_MIN: u32 = 3;
const INTERNAL: u32 = VSCSI_REQUESTS_MAX; // the index of the discovery request, outside the free list
const DISCOVERY_BUFFER_BYTES: u32 = 512; // REPORT LUNS: the header and 63 LUNs
const PCI_COMMAND: u32 = 0x04;
const PCI_COMMAND_MEMORY: u32 = 1 << 1;
const PCI_COMMAND_BUS_MASTER: u32 = 1 << 2;

// virtio_scsi_config (virtio §5.6.4), offsets in the device configuration; 36 bytes.
export const SCSI_CONFIG_BYTES: u32 = 36;
const CONFIG_SEG_MAX: u64 = 4;
const CONFIG_MAX_SECTORS: u64 = 8;
const CONFIG_SENSE_SIZE: u64 = 20;
const CONFIG_CDB_SIZE: u64 = 24;
const CONFIG_MAX_LUN: u64 = 32;
const CONFIG_READ_ATTEMPTS: u32 = 3; // reads of the configuration until config_generation holds still

// A BlockIo on this controller (op: a BlockOp, or INTERNAL_OP_REPORT_LUNS / INTERNAL_OP_READ_CAPACITY on the internal
// request); its area holds the request header, the response and the UNMAP parameters. dataBytes: the residual counts
// down from it.
class Request extends BlockRequest {
  lun: u32 = 0;
  retries: u32 = 0;
  head: u32 = DESC_NONE; // the first descriptor of its chain while in flight
  descCount: u32 = 0;
  writableBytes: u32 = 0; // response plus data-in: what the device may write

  constructor(area: usize) { super(area); }
}

export class VirtioScsiController extends Task {
  state: ControllerState = ControllerState.Off;
  readonly stats: VscsiStats = new VscsiStats();
  readonly disks: StaticArray<DiskInfo | null> = new StaticArray<DiskInfo | null>(VSCSI_DISKS_MAX);
  private readonly diskLun: StaticArray<u32> = new StaticArray<u32>(VSCSI_DISKS_MAX);
  diskCount: u32 = 0; // published when discovery completes
  private diskFound: u32 = 0; // during discovery
  discovered: bool = false;
  readonly vq: Virtqueue;
  // The BlockIo slots, and one more kept outside the free list: the internal request (INTERNAL) of discovery.
  readonly pool: RequestPool<Request> = new RequestPool<Request>(VSCSI_REQUESTS_MAX, 1);
  readonly queue: RequestQueue<Request> = new RequestQueue<Request>(this.pool); // accepted, waiting for descriptors
  private readonly headRequest: StaticArray<u16>; // the request whose chain starts at each descriptor
  inFlightCount: u32 = 0;
  private readonly outbox: CompletionOutbox = new CompletionOutbox(VSCSI_OUTBOX_DEPTH, this.stats);
  private readonly out: Msg = new Msg();
  private readonly discoveryBuffer: usize = carve(DISCOVERY_BUFFER_BYTES, 16);
  private readonly lunList: StaticArray<u32> = new StaticArray<u32>(VSCSI_DISKS_MAX);
  private lunCount: u32 = 0;
  private probeIndex: u32 = 0;
  private phase: DiscoveryPhase = DiscoveryPhase.ReportLuns;
  private readyPosted: bool = false;
  private readonly tick: DdmTick = new DdmTick(VSCSI_TICK_NS); // while it has work (tickNeeded)
  readonly revival: DdmRevival = new DdmRevival(); // a given-up controller tried again later
  private notifyAddress: u64 = 0;
  private notifyPending: bool = false;
  segmentsMax: u32 = 0;
  transferBytesMax: u32 = 0;
  private maxLun: u32 = 0;
  private resetStartNs: u64 = 0;
  private faultCause: FaultCause = FaultCause.None;
  private faultCulprit: u32 = REQUEST_NONE;
  private faultNs: u64 = 0;
  private faultsInRow: u32 = 0;
  private bringUpFailures: u32 = 0;
  private refusalSense: u32 = 0;
  private commandId: u64 = 0;

  /** Carves the queue and the request areas. Boot only; `queueSize` is a power of two the device offers. */
  constructor(
    readonly controllerIndex: u32,
    name: string,
    readonly pci: PciFunctionInfo,
    readonly caps: VirtioCaps,
    queueSize: u32,
    readonly vectorBase: u32,
    readonly rtaTask: u32,
  ) {
    super(name, VSCSI_PRIORITY, VSCSI_INBOX_DEPTH, VSCSI_BUDGET_NS);
    this.vq = new Virtqueue(queueSize);
    this.headRequest = new StaticArray<u16>(queueSize);
    for (let d: u32 = 0; d < queueSize; d++) unchecked(this.headRequest[d] = <u16>REQUEST_NONE);
    const areas = carve((VSCSI_REQUESTS_MAX + 1) * REQUEST_AREA_BYTES, 16);
    for (let r: u32 = 0; r <= VSCSI_REQUESTS_MAX; r++) this.pool.slotSet(r, new Request(areas + <usize>r * REQUEST_AREA_BYTES));
    this.pool.open();
    for (let d: u32 = 0; d < VSCSI_DISKS_MAX; d++) unchecked(this.disks[d] = new DiskInfo());
  }

  /** Takes the tick's timer and asks for a first run, which resets the controller. Boot, after taskAdd. */
  start(): void {
    this.tick.start(this.index);
    wakeTask(this.index);
  }

  run(): RunResult {
    if (this.state == ControllerState.Off) this.resetStart();
    this.outbox.flush(this.index);
    let handled: u32 = 0;
    while (handled < VSCSI_BATCH_MAX && this.inbox.pop(this.scratch)) {
      handled += 1;
      this.dispatch(this.scratch);
    }
    this.issueQueued();
    this.notifyFlush();
    this.tick.arm(this.tickNeeded());
    if (this.state == ControllerState.Failed && this.revival.atNs != DEADLINE_NONE) this.tick.wakeAt(this.revival.atNs);
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  private dispatch(msg: Msg): void {
    switch (<i32>msg.kind) {
      case MsgKind.Irq: this.onInterrupt(msg.a); break;
      case MsgKind.Timer: this.onTick(); break;
      case MsgKind.BlockIo: this.onBlockIo(msg); break;
      default: assert(false, "vscsi: unexpected message kind");
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Requests in.

  private onBlockIo(msg: Msg): void {
    this.stats.requests += 1;
    if (this.state == ControllerState.Failed) {
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
    const req = this.pool.at(r);
    req.take(msg, this.discovered);
    req.retries = 0;
    this.queue.pushBack(r);
  }

  /** Ok, or why the request is refused without touching the device (the sense in refusalSense). */
  private validate(op: u32, disk: u32, blockCount: u32, sgl: u32, lba: u64): BlockStatus {
    this.refusalSense = SENSE_INVALID_FIELD_IN_CDB;
    if (disk >= this.diskCount) {
      this.refusalSense = 0;
      return BlockStatus.NoDisk;
    }
    const info = unchecked(this.disks[disk])!;
    if (info.blockCount == 0) { // an empty slot (a LUN that was not there at discovery)
      this.refusalSense = 0;
      return BlockStatus.NoDisk;
    }
    switch (<i32>op) {
      case BlockOp.Flush: return BlockStatus.Ok;
      case BlockOp.Unmap: return blockCount == 0 ? BlockStatus.IllegalRequest : this.rangeCheck(info, lba, blockCount);
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

  // A transfer: a length within the limits, inside the disk, and an SGL of exactly that many bytes.
  private transferCheck(info: DiskInfo, lba: u64, blockCount: u32, sgl: u32): BlockStatus {
    const bytes = <u64>blockCount * <u64>info.blockSizeBytes;
    if (blockCount == 0 || bytes > <u64>this.transferBytesMax) return BlockStatus.IllegalRequest;
    const range = this.rangeCheck(info, lba, blockCount);
    if (range != BlockStatus.Ok) return range;
    if (sgl == SGL_NONE) return BlockStatus.IllegalRequest;
    sgls().check(sgl); // the requester's list, checked before it is consumed (STYLE: pair the checks)
    if (sgls().totalBytes(sgl) != bytes || sgls().segmentCount(sgl) > this.segmentsMax) return BlockStatus.IllegalRequest;
    return BlockStatus.Ok;
  }

  // Sends queued requests in order while the ring has room; refuses, in order, those that fail validation.
  private issueQueued(): void {
    if (this.state != ControllerState.Ready) return;
    for (let n: u32 = 0; n <= VSCSI_REQUESTS_MAX && this.queue.head != REQUEST_NONE; n++) {
      const r = this.queue.head;
      const req = this.pool.at(r);
      if (!req.validated) {
        const status = this.validate(req.op, req.disk, req.blockCount, req.sgl, req.lba);
        req.validated = true;
        if (status != BlockStatus.Ok) {
          this.queue.popFront();
          this.requestDone(r, status, this.refusalSense, 0);
          continue;
        }
      }
      if (!this.issue(r)) return; // wait for completions to free descriptors
      this.queue.popFront();
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Requests out: the command, the descriptor chain, the ring.

  /** Puts request `r` on the ring; false (nothing changed) when the ring lacks free descriptors. */
  private issue(r: u32): bool {
    const req = this.pool.at(r);
    const segments = req.isTransfer() ? sgls().segmentCount(req.sgl) : 0;
    const extra: u32 = req.op == BlockOp.Unmap || r == INTERNAL ? 1 : 0;
    const count: u32 = 2 + segments + extra;
    if (count > this.vq.freeCount) return false;
    this.commandBuild(req);
    const head = this.vq.chainAlloc(count);
    this.chainBuild(req, head, segments);
    req.head = head;
    req.descCount = count;
    req.deadlineNs = clockNowNs() + VSCSI_REQUEST_TIMEOUT_NS;
    req.state = RequestState.InFlight;
    unchecked(this.headRequest[head] = <u16>r);
    this.inFlightCount += 1;
    if (this.inFlightCount > this.stats.inFlightMax) this.stats.inFlightMax = this.inFlightCount;
    this.vq.publish(head);
    this.notifyPending = true;
    this.stats.submitted += 1;
    return true;
  }

  // The header and CDB in the request's area; the data length the command moves.
  private commandBuild(req: Request): void {
    this.commandId += 1;
    req.lun = this.lunOf(req);
    requestPrepare(req.area, req.lun, this.commandId);
    const cdb = headerCdb(req.area);
    const blockBytes: u32 = req.op == INTERNAL_OP_REPORT_LUNS || req.op == INTERNAL_OP_READ_CAPACITY ? 0
      : unchecked(this.disks[req.disk])!.blockSizeBytes;
    req.writableBytes = RESPONSE_BYTES;
    switch (<i32>req.op) {
      case BlockOp.Read: {
        cdbReadWrite16(cdb, false, false, req.lba, req.blockCount);
        req.dataBytes = req.blockCount * blockBytes;
        req.writableBytes += req.dataBytes;
        break;
      }
      case BlockOp.Write:
      case BlockOp.WriteFua: {
        cdbReadWrite16(cdb, true, req.op == BlockOp.WriteFua, req.lba, req.blockCount);
        req.dataBytes = req.blockCount * blockBytes;
        break;
      }
      case BlockOp.Flush: cdbSynchronizeCache16(cdb); req.dataBytes = 0; break;
      case BlockOp.Unmap: {
        cdbUnmap(cdb, areaParameters(req.area), req.lba, req.blockCount);
        req.dataBytes = UNMAP_PARAMETERS_BYTES;
        break;
      }
      case INTERNAL_OP_REPORT_LUNS: this.internalCommand(req, DISCOVERY_BUFFER_BYTES); cdbReportLuns(cdb, DISCOVERY_BUFFER_BYTES); break;
      case INTERNAL_OP_READ_CAPACITY: this.internalCommand(req, READ_CAPACITY_16_BYTES); cdbReadCapacity16(cdb); break;
      default: assert(false, "vscsi: request with an unknown op");
    }
  }

  private internalCommand(req: Request, dataBytes: u32): void {
    memory.fill(this.discoveryBuffer, 0, DISCOVERY_BUFFER_BYTES);
    req.dataBytes = dataBytes;
    req.writableBytes = RESPONSE_BYTES + dataBytes;
  }

  private lunOf(req: Request): u32 {
    if (req.op == INTERNAL_OP_REPORT_LUNS) return 0;
    if (req.op == INTERNAL_OP_READ_CAPACITY) return req.lun;
    assert(req.disk < this.diskCount, "vscsi: request for a disk not validated");
    return unchecked(this.diskLun[req.disk]);
  }

  // virtio §2.7.4 Message Framing: device-readable first (header, data-out, UNMAP list), then device-writable
  // (response, data-in).
  private chainBuild(req: Request, head: u32, segments: u32): void {
    const vq = this.vq;
    let d = head;
    vq.descFill(d, <u64>req.area, HEADER_BYTES, false);
    d = vq.chainNextOf(d);
    if (req.op == BlockOp.Write || req.op == BlockOp.WriteFua) d = this.segmentsFill(req.sgl, d, segments, false);
    if (req.op == BlockOp.Unmap) {
      vq.descFill(d, <u64>areaParameters(req.area), UNMAP_PARAMETERS_BYTES, false);
      d = vq.chainNextOf(d);
    }
    vq.descFill(d, <u64>areaResponse(req.area), RESPONSE_BYTES, true);
    d = vq.chainNextOf(d);
    if (req.op == BlockOp.Read) d = this.segmentsFill(req.sgl, d, segments, true);
    if (req.op == INTERNAL_OP_REPORT_LUNS || req.op == INTERNAL_OP_READ_CAPACITY) {
      vq.descFill(d, <u64>this.discoveryBuffer, req.dataBytes, true);
      d = vq.chainNextOf(d);
    }
    assert(d == DESC_NONE, "vscsi: chain longer than its command");
  }

  // One descriptor per SGL segment, from descriptor `d` on; returns the descriptor after the last.
  private segmentsFill(sgl: u32, d: u32, segments: u32, deviceWritable: bool): u32 {
    for (let i: u32 = 0; i < segments; i++) {
      const segment = sgls().segment(sgl, i);
      this.vq.descFill(d, sglSegmentAddress(segment), sglSegmentLengthBytes(segment), deviceWritable);
      d = this.vq.chainNextOf(d);
    }
    return d;
  }

  private notifyFlush(): void {
    if (!this.notifyPending) return;
    this.notifyPending = false;
    if (this.state == ControllerState.Ready || this.state == ControllerState.Discovering) {
      this.caps.notifyWrite(this.notifyAddress, REQUEST_QUEUE_INDEX);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Completions.

  private onInterrupt(vector: u32): void {
    if (vector == this.vectorBase + MSIX_ENTRY_CONFIG) {
      this.onConfigInterrupt();
      return;
    }
    assert(vector == this.vectorBase + MSIX_ENTRY_REQUEST, "vscsi: interrupt on a vector not routed here");
    if (this.state != ControllerState.Ready && this.state != ControllerState.Discovering) {
      this.stats.spuriousInterrupts += 1;
      return;
    }
    const usedIdx = this.vq.usedIdx();
    const fresh = (usedIdx - this.vq.usedSeen) & 0xffff;
    if (fresh == 0) {
      this.stats.spuriousInterrupts += 1;
      return;
    }
    if (fresh > this.vq.size) { // virtio §2.7.8: more than QS new entries cannot be real
      line().s(this.name).s(": used idx jumped from ").u32(this.vq.usedSeen).s(" to ").u32(usedIdx).err();
      this.fault(FaultCause.Device, REQUEST_NONE);
      return;
    }
    for (let i: u32 = 0; i < fresh; i++) {
      const position = (this.vq.usedSeen + i) & 0xffff;
      if (!this.completeUsed(this.vq.usedId(position), this.vq.usedLen(position))) return; // reset: ring is gone
    }
    this.vq.usedSeen = usedIdx;
  }

  // A configuration-change interrupt: the device may be asking for a reset (virtio §2.1.2).
  private onConfigInterrupt(): void {
    if (this.state != ControllerState.Ready && this.state != ControllerState.Discovering) {
      this.stats.spuriousInterrupts += 1;
      return;
    }
    this.statusCheck();
  }

  /** One used element. False when it broke the protocol and the controller was reset. */
  private completeUsed(id: u32, lengthBytes: u32): bool {
    const r: u32 = id < this.vq.size ? <u32>unchecked(this.headRequest[id]) : REQUEST_NONE;
    if (r == REQUEST_NONE) { // not a chain in flight: never touch another request's memory
      this.stats.unknownCompletions += 1;
      return true;
    }
    const req = this.pool.at(r);
    assert(req.state == RequestState.InFlight && req.head == id, "vscsi: head table disagrees with its request");
    const response = responseCode(req.area);
    const residual = responseResidual(req.area);
    if (lengthBytes > req.writableBytes || response == RESPONSE_UNWRITTEN || residual > req.dataBytes) {
      line().s(this.name).s(": bad completion: len ").u32(lengthBytes).s(" of ").u32(req.writableBytes)
        .s(", response ").u32(response).s(", residual ").u32(residual).s(" of ").u32(req.dataBytes).err();
      this.fault(FaultCause.Request, r);
      return false;
    }
    this.vq.chainFree(req.head, req.descCount);
    unchecked(this.headRequest[id] = <u16>REQUEST_NONE);
    req.head = DESC_NONE;
    this.inFlightCount -= 1;
    const status = responseStatus(req.area);
    const sense = response == RESPONSE_OK && status == SAM_STATUS_CHECK_CONDITION
      ? senseParse(responseSense(req.area), min(responseSenseLength(req.area), SENSE_BYTES)) : 0;
    const result = blockStatusOf(response, status, sense);
    if (status == SAM_STATUS_CHECK_CONDITION && senseKeyOf(sense) == SENSE_KEY_UNIT_ATTENTION) {
      // A disk that powered on since its last command (29h/00h or 29h/01h, not a reset this driver or a task
      // management function caused) may be another disk in the same place: said to the requester, whose volume
      // knows whether that matters (a RAID member is checked and rebuilt). Other unit attentions report a past
      // event (a reset, a capacity change): the command is fine, and sent again.
      if (r != INTERNAL && (sense & 0xfffe) == 0x2900) {
        this.requestDone(r, BlockStatus.Changed, sense, 0);
        return true;
      }
      if (req.retries < VSCSI_RETRIES_MAX) {
        this.retryIssue(r);
        return true;
      }
    }
    this.requestDone(r, result, sense, req.dataBytes - residual);
    return true;
  }

  private retryIssue(r: u32): void {
    const req = this.pool.at(r);
    req.retries += 1;
    req.state = RequestState.Queued;
    this.stats.retries += 1;
    if (r == INTERNAL) assert(this.issue(r), "vscsi: no descriptors for discovery");
    else this.queue.pushFront(r);
  }

  // The end of a request: discovery goes on, or the requester is told. `bytes` counts data moved.
  private requestDone(r: u32, status: BlockStatus, sense: u32, bytes: u32): void {
    const req = this.pool.at(r);
    if (status == BlockStatus.Ok) {
      this.faultsInRow = 0;
      this.revival.succeeded();
    }
    req.state = RequestState.Free;
    if (r == INTERNAL) {
      this.onDiscoveryDone(status, bytes);
      return;
    }
    this.outbox.send(this.index, req.source, status, sense, req.isTransfer() ? bytes : 0, req.lba, req.tag);
    this.pool.release(r);
  }

  // A BlockIo answered at once, without taking a request slot.
  private refuse(msg: Msg, status: BlockStatus, sense: u32): void {
    this.outbox.send(this.index, <u32>msg.source, status, sense, 0, blockIoLba(msg), blockIoTag(msg));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Time: deadlines, the device status, the reset wait, DdmReady.

  private onTick(): void {
    const nowNs = this.tick.fired();
    switch (this.state) {
      case ControllerState.Off: break;
      case ControllerState.Failed: if (this.revival.take(nowNs, this.name)) this.revive(); break;
      case ControllerState.Resetting: this.resetPoll(nowNs); break;
      case ControllerState.Discovering:
      case ControllerState.Ready: {
        if (!this.statusCheck()) this.deadlineCheck(nowNs);
        break;
      }
      default: assert(false, "vscsi: unknown controller state");
    }
    this.readyPost();
  }

  // What the tick is for: a reset to poll, requests in flight (their deadlines, the device status), completions a
  // full inbox refused, DdmReady still to post. Idle, the tick sleeps: a device that needs a reset then says so with a
  // configuration interrupt (virtio §2.1.2), or the first tick after the next request finds it.
  private tickNeeded(): bool {
    if (this.state == ControllerState.Resetting || this.outbox.count > 0) return true;
    if ((this.state == ControllerState.Ready || this.state == ControllerState.Discovering) && this.inFlightCount > 0) return true;
    return !this.readyPosted && (this.discovered || this.state == ControllerState.Failed);
  }



  /** Reads device_status; a device that asks for a reset or lost DRIVER_OK is reset. True if it was. */
  private statusCheck(): bool {
    const status = this.caps.read8(COMMON_DEVICE_STATUS);
    if ((status & STATUS_DEVICE_NEEDS_RESET) == 0 && (status & STATUS_DRIVER_OK) != 0) return false;
    line().s(this.name).s(": device_status ").hex(status, 2).s(": needs a reset").err();
    this.fault(FaultCause.Device, REQUEST_NONE);
    return true;
  }

  private deadlineCheck(nowNs: u64): void {
    let expired: u32 = 0;
    for (let r: u32 = 0; r <= VSCSI_REQUESTS_MAX; r++) {
      const req = this.pool.at(r);
      if (req.state == RequestState.InFlight && req.deadlineNs <= nowNs) expired += 1;
    }
    if (expired == 0) return;
    line().s(this.name).s(": ").u32(expired).s(" requests timed out").err();
    this.fault(FaultCause.Timeout, REQUEST_NONE);
  }

  // DdmReady goes to the RTA once: when discovery completes, or when the controller is given up before that.
  private readyPost(): void {
    if (this.readyPosted || (!this.discovered && this.state != ControllerState.Failed)) return;
    this.readyPosted = post(this.rtaTask, this.out.set(MsgKind.DdmReady, this.index, this.controllerIndex, 0));
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Faults and resets.

  private fault(cause: FaultCause, culprit: u32): void {
    this.stats.resets += 1;
    if (cause != FaultCause.Timeout) this.stats.deviceErrors += 1;
    this.faultsInRow += 1;
    this.faultCause = cause;
    this.faultCulprit = culprit;
    this.faultNs = clockNowNs();
    this.notifyPending = false;
    line().s(this.name).s(": resetting the controller (reset ").u32(this.stats.resets).s(")").err();
    if (this.faultsInRow > VSCSI_FAULTS_IN_ROW_MAX) {
      this.giveUp("too many faults in a row");
      return;
    }
    this.resetStart();
  }

  // virtio §3.1.1 step 1: write 0, then wait for 0 (virtio §4.1.4.3.2), here or on the next ticks.
  private resetStart(): void {
    this.caps.write8(COMMON_DEVICE_STATUS, 0);
    this.state = ControllerState.Resetting;
    this.resetStartNs = clockNowNs();
    this.resetPoll(this.resetStartNs);
  }

  private resetPoll(nowNs: u64): void {
    if (this.caps.read8(COMMON_DEVICE_STATUS) == 0) {
      this.resetDone();
      return;
    }
    if (nowNs - this.resetStartNs > VSCSI_RESET_WAIT_NS) this.giveUp("reset did not complete");
  }

  // The device has stopped: what was in flight fails now (no DMA can follow), then the bring-up runs again.
  private resetDone(): void {
    this.failInFlight();
    this.vq.reset();
    for (let d: u32 = 0; d < this.vq.size; d++) unchecked(this.headRequest[d] = <u16>REQUEST_NONE);
    if (!this.bringUp()) {
      this.bringUpFailures += 1;
      if (this.bringUpFailures >= VSCSI_BRINGUP_ATTEMPTS_MAX) {
        this.giveUp("bring-up refused");
        return;
      }
      this.statusSetFailed(); // virtio §3.1.1: FAILED, then reset to try again
      this.caps.write8(COMMON_DEVICE_STATUS, 0);
      this.state = ControllerState.Resetting;
      this.resetStartNs = clockNowNs();
      return; // polled on the next tick
    }
    this.bringUpFailures = 0;
    if (this.discovered) {
      this.state = ControllerState.Ready;
      return;
    }
    this.state = ControllerState.Discovering;
    this.discoveryStart();
  }

  // Every request in flight ends here exactly once, with the status the pending fault gives it.
  private failInFlight(): void {
    for (let r: u32 = 0; r <= VSCSI_REQUESTS_MAX; r++) {
      const req = this.pool.at(r);
      if (req.state != RequestState.InFlight) continue;
      const status = this.failStatus(r);
      if (status == BlockStatus.Timeout) this.stats.timeouts += 1;
      req.head = DESC_NONE;
      this.inFlightCount -= 1;
      if (r == INTERNAL) req.state = RequestState.Free; // discovery starts over after the bring-up
      else this.requestDone(r, status, 0, 0);
    }
    assert(this.inFlightCount == 0, "vscsi: in-flight count disagrees with the requests");
    this.faultCause = FaultCause.None;
    this.faultCulprit = REQUEST_NONE;
  }

  private failStatus(r: u32): BlockStatus {
    switch (this.faultCause) {
      case FaultCause.Timeout: return this.pool.at(r).deadlineNs <= this.faultNs ? BlockStatus.Timeout : BlockStatus.Aborted;
      case FaultCause.Request: return r == this.faultCulprit ? BlockStatus.DeviceError : BlockStatus.Aborted;
      case FaultCause.Device: return BlockStatus.DeviceError;
      default: return BlockStatus.Aborted;
    }
  }

  // The controller is beyond help: stop its DMA first, then fail everything it holds, and every request after.
  private giveUp(reason: string): void {
    line().s(this.name).s(": giving up: ").s(reason).err();
    // Memory decode stays on whatever the register reads back (a device that answers 0 would otherwise have us turn
    // its BARs off, and the status write below would go to no device).
    this.pci.write16(PCI_COMMAND, (this.pci.read16(PCI_COMMAND) | PCI_COMMAND_MEMORY) & ~PCI_COMMAND_BUS_MASTER);
    this.statusSetFailed();
    this.state = ControllerState.Failed;
    if (this.faultCause == FaultCause.None) this.faultCause = FaultCause.Device;
    this.failInFlight();
    for (let n: u32 = 0; n <= VSCSI_REQUESTS_MAX && this.queue.head != REQUEST_NONE; n++) {
      const r = this.queue.popFront();
      this.requestDone(r, BlockStatus.DeviceError, 0, 0);
    }
    this.vq.reset();
    this.readyPost();
    // Only a discovered controller comes back: the RTA built its disk list once, when every DDM was ready.
    if (!this.discovered) return;
    this.revival.schedule(clockNowNs(), this.name);
  }

  // The revival: bus mastering back on, then the reset and bring-up of a fault. On probation: a fault before a
  // request succeeds gives it up again (and the next revival waits twice as long).
  private revive(): void {
    this.pci.write16(PCI_COMMAND, this.pci.read16(PCI_COMMAND) | PCI_COMMAND_MEMORY | PCI_COMMAND_BUS_MASTER);
    this.faultsInRow = VSCSI_FAULTS_IN_ROW_MAX;
    this.bringUpFailures = 0;
    this.resetStart();
  }

  // FAILED added to the bits already set: the driver never clears a bit (virtio §2.1.2).
  private statusSetFailed(): void {
    const status = this.caps.read8(COMMON_DEVICE_STATUS) & ~STATUS_DEVICE_NEEDS_RESET & 0xff;
    this.caps.write8(COMMON_DEVICE_STATUS, status | STATUS_FAILED);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Bring-up (virtio §3.1.1 steps 2-8; REFERENCE.md §4.1), once device_status reads 0.

  /** False when the device refused a step; the caller resets and tries again, a bounded number of times. */
  private bringUp(): bool {
    const caps = this.caps;
    caps.write8(COMMON_DEVICE_STATUS, STATUS_ACKNOWLEDGE);
    caps.write8(COMMON_DEVICE_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    caps.write32(COMMON_DEVICE_FEATURE_SELECT, FEATURE_WORD_VERSION_1);
    if ((caps.read32(COMMON_DEVICE_FEATURE) & FEATURE_VERSION_1_IN_WORD) == 0) return this.refused("no VERSION_1");
    caps.write32(COMMON_DRIVER_FEATURE_SELECT, 0); // accept VERSION_1 only
    caps.write32(COMMON_DRIVER_FEATURE, 0);
    caps.write32(COMMON_DRIVER_FEATURE_SELECT, FEATURE_WORD_VERSION_1);
    caps.write32(COMMON_DRIVER_FEATURE, FEATURE_VERSION_1_IN_WORD);
    const features = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK;
    caps.write8(COMMON_DEVICE_STATUS, features);
    if ((caps.read8(COMMON_DEVICE_STATUS) & STATUS_FEATURES_OK) == 0) return this.refused("FEATURES_OK not kept");
    if (!this.configRead()) return false;
    if (!this.queueSetup()) return false;
    caps.write16(COMMON_CONFIG_MSIX_VECTOR, MSIX_ENTRY_CONFIG);
    if (caps.read16(COMMON_CONFIG_MSIX_VECTOR) != MSIX_ENTRY_CONFIG) return this.refused("config MSI-X vector");
    caps.write8(COMMON_DEVICE_STATUS, features | STATUS_DRIVER_OK);
    line().s(this.name).s(": up, queue size ").u32(this.vq.size).s(", ").u32(this.segmentsMax).s(" segments, ")
      .u32(this.transferBytesMax).s(" bytes per request").out();
    return true;
  }

  // The device configuration, read until config_generation holds still (virtio §4.1.4.3.1).
  private configRead(): bool {
    const caps = this.caps;
    if (caps.read16(COMMON_NUM_QUEUES) < QUEUES_MIN) return this.refused("no request queue");
    let settled = false;
    for (let attempt: u32 = 0; attempt < CONFIG_READ_ATTEMPTS && !settled; attempt++) {
      const generation = caps.read8(COMMON_CONFIG_GENERATION);
      const segMax = caps.deviceRead32(CONFIG_SEG_MAX);
      const maxSectors = caps.deviceRead32(CONFIG_MAX_SECTORS);
      const senseSize = caps.deviceRead32(CONFIG_SENSE_SIZE);
      const cdbSize = caps.deviceRead32(CONFIG_CDB_SIZE);
      this.maxLun = caps.deviceRead32(CONFIG_MAX_LUN);
      settled = caps.read8(COMMON_CONFIG_GENERATION) == generation;
      if (!settled) continue;
      // Our request layout is the default one; a device with other sizes is not used.
      if (senseSize != SENSE_BYTES || cdbSize != CDB_BYTES) return this.refused("sense_size or cdb_size not the default");
      const segmentsCap = min(this.vq.size - 3, VSCSI_SEGMENTS_MAX);
      this.segmentsMax = segMax == 0 ? segmentsCap : min(segMax, segmentsCap);
      const sectorBytes: u64 = maxSectors == 0 ? <u64>VSCSI_TRANSFER_BYTES_MAX : <u64>maxSectors * 512;
      this.transferBytesMax = <u32>min(sectorBytes, <u64>VSCSI_TRANSFER_BYTES_MAX);
    }
    return settled ? true : this.refused("configuration kept changing");
  }

  // virtio §4.1.5.1.3: the request queue, at the size carved at boot, on MSI-X entry 1.
  private queueSetup(): bool {
    const caps = this.caps;
    caps.write16(COMMON_QUEUE_SELECT, REQUEST_QUEUE_INDEX);
    const sizeMax = caps.read16(COMMON_QUEUE_SIZE);
    if (sizeMax < this.vq.size) return this.refused("request queue smaller than at boot");
    if (sizeMax != this.vq.size) caps.write16(COMMON_QUEUE_SIZE, this.vq.size);
    caps.write16(COMMON_QUEUE_MSIX_VECTOR, MSIX_ENTRY_REQUEST);
    if (caps.read16(COMMON_QUEUE_MSIX_VECTOR) != MSIX_ENTRY_REQUEST) return this.refused("queue MSI-X vector");
    caps.write64(COMMON_QUEUE_DESC, <u64>this.vq.desc);
    caps.write64(COMMON_QUEUE_DRIVER, <u64>this.vq.avail);
    caps.write64(COMMON_QUEUE_DEVICE, <u64>this.vq.used);
    const notifyOffset = <u64>caps.read16(COMMON_QUEUE_NOTIFY_OFF) * <u64>caps.notifyMultiplier;
    if (notifyOffset + 2 > <u64>caps.notifyLengthBytes) return this.refused("notify address outside its capability");
    this.notifyAddress = caps.notify + notifyOffset;
    caps.write16(COMMON_QUEUE_ENABLE, 1);
    return true;
  }

  private refused(what: string): bool {
    line().s(this.name).s(": bring-up refused: ").s(what).err();
    return false;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Discovery: REPORT LUNS (or, if refused, LUNs 0..max_lun), then READ CAPACITY(16) for each, lowest LUNs first.

  private discoveryStart(): void {
    this.diskFound = 0;
    this.lunCount = 0;
    for (let d: u32 = 0; d < VSCSI_DISKS_MAX; d++) {
      unchecked(this.disks[d])!.blockCount = 0;
      unchecked(this.diskLun[d] = d);
    }
    this.phase = DiscoveryPhase.ReportLuns;
    this.internalIssue(INTERNAL_OP_REPORT_LUNS, 0);
  }

  private internalIssue(op: u32, lun: u32): void {
    const req = this.pool.at(INTERNAL);
    assert(req.state == RequestState.Free, "vscsi: discovery request busy");
    req.op = op;
    req.lun = lun;
    req.sgl = SGL_NONE;
    req.retries = 0;
    assert(this.issue(INTERNAL), "vscsi: no descriptors for discovery"); // nothing else is in flight yet
  }

  private onDiscoveryDone(status: BlockStatus, bytes: u32): void {
    if (this.state != ControllerState.Discovering) return;
    switch (this.phase) {
      case DiscoveryPhase.ReportLuns: {
        if (status == BlockStatus.Ok) this.lunsParse(bytes);
        else for (let lun: u32 = 0; lun <= this.maxLun && lun < VSCSI_DISKS_MAX; lun++) this.lunAdd(lun);
        this.phase = DiscoveryPhase.ReadCapacity;
        this.probeIndex = 0;
        break;
      }
      case DiscoveryPhase.ReadCapacity: {
        if (status == BlockStatus.Ok) this.capacityTake(unchecked(this.lunList[this.probeIndex]), bytes);
        else line().s(this.name).s(": LUN ").u32(unchecked(this.lunList[this.probeIndex])).s(": no capacity").err();
        this.probeIndex += 1;
        break;
      }
      default: assert(false, "vscsi: unknown discovery phase");
    }
    if (this.probeIndex < this.lunCount) this.internalIssue(INTERNAL_OP_READ_CAPACITY, unchecked(this.lunList[this.probeIndex]));
    else this.discoveryFinish();
  }

  private lunsParse(receivedBytes: u32): void {
    const count = reportLunsCount(this.discoveryBuffer, receivedBytes); // bounded by the buffer's 63 entries
    for (let i: u32 = 0; i < count; i++) {
      const lun = reportLunsEntry(this.discoveryBuffer, i);
      if (lun != LUN_INVALID) this.lunAdd(lun);
    }
  }

  // Keeps the VSCSI_DISKS_MAX lowest LUNs, sorted, without duplicates.
  private lunAdd(lun: u32): void {
    let at: u32 = 0;
    while (at < this.lunCount && unchecked(this.lunList[at]) < lun) at += 1;
    if (at < this.lunCount && unchecked(this.lunList[at]) == lun) return;
    if (at >= VSCSI_DISKS_MAX) return;
    const last = min(this.lunCount, VSCSI_DISKS_MAX - 1);
    for (let i = last; i > at; i--) unchecked(this.lunList[i] = this.lunList[i - 1]);
    unchecked(this.lunList[at] = lun);
    if (this.lunCount < VSCSI_DISKS_MAX) this.lunCount += 1;
  }

  private capacityTake(lun: u32, receivedBytes: u32): void {
    const lastLba = capacityLastLba(this.discoveryBuffer);
    const blockBytes = capacityBlockBytes(this.discoveryBuffer);
    const blockSizeOk = blockBytes >= 512 && blockBytes <= 65536 && (blockBytes & (blockBytes - 1)) == 0;
    if (receivedBytes < 12 || !blockSizeOk || lastLba == 0xffff_ffff_ffff_ffff) {
      line().s(this.name).s(": LUN ").u32(lun).s(": capacity not usable, block length ").u32(blockBytes).err();
      return;
    }
    // A device whose LUNs all fit the table (max_lun below VSCSI_DISKS_MAX: one LUN per bay) numbers its disks by
    // LUN, an absent one an empty slot, so a disk missing at power-on does not renumber the ones after it (a RAID
    // member named by its index would be another volume's disk). Other devices number them in LUN order.
    const d = this.slotsByLun() ? lun : this.diskFound;
    if (d >= VSCSI_DISKS_MAX) return;
    const info = unchecked(this.disks[d])!;
    info.controller = this.controllerIndex;
    info.disk = d;
    info.blockCount = lastLba + 1;
    info.blockSizeBytes = blockBytes;
    // An answer cut before byte 13 says nothing of physical blocks: one logical block each.
    info.physicalExponent = receivedBytes >= 14 ? capacityPhysicalExponent(this.discoveryBuffer) : 0;
    unchecked(this.diskLun[d] = lun);
    this.diskFound = max(this.diskFound, d + 1);
  }

  private slotsByLun(): bool { return this.maxLun < VSCSI_DISKS_MAX; }

  private discoveryFinish(): void {
    this.discovered = true;
    this.diskCount = this.slotsByLun() ? this.maxLun + 1 : this.diskFound;
    this.state = ControllerState.Ready;
    for (let d: u32 = 0; d < this.diskCount; d++) {
      const info = unchecked(this.disks[d])!;
      if (info.blockCount == 0) {
        line().s(this.name).s(": disk ").u32(d).s(" LUN ").u32(unchecked(this.diskLun[d])).s(": empty").out();
        continue;
      }
      line().s(this.name).s(": disk ").u32(d).s(" LUN ").u32(unchecked(this.diskLun[d])).s(": ").u64(info.blockCount)
        .s(" blocks of ").u32(info.blockSizeBytes).out();
    }
    line().s("inventory controller index=").u32(this.controllerIndex).s(" model=virtio-scsi name=").s(this.name).s(" slot=").u32(this.pci.device)
      .s(" vendor=").hex(this.pci.vendorId, 4).s(" device=").hex(this.pci.deviceId, 4).s(" queueSize=").u32(this.vq.size)
      .s(" segmentsMax=").u32(this.segmentsMax).s(" transferBytesMax=").u32(this.transferBytesMax).s(" luns=").u32(this.diskCount).out();
    this.readyPost();
  }
}
