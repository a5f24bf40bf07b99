// The SANITIZE command (SBC-4, SANITIZE command; Sanitize operations) on the virtual disks: its CDB and parameter
// list checked here, each logical unit's sanitize state kept here, and the chunks an operation moves chosen here.
// The target (target.ts, Program.Sanitize and Program.SanitizeWork) runs them. The operation gets a ScsiTask record of
// its own, the worker, so it goes on after its command is answered (IMMED), aborted, or its I_T nexus is gone, and
// through logical unit and target resets, as SBC-4 asks. The worker sends its chunks to the CTA one at a time, as
// any command's services go (EXTENDED COPY's chunks too):
//   OVERWRITE: the pattern replicated over one large buffer and written over every block in WRITE FUA chunks whose
//     SGL repeats that buffer (as WRITE SAME does); OVERWRITE COUNT passes, the pattern inverted between passes with
//     INVERT (the first pass inverted when the count is even, so the last pass writes the pattern itself);
//   BLOCK ERASE, CRYPTOGRAPHIC ERASE: every block deallocated in UNMAP chunks; deallocated blocks read as zeros
//     (LBPRZ). A virtual disk has no media key to change, so a cryptographic erase deallocates too.
// While an operation runs, its logical unit answers every command but INQUIRY, REPORT LUNS and REQUEST SENSE with
// NOT READY, LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS and the progress; once one failed, with MEDIUM ERROR,
// SANITIZE COMMAND FAILED, until a SANITIZE succeeds or (when the failed one had AUSE) EXIT FAILURE MODE.
//
// CDB: |0 48h|1 IMMED(7),-(6),AUSE(5),SERVICE ACTION(4-0)|2-6 -|7-8 PARAMETER LIST LENGTH|9 CONTROL|
// OVERWRITE parameter list: |0 INVERT(7),-(6-5),OVERWRITE COUNT(4-0)|1 -|2-3 INITIALIZATION PATTERN LENGTH|4- pattern|
//
// Logical unit entry, 32 bytes: |0 state u8|1 serviceAction u8|2 ause u8|3 invert u8|4 passCount u8|5 passIndex u8|
// |6 erased u8|7 -|8 worker u16|10 waiter u16 (0xFFFF: none)|12 waiterGeneration u32|16 lbaNext u64|24 blockCount u64|;
// read and written only through the entry accessors below.
import { FrameFunction } from "../board/frame";
import { BUFFER_CLASS_LARGE } from "../config";
import { VOLUMES_MAX, volumeAt } from "../volumes/volume";
import { carve } from "../kernel/carve";
import { cdbBe16, cdbU8, getBe16 } from "./cdb";
import { OPT_FUA, OPT_REPEAT, Program } from "./commands";
import { ScsiDirection, SCSI_TASK_NONE } from "./interface";
import { UNMAP_BYTES_MAX } from "./limits";
import {
  OP_INQUIRY, OP_REPORT_LUNS, OP_REQUEST_SENSE, OP_SANITIZE, SA_SANITIZE_EXIT_FAILURE_MODE, SA_SANITIZE_OVERWRITE,
} from "../protocol/scsi_opcodes";
import {
  SENSE_KEY_DATA_PROTECT, SENSE_KEY_ILLEGAL_REQUEST, SENSE_KEY_MEDIUM_ERROR, SENSE_KEY_NOT_READY,
} from "../protocol/sense_keys";
import {
  ASC_INVALID_FIELD_IN_CDB, ASC_INVALID_FIELD_IN_PARAMETER_LIST, ASC_LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS,
  ASC_PARAMETER_LIST_LENGTH_ERROR, ASC_SANITIZE_COMMAND_FAILED, ASC_WRITE_PROTECTED, fieldInCdb, fieldInParameters,
  senseFixed, senseProgress,
} from "./sense";
import {
  scsiTaskAborted, scsiTaskAreaAddress, scsiTaskAreaGive, scsiTaskAreaRunBytes, scsiTaskAreaWant, scsiTaskBlockBytes,
  scsiTaskBlockCount, scsiTaskCheck, scsiTaskDataOutBytes, scsiTaskDirection, scsiTaskExpectedTransferBytes,
  scsiTaskFlagSet, scsiTaskGeneration, scsiTaskHeld, scsiTaskLba, scsiTaskLun, scsiTaskProgram, scsiTaskSetBlockBytes,
  scsiTaskSetBlockCount, scsiTaskSetDataOutBytes, scsiTaskSetLba, scsiTaskSetLun, scsiTaskSetNexus,
  scsiTaskSetOptions, scsiTaskSetProgram, scsiTaskSetState, scsiTaskSetTransferBytes, scsiTaskState, ScsiTaskState,
  scsiTaskTransferBytes, TASK_FLAG_DATA_OUT,
} from "./tasks";

