// A SCSI direct-access logical unit (SBC-3) over a DiskBackend: the disks the emulated virtio-scsi controller
// exposes. One command runs to completion inside execute(): every WRITE reaches the backend before GOOD returns
// (or, for one whose caller holds its answer, before releaseWrites() returns: execute's dataOutHeld), and every field the standards ask a device server to check is checked before any data moves.
// REPORT LUNS lists every logical unit of the target, which only the controller knows, so the controller answers
// it; reportLunsData() below builds its parameter data.
import type { DiskBackend } from "./disk_backend.ts";
import { DiskIoError } from "./disk_backend.ts";
import { ReadBufferPool } from "./read_buffer_pool.ts";
import {
  ASC_INVALID_COMMAND_OPERATION_CODE,
  ASC_INVALID_FIELD_IN_CDB,
  ASC_INVALID_FIELD_IN_PARAMETER_LIST,
  ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE,
  ASC_NO_ADDITIONAL_SENSE,
  ASC_PARAMETER_LIST_LENGTH_ERROR,
  ASC_SAVING_PARAMETERS_NOT_SUPPORTED,
  ASC_UNRECOVERED_READ_ERROR,
  ASC_WRITE_ERROR,
  type AdditionalSense,
  fixedSense,
  SAM_STATUS_CHECK_CONDITION,
  SAM_STATUS_GOOD,
  SENSE_KEY_ILLEGAL_REQUEST,
  SENSE_KEY_MEDIUM_ERROR,
  SENSE_KEY_NO_SENSE,
  SENSE_KEY_UNIT_ATTENTION,
  type SenseOptions,
} from "./scsi_sense.ts";

export interface ScsiResult {
  status: number;
  /** Fixed-format sense data, present exactly when status is CHECK CONDITION (autosense). */
  sense?: Uint8Array;
  /** The Data-In bytes: at most the CDB's allocation or transfer length, and at most dataInCapacity. */
  dataIn?: Uint8Array;
  /** Bytes of the initiator's buffers (dataOut.length + dataInCapacity) the command did not transfer. */
  residualBytes?: number;
  /** Data-In bytes the command had to send that did not fit in dataInCapacity (an overrun; truncated). */
  overflowBytes?: number;
  /** `dataIn` is a READ's buffer from the disk's pool: give it back with releaseDataIn() once it is copied out. */
  dataInPooled?: boolean;
  /**
   * A WRITE given `dataOutHeld` whose data the backend holds (DiskBackend.writeHeld, this its index): GOOD stands
   * once releaseWrites() does not name it; when it does, the command's answer is heldWriteFailed() instead.
   */
  heldWrite?: number;
}

export interface ScsiIdentity {
  vendor: string; // T10 vendor identification, 1..8 ASCII characters
  product: string; // 1..16 ASCII characters
  serial: string; // 1..SERIAL_LENGTH_MAX ASCII characters
  naa: bigint; // NAA IEEE Registered (type 5) designator, 64 bits; see naaFromName()
  revision?: string; // 1..4 ASCII characters; PRODUCT_REVISION_DEFAULT when absent
}

/** The medium's geometry beyond its logical block size (the backend's). */
export interface ScsiGeometry {
  physicalBlockSize?: number; // bytes per physical block: the block size times a power of two; the block size when absent
}

// Operation codes (SPC-4 and SBC-3, the command descriptions).
export const OPCODE_TEST_UNIT_READY = 0x00;
export const OPCODE_REQUEST_SENSE = 0x03;
export const OPCODE_READ_6 = 0x08;
export const OPCODE_WRITE_6 = 0x0a;
export const OPCODE_INQUIRY = 0x12;
export const OPCODE_MODE_SENSE_6 = 0x1a;
export const OPCODE_START_STOP_UNIT = 0x1b;
export const OPCODE_READ_CAPACITY_10 = 0x25;
export const OPCODE_READ_10 = 0x28;
export const OPCODE_WRITE_10 = 0x2a;
export const OPCODE_VERIFY_10 = 0x2f;
export const OPCODE_SYNCHRONIZE_CACHE_10 = 0x35;
export const OPCODE_WRITE_SAME_10 = 0x41;
export const OPCODE_UNMAP = 0x42;
export const OPCODE_MODE_SENSE_10 = 0x5a;
export const OPCODE_READ_16 = 0x88;
export const OPCODE_WRITE_16 = 0x8a;
export const OPCODE_VERIFY_16 = 0x8f;
export const OPCODE_SYNCHRONIZE_CACHE_16 = 0x91;
export const OPCODE_WRITE_SAME_16 = 0x93;
export const OPCODE_SERVICE_ACTION_IN_16 = 0x9e;
export const OPCODE_REPORT_LUNS = 0xa0;
export const OPCODE_READ_12 = 0xa8;
export const OPCODE_WRITE_12 = 0xaa;
export const SERVICE_ACTION_READ_CAPACITY_16 = 0x10;

// The limits advertised in the Block Limits VPD page, in bytes so they hold for both block sizes.
const MIB = 1024 * 1024;
export const TRANSFER_LENGTH_MAX_BYTES = 1 * MIB; // one command's data; bounds every buffer execute() builds
export const TRANSFER_GRANULARITY_OPTIMAL_BYTES = 4096;
export const UNMAP_LENGTH_MAX_BYTES = 32 * MIB; // per UNMAP command, all descriptors together
export const UNMAP_DESCRIPTOR_COUNT_MAX = 64; // SBC-4 Basic Provisioning asks for at least 64
export const WRITE_SAME_LENGTH_MAX_BYTES = UNMAP_LENGTH_MAX_BYTES; // not above the unmap limit, as SBC-4 Annex H asks
export const UNIT_ATTENTION_QUEUE_MAX = 8;
export const SERIAL_LENGTH_MAX = 64;
export const PRODUCT_REVISION_DEFAULT = "0001";
/** A locally administered IEEE company ID (the X bit, 0x02 of the first octet, set): claims no vendor's OUI. */
export const NAA_COMPANY_ID_LOCAL = 0x02_00_01;

export const INQUIRY_STANDARD_LENGTH_BYTES = 96;
export const READ_CAPACITY_16_LENGTH_BYTES = 32;
const NAA_IEEE_REGISTERED = 5n;

