// Mode parameters per logical unit (SPC-4, Mode parameters; SBC-3, Mode parameters): the Caching page (08h), the
// Control page (0Ah) and the Informational Exceptions Control page (1Ch), their current, changeable and default
// values, MODE SENSE parameter data, and MODE SELECT. Nothing is saved: PC 11b (saved) and SP 1 are refused, and a
// logical unit reset brings the defaults back.
// What can change: WCE (write cache: with WCE 0 every write is forced to the medium), SWP (software write protect:
// the unit refuses writes to its medium, write_protect.ts), and the informational exceptions controls (EWASC, DEXCPT, MRIE, INTERVAL TIMER, REPORT COUNT), kept but with nothing to report.
// Per LUN, 44 bytes: |0 Caching page[20]|20 Control page[12]|32 Informational Exceptions page[12]|
import { VOLUMES_MAX } from "../volumes/volume";
import { carve } from "../kernel/carve";
import { getBe16, getBe32, getBe64, putBe16, putBe32, putBe64 } from "./cdb";

export const MODE_PAGE_CACHING: u32 = 0x08;
export const MODE_PAGE_CONTROL: u32 = 0x0a;
export const MODE_PAGE_INFORMATIONAL_EXCEPTIONS: u32 = 0x1c;
export const MODE_PAGE_ALL: u32 = 0x3f;
export const MODE_PC_CURRENT: u32 = 0;
export const MODE_PC_CHANGEABLE: u32 = 1;
export const MODE_PC_DEFAULT: u32 = 2;
export const MODE_PC_SAVED: u32 = 3;

const LUN_BYTES: u32 = 48;
const PAGES_BYTES: u32 = 44;
// SBC-3 device-specific parameter: WP (the medium is write-protected), DPOFUA 1 (DPO and FUA are accepted).
const DEVICE_SPECIFIC_DPOFUA: u8 = 0x10;
const DEVICE_SPECIFIC_WP: u8 = 0x80;
const CONTROL_SWP_AT: u32 = 24; // the Control page's byte 4 in the layout
const CONTROL_SWP: u8 = 0x08;
const CONTROL_TAS_AT: u32 = 25; // the Control page's byte 5
const CONTROL_TAS: u8 = 0x40;

// Defaults, in page order. Caching: WCE 1. Control: GLTSD 1, QUEUE ALGORITHM MODIFIER 1 (unrestricted reordering),
// QERR 00b, TAS 1 (commands another I_T nexus aborted end with TASK ABORTED status: an initiator without command
// timeouts is never left waiting for them; not changeable), D_SENSE 0, SWP 0. Informational exceptions: DEXCPT 1 (no failure prediction), MRIE 0.
const DEFAULTS: usize = memory.data<u8>([
  0x08, 0x12, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x0a, 0x0a, 0x02, 0x10, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x1c, 0x0a, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
]);
// Changeable masks, the same layout (the page code and length bytes are zero in a changeable-values page).
const CHANGEABLE: usize = memory.data<u8>([
  0x08, 0x12, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x0a, 0x0a, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  0x1c, 0x0a, 0x18, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
]);

let pages: usize = 0;

export function modeInit(): void {
  pages = carve(VOLUMES_MAX * LUN_BYTES, 16);
  for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) modeLunReset(lun);
}

@inline function lunPages(lun: u32): usize {
  assert(lun < VOLUMES_MAX, "mode: LUN out of range");
  return pages + <usize>lun * LUN_BYTES;
}

/** Current values back to the defaults (SPC-4: after a logical unit reset, with no saved values). */
export function modeLunReset(lun: u32): void { memory.copy(lunPages(lun), DEFAULTS, PAGES_BYTES); }

/** WCE of the Caching page: false means every write goes to the medium before GOOD. */
export function modeWriteCacheEnabled(lun: u32): bool { return (load<u8>(lunPages(lun), 2) & 0x04) != 0; }

/** SWP of the Control page: an initiator asked the unit to refuse writes to its medium (SPC-4, Control mode page). */
export function modeSoftwareWriteProtect(lun: u32): bool { return (load<u8>(lunPages(lun), CONTROL_SWP_AT) & CONTROL_SWP) != 0; }

