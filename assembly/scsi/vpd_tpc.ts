// The Third-party Copy VPD page (SPC-4, 8Fh): what this copy manager does, as third-party copy descriptors
// |0-1 THIRD-PARTY COPY DESCRIPTOR TYPE|2-3 THIRD-PARTY COPY DESCRIPTOR LENGTH (the bytes after byte 3)|4- parameters|,
// each a multiple of four bytes. Block Device ROD Limits (0000h, SBC-3), Supported Commands (0001h), Parameter Data
// (0004h), Supported Descriptors (0008h), ROD Token Features (0106h), Supported ROD Types (0108h), General Copy
// Operations (8001h). No Supported CSCD Descriptor IDs (000Ch): those name copy targets in EXTENDED COPY (LID4) lists,
// which this copy manager does not take. The numbers are the ones copy.ts and rod_token.ts enforce.
import { volumeAt } from "../volumes/volume";
import { putBe16, putBe32, putBe64 } from "./cdb";
import {
  COPIES_MAX, COPY_DESCRIPTOR_LIST_BYTES_MAX, COPY_SEGMENT_BYTES_MAX, COPY_SEGMENT_DESCRIPTORS_MAX,
  COPY_TARGET_DESCRIPTORS_MAX,
} from "./copy";
import { limitTransferBytes } from "./limits";
import {
  ROD_TOKEN_BYTES_MAX, ROD_TOKEN_RANGES_MAX, ROD_TOKEN_TIMEOUT_DEFAULT_SECONDS, ROD_TOKEN_TIMEOUT_MAX_SECONDS,
  ROD_TYPE_ACCESS_UPON_REFERENCE, ROD_TYPE_BLOCK_DEVICE_ZERO,
} from "./rod_token";

export const VPD_THIRD_PARTY_COPY: u32 = 0x8f;
/** The page's length, header included (a page buffer holds it). */
export const VPD_THIRD_PARTY_COPY_BYTES: u32 = 4 + 36 + 20 + 32 + 8 + 96 + 136 + 36;

// Supported Commands: |opcode|SERVICE ACTION LIST LENGTH|service actions|, per operation code.
const COMMANDS: usize = memory.data<u8>([
  0x83, 3, 0x00, 0x10, 0x11, // EXTENDED COPY (LID1), POPULATE TOKEN, WRITE USING TOKEN
  0x84, 5, 0x00, 0x01, 0x03, 0x04, 0x07, // RECEIVE COPY RESULTS' four, RECEIVE ROD TOKEN INFORMATION
]);
const COMMANDS_BYTES: u32 = 12;

/** The page for logical unit `lun` after its 4-byte header at `at` (zeroed by the caller); answers the bytes. */
export function thirdPartyCopyPage(at: usize, lun: u32): u32 {
  const blockBytes = volumeAt(lun).blockSizeBytes;
  let n: u32 = 0;
  n += blockDeviceRodLimits(at + n, blockBytes);
  n += supportedCommands(at + n);
  n += parameterData(at + n);
  n += supportedDescriptors(at + n);
  n += rodTokenFeatures(at + n, blockBytes, volumeAt(lun).physicalExponent);
  n += supportedRodTypes(at + n);
  n += generalCopyOperations(at + n);
  assert(4 + n == VPD_THIRD_PARTY_COPY_BYTES, "vpd 8Fh: descriptors add up");
  return n;
}

function header(at: usize, type: u32, bytes: u32): u32 {
  assert(bytes % 4 == 0, "vpd 8Fh: a descriptor is a multiple of four bytes");
  putBe16(at, type);
  putBe16(at + 2, bytes - 4);
  return bytes;
}

// SBC-3, Block Device ROD Limits: |4-9 -|10-11 MAXIMUM RANGE DESCRIPTORS|12-15 MAXIMUM INACTIVITY TIMEOUT (s)|
// |16-19 DEFAULT INACTIVITY TIMEOUT (s)|20-27 MAXIMUM TOKEN TRANSFER SIZE (blocks)|28-35 OPTIMAL TRANSFER COUNT|.
function blockDeviceRodLimits(at: usize, blockBytes: u32): u32 {
  putBe16(at + 10, ROD_TOKEN_RANGES_MAX);
  putBe32(at + 12, ROD_TOKEN_TIMEOUT_MAX_SECONDS);
  putBe32(at + 16, ROD_TOKEN_TIMEOUT_DEFAULT_SECONDS);
  putBe64(at + 20, ROD_TOKEN_BYTES_MAX / <u64>blockBytes);
  putBe64(at + 28, ROD_TOKEN_BYTES_MAX / <u64>blockBytes);
  return header(at, 0x0000, 36);
}

// Supported Commands: |4 COMMANDS SUPPORTED LIST LENGTH|5- the list|, padded.
function supportedCommands(at: usize): u32 {
  store<u8>(at + 4, <u8>COMMANDS_BYTES);
  memory.copy(at + 5, COMMANDS, COMMANDS_BYTES);
  return header(at, 0x0001, (5 + COMMANDS_BYTES + 3) & ~3);
}

