// A virtio-scsi controller on the virtio 1.x modern PCI transport with split virtqueues (docs/hardware.md,
// "virtio-scsi controller"; REFERENCE.md §4: virtio spec §4.1 "Virtio Over PCI Bus", §2.7 "Split Virtqueues",
// §5.6 "SCSI Host Device"). One target (0), one LUN per ScsiDisk in board order; queues 0 control, 1 event, 2 request.
//
// Interpretations where the spec leaves the device a choice (each chosen so a correct driver works and a wrong one
// is seen at once):
// - Commands execute on the ScsiDisk when the request is taken off the available ring (so a write is in the backing
//   file before its completion); the response reaches guest memory after the modelled latency, in submission order
//   per queue. Control requests complete on the next event of the clock, never inside the notify write.
// - Writing 0 to device_status first completes every request still in flight (used ring written, no interrupt: the
//   driver is resetting), then restores the power-on values (§5.6.5: complete or abort before reset). A device that
//   is broken (DEVICE_NEEDS_RESET) writes nothing more to guest memory, not even then.
// - FEATURES_OK is refused when the driver asks for a bit not offered or leaves out VERSION_1: this device has no
//   legacy interface to fall back to.
// - A notify before DRIVER_OK, or for a queue not enabled, is a guest error and ignored; setting DRIVER_OK then
//   looks at every enabled queue, so nothing posted early is lost.
// - Requests whose headers do not fit their buffers are protocol violations (broken), as are malformed chains.
//
// Faults a running board's control commands apply (host/board/control.ts; docs/fault.md):
// - A pulled disk (pull()) is a LUN that is gone: every request and task management function addressed to it is
//   answered BAD_TARGET, as an unknown LUN always was here, and REPORT LUNS (which the controller answers, on any
//   LUN) leaves it out. Requests it took off the ring before the pull complete as they executed.
// - A disk inserted in its place (insert()) is present again and has just powered on: its first command other than
//   INQUIRY, REPORT LUNS or REQUEST SENSE gets UNIT ATTENTION, POWER ON, RESET, OR BUS DEVICE RESET OCCURRED.
// - A hung controller (hang()) takes nothing more off its available rings and writes nothing to its used rings:
//   completions already due are held. Its registers still answer. Writing 0 to device_status ends the hang (the
//   reset then completes what it holds, as any reset does); resume() ends it too, writing the held completions and
//   taking what the driver posted meanwhile.
import type { AccessSize } from "../bus/bus.ts";
import { PciFunctionBase, readLe, writeLe } from "../bus/pci_function.ts";
import { Layer } from "../sim/layer_meter.ts";
import type { EventHandle, VirtualClock } from "../sim/clock.ts";
import { hex } from "../sim/trace.ts";
import { reportLunsData, type ScsiDisk } from "./scsi_disk.ts";
import { ASC_INVALID_COMMAND_OPERATION_CODE, ASC_POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED, fixedSense, SAM_STATUS_CHECK_CONDITION, SAM_STATUS_GOOD, SENSE_KEY_ILLEGAL_REQUEST } from "./scsi_sense.ts";

export const VIRTIO_VENDOR_ID = 0x1af4;
export const VIRTIO_SCSI_DEVICE_ID = 0x1048; // 0x1040 + virtio device ID 8
export const VIRTIO_SCSI_CLASS_CODE = 0x010000; // mass storage, SCSI
export const VIRTIO_SCSI_BAR_REGISTERS = 0;
export const VIRTIO_SCSI_BAR_MSIX = 4;
export const VIRTIO_SCSI_VECTOR_COUNT = 4;
const BAR_REGISTERS_SIZE_BYTES = 16 * 1024;
const BAR_MSIX_SIZE_BYTES = 4096;
const MSIX_TABLE_OFFSET = 0x000;
const MSIX_PBA_OFFSET = 0x800;

// Where each structure sits in BAR 0, and how long it is.
export const VIRTIO_COMMON_OFFSET = 0x0000;
export const VIRTIO_ISR_OFFSET = 0x1000;
export const VIRTIO_DEVICE_OFFSET = 0x2000;
export const VIRTIO_NOTIFY_OFFSET = 0x3000;
export const VIRTIO_NOTIFY_OFF_MULTIPLIER = 4;
const COMMON_LENGTH_BYTES = 0x40;
const ISR_LENGTH_BYTES = 1;
const DEVICE_LENGTH_BYTES = 36;

// struct virtio_pci_cap cfg_type values (§4.1.4).
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;

// Common configuration (§4.1.4.3), offsets within the structure.
export const COMMON_DEVICE_FEATURE_SELECT = 0x00;
export const COMMON_DEVICE_FEATURE = 0x04;
export const COMMON_DRIVER_FEATURE_SELECT = 0x08;
export const COMMON_DRIVER_FEATURE = 0x0c;
export const COMMON_CONFIG_MSIX_VECTOR = 0x10;
export const COMMON_NUM_QUEUES = 0x12;
export const COMMON_DEVICE_STATUS = 0x14;
export const COMMON_CONFIG_GENERATION = 0x15;
export const COMMON_QUEUE_SELECT = 0x16;
export const COMMON_QUEUE_SIZE = 0x18;
export const COMMON_QUEUE_MSIX_VECTOR = 0x1a;
export const COMMON_QUEUE_ENABLE = 0x1c;
export const COMMON_QUEUE_NOTIFY_OFF = 0x1e;
export const COMMON_QUEUE_DESC = 0x20; // low half; high half at + 4
export const COMMON_QUEUE_DRIVER = 0x28;
export const COMMON_QUEUE_DEVICE = 0x30;
const COMMON_QUEUE_NOTIF_CONFIG_DATA = 0x38; // this and the three 16-bit fields after it belong to features not offered: they read 0

// Device status bits (§2.1).
export const STATUS_ACKNOWLEDGE = 1;
export const STATUS_DRIVER = 2;
export const STATUS_DRIVER_OK = 4;
export const STATUS_FEATURES_OK = 8;
export const STATUS_DEVICE_NEEDS_RESET = 64;
export const STATUS_FAILED = 128;

export const VIRTIO_F_VERSION_1_WORD = 1; // feature bit 32: bit 0 of feature word 1
export const VIRTIO_MSI_NO_VECTOR = 0xffff;
export const ISR_QUEUE = 1;
export const ISR_CONFIG = 2;

// Device configuration, struct virtio_scsi_config (§5.6.4).
export const SCSI_CONFIG_NUM_QUEUES = 0;
export const SCSI_CONFIG_SEG_MAX = 4;
export const SCSI_CONFIG_MAX_SECTORS = 8;
export const SCSI_CONFIG_CMD_PER_LUN = 12;
export const SCSI_CONFIG_EVENT_INFO_SIZE = 16;
export const SCSI_CONFIG_SENSE_SIZE = 20;
export const SCSI_CONFIG_CDB_SIZE = 24;
export const SCSI_CONFIG_MAX_CHANNEL = 28;
export const SCSI_CONFIG_MAX_TARGET = 30;
export const SCSI_CONFIG_MAX_LUN = 32;
const SENSE_SIZE_DEFAULT = 96;
const CDB_SIZE_DEFAULT = 32;
const SEG_MAX = 128;
const MAX_SECTORS = 0xffff;
const EVENT_INFO_SIZE_BYTES = 16;

export const QUEUE_CONTROL = 0;
export const QUEUE_EVENT = 1;
export const QUEUE_REQUEST = 2;
const QUEUE_COUNT = 3;
const QUEUE_SIZE_MAX = 32768; // §2.7: split rings hold at most 32768 entries

// Split virtqueue layouts (§2.7.5, §2.7.6, §2.7.8).
const DESC_BYTES = 16;
const DESC_F_NEXT = 1;
const DESC_F_WRITE = 2;
const DESC_F_INDIRECT = 4;
const AVAIL_F_NO_INTERRUPT = 1;
const USED_ELEM_BYTES = 8;

// virtio_scsi_cmd_req / virtio_scsi_cmd_resp (§5.6.6.1): the fixed parts before cdb and sense.
const CMD_REQ_FIXED_BYTES = 19; // lun[8] id(8) task_attr prio crn
const CMD_RESP_FIXED_BYTES = 12; // sense_len(4) residual(4) status_qualifier(2) status response
const RESPONSE_HEADERS_KEPT_MAX = 256; // written response headers kept for reuse
const EMPTY_DATA = new Uint8Array(0); // no bytes: a request's dataIn or sense when it has none (or once its buffer went back to the pool)
export const RESPONSE_OK = 0;
export const RESPONSE_OVERRUN = 1;
export const RESPONSE_ABORTED = 2;
export const RESPONSE_BAD_TARGET = 3;
export const RESPONSE_RESET = 4;
export const RESPONSE_BUSY = 5;
export const RESPONSE_TRANSPORT_FAILURE = 6;
export const RESPONSE_TARGET_FAILURE = 7;
export const RESPONSE_NEXUS_FAILURE = 8;
export const RESPONSE_FAILURE = 9;
export const RESPONSE_FUNCTION_COMPLETE = 0;
export const RESPONSE_FUNCTION_SUCCEEDED = 10;
export const RESPONSE_FUNCTION_REJECTED = 11;

