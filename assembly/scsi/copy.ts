// The copy manager (SPC-4, Third-party copy): EXTENDED COPY (LID1) parameter lists checked and read here, RECEIVE
// COPY RESULTS data built here, and the copy results kept per I_T nexus, logical unit and list identifier in a
// small table. The target (target.ts, Program.ExtendedCopy) moves the data: one READ into the task's own buffers,
// then one WRITE from them, a chunk at a time, through the CTA like any other command, so source and destination
// may be volumes on different storage processors.
//
// Supported: identification descriptor target descriptors (E4h) naming a logical unit of this target by its NAA
// designator (VPD page 83h), block device type, and block → block segment descriptors (02h). No inline or held data.
//
// Parameter list (LID1): |0 LIST IDENTIFIER|1 STR,LIST ID USAGE(4-3),PRIORITY|2-3 TARGET DESCRIPTOR LIST LENGTH|
// |4-7 -|8-11 SEGMENT DESCRIPTOR LIST LENGTH|12-15 INLINE DATA LENGTH|16- target descriptors, segment descriptors|
// Target descriptor E4h, 32 bytes: |0 E4h|1 LU ID TYPE,NUL,PERIPHERAL DEVICE TYPE|2-3 RELATIVE INITIATOR PORT|
// |4 CODE SET|5 ASSOCIATION,DESIGNATOR TYPE|6 -|7 DESIGNATOR LENGTH|8-27 DESIGNATOR|28 PAD|29-31 DISK BLOCK LENGTH|
// Segment descriptor 02h, 28 bytes: |0 02h|1 DC,CAT|2-3 DESCRIPTOR LENGTH (18h)|4-5 SOURCE TARGET DESCRIPTOR INDEX|
// |6-7 DESTINATION TARGET DESCRIPTOR INDEX|8-9 -|10-11 NUMBER OF BLOCKS|12-19 SOURCE LBA|20-27 DESTINATION LBA|
//
// Copy results entry, 64 bytes: |0 state u8|1 -|2 nexus u16|4 lun u16|6 task u16|8 generation u32|
// |12 status u8|13 senseLength u8|14 segmentsProcessed u16|16 bytes u64|24 sense[18]|42 retain u8|
// |43 detailsGiven u8|44 age u32 (finished: a lower one finished earlier)|48 listId u32|52 service action u8|
// |53 -|54 ROD token entry u16|56 ROD token identifier u64| (LID1 list identifiers are EXTENDED COPY's, service
// action 00h; the token commands' (10h, 11h) are another space of 32-bit identifiers, as RECEIVE ROD TOKEN
// INFORMATION asks for them. token_copy.ts reads these entries through the accessors below.) The entry, the list
// header and the segment descriptor are read and written only through the accessors below; target descriptors
// through target_descriptor.ts.
import { volumesCount } from "../volumes/volume";
import { carve } from "../kernel/carve";
import { getBe16, getBe32, getBe64, putBe16, putBe32 } from "./cdb";
import { SAM_STATUS_CHECK_CONDITION, SAM_STATUS_GOOD } from "../protocol/scsi_status";
import {
  ASC_INLINE_DATA_LENGTH_EXCEEDED, ASC_INSUFFICIENT_RESOURCES, ASC_INVALID_FIELD_IN_CDB,
  ASC_INVALID_FIELD_IN_PARAMETER_LIST, ASC_OPERATION_IN_PROGRESS, ASC_PARAMETER_LIST_LENGTH_ERROR,
  ASC_TOO_MANY_SEGMENT_DESCRIPTORS, ASC_TOO_MANY_TARGET_DESCRIPTORS, ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE,
  ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE, fieldInCdb, fieldInParameters, FIELD_NONE, SENSE_FIXED_BYTES,
} from "./sense";
import { SENSE_KEY_ILLEGAL_REQUEST } from "../protocol/sense_keys";
import { scsiTaskCheck, scsiTaskGeneration, scsiTaskLun, scsiTaskNexus, scsiTaskSense, scsiTaskSenseLength, scsiTaskStatus } from "./tasks";
import {
  TARGET_DESCRIPTOR_BYTES, TARGET_DESCRIPTOR_IDENTIFICATION, targetDescriptorDeviceType, targetDescriptorDiskBlockLength,
  targetDescriptorHasNaa, targetDescriptorNaa, targetDescriptorType,
} from "./target_descriptor";
import { lunNaa } from "./vpd";

