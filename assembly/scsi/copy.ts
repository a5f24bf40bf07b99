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
// INFORMATION asks for them. token_copy.ts reads these entries through the accessors below.)
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
export const COPY_TARGET_DESCRIPTOR_BYTES: u32 = 32;
export const COPY_SEGMENT_DESCRIPTOR_BYTES: u32 = 28;
const TARGET_IDENTIFICATION: u32 = 0xe4;
const SEGMENT_BLOCK_TO_BLOCK: u32 = 0x02;
const ENTRY_BYTES: u32 = 64;
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
  const usage = (<u32>load<u8>(list + 1) >> 3) & 3;
  if (usage == USAGE_RESERVED) return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(1, 4));
  const targetBytes = getBe16(list + 2);
  const segmentBytes = getBe32(list + 8);
  if (getBe32(list + 12) != 0) return refuse(t, ASC_INLINE_DATA_LENGTH_EXCEEDED, fieldInParameters(12)); // none held
  if (<u64>targetBytes + segmentBytes > <u64>COPY_DESCRIPTOR_LIST_BYTES_MAX) {
    return refuse(t, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInParameters(8));
  }
  if (COPY_HEADER_BYTES + targetBytes + segmentBytes > listBytes) return refuse(t, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(10));
  if (targetBytes % COPY_TARGET_DESCRIPTOR_BYTES != 0) return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(2));
  const targetCount = targetBytes / COPY_TARGET_DESCRIPTOR_BYTES;
  for (let i: u32 = 0; i < targetCount; i++) {
    const at = COPY_HEADER_BYTES + i * COPY_TARGET_DESCRIPTOR_BYTES;
    if (<u32>load<u8>(list + at) != TARGET_IDENTIFICATION) {
      return refuse(t, ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE, fieldInParameters(at));
    }
    if (i >= COPY_TARGET_DESCRIPTORS_MAX) return refuse(t, ASC_TOO_MANY_TARGET_DESCRIPTORS, fieldInParameters(at));
    // SPC-4: LU ID TYPE and NUL are ignored; the PERIPHERAL DEVICE TYPE must be a block device's.
    if ((load<u8>(list + at + 1) & 0x1f) != 0) return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(at + 1, 4));
  }
  let at = COPY_HEADER_BYTES + targetBytes;
  const end = at + segmentBytes;
  let count: u32 = 0;
  // Bound: every pass moves `at` on by a whole descriptor, or returns.
  while (at < end) {
    if (<u32>load<u8>(list + at) != SEGMENT_BLOCK_TO_BLOCK) {
      return refuse(t, ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE, fieldInParameters(at));
    }
    if (count >= COPY_SEGMENT_DESCRIPTORS_MAX) return refuse(t, ASC_TOO_MANY_SEGMENT_DESCRIPTORS, fieldInParameters(at));
    if (end - at < 4 || getBe16(list + at + 2) + 4 != COPY_SEGMENT_DESCRIPTOR_BYTES) {
      return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(at + 2));
    }
    if (end - at < COPY_SEGMENT_DESCRIPTOR_BYTES) return refuse(t, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(8));
    at += COPY_SEGMENT_DESCRIPTOR_BYTES;
    count += 1;
  }
  return count;
}

// Reading a checked list.

export function copyListId(list: usize): u32 { return load<u8>(list); }
export function copyRetains(list: usize): bool { return ((<u32>load<u8>(list + 1) >> 3) & 3) != USAGE_NO_LIST_ID; }
export function copyTargetCount(list: usize): u32 { return getBe16(list + 2) / COPY_TARGET_DESCRIPTOR_BYTES; }
/** The parameter list offset of segment descriptor `index`. */
export function copySegmentOffset(list: usize, index: u32): u32 {
  return COPY_HEADER_BYTES + getBe16(list + 2) + index * COPY_SEGMENT_DESCRIPTOR_BYTES;
}
export function copySegmentSourceIndex(list: usize, index: u32): u32 { return getBe16(list + copySegmentOffset(list, index) + 4); }
export function copySegmentDestinationIndex(list: usize, index: u32): u32 { return getBe16(list + copySegmentOffset(list, index) + 6); }
/** DC: NUMBER OF BLOCKS counts destination blocks (else source blocks). */
export function copySegmentDc(list: usize, index: u32): bool { return (load<u8>(list + copySegmentOffset(list, index) + 1) & 0x02) != 0; }
export function copySegmentBlocks(list: usize, index: u32): u32 { return getBe16(list + copySegmentOffset(list, index) + 10); }
export function copySegmentSourceLba(list: usize, index: u32): u64 { return getBe64(list + copySegmentOffset(list, index) + 12); }
export function copySegmentDestinationLba(list: usize, index: u32): u64 { return getBe64(list + copySegmentOffset(list, index) + 20); }