// Control queue (§5.6.6.2).
export const CONTROL_TYPE_TMF = 0;
export const CONTROL_TYPE_AN_QUERY = 1;
export const CONTROL_TYPE_AN_SUBSCRIBE = 2;
export const TMF_ABORT_TASK = 0;
export const TMF_ABORT_TASK_SET = 1;
export const TMF_CLEAR_ACA = 2;
export const TMF_CLEAR_TASK_SET = 3;
export const TMF_I_T_NEXUS_RESET = 4;
export const TMF_LOGICAL_UNIT_RESET = 5;
export const TMF_QUERY_TASK = 6;
export const TMF_QUERY_TASK_SET = 7;
const TMF_REQ_BYTES = 24;
const TMF_RESP_BYTES = 1;
const AN_REQ_BYTES = 16;
const AN_RESP_BYTES = 5;

const OPCODE_REPORT_LUNS = 0xa0;
// SPC: REPORT LUNS well-known logical unit, and the unit attentions a reset leaves behind (SAM, "Task management").
const LUN_ADDRESS_SINGLE_LEVEL = 0x01;
const LUN_WELL_KNOWN_REPORT_LUNS = [0xc1, 0x01] as const;
const ASC_RESET_OCCURRED = 0x29;
const ASCQ_BUS_DEVICE_RESET_FUNCTION = 0x03;
const ASCQ_I_T_NEXUS_LOSS = 0x07;

// A data area larger than max_sectors (in 512-byte sectors, as Linux reads it) is answered FAILURE instead of being
// gathered, which keeps every host allocation bounded whatever lengths the driver writes.
const DATA_BYTES_MAX = MAX_SECTORS * 512;
// reportLunsData() uses peripheral device addressing, which holds LUNs 0..255.
const DISK_COUNT_MAX = 256;
// §2.7.4: a chain carries at most 2^32 bytes.
const CHAIN_BYTES_MAX = 2 ** 32;

const LATENCY_DEFAULT_NS = { read: 20_000, write: 30_000, flush: 200_000 };
const DATA_IN_PLACE_BYTES_MIN = 32 * 1024; // a READ this large reads into the driver's buffer straight (dataInPlace)
const DATA_OUT_PLACE_BYTES_MIN = 512; // a WRITE's data this large is written from the driver's buffer (dataOutPlace)
const OPCODES_READ = new Set([0x08, 0x28, 0xa8, 0x88, 0x2f, 0x8f]); // READ 6/10/12/16, VERIFY 10/16
const OPCODES_WRITE = new Set([0x0a, 0x2a, 0xaa, 0x8a, 0x2e, 0xae, 0x8e, 0x41, 0x93, 0x42]); // WRITE, WRITE AND VERIFY, WRITE SAME, UNMAP
const OPCODES_FLUSH = new Set([0x35, 0x91]); // SYNCHRONIZE CACHE 10/16

/** Faults a test injects, each applied once, to the next completion (or the next request) as named. */
export type VirtioScsiFault =
  | { kind: "used-index-jump"; by: number } // used.idx advanced by `by` more than the entries written
  | { kind: "unknown-id" } // the used element carries an id the driver never posted (the queue size)
  | { kind: "dma-fault-next" } // the next request's data DMA fails: TRANSPORT_FAILURE, the disk never sees it
  | { kind: "interrupt-storm"; count: number } // the vector is signalled `count` extra times
  | { kind: "never-complete-next" } // the next request is taken off the ring and dropped
  | { kind: "needs-reset-next" } // the next request finds the device failed: DEVICE_NEEDS_RESET, nothing completes
  | { kind: "duplicate-used" } // the next completion is written to the used ring twice
  | { kind: "lose-write-next" }; // a lying device: the next WRITE completes GOOD and stores nothing (checks the checkers)

export interface VirtioScsiStats {
  requests: number; // request-queue requests taken off the available ring
  bytesRead: number; // data-in bytes delivered to the driver
  bytesWritten: number; // data-out bytes the disks accepted
  errors: number; // responses other than OK, CHECK CONDITIONs, and times the device broke
}

export interface VirtioScsiOptions {
  name: string;
  clock: VirtualClock;
  disks: ScsiDisk[];
  queueSize: number;
  log: (message: string) => void;
  latencyNs?: { read: number; write: number; flush: number };
}

interface Virtqueue {
  size: number; // as the driver set it; the maximum at reset
  msixVector: number;
  enabled: boolean;
  descAddress: bigint;
  driverAddress: bigint; // the available ring
  deviceAddress: bigint; // the used ring
  availIndexNext: number; // u16: the available-ring index the device reads next
  usedIndex: number; // u16: the used-ring index the device writes next
  completionLastNs: number; // completions of this queue are scheduled no earlier, so they keep submission order
}

interface Segment {
  address: bigint;
  lengthBytes: number;
}

interface Chain {
  head: number;
  readable: Segment[];
  writable: Segment[];
  readableBytes: number;
  writableBytes: number;
}

// A request taken off an available ring whose used element is not written yet.
interface InFlight {
  queueIndex: number;
  head: number;
  writable: Segment[];
  header: Uint8Array; // written at the start of the writable buffers: the response, or a control answer
  headerPooled?: boolean; // `header` is a response header from responseHeader: reused once written
  dataIn: Uint8Array; // written after the header
  dataInOwner?: ScsiDisk | undefined; // the disk whose pool lent `dataIn` (a READ's data): given back once written
  tag: bigint; // request queue: the driver's id, for ABORT_TASK
  lun: number; // request queue: the LUN addressed (-1 for the well-known LUN and control requests)
  dataInCapacityBytes: number;
  dataOutBytes: number;
  handle: EventHandle | undefined; // the completion's clock event; undefined while a broken device holds it
}

// The result of parsing and executing one SCSI command, before it becomes a response header.
interface CommandResult {
  response: number;
  status: number;
  sense: Uint8Array;
  dataIn: Uint8Array;
  dataInOwner?: ScsiDisk | undefined; // as InFlight's
  residualBytes: number;
  heldWrite?: number | undefined; // ScsiResult's: the disk holds this WRITE's data until releaseHeldWrites
}

/** A WRITE of the current notify whose data its disk holds (ScsiResult.heldWrite), answered once it is stored. */
interface HeldWrite {
  request: InFlight;
  disk: ScsiDisk;
  index: number;
}

export class VirtioScsiDevice extends PciFunctionBase {
  readonly stats: VirtioScsiStats = { requests: 0, bytesRead: 0, bytesWritten: 0, errors: 0 };
  private readonly clock: VirtualClock;
  private readonly disks: ScsiDisk[];
  private readonly queueSizeMax: number;
  private readonly latencyNs: { read: number; write: number; flush: number };
  private chainMarks = new Uint32Array(0); // walkChain: per descriptor, the mark of the last walk that took it
  private chainMark = 0;
  // Buffers reused by every request instead of made per request (garbage on the data path): what a command
  // request's header and Data-Out are gathered into (execute() uses them synchronously and keeps nothing), a
  // descriptor, a ring index, a used element.
  private requestHeaderScratch = new Uint8Array(0);
  private requestHeaderView = new DataView(this.requestHeaderScratch.buffer); // over requestHeaderScratch
  private requestLunScratch = this.requestHeaderScratch; // its LUN field, a view made with it
  private requestCdbScratch = this.requestHeaderScratch; // its CDB, likewise
  private dataOutScratch = new Uint8Array(0);
  private readonly heldWrites: HeldWrite[] = []; // this notify's, until releaseHeldWrites (end of processQueue)
  private readonly descScratch = new Uint8Array(DESC_BYTES);
  private readonly u16Scratch = new Uint8Array(2);
  private readonly usedScratch = new Uint8Array(USED_ELEM_BYTES);
  private readonly responseHeaders: Uint8Array[] = []; // written response headers, for responseHeader to reuse
  private readonly logLine: (message: string) => void;
  private readonly faults: VirtioScsiFault[] = [];
  // Power-on state, restored by resetVirtio().
  private deviceFeatureSelect = 0;
  private driverFeatureSelect = 0;
  private driverFeatures = new Map<number, number>(); // feature word -> bits the driver wrote
  private configMsixVector = VIRTIO_MSI_NO_VECTOR;
  private deviceStatus = 0;
  private queueSelect = 0;
  private queues: Virtqueue[] = [];
  private isr = 0;
  private senseSize = SENSE_SIZE_DEFAULT;
  private cdbSize = CDB_SIZE_DEFAULT;
  private inFlight: InFlight[] = []; // in submission order
  private eventBuffers: number[] = []; // event-queue chain heads the driver posted, kept until reset
  // Faults from control commands. A pulled LUN stays pulled across resets (a reset does not put a disk back); a hang
  // ends at any reset.
  private readonly pulled: boolean[];
  private hung = false;