/** What a handler produced; execute() turns it into a ScsiResult against the initiator's buffers. */
interface Outcome {
  status: number;
  sense?: Uint8Array;
  data?: Uint8Array; // already cut to the CDB's allocation length
  dataOutUsedBytes?: number;
  /** `data` was made for this command alone (a read's buffer): execute() hands it over rather than copying it. */
  dataOwned?: boolean;
  /** `data` is the start of execute()'s `dataInPlace`: the caller's own memory, no pool buffer. */
  inPlace?: boolean;
  /** The data of this WRITE is held by the backend (writeHeld's index): stored at releaseWrites() at the latest. */
  heldWrite?: number;
}

const GOOD: Outcome = { status: SAM_STATUS_GOOD };
const EMPTY = new Uint8Array(0);
const NONE_FAILED: readonly number[] = [];

function checkCondition(senseKey: number, additional: AdditionalSense, options?: SenseOptions): Outcome {
  return { status: SAM_STATUS_CHECK_CONDITION, sense: fixedSense(senseKey, additional, options) };
}

function invalidFieldInCdb(byteIndex: number, bitIndex?: number): Outcome {
  return checkCondition(SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, { fieldPointer: { inCdb: true, byteIndex, bitIndex } });
}

function invalidFieldInParameterList(byteIndex: number): Outcome {
  return checkCondition(SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, { fieldPointer: { inCdb: false, byteIndex } });
}

function lbaOutOfRange(): Outcome {
  return checkCondition(SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_BLOCK_ADDRESS_OUT_OF_RANGE);
}

/** SPC-4, Allocation length: the device server sends what it has, cut to the allocation length, never an error. */
function cut(data: Uint8Array, allocationLengthBytes: number): Outcome {
  return { status: SAM_STATUS_GOOD, data: data.subarray(0, Math.min(data.length, allocationLengthBytes)) };
}

function be16(bytes: Uint8Array, index: number): number {
  return ((bytes[index] as number) << 8) | (bytes[index + 1] as number);
}

function be32(bytes: Uint8Array, index: number): number {
  return ((bytes[index] as number) * 0x1000000) + (((bytes[index + 1] as number) << 16) | be16(bytes, index + 2));
}

function be64(bytes: Uint8Array, index: number): bigint {
  return (BigInt(be32(bytes, index)) << 32n) | BigInt(be32(bytes, index + 4));
}

/** SPC-4, Operation code: the group code (top 3 bits) fixes the CDB length; 0 for groups we never accept. */
function cdbLengthOf(opcode: number): number {
  switch (opcode >> 5) {
    case 0: return 6;
    case 1: case 2: return 10;
    case 4: return 16;
    case 5: return 12;
    default: return 0;
  }
}

/** The SPC-4 padded-ASCII fields of INQUIRY data: left-aligned, filled with spaces. */
function asciiField(text: string, lengthBytes: number): Uint8Array {
  const field = new Uint8Array(lengthBytes).fill(0x20);
  for (let index = 0; index < text.length && index < lengthBytes; index += 1) field[index] = text.charCodeAt(index);
  return field;
}

function checkAscii(what: string, text: string, lengthMaxBytes: number): void {
  if (!/^[\x20-\x7e]+$/.test(text) || text.length > lengthMaxBytes) {
    throw new RangeError(`${what} ${JSON.stringify(text)} is not 1..${lengthMaxBytes} printable ASCII characters`);
  }
}

/**
 * A NAA IEEE Registered designator (SPC-4, NAA IEEE Registered designator format: NAA 5h, 24-bit company ID,
 * 36-bit vendor specific identifier) whose vendor specific part is a 64-bit FNV-1a hash of `name`, so a disk
 * keeps its identifier from run to run and two disks of one board differ.
 */
export function naaFromName(name: string, companyId: number = NAA_COMPANY_ID_LOCAL): bigint {
  if (!Number.isInteger(companyId) || companyId < 0 || companyId > 0xff_ffff) throw new RangeError(`company ID ${companyId} is not 24 bits`);
  let hash = 0xcbf2_9ce4_8422_2325n;
  for (const byte of new TextEncoder().encode(name)) hash = ((hash ^ BigInt(byte)) * 0x100_0000_01b3n) & 0xffff_ffff_ffff_ffffn;
  return (NAA_IEEE_REGISTERED << 60n) | (BigInt(companyId) << 36n) | (hash & 0xf_ffff_ffffn);
}

/**
 * SPC-4, REPORT LUNS parameter data: an 8-byte header (LUN LIST LENGTH, reserved) and one 8-byte LUN each, in
 * the single-level peripheral device addressing method of SAM-5 (address method 00b, bus 0, LUN in byte 1).
 */
export function reportLunsData(luns: number[]): Uint8Array {
  const data = new Uint8Array(8 + 8 * luns.length);
  new DataView(data.buffer).setUint32(0, 8 * luns.length);
  luns.forEach((lun, index) => {
    if (!Number.isInteger(lun) || lun < 0 || lun > 0xff) throw new RangeError(`LUN ${lun} does not fit peripheral device addressing (0..255)`);
    data[8 + 8 * index + 1] = lun;
  });
  return data;
}

/** The fields READ and WRITE share, whatever their CDB length. */
interface BlockTransfer {
  lba: bigint;
  blockCount: number;
  fua: boolean;
  protect: number; // RDPROTECT or WRPROTECT
  countByteIndex: number; // where the TRANSFER LENGTH field starts, for the sense field pointer
}

