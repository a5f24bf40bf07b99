// An NVMe controller on PCI Express (class 01h/08h/02h), after the NVM Express Base Specification 1.4 ("NVMe 1.4"
// below) and, where the specification leaves the device a choice, QEMU's hw/nvme (docs/hardware.md, "NVMe
// controller"). One namespace per disk of the board file, NSID n+1 for the n-th; the NVM command set only.
//
// What it models: the controller registers in BAR 0 (CAP, VS, CC, CSTS, AQA, ASQ, ACQ) and the doorbells after them
// (CAP.DSTRD 0: 4 bytes each); the admin queue with IDENTIFY (controller, namespace, active namespace list), CREATE
// and DELETE I/O SQ and CQ, SET and GET FEATURES (Number of Queues, Interrupt Coalescing), ASYNCHRONOUS EVENT
// REQUEST, ABORT and GET LOG PAGE (Changed Namespace List; error and SMART pages read as zeros); the I/O commands
// READ, WRITE, FLUSH, DATASET MANAGEMENT (deallocate) and WRITE ZEROES, with PRP lists and SGLs (Data Block, Segment,
// Last Segment descriptors); phase tags; one MSI-X vector per completion queue, with interrupt coalescing on I/O
// queues. Everything else answers Invalid Command Opcode or Invalid Field, as NVMe 1.4 asks.
//
// Interpretations (each chosen so a correct driver works and a wrong one is seen at once):
// - A command executes on the disk when it is fetched from its submission queue (so a write is in the backing file
//   before its completion); its completion entry reaches guest memory after the modelled latency, in fetch order per
//   submission queue. Admin commands complete on the next event of the clock, never inside the doorbell write.
// - CC.EN 1 → 0 is a controller reset (NVMe 1.4 §7.3.2): every queue is deleted and completions not yet written are
//   dropped (the driver is resetting; nothing it holds is completed), CSTS.RDY and CSTS.CFS read 0 after it, and the
//   features return to their defaults. CC.EN 0 → 1 with a bad AQA/ASQ/ACQ or an unsupported CC.MPS/CC.CSS leaves
//   CSTS.RDY at 0 (a guest error): the driver's enable wait times out.
// - A completion queue that is full holds further completions until the driver moves its head (NVMe 1.4 §4.6).
// - A submission queue entry the controller cannot read (a DMA fault) is a fatal controller error: CSTS.CFS is set
//   and the controller processes nothing until it is reset.
// - Interrupt coalescing (Feature 08h) applies to every I/O completion queue with interrupts enabled; an aggregation
//   time of 0 signals at once whatever the threshold.
//
// Faults a running board's control commands apply (host/board/control.ts; docs/fault.md):
// - A pulled disk is an inactive namespace: I/O to it answers Invalid Namespace or Format, IDENTIFY of it reads zeros,
//   the active namespace list leaves it out, and a Namespace Attribute Changed event is raised.
// - A disk inserted in its place is active again (a blank one); the same event is raised, and the Changed Namespace
//   List log page names it.
// - A hung controller fetches nothing and writes no completion; its registers still answer. CC.EN 1 → 0 ends the
//   hang (the reset then drops what it held); resume() ends it too, writing the held completions.
import type { AccessSize } from "../bus/bus.ts";
import { PciFunctionBase } from "../bus/pci_function.ts";
import { Layer } from "../sim/layer_meter.ts";
import type { EventHandle, VirtualClock } from "../sim/clock.ts";
import { hex } from "../sim/trace.ts";
import type { DiskBackend } from "./disk_backend.ts";
import { DiskIoError } from "./disk_backend.ts";

// QEMU's NVMe controller's IDs (hw/nvme): the driver matches the class code, not these.
export const NVME_VENDOR_ID = 0x1b36;
export const NVME_DEVICE_ID = 0x0010;
export const NVME_CLASS_CODE = 0x010802; // mass storage, non-volatile memory controller, NVM Express
export const NVME_BAR_REGISTERS = 0;
export const NVME_BAR_MSIX = 4;
const BAR_REGISTERS_SIZE_BYTES = 16 * 1024;
const BAR_MSIX_SIZE_BYTES = 4096;
const MSIX_TABLE_OFFSET = 0x000;
const MSIX_PBA_OFFSET = 0x800;

// Controller registers (NVMe 1.4 §3.1), offsets in BAR 0.
export const REG_CAP = 0x00; // 8 bytes
export const REG_VS = 0x08;
export const REG_INTMS = 0x0c;
export const REG_INTMC = 0x10;
export const REG_CC = 0x14;
export const REG_CSTS = 0x1c;
export const REG_NSSR = 0x20;
export const REG_AQA = 0x24;
export const REG_ASQ = 0x28; // 8 bytes
export const REG_ACQ = 0x30; // 8 bytes
export const REG_DOORBELLS = 0x1000;
export const NVME_VERSION_1_4 = 0x0001_0400;

export const CC_EN = 1 << 0;
export const CSTS_RDY = 1 << 0;
export const CSTS_CFS = 1 << 1;
export const CSTS_SHST_COMPLETE = 2 << 2;
const CC_CSS_SHIFT = 4;
const CC_MPS_SHIFT = 7;
const CC_SHN_SHIFT = 14;
const CC_IOSQES_SHIFT = 16;
const CC_IOCQES_SHIFT = 20;
export const SQ_ENTRY_BYTES = 64; // 2^6: the only CC.IOSQES accepted
export const CQ_ENTRY_BYTES = 16; // 2^4: the only CC.IOCQES accepted
export const PAGE_BYTES = 4096; // CAP.MPSMIN = CAP.MPSMAX = 0

// Admin opcodes (NVMe 1.4 §5).
export const ADMIN_DELETE_SQ = 0x00;
export const ADMIN_CREATE_SQ = 0x01;
export const ADMIN_GET_LOG_PAGE = 0x02;
export const ADMIN_DELETE_CQ = 0x04;
export const ADMIN_CREATE_CQ = 0x05;
export const ADMIN_IDENTIFY = 0x06;
export const ADMIN_ABORT = 0x08;
export const ADMIN_SET_FEATURES = 0x09;
export const ADMIN_GET_FEATURES = 0x0a;
export const ADMIN_ASYNC_EVENT_REQUEST = 0x0c;
// NVM command set opcodes (NVMe 1.4 §6).
export const IO_FLUSH = 0x00;
export const IO_WRITE = 0x01;
export const IO_READ = 0x02;
export const IO_WRITE_ZEROES = 0x08;
export const IO_DATASET_MANAGEMENT = 0x09;

export const CNS_NAMESPACE = 0x00;
export const CNS_CONTROLLER = 0x01;
export const CNS_ACTIVE_NAMESPACES = 0x02;
export const FEATURE_NUMBER_OF_QUEUES = 0x07;
export const FEATURE_INTERRUPT_COALESCING = 0x08;
export const LOG_ERROR = 0x01;
export const LOG_SMART = 0x02;
export const LOG_CHANGED_NAMESPACES = 0x04;
export const EVENT_TYPE_NOTICE = 0x2;
export const EVENT_NOTICE_NAMESPACE_CHANGED = 0x00;

// Status (NVMe 1.4 §4.6.1.2): the 15-bit Status Field as SC | SCT << 8 (CRD, M and DNR 0 unless said).
export const SCT_GENERIC = 0;
export const SCT_COMMAND_SPECIFIC = 1;
export const SCT_MEDIA = 2;
const DNR = 1 << 14;
export const SC_SUCCESS = 0x00;
export const SC_INVALID_OPCODE = 0x01;
export const SC_INVALID_FIELD = 0x02;
export const SC_DATA_TRANSFER_ERROR = 0x04;
export const SC_ABORT_REQUESTED = 0x07;
export const SC_ABORTED_SQ_DELETION = 0x08;
export const SC_INVALID_NAMESPACE = 0x0b;
export const SC_COMMAND_SEQUENCE_ERROR = 0x0c;
export const SC_DATA_SGL_LENGTH_INVALID = 0x0f;
export const SC_SGL_DESCRIPTOR_TYPE_INVALID = 0x11;
export const SC_PRP_OFFSET_INVALID = 0x13;
export const SC_LBA_OUT_OF_RANGE = 0x80;
export const SC_CQ_INVALID = 0x00; // command specific
export const SC_INVALID_QUEUE_ID = 0x01;
export const SC_INVALID_QUEUE_SIZE = 0x02;
export const SC_AER_LIMIT_EXCEEDED = 0x05;
export const SC_INVALID_LOG_PAGE = 0x09;
export const SC_INVALID_VECTOR = 0x08;
export const SC_INVALID_QUEUE_DELETION = 0x0c;
export const SC_WRITE_FAULT = 0x80; // media
export const SC_UNRECOVERED_READ_ERROR = 0x81;

