// The command set: each CDB's fields decoded and checked (SBC-3, SPC-4), and the parameter data the target builds
// itself. A decoder fills the task's program, range, transfer sizes and area, or leaves CHECK CONDITION in the
// record and answers false; the target (target.ts) moves the data and completes the command.
import { FrameFunction } from "../board/frame";
import { BUFFER_CLASS_LARGE, BUFFER_CLASS_PAGE } from "../config";
import { volumeAt, volumesCount } from "../volumes/volume";
import { cdbBe16, cdbBe24, cdbBe32, cdbBe64, cdbU8, putBe32, putBe64 } from "./cdb";
import {
  OP_INQUIRY, OP_MAINTENANCE_IN, OP_MODE_SENSE_10, OP_MODE_SENSE_6, OP_ORWRITE_16, OP_PERSISTENT_RESERVE_IN,
  OP_PRE_FETCH_10, OP_READ_10, OP_READ_12, OP_READ_6, OP_READ_CAPACITY_10, OP_READ_DEFECT_DATA_10,
  OP_READ_DEFECT_DATA_12, OP_RECEIVE_COPY_RESULTS, OP_REPORT_LUNS, OP_REQUEST_SENSE, OP_SERVICE_ACTION_IN_16,
  OP_SYNCHRONIZE_CACHE_16, OP_VERIFY_10, OP_VERIFY_12, OP_WRITE_10, OP_WRITE_12, OP_WRITE_6, OP_WRITE_AND_VERIFY_10,
  OP_WRITE_AND_VERIFY_12, OP_WRITE_ATOMIC_16, OP_WRITE_SAME_16, SA_GET_LBA_STATUS, SA_READ_CAPACITY_16,
  SA_REPORT_REFERRALS, SA_REPORT_SUPPORTED_OPERATION_CODES, SA_REPORT_TARGET_PORT_GROUPS,
} from "../protocol/scsi_opcodes";
import { REFERRALS_FAILED, reportReferrals, reportTargetPortGroups } from "./alua";
import { COPY_CHUNK_BYTES, COPY_LIST_AREA_BYTES, COPY_PARAMETER_LIST_BYTES_MAX, copyResultsBuild, RCR_FAILED } from "./copy";
import { ScsiDirection, ScsiResidual } from "./interface";
import {
  ATOMIC_ALIGNMENT_BLOCKS, ATOMIC_GRANULARITY_BLOCKS, COMPARE_AND_WRITE_BLOCKS_MAX, DATA_IN_BYTES_MAX, limitAtomicBytes, limitTransferBytes, PARAMETER_LIST_BYTES_MAX, WRITE_SAME_BYTES_MAX,
} from "./limits";
import { MODE_PC_SAVED, modePageKnown, modeSenseBuild, modeWriteCacheEnabled } from "./mode";
import { nexusTargetPort } from "./identities";
import { uaTake } from "./nexus";
import { targetLunAt, targetLunsCount, targetLunsKnown } from "./target_luns";
import { OPCODES_INVALID, opcodesAll, opcodesOne, REPORTING_OPCODE_SA_IF_ANY, tmfsSupported } from "./opcodes";
import { PR_OUT_LIST_BYTES } from "./pr_out";
import { prReadFullStatus, prReadKeys, prReadReservation, prReportCapabilities } from "./reservations";
import {
  ASC_INVALID_FIELD_IN_CDB, ASC_INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT, ASC_LBA_OUT_OF_RANGE, ASC_LOGICAL_UNIT_NOT_SUPPORTED,
  ASC_NO_ADDITIONAL_SENSE, ASC_PARAMETER_LIST_LENGTH_ERROR, ASC_SAVING_PARAMETERS_NOT_SUPPORTED, fieldInCdb, senseFixed,
} from "./sense";
import { SENSE_KEY_ILLEGAL_REQUEST, SENSE_KEY_NO_SENSE, SENSE_KEY_UNIT_ATTENTION } from "../protocol/sense_keys";
import {
  scsiTaskAreaAddress, scsiTaskAreaWant, scsiTaskBlockCount, scsiTaskCheck, scsiTaskDirection, scsiTaskExpectedTransferBytes,
  scsiTaskFlagSet, scsiTaskLun, scsiTaskNexus, scsiTaskNexusSlot, scsiTaskSetBlockBytes, scsiTaskSetBlockCount,
  scsiTaskSetCopyChunkBytes, scsiTaskSetDataOutBytes, scsiTaskSetLba, scsiTaskSetOptions, scsiTaskSetProgram, scsiTaskSetResidual,
  scsiTaskSetTransferBytes, scsiTaskTransferBytes, TASK_FLAG_DATA_IN, TASK_FLAG_DATA_OUT, scsiTaskServiceBlocks,
  scsiTaskServiceFunction, scsiTaskServiceLba, scsiTaskServiceOffset,
} from "./tasks";
import { sanitizeErased, sanitizeSense } from "./sanitize";
import { inquiryStandard, vpdPage } from "./vpd";
import { writeProtected } from "./write_protect";
import { SA_RECEIVE_ROD_TOKEN_INFORMATION, tokenInformation, TOKEN_INFO_FAILED } from "./token_copy";