/** SBC-3, READ and WRITE (6, 10, 12 and 16): where each CDB keeps its LBA, transfer length and flags. */
function decodeBlockTransfer(cdb: Uint8Array): BlockTransfer {
  const flags = cdb[1] as number;
  switch (cdb[0]) {
    case OPCODE_READ_6: case OPCODE_WRITE_6: // a TRANSFER LENGTH of 0 means 256 blocks in the 6-byte CDBs only
      return { lba: BigInt(((flags & 0x1f) << 16) | be16(cdb, 2)), blockCount: (cdb[4] as number) || 256, fua: false, protect: 0, countByteIndex: 4 };
    case OPCODE_READ_10: case OPCODE_WRITE_10:
      return { lba: BigInt(be32(cdb, 2)), blockCount: be16(cdb, 7), fua: (flags & 0x08) !== 0, protect: flags >> 5, countByteIndex: 7 };
    case OPCODE_READ_12: case OPCODE_WRITE_12:
      return { lba: BigInt(be32(cdb, 2)), blockCount: be32(cdb, 6), fua: (flags & 0x08) !== 0, protect: flags >> 5, countByteIndex: 6 };
    default: // READ (16), WRITE (16)
      return { lba: be64(cdb, 2), blockCount: be32(cdb, 10), fua: (flags & 0x08) !== 0, protect: flags >> 5, countByteIndex: 10 };
  }
}

export class ScsiDisk {
  readonly blockCount: number;
  private readonly blockCountBig: bigint;
  private readonly transferLengthMaxBlocks: number;
  private readonly unmapLengthMaxBlocks: number;
  private readonly writeSameLengthMaxBlocks: number;
  private readonly identity: Required<ScsiIdentity>;
  private readonly unitAttentions: AdditionalSense[] = []; // oldest first, at most UNIT_ATTENTION_QUEUE_MAX
  private readonly physicalExponent: number; // SBC-3 LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT
  /** The buffers READs read into, lent until the caller gives them back (releaseDataIn). */
  readonly readBuffers = new ReadBufferPool();
  // execute()'s dataInPlace while it runs: where a READ may put its data instead of a pool buffer.
  private dataInPlace: Uint8Array | undefined;
  // execute()'s dataOutHeld while it runs: a WRITE may leave its data to the backend to store later (writeHeld).
  private dataOutHeld = false;

  constructor(
    private readonly backend: DiskBackend,
    identity: ScsiIdentity,
    geometry: ScsiGeometry = {},
  ) {
    const revision = identity.revision ?? PRODUCT_REVISION_DEFAULT;
    checkAscii("vendor", identity.vendor, 8);
    checkAscii("product", identity.product, 16);
    checkAscii("revision", revision, 4);
    checkAscii("serial", identity.serial, SERIAL_LENGTH_MAX);
    if (identity.naa >> 60n !== NAA_IEEE_REGISTERED || identity.naa >> 64n !== 0n) {
      throw new RangeError(`NAA 0x${identity.naa.toString(16)} is not a 64-bit NAA IEEE Registered (5h) designator`);
    }
    this.identity = { ...identity, revision };
    const physicalBlockSize = geometry.physicalBlockSize ?? backend.blockSize;
    const ratio = physicalBlockSize / backend.blockSize;
    if (!Number.isInteger(ratio) || ratio < 1 || ratio > 1 << 15 || (ratio & (ratio - 1)) !== 0) {
      throw new RangeError(`physical block size ${physicalBlockSize} is not the block size ${backend.blockSize} times a power of two`);
    }
    this.physicalExponent = Math.log2(ratio);
    this.blockCount = backend.sizeBytes / backend.blockSize;
    this.blockCountBig = BigInt(this.blockCount);
    this.transferLengthMaxBlocks = TRANSFER_LENGTH_MAX_BYTES / backend.blockSize;
    this.unmapLengthMaxBlocks = UNMAP_LENGTH_MAX_BYTES / backend.blockSize;
    this.writeSameLengthMaxBlocks = WRITE_SAME_LENGTH_MAX_BYTES / backend.blockSize;
  }

  /**
   * Queues a unit attention condition for the next command other than INQUIRY, REPORT LUNS or REQUEST SENSE
   * (SAM-5, Unit attention conditions). A condition already queued is not queued twice; when the queue is full
   * the new one is dropped, since the initiator still learns from those queued that it must look again.
   */
  unitAttention(asc: number, ascq: number): void {
    if (!Number.isInteger(asc) || !Number.isInteger(ascq) || asc < 0 || asc > 0xff || ascq < 0 || ascq > 0xff) {
      throw new RangeError(`ASC/ASCQ ${asc}/${ascq} are not bytes`);
    }
    if (this.unitAttentions.some((queued) => queued.asc === asc && queued.ascq === ascq)) return;
    if (this.unitAttentions.length < UNIT_ATTENTION_QUEUE_MAX) this.unitAttentions.push({ asc, ascq });
  }

  /**
   * Executes one command. `dataOut` holds what the initiator sent; allocation and transfer lengths come from the
   * CDB; `dataInCapacity` is how many bytes the initiator's Data-In buffers hold (Data-In is cut to it).
   * `dataInPlace`, optional: memory a READ may read its data into straight (the initiator's own buffer); the
   * result's `dataIn` is then a view of it, not pooled. `dataOutHeld`: the caller leaves `dataOut` unchanged and
   * answers nothing until its next releaseWrites(), so a WRITE without FUA may have the backend store its data then
   * (with adjacent ones, in one system call); the result's `heldWrite` says so.
   */
  execute(cdb: Uint8Array, dataOut: Uint8Array, dataInCapacity: number, dataInPlace?: Uint8Array, dataOutHeld = false): ScsiResult {
    if (!Number.isSafeInteger(dataInCapacity) || dataInCapacity < 0) throw new RangeError(`Data-In capacity ${dataInCapacity} is not a byte count`);
    this.dataInPlace = dataInPlace;
    this.dataOutHeld = dataOutHeld;
    let outcome: Outcome;
    try {
      outcome = this.checkAndDispatch(cdb, dataOut);
    } finally {
      this.dataInPlace = undefined;
      this.dataOutHeld = false;
    }
    if (outcome.status !== SAM_STATUS_GOOD) {
      return { status: outcome.status, sense: outcome.sense, residualBytes: dataOut.length + dataInCapacity };
    }
    const data = outcome.data ?? EMPTY;
    const deliveredBytes = Math.min(data.length, dataInCapacity);
    return {
      status: outcome.status,
      // The caller owns what it gets, and it holds nothing past the cut: a copy, unless the buffer is already its own
      // or there is nothing (every WRITE: an empty slice still costs an allocation and a memset per command).
      dataIn: outcome.dataOwned === true ? data.subarray(0, deliveredBytes) : deliveredBytes === 0 ? EMPTY : data.slice(0, deliveredBytes),
      residualBytes: dataInCapacity - deliveredBytes + dataOut.length - (outcome.dataOutUsedBytes ?? 0),
      overflowBytes: data.length - deliveredBytes,
      dataInPooled: outcome.dataOwned === true && outcome.inPlace !== true && data.length > 0,
      ...(outcome.heldWrite !== undefined ? { heldWrite: outcome.heldWrite } : {}),
    };
  }

