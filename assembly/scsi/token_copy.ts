// Token-based copy (SBC-3, POPULATE TOKEN and WRITE USING TOKEN; SPC-4, RECEIVE ROD TOKEN INFORMATION), the offload
// Windows calls ODX. POPULATE TOKEN checks its block device range descriptors and makes a ROD token for them
// (rod_token.ts); RECEIVE ROD TOKEN INFORMATION gives the token back, with the command's status; WRITE USING TOKEN
// copies the token's data to its own ranges. The target (target.ts, Program.TokenWrite) moves that data exactly as
// EXTENDED COPY's: a chunk at a time, a READ from the token's logical unit into the task's own buffers, then a
// WRITE, through the CTA. Here: the parameter lists checked, the chunks planned, the results data built. The copy
// results (status, sense, bytes moved) are kept in copy.ts's table, under the CDB's 32-bit LIST IDENTIFIER.
// IMMED is refused: every command is answered when its work is done.
//
// POPULATE TOKEN parameter list: |0-1 POPULATE TOKEN DATA LENGTH|2 RTV(1),IMMED(0)|3 -|4-7 INACTIVITY TIMEOUT|
// |8-11 ROD TYPE|12-13 -|14-15 BLOCK DEVICE RANGE DESCRIPTOR LIST LENGTH|16- range descriptors|.
// WRITE USING TOKEN parameter list: |0-1 WRITE USING TOKEN DATA LENGTH|2 DEL_TKN(1),IMMED(0)|3-7 -|
// |8-15 OFFSET INTO ROD (logical blocks)|16-527 ROD TOKEN|528-533 -|534-535 BLOCK DEVICE RANGE DESCRIPTOR LIST LENGTH|
// |536- range descriptors|. Range descriptor, 16 bytes: |0-7 LOGICAL BLOCK ADDRESS|8-11 NUMBER OF LOGICAL BLOCKS|12-15 -|.
import { volumeAt } from "../volumes/volume";
import { SAM_STATUS_GOOD, SAM_STATUS_RESERVATION_CONFLICT, SAM_STATUS_TASK_ABORTED } from "../protocol/scsi_status";
import { SENSE_KEY_COPY_ABORTED, SENSE_KEY_ILLEGAL_REQUEST } from "../protocol/sense_keys";
import { decodeCopyList, decodeExtendedCopy, parameterList, Program } from "./commands";
import { PARAMETER_LIST_BYTES_MAX } from "./limits";
import { Access, cdbBe32, cdbU8, getBe16, getBe32, getBe64, putBe16, putBe32, putBe64 } from "./cdb";
import {
  copyBegin, copyEnd, COPY_ENTRY_NONE, COPY_LIST_AREA_BYTES, copyFind, copyProgress, copyResultBytes,
  copyResultRunning, copyResultSegments, copyResultSense, copyResultSenseLength, copyResultServiceAction,
  copyResultSetToken, copyResultStatus, copyResultToken, copyResultTokenId,
} from "./copy";
import { reservationConflict } from "./reservations";
import {
  rodTokenBlockBytes, rodTokenBlocks, rodTokenCreate, rodTokenDelete, rodTokenFind, rodTokenId, rodTokenIs,
  rodTokenLun, rodTokenRangeBlocks, rodTokenRangeCount, rodTokenRangeLba, rodTokenRefusal, rodTokenUseBegin,
  rodTokenUseEnd, rodTokenWrite, ROD_TOKEN_BYTES, ROD_TOKEN_BYTES_MAX, ROD_TOKEN_NONE,
  ROD_TOKEN_RANGES_MAX, ROD_TOKEN_TIMEOUT_DEFAULT_SECONDS, ROD_TOKEN_TIMEOUT_MAX_SECONDS,
  ROD_TYPE_ACCESS_UPON_REFERENCE, ROD_TYPE_BLOCK_DEVICE_ZERO,
} from "./rod_token";
import {
  ASC_INSUFFICIENT_RESOURCES_TO_CREATE_ROD_TOKEN, ASC_INVALID_FIELD_IN_CDB, ASC_INVALID_FIELD_IN_PARAMETER_LIST,
  ASC_INVALID_TOKEN_OPERATION_CAUSE_NOT_REPORTABLE, ASC_LBA_OUT_OF_RANGE, ASC_PARAMETER_LIST_LENGTH_ERROR,
  ASC_TOO_MANY_SEGMENT_DESCRIPTORS, fieldInCdb, fieldInParameters,
} from "./sense";
import {
  scsiTaskAreaAddress, scsiTaskCheck, scsiTaskCopyToken, scsiTaskDataOutBytes, scsiTaskFlagSet, scsiTaskLun,
  scsiTaskNexus, scsiTaskSetBlockCount, scsiTaskSetCopyDoneBytes, scsiTaskSetCopyEntry, scsiTaskSetCopySegment,
  scsiTaskSetCopyToken, scsiTaskSetProgram, scsiTaskSetStatus, TASK_FLAG_DATA_OUT,
} from "./tasks";