/** The Status Field of a completion: SC, SCT and the Do Not Retry bit (NVMe 1.4 Figure 126). */
export function statusField(sct: number, sc: number, doNotRetry = false): number {
  return sc | (sct << 8) | (doNotRetry ? DNR : 0);
}
const OK = 0;

const ADMIN_QUEUE_ENTRIES_MAX = 4096; // AQA.ASQS/ACQS are 12 bits
const ABORT_LIMIT = 4; // ACL + 1
const AER_LIMIT = 4; // AERL + 1
const MDTS = 8; // transfers up to 2^8 pages: 1 MiB
const TRANSFER_BYTES_MAX = PAGE_BYTES << MDTS;
const DSM_RANGE_BYTES = 16;
const SGL_DESCRIPTOR_BYTES = 16;
const SGL_DESCRIPTORS_MAX = 4096; // walked per command, Segment descriptors included: 1 MiB in 256-byte pieces
const SGL_DATA_BLOCK = 0x0;
const SGL_SEGMENT = 0x2;
const SGL_LAST_SEGMENT = 0x3;
const CHANGED_NAMESPACES_MAX = 1024; // the log page's entries
const WRITE_ZEROES_CHUNK_BYTES = 1024 * 1024;
const LATENCY_DEFAULT_NS = { read: 20_000, write: 30_000, flush: 200_000 };

/** Faults a test injects, each applied once, to the next command or completion as named. */
export type NvmeFault =
  | { kind: "dma-fault-next" } // the next I/O's data transfer fails: Data Transfer Error, the disk never sees it
  | { kind: "never-complete-next" } // the next I/O is fetched and held: only ABORT or a reset ends it
  | { kind: "fatal-next" } // the next command fetched sets CSTS.CFS; the controller stops until reset
  | { kind: "media-error-next" } // the next READ or WRITE fails with a media error (the disk never sees it)
  | { kind: "unknown-cid" } // the next completion carries a command identifier the driver did not issue
  | { kind: "duplicate-cqe" } // the next completion is posted twice
  | { kind: "stale-phase" } // the next completion is written with the previous phase tag (the driver cannot see it)
  | { kind: "bad-sq-head" } // the next completion's SQ Head Pointer lies (beyond the tail)
  | { kind: "interrupt-storm"; count: number } // the next completion's vector is signalled `count` extra times
  | { kind: "csts-lie" } // CSTS reads CFS (fatal) once, though the controller is fine
  | { kind: "lose-write-next" }; // a lying device: the next WRITE completes successfully and stores nothing

export interface NvmeStats {
  commands: number; // I/O commands fetched
  adminCommands: number;
  bytesRead: number; // data delivered to the driver
  bytesWritten: number; // data the disks accepted
  errors: number; // completions with a status other than success
  interrupts: number; // MSI-X messages signalled (or left pending)
}

export interface NvmeOptions {
  name: string;
  clock: VirtualClock;
  disks: DiskBackend[];
  /** Entries an I/O queue may have (CAP.MQES + 1); 1024 when absent. */
  queueEntriesMax?: number;
  /** I/O submission and completion queue pairs offered (Number of Queues); 4 when absent. */
  ioQueuesMax?: number;
  /** Physical block size of each disk, in bytes (the namespace's preferred write granularity); the block size when absent. */
  physicalBlockBytes?: number[];
  serial?: string;
  log: (message: string) => void;
  latencyNs?: { read: number; write: number; flush: number };
}

interface SubmissionQueue {
  id: number;
  base: bigint;
  size: number;
  cqId: number;
  head: number; // the next entry the controller fetches
  tail: number; // as the driver's doorbell last set it
  completionLastNs: number; // completions of this queue are scheduled no earlier, so they keep fetch order
}

interface CompletionQueue {
  id: number;
  base: bigint;
  size: number;
  vector: number;
  interruptsEnabled: boolean;
  tail: number; // the next slot the controller writes
  head: number; // as the driver's doorbell last set it
  phase: number; // the phase tag the controller writes now: 1 after creation, inverted at each wrap
  waiting: Completion[]; // completions held while the queue is full
  coalescedCount: number; // entries posted since the last interrupt (I/O queues with coalescing)
  coalesceTimer: EventHandle | undefined;
}

interface Completion {
  sqId: number;
  cid: number;
  status: number; // the Status Field
  dw0: number;
  handle: EventHandle | undefined; // scheduled; undefined while held (hung, lost) or waiting for room
  lost: boolean; // fetched and held by a never-complete fault: ABORT can still end it
}

interface Segment {
  address: bigint;
  lengthBytes: number;
}

type Mapped = { ok: true; segments: Segment[] } | { ok: false; status: number };

// One command's outcome, before its completion is scheduled.
interface Outcome {
  status: number;
  dw0?: number;
  delayNs?: number;
  hold?: "aer" | "lost"; // no completion now: an event or ABORT completes it later
}

export class NvmeDevice extends PciFunctionBase {
  readonly kind = "nvme" as const;
  readonly stats: NvmeStats = { commands: 0, adminCommands: 0, bytesRead: 0, bytesWritten: 0, errors: 0, interrupts: 0 };
  private readonly clock: VirtualClock;
  private readonly disks: DiskBackend[];
  private readonly physicalBlockBytes: number[];
  private readonly queueEntriesMax: number;
  private readonly ioQueuesMax: number;
  private readonly latencyNs: { read: number; write: number; flush: number };
  private readonly serial: string;
  private readonly logLine: (message: string) => void;
  private readonly faults: NvmeFault[] = [];
  private readonly pulled: boolean[];
  private readonly sqeScratch = new Uint8Array(SQ_ENTRY_BYTES);
  private readonly cqeScratch = new Uint8Array(CQ_ENTRY_BYTES);
  // Power-on state, restored by controllerReset().
  private cc = 0;
  private csts = 0;
  private aqa = 0;
  private asq = 0n;
  private acq = 0n;
  private sqs = new Map<number, SubmissionQueue>();
  private cqs = new Map<number, CompletionQueue>();
  private pending: Completion[] = []; // scheduled or held, in fetch order
  private aers: number[] = []; // CIDs of outstanding ASYNCHRONOUS EVENT REQUESTs
  private events: number[] = []; // completion DW0 of events not yet reported
  private changedNamespaces = new Set<number>();
  private coalesceThreshold = 0; // 0-based
  private coalesceTimeUnits = 0; // 100 µs
  private ioQueuesCreated = false;
  private hung = false;
  private cstsLie = false;

  constructor(options: NvmeOptions) {
    const ioQueuesMax = options.ioQueuesMax ?? 4;
    super(
      {
        name: options.name,
        vendorId: NVME_VENDOR_ID,
        deviceId: NVME_DEVICE_ID,
        classCode: NVME_CLASS_CODE,
        revision: 2,
        bars: [
          { index: NVME_BAR_REGISTERS, sizeBytes: BAR_REGISTERS_SIZE_BYTES, is64: true },
          { index: NVME_BAR_MSIX, sizeBytes: BAR_MSIX_SIZE_BYTES },
        ],
        msix: { vectorCount: ioQueuesMax + 1, bar: NVME_BAR_MSIX, tableOffset: MSIX_TABLE_OFFSET, pbaOffset: MSIX_PBA_OFFSET },
      },
      options.log,
    );
    this.meterLayer = Layer.DiskController;
    const entries = options.queueEntriesMax ?? 1024;
    if (!Number.isInteger(entries) || entries < 2 || entries > 65536) throw new RangeError(`${options.name}: queue entries ${entries} not in 2..65536`);
    if (!Number.isInteger(ioQueuesMax) || ioQueuesMax < 1 || ioQueuesMax > 64) throw new RangeError(`${options.name}: ${ioQueuesMax} I/O queues (1..64)`);
    if (options.disks.length < 1 || options.disks.length > CHANGED_NAMESPACES_MAX) throw new RangeError(`${options.name}: ${options.disks.length} disks (1..${CHANGED_NAMESPACES_MAX})`);
    this.clock = options.clock;
    this.disks = [...options.disks];
    this.physicalBlockBytes = this.disks.map((d, i) => options.physicalBlockBytes?.[i] ?? d.blockSize);
    this.pulled = this.disks.map(() => false);
    this.queueEntriesMax = entries;
    this.ioQueuesMax = ioQueuesMax;
    this.latencyNs = options.latencyNs ?? LATENCY_DEFAULT_NS;
    this.serial = (options.serial ?? options.name).slice(0, 20);
    this.logLine = options.log;
  }