  constructor(options: VirtioScsiOptions) {
    super(
      {
        name: options.name,
        vendorId: VIRTIO_VENDOR_ID,
        deviceId: VIRTIO_SCSI_DEVICE_ID,
        classCode: VIRTIO_SCSI_CLASS_CODE,
        revision: 1,
        bars: [
          { index: VIRTIO_SCSI_BAR_REGISTERS, sizeBytes: BAR_REGISTERS_SIZE_BYTES, is64: true },
          { index: VIRTIO_SCSI_BAR_MSIX, sizeBytes: BAR_MSIX_SIZE_BYTES },
        ],
        msix: { vectorCount: VIRTIO_SCSI_VECTOR_COUNT, bar: VIRTIO_SCSI_BAR_MSIX, tableOffset: MSIX_TABLE_OFFSET, pbaOffset: MSIX_PBA_OFFSET },
      },
      options.log,
    );
    this.meterLayer = Layer.DiskController;
    const size = options.queueSize;
    if (!Number.isInteger(size) || size < 1 || size > QUEUE_SIZE_MAX || (size & (size - 1)) !== 0) {
      throw new RangeError(`${options.name}: queue size ${size} is not a power of two in 1..${QUEUE_SIZE_MAX}`);
    }
    if (options.disks.length < 1 || options.disks.length > DISK_COUNT_MAX) throw new RangeError(`${options.name}: ${options.disks.length} disks (1..${DISK_COUNT_MAX})`);
    this.clock = options.clock;
    this.disks = [...options.disks];
    this.pulled = this.disks.map(() => false);
    this.queueSizeMax = size;
    this.latencyNs = options.latencyNs ?? LATENCY_DEFAULT_NS;
    this.logLine = options.log;
    this.addCapability(0x09, virtioCap(VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_COMMON_OFFSET, COMMON_LENGTH_BYTES));
    this.addCapability(0x09, virtioCap(VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_NOTIFY_OFFSET, QUEUE_COUNT * VIRTIO_NOTIFY_OFF_MULTIPLIER, VIRTIO_NOTIFY_OFF_MULTIPLIER));
    this.addCapability(0x09, virtioCap(VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_ISR_OFFSET, ISR_LENGTH_BYTES));
    this.addCapability(0x09, virtioCap(VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_DEVICE_OFFSET, DEVICE_LENGTH_BYTES));
    this.resetVirtio();
  }

  /** Power-on reset from the board: the PCI header and the virtio state; requests in flight vanish with the power. */
  reset(): void {
    for (const request of this.inFlight) if (request.handle !== undefined) this.clock.cancel(request.handle);
    this.inFlight = [];
    this.hung = false;
    this.resetFunction();
    this.resetVirtio();
  }

  /** Arms `fault` for the next completion or request it names; several armed faults apply in the order armed. */
  inject(fault: VirtioScsiFault): void {
    this.faults.push(fault);
  }

  /** Pulls the disk at `lun`: from now on it answers BAD_TARGET and REPORT LUNS leaves it out. */
  pull(lun: number): void {
    this.checkLun(lun);
    this.pulled[lun] = true;
  }

  /** Puts `disk` at `lun`, present again, with the unit attention of a disk that has just powered on. */
  insert(lun: number, disk: ScsiDisk): void {
    this.checkLun(lun);
    disk.unitAttention(ASC_POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED.asc, ASC_POWER_ON_RESET_OR_BUS_DEVICE_RESET_OCCURRED.ascq);
    this.disks[lun] = disk;
    this.pulled[lun] = false;
  }

  /** Puts the disk pulled from `lun` back, present again, with the unit attention of a disk that has just powered on. */
  restore(lun: number): void {
    this.checkLun(lun);
    this.insert(lun, this.disks[lun]!);
  }

  isPulled(lun: number): boolean {
    this.checkLun(lun);
    return this.pulled[lun]!;
  }

  /** Stops taking requests and writing completions until the driver resets the device or resume() is called. */
  hang(): void {
    this.hung = true;
  }

  /** Ends a hang: the held completions are written (in order, with their interrupts) and new requests taken. */
  resume(): void {
    if (!this.hung) return;
    this.hung = false;
    for (const request of this.inFlight) {
      if (request.handle === undefined && !this.broken) request.handle = this.clock.at(this.clock.nowNs, () => this.complete(request));
    }
    if ((this.deviceStatus & STATUS_DRIVER_OK) === 0 || this.broken) return;
    for (let index = 0; index < QUEUE_COUNT; index++) if (this.queues[index]!.enabled) this.processQueue(index);
  }

  get isHung(): boolean {
    return this.hung;
  }

  private checkLun(lun: number): void {
    if (!Number.isInteger(lun) || lun < 0 || lun >= this.disks.length) throw new RangeError(`${this.name}: no LUN ${lun} (0..${this.disks.length - 1})`);
  }

  /** True while DEVICE_NEEDS_RESET is set: the device processes nothing until the driver resets it. */
  get broken(): boolean {
    return (this.deviceStatus & STATUS_DEVICE_NEEDS_RESET) !== 0;
  }

  get inFlightCount(): number {
    return this.inFlight.length;
  }

  // --- Registers ---

  protected mmioRead(bar: number, offset: number, sizeBytes: AccessSize): number | bigint {
    if (bar === VIRTIO_SCSI_BAR_REGISTERS) {
      if (offset >= VIRTIO_COMMON_OFFSET && offset < VIRTIO_COMMON_OFFSET + COMMON_LENGTH_BYTES) return this.commonRead(offset - VIRTIO_COMMON_OFFSET, sizeBytes);
      if (offset === VIRTIO_ISR_OFFSET && sizeBytes === 1) return this.isrRead();
      if (offset >= VIRTIO_DEVICE_OFFSET && offset < VIRTIO_DEVICE_OFFSET + DEVICE_LENGTH_BYTES) return this.deviceConfigRead(offset - VIRTIO_DEVICE_OFFSET, sizeBytes);
    }
    return this.badAccess(`read of ${sizeBytes} bytes at BAR${bar} + ${hex(offset)}`, sizeBytes);
  }

  protected mmioWrite(bar: number, offset: number, sizeBytes: AccessSize, value: number | bigint): void {
    const notifyEnd = VIRTIO_NOTIFY_OFFSET + QUEUE_COUNT * VIRTIO_NOTIFY_OFF_MULTIPLIER;
    if (bar === VIRTIO_SCSI_BAR_REGISTERS) {
      if (offset >= VIRTIO_COMMON_OFFSET && offset < VIRTIO_COMMON_OFFSET + COMMON_LENGTH_BYTES) return this.commonWrite(offset - VIRTIO_COMMON_OFFSET, sizeBytes, Number(BigInt.asUintN(32, BigInt(value))));
      if (offset >= VIRTIO_DEVICE_OFFSET && offset < VIRTIO_DEVICE_OFFSET + DEVICE_LENGTH_BYTES) return this.deviceConfigWrite(offset - VIRTIO_DEVICE_OFFSET, sizeBytes, Number(BigInt.asUintN(32, BigInt(value))));
      if (offset >= VIRTIO_NOTIFY_OFFSET && offset < notifyEnd) return this.notifyWrite(offset - VIRTIO_NOTIFY_OFFSET, sizeBytes, Number(value));
    }
    this.badAccess(`write of ${sizeBytes} bytes at BAR${bar} + ${hex(offset)}`, sizeBytes);
  }

  // §4.1.4.3: every field is accessed at its own width; 64-bit addresses as two 32-bit halves.
  private commonRead(offset: number, sizeBytes: AccessSize): number | bigint {
    const width = commonFieldWidth(offset);
    if (width === 0 || sizeBytes !== width) return this.badAccess(`common config read of ${sizeBytes} bytes at ${hex(offset)}`, sizeBytes);
    const queue = this.queues[this.queueSelect];
    switch (offset) {
      case COMMON_DEVICE_FEATURE_SELECT: return this.deviceFeatureSelect;
      case COMMON_DEVICE_FEATURE: return this.deviceFeatureSelect === VIRTIO_F_VERSION_1_WORD ? 1 : 0;
      case COMMON_DRIVER_FEATURE_SELECT: return this.driverFeatureSelect;
      case COMMON_DRIVER_FEATURE: return this.driverFeatures.get(this.driverFeatureSelect) ?? 0;
      case COMMON_CONFIG_MSIX_VECTOR: return this.configMsixVector;
      case COMMON_NUM_QUEUES: return QUEUE_COUNT;
      case COMMON_DEVICE_STATUS: return this.deviceStatus;
      case COMMON_CONFIG_GENERATION: return 0; // the device config never changes under the driver
      case COMMON_QUEUE_SELECT: return this.queueSelect;
      case COMMON_QUEUE_SIZE: return queue?.size ?? 0; // 0: no such queue
      case COMMON_QUEUE_MSIX_VECTOR: return queue?.msixVector ?? VIRTIO_MSI_NO_VECTOR;
      case COMMON_QUEUE_ENABLE: return queue?.enabled === true ? 1 : 0;
      case COMMON_QUEUE_NOTIFY_OFF: return queue === undefined ? 0 : this.queueSelect;
      case COMMON_QUEUE_DESC: case COMMON_QUEUE_DESC + 4:
      case COMMON_QUEUE_DRIVER: case COMMON_QUEUE_DRIVER + 4:
      case COMMON_QUEUE_DEVICE: case COMMON_QUEUE_DEVICE + 4: {
        if (queue === undefined) return 0;
        const address = offset < COMMON_QUEUE_DRIVER ? queue.descAddress : offset < COMMON_QUEUE_DEVICE ? queue.driverAddress : queue.deviceAddress;
        return (offset & 4) === 0 ? Number(address & 0xffff_ffffn) : Number(address >> 32n);
      }
      default: return 0; // 0x38..0x3F: the fields of features not offered
    }
  }