/** How the target runs a command once decoded (target.ts, advance). */
export enum Program {
  None = 0, // answered at once
  DataIn = 1, // parameter data built into a page buffer
  Read = 2, // READ
  Write = 3, // Data-Out, WRITE
  VerifyCompare = 4, // VERIFY with BYTCHK: Data-Out, READ into the area's second part, compare
  WriteVerify = 5, // WRITE AND VERIFY: Data-Out, WRITE with FUA, and with BYTCHK READ back and compare
  CompareWrite = 6, // COMPARE AND WRITE: Data-Out, lock, READ, compare, WRITE, unlock
  WriteSame = 7, // WRITE SAME: one block (or none), then WRITE or UNMAP chunks
  Unmap = 8, // UNMAP: the parameter list, then one UNMAP service per descriptor
  ParameterOut = 9, // MODE SELECT, PERSISTENT RESERVE OUT: the parameter list, then the handler
  Flush = 10, // SYNCHRONIZE CACHE, START STOP UNIT (stop): a FLUSH service
  OrWrite = 11, // ORWRITE: Data-Out, lock, READ behind it, OR into it, WRITE, unlock
  ExtendedCopy = 12, // EXTENDED COPY: the parameter list, then per segment READ and WRITE chunks (copy.ts)
  Sanitize = 13, // SANITIZE: the parameter list, then the medium goes to a worker; waits for it unless IMMED (sanitize.ts)
  SanitizeWork = 14, // the sanitize operation's own record: WRITE or UNMAP chunks over the whole medium (sanitize.ts)
  TokenWrite = 15, // WRITE USING TOKEN: the parameter list, then per range READ and WRITE chunks as EXTENDED COPY (token_copy.ts)
}

// Task options (record byte 228).
export const OPT_FUA: u32 = 1; // writes go to the medium before GOOD
export const OPT_BYTCHK: u32 = 2; // compare against the Data-Out
export const OPT_ONE_BLOCK: u32 = 4; // VERIFY BYTCHK 11b: one block compared with every block
export const OPT_UNMAP: u32 = 8; // WRITE SAME with UNMAP
export const OPT_NDOB: u32 = 16; // WRITE SAME (16) without a Data-Out buffer: zeros
export const OPT_DEALLOCATE: u32 = 32; // WRITE SAME decided to unmap (UNMAP and a block of zeros)
export const OPT_REPEAT: u32 = 64; // the service SGL repeats the area's first buffer (WRITE SAME)

export const DATA_IN_FAILED: u32 = 0xffff_ffff;

function invalidField(t: u32, byteIndex: u32, bitIndex: u32 = 0xff): bool {
  scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, fieldInCdb(byteIndex, bitIndex));
  return false;
}

/** SBC-3: LOGICAL BLOCK ADDRESS OUT OF RANGE when the LBA is past the last block, or the range runs past it. */
function rangeOk(t: u32, lba: u64, blockCount: u64): bool {
  const capacity = volumeAt(scsiTaskLun(t)).blockCount;
  if (lba >= capacity || blockCount > capacity - lba) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
    return false;
  }
  return true;
}

/** The expected transfer length if the transport's direction is `direction`, else 0 (no data that way). */
function expectedBytes(t: u32, direction: ScsiDirection): u32 {
  return scsiTaskDirection(t) == direction ? scsiTaskExpectedTransferBytes(t) : 0;
}

// Data-Out shorter than the command needs (the expected length below the CDB's length). SAM-5 lets the device server
// either move what came and report the overflow, or refuse the command; RFC 7143, SCSI Response (Residual Count), has
// the refusal as CHECK CONDITION with ILLEGAL REQUEST, INVALID FIELD IN COMMAND INFORMATION UNIT. The rule here: a
// command that can act on whole units of what came does so (WRITE, WRITE AND VERIFY, ORWRITE and VERIFY on whole
// blocks, nothing at all when nothing came) with GOOD and an overflow residual; a partial block, or a command that
// cannot be split (WRITE ATOMIC, WRITE SAME's one block, a parameter list), is refused before any of it is asked for,
// so nothing changes. Data acknowledged with GOOD is always data written. The refusal still reports the overflow:
// RFC 7143 says the Residual Count is valid whenever O or U is set, whatever the status, and iscsi-test-cu's WRITE
// residual tests read it after the refusal too.
function shortDataOut(t: u32, neededBytes: u32, expectedBytesOut: u32): bool {
  assert(expectedBytesOut < neededBytes, "scsi: a short Data-Out is shorter than needed");
  scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_COMMAND_INFORMATION_UNIT);
  scsiTaskSetResidual(t, ScsiResidual.Overflow, neededBytes - expectedBytesOut);
  return false;
}

function blockBytesOf(t: u32): u32 { return volumeAt(scsiTaskLun(t)).blockSizeBytes; }

function areaClass(bytes: u32): u32 { return bytes <= DATA_IN_BYTES_MAX ? BUFFER_CLASS_PAGE : BUFFER_CLASS_LARGE; }

// Block commands.

/**
 * READ and WRITE (6, 10, 12, 16), and WRITE AND VERIFY (10, 12, 16): LBA, transfer length and FUA into the record
 * (SBC-3: a transfer length of 0 means 256 blocks in the 6-byte CDBs only). Checks the MAXIMUM TRANSFER LENGTH,
 * then the range. Answers the CDB byte of the TRANSFER LENGTH field, or 0 when the record holds CHECK CONDITION.
 */
function decodeTransfer(t: u32, opcode: u32): u32 {
  let lba: u64;
  let count: u32;
  let countByte: u32;
  if (opcode == OP_READ_6 || opcode == OP_WRITE_6) {
    lba = <u64>(cdbBe24(t, 1) & 0x1f_ffff);
    count = cdbU8(t, 4) == 0 ? 256 : cdbU8(t, 4);
    countByte = 4;
  } else if (opcode == OP_READ_10 || opcode == OP_WRITE_10 || opcode == OP_WRITE_AND_VERIFY_10 || opcode == OP_VERIFY_10) {
    lba = <u64>cdbBe32(t, 2);
    count = cdbBe16(t, 7);
    countByte = 7;
  } else if (opcode == OP_READ_12 || opcode == OP_WRITE_12 || opcode == OP_WRITE_AND_VERIFY_12 || opcode == OP_VERIFY_12) {
    lba = <u64>cdbBe32(t, 2);
    count = cdbBe32(t, 6);
    countByte = 6;
  } else if (opcode == OP_WRITE_ATOMIC_16) {
    lba = cdbBe64(t, 2);
    count = cdbBe16(t, 12);
    countByte = 12;
  } else {
    lba = cdbBe64(t, 2);
    count = cdbBe32(t, 10);
    countByte = 10;
  }
  const blockBytes = blockBytesOf(t);
  scsiTaskSetBlockBytes(t, blockBytes);
  scsiTaskSetLba(t, lba);
  if (<u64>count * blockBytes > <u64>limitTransferBytes()) { invalidField(t, countByte); return 0; }
  if (!rangeOk(t, lba, count)) return 0;
  scsiTaskSetBlockCount(t, count);
  return countByte;
}