export const COPY_HEADER_BYTES: u32 = 16;

// The limits OPERATING PARAMETERS reports, and the checks below keep.
export const COPY_TARGET_DESCRIPTORS_MAX: u32 = 8;
export const COPY_SEGMENT_DESCRIPTORS_MAX: u32 = 16;
export const COPY_DESCRIPTOR_LIST_BYTES_MAX: u32 = 1024; // target and segment descriptors together
export const COPY_SEGMENT_BYTES_MAX: u32 = 256 << 20; // MAXIMUM SEGMENT LENGTH: 65535 blocks of 4096 bytes fit
export const COPY_PARAMETER_LIST_BYTES_MAX: u32 = COPY_HEADER_BYTES + COPY_DESCRIPTOR_LIST_BYTES_MAX;
export const COPIES_MAX: u32 = 8; // copies in progress at once (TOTAL and MAXIMUM CONCURRENT COPIES)
export const COPY_RESULTS_MAX: u32 = 16; // entries: copies in progress and results kept for RECEIVE COPY RESULTS
export const COPY_CHUNK_BYTES: u32 = 256 << 10; // one READ then one WRITE; at most the transfer limit
export const COPY_LIST_AREA_BYTES: u32 = 65536; // the parameter list's buffer; the chunk follows it in the task's area
export const COPY_TARGET_DESCRIPTOR_BYTES: u32 = TARGET_DESCRIPTOR_BYTES;
export const COPY_SEGMENT_DESCRIPTOR_BYTES: u32 = 28;
const SEGMENT_BLOCK_TO_BLOCK: u32 = 0x02;
export const COPY_LIST_BAD: u32 = 0xffff_ffff;
export const COPY_ENTRY_NONE: u32 = 0xffff;
export const COPY_LUN_NONE: u32 = 0xffff_ffff;
if (COPY_PARAMETER_LIST_BYTES_MAX > COPY_LIST_AREA_BYTES) ERROR("the parameter list fits its buffer");

// LIST ID USAGE (byte 1, bits 4-3).
const USAGE_RESERVED: u32 = 1; // 01b
const USAGE_NO_LIST_ID: u32 = 3; // 11b: no copy results are kept

// Entry states.
const ENTRY_FREE: u8 = 0;
const ENTRY_RUNNING: u8 = 1;
const ENTRY_DONE: u8 = 2;

// The parameter list's header (drawn above).
const AT_LIST_ID: usize = 0;
const AT_LIST_FLAGS: usize = 1; // STR, LIST ID USAGE(4-3), PRIORITY
const AT_LIST_TARGET_BYTES: usize = 2;
const AT_LIST_SEGMENT_BYTES: usize = 8;
const AT_LIST_INLINE_BYTES: usize = 12;
if (AT_LIST_INLINE_BYTES + 4 != COPY_HEADER_BYTES) ERROR("copy list: the inline data length ends the header");
@inline function listIdUsage(list: usize): u32 { return (<u32>load<u8>(list, AT_LIST_FLAGS) >> 3) & 3; }
@inline function listTargetBytes(list: usize): u32 { return getBe16(list + AT_LIST_TARGET_BYTES); }
@inline function listSegmentBytes(list: usize): u32 { return getBe32(list + AT_LIST_SEGMENT_BYTES); }
@inline function listInlineBytes(list: usize): u32 { return getBe32(list + AT_LIST_INLINE_BYTES); }

// A segment descriptor's fields (drawn above); the two index offsets also serve as sense field pointers.
const AT_SEGMENT_TYPE: usize = 0;
const AT_SEGMENT_FLAGS: usize = 1; // DC, CAT
const AT_SEGMENT_LENGTH: usize = 2;
export const COPY_SEGMENT_AT_SOURCE_INDEX: u32 = 4;
export const COPY_SEGMENT_AT_DESTINATION_INDEX: u32 = 6;
const AT_SEGMENT_BLOCKS: usize = 10;
const AT_SEGMENT_SOURCE_LBA: usize = 12;
const AT_SEGMENT_DESTINATION_LBA: usize = 20;
if (AT_SEGMENT_DESTINATION_LBA + 8 != COPY_SEGMENT_DESCRIPTOR_BYTES) ERROR("copy segment: the destination LBA ends it");
const SEGMENT_LENGTH_BYTES: u32 = 4; // the type, flags and DESCRIPTOR LENGTH before what it counts
@inline function segmentType(d: usize): u32 { return <u32>load<u8>(d, AT_SEGMENT_TYPE); }
@inline function segmentLength(d: usize): u32 { return getBe16(d + AT_SEGMENT_LENGTH); }