  /**
   * Stores every WRITE's data held since the last call (execute's `dataOutHeld`); returns the `heldWrite` indexes of
   * those the host failed to store, whose commands must be answered with heldWriteFailed() instead of GOOD.
   */
  releaseWrites(): readonly number[] {
    return this.backend.releaseHeld?.() ?? NONE_FAILED;
  }

  /** The answer to a WRITE whose held data the host failed to store: MEDIUM ERROR, WRITE ERROR, as write() gives. */
  heldWriteFailed(dataOutBytes: number): ScsiResult {
    const failed = checkCondition(SENSE_KEY_MEDIUM_ERROR, ASC_WRITE_ERROR);
    return { status: failed.status, sense: failed.sense, residualBytes: dataOutBytes };
  }

  /**
   * The caller is done with a result's `dataIn` (`dataInPooled`: copied into the initiator's buffers, or dropped):
   * its buffer goes back to the pool for a later READ. Not calling it only costs an allocation.
   */
  releaseDataIn(dataIn: Uint8Array): void {
    this.readBuffers.give(dataIn);
  }

  /** Checks common to every command (SAM-5: a pending unit attention comes first), then runs the command. */
  private checkAndDispatch(cdb: Uint8Array, dataOut: Uint8Array): Outcome {
    const opcode = cdb.length > 0 ? (cdb[0] as number) : -1;
    const unitAttention = this.unitAttentions[0];
    if (unitAttention !== undefined && opcode !== OPCODE_INQUIRY && opcode !== OPCODE_REPORT_LUNS && opcode !== OPCODE_REQUEST_SENSE) {
      this.unitAttentions.shift();
      return checkCondition(SENSE_KEY_UNIT_ATTENTION, unitAttention);
    }
    const cdbLength = opcode < 0 ? 0 : cdbLengthOf(opcode);
    if (cdbLength === 0) return checkCondition(SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_COMMAND_OPERATION_CODE);
    if (cdb.length < cdbLength) return checkCondition(SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB);
    // SAM-5, CONTROL byte: no ACA support (NormACA=0), so NACA must be zero; linked commands (LINK) are obsolete.
    const control = cdb[cdbLength - 1] as number;
    if ((control & 0x04) !== 0) return invalidFieldInCdb(cdbLength - 1, 2);
    if ((control & 0x01) !== 0) return invalidFieldInCdb(cdbLength - 1, 0);
    return this.dispatch(opcode, cdb, dataOut);
  }

  private dispatch(opcode: number, cdb: Uint8Array, dataOut: Uint8Array): Outcome {
    switch (opcode) {
      case OPCODE_TEST_UNIT_READY: return GOOD;
      case OPCODE_REQUEST_SENSE: return this.onRequestSense(cdb);
      case OPCODE_INQUIRY: return this.onInquiry(cdb);
      case OPCODE_MODE_SENSE_6: case OPCODE_MODE_SENSE_10: return this.onModeSense(cdb);
      case OPCODE_START_STOP_UNIT: return this.onStartStopUnit(cdb);
      case OPCODE_READ_CAPACITY_10: return this.onReadCapacity10(cdb);
      case OPCODE_SERVICE_ACTION_IN_16: return this.onServiceActionIn16(cdb);
      case OPCODE_READ_6: case OPCODE_READ_10: case OPCODE_READ_12: case OPCODE_READ_16: return this.onRead(cdb);
      case OPCODE_WRITE_6: case OPCODE_WRITE_10: case OPCODE_WRITE_12: case OPCODE_WRITE_16: return this.onWrite(cdb, dataOut);
      case OPCODE_VERIFY_10: case OPCODE_VERIFY_16: return this.onVerify(cdb);
      case OPCODE_SYNCHRONIZE_CACHE_10: case OPCODE_SYNCHRONIZE_CACHE_16: return this.onSynchronizeCache(cdb);
      case OPCODE_WRITE_SAME_10: case OPCODE_WRITE_SAME_16: return this.onWriteSame(cdb, dataOut);
      case OPCODE_UNMAP: return this.onUnmap(cdb, dataOut);
      default: return checkCondition(SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_COMMAND_OPERATION_CODE);
    }
  }

  /** SPC-4, REQUEST SENSE: returns (and clears) the oldest unit attention, else NO SENSE; fixed format only. */
  private onRequestSense(cdb: Uint8Array): Outcome {
    if (((cdb[1] as number) & 0x01) !== 0) return invalidFieldInCdb(1, 0); // DESC: descriptor format not supported
    const unitAttention = this.unitAttentions.shift();
    const sense = unitAttention === undefined
      ? fixedSense(SENSE_KEY_NO_SENSE, ASC_NO_ADDITIONAL_SENSE)
      : fixedSense(SENSE_KEY_UNIT_ATTENTION, unitAttention);
    return cut(sense, cdb[4] as number);
  }

  /** SPC-4, INQUIRY: standard data, or the VPD page named by PAGE CODE when EVPD is one. */
  private onInquiry(cdb: Uint8Array): Outcome {
    const flags = cdb[1] as number;
    const pageCode = cdb[2] as number;
    const allocationLengthBytes = be16(cdb, 3);
    if ((flags & 0x02) !== 0) return invalidFieldInCdb(1, 1); // CMDDT: obsolete, never supported
    if ((flags & 0x01) === 0) {
      if (pageCode !== 0) return invalidFieldInCdb(2); // SPC-4: PAGE CODE must be zero when EVPD is zero
      return cut(this.standardInquiry(), allocationLengthBytes);
    }
    const page = this.vitalProductDataPage(pageCode);
    if (page === null) return invalidFieldInCdb(2);
    return cut(page, allocationLengthBytes);
  }