// Service actions: of THIRD-PARTY COPY OUT (83h) and THIRD-PARTY COPY IN (84h).
export const SA_POPULATE_TOKEN: u32 = 0x10;
export const SA_WRITE_USING_TOKEN: u32 = 0x11;
export const SA_RECEIVE_ROD_TOKEN_INFORMATION: u32 = 0x07;

const RANGE_BYTES: u32 = 16;
const POPULATE_HEADER_BYTES: u32 = 16;
const WRITE_HEADER_BYTES: u32 = 536;
const WRITE_TOKEN_AT: u32 = 16;
/** The longest list either command takes: its header and MAXIMUM RANGE DESCRIPTORS of ranges. */
export const TOKEN_LIST_BYTES_MAX: u32 = WRITE_HEADER_BYTES + ROD_TOKEN_RANGES_MAX * RANGE_BYTES;
if (TOKEN_LIST_BYTES_MAX + ROD_TOKEN_BYTES > COPY_LIST_AREA_BYTES) ERROR("the list and a token's scratch copy fit the list area");
export const TOKEN_NONE: u32 = 0xffff; // the task uses no token
export const TOKEN_ZERO: u32 = 0xfffe; // the task writes the block device zero ROD token: zeros
export const TOKEN_INFO_FAILED: u32 = 0xffff_ffff;
const RANGES_BAD: u32 = 0xffff_ffff;

/**
 * THIRD-PARTY COPY OUT (83h) by service action: EXTENDED COPY (LID1, commands.ts), POPULATE TOKEN (its list read
 * like any parameter list, then tokenPopulate), WRITE USING TOKEN (its list into the area a copy's chunks follow).
 * A PARAMETER LIST LENGTH of 0 does nothing (SPC-4: not an error).
 */
export function decodeThirdPartyCopyOut(t: u32): bool {
  const sa = cdbU8(t, 1) & 0x1f;
  const listBytes = cdbBe32(t, 10);
  if (sa == SA_POPULATE_TOKEN) {
    scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
    if (listBytes == 0) return true;
    if (listBytes > PARAMETER_LIST_BYTES_MAX) return refuse(t, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(10));
    scsiTaskSetProgram(t, Program.ParameterOut);
    return parameterList(t, listBytes);
  }
  if (sa == SA_WRITE_USING_TOKEN) return decodeCopyList(t, listBytes, COPY_LIST_AREA_BYTES - ROD_TOKEN_BYTES, Program.TokenWrite);
  assert(sa == 0x00, "token copy: service action checked by the command table");
  return decodeExtendedCopy(t);
}

function refuse(t: u32, ascAscq: u32, field: u32): bool {
  scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ascAscq, field);
  return false;
}

/**
 * The block device range descriptors at `list` + `at` (`rangeBytes` of them, within what came) on logical unit
 * `lun`: a whole number of descriptors, at least one and at most MAXIMUM RANGE DESCRIPTORS, each on the unit, none
 * overlapping another, no more than MAXIMUM TOKEN TRANSFER SIZE in all. Answers their count, or RANGES_BAD with
 * CHECK CONDITION in the record; `lengthAt` is the list's BLOCK DEVICE RANGE DESCRIPTOR LIST LENGTH field.
 */
function rangesCheck(t: u32, list: usize, at: u32, rangeBytes: u32, lun: u32, lengthAt: u32): u32 {
  if (rangeBytes == 0 || rangeBytes % RANGE_BYTES != 0) {
    refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(lengthAt));
    return RANGES_BAD;
  }
  const count = rangeBytes / RANGE_BYTES;
  if (count > ROD_TOKEN_RANGES_MAX) { refuse(t, ASC_TOO_MANY_SEGMENT_DESCRIPTORS, fieldInParameters(lengthAt)); return RANGES_BAD; }
  const capacity = volumeAt(lun).blockCount;
  const blocksMax = ROD_TOKEN_BYTES_MAX / <u64>volumeAt(lun).blockSizeBytes;
  let total: u64 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const d = at + i * RANGE_BYTES;
    const lba = getBe64(list + d);
    const blocks = <u64>getBe32(list + d + 8);
    if (lba > capacity || blocks > capacity - lba) { refuse(t, ASC_LBA_OUT_OF_RANGE, fieldInParameters(d)); return RANGES_BAD; }
    total += blocks;
    if (total > blocksMax) { refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(d + 8)); return RANGES_BAD; }
    for (let j: u32 = 0; j < i; j++) { // SBC-3: ranges that overlap are INVALID FIELD IN PARAMETER LIST
      const other = list + at + j * RANGE_BYTES;
      const otherLba = getBe64(other);
      const otherBlocks = <u64>getBe32(other + 8);
      if (blocks > 0 && otherBlocks > 0 && lba < otherLba + otherBlocks && otherLba < lba + blocks) {
        refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(d));
        return RANGES_BAD;
      }
    }
  }
  return count;
}