// Copy results entry (drawn above).
const ENTRY_BYTES: u32 = 64;
const AT_STATE: usize = 0;
const AT_NEXUS: usize = 2;
const AT_LUN: usize = 4;
const AT_TASK: usize = 6;
const AT_GENERATION: usize = 8;
const AT_STATUS: usize = 12;
const AT_SENSE_LENGTH: usize = 13;
const AT_SEGMENTS_PROCESSED: usize = 14;
const AT_BYTES: usize = 16;
const AT_SENSE: usize = 24;
const AT_RETAIN: usize = 42;
const AT_DETAILS_GIVEN: usize = 43;
const AT_AGE: usize = 44;
const AT_LIST_ID_KEPT: usize = 48;
const AT_SERVICE_ACTION: usize = 52;
const AT_TOKEN: usize = 54;
const AT_TOKEN_ID: usize = 56;
if (AT_SENSE + SENSE_FIXED_BYTES != AT_RETAIN) ERROR("copy entry: fixed sense data fits before retain");
if (AT_TOKEN_ID + 8 != ENTRY_BYTES) ERROR("copy entry: the token identifier ends the entry");

@inline function entryState(at: usize): u8 { return load<u8>(at, AT_STATE); }
@inline function entryNexus(at: usize): u32 { return <u32>load<u16>(at, AT_NEXUS); }
@inline function entryLun(at: usize): u32 { return <u32>load<u16>(at, AT_LUN); }
@inline function entryTask(at: usize): u32 { return <u32>load<u16>(at, AT_TASK); }
@inline function entryGeneration(at: usize): u32 { return load<u32>(at, AT_GENERATION); }
@inline function entryStatus(at: usize): u32 { return <u32>load<u8>(at, AT_STATUS); }
@inline function entrySenseLength(at: usize): u32 { return <u32>load<u8>(at, AT_SENSE_LENGTH); }
@inline function entrySegmentsProcessed(at: usize): u32 { return <u32>load<u16>(at, AT_SEGMENTS_PROCESSED); }
@inline function entryBytes(at: usize): u64 { return load<u64>(at, AT_BYTES); }
@inline function entrySense(at: usize): usize { return at + AT_SENSE; }
@inline function entryRetain(at: usize): bool { return load<u8>(at, AT_RETAIN) != 0; }
@inline function entryDetailsGiven(at: usize): bool { return load<u8>(at, AT_DETAILS_GIVEN) != 0; }
@inline function entryAge(at: usize): u32 { return load<u32>(at, AT_AGE); }
@inline function entryListId(at: usize): u32 { return load<u32>(at, AT_LIST_ID_KEPT); }
@inline function entryServiceAction(at: usize): u32 { return <u32>load<u8>(at, AT_SERVICE_ACTION); }
@inline function entryToken(at: usize): u32 { return <u32>load<u16>(at, AT_TOKEN); }
@inline function entryTokenId(at: usize): u64 { return load<u64>(at, AT_TOKEN_ID); }