// Parameter Data: |4-7 -|8-9 MAXIMUM CSCD DESCRIPTOR COUNT|10-11 MAXIMUM SEGMENT DESCRIPTOR COUNT|
// |12-15 MAXIMUM DESCRIPTOR LIST LENGTH|16-19 MAXIMUM INLINE DATA LENGTH|20-31 -|.
function parameterData(at: usize): u32 {
  putBe16(at + 8, COPY_TARGET_DESCRIPTORS_MAX);
  putBe16(at + 10, COPY_SEGMENT_DESCRIPTORS_MAX);
  putBe32(at + 12, COPY_DESCRIPTOR_LIST_BYTES_MAX);
  return header(at, 0x0004, 32); // no inline data
}

// Supported Descriptors: |4 SUPPORTED DESCRIPTOR LIST LENGTH|5- descriptor type codes|: block → block (02h), and
// the identification target descriptor (E4h).
function supportedDescriptors(at: usize): u32 {
  store<u8>(at + 4, 2);
  store<u8>(at + 5, 0x02);
  store<u8>(at + 6, 0xe4);
  return header(at, 0x0008, 8);
}

// ROD Token Features: |4 REMOTE TOKENS (3-0)|5-15 -|16-19 MINIMUM TOKEN LIFETIME|20-23 MAXIMUM TOKEN LIFETIME|
// |24-27 MAXIMUM TOKEN INACTIVITY TIMEOUT|28-45 -|46-47 ROD DEVICE TYPE SPECIFIC FEATURES DESCRIPTORS LENGTH|, then
// the block device's: |0 DEVICE TYPE 00h|1 -|2-3 DESCRIPTOR LENGTH 002Ch|4-5 -|6-7 OPTIMAL BLOCK ROD LENGTH
// GRANULARITY|8-15 MAXIMUM BYTES IN BLOCK ROD|16-23 OPTIMAL BYTES IN BLOCK ROD TRANSFER|24-31 OPTIMAL BYTES TO TOKEN
// PER SEGMENT|32-39 OPTIMAL BYTES FROM TOKEN PER SEGMENT|40-47 -|. REMOTE TOKENS 0: tokens are used on this target
// only. A token lives its inactivity timeout past its last use (1 s at least, as asked, up to the maximum).
function rodTokenFeatures(at: usize, blockBytes: u32, physicalExponent: u32): u32 {
  putBe32(at + 16, 1);
  putBe32(at + 20, ROD_TOKEN_TIMEOUT_MAX_SECONDS);
  putBe32(at + 24, ROD_TOKEN_TIMEOUT_MAX_SECONDS);
  putBe16(at + 46, 48);
  const d = at + 48;
  putBe16(d + 2, 0x2c);
  putBe16(d + 6, 1 << physicalExponent);
  putBe64(d + 8, ROD_TOKEN_BYTES_MAX);
  putBe64(d + 16, ROD_TOKEN_BYTES_MAX);
  putBe64(d + 24, ROD_TOKEN_BYTES_MAX);
  putBe64(d + 32, <u64>limitTransferBytes() / blockBytes * blockBytes);
  return header(at, 0x0106, 96);
}

// Supported ROD Types: |4-5 -|6-7 ROD TYPE DESCRIPTORS LENGTH|8- descriptors, 64 bytes each: |0-3 ROD TYPE|
// |4 ECPY_INT(7),TOKEN_IN(1),TOKEN_OUT(0)|5 -|6-7 PREFERENCE INDICATION|8-63 -||. Access upon reference: made by
// POPULATE TOKEN and taken by WRITE USING TOKEN; the block device zero ROD token: taken only.
function supportedRodTypes(at: usize): u32 {
  putBe16(at + 6, 128);
  putBe32(at + 8, ROD_TYPE_ACCESS_UPON_REFERENCE);
  store<u8>(at + 12, 0x02 | 0x01);
  putBe32(at + 72, ROD_TYPE_BLOCK_DEVICE_ZERO);
  store<u8>(at + 76, 0x02);
  return header(at, 0x0108, 136);
}

// General Copy Operations: |4-7 TOTAL CONCURRENT COPIES|8-11 MAXIMUM IDENTIFIED CONCURRENT COPIES|
// |12-15 MAXIMUM SEGMENT LENGTH|16 DATA SEGMENT GRANULARITY (log2)|17 INLINE DATA GRANULARITY (log2)|18-35 -|.
function generalCopyOperations(at: usize): u32 {
  putBe32(at + 4, COPIES_MAX);
  putBe32(at + 8, COPIES_MAX);
  putBe32(at + 12, COPY_SEGMENT_BYTES_MAX);
  store<u8>(at + 16, 9); // 2^9: the smallest block
  return header(at, 0x8001, 36);
}