  /** Power-on reset from the board: the PCI header and the controller; commands in flight vanish with the power. */
  reset(): void {
    this.hung = false;
    this.cstsLie = false;
    this.resetFunction();
    this.controllerReset();
    this.cc = 0;
    this.aqa = 0;
    this.asq = 0n;
    this.acq = 0n;
  }

  /** Arms `fault` for the next command or completion it names; several armed faults apply in the order armed. */
  inject(fault: NvmeFault): void {
    if (fault.kind === "csts-lie") this.cstsLie = true;
    else this.faults.push(fault);
  }

  /** Pulls the disk at `index` (NSID index + 1): its namespace becomes inactive. */
  pull(index: number): void {
    this.checkIndex(index);
    this.pulled[index] = true;
    this.namespaceChanged(index + 1);
  }

  /** Puts `disk` at `index`, active again. */
  insert(index: number, disk: DiskBackend): void {
    this.checkIndex(index);
    this.disks[index] = disk;
    this.pulled[index] = false;
    this.namespaceChanged(index + 1);
  }

  /** Puts the disk pulled from `index` back, active again. */
  restore(index: number): void {
    this.checkIndex(index);
    this.insert(index, this.disks[index]!);
  }

  isPulled(index: number): boolean {
    this.checkIndex(index);
    return this.pulled[index]!;
  }

  hang(): void {
    this.hung = true;
  }

  /** Ends a hang: the held completions are written, in order, and the submission queues fetched again. */
  resume(): void {
    if (!this.hung) return;
    this.hung = false;
    for (const c of this.pending) if (c.handle === undefined && !c.lost) c.handle = this.clock.at(this.clock.nowNs, () => this.complete(c));
    for (const sq of this.sqs.values()) this.processSq(sq);
  }

  get isHung(): boolean {
    return this.hung;
  }

  /** True while CSTS.CFS is set: the controller processes nothing until it is reset. */
  get broken(): boolean {
    return (this.csts & CSTS_CFS) !== 0;
  }

  get ready(): boolean {
    return (this.csts & CSTS_RDY) !== 0;
  }

  get inFlightCount(): number {
    return this.pending.length;
  }

  /** The queues the driver created: for inventory and tests. */
  queues(): { sq: { id: number; size: number; cqId: number }[]; cq: { id: number; size: number; vector: number }[] } {
    return {
      sq: [...this.sqs.values()].map((q) => ({ id: q.id, size: q.size, cqId: q.cqId })),
      cq: [...this.cqs.values()].map((q) => ({ id: q.id, size: q.size, vector: q.vector })),
    };
  }

  /**
   * A hostile controller's completion, written now to I/O CQ `cqId` at its tail (what the fuzzer's nvme target and
   * tests use; tools/fuzz/targets/nvme.ts): the command identifier of no command the controller holds ("unknown"),
   * or of one it holds with an error status ("pending-error"; the real completion still comes later), the phase tag
   * the driver expects there or the other one, and the tail moved on or left (the next real completion then
   * overwrites it). Signals the queue's vector. Returns what it wrote, or undefined when there is no such queue.
   */
  forgeCompletion(cqId: number, forged: { cidMode: "unknown" | "pending-error"; cidSeed: number; status: number; sqHead: number; stalePhase: boolean; advance: boolean }): string | undefined {
    const cq = this.cqs.get(cqId);
    if (cq === undefined || cqId === 0) return undefined;
    const held = this.pending.filter((p) => this.sqs.get(p.sqId)?.cqId === cqId);
    // The CIDs the driver may have in flight: those held, and those posted but not fetched yet (a hung controller).
    const taken = new Set(held.map((p) => p.cid));
    for (const q of this.sqs.values()) {
      if (q.cqId !== cqId) continue;
      for (let at = q.head, n = 0; at !== q.tail && n < q.size; at = (at + 1) % q.size, n++) {
        if (this.dmaReadInto(q.base + BigInt(at * SQ_ENTRY_BYTES), this.sqeScratch).ok) taken.add(new Command(this.sqeScratch).cid);
      }
    }
    let cid = forged.cidSeed & 0xffff;
    let status = forged.status & 0x7fff;
    if (forged.cidMode === "pending-error" && held.length > 0) {
      cid = held[forged.cidSeed % held.length]!.cid;
      if ((status & 0x7ff) === 0) status |= SC_DATA_TRANSFER_ERROR; // never a forged success for a real command
    } else {
      for (let n = 0; n < 0x10000 && taken.has(cid); n++) cid = (cid + 1) & 0xffff;
    }
    const sq = [...this.sqs.values()].find((q) => q.cqId === cqId);
    const phase = forged.stalePhase ? cq.phase ^ 1 : cq.phase;
    const entry = new Uint8Array(CQ_ENTRY_BYTES);
    const view = new DataView(entry.buffer);
    view.setUint32(8, (forged.sqHead & 0xffff) | ((sq?.id ?? cqId) << 16), true);
    view.setUint32(12, (cid | (phase << 16) | (status << 17)) >>> 0, true);
    if (!this.dmaWrite(cq.base + BigInt(cq.tail * CQ_ENTRY_BYTES), entry).ok) return undefined;
    const where = `CQ ${cqId} slot ${cq.tail}: CID 0x${cid.toString(16)} status 0x${status.toString(16)} phase ${phase} SQ head ${forged.sqHead & 0xffff}`;
    if (forged.advance) {
      cq.tail = (cq.tail + 1) % cq.size;
      if (cq.tail === 0) cq.phase ^= 1;
    }
    if (cq.interruptsEnabled) this.signalCounted(cq.vector);
    return where;
  }

  /** Signals I/O CQ `cqId`'s vector `count` times with nothing new in the queue (an interrupt storm). */
  interruptStorm(cqId: number, count: number): void {
    const cq = this.cqs.get(cqId);
    if (cq === undefined) return;
    for (let n = 0; n < count; n++) this.signalCounted(cq.vector);
  }