import { writeProtected } from "./write_protect";

// One service of the operation: a WRITE of OVERWRITE (16 segments over the one pattern buffer, as WRITE SAME's), and
// an UNMAP of the erases (the disks' own limit for one UNMAP).
export const SANITIZE_WRITE_CHUNK_BYTES: u32 = 1 << 20;
export const SANITIZE_UNMAP_CHUNK_BYTES: u32 = UNMAP_BYTES_MAX;
const WORKER_NEXUS: u32 = 0xffff; // the worker speaks for no I_T nexus

enum SanitizeState {
  Idle = 0, // no operation, none failed: commands run as usual
  Running = 1, // an operation in progress: NOT READY, SANITIZE IN PROGRESS
  Failed = 2, // the last operation failed: MEDIUM ERROR, SANITIZE COMMAND FAILED
}

const ENTRY_BYTES: u32 = 32;
const AT_STATE: usize = 0;
const AT_SERVICE_ACTION: usize = 1;
const AT_AUSE: usize = 2;
const AT_INVERT: usize = 3;
const AT_PASS_COUNT: usize = 4;
const AT_PASS_INDEX: usize = 5;
const AT_ERASED: usize = 6;
const AT_WORKER: usize = 8;
const AT_WAITER: usize = 10;
const AT_WAITER_GENERATION: usize = 12;
const AT_LBA_NEXT: usize = 16;
const AT_BLOCK_COUNT: usize = 24;
if (AT_BLOCK_COUNT + 8 != ENTRY_BYTES) ERROR("sanitize entry: the last field ends the entry");

@inline function entryState(at: usize): SanitizeState { return <SanitizeState>load<u8>(at, AT_STATE); }
@inline function entryServiceAction(at: usize): u32 { return <u32>load<u8>(at, AT_SERVICE_ACTION); }
@inline function entryAuse(at: usize): bool { return load<u8>(at, AT_AUSE) != 0; }
@inline function entryInvert(at: usize): bool { return load<u8>(at, AT_INVERT) != 0; }
@inline function entryPassCount(at: usize): u32 { return <u32>load<u8>(at, AT_PASS_COUNT); }
@inline function entryPassIndex(at: usize): u32 { return <u32>load<u8>(at, AT_PASS_INDEX); }
@inline function entryErased(at: usize): bool { return load<u8>(at, AT_ERASED) != 0; }
@inline function entryWorker(at: usize): u32 { return <u32>load<u16>(at, AT_WORKER); }
@inline function entryWaiter(at: usize): u32 { return <u32>load<u16>(at, AT_WAITER); }
@inline function entryWaiterGeneration(at: usize): u32 { return load<u32>(at, AT_WAITER_GENERATION); }
@inline function entryLbaNext(at: usize): u64 { return load<u64>(at, AT_LBA_NEXT); }
@inline function entryBlockCount(at: usize): u64 { return load<u64>(at, AT_BLOCK_COUNT); }