/** TAS of the Control page: commands aborted by another I_T nexus's action end with TASK ABORTED status (SPC-4). */
export function modeTaskAbortedStatus(lun: u32): bool { return (load<u8>(lunPages(lun), CONTROL_TAS_AT) & CONTROL_TAS) != 0; }

/** Where page `code` lives in the 44-byte layout, and its length; the offset is PAGES_BYTES if unknown. */
function pageOffset(code: u32): u32 {
  switch (code) {
    case MODE_PAGE_CACHING: return 0;
    case MODE_PAGE_CONTROL: return 20;
    case MODE_PAGE_INFORMATIONAL_EXCEPTIONS: return 32;
    default: return PAGES_BYTES;
  }
}
function pageBytes(code: u32): u32 { return code == MODE_PAGE_CACHING ? 20 : 12; }

export function modePageKnown(code: u32): bool { return code == MODE_PAGE_ALL || pageOffset(code) != PAGES_BYTES; }

/** Copies page `code` as page control `pc` asks (current, changeable or default) to `at`; answers its length. */
function pageCopy(lun: u32, code: u32, pc: u32, at: usize): u32 {
  const offset = pageOffset(code);
  const length = pageBytes(code);
  const source = pc == MODE_PC_CHANGEABLE ? CHANGEABLE : pc == MODE_PC_DEFAULT ? DEFAULTS : lunPages(lun);
  memory.copy(at, source + offset, length);
  store<u8>(at, <u8>code, 0); // PS 0: nothing is saveable
  store<u8>(at, <u8>(length - 2), 1);
  return length;
}

/**
 * MODE SENSE (6) or (10) parameter data at `at` (room for 128 bytes): the header (WP set when `writeProtected`), a
 * block descriptor unless `dbd` (long with LLBAA in the 10-byte form), and page `code` (3Fh: every page in ascending
 * order). Answers the length.
 */
export function modeSenseBuild(lun: u32, at: usize, is10: bool, dbd: bool, llbaa: bool, pc: u32, code: u32,
  blockCount: u64, blockBytes: u32, writeProtected: bool): u32 {
  assert(modePageKnown(code) && pc != MODE_PC_SAVED, "mode: page and page control checked by the caller");
  const headerBytes: u32 = is10 ? 8 : 4;
  const descriptorBytes: u32 = dbd ? 0 : is10 && llbaa ? 16 : 8;
  let length = headerBytes;
  memory.fill(at, 0, 128);
  if (descriptorBytes == 16) {
    if (pc != MODE_PC_CHANGEABLE) { putBe64(at + length, blockCount); putBe32(at + length + 12, blockBytes); }
  } else if (descriptorBytes == 8) {
    // SBC-3, Short LBA mode parameter block descriptor: the count saturates at FFFF_FFFFh.
    if (pc != MODE_PC_CHANGEABLE) { putBe32(at + length, <u32>min(blockCount, 0xffff_ffff)); putBe32(at + length + 4, blockBytes & 0xff_ffff); }
  }
  length += descriptorBytes;
  if (code == MODE_PAGE_ALL) {
    length += pageCopy(lun, MODE_PAGE_CACHING, pc, at + length);
    length += pageCopy(lun, MODE_PAGE_CONTROL, pc, at + length);
    length += pageCopy(lun, MODE_PAGE_INFORMATIONAL_EXCEPTIONS, pc, at + length);
  } else {
    length += pageCopy(lun, code, pc, at + length);
  }
  const deviceSpecific = writeProtected ? DEVICE_SPECIFIC_DPOFUA | DEVICE_SPECIFIC_WP : DEVICE_SPECIFIC_DPOFUA;
  if (is10) {
    putBe16(at, length - 2); // MODE DATA LENGTH: the bytes after itself
    store<u8>(at + 3, deviceSpecific);
    store<u8>(at + 4, descriptorBytes == 16 ? 1 : 0); // LONGLBA
    putBe16(at + 6, descriptorBytes);
  } else {
    store<u8>(at, <u8>(length - 1));
    store<u8>(at + 2, deviceSpecific);
    store<u8>(at + 3, <u8>descriptorBytes);
  }
  return length;
}