  get namespaceCount(): number {
    return this.disks.length;
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.disks.length) throw new RangeError(`${this.name}: no namespace index ${index} (0..${this.disks.length - 1})`);
  }

  // --- Registers ---

  protected mmioRead(bar: number, offset: number, sizeBytes: AccessSize): number | bigint {
    if (bar !== NVME_BAR_REGISTERS) return this.badAccess(`read of ${sizeBytes} bytes at BAR${bar} + ${hex(offset)}`, sizeBytes);
    if (offset >= REG_DOORBELLS) return sizeBytes === 4 ? 0 : this.badAccess(`doorbell read of ${sizeBytes} bytes at ${hex(offset)}`, sizeBytes);
    const wide = offset === REG_CAP || offset === REG_ASQ || offset === REG_ACQ;
    if (wide && sizeBytes === 8) return this.register64(offset);
    if (sizeBytes !== 4 || offset % 4 !== 0) return this.badAccess(`register read of ${sizeBytes} bytes at ${hex(offset)}`, sizeBytes);
    switch (offset) {
      case REG_CAP: case REG_ASQ: case REG_ACQ: return Number(this.register64(offset) & 0xffff_ffffn);
      case REG_CAP + 4: case REG_ASQ + 4: case REG_ACQ + 4: return Number(this.register64(offset - 4) >> 32n);
      case REG_VS: return NVME_VERSION_1_4;
      case REG_INTMS: case REG_INTMC: return 0; // MSI-X in use: NVMe 1.4 §3.1.3, undefined; 0 here
      case REG_CC: return this.cc;
      case REG_CSTS: {
        if (!this.cstsLie) return this.csts;
        this.cstsLie = false;
        this.logLine(`${this.name}: injected fault: csts-lie`);
        return this.csts | CSTS_CFS;
      }
      case REG_NSSR: return 0;
      case REG_AQA: return this.aqa;
      default: return 0; // reserved and features not offered (CMB, PMR, boot partitions) read 0
    }
  }

  private register64(offset: number): bigint {
    if (offset === REG_ASQ) return this.asq;
    if (offset === REG_ACQ) return this.acq;
    // CAP: MQES, CQR (contiguous queues required), TO = 2 (1 s), DSTRD 0, CSS bit 37 (NVM command set), MPSMIN = MPSMAX = 0.
    const mqes = BigInt(this.queueEntriesMax - 1);
    return mqes | (1n << 16n) | (2n << 24n) | (1n << 37n);
  }

  protected mmioWrite(bar: number, offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    if (bar !== NVME_BAR_REGISTERS) {
      this.badAccess(`write of ${sizeBytes} bytes at BAR${bar} + ${hex(offset)}`, sizeBytes);
      return;
    }
    if (offset >= REG_DOORBELLS) {
      if (sizeBytes !== 4 || offset % 4 !== 0) this.badAccess(`doorbell write of ${sizeBytes} bytes at ${hex(offset)}`, sizeBytes);
      else this.onDoorbell((offset - REG_DOORBELLS) / 4, Number(BigInt.asUintN(32, BigInt(value))));
      return;
    }
    if ((offset === REG_ASQ || offset === REG_ACQ) && sizeBytes === 8) {
      this.onQueueBaseWrite(offset, BigInt.asUintN(64, BigInt(value)), 8);
      return;
    }
    if (sizeBytes !== 4 || offset % 4 !== 0) {
      this.badAccess(`register write of ${sizeBytes} bytes at ${hex(offset)}`, sizeBytes);
      return;
    }
    const word = Number(BigInt.asUintN(32, BigInt(value)));
    switch (offset) {
      case REG_CC: this.onCcWrite(word); return;
      case REG_AQA: if (this.adminWritable("AQA")) this.aqa = word & 0x0fff_0fff; return;
      case REG_ASQ: case REG_ASQ + 4: case REG_ACQ: case REG_ACQ + 4: this.onQueueBaseWrite(offset, BigInt(word), 4); return;
      case REG_INTMS: case REG_INTMC: case REG_NSSR: return; // MSI-X in use; NVM subsystem reset not offered (CAP.NSSRS 0)
      default: this.badAccess(`write to read-only register ${hex(offset)}`, sizeBytes);
    }
  }

  private adminWritable(what: string): boolean {
    if ((this.cc & CC_EN) === 0) return true;
    this.badAccess(`${what} written while CC.EN is 1`, 4);
    return false;
  }

  private onQueueBaseWrite(offset: number, value: bigint, sizeBytes: number): void {
    const isAsq = offset === REG_ASQ || offset === REG_ASQ + 4;
    if (!this.adminWritable(isAsq ? "ASQ" : "ACQ")) return;
    const current = isAsq ? this.asq : this.acq;
    let next: bigint;
    if (sizeBytes === 8) next = value;
    else if (offset % 8 === 0) next = (current & ~0xffff_ffffn) | value;
    else next = (current & 0xffff_ffffn) | (value << 32n);
    next &= ~0xfffn; // NVMe 1.4 §3.1.9: bits 11:0 are reserved, the queue is page aligned
    if (isAsq) this.asq = next;
    else this.acq = next;
  }

  private onCcWrite(value: number): void {
    const wasEnabled = (this.cc & CC_EN) !== 0;
    const enable = (value & CC_EN) !== 0;
    this.cc = value & 0x00ff_fff1;
    if (wasEnabled && !enable) {
      this.controllerReset();
      this.cc = value & 0x00ff_fff0;
      return;
    }
    if (!wasEnabled && enable) this.enable();
    if (((value >> CC_SHN_SHIFT) & 3) !== 0 && (this.csts & CSTS_RDY) !== 0) this.csts |= CSTS_SHST_COMPLETE; // shutdown completes at once
  }

  // NVMe 1.4 §7.6.1 steps 3-5, the controller's side: the admin queue from AQA/ASQ/ACQ, then CSTS.RDY.
  private enable(): void {
    const mps = (this.cc >> CC_MPS_SHIFT) & 0xf;
    const css = (this.cc >> CC_CSS_SHIFT) & 0x7;
    const sqEntries = (this.aqa & 0xfff) + 1;
    const cqEntries = ((this.aqa >> 16) & 0xfff) + 1;
    let refusal: string | undefined;
    if (mps !== 0) refusal = `CC.MPS ${mps} (only 4 KiB pages)`;
    else if (css !== 0) refusal = `CC.CSS ${css} (only the NVM command set)`;
    else if (sqEntries < 2 || cqEntries < 2 || sqEntries > ADMIN_QUEUE_ENTRIES_MAX || cqEntries > ADMIN_QUEUE_ENTRIES_MAX) refusal = `AQA ${hex(this.aqa)}`;
    else if (this.asq === 0n || this.acq === 0n) refusal = "ASQ or ACQ is 0";
    if (refusal !== undefined) {
      this.badAccess(`CC.EN set with ${refusal}: the controller stays not ready`, 4);
      return;
    }
    this.cqs.set(0, newCq(0, this.acq, cqEntries, 0, true));
    this.sqs.set(0, newSq(0, this.asq, sqEntries, 0));
    this.csts = CSTS_RDY;
  }

  // CC.EN 1 → 0 (and power-on): every queue and every completion not yet written is gone; features to defaults.
  private controllerReset(): void {
    for (const c of this.pending) if (c.handle !== undefined) this.clock.cancel(c.handle);
    for (const cq of this.cqs.values()) if (cq.coalesceTimer !== undefined) this.clock.cancel(cq.coalesceTimer);
    this.pending = [];
    this.sqs = new Map();
    this.cqs = new Map();
    this.aers = [];
    this.csts = 0;
    this.coalesceThreshold = 0;
    this.coalesceTimeUnits = 0;
    this.ioQueuesCreated = false;
    this.hung = false;
  }

  // Doorbell n: even n the tail of SQ n/2, odd n the head of CQ (n-1)/2 (NVMe 1.4 §3.1.24, §3.1.25, DSTRD 0).
  private onDoorbell(index: number, value: number): void {
    const queueId = index >> 1;
    if ((index & 1) === 0) {
      const sq = this.sqs.get(queueId);
      if (sq === undefined || value >= sq.size) {
        this.badAccess(`SQ ${queueId} tail doorbell ${value}: ${sq === undefined ? "no such queue" : `beyond its ${sq.size} entries`}`, 4);
        return;
      }
      sq.tail = value;
      this.processSq(sq);
      return;
    }
    const cq = this.cqs.get(queueId);
    if (cq === undefined || value >= cq.size) {
      this.badAccess(`CQ ${queueId} head doorbell ${value}: ${cq === undefined ? "no such queue" : `beyond its ${cq.size} entries`}`, 4);
      return;
    }
    cq.head = value;
    this.drainWaiting(cq);
  }

  private badAccess(message: string, sizeBytes: AccessSize): number {
    return this.guestError(message, sizeBytes);
  }

  // --- Submission ---

  private processSq(sq: SubmissionQueue): void {
    for (let n = 0; n < sq.size && sq.head !== sq.tail; n++) {
      if (this.hung || this.broken || !this.ready || this.sqs.get(sq.id) !== sq) return;
      const entry = this.sqeScratch;
      if (!this.dmaReadInto(sq.base + BigInt(sq.head * SQ_ENTRY_BYTES), entry).ok) {
        this.fatal(`SQ ${sq.id} entry ${sq.head} cannot be read at ${hex(sq.base)}`);
        return;
      }
      sq.head = (sq.head + 1) % sq.size;
      if (this.takeFault("fatal-next") !== undefined) {
        this.fatal("injected fault: fatal-next");
        return;
      }
      const command = new Command(entry);
      const outcome = sq.id === 0 ? this.executeAdmin(command) : this.executeIo(command);
      this.schedule(sq, command.cid, outcome);
    }
  }

  private fatal(why: string): void {
    this.logLine(`${this.name}: controller fatal status (CSTS.CFS): ${why}`);
    this.csts |= CSTS_CFS;
  }

  private schedule(sq: SubmissionQueue, cid: number, outcome: Outcome): void {
    if (outcome.hold === "aer") {
      this.aers.push(cid);
      this.reportEvents();
      return;
    }
    const completion: Completion = { sqId: sq.id, cid, status: outcome.status, dw0: outcome.dw0 ?? 0, handle: undefined, lost: outcome.hold === "lost" };
    this.pending.push(completion);
    if (completion.lost) return;
    const atNs = Math.max(this.clock.nowNs + (outcome.delayNs ?? 0), sq.completionLastNs);
    sq.completionLastNs = atNs;
    completion.handle = this.clock.at(atNs, () => this.complete(completion));
  }

  private complete(c: Completion): void {
    if (this.hung || this.broken) {
      c.handle = undefined; // held: a reset (or resume) settles it
      return;
    }
    this.pending.splice(this.pending.indexOf(c), 1);
    const sq = this.sqs.get(c.sqId);
    if (sq === undefined) return; // its queue was deleted meanwhile
    this.post(this.cqs.get(sq.cqId)!, sq, c);
  }

  // The entry, then the tail, then the interrupt (NVMe 1.4 §4.6: DW3's phase tag written with the entry).
  private post(cq: CompletionQueue, sq: SubmissionQueue, c: Completion): void {
    if ((cq.tail + 1) % cq.size === cq.head) {
      cq.waiting.push(c);
      return;
    }
    let cid = c.cid;
    let phase = cq.phase;
    let sqHead = sq.head;
    let copies = 1;
    if (sq.id !== 0) { // the completion faults hit I/O queues: the admin queue brings the controller up
      if (this.takeFault("unknown-cid") !== undefined) cid = (c.cid + 0x5a5a) & 0xffff;
      if (this.takeFault("stale-phase") !== undefined) phase ^= 1;
      if (this.takeFault("bad-sq-head") !== undefined) sqHead = sq.size; // no such entry
      if (this.takeFault("duplicate-cqe") !== undefined) copies = 2;
    }
    if (c.status !== OK) this.stats.errors += 1;
    for (let copy = 0; copy < copies; copy++) {
      const entry = this.cqeScratch;
      const view = new DataView(entry.buffer);
      view.setUint32(0, c.dw0 >>> 0, true);
      view.setUint32(4, 0, true);
      view.setUint32(8, (sqHead & 0xffff) | (sq.id << 16), true);
      view.setUint32(12, (cid | (phase << 16) | (c.status << 17)) >>> 0, true);
      if (!this.dmaWrite(cq.base + BigInt(cq.tail * CQ_ENTRY_BYTES), entry).ok) {
        this.fatal(`CQ ${cq.id} entry ${cq.tail} cannot be written at ${hex(cq.base)}`);
        return;
      }
      cq.tail = (cq.tail + 1) % cq.size;
      if (cq.tail === 0) {
        cq.phase ^= 1;
        phase ^= 1;
      }
      if ((cq.tail + 1) % cq.size === cq.head) break; // the copy would overwrite an entry the driver has not read
    }
    this.interrupt(cq);
  }

  private drainWaiting(cq: CompletionQueue): void {
    while (cq.waiting.length > 0 && (cq.tail + 1) % cq.size !== cq.head) {
      const c = cq.waiting.shift()!;
      const sq = this.sqs.get(c.sqId);
      if (sq !== undefined) this.post(cq, sq, c);
    }
  }

  // NVMe 1.4 §5.21.1.8: the admin queue never coalesces; I/O queues signal at THR + 1 entries or after TIME.
  private interrupt(cq: CompletionQueue): void {
    const storm = this.takeFault("interrupt-storm");
    if (!cq.interruptsEnabled) return;
    const extra = storm?.count ?? 0;
    if (cq.id !== 0 && this.coalesceTimeUnits > 0 && extra === 0) {
      cq.coalescedCount += 1;
      if (cq.coalescedCount <= this.coalesceThreshold) {
        cq.coalesceTimer ??= this.clock.after(this.coalesceTimeUnits * 100_000, () => this.coalesceFlush(cq));
        return;
      }
    }
    this.coalesceFlush(cq);
    for (let n = 0; n < extra; n++) this.signalCounted(cq.vector);
  }

  private coalesceFlush(cq: CompletionQueue): void {
    if (cq.coalesceTimer !== undefined) this.clock.cancel(cq.coalesceTimer);
    cq.coalesceTimer = undefined;
    cq.coalescedCount = 0;
    if (this.cqs.get(cq.id) === cq) this.signalCounted(cq.vector);
  }

  private signalCounted(vector: number): void {
    this.stats.interrupts += 1;
    this.signal(vector);
  }

  // --- Admin commands ---

  private executeAdmin(c: Command): Outcome {
    this.stats.adminCommands += 1;
    if (c.psdt !== 0) return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) }; // NVMe 1.4 §4.2: admin commands use PRPs
    switch (c.opcode) {
      case ADMIN_IDENTIFY: return this.identify(c);
      case ADMIN_CREATE_CQ: return this.createCq(c);
      case ADMIN_CREATE_SQ: return this.createSq(c);
      case ADMIN_DELETE_SQ: return this.deleteSq(c);
      case ADMIN_DELETE_CQ: return this.deleteCq(c);
      case ADMIN_SET_FEATURES: return this.setFeatures(c);
      case ADMIN_GET_FEATURES: return this.getFeatures(c);
      case ADMIN_ABORT: return this.abort(c);
      case ADMIN_ASYNC_EVENT_REQUEST: {
        if (this.aers.length >= AER_LIMIT) return { status: statusField(SCT_COMMAND_SPECIFIC, SC_AER_LIMIT_EXCEEDED, true) };
        return { status: OK, hold: "aer" };
      }
      case ADMIN_GET_LOG_PAGE: return this.getLogPage(c);
      default: return { status: statusField(SCT_GENERIC, SC_INVALID_OPCODE, true) };
    }
  }

  private identify(c: Command): Outcome {
    const cns = c.cdw10 & 0xff;
    let data: Uint8Array;
    if (cns === CNS_CONTROLLER) data = this.identifyController();
    else if (cns === CNS_NAMESPACE) {
      if (c.nsid === 0 || c.nsid > this.disks.length) return { status: statusField(SCT_GENERIC, SC_INVALID_NAMESPACE, true) };
      data = this.identifyNamespace(c.nsid);
    } else if (cns === CNS_ACTIVE_NAMESPACES) {
      if (c.nsid >= 0xffff_fffe) return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
      data = new Uint8Array(4096);
      let count = 0;
      for (let nsid = c.nsid + 1; nsid <= this.disks.length; nsid++) {
        if (this.pulled[nsid - 1]) continue;
        new DataView(data.buffer).setUint32(count * 4, nsid, true);
        count += 1;
      }
    } else return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
    return this.toHost(c, data);
  }

  // Identify Controller data structure (NVMe 1.4 Figure 247), the fields a driver reads.
  private identifyController(): Uint8Array {
    const data = new Uint8Array(4096);
    const view = new DataView(data.buffer);
    view.setUint16(0, NVME_VENDOR_ID, true); // VID
    view.setUint16(2, NVME_VENDOR_ID, true); // SSVID
    ascii(data, 4, 20, this.serial); // SN
    ascii(data, 24, 40, "WASM-IOP NVMe Controller"); // MN
    ascii(data, 64, 8, "1.0"); // FR
    data[72] = 6; // RAB
    data[77] = MDTS;
    view.setUint16(78, 0, true); // CNTLID
    view.setUint32(80, NVME_VERSION_1_4, true); // VER
    data[258] = ABORT_LIMIT - 1; // ACL
    data[259] = AER_LIMIT - 1; // AERL
    data[261] = 0; // LPA
    data[512] = 0x66; // SQES: 64-byte entries
    data[513] = 0x44; // CQES: 16-byte entries
    view.setUint32(516, this.disks.length, true); // NN
    view.setUint16(520, (1 << 2) | (1 << 3), true); // ONCS: Dataset Management, Write Zeroes
    data[525] = 1; // VWC: a volatile write cache (FLUSH is meaningful)
    view.setUint32(536, 1, true); // SGLS: SGLs for NVM commands, no alignment required
    return data;
  }

  // Identify Namespace data structure (NVMe 1.4 Figure 245); an inactive namespace reads all zeros.
  private identifyNamespace(nsid: number): Uint8Array {
    const data = new Uint8Array(4096);
    if (this.pulled[nsid - 1]) return data;
    const view = new DataView(data.buffer);
    const disk = this.disks[nsid - 1]!;
    const blocks = BigInt(disk.sizeBytes / disk.blockSize);
    view.setBigUint64(0, blocks, true); // NSZE
    view.setBigUint64(8, blocks, true); // NCAP
    view.setBigUint64(16, blocks, true); // NUSE
    data[24] = 1 << 4; // NSFEAT: OPTPERF (NPWG and the fields after it are valid)
    data[25] = 0; // NLBAF: one format
    data[26] = 0; // FLBAS: format 0, no metadata
    data[33] = 0x01 | 0x08; // DLFEAT: deallocated blocks read 0; WRITE ZEROES may deallocate
    const granularity = this.physicalBlockBytes[nsid - 1]! / disk.blockSize;
    view.setUint16(64, granularity - 1, true); // NPWG
    view.setUint16(66, granularity - 1, true); // NPWA
    view.setUint16(68, granularity - 1, true); // NPDG
    view.setUint16(70, granularity - 1, true); // NPDA
    view.setUint32(128, Math.log2(disk.blockSize) << 16, true); // LBAF0: LBADS, MS 0
    return data;
  }

  private createCq(c: Command): Outcome {
    const qid = c.cdw10 & 0xffff;
    const entries = (c.cdw10 >>> 16) + 1;
    const vector = c.cdw11 >>> 16;
    if (qid === 0 || qid > this.ioQueuesMax || this.cqs.has(qid)) return { status: statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_QUEUE_ID, true) };
    if (entries < 2 || entries > this.queueEntriesMax) return { status: statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_QUEUE_SIZE, true) };
    if (vector > this.ioQueuesMax) return { status: statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_VECTOR, true) };
    if ((c.cdw11 & 1) === 0 || (c.prp1 & 0xfffn) !== 0n || c.prp1 === 0n) return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) }; // CAP.CQR: contiguous, page aligned
    if (((this.cc >> CC_IOCQES_SHIFT) & 0xf) !== 4) return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
    this.cqs.set(qid, newCq(qid, c.prp1, entries, vector, (c.cdw11 & 2) !== 0));
    this.ioQueuesCreated = true;
    return { status: OK };
  }

  private createSq(c: Command): Outcome {
    const qid = c.cdw10 & 0xffff;
    const entries = (c.cdw10 >>> 16) + 1;
    const cqId = c.cdw11 >>> 16;
    if (qid === 0 || qid > this.ioQueuesMax || this.sqs.has(qid)) return { status: statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_QUEUE_ID, true) };
    if (entries < 2 || entries > this.queueEntriesMax) return { status: statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_QUEUE_SIZE, true) };
    if (cqId === 0 || !this.cqs.has(cqId)) return { status: statusField(SCT_COMMAND_SPECIFIC, SC_CQ_INVALID, true) };
    if ((c.cdw11 & 1) === 0 || (c.prp1 & 0xfffn) !== 0n || c.prp1 === 0n) return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
    if (((this.cc >> CC_IOSQES_SHIFT) & 0xf) !== 6) return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
    this.sqs.set(qid, newSq(qid, c.prp1, entries, cqId));
    this.ioQueuesCreated = true;
    return { status: OK };
  }

  // NVMe 1.4 §5.7: commands of the queue not yet completed complete with Aborted due to SQ Deletion first.
  private deleteSq(c: Command): Outcome {
    const qid = c.cdw10 & 0xffff;
    const sq = this.sqs.get(qid);
    if (qid === 0 || sq === undefined) return { status: statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_QUEUE_ID, true) };
    const cq = this.cqs.get(sq.cqId)!;
    for (const p of [...this.pending]) {
      if (p.sqId !== qid) continue;
      if (p.handle !== undefined) this.clock.cancel(p.handle);
      this.pending.splice(this.pending.indexOf(p), 1);
      this.post(cq, sq, { ...p, status: statusField(SCT_GENERIC, SC_ABORTED_SQ_DELETION), handle: undefined, lost: false });
    }
    this.sqs.delete(qid);
    return { status: OK };
  }

  private deleteCq(c: Command): Outcome {
    const qid = c.cdw10 & 0xffff;
    const cq = this.cqs.get(qid);
    if (qid === 0 || cq === undefined) return { status: statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_QUEUE_ID, true) };
    for (const sq of this.sqs.values()) if (sq.cqId === qid) return { status: statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_QUEUE_DELETION, true) };
    if (cq.coalesceTimer !== undefined) this.clock.cancel(cq.coalesceTimer);
    this.cqs.delete(qid);
    return { status: OK };
  }

  private setFeatures(c: Command): Outcome {
    switch (c.cdw10 & 0xff) {
      case FEATURE_NUMBER_OF_QUEUES: {
        if (this.ioQueuesCreated) return { status: statusField(SCT_GENERIC, SC_COMMAND_SEQUENCE_ERROR, true) };
        if ((c.cdw11 & 0xffff) === 0xffff || c.cdw11 >>> 16 === 0xffff) return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
        return { status: OK, dw0: this.queuesAllocated() };
      }
      case FEATURE_INTERRUPT_COALESCING: {
        this.coalesceThreshold = c.cdw11 & 0xff;
        this.coalesceTimeUnits = (c.cdw11 >>> 8) & 0xff;
        return { status: OK };
      }
      default: return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
    }
  }

  private getFeatures(c: Command): Outcome {
    switch (c.cdw10 & 0xff) {
      case FEATURE_NUMBER_OF_QUEUES: return { status: OK, dw0: this.queuesAllocated() };
      case FEATURE_INTERRUPT_COALESCING: return { status: OK, dw0: this.coalesceThreshold | (this.coalesceTimeUnits << 8) };
      default: return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
    }
  }

  private queuesAllocated(): number {
    return ((this.ioQueuesMax - 1) | ((this.ioQueuesMax - 1) << 16)) >>> 0;
  }

  // NVMe 1.4 §5.1: a command still held by the controller completes with Command Abort Requested; DW0 bit 0 of
  // ABORT's own completion is 0 when it was aborted, 1 when not.
  private abort(c: Command): Outcome {
    const sqId = c.cdw10 & 0xffff;
    const cid = c.cdw10 >>> 16;
    const target = this.pending.find((p) => p.sqId === sqId && p.cid === cid);
    if (target === undefined || !this.sqs.has(sqId)) return { status: OK, dw0: 1 };
    if (target.handle !== undefined) this.clock.cancel(target.handle);
    target.status = statusField(SCT_GENERIC, SC_ABORT_REQUESTED);
    target.lost = false;
    target.handle = this.clock.at(this.clock.nowNs, () => this.complete(target));
    return { status: OK, dw0: 0 };
  }

  private getLogPage(c: Command): Outcome {
    const dwords = ((c.cdw10 >>> 16) | ((c.cdw11 & 0xffff) << 16)) + 1;
    const bytes = dwords * 4;
    if (bytes > TRANSFER_BYTES_MAX) return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
    const data = new Uint8Array(bytes);
    switch (c.cdw10 & 0xff) {
      case LOG_ERROR: case LOG_SMART: break;
      case LOG_CHANGED_NAMESPACES: {
        const list = [...this.changedNamespaces].sort((a, b) => a - b);
        const view = new DataView(data.buffer);
        for (let i = 0; i < list.length && (i + 1) * 4 <= bytes; i++) view.setUint32(i * 4, list[i]!, true);
        this.changedNamespaces.clear();
        break;
      }
      default: return { status: statusField(SCT_COMMAND_SPECIFIC, SC_INVALID_LOG_PAGE, true) };
    }
    return this.toHost(c, data);
  }

  private namespaceChanged(nsid: number): void {
    this.changedNamespaces.add(nsid);
    const event = EVENT_TYPE_NOTICE | (EVENT_NOTICE_NAMESPACE_CHANGED << 8) | (LOG_CHANGED_NAMESPACES << 16);
    if (!this.events.includes(event)) this.events.push(event);
    this.reportEvents();
  }

  // Each outstanding ASYNCHRONOUS EVENT REQUEST completes with one event, on the next event of the clock.
  private reportEvents(): void {
    const admin = this.sqs.get(0);
    while (admin !== undefined && this.aers.length > 0 && this.events.length > 0) {
      const cid = this.aers.shift()!;
      const dw0 = this.events.shift()!;
      const completion: Completion = { sqId: 0, cid, status: OK, dw0, handle: undefined, lost: false };
      this.pending.push(completion);
      completion.handle = this.clock.at(this.clock.nowNs, () => this.complete(completion));
    }
  }

  // Writes `data` to the command's PRP-described buffer.
  private toHost(c: Command, data: Uint8Array): Outcome {
    const mapped = this.mapPrp(c.prp1, c.prp2, data.length);
    if (!mapped.ok) return { status: mapped.status };
    if (!this.scatter(mapped.segments, data)) return { status: statusField(SCT_GENERIC, SC_DATA_TRANSFER_ERROR) };
    return { status: OK };
  }

  // --- I/O commands ---

  private executeIo(c: Command): Outcome {
    this.stats.commands += 1;
    if (c.nsid === 0 || c.nsid > this.disks.length || this.pulled[c.nsid - 1]) return { status: statusField(SCT_GENERIC, SC_INVALID_NAMESPACE, true) };
    const disk = this.disks[c.nsid - 1]!;
    switch (c.opcode) {
      case IO_READ: case IO_WRITE: return this.readWrite(c, disk);
      case IO_FLUSH: return this.diskCall("flush", () => disk.flush(), this.latencyNs.flush);
      case IO_WRITE_ZEROES: return this.writeZeroes(c, disk);
      case IO_DATASET_MANAGEMENT: return this.datasetManagement(c, disk);
      default: return { status: statusField(SCT_GENERIC, SC_INVALID_OPCODE, true) };
    }
  }

  private readWrite(c: Command, disk: DiskBackend): Outcome {
    const isWrite = c.opcode === IO_WRITE;
    const range = this.lbaRange(c, disk);
    if (typeof range === "number") return { status: range };
    const bytes = range.blocks * disk.blockSize;
    if (bytes > TRANSFER_BYTES_MAX) return { status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
    const mapped = this.mapData(c, bytes);
    if (!mapped.ok) return { status: mapped.status };
    if (this.takeFault("never-complete-next") !== undefined) return { status: OK, hold: "lost" };
    if (this.takeFault("dma-fault-next") !== undefined) return { status: statusField(SCT_GENERIC, SC_DATA_TRANSFER_ERROR), delayNs: this.latencyNs.read };
    if (this.takeFault("media-error-next") !== undefined) return { status: statusField(SCT_MEDIA, isWrite ? SC_WRITE_FAULT : SC_UNRECOVERED_READ_ERROR), delayNs: this.latencyNs.read };
    const offset = Number(range.lba) * disk.blockSize;
    if (!isWrite) {
      const data = new Uint8Array(bytes);
      const read = this.diskCall("read", () => disk.read(offset, data), this.latencyNs.read, SC_UNRECOVERED_READ_ERROR);
      if (read.status !== OK) return read;
      if (!this.scatter(mapped.segments, data)) return { status: statusField(SCT_GENERIC, SC_DATA_TRANSFER_ERROR), delayNs: this.latencyNs.read };
      this.stats.bytesRead += bytes;
      return read;
    }
    const data = this.gather(mapped.segments, bytes);
    if (data === undefined) return { status: statusField(SCT_GENERIC, SC_DATA_TRANSFER_ERROR), delayNs: this.latencyNs.write };
    if (this.takeFault("lose-write-next") !== undefined) return { status: OK, delayNs: this.latencyNs.write };
    const fua = (c.cdw12 & (1 << 30)) !== 0;
    const written = this.diskCall("write", () => { disk.write(offset, data); if (fua) disk.flush(); }, this.latencyNs.write, SC_WRITE_FAULT);
    if (written.status === OK) this.stats.bytesWritten += bytes;
    return written;
  }

  // SLBA in CDW10-11, NLB (0-based) in CDW12 bits 15:0; the range must lie inside the namespace.
  private lbaRange(c: Command, disk: DiskBackend): { lba: bigint; blocks: number } | number {
    const lba = BigInt(c.cdw10 >>> 0) | (BigInt(c.cdw11 >>> 0) << 32n);
    const blocks = (c.cdw12 & 0xffff) + 1;
    const capacity = BigInt(disk.sizeBytes / disk.blockSize);
    if (lba >= capacity || BigInt(blocks) > capacity - lba) return statusField(SCT_GENERIC, SC_LBA_OUT_OF_RANGE, true);
    return { lba, blocks };
  }

  private writeZeroes(c: Command, disk: DiskBackend): Outcome {
    const range = this.lbaRange(c, disk);
    if (typeof range === "number") return { status: range };
    const offset = Number(range.lba) * disk.blockSize;
    const bytes = range.blocks * disk.blockSize;
    const deallocate = (c.cdw12 & (1 << 25)) !== 0;
    return this.diskCall("write", () => {
      if (deallocate) {
        disk.unmap(offset, bytes);
        return;
      }
      const zeros = new Uint8Array(Math.min(bytes, WRITE_ZEROES_CHUNK_BYTES));
      for (let done = 0; done < bytes; done += zeros.length) disk.write(offset + done, zeros.subarray(0, Math.min(zeros.length, bytes - done)));
    }, this.latencyNs.write, SC_WRITE_FAULT);
  }

  // NVMe 1.4 §6.7: NR + 1 ranges of |0 context attributes|4 length in blocks|8 starting LBA|; AD deallocates them.
  private datasetManagement(c: Command, disk: DiskBackend): Outcome {
    const rangeCount = (c.cdw10 & 0xff) + 1;
    const mapped = this.mapData(c, rangeCount * DSM_RANGE_BYTES);
    if (!mapped.ok) return { status: mapped.status };
    const list = this.gather(mapped.segments, rangeCount * DSM_RANGE_BYTES);
    if (list === undefined) return { status: statusField(SCT_GENERIC, SC_DATA_TRANSFER_ERROR) };
    if ((c.cdw11 & (1 << 2)) === 0) return { status: OK, delayNs: this.latencyNs.write }; // attributes only: hints
    const view = new DataView(list.buffer);
    const capacity = BigInt(disk.sizeBytes / disk.blockSize);
    const ranges: [number, number][] = [];
    for (let i = 0; i < rangeCount; i++) {
      const blocks = view.getUint32(i * DSM_RANGE_BYTES + 4, true);
      const lba = view.getBigUint64(i * DSM_RANGE_BYTES + 8, true);
      if (blocks === 0) continue;
      if (lba >= capacity || BigInt(blocks) > capacity - lba) return { status: statusField(SCT_GENERIC, SC_LBA_OUT_OF_RANGE, true) };
      ranges.push([Number(lba) * disk.blockSize, blocks * disk.blockSize]);
    }
    return this.diskCall("write", () => { for (const [offset, bytes] of ranges) disk.unmap(offset, bytes); }, this.latencyNs.write, SC_WRITE_FAULT);
  }

  private diskCall(what: string, call: () => void, delayNs: number, mediaStatus = SC_WRITE_FAULT): Outcome {
    try {
      call();
      return { status: OK, delayNs };
    } catch (error) {
      if (!(error instanceof DiskIoError)) throw error;
      this.logLine(`${this.name}: ${what} failed: ${error.message}`);
      return { status: statusField(SCT_MEDIA, mediaStatus), delayNs };
    }
  }

  // --- Data pointers: PRPs (NVMe 1.4 §4.3) and SGLs (§4.4) ---

  private mapData(c: Command, bytes: number): Mapped {
    if (c.psdt === 0) return this.mapPrp(c.prp1, c.prp2, bytes);
    if (c.psdt === 3) return { ok: false, status: statusField(SCT_GENERIC, SC_INVALID_FIELD, true) };
    return this.mapSgl(c.sgl1, bytes);
  }

  /** The segments `bytes` bytes at PRP1/PRP2 cover, reading PRP lists as needed; a status when they break the rules. */
  mapPrp(prp1: bigint, prp2: bigint, bytes: number): Mapped {
    const invalidOffset: Mapped = { ok: false, status: statusField(SCT_GENERIC, SC_PRP_OFFSET_INVALID, true) };
    if ((prp1 & 3n) !== 0n) return invalidOffset;
    const firstBytes = Math.min(bytes, PAGE_BYTES - Number(prp1 & 0xfffn));
    const segments: Segment[] = [{ address: prp1, lengthBytes: firstBytes }];
    let left = bytes - firstBytes;
    if (left === 0) return { ok: true, segments };
    if (left <= PAGE_BYTES) {
      if ((prp2 & 0xfffn) !== 0n) return invalidOffset;
      segments.push({ address: prp2, lengthBytes: left });
      return { ok: true, segments };
    }
    // PRP2 points at a list; an entry in a list page's last slot with more to come points at the next list. Each
    // list page's entries are read in one DMA, and pages that follow each other in memory become one segment.
    let list = prp2;
    if ((list & 7n) !== 0n) return invalidOffset;
    const pagesMax = Math.ceil(bytes / PAGE_BYTES) + 1;
    for (let n = 0; n < pagesMax && left > 0; n++) {
      const inPage = (PAGE_BYTES - Number(list & 0xfffn)) / 8;
      const wanted = Math.ceil(left / PAGE_BYTES);
      const count = Math.min(inPage, wanted);
      const entries = new Uint8Array(count * 8);
      if (!this.dmaReadInto(list, entries).ok) return { ok: false, status: statusField(SCT_GENERIC, SC_DATA_TRANSFER_ERROR) };
      const view = new DataView(entries.buffer);
      const chains = wanted > inPage; // the page's last entry points at the next list
      const dataEntries = chains ? count - 1 : count;
      for (let i = 0; i < dataEntries; i++) {
        const address = view.getBigUint64(i * 8, true);
        if ((address & 0xfffn) !== 0n) return invalidOffset;
        const take = Math.min(left, PAGE_BYTES);
        const last = segments[segments.length - 1]!;
        if (last.address + BigInt(last.lengthBytes) === address) last.lengthBytes += take;
        else segments.push({ address, lengthBytes: take });
        left -= take;
      }
      if (!chains) break;
      list = view.getBigUint64((count - 1) * 8, true);
      if ((list & 7n) !== 0n) return invalidOffset;
    }
    return left === 0 ? { ok: true, segments } : invalidOffset;
  }

  /** The Data Block descriptors SGL1 leads to, up to `bytes`; Segment and Last Segment descriptors are followed. */
  mapSgl(sgl1: Uint8Array, bytes: number): Mapped {
    const segments: Segment[] = [];
    let left = bytes;
    let descriptor = sgl1;
    let listAddress = 0n;
    let listCount = 0; // descriptors left in the segment being walked
    let lastSegment = false;
    for (let walked = 0; walked < SGL_DESCRIPTORS_MAX; walked++) {
      const view = new DataView(descriptor.buffer, descriptor.byteOffset, SGL_DESCRIPTOR_BYTES);
      const address = view.getBigUint64(0, true);
      const length = view.getUint32(8, true);
      const type = descriptor[15]! >> 4;
      if (type === SGL_DATA_BLOCK) {
        if (length > 0 && left > 0) {
          const take = Math.min(length, left);
          segments.push({ address, lengthBytes: take });
          left -= take;
        }
      } else if ((type === SGL_SEGMENT || type === SGL_LAST_SEGMENT) && !lastSegment) {
        if (length === 0 || length % SGL_DESCRIPTOR_BYTES !== 0) return { ok: false, status: statusField(SCT_GENERIC, SC_DATA_SGL_LENGTH_INVALID, true) };
        if (listCount > 0) return { ok: false, status: statusField(SCT_GENERIC, SC_SGL_DESCRIPTOR_TYPE_INVALID, true) }; // only a segment's last descriptor may chain
        listAddress = address;
        listCount = length / SGL_DESCRIPTOR_BYTES;
        lastSegment = type === SGL_LAST_SEGMENT;
      } else return { ok: false, status: statusField(SCT_GENERIC, SC_SGL_DESCRIPTOR_TYPE_INVALID, true) };
      if (listCount === 0) break;
      const next = new Uint8Array(SGL_DESCRIPTOR_BYTES);
      if (!this.dmaReadInto(listAddress, next).ok) return { ok: false, status: statusField(SCT_GENERIC, SC_DATA_TRANSFER_ERROR) };
      listAddress += BigInt(SGL_DESCRIPTOR_BYTES);
      listCount -= 1;
      descriptor = next;
    }
    if (left > 0) return { ok: false, status: statusField(SCT_GENERIC, SC_DATA_SGL_LENGTH_INVALID, true) };
    return { ok: true, segments };
  }

  private gather(segments: Segment[], bytes: number): Uint8Array | undefined {
    const out = new Uint8Array(bytes);
    let at = 0;
    for (const s of segments) {
      if (!this.dmaReadInto(s.address, out.subarray(at, at + s.lengthBytes)).ok) return undefined;
      at += s.lengthBytes;
    }
    return out;
  }

  private scatter(segments: Segment[], data: Uint8Array): boolean {
    let at = 0;
    for (const s of segments) {
      if (!this.dmaWrite(s.address, data.subarray(at, at + s.lengthBytes)).ok) return false;
      at += s.lengthBytes;
    }
    return true;
  }

  private takeFault<K extends NvmeFault["kind"]>(kind: K): Extract<NvmeFault, { kind: K }> | undefined {
    if (this.faults.length === 0) return undefined; // the common case, on every request: no closure, no scan
    const index = this.faults.findIndex((fault) => fault.kind === kind);
    if (index < 0) return undefined;
    const [fault] = this.faults.splice(index, 1);
    this.logLine(`${this.name}: injected fault: ${kind}`);
    return fault as Extract<NvmeFault, { kind: K }>;
  }
}