@inline function entrySetState(at: usize, state: u8): void { store<u8>(at, state, AT_STATE); }
@inline function entrySetNexus(at: usize, nexus: u32): void { store<u16>(at, <u16>nexus, AT_NEXUS); }
@inline function entrySetLun(at: usize, lun: u32): void { store<u16>(at, <u16>lun, AT_LUN); }
@inline function entrySetTask(at: usize, t: u32): void { store<u16>(at, <u16>t, AT_TASK); }
@inline function entrySetGeneration(at: usize, generation: u32): void { store<u32>(at, generation, AT_GENERATION); }
@inline function entrySetStatus(at: usize, status: u32): void { store<u8>(at, <u8>status, AT_STATUS); }
@inline function entrySetSenseLength(at: usize, bytes: u32): void { store<u8>(at, <u8>bytes, AT_SENSE_LENGTH); }
@inline function entrySetSegmentsProcessed(at: usize, count: u32): void { store<u16>(at, <u16>count, AT_SEGMENTS_PROCESSED); }
@inline function entrySetBytes(at: usize, bytes: u64): void { store<u64>(at, bytes, AT_BYTES); }
@inline function entrySetRetain(at: usize, retain: bool): void { store<u8>(at, retain ? 1 : 0, AT_RETAIN); }
@inline function entrySetDetailsGiven(at: usize): void { store<u8>(at, 1, AT_DETAILS_GIVEN); }
@inline function entrySetAge(at: usize, age: u32): void { store<u32>(at, age, AT_AGE); }
@inline function entrySetListId(at: usize, listId: u32): void { store<u32>(at, listId, AT_LIST_ID_KEPT); }
@inline function entrySetServiceAction(at: usize, sa: u32): void { store<u8>(at, <u8>sa, AT_SERVICE_ACTION); }
@inline function entrySetToken(at: usize, token: u32): void { store<u16>(at, <u16>token, AT_TOKEN); }
@inline function entrySetTokenId(at: usize, id: u64): void { store<u64>(at, id, AT_TOKEN_ID); }

// RECEIVE COPY RESULTS service actions.
export const RCR_COPY_STATUS: u32 = 0x00;
export const RCR_RECEIVE_DATA: u32 = 0x01;
export const RCR_OPERATING_PARAMETERS: u32 = 0x03;
export const RCR_FAILED_SEGMENT_DETAILS: u32 = 0x04;
export const RCR_FAILED: u32 = 0xffff_ffff; // the record holds CHECK CONDITION

let entries: usize = 0;
let ageNext: u32 = 0;

export function copyInit(): void {
  entries = carve(COPY_RESULTS_MAX * ENTRY_BYTES, 16);
}

@inline function entryAt(e: u32): usize {
  assert(e < COPY_RESULTS_MAX, "copy: entry out of range");
  return entries + <usize>e * ENTRY_BYTES;
}

function refuse(t: u32, ascAscq: u32, field: u32): u32 {
  scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ascAscq, field);
  return COPY_LIST_BAD;
}

/**
 * Checks the parameter list at `list` (`listBytes` received; the CDB asked for `cdbBytes`) before anything is
 * copied: lengths, then every target descriptor, then every segment descriptor, each as SPC-4 names its error.
 * Answers the number of segment descriptors, or COPY_LIST_BAD with CHECK CONDITION in the record. The logical
 * units the descriptors name are looked up later, segment by segment (copyTargetLun).
 */
export function copyListCheck(t: u32, list: usize, listBytes: u32, cdbBytes: u32): u32 {
  if (listBytes < cdbBytes || listBytes < COPY_HEADER_BYTES) return refuse(t, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(10));
  if (listIdUsage(list) == USAGE_RESERVED) {
    return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(AT_LIST_FLAGS, 4));
  }
  const targetBytes = listTargetBytes(list);
  const segmentBytes = listSegmentBytes(list);
  if (listInlineBytes(list) != 0) { // none held
    return refuse(t, ASC_INLINE_DATA_LENGTH_EXCEEDED, fieldInParameters(AT_LIST_INLINE_BYTES));
  }
  if (<u64>targetBytes + segmentBytes > <u64>COPY_DESCRIPTOR_LIST_BYTES_MAX) {
    return refuse(t, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInParameters(AT_LIST_SEGMENT_BYTES));
  }
  if (COPY_HEADER_BYTES + targetBytes + segmentBytes > listBytes) return refuse(t, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(10));
  if (targetBytes % COPY_TARGET_DESCRIPTOR_BYTES != 0) {
    return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(AT_LIST_TARGET_BYTES));
  }
  const targetCount = targetBytes / COPY_TARGET_DESCRIPTOR_BYTES;
  for (let i: u32 = 0; i < targetCount; i++) {
    const at = copyTargetOffset(i);
    if (targetDescriptorType(list + at) != TARGET_DESCRIPTOR_IDENTIFICATION) {
      return refuse(t, ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE, fieldInParameters(at));
    }
    if (i >= COPY_TARGET_DESCRIPTORS_MAX) return refuse(t, ASC_TOO_MANY_TARGET_DESCRIPTORS, fieldInParameters(at));
    // SPC-4: LU ID TYPE and NUL are ignored; the PERIPHERAL DEVICE TYPE must be a block device's.
    if (targetDescriptorDeviceType(list + at) != 0) return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(at + 1, 4));
  }
  let at = COPY_HEADER_BYTES + targetBytes;
  const end = at + segmentBytes;
  let count: u32 = 0;
  // Bound: every pass moves `at` on by a whole descriptor, or returns.
  while (at < end) {
    if (segmentType(list + at) != SEGMENT_BLOCK_TO_BLOCK) {
      return refuse(t, ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE, fieldInParameters(at));
    }
    if (count >= COPY_SEGMENT_DESCRIPTORS_MAX) return refuse(t, ASC_TOO_MANY_SEGMENT_DESCRIPTORS, fieldInParameters(at));
    if (end - at < SEGMENT_LENGTH_BYTES || segmentLength(list + at) + SEGMENT_LENGTH_BYTES != COPY_SEGMENT_DESCRIPTOR_BYTES) {
      return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(at + <u32>AT_SEGMENT_LENGTH));
    }
    if (end - at < COPY_SEGMENT_DESCRIPTOR_BYTES) {
      return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(AT_LIST_SEGMENT_BYTES));
    }
    at += COPY_SEGMENT_DESCRIPTOR_BYTES;
    count += 1;
  }
  return count;
}