@inline function entrySetState(at: usize, state: SanitizeState): void { store<u8>(at, <u8>state, AT_STATE); }
@inline function entrySetServiceAction(at: usize, sa: u32): void { store<u8>(at, <u8>sa, AT_SERVICE_ACTION); }
@inline function entrySetAuse(at: usize, ause: bool): void { store<u8>(at, ause ? 1 : 0, AT_AUSE); }
@inline function entrySetInvert(at: usize, invert: bool): void { store<u8>(at, invert ? 1 : 0, AT_INVERT); }
@inline function entrySetPassCount(at: usize, count: u32): void { store<u8>(at, <u8>count, AT_PASS_COUNT); }
@inline function entrySetPassIndex(at: usize, index: u32): void { store<u8>(at, <u8>index, AT_PASS_INDEX); }
@inline function entrySetErased(at: usize, erased: bool): void { store<u8>(at, erased ? 1 : 0, AT_ERASED); }
@inline function entrySetWorker(at: usize, w: u32): void { store<u16>(at, <u16>w, AT_WORKER); }
@inline function entrySetWaiter(at: usize, t: u32): void { store<u16>(at, <u16>t, AT_WAITER); }
@inline function entrySetWaiterGeneration(at: usize, generation: u32): void { store<u32>(at, generation, AT_WAITER_GENERATION); }
@inline function entrySetLbaNext(at: usize, lba: u64): void { store<u64>(at, lba, AT_LBA_NEXT); }
@inline function entrySetBlockCount(at: usize, count: u64): void { store<u64>(at, count, AT_BLOCK_COUNT); }

// The OVERWRITE parameter list's header (drawn above): read only through the accessors below.
const LIST_HEADER_BYTES: u32 = 4;
const AT_LIST_FLAGS: usize = 0; // INVERT(7), reserved(6-5), OVERWRITE COUNT(4-0)
const AT_LIST_RESERVED: usize = 1;
const AT_LIST_PATTERN_LENGTH: usize = 2;
if (AT_LIST_PATTERN_LENGTH + 2 != LIST_HEADER_BYTES) ERROR("sanitize list: the pattern length ends the header");
@inline function listFlags(list: usize): u32 { return <u32>load<u8>(list, AT_LIST_FLAGS); }
@inline function listOverwriteCount(list: usize): u32 { return listFlags(list) & 0x1f; }
@inline function listInvert(list: usize): bool { return (listFlags(list) & 0x80) != 0; }
@inline function listReserved(list: usize): u32 { return <u32>load<u8>(list, AT_LIST_RESERVED); }
@inline function listPatternLength(list: usize): u32 { return getBe16(list + AT_LIST_PATTERN_LENGTH); }

let entries: usize = 0;

export function sanitizeInit(): void {
  entries = carve(VOLUMES_MAX * ENTRY_BYTES, 16);
}

@inline function entryAt(lun: u32): usize {
  assert(lun < VOLUMES_MAX, "sanitize: logical unit out of range");
  return entries + <usize>lun * ENTRY_BYTES;
}

function invalidField(t: u32, byteIndex: u32, bitIndex: u32 = 0xff): bool {
  scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, fieldInCdb(byteIndex, bitIndex));
  return false;
}

function invalidParameter(t: u32, byteIndex: u32, bitIndex: u32 = 0xff): bool {
  scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(byteIndex, bitIndex));
  return false;
}

/**
 * True when task `t`'s unit `lun` refuses writes (write_protect.ts: read-only in the transport's LUN map, or SWP in
 * its Control mode page): SANITIZE answers DATA PROTECT, WRITE PROTECTED, after its own field checks.
 */
export function sanitizeWriteProtected(t: u32, lun: u32): bool {
  assert(lun < VOLUMES_MAX);
  return writeProtected(t, lun);
}

/** The operation's progress, a numerator of 65536: the blocks of every pass written or deallocated so far. */
function progress(at: usize): u32 {
  const blockCount = entryBlockCount(at);
  const total = blockCount * <u64>entryPassCount(at);
  if (total == 0) return 0;
  const done = <u64>entryPassIndex(at) * blockCount + entryLbaNext(at);
  return <u32>min((done << 16) / total, 0xffff);
}

/**
 * The gate every command to a present logical unit passes (after its CDB is checked, before reservations): false,
 * with the answer in the record, while an operation runs (NOT READY, SANITIZE IN PROGRESS, the progress in the
 * sense key specific bytes) or after one failed (MEDIUM ERROR, SANITIZE COMMAND FAILED; another SANITIZE may run).
 * SBC-4 lets INQUIRY, REPORT LUNS and REQUEST SENSE through.
 */