function fuaOf(t: u32): u32 {
  return (cdbU8(t, 1) & 0x08) != 0 || !modeWriteCacheEnabled(scsiTaskLun(t)) ? OPT_FUA : 0;
}

/** READ: moves ceil(Data-In / block) blocks, where Data-In is the transfer cut to the expected length. */
export function decodeRead(t: u32, opcode: u32): bool {
  if (decodeTransfer(t, opcode) == 0) return false;
  const blockBytes = blockBytesOf(t);
  const transferBytes = scsiTaskBlockCount(t) * blockBytes;
  const dataInBytes = min(transferBytes, expectedBytes(t, ScsiDirection.Read));
  const blocks = (dataInBytes + blockBytes - 1) / blockBytes;
  scsiTaskFlagSet(t, TASK_FLAG_DATA_IN, true);
  scsiTaskSetTransferBytes(t, transferBytes);
  scsiTaskSetBlockCount(t, blocks);
  scsiTaskSetProgram(t, blocks == 0 ? Program.None : Program.Read);
  if (blocks > 0) scsiTaskAreaWant(t, BUFFER_CLASS_LARGE, blocks * blockBytes);
  return true;
}

/**
 * WRITE and WRITE AND VERIFY: asks for the transfer cut to the expected length and writes exactly that when it is
 * whole blocks (GOOD, with an overflow residual for the blocks that did not come); an expected length that ends
 * inside a block is refused (shortDataOut), so no block is ever dropped or torn behind a GOOD.
 */
export function decodeWrite(t: u32, opcode: u32, verify: bool): bool {
  if (decodeTransfer(t, opcode) == 0) return false;
  const blockBytes = blockBytesOf(t);
  const transferBytes = scsiTaskBlockCount(t) * blockBytes;
  const expected = expectedBytes(t, ScsiDirection.Write);
  const dataOutBytes = min(transferBytes, expected);
  if (dataOutBytes % blockBytes != 0) return shortDataOut(t, transferBytes, expected);
  scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
  scsiTaskSetTransferBytes(t, transferBytes);
  scsiTaskSetDataOutBytes(t, dataOutBytes);
  scsiTaskSetBlockCount(t, dataOutBytes / blockBytes);
  let options = fuaOf(t);
  if (verify) options |= OPT_FUA | ((cdbU8(t, 1) & 0x02) != 0 ? OPT_BYTCHK : 0);
  scsiTaskSetOptions(t, options);
  scsiTaskSetProgram(t, dataOutBytes == 0 ? Program.None : verify ? Program.WriteVerify : Program.Write);
  if (dataOutBytes == 0) return true;
  // With BYTCHK the blocks are read back behind the Data-Out, from a block boundary.
  const dataOutArea = roundUp(dataOutBytes, blockBytes);
  scsiTaskAreaWant(t, BUFFER_CLASS_LARGE, (options & OPT_BYTCHK) != 0 ? 2 * dataOutArea : dataOutArea);
  return true;
}

/**
 * VERIFY (10, 12, 16): BYTCHK 00b checks the range only (the medium has nothing to find); 01b compares the blocks
 * with as many blocks of Data-Out; 11b compares each block with one block of Data-Out; 10b is reserved.
 */
export function decodeVerify(t: u32, opcode: u32): bool {
  const bytchk = (cdbU8(t, 1) >> 1) & 0x03;
  if (bytchk == 2) return invalidField(t, 1, 2);
  let lba: u64;
  let count: u32;
  let countByte: u32;
  if (opcode == OP_VERIFY_10) { lba = <u64>cdbBe32(t, 2); count = cdbBe16(t, 7); countByte = 7; }
  else if (opcode == OP_VERIFY_12) { lba = <u64>cdbBe32(t, 2); count = cdbBe32(t, 6); countByte = 6; }
  else { lba = cdbBe64(t, 2); count = cdbBe32(t, 10); countByte = 10; }
  const blockBytes = blockBytesOf(t);
  scsiTaskSetBlockBytes(t, blockBytes);
  if (bytchk != 0 && <u64>count * blockBytes > <u64>limitTransferBytes()) return invalidField(t, countByte);
  if (!rangeOk(t, lba, count)) return false;
  scsiTaskSetLba(t, lba);
  scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
  if (bytchk == 0 || count == 0) return true; // Program.None: nothing moves
  const transferBytes = bytchk == 1 ? count * blockBytes : blockBytes;
  const expected = expectedBytes(t, ScsiDirection.Write);
  const dataOutBytes = min(transferBytes, expected);
  // Like WRITE (shortDataOut): the whole blocks that came are compared, GOOD with an overflow for the rest, and with
  // none nothing is; a Data-Out that ends inside a block is refused rather than half compared.
  if (dataOutBytes % blockBytes != 0) return shortDataOut(t, transferBytes, expected);
  scsiTaskSetTransferBytes(t, transferBytes);
  scsiTaskSetDataOutBytes(t, dataOutBytes);
  const blocks = bytchk == 1 ? dataOutBytes / blockBytes : dataOutBytes == blockBytes ? count : 0;
  scsiTaskSetBlockCount(t, blocks);
  scsiTaskSetOptions(t, OPT_BYTCHK | (bytchk == 3 ? OPT_ONE_BLOCK : 0));
  if (blocks == 0) return true;
  scsiTaskSetProgram(t, Program.VerifyCompare);
  scsiTaskAreaWant(t, BUFFER_CLASS_LARGE, roundUp(dataOutBytes, blockBytes) + blocks * blockBytes);
  return true;
}