// Reading a checked list.

export function copyListId(list: usize): u32 { return load<u8>(list, AT_LIST_ID); }
export function copyRetains(list: usize): bool { return listIdUsage(list) != USAGE_NO_LIST_ID; }
export function copyTargetCount(list: usize): u32 { return listTargetBytes(list) / COPY_TARGET_DESCRIPTOR_BYTES; }
/** The parameter list offset of segment descriptor `index`. */
export function copySegmentOffset(list: usize, index: u32): u32 {
  return COPY_HEADER_BYTES + listTargetBytes(list) + index * COPY_SEGMENT_DESCRIPTOR_BYTES;
}
@inline function segmentAt(list: usize, index: u32): usize { return list + copySegmentOffset(list, index); }
export function copySegmentSourceIndex(list: usize, index: u32): u32 {
  return getBe16(segmentAt(list, index) + COPY_SEGMENT_AT_SOURCE_INDEX);
}
export function copySegmentDestinationIndex(list: usize, index: u32): u32 {
  return getBe16(segmentAt(list, index) + COPY_SEGMENT_AT_DESTINATION_INDEX);
}
/** DC: NUMBER OF BLOCKS counts destination blocks (else source blocks). */
export function copySegmentDc(list: usize, index: u32): bool {
  return (load<u8>(segmentAt(list, index), AT_SEGMENT_FLAGS) & 0x02) != 0;
}
export function copySegmentBlocks(list: usize, index: u32): u32 { return getBe16(segmentAt(list, index) + AT_SEGMENT_BLOCKS); }
export function copySegmentSourceLba(list: usize, index: u32): u64 { return getBe64(segmentAt(list, index) + AT_SEGMENT_SOURCE_LBA); }
export function copySegmentDestinationLba(list: usize, index: u32): u64 {
  return getBe64(segmentAt(list, index) + AT_SEGMENT_DESTINATION_LBA);
}

/**
 * The logical unit target descriptor `index` names: the one whose NAA designator (VPD page 83h, association
 * logical unit) it carries; COPY_LUN_NONE when no logical unit of this target has it (COPY TARGET DEVICE NOT
 * REACHABLE). Other designator types name nothing here.
 */
export function copyTargetLun(list: usize, index: u32): u32 {
  const d = targetAt(list, index);
  if (!targetDescriptorHasNaa(d)) return COPY_LUN_NONE;
  const naa = targetDescriptorNaa(d);
  const count = volumesCount();
  for (let lun: u32 = 0; lun < count; lun++) if (lunNaa(lun) == naa) return lun;
  return COPY_LUN_NONE;
}

/** The DISK BLOCK LENGTH of target descriptor `index`. */
export function copyTargetBlockBytes(list: usize, index: u32): u32 { return targetDescriptorDiskBlockLength(targetAt(list, index)); }