// The header both lists share: long enough for `headerBytes`, the DATA LENGTH and range list length within what
// came, IMMED 0. Answers the range list's length, or RANGES_BAD.
function headerCheck(t: u32, list: usize, listBytes: u32, headerBytes: u32): u32 {
  if (listBytes < headerBytes) { refuse(t, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(10)); return RANGES_BAD; }
  const available = min(listBytes, getBe16(list) + 2); // DATA LENGTH: the bytes after itself
  if (available < headerBytes) { refuse(t, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInParameters(0)); return RANGES_BAD; }
  if ((load<u8>(list + 2) & 0x01) != 0) { refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(2, 0)); return RANGES_BAD; }
  const rangeBytes = getBe16(list + headerBytes - 2);
  if (headerBytes + rangeBytes > available) {
    refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(headerBytes - 2));
    return RANGES_BAD;
  }
  return rangeBytes;
}

/**
 * POPULATE TOKEN, its parameter list in the task's area: checked, then a copy results entry for its LIST IDENTIFIER
 * and a token for its ranges (RECEIVE ROD TOKEN INFORMATION gives it). Leaves the status in the record.
 */
export function tokenPopulate(t: u32): void {
  const listBytes = scsiTaskDataOutBytes(t);
  if (listBytes == 0) return; // SPC-4: no parameter list, not an error; nothing made
  const list = scsiTaskAreaAddress(t, 0);
  const rangeBytes = headerCheck(t, list, listBytes, POPULATE_HEADER_BYTES);
  if (rangeBytes == RANGES_BAD) return;
  let timeout = getBe32(list + 4);
  if (timeout > ROD_TOKEN_TIMEOUT_MAX_SECONDS) { refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(4)); return; }
  if (timeout == 0) timeout = ROD_TOKEN_TIMEOUT_DEFAULT_SECONDS;
  const rtv = (load<u8>(list + 2) & 0x02) != 0;
  if (rtv && getBe32(list + 8) != ROD_TYPE_ACCESS_UPON_REFERENCE) { // no point in time copies here
    refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(8));
    return;
  }
  const lun = scsiTaskLun(t);
  const count = rangesCheck(t, list, POPULATE_HEADER_BYTES, rangeBytes, lun, 14);
  if (count == RANGES_BAD) return;
  const e = copyBegin(t, cdbBe32(t, 6), true, SA_POPULATE_TOKEN);
  if (e == COPY_ENTRY_NONE) return;
  const token = rodTokenCreate(lun, list + POPULATE_HEADER_BYTES, count, timeout);
  if (token == ROD_TOKEN_NONE) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INSUFFICIENT_RESOURCES_TO_CREATE_ROD_TOKEN);
  } else {
    copyResultSetToken(e, t, token, rodTokenId(token));
    copyProgress(e, t, 0, rodTokenBlocks(token) * <u64>rodTokenBlockBytes(token));
  }
  copyEnd(e, t);
}

/**
 * WRITE USING TOKEN, its parameter list in the task's area at `list`: lengths and ranges on this unit checked, then
 * a copy results entry, then the token and OFFSET INTO ROD checked, and the token held in use. Sets the task up for the chunk
 * loop: one segment per destination range. False with the answer in the record when it cannot start.
 */