/**
 * PRE-FETCH (10, 16): the range is checked and nothing else happens: the target keeps no cache of the medium, so
 * GOOD (SBC-3: the blocks do not fit in a cache) rather than CONDITION MET; IMMED changes nothing. 0 blocks is GOOD.
 */
export function decodePrefetch(t: u32, opcode: u32): bool {
  const is10 = opcode == OP_PRE_FETCH_10;
  const lba: u64 = is10 ? <u64>cdbBe32(t, 2) : cdbBe64(t, 2);
  const count: u32 = is10 ? cdbBe16(t, 7) : cdbBe32(t, 10);
  return rangeOk(t, lba, count);
}

/**
 * COMPARE AND WRITE: 2 × NUMBER OF LOGICAL BLOCKS of Data-Out, exactly (verify instance, then write instance): an
 * expected length short of both is refused as any short Data-Out is (shortDataOut), a longer one as INVALID FIELD
 * IN CDB (iscsi-test-cu's CompareAndWrite.InvalidDataOutSize wants both refused).
 */
export function decodeCompareAndWrite(t: u32): bool {
  const lba = cdbBe64(t, 2);
  const count = cdbU8(t, 13);
  const blockBytes = blockBytesOf(t);
  scsiTaskSetBlockBytes(t, blockBytes);
  if (count > COMPARE_AND_WRITE_BLOCKS_MAX) return invalidField(t, 13);
  if (!rangeOk(t, lba, count)) return false;
  scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
  // The Data-Out must be both instances exactly; a count of zero with data (an initiator that truncated 256 to the
  // byte's 0) is a count the initiator did not mean, so it is refused like any other count beyond the limit.
  const transferBytes: u32 = 2 * count * blockBytes;
  const expected = expectedBytes(t, ScsiDirection.Write);
  if (expected < transferBytes) return shortDataOut(t, transferBytes, expected);
  if (expected > transferBytes) return invalidField(t, 13);
  if (count == 0) return true; // SBC-3: nothing compared, nothing written, not an error
  scsiTaskSetLba(t, lba);
  scsiTaskSetBlockCount(t, count);
  scsiTaskSetTransferBytes(t, transferBytes);
  scsiTaskSetDataOutBytes(t, transferBytes);
  scsiTaskSetOptions(t, fuaOf(t));
  scsiTaskSetProgram(t, Program.CompareWrite);
  scsiTaskAreaWant(t, BUFFER_CLASS_LARGE, 3 * count * blockBytes);
  return true;
}

/**
 * WRITE ATOMIC (16), SBC-4: a WRITE of at most MAXIMUM ATOMIC TRANSFER LENGTH, a multiple of the granularity, at an
 * aligned LBA, with no ATOMIC BOUNDARY (MAXIMUM ATOMIC BOUNDARY SIZE is 0); each violation is INVALID FIELD IN CDB.
 * It runs as one write service, never split: so an expected length short of the transfer, even by whole blocks, is
 * refused (shortDataOut) rather than written in part. 0 blocks is GOOD.
 */
export function decodeWriteAtomic(t: u32): bool {
  const lba = cdbBe64(t, 2);
  const count = cdbBe16(t, 12);
  const blockBytes = blockBytesOf(t);
  scsiTaskSetBlockBytes(t, blockBytes);
  if (cdbBe16(t, 10) != 0) return invalidField(t, 10);
  if (<u64>count * blockBytes > <u64>limitAtomicBytes() || count % ATOMIC_GRANULARITY_BLOCKS != 0) return invalidField(t, 12);
  if (lba % <u64>ATOMIC_ALIGNMENT_BLOCKS != 0) return invalidField(t, 2);
  if (!decodeWrite(t, OP_WRITE_ATOMIC_16, false)) return false;
  const transferBytes = scsiTaskTransferBytes(t);
  const expected = expectedBytes(t, ScsiDirection.Write);
  if (expected < transferBytes) return shortDataOut(t, transferBytes, expected);
  return true;
}

/**
 * ORWRITE (16), SBC-3: the blocks read, each byte ORed with the Data-Out, written back, under the logical unit's
 * COMPARE AND WRITE lock. At most MAXIMUM TRANSFER LENGTH; the Data-Out cut to the expected length, like WRITE:
 * whole blocks of it, or refused when it ends inside a block (shortDataOut). ORPROTECT is refused by the CDB usage
 * data; 0 blocks is GOOD.
 */
export function decodeOrWrite(t: u32): bool {
  if (decodeTransfer(t, OP_ORWRITE_16) == 0) return false;
  const blockBytes = blockBytesOf(t);
  const transferBytes = scsiTaskBlockCount(t) * blockBytes;
  const expected = expectedBytes(t, ScsiDirection.Write);
  const dataOutBytes = min(transferBytes, expected);
  if (dataOutBytes % blockBytes != 0) return shortDataOut(t, transferBytes, expected);
  const blocks = dataOutBytes / blockBytes;
  scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
  scsiTaskSetTransferBytes(t, transferBytes);
  scsiTaskSetDataOutBytes(t, dataOutBytes);
  scsiTaskSetBlockCount(t, blocks);
  scsiTaskSetOptions(t, fuaOf(t));
  scsiTaskSetProgram(t, dataOutBytes == 0 ? Program.None : Program.OrWrite);
  if (dataOutBytes == 0) return true;
  // The blocks read back land behind the Data-Out, from a block boundary.
  scsiTaskAreaWant(t, BUFFER_CLASS_LARGE, roundUp(dataOutBytes, blockBytes) + max(blocks, 1) * blockBytes);
  return true;
}