  private commonWrite(offset: number, sizeBytes: AccessSize, value: number): void {
    const width = commonFieldWidth(offset);
    if (width === 0 || sizeBytes !== width) {
      this.badAccess(`common config write of ${sizeBytes} bytes at ${hex(offset)}`, sizeBytes);
      return;
    }
    switch (offset) {
      case COMMON_DEVICE_FEATURE_SELECT: this.deviceFeatureSelect = value; return;
      case COMMON_DRIVER_FEATURE_SELECT: this.driverFeatureSelect = value; return;
      case COMMON_DRIVER_FEATURE: this.onDriverFeatureWrite(value); return;
      case COMMON_CONFIG_MSIX_VECTOR: this.configMsixVector = vectorOrNone(value); return;
      case COMMON_DEVICE_STATUS: this.onDeviceStatusWrite(value); return;
      case COMMON_QUEUE_SELECT: this.queueSelect = value; return;
      case COMMON_QUEUE_SIZE: case COMMON_QUEUE_MSIX_VECTOR: case COMMON_QUEUE_ENABLE:
      case COMMON_QUEUE_DESC: case COMMON_QUEUE_DESC + 4:
      case COMMON_QUEUE_DRIVER: case COMMON_QUEUE_DRIVER + 4:
      case COMMON_QUEUE_DEVICE: case COMMON_QUEUE_DEVICE + 4:
        this.onQueueFieldWrite(offset, value);
        return;
      default: this.badAccess(`write to read-only common config field at ${hex(offset)}`, sizeBytes);
    }
  }

  private onDriverFeatureWrite(value: number): void {
    if ((this.deviceStatus & STATUS_FEATURES_OK) !== 0) {
      this.badAccess("driver_feature written after FEATURES_OK", 4);
      return;
    }
    this.driverFeatures.set(this.driverFeatureSelect, value);
  }

  // §2.1 and §3.1.1: 0 resets; the driver never clears a bit; FEATURES_OK sticks only for a subset of the offer.
  private onDeviceStatusWrite(value: number): void {
    if (value === 0) {
      this.resetByDriver();
      return;
    }
    const driverBits = this.deviceStatus & ~STATUS_DEVICE_NEEDS_RESET;
    if ((value & driverBits) !== driverBits) {
      this.badAccess(`device_status ${hex(value)} clears bits of ${hex(this.deviceStatus)}`, 1);
      return;
    }
    let status = (value & ~STATUS_DEVICE_NEEDS_RESET) | (this.deviceStatus & STATUS_DEVICE_NEEDS_RESET);
    const featuresOkNew = (status & STATUS_FEATURES_OK) !== 0 && (this.deviceStatus & STATUS_FEATURES_OK) === 0;
    if (featuresOkNew && !this.featuresAcceptable()) {
      this.logLine(`${this.name}: FEATURES_OK refused: the driver asked for features not offered or left out VERSION_1`);
      status &= ~STATUS_FEATURES_OK;
    }
    const driverOkNew = (status & STATUS_DRIVER_OK) !== 0 && (this.deviceStatus & STATUS_DRIVER_OK) === 0;
    this.deviceStatus = status;
    if (driverOkNew && !this.hung) for (let index = 0; index < QUEUE_COUNT; index++) if (this.queues[index]!.enabled) this.processQueue(index);
  }

  private featuresAcceptable(): boolean {
    for (const [word, bits] of this.driverFeatures) {
      const offered = word === VIRTIO_F_VERSION_1_WORD ? 1 : 0;
      if ((bits & ~offered) !== 0) return false;
    }
    return ((this.driverFeatures.get(VIRTIO_F_VERSION_1_WORD) ?? 0) & 1) !== 0;
  }

  private onQueueFieldWrite(offset: number, value: number): void {
    const queue = this.queues[this.queueSelect];
    if (queue === undefined) {
      this.badAccess(`queue field ${hex(offset)} written with queue_select ${this.queueSelect} (no such queue)`, 2);
      return;
    }
    if (offset === COMMON_QUEUE_MSIX_VECTOR) {
      queue.msixVector = vectorOrNone(value);
      return;
    }
    if (queue.enabled) {
      this.badAccess(`queue ${this.queueSelect} field ${hex(offset)} written while the queue is enabled`, 2);
      return;
    }
    const half = (address: bigint): bigint => ((offset & 4) === 0 ? (address & ~0xffff_ffffn) | BigInt(value) : (address & 0xffff_ffffn) | (BigInt(value) << 32n));
    switch (offset) {
      case COMMON_QUEUE_SIZE:
        // §4.1.4.3: the driver may pick a smaller power of two for a split ring.
        if (value < 1 || value > this.queueSizeMax || (value & (value - 1)) !== 0) this.badAccess(`queue_size ${value} is not a power of two in 1..${this.queueSizeMax}`, 2);
        else queue.size = value;
        return;
      case COMMON_QUEUE_ENABLE: this.onQueueEnable(queue, value); return;
      case COMMON_QUEUE_DESC: case COMMON_QUEUE_DESC + 4: queue.descAddress = half(queue.descAddress); return;
      case COMMON_QUEUE_DRIVER: case COMMON_QUEUE_DRIVER + 4: queue.driverAddress = half(queue.driverAddress); return;
      default: queue.deviceAddress = half(queue.deviceAddress); return;
    }
  }

  // §2.7 alignment of the three areas: descriptors 16, available ring 2, used ring 4.
  private onQueueEnable(queue: Virtqueue, value: number): void {
    if (value !== 1) {
      this.badAccess(`queue_enable written with ${value} (only 1 is allowed)`, 2);
      return;
    }
    if (queue.descAddress % 16n !== 0n || queue.driverAddress % 2n !== 0n || queue.deviceAddress % 4n !== 0n) {
      this.badAccess(`queue ${this.queueSelect} enabled with misaligned areas ${hex(queue.descAddress)}/${hex(queue.driverAddress)}/${hex(queue.deviceAddress)}`, 2);
      return;
    }
    queue.enabled = true;
  }

  // §4.1.4.5: reading the ISR returns and clears it.
  private isrRead(): number {
    const value = this.isr;
    this.isr = 0;
    return value;
  }

  private deviceConfigRead(offset: number, sizeBytes: AccessSize): number | bigint {
    const width = offset === SCSI_CONFIG_MAX_CHANNEL || offset === SCSI_CONFIG_MAX_TARGET ? 2 : offset % 4 === 0 ? 4 : 0;
    if (sizeBytes !== width) return this.badAccess(`device config read of ${sizeBytes} bytes at ${hex(offset)}`, sizeBytes);
    switch (offset) {
      case SCSI_CONFIG_NUM_QUEUES: return 1; // request queues only
      case SCSI_CONFIG_SEG_MAX: return SEG_MAX;
      case SCSI_CONFIG_MAX_SECTORS: return MAX_SECTORS;
      case SCSI_CONFIG_CMD_PER_LUN: return this.queueSizeMax;
      case SCSI_CONFIG_EVENT_INFO_SIZE: return EVENT_INFO_SIZE_BYTES;
      case SCSI_CONFIG_SENSE_SIZE: return this.senseSize;
      case SCSI_CONFIG_CDB_SIZE: return this.cdbSize;
      case SCSI_CONFIG_MAX_CHANNEL: return 0;
      case SCSI_CONFIG_MAX_TARGET: return 0;
      default: return this.disks.length - 1; // max_lun
    }
  }

  // §5.6.4: the driver may write only sense_size and cdb_size.
  private deviceConfigWrite(offset: number, sizeBytes: AccessSize, value: number): void {
    if (sizeBytes === 4 && offset === SCSI_CONFIG_SENSE_SIZE) this.senseSize = value;
    else if (sizeBytes === 4 && offset === SCSI_CONFIG_CDB_SIZE) this.cdbSize = value;
    else this.badAccess(`device config write of ${sizeBytes} bytes at ${hex(offset)}`, sizeBytes);
  }