/** The parameter list offset of target descriptor `index`. */
export function copyTargetOffset(index: u32): u32 { return COPY_HEADER_BYTES + index * COPY_TARGET_DESCRIPTOR_BYTES; }
@inline function targetAt(list: usize, index: u32): usize { return list + copyTargetOffset(index); }

// Copy results.

/**
 * Enters the copy task `t` starts (list identifier `listId`, results kept unless LIST ID USAGE is 11b); answers the
 * entry, or COPY_ENTRY_NONE with CHECK CONDITION in the record: OPERATION IN PROGRESS when the nexus already runs a
 * copy with that list identifier on the logical unit, INSUFFICIENT RESOURCES when COPIES_MAX copies are running.
 * A free entry is taken first, else the oldest finished one (its results are the ones the copy manager gives up).
 */
export function copyBegin(t: u32, listId: u32, retain: bool, serviceAction: u32 = 0): u32 {
  const nexus = scsiTaskNexus(t);
  const lun = scsiTaskLun(t);
  let running: u32 = 0;
  let pick = COPY_ENTRY_NONE;
  let pickAge: u64 = 0;
  for (let e: u32 = 0; e < COPY_RESULTS_MAX; e++) {
    const at = entryAt(e);
    const state = entryState(at);
    if (state == ENTRY_RUNNING) {
      running += 1;
      if (retain && entryRetain(at) && entryIs(at, nexus, lun, listId, serviceAction)) {
        scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_OPERATION_IN_PROGRESS);
        return COPY_ENTRY_NONE;
      }
      continue;
    }
    // A finished entry with the same list identifier is replaced by the new copy's (SPC-4: the list ID is reused),
    // before a free one, so no older results under that identifier outlive it.
    const age: u64 = entryIs(at, nexus, lun, listId, serviceAction) ? 0 : state == ENTRY_FREE ? 1 : 2 + <u64>entryAge(at);
    if (pick == COPY_ENTRY_NONE || age < pickAge) { pick = e; pickAge = age; }
  }
  if (running >= COPIES_MAX || pick == COPY_ENTRY_NONE) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INSUFFICIENT_RESOURCES);
    return COPY_ENTRY_NONE;
  }
  const at = entryAt(pick);
  memory.fill(at, 0, ENTRY_BYTES);
  entrySetState(at, ENTRY_RUNNING);
  entrySetListId(at, listId);
  entrySetServiceAction(at, serviceAction);
  entrySetToken(at, COPY_TOKEN_NONE);
  entrySetNexus(at, nexus);
  entrySetLun(at, lun);
  entrySetTask(at, t);
  entrySetGeneration(at, scsiTaskGeneration(t));
  entrySetRetain(at, retain);
  return pick;
}

@inline function entryIs(at: usize, nexus: u32, lun: u32, listId: u32, serviceAction: u32): bool {
  return entryNexus(at) == nexus && entryLun(at) == lun && entryListId(at) == listId
    && (entryServiceAction(at) == 0) == (serviceAction == 0);
}

/** True while entry `e` still belongs to the copy `t` runs (a nexus loss or reset may have discarded it). */
function entryOwned(e: u32, t: u32): bool {
  const at = entryAt(e);
  return entryState(at) == ENTRY_RUNNING && entryTask(at) == t && entryGeneration(at) == scsiTaskGeneration(t);
}

/** Counts progress for COPY STATUS: the segments finished so far, and `bytesMore` bytes written. */
export function copyProgress(e: u32, t: u32, segmentsProcessed: u32, bytesMore: u64): void {
  if (e == COPY_ENTRY_NONE || !entryOwned(e, t)) return;
  const at = entryAt(e);
  entrySetSegmentsProcessed(at, segmentsProcessed);
  entrySetBytes(at, entryBytes(at) + bytesMore);
}