/**
 * WRITE SAME (10, 16): WSNZ is 0, so a zero count means through the last LBA; either way at most MAXIMUM WRITE SAME
 * LENGTH (written in chunks); exactly one block of Data-Out unless NDOB (16 only), which means a block of zeros. An
 * expected length short of the block is refused (shortDataOut: the block cannot be written in part, nor skipped
 * behind a GOOD); a longer one is refused too, as INVALID FIELD IN CDB (iscsi-test-cu's WriteSame10 and
 * WriteSame16 InvalidDataOutSize require a refusal; tgt answers PARAMETER LIST LENGTH ERROR).
 */
export function decodeWriteSame(t: u32, opcode: u32): bool {
  const is16 = opcode == OP_WRITE_SAME_16;
  const lba: u64 = is16 ? cdbBe64(t, 2) : <u64>cdbBe32(t, 2);
  const count = is16 ? cdbBe32(t, 10) : cdbBe16(t, 7);
  const countByte: u32 = is16 ? 10 : 7;
  const flags = cdbU8(t, 1);
  const ndob = is16 && (flags & 0x01) != 0;
  const blockBytes = blockBytesOf(t);
  assert(blockBytes <= 65536 && 65536 % blockBytes == 0, "scsi: WRITE SAME replicates blocks over one 64 KiB buffer");
  scsiTaskSetBlockBytes(t, blockBytes);
  let blocks: u64 = <u64>count;
  if (count == 0) { // WSNZ 0: from the LBA through the last one
    const capacity = volumeAt(scsiTaskLun(t)).blockCount;
    if (lba >= capacity) return rangeOk(t, lba, 1);
    blocks = capacity - lba;
  }
  if (blocks * blockBytes > <u64>WRITE_SAME_BYTES_MAX) return invalidField(t, countByte); // also a count of 0
  if (!rangeOk(t, lba, blocks)) return false;
  const dataOutBytes: u32 = ndob ? 0 : blockBytes;
  const expected = expectedBytes(t, ScsiDirection.Write);
  if (expected < dataOutBytes) return shortDataOut(t, dataOutBytes, expected);
  if (!ndob && expected > dataOutBytes) return invalidField(t, countByte);
  scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
  scsiTaskSetLba(t, lba);
  scsiTaskSetBlockCount(t, <u32>blocks);
  scsiTaskSetTransferBytes(t, dataOutBytes);
  scsiTaskSetDataOutBytes(t, dataOutBytes);
  scsiTaskSetOptions(t, fuaOf(t) | ((flags & 0x08) != 0 ? OPT_UNMAP : 0) | (ndob ? OPT_NDOB : 0));
  scsiTaskSetProgram(t, Program.WriteSame);
  scsiTaskAreaWant(t, BUFFER_CLASS_LARGE, 1); // one buffer: the block, replicated over it
  return true;
}

/** UNMAP: a PARAMETER LIST LENGTH of 1 to 7 is an error; 0 does nothing. */
export function decodeUnmap(t: u32): bool {
  const listBytes = cdbBe16(t, 7);
  scsiTaskSetBlockBytes(t, blockBytesOf(t));
  scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
  if (listBytes == 0) return true;
  if (listBytes < 8) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(7));
    return false;
  }
  scsiTaskSetProgram(t, Program.Unmap);
  return parameterList(t, listBytes);
}

/**
 * A parameter list of `listBytes` into one page or large buffer. A list is one unit: an expected length short of
 * the PARAMETER LIST LENGTH is refused (shortDataOut) rather than the list read in part; a longer one is an underflow.
 */
export function parameterList(t: u32, listBytes: u32): bool {
  assert(listBytes <= PARAMETER_LIST_BYTES_MAX);
  const expected = expectedBytes(t, ScsiDirection.Write);
  if (expected < listBytes) return shortDataOut(t, listBytes, expected);
  const dataOutBytes = listBytes;
  scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
  scsiTaskSetTransferBytes(t, listBytes);
  scsiTaskSetDataOutBytes(t, dataOutBytes);
  scsiTaskAreaWant(t, areaClass(max(dataOutBytes, 1)), max(dataOutBytes, 1));
  return true;
}

/** SYNCHRONIZE CACHE (10, 16): a count of zero means to the last block; the whole volume is flushed. */
export function decodeSynchronizeCache(t: u32, opcode: u32): bool {
  const is16 = opcode == OP_SYNCHRONIZE_CACHE_16;
  const lba: u64 = is16 ? cdbBe64(t, 2) : <u64>cdbBe32(t, 2);
  const count = is16 ? cdbBe32(t, 10) : cdbBe16(t, 7);
  if (!rangeOk(t, lba, count)) return false;
  scsiTaskSetProgram(t, Program.Flush);
  return true;
}

// Parameter data the target builds (Data-In of at most DATA_IN_BYTES_MAX, in one page buffer).

/** Where each Data-In command keeps its ALLOCATION LENGTH; READ CAPACITY (10) has none and sends 8 bytes. */
export function allocationLength(t: u32, opcode: u32): u32 {
  switch (opcode) {
    case OP_REQUEST_SENSE: case OP_MODE_SENSE_6: return cdbU8(t, 4);
    case OP_INQUIRY: return cdbBe16(t, 3);
    case OP_MODE_SENSE_10: case OP_PERSISTENT_RESERVE_IN: case OP_READ_DEFECT_DATA_10: return cdbBe16(t, 7);
    case OP_READ_CAPACITY_10: return 8;
    case OP_SERVICE_ACTION_IN_16: return cdbBe32(t, 10);
    case OP_REPORT_LUNS: case OP_MAINTENANCE_IN: case OP_READ_DEFECT_DATA_12: return cdbBe32(t, 6);
    case OP_RECEIVE_COPY_RESULTS: return cdbBe32(t, 10);
    default: assert(false, "allocationLength: not a Data-In command"); return 0;
  }
}