export function tokenWriteStart(t: u32, list: usize): bool {
  const listBytes = scsiTaskDataOutBytes(t);
  const rangeBytes = headerCheck(t, list, listBytes, WRITE_HEADER_BYTES);
  if (rangeBytes == RANGES_BAD) return false;
  const lun = scsiTaskLun(t);
  const count = rangesCheck(t, list, WRITE_HEADER_BYTES, rangeBytes, lun, 534);
  if (count == RANGES_BAD) return false;
  // From here on the copy has results: a token it cannot use is reported by RECEIVE ROD TOKEN INFORMATION too.
  const e = copyBegin(t, cdbBe32(t, 6), true, SA_WRITE_USING_TOKEN);
  if (e == COPY_ENTRY_NONE) return false;
  scsiTaskSetCopyEntry(t, e);
  let token = TOKEN_ZERO;
  if (getBe32(list + WRITE_TOKEN_AT) != ROD_TYPE_BLOCK_DEVICE_ZERO) {
    token = rodTokenFind(list + WRITE_TOKEN_AT, list + COPY_LIST_AREA_BYTES - ROD_TOKEN_BYTES); // scratch: the area's end
    if (token == ROD_TOKEN_NONE) return tokenRefuse(t, ROD_TOKEN_NONE);
    if (rodTokenBlockBytes(token) != volumeAt(lun).blockSizeBytes) {
      scsiTaskCheck(t, SENSE_KEY_COPY_ABORTED, ASC_INVALID_TOKEN_OPERATION_CAUSE_NOT_REPORTABLE, fieldInParameters(WRITE_TOKEN_AT));
      return false;
    }
    if (getBe64(list + 8) >= rodTokenBlocks(token) && rodTokenBlocks(token) > 0) {
      return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(8));
    }
    if (reservationConflict(rodTokenLun(token), scsiTaskNexus(t), Access.Read)) {
      scsiTaskSetStatus(t, SAM_STATUS_RESERVATION_CONFLICT);
      return false;
    }
    rodTokenUseBegin(token);
    if ((load<u8>(list + 2) & 0x02) != 0) rodTokenDelete(token); // DEL_TKN: this is its last use
  }
  scsiTaskSetCopyToken(t, token);
  scsiTaskSetCopyEntry(t, e);
  scsiTaskSetBlockCount(t, count); // segments: the destination ranges
  scsiTaskSetCopySegment(t, 0);
  scsiTaskSetCopyDoneBytes(t, 0);
  return true;
}

// SPC-4: a token this copy manager cannot use is COPY ABORTED, INVALID TOKEN OPERATION with the reason, and a
// pointer to the ROD TOKEN field.
function tokenRefuse(t: u32, found: u32): bool {
  assert(found == ROD_TOKEN_NONE, "token copy: refusing a token that was found");
  scsiTaskCheck(t, SENSE_KEY_COPY_ABORTED, rodTokenRefusal(), fieldInParameters(WRITE_TOKEN_AT));
  return false;
}

/** The WRITE USING TOKEN `t` ended (any way): its token's use ends. Idempotent. */
export function tokenWriteEnd(t: u32, list: usize): void {
  const token = scsiTaskCopyToken(t);
  scsiTaskSetCopyToken(t, TOKEN_NONE);
  if (token == TOKEN_NONE || token == TOKEN_ZERO) return;
  rodTokenUseEnd(token, getBe64(list + WRITE_TOKEN_AT + 8));
}

// Planning the chunks (target.ts, copyNext and copyWrite). Segment `index` is destination range `index`.

/** The bytes destination range `index` asks for. */
export function tokenSegmentBytes(t: u32, list: usize, index: u32): u64 {
  return <u64>getBe32(list + WRITE_HEADER_BYTES + index * RANGE_BYTES + 8) * <u64>volumeAt(scsiTaskLun(t)).blockSizeBytes;
}

/** The destination LBA `doneBytes` into destination range `index`. */
export function tokenDestinationLba(t: u32, list: usize, index: u32, doneBytes: u64): u64 {
  return getBe64(list + WRITE_HEADER_BYTES + index * RANGE_BYTES) + doneBytes / <u64>volumeAt(scsiTaskLun(t)).blockSizeBytes;
}

/** Where in the ROD (bytes) the data for `doneBytes` into destination range `index` comes from. */
export function tokenRodOffset(t: u32, list: usize, index: u32, doneBytes: u64): u64 {
  let at = getBe64(list + 8) * <u64>volumeAt(scsiTaskLun(t)).blockSizeBytes; // OFFSET INTO ROD
  for (let i: u32 = 0; i < index; i++) at += tokenSegmentBytes(t, list, i);
  return at + doneBytes;
}

/** The bytes the ROD of token `token` represents. */
export function tokenRodBytes(token: u32): u64 { return rodTokenBlocks(token) * <u64>rodTokenBlockBytes(token); }