export function sanitizeAdmit(t: u32, lun: u32, opcode: u32): bool {
  const at = entryAt(lun);
  const state = entryState(at);
  if (state == SanitizeState.Idle) return true;
  if (opcode == OP_INQUIRY || opcode == OP_REPORT_LUNS || opcode == OP_REQUEST_SENSE) return true;
  switch (state) {
    case SanitizeState.Running:
      scsiTaskCheck(t, SENSE_KEY_NOT_READY, ASC_LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS, senseProgress(progress(at)));
      return false;
    case SanitizeState.Failed:
      if (opcode == OP_SANITIZE) return true;
      scsiTaskCheck(t, SENSE_KEY_MEDIUM_ERROR, ASC_SANITIZE_COMMAND_FAILED);
      return false;
    default: assert(false, "sanitize: unknown state"); return false;
  }
}

/** REQUEST SENSE's data for `lun` at `at`: the operation's progress, or its failure; 0 when there is neither. */
export function sanitizeSense(lun: u32, at: usize): u32 {
  const entry = entryAt(lun);
  switch (entryState(entry)) {
    case SanitizeState.Idle: return 0;
    case SanitizeState.Running:
      return senseFixed(at, SENSE_KEY_NOT_READY, ASC_LOGICAL_UNIT_NOT_READY_SANITIZE_IN_PROGRESS, senseProgress(progress(entry)));
    case SanitizeState.Failed: return senseFixed(at, SENSE_KEY_MEDIUM_ERROR, ASC_SANITIZE_COMMAND_FAILED);
    default: assert(false, "sanitize: unknown state"); return 0;
  }
}

/** True when an erase deallocated every block of `lun` and nothing has been written to it since. */
export function sanitizeErased(lun: u32): bool { return entryErased(entryAt(lun)); }

/** A write goes to `lun` (any command's, the target's own OVERWRITE chunks too): some blocks are mapped again. */
export function sanitizeMediumWritten(lun: u32): void {
  if (lun < VOLUMES_MAX) entrySetErased(entryAt(lun), false);
}

/**
 * SANITIZE's CDB: OVERWRITE takes a parameter list of 5 to block length + 4 bytes, the others none (INVALID FIELD IN
 * CDB, the PARAMETER LIST LENGTH). After an operation that failed with AUSE 0 (SBC-4, restricted completion mode),
 * EXIT FAILURE MODE and AUSE 1 are refused (INVALID FIELD IN CDB). EXIT FAILURE MODE ends failure mode here (GOOD,
 * also with none to end); the others get Program.Sanitize, and OVERWRITE one large buffer for its list.
 */
export function sanitizeDecode(t: u32): bool {
  const lun = scsiTaskLun(t);
  const at = entryAt(lun);
  const sa = cdbU8(t, 1) & 0x1f;
  const ause = (cdbU8(t, 1) & 0x20) != 0;
  const listBytes = cdbBe16(t, 7);
  const blockBytes = volumeAt(lun).blockSizeBytes;
  assert(blockBytes <= 65536 && 65536 % blockBytes == 0, "sanitize: the pattern's blocks fill one 64 KiB buffer");
  scsiTaskFlagSet(t, TASK_FLAG_DATA_OUT, true);
  if (sa == SA_SANITIZE_OVERWRITE) {
    if (listBytes <= LIST_HEADER_BYTES || listBytes > blockBytes + LIST_HEADER_BYTES) return invalidField(t, 7);
  } else if (listBytes != 0) {
    return invalidField(t, 7);
  }
  const restricted = entryState(at) == SanitizeState.Failed && !entryAuse(at);
  if (restricted && sa == SA_SANITIZE_EXIT_FAILURE_MODE) return invalidField(t, 1, 4);
  if (restricted && ause) return invalidField(t, 1, 5);
  if (sanitizeWriteProtected(t, lun)) {
    scsiTaskCheck(t, SENSE_KEY_DATA_PROTECT, ASC_WRITE_PROTECTED);
    return false;
  }
  if (sa == SA_SANITIZE_EXIT_FAILURE_MODE) {
    entrySetState(at, SanitizeState.Idle);
    return true; // Program.None: GOOD
  }
  scsiTaskSetBlockBytes(t, blockBytes);
  scsiTaskSetProgram(t, Program.Sanitize);
  if (sa != SA_SANITIZE_OVERWRITE) return true;
  const expected = scsiTaskDirection(t) == ScsiDirection.Write ? scsiTaskExpectedTransferBytes(t) : 0;
  scsiTaskSetTransferBytes(t, listBytes);
  scsiTaskSetDataOutBytes(t, min(listBytes, expected));
  scsiTaskAreaWant(t, BUFFER_CLASS_LARGE, 1); // one buffer: the list, then the pattern replicated over it
  return true;
}