/**
 * The logical unit target descriptor `index` names: the one whose NAA designator (VPD page 83h, association
 * logical unit) it carries; COPY_LUN_NONE when no logical unit of this target has it (COPY TARGET DEVICE NOT
 * REACHABLE). Other designator types name nothing here.
 */
export function copyTargetLun(list: usize, index: u32): u32 {
  const d = list + COPY_HEADER_BYTES + index * COPY_TARGET_DESCRIPTOR_BYTES;
  const codeSet = load<u8>(d + 4) & 0x0f;
  const kind = load<u8>(d + 5) & 0x3f; // ASSOCIATION 00b (logical unit), DESIGNATOR TYPE 3h (NAA)
  if (codeSet != 0x01 || kind != 0x03 || load<u8>(d + 7) != 8) return COPY_LUN_NONE;
  const naa = getBe64(d + 8);
  const count = volumesCount();
  for (let lun: u32 = 0; lun < count; lun++) if (lunNaa(lun) == naa) return lun;
  return COPY_LUN_NONE;
}

/** The DISK BLOCK LENGTH of target descriptor `index`. */
export function copyTargetBlockBytes(list: usize, index: u32): u32 {
  const d = list + COPY_HEADER_BYTES + index * COPY_TARGET_DESCRIPTOR_BYTES;
  return (<u32>load<u8>(d + 29) << 16) | getBe16(d + 30);
}

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
    const state = load<u8>(at);
    if (state == ENTRY_RUNNING) {
      running += 1;
      if (retain && load<u8>(at, 42) != 0 && entryIs(at, nexus, lun, listId, serviceAction)) {
        scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_OPERATION_IN_PROGRESS);
        return COPY_ENTRY_NONE;
      }
      continue;
    }
    // A finished entry with the same list identifier is replaced by the new copy's (SPC-4: the list ID is reused),
    // before a free one, so no older results under that identifier outlive it.
    const age: u64 = entryIs(at, nexus, lun, listId, serviceAction) ? 0 : state == ENTRY_FREE ? 1 : 2 + <u64>load<u32>(at, 44);
    if (pick == COPY_ENTRY_NONE || age < pickAge) { pick = e; pickAge = age; }
  }
  if (running >= COPIES_MAX || pick == COPY_ENTRY_NONE) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INSUFFICIENT_RESOURCES);
    return COPY_ENTRY_NONE;
  }
  const at = entryAt(pick);
  memory.fill(at, 0, ENTRY_BYTES);
  store<u8>(at, ENTRY_RUNNING);
  store<u32>(at, listId, 48);
  store<u8>(at, <u8>serviceAction, 52);
  store<u16>(at, <u16>COPY_TOKEN_NONE, 54);
  store<u16>(at, <u16>nexus, 2);
  store<u16>(at, <u16>lun, 4);
  store<u16>(at, <u16>t, 6);
  store<u32>(at, scsiTaskGeneration(t), 8);
  store<u8>(at, retain ? 1 : 0, 42);
  return pick;
}

@inline function entryIs(at: usize, nexus: u32, lun: u32, listId: u32, serviceAction: u32): bool {
  return <u32>load<u16>(at, 2) == nexus && <u32>load<u16>(at, 4) == lun && load<u32>(at, 48) == listId
    && (load<u8>(at, 52) == 0) == (serviceAction == 0);
}

/** True while entry `e` still belongs to the copy `t` runs (a nexus loss or reset may have discarded it). */
function entryOwned(e: u32, t: u32): bool {
  const at = entryAt(e);
  return load<u8>(at) == ENTRY_RUNNING && <u32>load<u16>(at, 6) == t && load<u32>(at, 8) == scsiTaskGeneration(t);
}

/** Counts progress for COPY STATUS: the segments finished so far, and `bytesMore` bytes written. */
export function copyProgress(e: u32, t: u32, segmentsProcessed: u32, bytesMore: u64): void {
  if (e == COPY_ENTRY_NONE || !entryOwned(e, t)) return;
  const at = entryAt(e);
  store<u16>(at, <u16>segmentsProcessed, 14);
  store<u64>(at, load<u64>(at, 16) + bytesMore, 16);
}

/** The copy `t` ended with the status (and sense) in its record: kept for RECEIVE COPY RESULTS, or freed. */
export function copyEnd(e: u32, t: u32): void {
  if (e == COPY_ENTRY_NONE || !entryOwned(e, t)) return;
  const at = entryAt(e);
  if (load<u8>(at, 42) == 0) { store<u8>(at, ENTRY_FREE); return; }
  store<u8>(at, ENTRY_DONE);
  store<u32>(at, ageNext, 44);
  ageNext += 1;
  const status = scsiTaskStatus(t);
  store<u8>(at, <u8>status, 12);
  const senseBytes = status == SAM_STATUS_CHECK_CONDITION ? min(scsiTaskSenseLength(t), SENSE_FIXED_BYTES) : 0;
  store<u8>(at, <u8>senseBytes, 13);
  if (senseBytes > 0) memory.copy(at + 24, scsiTaskSense(t), senseBytes);
}