  // SPC-4, Standard INQUIRY data: |0 qualifier,type|2 VERSION|3 HISUP,RESPONSE DATA FORMAT|4 ADDITIONAL LENGTH|
  // 7 CMDQUE|8-15 vendor|16-31 product|32-35 revision|58-73 version descriptors|
  private standardInquiry(): Uint8Array {
    const data = new Uint8Array(INQUIRY_STANDARD_LENGTH_BYTES);
    data[0] = 0x00; // qualifier 000b (connected), device type 00h (direct access block device)
    data[2] = 0x06; // VERSION: SPC-4
    data[3] = 0x10 | 0x02; // HISUP (hierarchical LUNs), RESPONSE DATA FORMAT 2
    data[4] = INQUIRY_STANDARD_LENGTH_BYTES - 5; // ADDITIONAL LENGTH counts the bytes after byte 4
    data[7] = 0x02; // CMDQUE: the controller queues commands
    data.set(asciiField(this.identity.vendor, 8), 8);
    data.set(asciiField(this.identity.product, 16), 16);
    data.set(asciiField(this.identity.revision, 4), 32);
    const view = new DataView(data.buffer);
    view.setUint16(58, 0x00a0); // SAM-5 (no version claimed)
    view.setUint16(60, 0x0460); // SPC-4 (no version claimed)
    view.setUint16(62, 0x04c0); // SBC-3 (no version claimed)
    return data;
  }

  /** The VPD pages this unit supports, in the ascending order SPC-4 asks the Supported VPD Pages page to list. */
  private vitalProductDataPage(pageCode: number): Uint8Array | null {
    switch (pageCode) {
      case 0x00: return vpdPage(0x00, Uint8Array.of(0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2));
      case 0x80: return vpdPage(0x80, asciiField(this.identity.serial, this.identity.serial.length));
      case 0x83: return vpdPage(0x83, this.deviceIdentificationDesignators());
      case 0xb0: return vpdPage(0xb0, this.blockLimits());
      case 0xb1: return vpdPage(0xb1, blockDeviceCharacteristics());
      case 0xb2: return vpdPage(0xb2, logicalBlockProvisioning());
      default: return null;
    }
  }

  /**
   * SPC-4, Device Identification VPD page: a NAA designator (binary, logical unit association), then a T10 vendor
   * ID designator (ASCII) whose vendor specific part is the product identification and the serial number, as
   * SPC-4 suggests for that format.
   */
  private deviceIdentificationDesignators(): Uint8Array {
    const naa = new Uint8Array(12);
    naa.set([0x01, 0x03, 0x00, 0x08]); // code set 1 (binary); association 00b, type 3h (NAA); length 8
    new DataView(naa.buffer).setBigUint64(4, this.identity.naa);
    const t10Identifier = [...asciiField(this.identity.vendor, 8), ...asciiField(this.identity.product, 16), ...asciiField(this.identity.serial, this.identity.serial.length)];
    const t10 = Uint8Array.of(0x02, 0x01, 0x00, t10Identifier.length, ...t10Identifier); // code set 2 (ASCII); type 1h (T10 vendor ID)
    const designators = new Uint8Array(naa.length + t10.length);
    designators.set(naa, 0);
    designators.set(t10, naa.length);
    return designators;
  }

  // SBC-3, Block Limits VPD page (after the 4-byte header): |0 WSNZ|1 MAXIMUM COMPARE AND WRITE LENGTH|
  // 2-3 OPTIMAL TRANSFER LENGTH GRANULARITY|4-7 MAXIMUM TRANSFER LENGTH|8-11 OPTIMAL TRANSFER LENGTH|
  // 12-15 MAXIMUM PREFETCH LENGTH|16-19 MAXIMUM UNMAP LBA COUNT|20-23 MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT|
  // 24-27 OPTIMAL UNMAP GRANULARITY|28-31 UGAVALID,UNMAP GRANULARITY ALIGNMENT|32-39 MAXIMUM WRITE SAME LENGTH|
  private blockLimits(): Uint8Array {
    const body = new Uint8Array(0x3c);
    const view = new DataView(body.buffer);
    // At least a physical block: writing or unmapping part of one costs a read-modify-write.
    const granularityBlocks = Math.max(1 << this.physicalExponent, TRANSFER_GRANULARITY_OPTIMAL_BYTES / this.backend.blockSize);
    body[0] = 0x01; // WSNZ: a WRITE SAME of zero blocks (meaning "to the end of the medium") is refused
    view.setUint16(2, granularityBlocks);
    view.setUint32(4, this.transferLengthMaxBlocks);
    view.setUint32(8, this.transferLengthMaxBlocks);
    view.setUint32(16, this.unmapLengthMaxBlocks);
    view.setUint32(20, UNMAP_DESCRIPTOR_COUNT_MAX);
    view.setUint32(24, granularityBlocks);
    view.setUint32(28, 0x8000_0000); // UGAVALID, alignment 0
    view.setBigUint64(32, BigInt(this.writeSameLengthMaxBlocks));
    return body;
  }

  /** SPC-4, MODE SENSE (6) and (10): the Caching and Control pages, with or without a block descriptor. */
  private onModeSense(cdb: Uint8Array): Outcome {
    const is10 = cdb[0] === OPCODE_MODE_SENSE_10;
    const flags = cdb[1] as number;
    const pageControl = (cdb[2] as number) >> 6;
    const pageCode = (cdb[2] as number) & 0x3f;
    const subpageCode = cdb[3] as number;
    const allocationLengthBytes = is10 ? be16(cdb, 7) : (cdb[4] as number);
    if (pageControl === 3) {
      return checkCondition(SENSE_KEY_ILLEGAL_REQUEST, ASC_SAVING_PARAMETERS_NOT_SUPPORTED, { fieldPointer: { inCdb: true, byteIndex: 2, bitIndex: 7 } });
    }
    const pages = modePages(pageCode, pageControl === 1);
    if (pages === null) return invalidFieldInCdb(2, 5);
    if (subpageCode !== 0x00 && subpageCode !== 0xff) return invalidFieldInCdb(3); // no page has subpages
    const descriptor = (flags & 0x08) !== 0 ? EMPTY : this.blockDescriptor(is10 && (flags & 0x10) !== 0, pageControl === 1);
    const header = is10 ? modeHeader10(descriptor, pages.length) : modeHeader6(descriptor, pages.length);
    const data = new Uint8Array(header.length + descriptor.length + pages.length);
    data.set(header, 0);
    data.set(descriptor, header.length);
    data.set(pages, header.length + descriptor.length);
    return cut(data, allocationLengthBytes);
  }