/**
 * The OVERWRITE parameter list, once it is in: all of it (PARAMETER LIST LENGTH ERROR), no reserved bit, an OVERWRITE
 * COUNT, and a pattern of 1 to block length bytes inside the list (INVALID FIELD IN PARAMETER LIST). True for the
 * other service actions, which have none.
 */
export function sanitizeListCheck(t: u32): bool {
  if ((cdbU8(t, 1) & 0x1f) != SA_SANITIZE_OVERWRITE) return true;
  const listBytes = scsiTaskTransferBytes(t);
  if (scsiTaskDataOutBytes(t) < listBytes) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(7));
    return false;
  }
  const list = scsiTaskAreaAddress(t, 0);
  if ((listFlags(list) & 0x60) != 0) return invalidParameter(t, 0, 6);
  if (listOverwriteCount(list) == 0) return invalidParameter(t, 0, 4); // OVERWRITE COUNT 0: no pass
  if (listReserved(list) != 0) return invalidParameter(t, 1);
  const patternBytes = listPatternLength(list);
  if (patternBytes == 0 || patternBytes > scsiTaskBlockBytes(t) || patternBytes > listBytes - LIST_HEADER_BYTES) {
    return invalidParameter(t, 2);
  }
  return true;
}

/** True when an operation runs on `lun` (a second SANITIZE finds NOT READY at the gate, so this is for asserts). */
export function sanitizeRunning(lun: u32): bool { return entryState(entryAt(lun)) == SanitizeState.Running; }

/**
 * Starts the operation command `t` asks for (checked whole) on worker record `w`, a record of its own: the logical
 * unit is NOT READY from now on. `t` waits for the end unless IMMED (the target answers it at once then). OVERWRITE's
 * area, the parameter list, moves to the worker and becomes the pattern buffer.
 */
export function sanitizeBegin(t: u32, w: u32): void {
  const lun = scsiTaskLun(t);
  const at = entryAt(lun);
  assert(entryState(at) != SanitizeState.Running, "sanitize: two operations on one logical unit");
  assert(volumeAt(lun).blockCount > 0, "sanitize: a volume without blocks");
  const flags = cdbU8(t, 1);
  const sa = flags & 0x1f;
  const immed = (flags & 0x80) != 0;
  memory.fill(at, 0, ENTRY_BYTES);
  entrySetState(at, SanitizeState.Running);
  entrySetServiceAction(at, sa);
  entrySetAuse(at, (flags & 0x20) != 0);
  entrySetPassCount(at, 1); // one pass, unless OVERWRITE COUNT says more
  entrySetWorker(at, w);
  entrySetWaiter(at, immed ? SCSI_TASK_NONE : t);
  entrySetWaiterGeneration(at, scsiTaskGeneration(t));
  entrySetBlockCount(at, volumeAt(lun).blockCount);
  scsiTaskSetLun(w, lun);
  scsiTaskSetNexus(w, WORKER_NEXUS);
  scsiTaskSetBlockBytes(w, scsiTaskBlockBytes(t));
  scsiTaskSetProgram(w, Program.SanitizeWork);
  scsiTaskSetState(w, ScsiTaskState.Queued);
  if (sa != SA_SANITIZE_OVERWRITE) return;
  const list = scsiTaskAreaAddress(t, 0);
  const passes = listOverwriteCount(list);
  const invert = listInvert(list);
  entrySetPassCount(at, passes);
  entrySetInvert(at, invert);
  scsiTaskAreaGive(t, w);
  patternBuild(w, listPatternLength(list));
  if (invert && passes % 2 == 0) patternInvert(w); // SBC-4: the last pass writes the pattern itself
  scsiTaskSetOptions(w, OPT_REPEAT | OPT_FUA);
}