  // §4.1.4.4 without NOTIFICATION_DATA: a 16-bit write of the queue index at that queue's notify address.
  private notifyWrite(offset: number, sizeBytes: AccessSize, value: number): void {
    const index = offset / VIRTIO_NOTIFY_OFF_MULTIPLIER;
    if (sizeBytes !== 2 || !Number.isInteger(index) || value !== index) {
      this.badAccess(`notify write of ${sizeBytes} bytes (${hex(value)}) at ${hex(VIRTIO_NOTIFY_OFFSET + offset)}`, sizeBytes);
      return;
    }
    if (this.broken) return; // the driver has been told; it must reset
    if ((this.deviceStatus & STATUS_DRIVER_OK) === 0 || !this.queues[index]!.enabled) {
      this.badAccess(`notify of queue ${index} before DRIVER_OK or before the queue is enabled`, 2);
      return;
    }
    if (this.hung) return; // resume() looks at every queue
    this.processQueue(index);
  }

  private badAccess(message: string, sizeBytes: AccessSize): number | bigint {
    const value = this.guestError(message, sizeBytes);
    return sizeBytes === 8 ? 0xffff_ffff_ffff_ffffn : value;
  }

  // --- Reset ---

  // Writing 0 to device_status. §5.6.5: every request in flight is completed before the reset is visible.
  private resetByDriver(): void {
    const requests = this.inFlight;
    this.inFlight = [];
    this.hung = false;
    for (const request of requests) {
      if (request.handle !== undefined) this.clock.cancel(request.handle);
      if (!this.broken) this.writeCompletion(request, false);
    }
    this.resetVirtio();
  }

  private resetVirtio(): void {
    this.deviceFeatureSelect = 0;
    this.driverFeatureSelect = 0;
    this.driverFeatures = new Map();
    this.configMsixVector = VIRTIO_MSI_NO_VECTOR;
    this.deviceStatus = 0;
    this.queueSelect = 0;
    this.queues = [];
    for (let index = 0; index < QUEUE_COUNT; index++) {
      this.queues.push({
        size: this.queueSizeMax, msixVector: VIRTIO_MSI_NO_VECTOR, enabled: false, descAddress: 0n, driverAddress: 0n, deviceAddress: 0n,
        availIndexNext: 0, usedIndex: 0, completionLastNs: 0,
      });
    }
    this.isr = 0;
    this.senseSize = SENSE_SIZE_DEFAULT;
    this.cdbSize = CDB_SIZE_DEFAULT;
    this.eventBuffers = [];
  }

  // A protocol violation: DEVICE_NEEDS_RESET, the configuration vector, and nothing more until reset (§2.1.2).
  private markBroken(reason: string): void {
    if (this.broken) return;
    this.stats.errors += 1;
    this.logLine(`${this.name}: device needs reset: ${reason}`);
    this.deviceStatus |= STATUS_DEVICE_NEEDS_RESET;
    this.isr |= ISR_CONFIG;
    if (this.configMsixVector !== VIRTIO_MSI_NO_VECTOR) this.signal(this.configMsixVector);
  }

  // --- Virtqueues ---

  // Takes every new available entry of queue `index` (at most the queue size per notify).
  private processQueue(index: number): void {
    const queue = this.queues[index]!;
    const availIndex = this.readU16(queue.driverAddress + 2n);
    if (availIndex === undefined) return this.markBroken(`queue ${index}: available ring at ${hex(queue.driverAddress)} unreadable`);
    const newCount = (availIndex - queue.availIndexNext) & 0xffff;
    if (newCount > queue.size) return this.markBroken(`queue ${index}: available index ${availIndex} is ${newCount} ahead of ${queue.availIndexNext}, more than the queue size ${queue.size}`);
    try {
      for (let taken = 0; taken < newCount && !this.broken; taken++) {
        const slot = queue.availIndexNext % queue.size;
        const head = this.readU16(queue.driverAddress + 4n + BigInt(2 * slot));
        if (head === undefined) return this.markBroken(`queue ${index}: available ring entry ${slot} unreadable`);
        queue.availIndexNext = (queue.availIndexNext + 1) & 0xffff;
        const chain = this.walkChain(queue, head);
        if (typeof chain === "string") return this.markBroken(`queue ${index}: ${chain}`);
        switch (index) {
          case QUEUE_CONTROL: this.onControlRequest(chain); break;
          case QUEUE_EVENT: this.onEventBuffer(queue, chain); break;
          case QUEUE_REQUEST: this.onCommandRequest(chain); break;
          default: throw new Error(`${this.name}: no queue ${index}`);
        }
      }
    } finally {
      if (this.heldWrites.length > 0) this.releaseHeldWrites();
    }
  }

  // The WRITEs of this notify whose data the disks hold (their data in place, in the driver's buffers, which stay
  // unchanged until the requests complete): stored now, adjacent ones together, before any of them is answered (their
  // completions are clock events, later); one the host failed is answered MEDIUM ERROR, WRITE ERROR instead of GOOD.
  private releaseHeldWrites(): void {
    const held = this.heldWrites;
    for (const disk of this.disks) { // bounded by the disks; each releases once
      if (!held.some((h) => h.disk === disk)) continue;
      const failed = disk.releaseWrites();
      for (const h of failed.length === 0 ? [] : held) {
        if (h.disk !== disk || !failed.includes(h.index)) continue;
        const answer = disk.heldWriteFailed(h.request.dataOutBytes);
        this.stats.bytesWritten -= h.request.dataOutBytes;
        this.responseHeaders.push(h.request.header); // replaced: its answer is not written yet
        this.respond(h.request, { response: RESPONSE_OK, status: answer.status, sense: answer.sense ?? EMPTY_DATA, dataIn: EMPTY_DATA, residualBytes: answer.residualBytes ?? 0 });
      }
    }
    held.length = 0;
  }

  // §2.7.4, §2.7.5: follows NEXT from `head`; a string names the violation that breaks the device.
  private walkChain(queue: Virtqueue, head: number): Chain | string {
    const chain: Chain = { head, readable: [], writable: [], readableBytes: 0, writableBytes: 0 };
    // Descriptors seen in this walk carry this walk's mark: no set allocated per request.
    if (this.chainMarks.length < queue.size) this.chainMarks = new Uint32Array(queue.size);
    this.chainMark = (this.chainMark + 1) >>> 0;
    if (this.chainMark === 0) {
      this.chainMarks.fill(0); // the marks wrapped: no stale one may match
      this.chainMark = 1;
    }
    const seen = this.chainMarks;
    const mark = this.chainMark;
    let index = head;
    // Each pass takes one descriptor; more than the queue size is a loop or an over-long chain.
    for (let count = 0; ; count++) {
      if (index >= queue.size) return `descriptor index ${index} is outside a queue of ${queue.size}`;
      if (seen[index] === mark || count >= queue.size) return `descriptor chain from ${head} loops or is longer than the queue (${queue.size})`;
      seen[index] = mark;
      const desc = this.descScratch;
      const result = this.dmaReadInto(queue.descAddress + BigInt(index * DESC_BYTES), desc);
      if (!result.ok) return `descriptor ${index} unreadable: ${result.fault}`;
      const segment = { address: readLe(desc, 0, 8) as bigint, lengthBytes: readLe(desc, 8, 4) as number };
      const flags = readLe(desc, 12, 2) as number;
      if ((flags & DESC_F_INDIRECT) !== 0) return `descriptor ${index} is INDIRECT, which was not offered`;
      if ((flags & DESC_F_WRITE) !== 0) {
        chain.writable.push(segment);
        chain.writableBytes += segment.lengthBytes;
      } else {
        if (chain.writable.length > 0) return `descriptor ${index} is device-readable after a device-writable one`;
        chain.readable.push(segment);
        chain.readableBytes += segment.lengthBytes;
      }
      if (chain.readableBytes + chain.writableBytes > CHAIN_BYTES_MAX) return `descriptor chain from ${head} carries more than 2^32 bytes`;
      if ((flags & DESC_F_NEXT) === 0) return chain;
      index = readLe(desc, 14, 2) as number;
    }
  }

  // §5.6.6.3: event buffers are kept for events this device never posts. More than the ring holds means the driver
  // posted a buffer twice.
  private onEventBuffer(queue: Virtqueue, chain: Chain): void {
    if (this.eventBuffers.length >= queue.size) return this.markBroken(`event queue: more than ${queue.size} buffers posted`);
    if (chain.writableBytes < EVENT_INFO_SIZE_BYTES) return this.markBroken(`event buffer ${chain.head} holds ${chain.writableBytes} writable bytes, less than ${EVENT_INFO_SIZE_BYTES}`);
    this.eventBuffers.push(chain.head);
  }