  /**
   * SBC-3, Short LBA and Long LBA mode parameter block descriptors; the block count saturates at FFFF_FFFFh in the
   * short form. Changeable values are all zeros: nothing here can be changed (there is no MODE SELECT).
   */
  private blockDescriptor(long: boolean, changeable: boolean): Uint8Array {
    const descriptor = new Uint8Array(long ? 16 : 8);
    if (changeable) return descriptor;
    const view = new DataView(descriptor.buffer);
    if (long) {
      view.setBigUint64(0, this.blockCountBig);
      view.setUint32(12, this.backend.blockSize);
    } else {
      view.setUint32(0, Math.min(this.blockCount, 0xffff_ffff));
      view.setUint32(4, this.backend.blockSize); // byte 4 reserved (zero), bytes 5-7 LOGICAL BLOCK LENGTH
    }
    return descriptor;
  }

  /**
   * SBC-3, START STOP UNIT: there is no motor to start or stop, but a stop without NO_FLUSH must first write
   * cached data to the medium, so it flushes.
   */
  private onStartStopUnit(cdb: Uint8Array): Outcome {
    const flags = cdb[4] as number;
    const start = (flags & 0x01) !== 0;
    const noFlush = (flags & 0x04) !== 0;
    if (!start && !noFlush) return this.flushed(GOOD);
    return GOOD;
  }

  /** SBC-3, READ CAPACITY (10): the last LBA (FFFF_FFFFh when it does not fit) and the block length. */
  private onReadCapacity10(cdb: Uint8Array): Outcome {
    const pmi = ((cdb[8] as number) & 0x01) !== 0;
    if (!pmi && be32(cdb, 2) !== 0) return invalidFieldInCdb(2); // SBC-3: an LBA is meaningful only with PMI
    const data = new Uint8Array(8);
    const view = new DataView(data.buffer);
    view.setUint32(0, Math.min(this.blockCount - 1, 0xffff_ffff));
    view.setUint32(4, this.backend.blockSize);
    return { status: SAM_STATUS_GOOD, data };
  }

  /** SBC-3, SERVICE ACTION IN (16): only READ CAPACITY (16) is implemented. */
  private onServiceActionIn16(cdb: Uint8Array): Outcome {
    if (((cdb[1] as number) & 0x1f) !== SERVICE_ACTION_READ_CAPACITY_16) return invalidFieldInCdb(1, 4);
    const pmi = ((cdb[14] as number) & 0x01) !== 0;
    if (!pmi && be64(cdb, 2) !== 0n) return invalidFieldInCdb(2);
    // SBC-3, READ CAPACITY (16) parameter data: |0-7 last LBA|8-11 block length|12 P_TYPE,PROT_EN|
    // 13 P_I_EXPONENT,LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT|14 LBPME,LBPRZ,LOWEST ALIGNED LBA (MSB)|15 (LSB)|
    const data = new Uint8Array(READ_CAPACITY_16_LENGTH_BYTES);
    const view = new DataView(data.buffer);
    view.setBigUint64(0, this.blockCountBig - 1n);
    view.setUint32(8, this.backend.blockSize);
    data[13] = this.physicalExponent; // P_I_EXPONENT 0
    data[14] = 0x80 | 0x40; // LBPME (UNMAP and WRITE SAME with UNMAP work), LBPRZ (unmapped blocks read as zeros)
    return cut(data, be32(cdb, 10));
  }

  /** SBC-3, READ (6, 10, 12, 16): DPO and FUA need nothing, since every read comes from the backend itself. */
  private onRead(cdb: Uint8Array): Outcome {
    const transfer = decodeBlockTransfer(cdb);
    const refused = this.checkTransfer(transfer);
    if (refused !== null) return refused;
    const lengthBytes = transfer.blockCount * this.backend.blockSize;
    const place = this.dataInPlace;
    const inPlace = place !== undefined && place.length >= lengthBytes;
    const data = inPlace ? place.subarray(0, lengthBytes) : this.readBuffers.take(lengthBytes);
    try {
      this.backend.read(Number(transfer.lba) * this.backend.blockSize, data);
    } catch (error) {
      if (!inPlace) this.readBuffers.give(data);
      if (!(error instanceof DiskIoError)) throw error;
      return checkCondition(SENSE_KEY_MEDIUM_ERROR, ASC_UNRECOVERED_READ_ERROR);
    }
    return { status: SAM_STATUS_GOOD, data, dataOwned: true, inPlace };
  }

  /**
   * SBC-3, WRITE (6, 10, 12, 16): the data is in the backend before GOOD (a held one: before the caller's
   * releaseWrites(), and before it answers); with FUA it is also flushed first, and never held.
   */
  private onWrite(cdb: Uint8Array, dataOut: Uint8Array): Outcome {
    const transfer = decodeBlockTransfer(cdb);
    const refused = this.checkTransfer(transfer);
    if (refused !== null) return refused;
    const lengthBytes = transfer.blockCount * this.backend.blockSize;
    // Less Data-Out than the CDB describes: writing part of a block, or garbage, is worse than refusing.
    if (dataOut.length < lengthBytes) return invalidFieldInCdb(transfer.countByteIndex);
    const offsetBytes = Number(transfer.lba) * this.backend.blockSize;
    const data = dataOut.length === lengthBytes ? dataOut : dataOut.subarray(0, lengthBytes);
    if (this.dataOutHeld && !transfer.fua && this.backend.writeHeld !== undefined) {
      return { status: SAM_STATUS_GOOD, dataOutUsedBytes: lengthBytes, heldWrite: this.backend.writeHeld(offsetBytes, data) };
    }
    const done: Outcome = { status: SAM_STATUS_GOOD, dataOutUsedBytes: lengthBytes };
    const written = this.written(done, () => this.backend.write(offsetBytes, data));
    return transfer.fua && written.status === SAM_STATUS_GOOD ? this.flushed(written) : written;
  }