/** The copy `t` ended with the status (and sense) in its record: kept for RECEIVE COPY RESULTS, or freed. */
export function copyEnd(e: u32, t: u32): void {
  if (e == COPY_ENTRY_NONE || !entryOwned(e, t)) return;
  const at = entryAt(e);
  if (!entryRetain(at)) { entrySetState(at, ENTRY_FREE); return; }
  entrySetState(at, ENTRY_DONE);
  entrySetAge(at, ageNext);
  ageNext += 1;
  const status = scsiTaskStatus(t);
  entrySetStatus(at, status);
  const senseBytes = status == SAM_STATUS_CHECK_CONDITION ? min(scsiTaskSenseLength(t), SENSE_FIXED_BYTES) : 0;
  entrySetSenseLength(at, senseBytes);
  if (senseBytes > 0) memory.copy(entrySense(at), scsiTaskSense(t), senseBytes);
}

/** SPC-4: copy results end with their I_T nexus, and with a reset of their logical unit (NEXUS_NONE: any nexus). */
export function copyDiscard(nexus: u32, lun: u32): void {
  for (let e: u32 = 0; e < COPY_RESULTS_MAX; e++) {
    const at = entryAt(e);
    if (entryState(at) == ENTRY_FREE) continue;
    if (nexus != 0xffff && entryNexus(at) != nexus) continue;
    if (lun != COPY_LUN_NONE && entryLun(at) != lun) continue;
    entrySetState(at, ENTRY_FREE);
  }
}

/**
 * The entry with the results of the nexus's copy `listId` on the logical unit, or COPY_ENTRY_NONE; `serviceAction`
 * 0 finds EXTENDED COPY (LID1) lists, any other the token commands'.
 */
export function copyFind(nexus: u32, lun: u32, listId: u32, serviceAction: u32 = 0): u32 {
  for (let e: u32 = 0; e < COPY_RESULTS_MAX; e++) {
    const at = entryAt(e);
    if (entryState(at) != ENTRY_FREE && entryRetain(at) && entryIs(at, nexus, lun, listId, serviceAction)) return e;
  }
  return COPY_ENTRY_NONE;
}

// Reading an entry (RECEIVE ROD TOKEN INFORMATION, token_copy.ts).
export const COPY_TOKEN_NONE: u32 = 0xffff;
export function copyResultRunning(e: u32): bool { return entryState(entryAt(e)) == ENTRY_RUNNING; }
export function copyResultServiceAction(e: u32): u32 { return entryServiceAction(entryAt(e)); }
export function copyResultStatus(e: u32): u32 { return entryStatus(entryAt(e)); }
export function copyResultSegments(e: u32): u32 { return entrySegmentsProcessed(entryAt(e)); }
export function copyResultBytes(e: u32): u64 { return entryBytes(entryAt(e)); }
export function copyResultSenseLength(e: u32): u32 { return entrySenseLength(entryAt(e)); }
export function copyResultSense(e: u32): usize { return entrySense(entryAt(e)); }
export function copyResultToken(e: u32): u32 { return entryToken(entryAt(e)); }
export function copyResultTokenId(e: u32): u64 { return entryTokenId(entryAt(e)); }
/** POPULATE TOKEN: the ROD token entry (rod_token.ts) and identifier RECEIVE ROD TOKEN INFORMATION gives back. */
export function copyResultSetToken(e: u32, t: u32, token: u32, id: u64): void {
  if (e == COPY_ENTRY_NONE || !entryOwned(e, t)) return;
  entrySetToken(entryAt(e), token);
  entrySetTokenId(entryAt(e), id);
}

/**
 * RECEIVE COPY RESULTS parameter data for service action `sa` at `at` (a page); answers its length, or RCR_FAILED
 * (INVALID FIELD IN CDB: no copy with that list identifier from this nexus). `allocationBytes` is the CDB's: failed
 * segment details given whole are discarded (SPC-4).
 */