  // §5.6.6.1: virtio_scsi_cmd_req, dataout, then virtio_scsi_cmd_resp, datain.
  private onCommandRequest(chain: Chain): void {
    this.stats.requests += 1;
    const requestHeaderBytes = CMD_REQ_FIXED_BYTES + this.cdbSize;
    const responseHeaderBytes = CMD_RESP_FIXED_BYTES + this.senseSize;
    if (chain.readableBytes < requestHeaderBytes || chain.writableBytes < responseHeaderBytes) {
      return this.markBroken(`request ${chain.head}: ${chain.readableBytes} readable / ${chain.writableBytes} writable bytes do not hold the ${requestHeaderBytes}-byte request and ${responseHeaderBytes}-byte response`);
    }
    if (this.takeFault("never-complete-next") !== undefined) {
      this.logLine(`${this.name}: injected fault: request ${chain.head} dropped`);
      return;
    }
    if (this.takeFault("needs-reset-next") !== undefined) return this.markBroken(`injected fault at request ${chain.head}`);
    const dataOutBytes = chain.readableBytes - requestHeaderBytes;
    const dataInCapacityBytes = chain.writableBytes - responseHeaderBytes;
    // The request's record, made once with every field (one shape); respond() fills in the response.
    const request: InFlight = {
      queueIndex: QUEUE_REQUEST, head: chain.head, writable: chain.writable, header: EMPTY_DATA, headerPooled: false, dataIn: EMPTY_DATA,
      dataInOwner: undefined, tag: 0n, lun: -1, dataInCapacityBytes, dataOutBytes, handle: undefined,
    };
    if (this.requestHeaderScratch.length !== requestHeaderBytes) {
      this.requestHeaderScratch = new Uint8Array(requestHeaderBytes);
      this.requestHeaderView = new DataView(this.requestHeaderScratch.buffer);
      this.requestLunScratch = this.requestHeaderScratch.subarray(0, 8);
      this.requestCdbScratch = this.requestHeaderScratch.subarray(CMD_REQ_FIXED_BYTES);
    }
    const header = this.gather(chain.readable, 0, requestHeaderBytes, this.requestHeaderScratch);
    if (header === undefined || this.takeFault("dma-fault-next") !== undefined) {
      return this.schedule(this.respond(request, transportFailure(dataInCapacityBytes + dataOutBytes)), 0);
    }
    request.tag = this.requestHeaderView.getBigUint64(8, true);
    const cdb = this.requestCdbScratch;
    const lun = this.decodePresentLun(this.requestLunScratch, cdb[0] === OPCODE_REPORT_LUNS);
    request.lun = typeof lun === "number" ? lun : -1;
    if (lun === undefined) return this.schedule(this.respond(request, simpleResponse(RESPONSE_BAD_TARGET, dataInCapacityBytes + dataOutBytes)), 0);
    if (dataOutBytes > DATA_BYTES_MAX || dataInCapacityBytes > DATA_BYTES_MAX || (dataOutBytes > 0 && dataInCapacityBytes > 0)) {
      // §5.6.6.1: both directions need INOUT, which is not offered; FAILURE.
      return this.schedule(this.respond(request, simpleResponse(RESPONSE_FAILURE, dataInCapacityBytes + dataOutBytes)), 0);
    }
    const place = this.dataOutPlace(cdb[0]!, chain.readable, requestHeaderBytes, dataOutBytes);
    const dataOut = this.gather(chain.readable, requestHeaderBytes, dataOutBytes, place ?? this.dataOutScratchOf(dataOutBytes));
    if (dataOut === undefined) return this.schedule(this.respond(request, transportFailure(dataOutBytes)), 0);
    const lie = OPCODES_WRITE.has(cdb[0]!) && dataOut.length > 0 && this.takeFault("lose-write-next") !== undefined;
    const result = lie ? { response: RESPONSE_OK, status: SAM_STATUS_GOOD, sense: EMPTY_DATA, dataIn: EMPTY_DATA, residualBytes: 0 } : this.execute(lun, cdb, dataOut, dataInCapacityBytes, chain.writable, responseHeaderBytes, place !== undefined);
    if (result.status === SAM_STATUS_GOOD && result.response === RESPONSE_OK) this.stats.bytesWritten += dataOut.length - (dataOutBytes > 0 ? result.residualBytes : 0);
    this.schedule(this.respond(request, result), this.latencyFor(cdb[0]!));
    if (result.heldWrite !== undefined) this.heldWrites.push({ request, disk: this.disks[lun as number]!, index: result.heldWrite });
  }

  // REPORT LUNS is the controller's; every other command goes to the LUN's disk.
  // `dataOutHeld`: dataOut is the driver's own buffer (dataOutPlace), so a WRITE's data may be stored at the end of
  // this notify (releaseHeldWrites) rather than at once.
  private execute(lun: number | "report-luns", cdb: Uint8Array, dataOut: Uint8Array, dataInCapacityBytes: number, writable: Segment[], dataInOffsetBytes: number,
    dataOutHeld: boolean): CommandResult {
    if (cdb[0] === OPCODE_REPORT_LUNS) {
      const allocationBytes = new DataView(cdb.buffer, cdb.byteOffset, cdb.length).getUint32(6, false);
      const all = reportLunsData(this.disks.flatMap((_, index) => (this.pulled[index] ? [] : [index])));
      const dataIn = all.subarray(0, Math.min(all.length, allocationBytes, dataInCapacityBytes));
      return { response: RESPONSE_OK, status: SAM_STATUS_GOOD, sense: EMPTY_DATA, dataIn, residualBytes: dataInCapacityBytes - dataIn.length };
    }
    if (lun === "report-luns") {
      // SPC, "Well known logical units": this model answers only REPORT LUNS there.
      const sense = fixedSense(SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_COMMAND_OPERATION_CODE);
      return { response: RESPONSE_OK, status: SAM_STATUS_CHECK_CONDITION, sense, dataIn: EMPTY_DATA, residualBytes: dataInCapacityBytes + dataOut.length };
    }
    const disk = this.disks[lun]!;
    const outcome = disk.execute(cdb, dataOut, dataInCapacityBytes, this.dataInPlace(cdb[0]!, writable, dataInOffsetBytes, dataInCapacityBytes), dataOutHeld);
    const dataIn = outcome.dataIn ?? EMPTY_DATA;
    // virtio residual = the data buffers' length minus what was transferred; only one direction is ever used here.
    const delivered = dataIn.length > dataInCapacityBytes ? dataIn.subarray(0, dataInCapacityBytes) : dataIn;
    const residualBytes = outcome.residualBytes ?? dataInCapacityBytes - delivered.length;
    const dataInOwner = outcome.dataInPooled === true ? disk : undefined;
    return { response: RESPONSE_OK, status: outcome.status, sense: outcome.sense ?? EMPTY_DATA, dataIn: delivered, dataInOwner, residualBytes, heldWrite: outcome.heldWrite };
  }

  // A large READ's data buffer, when it is one piece of RAM nobody watches (bench, run: no trace, no fuzzer): the disk
  // reads into it straight, and the completion's DMA of those bytes (scatter) then records the write without copying
  // it. The driver may not look at a buffer before its request completes; a 1 MiB read is copied once (disk ->
  // guest RAM) instead of twice. Undefined otherwise: the disk reads into a pool buffer, copied at completion.
  private dataInPlace(opcode: number, writable: Segment[], offsetBytes: number, lengthBytes: number): Uint8Array | undefined {
    if (lengthBytes < DATA_IN_PLACE_BYTES_MIN || !OPCODES_READ.has(opcode)) return undefined;
    return this.placeView(writable, offsetBytes, lengthBytes);
  }

  // A WRITE's data, when it is one piece of RAM nobody watches: gather() still makes the DMA reads (recorded,
  // faulted, metered as before) but into the data where it lies, so nothing is copied, and the disk writes from the
  // driver's buffer, which the driver may not change before the request completes (execute() keeps nothing).
  // Undefined otherwise: the data is gathered into the scratch buffer.
  private dataOutPlace(opcode: number, readable: Segment[], offsetBytes: number, lengthBytes: number): Uint8Array | undefined {
    if (lengthBytes < DATA_OUT_PLACE_BYTES_MIN || !OPCODES_WRITE.has(opcode)) return undefined;
    return this.placeView(readable, offsetBytes, lengthBytes);
  }

  // The data area [offsetBytes, offsetBytes + lengthBytes) of `segments` as one view of memory, when those segments
  // follow each other in RAM nobody watches (a driver's buffer cut into descriptors of 64 KiB); else undefined.
  private placeView(segments: Segment[], offsetBytes: number, lengthBytes: number): Uint8Array | undefined {
    let skip = offsetBytes;
    let index = 0;
    while (index < segments.length && skip >= segments[index]!.lengthBytes) skip -= segments[index++]!.lengthBytes;
    if (index === segments.length) return undefined;
    const first = segments[index]!;
    if (first.lengthBytes - skip >= lengthBytes) return this.quietView(skip === 0 ? first.address : first.address + BigInt(skip), lengthBytes); // one piece
    const start = first.address + BigInt(skip);
    let end = segments[index]!.address + BigInt(segments[index]!.lengthBytes);
    while (end - start < BigInt(lengthBytes) && ++index < segments.length && segments[index]!.address === end) end += BigInt(segments[index]!.lengthBytes);
    return end - start >= BigInt(lengthBytes) ? this.quietView(start, lengthBytes) : undefined;
  }