/** The source LBA (on rodTokenLun) of ROD byte `rodAt`, which is within the ROD. */
export function tokenSourceLba(token: u32, rodAt: u64): u64 {
  const blockBytes = <u64>rodTokenBlockBytes(token);
  let start: u64 = 0;
  const count = rodTokenRangeCount(token);
  for (let i: u32 = 0; i < count; i++) {
    const bytes = rodTokenRangeBlocks(token, i) * blockBytes;
    if (rodAt < start + bytes) return rodTokenRangeLba(token, i) + (rodAt - start) / blockBytes;
    start += bytes;
  }
  assert(false, "token copy: ROD offset past the ROD");
  return 0;
}

/** The bytes from ROD byte `rodAt` to the end of the source range holding it: what one READ may take. */
export function tokenSourceRunBytes(token: u32, rodAt: u64): u64 {
  const blockBytes = <u64>rodTokenBlockBytes(token);
  let start: u64 = 0;
  const count = rodTokenRangeCount(token);
  for (let i: u32 = 0; i < count; i++) {
    start += rodTokenRangeBlocks(token, i) * blockBytes;
    if (rodAt < start) return start - rodAt;
  }
  assert(false, "token copy: ROD offset past the ROD");
  return 0;
}

/**
 * RECEIVE ROD TOKEN INFORMATION parameter data at `at` for the CDB's LIST IDENTIFIER (of a POPULATE TOKEN or WRITE
 * USING TOKEN from this nexus to this unit); answers its length, or TOKEN_INFO_FAILED (INVALID FIELD IN CDB: none).
 * |0-3 AVAILABLE DATA|4 RESPONSE TO SERVICE ACTION|5 COPY OPERATION STATUS|6-7 OPERATION COUNTER|
 * |8-11 ESTIMATED STATUS UPDATE DELAY|12 EXTENDED COPY COMPLETION STATUS|13 LENGTH OF THE SENSE DATA FIELD|
 * |14 SENSE DATA LENGTH|15 TRANSFER COUNT UNITS|16-23 TRANSFER COUNT|24-25 SEGMENTS PROCESSED|26-31 -|32- SENSE DATA|,
 * then |0-3 ROD TOKEN DESCRIPTORS LENGTH|4-5 -|6-517 ROD TOKEN| (the token only after a POPULATE TOKEN that made one).
 */
export function tokenInformation(t: u32, at: usize): u32 {
  const lun = scsiTaskLun(t);
  const e = copyFind(scsiTaskNexus(t), lun, cdbBe32(t, 2), SA_POPULATE_TOKEN);
  if (e == COPY_ENTRY_NONE) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, fieldInCdb(2));
    return TOKEN_INFO_FAILED;
  }
  const running = copyResultRunning(e);
  const status = copyResultStatus(e);
  const senseBytes = running ? 0 : copyResultSenseLength(e);
  const token = copyResultToken(e);
  const withToken = !running && status == SAM_STATUS_GOOD && copyResultServiceAction(e) == SA_POPULATE_TOKEN
    && rodTokenIs(token, copyResultTokenId(e));
  const tokenBytes: u32 = withToken ? 2 + ROD_TOKEN_BYTES : 0;
  const length: u32 = 32 + senseBytes + 4 + tokenBytes;
  memory.fill(at, 0, length);
  putBe32(at, length - 4);
  store<u8>(at + 4, <u8>copyResultServiceAction(e));
  store<u8>(at + 5, <u8>operationStatus(running, status));
  putBe32(at + 8, running ? 100 : 0); // ESTIMATED STATUS UPDATE DELAY, milliseconds
  store<u8>(at + 12, <u8>(running ? 0 : status)); // EXTENDED COPY COMPLETION STATUS: the command's status
  store<u8>(at + 13, <u8>senseBytes);
  store<u8>(at + 14, <u8>senseBytes);
  store<u8>(at + 15, 0xf1); // TRANSFER COUNT UNITS: logical blocks
  putBe64(at + 16, copyResultBytes(e) / <u64>volumeAt(lun).blockSizeBytes);
  putBe16(at + 24, copyResultSegments(e));
  memory.copy(at + 32, copyResultSense(e), senseBytes);
  const tail = at + 32 + senseBytes;
  putBe32(tail, tokenBytes);
  if (withToken) rodTokenWrite(token, tail + 6);
  return length;
}

// SPC-4, COPY OPERATION STATUS: 11h in progress (foreground: no IMMED here), 01h completed, 02h completed with
// errors, 60h terminated (the command was aborted).
function operationStatus(running: bool, status: u32): u32 {
  if (running) return 0x11;
  if (status == SAM_STATUS_GOOD) return 0x01;
  return status == SAM_STATUS_TASK_ABORTED ? 0x60 : 0x02;
}