/** Marks `t` as a Data-In command built by the target: one page buffer. */
export function decodeDataIn(t: u32): void {
  scsiTaskFlagSet(t, TASK_FLAG_DATA_IN, true);
  scsiTaskSetProgram(t, Program.DataIn);
  scsiTaskAreaWant(t, BUFFER_CLASS_PAGE, DATA_IN_BYTES_MAX);
}

/** Builds the parameter data of `opcode` into the task's page buffer: its length, or DATA_IN_FAILED (sense set). */
export function dataInBuild(t: u32, opcode: u32): u32 {
  const at = scsiTaskAreaAddress(t, 0);
  const lun = scsiTaskLun(t);
  const present = lun < volumesCount();
  switch (opcode) {
    case OP_REQUEST_SENSE: return requestSense(t, at, present);
    case OP_INQUIRY: return inquiry(t, at, present);
    case OP_MODE_SENSE_6: case OP_MODE_SENSE_10: return modeSense(t, at, opcode == OP_MODE_SENSE_10);
    case OP_READ_CAPACITY_10: return readCapacity10(t, at);
    case OP_SERVICE_ACTION_IN_16: return serviceActionIn16(t, at);
    case OP_REPORT_LUNS: return reportLuns(t, at);
    case OP_READ_DEFECT_DATA_10: case OP_READ_DEFECT_DATA_12: return readDefectData(t, at, opcode == OP_READ_DEFECT_DATA_12);
    case OP_MAINTENANCE_IN: return maintenanceIn(t, at);
    case OP_PERSISTENT_RESERVE_IN: return persistentReserveIn(t, at);
    case OP_RECEIVE_COPY_RESULTS: {
      if ((cdbU8(t, 1) & 0x1f) == SA_RECEIVE_ROD_TOKEN_INFORMATION) {
        const length = tokenInformation(t, at);
        return length == TOKEN_INFO_FAILED ? DATA_IN_FAILED : length;
      }
      const length = copyResultsBuild(t, cdbU8(t, 1) & 0x1f, cdbU8(t, 2), cdbBe32(t, 10), at);
      return length == RCR_FAILED ? DATA_IN_FAILED : length;
    }
    default: assert(false, "dataInBuild: not a Data-In command"); return DATA_IN_FAILED;
  }
}

// SPC-4, REQUEST SENSE: the pending unit attention (taken), else NO SENSE; fixed format only (DESC 1 refused).
function requestSense(t: u32, at: usize, present: bool): u32 {
  if ((cdbU8(t, 1) & 0x01) != 0) { invalidField(t, 1, 0); return DATA_IN_FAILED; }
  if (!present) return senseFixed(at, SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_UNIT_NOT_SUPPORTED);
  const ua = uaTake(scsiTaskNexusSlot(t), scsiTaskLun(t));
  if (ua != 0) return senseFixed(at, SENSE_KEY_UNIT_ATTENTION, ua);
  const sanitizing = sanitizeSense(scsiTaskLun(t), at); // SBC-4: a sanitize operation's progress, or its failure
  if (sanitizing != 0) return sanitizing;
  return senseFixed(at, SENSE_KEY_NO_SENSE, ASC_NO_ADDITIONAL_SENSE);
}

// SPC-4, INQUIRY: standard data (qualifier 011b for a missing LUN), or a VPD page with EVPD; CMDDT is refused by the
// CDB usage check.
function inquiry(t: u32, at: usize, present: bool): u32 {
  const evpd = (cdbU8(t, 1) & 0x01) != 0;
  const page = cdbU8(t, 2);
  if (!evpd) {
    if (page != 0) { invalidField(t, 2); return DATA_IN_FAILED; }
    return inquiryStandard(at, present);
  }
  if (!present) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_UNIT_NOT_SUPPORTED);
    return DATA_IN_FAILED;
  }
  const length = vpdPage(page, scsiTaskLun(t), at, nexusTargetPort(scsiTaskNexus(t)));
  if (length == 0) { invalidField(t, 2); return DATA_IN_FAILED; }
  return length;
}

// SPC-4, MODE SENSE (6)/(10): PC 11b (saved) is refused; subpages other than 00h and FFh are refused.
function modeSense(t: u32, at: usize, is10: bool): u32 {
  const pc = cdbU8(t, 2) >> 6;
  const page = cdbU8(t, 2) & 0x3f;
  const subpage = cdbU8(t, 3);
  if (pc == MODE_PC_SAVED) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_SAVING_PARAMETERS_NOT_SUPPORTED, fieldInCdb(2, 7));
    return DATA_IN_FAILED;
  }
  if (!modePageKnown(page)) { invalidField(t, 2, 5); return DATA_IN_FAILED; }
  if (subpage != 0x00 && subpage != 0xff) { invalidField(t, 3); return DATA_IN_FAILED; }
  const v = volumeAt(scsiTaskLun(t));
  const dbd = (cdbU8(t, 1) & 0x08) != 0;
  const llbaa = is10 && (cdbU8(t, 1) & 0x10) != 0;
  const lun = scsiTaskLun(t);
  return modeSenseBuild(lun, at, is10, dbd, llbaa, pc, page, v.blockCount, v.blockSizeBytes, writeProtected(t, lun));
}