// The pattern from byte 4 of the buffer, repeated from the start of a block to its end, then the block repeated
// over the whole buffer (SBC-4: a pattern shorter than a block is repeated to fill it).
function patternBuild(w: u32, patternBytes: u32): void {
  const buffer = scsiTaskAreaAddress(w, 0);
  const blockBytes = scsiTaskBlockBytes(w);
  const bufferBytes = scsiTaskAreaRunBytes(w, 0);
  assert(patternBytes > 0 && patternBytes <= blockBytes && bufferBytes % blockBytes == 0, "sanitize: pattern checked");
  memory.copy(buffer, buffer + LIST_HEADER_BYTES, patternBytes);
  for (let at: u32 = patternBytes; at < blockBytes; at += patternBytes) {
    memory.copy(buffer + at, buffer, min(patternBytes, blockBytes - at));
  }
  for (let at: u32 = blockBytes; at < bufferBytes; at += blockBytes) memory.copy(buffer + at, buffer, blockBytes);
}

function patternInvert(w: u32): void {
  const buffer = scsiTaskAreaAddress(w, 0);
  const bufferBytes = scsiTaskAreaRunBytes(w, 0);
  for (let at: u32 = 0; at < bufferBytes; at += 8) store<u64>(buffer + at, ~load<u64>(buffer + at));
}

/** The service worker `w` sends for its chunks: WRITE FUA for OVERWRITE, UNMAP for the erases. */
export function sanitizeChunkFunction(w: u32): u32 {
  return entryServiceAction(entryAt(scsiTaskLun(w))) == SA_SANITIZE_OVERWRITE ? FrameFunction.WriteFua : FrameFunction.Unmap;
}

/**
 * Sets worker `w`'s next chunk in its record (scsiTaskLba, scsiTaskBlockCount), starting the next pass (its pattern
 * inverted with INVERT) after the last block; false when every pass is done.
 */
export function sanitizeChunkNext(w: u32): bool {
  const at = entryAt(scsiTaskLun(w));
  assert(entryState(at) == SanitizeState.Running && entryWorker(at) == w, "sanitize: a chunk for no operation");
  const blockCount = entryBlockCount(at);
  let lba = entryLbaNext(at);
  if (lba >= blockCount) {
    const pass = entryPassIndex(at) + 1;
    if (pass >= entryPassCount(at)) return false;
    entrySetPassIndex(at, pass);
    entrySetLbaNext(at, 0);
    lba = 0;
    if (entryInvert(at)) patternInvert(w);
  }
  const overwrite = entryServiceAction(at) == SA_SANITIZE_OVERWRITE;
  const chunkBlocks = (overwrite ? SANITIZE_WRITE_CHUNK_BYTES : SANITIZE_UNMAP_CHUNK_BYTES) / scsiTaskBlockBytes(w);
  scsiTaskSetLba(w, lba);
  scsiTaskSetBlockCount(w, <u32>min(blockCount - lba, <u64>chunkBlocks));
  return true;
}

/** Worker `w`'s chunk is on the medium: the progress moves past it. */
export function sanitizeChunkDone(w: u32): void {
  const at = entryAt(scsiTaskLun(w));
  assert(scsiTaskLba(w) == entryLbaNext(at), "sanitize: chunks done in order");
  entrySetLbaNext(at, scsiTaskLba(w) + <u64>scsiTaskBlockCount(w));
}

/**
 * The operation worker `w` ran has ended, `ok` or failed (the logical unit enters failure mode). Answers the command
 * that waits for it (IMMED 0), or SCSI_TASK_NONE when it was answered already, or aborted since.
 */
export function sanitizeEnd(w: u32, ok: bool): u32 {
  const at = entryAt(scsiTaskLun(w));
  assert(entryState(at) == SanitizeState.Running && entryWorker(at) == w, "sanitize: ended by another record");
  entrySetState(at, ok ? SanitizeState.Idle : SanitizeState.Failed);
  entrySetErased(at, ok && entryServiceAction(at) != SA_SANITIZE_OVERWRITE); // an erase left every block deallocated
  const waiter = entryWaiter(at);
  if (waiter == (SCSI_TASK_NONE & 0xffff) || !scsiTaskHeld(waiter)) return SCSI_TASK_NONE;
  if (scsiTaskGeneration(waiter) != entryWaiterGeneration(at) || scsiTaskState(waiter) != ScsiTaskState.Queued) return SCSI_TASK_NONE;
  if (scsiTaskProgram(waiter) != Program.Sanitize || scsiTaskAborted(waiter)) return SCSI_TASK_NONE;
  return waiter;
}