  // The scratch buffer a request's data-out is gathered into when it cannot be used in place, `lengthBytes` long.
  private dataOutScratchOf(lengthBytes: number): Uint8Array {
    if (this.dataOutScratch.length < lengthBytes) this.dataOutScratch = new Uint8Array(lengthBytes); // at most DATA_BYTES_MAX
    return lengthBytes === this.dataOutScratch.length ? this.dataOutScratch : this.dataOutScratch.subarray(0, lengthBytes);
  }

  // decodeLun, with a pulled disk's LUN as absent as an unknown one; REPORT LUNS, which the controller answers,
  // still reaches a pulled LUN (SPC: LUN 0 answers it whether or not a logical unit is there).
  private decodePresentLun(lunBytes: Uint8Array, reportLuns: boolean): number | "report-luns" | undefined {
    const lun = decodeLun(lunBytes, this.disks.length);
    return typeof lun === "number" && this.pulled[lun] && !reportLuns ? undefined : lun;
  }

  private latencyFor(opcode: number): number {
    if (OPCODES_READ.has(opcode)) return this.latencyNs.read;
    if (OPCODES_WRITE.has(opcode)) return this.latencyNs.write;
    if (OPCODES_FLUSH.has(opcode)) return this.latencyNs.flush;
    return 0;
  }

  // virtio_scsi_cmd_resp: sense_len, residual, status_qualifier, status, response, sense[sense_size].
  private responseHeader(result: CommandResult): Uint8Array {
    // A header written before is reused (its backing store, like any over 64 bytes, is allocated outside the heap).
    const bytes = CMD_RESP_FIXED_BYTES + this.senseSize;
    let header = this.responseHeaders.pop();
    if (header === undefined || header.length !== bytes) header = new Uint8Array(bytes);
    else header.fill(0);
    const senseBytes = Math.min(result.sense.length, this.senseSize);
    writeLe(header, 0, 4, senseBytes);
    writeLe(header, 4, 4, result.residualBytes);
    header[10] = result.status;
    header[11] = result.response;
    header.set(result.sense.subarray(0, senseBytes), CMD_RESP_FIXED_BYTES);
    if (result.response !== RESPONSE_OK || result.status !== SAM_STATUS_GOOD) this.stats.errors += 1;
    return header;
  }

  // `request` answered with `result`: its response header (a reused one) and its data, in place (no copy of the record).
  private respond(request: InFlight, result: CommandResult): InFlight {
    request.header = this.responseHeader(result);
    request.headerPooled = true;
    request.dataIn = result.dataIn;
    request.dataInOwner = result.dataInOwner;
    return request;
  }

  // §5.6.6.2: task management and asynchronous notification; both answered at once.
  private onControlRequest(chain: Chain): void {
    const base = {
      queueIndex: QUEUE_CONTROL, head: chain.head, writable: chain.writable, headerPooled: false, dataIn: EMPTY_DATA, dataInOwner: undefined, tag: 0n, lun: -1,
      dataInCapacityBytes: 0, dataOutBytes: 0, handle: undefined,
    };
    const typeBytes = this.gather(chain.readable, 0, Math.min(chain.readableBytes, TMF_REQ_BYTES));
    if (typeBytes === undefined || typeBytes.length < 4) {
      if (chain.writableBytes < 1) return this.markBroken(`control request ${chain.head} has neither a readable type nor a response byte`);
      return this.schedule({ ...base, header: Uint8Array.of(typeBytes === undefined ? RESPONSE_TRANSPORT_FAILURE : RESPONSE_FAILURE) }, 0);
    }
    const view = new DataView(typeBytes.buffer, typeBytes.byteOffset, typeBytes.length);
    const type = view.getUint32(0, true);
    if (type === CONTROL_TYPE_TMF) {
      if (typeBytes.length < TMF_REQ_BYTES || chain.writableBytes < TMF_RESP_BYTES) return this.markBroken(`control request ${chain.head}: TMF needs ${TMF_REQ_BYTES} readable and ${TMF_RESP_BYTES} writable bytes`);
      const response = this.taskManagement(view.getUint32(4, true), typeBytes.subarray(8, 16), view.getBigUint64(16, true));
      return this.schedule({ ...base, header: Uint8Array.of(response) }, 0);
    }
    if (type === CONTROL_TYPE_AN_QUERY || type === CONTROL_TYPE_AN_SUBSCRIBE) {
      if (typeBytes.length < AN_REQ_BYTES || chain.writableBytes < AN_RESP_BYTES) return this.markBroken(`control request ${chain.head}: AN needs ${AN_REQ_BYTES} readable and ${AN_RESP_BYTES} writable bytes`);
      const answer = new Uint8Array(AN_RESP_BYTES); // event_actual 0: no event is supported
      answer[4] = this.decodePresentLun(typeBytes.subarray(4, 12), false) === undefined ? RESPONSE_BAD_TARGET : RESPONSE_OK;
      return this.schedule({ ...base, header: answer }, 0);
    }
    if (chain.writableBytes < 1) return this.markBroken(`control request ${chain.head} of unknown type ${type} has no response byte`);
    this.schedule({ ...base, header: Uint8Array.of(RESPONSE_FAILURE) }, 0);
  }

  // Requests finish in order, so a task to abort is one whose completion is still pending: it completes ABORTED now.
  private taskManagement(subtype: number, lunBytes: Uint8Array, tag: bigint): number {
    const lun = this.decodePresentLun(lunBytes, false);
    if (lun === undefined || lun === "report-luns") return RESPONSE_BAD_TARGET;
    const pending = this.inFlight.filter((r) => r.queueIndex === QUEUE_REQUEST && r.handle !== undefined);
    switch (subtype) {
      case TMF_ABORT_TASK: this.abort(pending.filter((r) => r.lun === lun && r.tag === tag)); return RESPONSE_FUNCTION_COMPLETE;
      case TMF_ABORT_TASK_SET: case TMF_CLEAR_TASK_SET: this.abort(pending.filter((r) => r.lun === lun)); return RESPONSE_FUNCTION_COMPLETE;
      case TMF_LOGICAL_UNIT_RESET:
        this.abort(pending.filter((r) => r.lun === lun));
        this.disks[lun]!.unitAttention(ASC_RESET_OCCURRED, ASCQ_BUS_DEVICE_RESET_FUNCTION);
        return RESPONSE_FUNCTION_COMPLETE;
      case TMF_I_T_NEXUS_RESET:
        this.abort(pending);
        this.disks.forEach((disk, index) => { if (!this.pulled[index]) disk.unitAttention(ASC_RESET_OCCURRED, ASCQ_I_T_NEXUS_LOSS); });
        return RESPONSE_FUNCTION_COMPLETE;
      case TMF_CLEAR_ACA: return RESPONSE_FUNCTION_COMPLETE;
      case TMF_QUERY_TASK: return pending.some((r) => r.lun === lun && r.tag === tag) ? RESPONSE_FUNCTION_SUCCEEDED : RESPONSE_FUNCTION_COMPLETE;
      case TMF_QUERY_TASK_SET: return pending.some((r) => r.lun === lun) ? RESPONSE_FUNCTION_SUCCEEDED : RESPONSE_FUNCTION_COMPLETE;
      default: return RESPONSE_FUNCTION_REJECTED;
    }
  }

  // The aborted completions are scheduled now, so they reach the used ring before the TMF's own answer.
  private abort(requests: InFlight[]): void {
    for (const request of requests) {
      this.clock.cancel(request.handle!);
      this.inFlight.splice(this.inFlight.indexOf(request), 1);
      const result = simpleResponse(RESPONSE_ABORTED, request.dataInCapacityBytes + request.dataOutBytes);
      this.releaseDataIn(request); // its data will never be written
      this.schedule(this.respond({ ...request, handle: undefined }, result), 0, true);
    }
  }

  // Queues the completion `delayNs` from now, never before an earlier completion of the same queue.
  private schedule(request: InFlight, delayNs: number, outOfOrder = false): void {
    const queue = this.queues[request.queueIndex]!;
    const atNs = outOfOrder ? this.clock.nowNs : Math.max(this.clock.nowNs + delayNs, queue.completionLastNs);
    if (!outOfOrder) queue.completionLastNs = atNs;
    this.inFlight.push(request);
    request.handle = this.clock.at(atNs, () => this.complete(request));
  }

  private complete(request: InFlight): void {
    if (this.broken || this.hung) {
      request.handle = undefined; // held: a broken or hung device writes nothing; a reset (or resume) settles it
      return;
    }
    this.inFlight.splice(this.inFlight.indexOf(request), 1);
    this.writeCompletion(request, true);
  }