export function copyResultsBuild(t: u32, sa: u32, listId: u32, allocationBytes: u32, at: usize): u32 {
  if (sa == RCR_OPERATING_PARAMETERS) return operatingParameters(at);
  const e = copyFind(scsiTaskNexus(t), scsiTaskLun(t), listId);
  if (e == COPY_ENTRY_NONE) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, fieldInCdb(2));
    return RCR_FAILED;
  }
  const entry = entryAt(e);
  const running = entryState(entry) == ENTRY_RUNNING;
  switch (sa) {
    case RCR_COPY_STATUS: {
      // |0-3 AVAILABLE DATA|4 HDD,COPY MANAGER STATUS|5-6 SEGMENTS PROCESSED|7 TRANSFER COUNT UNITS|8-11 TRANSFER COUNT|
      memory.fill(at, 0, 12);
      putBe32(at, 8);
      const ok = entryStatus(entry) == SAM_STATUS_GOOD;
      store<u8>(at + 4, running ? 0x00 : ok ? 0x01 : 0x02); // in progress, completed, completed with errors
      putBe16(at + 5, entrySegmentsProcessed(entry));
      const bytes = entryBytes(entry);
      const kibibytes = bytes > 0xffff_ffff;
      store<u8>(at + 7, kibibytes ? 0x01 : 0x00); // TRANSFER COUNT UNITS: bytes, or KiB when bytes do not fit
      putBe32(at + 8, <u32>(kibibytes ? bytes >> 10 : bytes));
      return 12;
    }
    case RCR_RECEIVE_DATA: { // block → block segments hold no data: AVAILABLE DATA 0
      memory.fill(at, 0, 4);
      return 4;
    }
    default: { // FAILED SEGMENT DETAILS
      assert(sa == RCR_FAILED_SEGMENT_DETAILS, "copy: service action checked by the command table");
      return failedSegmentDetails(entry, running, allocationBytes, at);
    }
  }
}

// |0-3 AVAILABLE DATA|4-55 -|56 COPY COMMAND STATUS|57 -|58-59 SENSE DATA LENGTH|60- SENSE DATA|; AVAILABLE DATA 0
// and nothing more while the copy runs or when it did not fail.
function failedSegmentDetails(entry: usize, running: bool, allocationBytes: u32, at: usize): u32 {
  memory.fill(at, 0, 4);
  const status = entryStatus(entry);
  const senseBytes = entrySenseLength(entry);
  if (running || status == SAM_STATUS_GOOD || entryDetailsGiven(entry)) return 4;
  const length: u32 = 60 + senseBytes;
  memory.fill(at, 0, length);
  putBe32(at, length - 4);
  store<u8>(at + 56, <u8>status);
  putBe16(at + 58, senseBytes);
  memory.copy(at + 60, entrySense(entry), senseBytes);
  if (allocationBytes >= length) entrySetDetailsGiven(entry); // given whole: discarded (COPY STATUS still reports them)
  return length;
}

// SPC-4, OPERATING PARAMETERS: |0-3 AVAILABLE DATA|4 -|5 SNLID|6-7 -|8-9 MAXIMUM TARGET DESCRIPTOR COUNT|
// |10-11 MAXIMUM SEGMENT DESCRIPTOR COUNT|12-15 MAXIMUM DESCRIPTOR LIST LENGTH|16-19 MAXIMUM SEGMENT LENGTH|
// |20-23 MAXIMUM INLINE DATA LENGTH|24-27 HELD DATA LIMIT|28-31 MAXIMUM STREAM DEVICE TRANSFER SIZE|32-33 -|
// |34-35 TOTAL CONCURRENT COPIES|36 MAXIMUM CONCURRENT COPIES|37 DATA SEGMENT GRANULARITY (log2)|
// |38 INLINE DATA GRANULARITY|39 HELD DATA GRANULARITY|40-42 -|43 IMPLEMENTED DESCRIPTOR LIST LENGTH|44- codes|
function operatingParameters(at: usize): u32 {
  const length: u32 = 44 + 2;
  memory.fill(at, 0, length);
  putBe32(at, length - 4);
  putBe16(at + 8, COPY_TARGET_DESCRIPTORS_MAX);
  putBe16(at + 10, COPY_SEGMENT_DESCRIPTORS_MAX);
  putBe32(at + 12, COPY_DESCRIPTOR_LIST_BYTES_MAX);
  putBe32(at + 16, COPY_SEGMENT_BYTES_MAX);
  putBe16(at + 34, COPIES_MAX);
  store<u8>(at + 36, <u8>COPIES_MAX);
  store<u8>(at + 37, 9); // DATA SEGMENT GRANULARITY: 2^9, the smallest block
  store<u8>(at + 43, 2);
  store<u8>(at + 44, <u8>SEGMENT_BLOCK_TO_BLOCK); // ascending: 02h, E4h
  store<u8>(at + 45, <u8>TARGET_DESCRIPTOR_IDENTIFICATION);
  return length;
}