export enum ModeSelectResult {
  Unchanged = 0, // accepted, nothing changed
  Changed = 1, // accepted, some current value changed (MODE PARAMETERS CHANGED for the other nexuses)
  InvalidField = 2, // INVALID FIELD IN PARAMETER LIST at modeSelectFieldByte
  ListLength = 3, // PARAMETER LIST LENGTH ERROR: a header, descriptor or page cut short
}

let fieldByte: u32 = 0;
/** The parameter list byte of the field an InvalidField result names. */
export function modeSelectFieldByte(): u32 { return fieldByte; }

const staged: usize = memory.data(PAGES_BYTES); // the new values, applied only when every page is valid

/**
 * MODE SELECT (6) or (10) with the parameter list at `list` (`listBytes` long): checks the header and block
 * descriptor against the unit, then every page (known code, no subpage, the right length, no bit changed that is not
 * changeable), and only then applies them all.
 */
export function modeSelectApply(lun: u32, list: usize, listBytes: u32, is10: bool, blockCount: u64, blockBytes: u32): ModeSelectResult {
  const headerBytes: u32 = is10 ? 8 : 4;
  if (listBytes == 0) return ModeSelectResult.Unchanged; // SPC-4: a zero length moves no data and is not an error
  if (listBytes < headerBytes) return ModeSelectResult.ListLength;
  const descriptorBytes = is10 ? getBe16(list + 6) : <u32>load<u8>(list + 3);
  const longLba = is10 && (load<u8>(list + 4) & 0x01) != 0;
  if (descriptorBytes != 0 && descriptorBytes != (longLba ? 16 : 8)) return invalid(is10 ? 6 : 3);
  if (headerBytes + descriptorBytes > listBytes) return ModeSelectResult.ListLength;
  if (descriptorBytes != 0) {
    const d = list + headerBytes;
    const count: u64 = longLba ? getBe64(d) : <u64>getBe32(d);
    const length = longLba ? getBe32(d + 12) : getBe32(d + 4) & 0xff_ffff;
    // The block count may be zero (no change) or the unit's; the block length must be the unit's.
    if (count != 0 && count != (longLba ? blockCount : min(blockCount, 0xffff_ffff))) return invalid(headerBytes);
    if (length != blockBytes) return invalid(headerBytes + (longLba ? 12 : 5));
  }
  memory.copy(staged, lunPages(lun), PAGES_BYTES);
  let offset = headerBytes + descriptorBytes;
  // Bound: every page consumes at least two bytes of a list of at most 64 KiB.
  for (let n: u32 = 0; n < 32768 && offset < listBytes; n++) {
    if (offset + 2 > listBytes) return ModeSelectResult.ListLength;
    const result = pageStage(list, offset, listBytes);
    if (result != ModeSelectResult.Unchanged) return result;
    offset += 2 + <u32>load<u8>(list + offset + 1);
  }
  const changed = memory.compare(staged, lunPages(lun), PAGES_BYTES) != 0;
  memory.copy(lunPages(lun), staged, PAGES_BYTES);
  return changed ? ModeSelectResult.Changed : ModeSelectResult.Unchanged;
}

// Checks one page of the list at `offset` and stages its values; Unchanged when it is good.
function pageStage(list: usize, offset: u32, listBytes: u32): ModeSelectResult {
  const page = list + offset;
  const codeByte = <u32>load<u8>(page);
  if ((codeByte & 0x40) != 0) return invalid(offset); // SPF: no page has subpages
  const code = codeByte & 0x3f;
  const at = pageOffset(code);
  if (at == PAGES_BYTES) return invalid(offset);
  const length = pageBytes(code);
  if (<u32>load<u8>(page + 1) != length - 2) return invalid(offset + 1);
  if (offset + length > listBytes) return ModeSelectResult.ListLength;
  for (let i: u32 = 2; i < length; i++) {
    const mask = <u32>load<u8>(CHANGEABLE + at + i);
    const value = <u32>load<u8>(page + i);
    const current = <u32>load<u8>(staged + at + i);
    if (((value ^ current) & ~mask & 0xff) != 0) return invalid(offset + i);
    store<u8>(staged + at + i, <u8>((current & ~mask) | (value & mask)));
  }
  return ModeSelectResult.Unchanged;
}

function invalid(byteIndex: u32): ModeSelectResult {
  fieldByte = byteIndex;
  return ModeSelectResult.InvalidField;
}