// SBC-3, READ CAPACITY (10): |0-3 RETURNED LOGICAL BLOCK ADDRESS (FFFF_FFFFh when too large)|4-7 BLOCK LENGTH|.
function readCapacity10(t: u32, at: usize): u32 {
  if ((cdbU8(t, 8) & 0x01) == 0 && cdbBe32(t, 2) != 0) { invalidField(t, 2); return DATA_IN_FAILED; }
  const v = volumeAt(scsiTaskLun(t));
  putBe32(at, <u32>min(v.blockCount - 1, 0xffff_ffff));
  putBe32(at + 4, v.blockSizeBytes);
  return 8;
}

// SBC-3, READ CAPACITY (16) and GET LBA STATUS.
function serviceActionIn16(t: u32, at: usize): u32 {
  const v = volumeAt(scsiTaskLun(t));
  memory.fill(at, 0, 32);
  if ((cdbU8(t, 1) & 0x1f) == SA_READ_CAPACITY_16) {
    if ((cdbU8(t, 14) & 0x01) == 0 && cdbBe64(t, 2) != 0) { invalidField(t, 2); return DATA_IN_FAILED; }
    // |0-7 last LBA|8-11 BLOCK LENGTH|12 P_TYPE,PROT_EN|13 P_I_EXPONENT,LBPPBE|14 LBPME,LBPRZ,LOWEST ALIGNED LBA|15|
    putBe64(at, v.blockCount - 1);
    putBe32(at + 8, v.blockSizeBytes);
    store<u8>(at + 13, <u8>v.physicalExponent); // P_I_EXPONENT 0; LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT
    store<u8>(at + 14, 0x80 | 0x40); // LBPME: provisioning management; LBPRZ: deallocated blocks read as zeros
    return 32;
  }
  if ((cdbU8(t, 1) & 0x1f) == SA_REPORT_REFERRALS) return referrals(t, at);
  assert((cdbU8(t, 1) & 0x1f) == SA_GET_LBA_STATUS);
  // GET LBA STATUS: one descriptor, for the run of blocks from the LBA that share its provisioning status, as the CTA
  // answered (target.ts keeps it in the service fields: blocks, and the status in the offset): a thin volume's run
  // of mapped or deallocated chunks; any other volume mapped to the end. The initiator asks again past the run.
  // |0-3 PARAMETER DATA LENGTH|4-7 -|8-15 LBA|16-19 NUMBER OF LOGICAL BLOCKS|20 PROVISIONING STATUS|.
  const lba = cdbBe64(t, 2);
  if (lba >= v.blockCount) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
    return DATA_IN_FAILED;
  }
  const answered = scsiTaskServiceFunction(t) == FrameFunction.LbaStatus && scsiTaskServiceLba(t) == lba;
  putBe32(at, 20);
  putBe64(at + 8, lba);
  putBe32(at + 16, answered ? scsiTaskServiceBlocks(t) : <u32>min(v.blockCount - lba, 0xffff_ffff));
  if (answered) store<u8>(at + 20, <u8>(scsiTaskServiceOffset(t) & 0x0f)); // 0: mapped, 1: deallocated
  if (sanitizeErased(scsiTaskLun(t))) { // deallocated by a sanitize erase, nothing written since: to the end
    putBe32(at + 16, <u32>min(v.blockCount - lba, 0xffff_ffff));
    store<u8>(at + 20, 0x01);
  }
  return 24;
}

// SBC-3, REPORT REFERRALS (a board of a cluster only: cdb.ts, commandOffered): |2-9 LBA|10-13 ALLOCATION LENGTH|14
// ONE_SEG|. The user data segments from the one holding the LBA (alua.ts); an LBA past the last block is out of range.
function referrals(t: u32, at: usize): u32 {
  const length = reportReferrals(at, scsiTaskLun(t), cdbBe64(t, 2), (cdbU8(t, 14) & 0x01) != 0);
  if (length != REFERRALS_FAILED) return length;
  scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
  return DATA_IN_FAILED;
}

// SBC-3, READ DEFECT DATA (10, 12): the volumes have no defect lists the initiator could use, so both lists are
// reported empty in the format asked for. (10): |0 -|1 PLISTV,GLISTV,FORMAT|2-3 DEFECT LIST LENGTH|; (12): |0 -|1 the
// same|2-3 GENERATION CODE|4-7 DEFECT LIST LENGTH|. The flags are in byte 2 of the (10) CDB, byte 1 of the (12).
function readDefectData(t: u32, at: usize, is12: bool): u32 {
  const flags = cdbU8(t, is12 ? 1 : 2) & 0x1f;
  const lengthBytes: u32 = is12 ? 8 : 4;
  memory.fill(at, 0, lengthBytes);
  store<u8>(at + 1, <u8>flags); // PLISTV and GLISTV as requested: each list, with no entries
  return lengthBytes;
}

// SPC-4, REPORT LUNS: SELECT REPORT 00h and 02h list every logical unit (single-level peripheral device addressing),
// 01h the well-known ones (none).
// The LUNs are those the nexus's target port presents (target_luns.ts): peripheral device addressing below 256,
// flat space addressing above.
function reportLuns(t: u32, at: usize): u32 {
  const select = cdbU8(t, 2);
  if (select > 2) { invalidField(t, 2); return DATA_IN_FAILED; }
  const port = nexusTargetPort(scsiTaskNexus(t));
  const known = targetLunsKnown(port);
  const count: u32 = select == 1 ? 0 : known ? targetLunsCount(port) : volumesCount();
  memory.fill(at, 0, 8 + count * 8);
  putBe32(at, count * 8); // LUN LIST LENGTH
  for (let i: u32 = 0; i < count; i++) {
    const lun = known ? targetLunAt(port, i) : i;
    store<u8>(at + 8 + i * 8, <u8>(lun < 256 ? 0 : 0x40 | (lun >> 8)));
    store<u8>(at + 8 + i * 8 + 1, <u8>(lun & 0xff));
  }
  return 8 + count * 8;
}