  /**
   * The checks READ and WRITE share: no protection information (SBC-3: RDPROTECT/WRPROTECT must be zero on a
   * unit formatted without it), the MAXIMUM TRANSFER LENGTH of the Block Limits page, then the capacity.
   */
  private checkTransfer(transfer: BlockTransfer): Outcome | null {
    if (transfer.protect !== 0) return invalidFieldInCdb(1, 7);
    if (transfer.blockCount > this.transferLengthMaxBlocks) return invalidFieldInCdb(transfer.countByteIndex);
    return this.checkRange(transfer.lba, transfer.blockCount);
  }

  /** SBC-3: LOGICAL BLOCK ADDRESS OUT OF RANGE when the LBA, or the LBA plus the count, passes the last block. */
  private checkRange(lba: bigint, blockCount: number): Outcome | null {
    if (lba >= this.blockCountBig || BigInt(blockCount) > this.blockCountBig - lba) return lbaOutOfRange();
    return null;
  }

  /**
   * SBC-3, VERIFY (10) and (16) with BYTCHK 00b: the backend has no media errors to find, so a verify in range
   * succeeds. Comparing against Data-Out (BYTCHK 01b, 11b) is not implemented and is refused.
   */
  private onVerify(cdb: Uint8Array): Outcome {
    const is16 = cdb[0] === OPCODE_VERIFY_16;
    const flags = cdb[1] as number;
    const lba = is16 ? be64(cdb, 2) : BigInt(be32(cdb, 2));
    const blockCount = is16 ? be32(cdb, 10) : be16(cdb, 7);
    if (flags >> 5 !== 0) return invalidFieldInCdb(1, 7); // VRPROTECT: no protection information
    if ((flags & 0x06) !== 0) return invalidFieldInCdb(1, 2); // BYTCHK
    if (blockCount > this.transferLengthMaxBlocks) return invalidFieldInCdb(is16 ? 10 : 7); // SBC-3: VERIFICATION LENGTH is bound by it too
    return this.checkRange(lba, blockCount) ?? GOOD;
  }

  /** SBC-3, SYNCHRONIZE CACHE (10) and (16): a count of zero means to the end of the medium; the whole disk is flushed. */
  private onSynchronizeCache(cdb: Uint8Array): Outcome {
    const is16 = cdb[0] === OPCODE_SYNCHRONIZE_CACHE_16;
    const lba = is16 ? be64(cdb, 2) : BigInt(be32(cdb, 2));
    const blockCount = is16 ? be32(cdb, 10) : be16(cdb, 7);
    const refused = this.checkRange(lba, blockCount);
    if (refused !== null) return refused;
    return this.flushed(GOOD); // IMMED may ask for early status, but flushing first is always allowed
  }

  /**
   * SBC-3, WRITE SAME (10) and (16). With UNMAP set and a block of zeros the range is deallocated: LBPRZ=1 makes
   * it read back as the zeros sent. With UNMAP set and any other data the blocks are written, since SBC-3 lets a
   * deallocate request stand only where later reads return the data sent.
   */
  private onWriteSame(cdb: Uint8Array, dataOut: Uint8Array): Outcome {
    const is16 = cdb[0] === OPCODE_WRITE_SAME_16;
    const flags = cdb[1] as number;
    const lba = is16 ? be64(cdb, 2) : BigInt(be32(cdb, 2));
    const blockCount = is16 ? be32(cdb, 10) : be16(cdb, 7);
    const countByteIndex = is16 ? 10 : 7;
    if (flags >> 5 !== 0) return invalidFieldInCdb(1, 7); // WRPROTECT: no protection information
    if ((flags & 0x10) !== 0) return invalidFieldInCdb(1, 4); // ANCHOR: ANC_SUP is zero
    if ((flags & 0x06) !== 0) return invalidFieldInCdb(1, 2); // PBDATA, LBDATA: obsolete, not supported
    if ((flags & 0x01) !== 0) return invalidFieldInCdb(1, 0); // NDOB in (16), reserved in (10): a block must be sent
    if (blockCount === 0) return invalidFieldInCdb(countByteIndex); // WSNZ=1
    if (blockCount > this.writeSameLengthMaxBlocks) return invalidFieldInCdb(countByteIndex);
    const refused = this.checkRange(lba, blockCount);
    if (refused !== null) return refused;
    const blockSize = this.backend.blockSize;
    if (dataOut.length < blockSize) return invalidFieldInCdb(countByteIndex);
    const block = dataOut.subarray(0, blockSize);
    const done: Outcome = { status: SAM_STATUS_GOOD, dataOutUsedBytes: blockSize };
    const offsetBytes = Number(lba) * blockSize;
    if ((flags & 0x08) !== 0 && block.every((byte) => byte === 0)) {
      return this.written(done, () => this.backend.unmap(offsetBytes, blockCount * blockSize));
    }
    return this.written(done, () => this.writeRepeated(offsetBytes, block, blockCount));
  }

  /** Writes `block` to `blockCount` blocks, at most one MAXIMUM TRANSFER LENGTH per backend call. */
  private writeRepeated(offsetBytes: number, block: Uint8Array, blockCount: number): void {
    const batchBlockCount = Math.min(blockCount, this.transferLengthMaxBlocks);
    const batch = new Uint8Array(batchBlockCount * block.length);
    for (let index = 0; index < batchBlockCount; index += 1) batch.set(block, index * block.length);
    for (let doneBlockCount = 0; doneBlockCount < blockCount; doneBlockCount += batchBlockCount) {
      const stepBlockCount = Math.min(batchBlockCount, blockCount - doneBlockCount);
      this.backend.write(offsetBytes + doneBlockCount * block.length, batch.subarray(0, stepBlockCount * block.length));
    }
  }