// A submission queue entry (NVMe 1.4 Figure 104), read through named fields.
// |0 CDW0: opcode, fuse, PSDT (15:14), CID (31:16)|4 NSID|8-15 -|16 MPTR|24 PRP1 / SGL1|32 PRP2|40 CDW10 … 60 CDW15|
class Command {
  readonly opcode: number;
  readonly psdt: number;
  readonly cid: number;
  readonly nsid: number;
  readonly prp1: bigint;
  readonly prp2: bigint;
  readonly sgl1: Uint8Array;
  readonly cdw10: number;
  readonly cdw11: number;
  readonly cdw12: number;

  constructor(entry: Uint8Array) {
    const view = new DataView(entry.buffer, entry.byteOffset, SQ_ENTRY_BYTES);
    const cdw0 = view.getUint32(0, true);
    this.opcode = cdw0 & 0xff;
    this.psdt = (cdw0 >>> 14) & 3;
    this.cid = cdw0 >>> 16;
    this.nsid = view.getUint32(4, true);
    this.prp1 = view.getBigUint64(24, true);
    this.prp2 = view.getBigUint64(32, true);
    this.sgl1 = entry.slice(24, 40);
    this.cdw10 = view.getUint32(40, true);
    this.cdw11 = view.getUint32(44, true);
    this.cdw12 = view.getUint32(48, true);
  }
}

function newSq(id: number, base: bigint, size: number, cqId: number): SubmissionQueue {
  return { id, base, size, cqId, head: 0, tail: 0, completionLastNs: 0 };
}

function newCq(id: number, base: bigint, size: number, vector: number, interruptsEnabled: boolean): CompletionQueue {
  return { id, base, size, vector, interruptsEnabled, tail: 0, head: 0, phase: 1, waiting: [], coalescedCount: 0, coalesceTimer: undefined };
}

// An ASCII field padded with spaces (NVMe 1.4: SN, MN, FR).
function ascii(data: Uint8Array, offset: number, lengthBytes: number, text: string): void {
  data.fill(0x20, offset, offset + lengthBytes);
  for (let i = 0; i < Math.min(text.length, lengthBytes); i++) data[offset + i] = text.charCodeAt(i) & 0x7f;
}