// SPC-4, REPORT SUPPORTED OPERATION CODES, REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS and (a board of a cluster
// only) REPORT TARGET PORT GROUPS, whose PARAMETER DATA FORMAT (byte 1, bits 7-5) is 000b or 001b (extended header):
// the command table's usage data refuses the others.
function maintenanceIn(t: u32, at: usize): u32 {
  if ((cdbU8(t, 1) & 0x1f) == SA_REPORT_TARGET_PORT_GROUPS) {
    return reportTargetPortGroups(at, scsiTaskLun(t), nexusTargetPort(scsiTaskNexus(t)), (cdbU8(t, 1) >> 5) == 1);
  }
  if ((cdbU8(t, 1) & 0x1f) != SA_REPORT_SUPPORTED_OPERATION_CODES) return tmfsSupported(at);
  const rctd = (cdbU8(t, 2) & 0x80) != 0;
  const options = cdbU8(t, 2) & 0x07;
  if (options == 0) return opcodesAll(at, rctd);
  if (options > REPORTING_OPCODE_SA_IF_ANY) { invalidField(t, 2, 2); return DATA_IN_FAILED; }
  const length = opcodesOne(at, options, cdbU8(t, 3), cdbBe16(t, 4), rctd);
  if (length == OPCODES_INVALID) { invalidField(t, 2, 2); return DATA_IN_FAILED; }
  return length;
}

// SPC-4, PERSISTENT RESERVE IN: READ KEYS, READ RESERVATION, REPORT CAPABILITIES, READ FULL STATUS (the command
// table has no others).
function persistentReserveIn(t: u32, at: usize): u32 {
  const lun = scsiTaskLun(t);
  switch (cdbU8(t, 1) & 0x1f) {
    case 0: return min(prReadKeys(lun, at, DATA_IN_BYTES_MAX), DATA_IN_BYTES_MAX);
    case 1: return prReadReservation(lun, at);
    case 2: return prReportCapabilities(lun, at);
    default: return min(prReadFullStatus(lun, at, DATA_IN_BYTES_MAX), DATA_IN_BYTES_MAX);
  }
}

/**
 * EXTENDED COPY (LID1): a PARAMETER LIST LENGTH of 0 copies nothing (SPC-4: not an error); beyond the longest list
 * the copy manager takes (header and MAXIMUM DESCRIPTOR LIST LENGTH) it is PARAMETER LIST LENGTH ERROR. The list
 * goes into the area's first large buffer and the chunks behind it, so no other buffer is needed while copying.
 * Like every parameter list (parameterList), one cut short by the expected length is refused (shortDataOut).
 */
export function decodeExtendedCopy(t: u32): bool {
  return decodeCopyList(t, cdbBe32(t, 10), COPY_PARAMETER_LIST_BYTES_MAX, Program.ExtendedCopy);
}

/**
 * The parameter list of a command that copies through its own buffers (EXTENDED COPY, WRITE USING TOKEN):
 * `listBytes` of at most `listBytesMax` into the area's first COPY_LIST_AREA_BYTES, the chunk buffer behind them.
 */
export function decodeCopyList(t: u32, listBytes: u32, listBytesMax: u32, program: Program): bool {
  assert(listBytesMax <= COPY_LIST_AREA_BYTES, "scsi: a copy's parameter list fits its buffer");
  scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
  if (listBytes == 0) return true;
  if (listBytes > listBytesMax) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(10));
    return false;
  }
  const expected = expectedBytes(t, ScsiDirection.Write);
  if (expected < listBytes) return shortDataOut(t, listBytes, expected);
  const dataOutBytes = listBytes;
  const chunkBytes = min(COPY_CHUNK_BYTES, limitTransferBytes());
  scsiTaskSetTransferBytes(t, listBytes);
  scsiTaskSetDataOutBytes(t, dataOutBytes);
  scsiTaskSetCopyChunkBytes(t, chunkBytes);
  scsiTaskSetProgram(t, program);
  scsiTaskAreaWant(t, BUFFER_CLASS_LARGE, COPY_LIST_AREA_BYTES + chunkBytes);
  return true;
}

/** `bytes` rounded up to a whole number of `unit`s. */
export function roundUp(bytes: u32, unit: u32): u32 { return (bytes + unit - 1) / unit * unit; }

/** MODE SELECT (6, 10): PF must be 1 (only standard pages), SP 0 (nothing is saved). */
export function decodeModeSelect(t: u32, is10: bool): bool {
  const flags = cdbU8(t, 1);
  if ((flags & 0x10) == 0) return invalidField(t, 1, 4);
  if ((flags & 0x01) != 0) return invalidField(t, 1, 0);
  const listBytes = is10 ? cdbBe16(t, 7) : cdbU8(t, 4);
  scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
  if (listBytes == 0) return true; // SPC-4: no parameter list, not an error
  scsiTaskSetProgram(t, Program.ParameterOut);
  return parameterList(t, listBytes);
}

/**
 * PERSISTENT RESERVE OUT: at least the basic 24 bytes; longer lists (SPEC_I_PT's TransportIDs, REGISTER AND MOVE's)
 * up to one large buffer, their length checked against the list's own fields once it is in (pr_out.ts).
 */
export function decodePersistentReserveOut(t: u32): bool {
  const listBytes = cdbBe32(t, 5);
  if (listBytes < PR_OUT_LIST_BYTES) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(5));
    return false;
  }
  if (listBytes > PARAMETER_LIST_BYTES_MAX) return invalidField(t, 5);
  scsiTaskSetProgram(t, Program.ParameterOut);
  return parameterList(t, listBytes);
}