  /**
   * SBC-3, UNMAP. Every descriptor is checked before any block is deallocated, so a refused command changes
   * nothing. Descriptors cut short by the parameter list length or the block descriptor data length are ignored.
   */
  private onUnmap(cdb: Uint8Array, dataOut: Uint8Array): Outcome {
    if (((cdb[1] as number) & 0x01) !== 0) return invalidFieldInCdb(1, 0); // ANCHOR: ANC_SUP is zero
    const parameterListLengthBytes = be16(cdb, 7);
    if (parameterListLengthBytes === 0) return GOOD; // SBC-3: no data, not an error
    if (parameterListLengthBytes < 8 || dataOut.length < parameterListLengthBytes) {
      return checkCondition(SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR, { fieldPointer: { inCdb: true, byteIndex: 7 } });
    }
    const list = dataOut.subarray(0, parameterListLengthBytes);
    const descriptorBytes = Math.min(be16(list, 2), parameterListLengthBytes - 8);
    const descriptorCount = Math.floor(descriptorBytes / 16);
    if (descriptorCount > UNMAP_DESCRIPTOR_COUNT_MAX) return invalidFieldInParameterList(2);
    const ranges: Array<{ lba: bigint; blockCount: number }> = [];
    let totalBlockCount = 0;
    for (let index = 0; index < descriptorCount; index += 1) {
      const at = 8 + 16 * index; // UNMAP block descriptor: |0-7 LBA|8-11 NUMBER OF LOGICAL BLOCKS|12-15 reserved|
      const range = { lba: be64(list, at), blockCount: be32(list, at + 8) };
      totalBlockCount += range.blockCount;
      if (totalBlockCount > this.unmapLengthMaxBlocks) return invalidFieldInParameterList(at + 8);
      if (range.blockCount === 0) continue; // SBC-3: nothing to unmap, not an error
      const refused = this.checkRange(range.lba, range.blockCount);
      if (refused !== null) return refused;
      ranges.push(range);
    }
    const blockSize = this.backend.blockSize;
    const done: Outcome = { status: SAM_STATUS_GOOD, dataOutUsedBytes: parameterListLengthBytes };
    return this.written(done, () => {
      for (const range of ranges) this.backend.unmap(Number(range.lba) * blockSize, range.blockCount * blockSize);
    });
  }

  /** Runs a backend change; a host I/O failure becomes MEDIUM ERROR / WRITE ERROR instead of a crash. */
  private written(done: Outcome, change: () => void): Outcome {
    try {
      change();
    } catch (error) {
      if (!(error instanceof DiskIoError)) throw error;
      return checkCondition(SENSE_KEY_MEDIUM_ERROR, ASC_WRITE_ERROR);
    }
    return done;
  }

  private flushed(done: Outcome): Outcome {
    return this.written(done, () => this.backend.flush());
  }
}

/** SPC-4, VPD page header: |0 qualifier,type|1 PAGE CODE|2-3 PAGE LENGTH| then the page's own bytes. */
function vpdPage(pageCode: number, body: Uint8Array): Uint8Array {
  const page = new Uint8Array(4 + body.length);
  page[1] = pageCode;
  new DataView(page.buffer).setUint16(2, body.length);
  page.set(body, 4);
  return page;
}

/** SBC-3, Block Device Characteristics VPD page: MEDIUM ROTATION RATE 0001h, a non-rotating medium. */
function blockDeviceCharacteristics(): Uint8Array {
  const body = new Uint8Array(0x3c);
  body[1] = 0x01;
  return body;
}

/**
 * SBC-3, Logical Block Provisioning VPD page: |0 THRESHOLD EXPONENT|1 LBPU,LBPWS,LBPWS10,-,-,LBPRZ,ANC_SUP,DP|
 * 2 PROVISIONING TYPE|3 reserved|. UNMAP and WRITE SAME (16) and (10) with UNMAP work, unmapped blocks read as
 * zeros, no anchoring, thin provisioned (both backends are sparse).
 */
function logicalBlockProvisioning(): Uint8Array {
  return Uint8Array.of(0x00, 0x80 | 0x40 | 0x20 | 0x04, 0x02, 0x00);
}

/**
 * SBC-3, Caching mode page (08h, WCE=1: writes may sit in the host's page cache until SYNCHRONIZE CACHE or FUA)
 * and SPC-4, Control mode page (0Ah, all zeros: D_SENSE=0 so sense is fixed format), in ascending page order
 * for 3Fh. Changeable values are zero masks; current and default values are the same. Null: page not supported.
 */
function modePages(pageCode: number, changeable: boolean): Uint8Array | null {
  const caching = new Uint8Array(20);
  caching.set([0x08, 0x12, changeable ? 0x00 : 0x04]);
  const control = new Uint8Array(12);
  control.set([0x0a, 0x0a]);
  switch (pageCode) {
    case 0x08: return caching;
    case 0x0a: return control;
    case 0x3f: return Uint8Array.of(...caching, ...control);
    default: return null;
  }
}

// SPC-4, Mode parameter header (6): |0 MODE DATA LENGTH|1 MEDIUM TYPE|2 DEVICE-SPECIFIC PARAMETER|3 BLOCK DESCRIPTOR LENGTH|
// SBC-3 device-specific parameter: WP (bit 7) zero, DPOFUA (bit 4) one since DPO and FUA are accepted.
const DEVICE_SPECIFIC_DPOFUA = 0x10;

function modeHeader6(descriptor: Uint8Array, pagesLengthBytes: number): Uint8Array {
  return Uint8Array.of(3 + descriptor.length + pagesLengthBytes, 0x00, DEVICE_SPECIFIC_DPOFUA, descriptor.length);
}

// SPC-4, Mode parameter header (10): |0-1 MODE DATA LENGTH|2 MEDIUM TYPE|3 DEVICE-SPECIFIC PARAMETER|4 LONGLBA|
// 5 reserved|6-7 BLOCK DESCRIPTOR LENGTH|
function modeHeader10(descriptor: Uint8Array, pagesLengthBytes: number): Uint8Array {
  const header = new Uint8Array(8);
  const view = new DataView(header.buffer);
  view.setUint16(0, 6 + descriptor.length + pagesLengthBytes);
  header[3] = DEVICE_SPECIFIC_DPOFUA;
  header[4] = descriptor.length === 16 ? 0x01 : 0x00;
  view.setUint16(6, descriptor.length);
  return header;
}