/** SPC-4: copy results end with their I_T nexus, and with a reset of their logical unit (NEXUS_NONE: any nexus). */
export function copyDiscard(nexus: u32, lun: u32): void {
  for (let e: u32 = 0; e < COPY_RESULTS_MAX; e++) {
    const at = entryAt(e);
    if (load<u8>(at) == ENTRY_FREE) continue;
    if (nexus != 0xffff && <u32>load<u16>(at, 2) != nexus) continue;
    if (lun != COPY_LUN_NONE && <u32>load<u16>(at, 4) != lun) continue;
    store<u8>(at, ENTRY_FREE);
  }
}

/**
 * The entry with the results of the nexus's copy `listId` on the logical unit, or COPY_ENTRY_NONE; `serviceAction`
 * 0 finds EXTENDED COPY (LID1) lists, any other the token commands'.
 */
export function copyFind(nexus: u32, lun: u32, listId: u32, serviceAction: u32 = 0): u32 {
  for (let e: u32 = 0; e < COPY_RESULTS_MAX; e++) {
    const at = entryAt(e);
    if (load<u8>(at) != ENTRY_FREE && load<u8>(at, 42) != 0 && entryIs(at, nexus, lun, listId, serviceAction)) return e;
  }
  return COPY_ENTRY_NONE;
}

// Reading an entry (RECEIVE ROD TOKEN INFORMATION, token_copy.ts).
export const COPY_TOKEN_NONE: u32 = 0xffff;
export function copyResultRunning(e: u32): bool { return load<u8>(entryAt(e)) == ENTRY_RUNNING; }
export function copyResultServiceAction(e: u32): u32 { return load<u8>(entryAt(e), 52); }
export function copyResultStatus(e: u32): u32 { return load<u8>(entryAt(e), 12); }
export function copyResultSegments(e: u32): u32 { return load<u16>(entryAt(e), 14); }
export function copyResultBytes(e: u32): u64 { return load<u64>(entryAt(e), 16); }
export function copyResultSenseLength(e: u32): u32 { return load<u8>(entryAt(e), 13); }
export function copyResultSense(e: u32): usize { return entryAt(e) + 24; }
export function copyResultToken(e: u32): u32 { return load<u16>(entryAt(e), 54); }
export function copyResultTokenId(e: u32): u64 { return load<u64>(entryAt(e), 56); }
/** POPULATE TOKEN: the ROD token entry (rod_token.ts) and identifier RECEIVE ROD TOKEN INFORMATION gives back. */
export function copyResultSetToken(e: u32, t: u32, token: u32, id: u64): void {
  if (e == COPY_ENTRY_NONE || !entryOwned(e, t)) return;
  store<u16>(entryAt(e), <u16>token, 54);
  store<u64>(entryAt(e), id, 56);
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
  const running = load<u8>(entry) == ENTRY_RUNNING;
  switch (sa) {
    case RCR_COPY_STATUS: {
      // |0-3 AVAILABLE DATA|4 HDD,COPY MANAGER STATUS|5-6 SEGMENTS PROCESSED|7 TRANSFER COUNT UNITS|8-11 TRANSFER COUNT|
      memory.fill(at, 0, 12);
      putBe32(at, 8);
      const ok = load<u8>(entry, 12) == SAM_STATUS_GOOD;
      store<u8>(at + 4, running ? 0x00 : ok ? 0x01 : 0x02); // in progress, completed, completed with errors
      putBe16(at + 5, load<u16>(entry, 14));
      const bytes = load<u64>(entry, 16);
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
  const status = <u32>load<u8>(entry, 12);
  const senseBytes = <u32>load<u8>(entry, 13);
  if (running || status == SAM_STATUS_GOOD || load<u8>(entry, 43) != 0) return 4;
  const length: u32 = 60 + senseBytes;
  memory.fill(at, 0, length);
  putBe32(at, length - 4);
  store<u8>(at + 56, <u8>status);
  putBe16(at + 58, senseBytes);
  memory.copy(at + 60, entry + 24, senseBytes);
  if (allocationBytes >= length) store<u8>(entry, 1, 43); // given whole: discarded (COPY STATUS still reports them)
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
  store<u8>(at + 45, <u8>TARGET_IDENTIFICATION);
  return length;
}