  // Data, then the response, then the used element and index, then the interrupt: the driver sees them in that order.
  private writeCompletion(request: InFlight, interrupt: boolean): void {
    const queue = this.queues[request.queueIndex]!;
    let header = request.header;
    let dataWrittenBytes = 0;
    if (request.dataIn.length > 0) {
      if (this.scatter(request.writable, header.length, request.dataIn)) dataWrittenBytes = request.dataIn.length;
      else header = this.responseHeader(transportFailure(request.dataInCapacityBytes));
    }
    this.releaseDataIn(request); // in guest memory now (the DMA copies), or never going there
    if (!this.scatter(request.writable, 0, header)) return this.markBroken(`queue ${request.queueIndex}: response of request ${request.head} cannot be written`);
    if (request.queueIndex === QUEUE_REQUEST && header[11] === RESPONSE_OK) this.stats.bytesRead += dataWrittenBytes;
    let id = request.head;
    let copies = 1;
    if (this.takeFault("unknown-id") !== undefined) id = queue.size; // never a valid head
    if (this.takeFault("duplicate-used") !== undefined) copies = 2;
    for (let copy = 0; copy < copies; copy++) {
      if (!this.pushUsed(queue, id, header.length + dataWrittenBytes)) return this.markBroken(`queue ${request.queueIndex}: used ring at ${hex(queue.deviceAddress)} cannot be written`);
    }
    const jump = this.takeFault("used-index-jump");
    if (jump !== undefined) {
      queue.usedIndex = (queue.usedIndex + jump.by) & 0xffff;
      if (!this.writeU16(queue.deviceAddress + 2n, queue.usedIndex)) return this.markBroken(`queue ${request.queueIndex}: used index cannot be written`);
    }
    // In guest memory now: the headers may be reused.
    if (request.headerPooled === true) this.recycleHeader(request.header);
    if (header !== request.header) this.recycleHeader(header); // a transport failure's, from responseHeader
    if (!interrupt) return;
    const storm = this.takeFault("interrupt-storm");
    const availFlags = this.readU16(queue.driverAddress);
    if (availFlags === undefined) return this.markBroken(`queue ${request.queueIndex}: available ring flags unreadable`);
    if ((availFlags & AVAIL_F_NO_INTERRUPT) !== 0 && storm === undefined) return;
    this.isr |= ISR_QUEUE;
    if (queue.msixVector === VIRTIO_MSI_NO_VECTOR) return;
    const signals = ((availFlags & AVAIL_F_NO_INTERRUPT) === 0 ? 1 : 0) + (storm?.count ?? 0);
    for (let count = 0; count < signals; count++) this.signal(queue.msixVector);
  }

  private recycleHeader(header: Uint8Array): void {
    if (this.responseHeaders.length < RESPONSE_HEADERS_KEPT_MAX) this.responseHeaders.push(header);
  }

  // A READ's buffer goes back to its disk's pool; the request holds an empty view from now on.
  private releaseDataIn(request: InFlight): void {
    const owner = request.dataInOwner;
    if (owner === undefined) return;
    request.dataInOwner = undefined;
    owner.releaseDataIn(request.dataIn);
    request.dataIn = EMPTY_DATA;
  }

  // §2.7.8: the element at used.idx mod size, then idx + 1 (u16, wrapping).
  private pushUsed(queue: Virtqueue, id: number, lengthBytes: number): boolean {
    const element = this.usedScratch;
    writeLe(element, 0, 4, id);
    writeLe(element, 4, 4, lengthBytes);
    const slot = queue.usedIndex % queue.size;
    if (!this.dmaWrite(queue.deviceAddress + 4n + BigInt(slot * USED_ELEM_BYTES), element).ok) return false;
    queue.usedIndex = (queue.usedIndex + 1) & 0xffff;
    return this.writeU16(queue.deviceAddress + 2n, queue.usedIndex);
  }

  private takeFault<K extends VirtioScsiFault["kind"]>(kind: K): Extract<VirtioScsiFault, { kind: K }> | undefined {
    if (this.faults.length === 0) return undefined; // the common case, on every request: no closure, no scan
    const index = this.faults.findIndex((fault) => fault.kind === kind);
    if (index < 0) return undefined;
    const [fault] = this.faults.splice(index, 1);
    this.logLine(`${this.name}: injected fault: ${kind}`);
    return fault as Extract<VirtioScsiFault, { kind: K }>;
  }

  // --- DMA helpers: every access to guest memory goes through the base class's dmaRead/dmaWrite ---

  // `lengthBytes` bytes starting `offsetBytes` into the readable segments, in `into` (its whole length) or a new
  // buffer; undefined on a DMA fault.
  private gather(segments: Segment[], offsetBytes: number, lengthBytes: number, into?: Uint8Array): Uint8Array | undefined {
    const out = into ?? new Uint8Array(lengthBytes);
    let skip = offsetBytes;
    let filled = 0;
    for (const segment of segments) {
      if (filled === lengthBytes) break;
      if (skip >= segment.lengthBytes) {
        skip -= segment.lengthBytes;
        continue;
      }
      const take = Math.min(segment.lengthBytes - skip, lengthBytes - filled);
      const address = skip === 0 ? segment.address : segment.address + BigInt(skip);
      const result = this.dmaReadInto(address, take === out.length ? out : out.subarray(filled, filled + take));
      if (!result.ok) return undefined;
      filled += take;
      skip = 0;
    }
    return out;
  }

  // Writes `bytes` starting `offsetBytes` into the writable segments; false on a DMA fault.
  private scatter(segments: Segment[], offsetBytes: number, bytes: Uint8Array): boolean {
    let skip = offsetBytes;
    let done = 0;
    for (const segment of segments) {
      if (done === bytes.length) break;
      if (skip >= segment.lengthBytes) {
        skip -= segment.lengthBytes;
        continue;
      }
      const put = Math.min(segment.lengthBytes - skip, bytes.length - done);
      const address = skip === 0 ? segment.address : segment.address + BigInt(skip);
      if (!this.dmaWrite(address, put === bytes.length ? bytes : bytes.subarray(done, done + put)).ok) return false;
      done += put;
      skip = 0;
    }
    return done === bytes.length;
  }

  private readU16(address: bigint): number | undefined {
    const result = this.dmaReadInto(address, this.u16Scratch);
    return result.ok ? readLe(this.u16Scratch, 0, 2) as number : undefined;
  }

  private writeU16(address: bigint, value: number): boolean {
    writeLe(this.u16Scratch, 0, 2, value);
    return this.dmaWrite(address, this.u16Scratch).ok;
  }
}

// struct virtio_pci_cap after cap_vndr and cap_next (§4.1.4); the notify cap adds notify_off_multiplier.
function virtioCap(cfgType: number, offset: number, lengthBytes: number, notifyOffMultiplier?: number): Uint8Array {
  const body = new Uint8Array(notifyOffMultiplier === undefined ? 14 : 18);
  const view = new DataView(body.buffer);
  body[0] = body.length + 2; // cap_len counts cap_vndr and cap_next
  body[1] = cfgType;
  body[2] = VIRTIO_SCSI_BAR_REGISTERS;
  body[3] = 0; // id
  view.setUint32(6, offset, true);
  view.setUint32(10, lengthBytes, true);
  if (notifyOffMultiplier !== undefined) view.setUint32(14, notifyOffMultiplier, true);
  return body;
}

// The width of the common-config field at `offset`, 0 when no field starts there.
function commonFieldWidth(offset: number): number {
  if (offset < COMMON_CONFIG_MSIX_VECTOR) return offset % 4 === 0 ? 4 : 0; // the four feature registers
  if (offset === COMMON_DEVICE_STATUS || offset === COMMON_CONFIG_GENERATION) return 1;
  if (offset >= COMMON_QUEUE_DESC && offset < COMMON_QUEUE_NOTIF_CONFIG_DATA) return offset % 4 === 0 ? 4 : 0; // address halves
  return offset % 2 === 0 ? 2 : 0; // the 16-bit fields from 0x10 to 0x1E and from 0x38 to 0x3E
}

function vectorOrNone(value: number): number {
  return value < VIRTIO_SCSI_VECTOR_COUNT ? value : VIRTIO_MSI_NO_VECTOR; // §4.1.5.1.2: 0xFFFF reads back a refusal
}

// §5.6.6.1 LUN addressing: byte 0 is 1, byte 1 the target (only 0 here), bytes 2-3 a single-level LUN in the
// peripheral (00b) or flat (01b) method, as Linux encodes it; C1 01 is the REPORT LUNS well-known LU.
// Undefined: no such target or LUN (BAD_TARGET).
function decodeLun(lun: Uint8Array, diskCount: number): number | "report-luns" | undefined {
  if (lun[0] === LUN_WELL_KNOWN_REPORT_LUNS[0] && lun[1] === LUN_WELL_KNOWN_REPORT_LUNS[1]) return "report-luns";
  if (lun[0] !== LUN_ADDRESS_SINGLE_LEVEL || lun[1] !== 0) return undefined;
  const method = lun[2]! >> 6;
  if (method > 1 || (method === 0 && (lun[2]! & 0x3f) !== 0)) return undefined;
  const index = ((lun[2]! & 0x3f) << 8) | lun[3]!;
  return index < diskCount ? index : undefined;
}

function simpleResponse(response: number, residualBytes: number): CommandResult {
  return { response, status: SAM_STATUS_GOOD, sense: EMPTY_DATA, dataIn: EMPTY_DATA, residualBytes };
}

function transportFailure(residualBytes: number): CommandResult {
  return simpleResponse(RESPONSE_TRANSPORT_FAILURE, residualBytes);
}
