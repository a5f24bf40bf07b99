// INQUIRY data (SPC-4, Standard INQUIRY data) and the vital product data pages: Supported VPD Pages (00h), Unit
// Serial Number (80h), Device Identification (83h), Third-party Copy (8Fh, built in vpd_tpc.ts), and SBC-3's Block
// Limits (B0h), Block Device Characteristics (B1h) and Logical Block Provisioning (B2h). On a board of a cluster
// (alua.ts) also: TPGS 01b (implicit ALUA), the target port's relative port and group designators in 83h, Extended
// INQUIRY Data (86h, R_SUP for a partitioned volume) and, for a partitioned volume, Referrals (B3h). A logical unit's identity is
// a hash of where its volume lives (processor, disk) and its LUN, so it is the same on every boot of the same board.
import { volumeAt, VolumeType } from "../volumes/volume";
import { FIRMWARE_VERSION } from "../config";
import { putBe16, putBe32, putBe64 } from "./cdb";
import {
  ATOMIC_ALIGNMENT_BLOCKS, ATOMIC_GRANULARITY_BLOCKS, COMPARE_AND_WRITE_BLOCKS_MAX, limitAtomicBytes, limitTransferBytes, OPTIMAL_GRANULARITY_BYTES, UNMAP_BYTES_MAX, UNMAP_DESCRIPTORS_MAX,
  WRITE_SAME_BYTES_MAX,
} from "./limits";
import { thirdPartyCopyPage, VPD_THIRD_PARTY_COPY, VPD_THIRD_PARTY_COPY_BYTES } from "./vpd_tpc";
import { CLUSTER_NONE } from "../cluster/routing_table";
import { aluaOn, extendedInquiryPage, referralsPage, referralsSlot, relativeTargetPort, targetPortGroup } from "./alua";
if (VPD_THIRD_PARTY_COPY_BYTES > 512) ERROR("the longest VPD page fits the room vpdPage clears");

export const VENDOR: string = "WASM-IOP";
export const PRODUCT: string = "IOP VOLUME";
export const INQUIRY_STANDARD_BYTES: u32 = 96;
const SERIAL_BYTES: u32 = 16; // hexadecimal digits of the identity
// A locally administered IEEE company ID (bit 1 of the first octet set): claims no vendor's OUI.
const NAA_COMPANY_ID: u64 = 0x02_00_02;

/** Writes `text` left-aligned into a `lengthBytes` field padded with spaces (SPC-4's ASCII fields). */
function ascii(at: usize, text: string, lengthBytes: u32): void {
  memory.fill(at, 0x20, lengthBytes);
  const count = min(<u32>text.length, lengthBytes);
  for (let i: u32 = 0; i < count; i++) store<u8>(at + i, <u8>text.charCodeAt(i));
}

/** PRODUCT REVISION LEVEL: the firmware version's digits and letters without the dots, at most four. */
function revision(at: usize): void {
  memory.fill(at, 0x20, 4);
  let n: u32 = 0;
  for (let i: i32 = 0; i < FIRMWARE_VERSION.length && n < 4; i++) {
    const c = FIRMWARE_VERSION.charCodeAt(i);
    if (c == 0x2e) continue;
    store<u8>(at + n, <u8>c);
    n += 1;
  }
}

/** The 64-bit identity of `lun`: FNV-1a over the LUN and its disk's processor and index, or a composed volume's type and name. */
export function lunIdentity(lun: u32): u64 {
  const v = volumeAt(lun);
  let h = fnvWord(0xcbf2_9ce4_8422_2325, lun);
  if (v.type == VolumeType.Disk) return fnvWord(fnvWord(h, v.member(0).processor), v.member(0).disk);
  h = fnvWord(h, 0x100 + <u32>v.type);
  for (let i: u32 = 0; i < v.nameBytes; i++) h = fnvWord(h, unchecked(v.name[i]));
  return h;
}

/** The NAA IEEE Registered designator (type 5h) of `lun`, as VPD page 83h reports it and EXTENDED COPY matches it. */
export function lunNaa(lun: u32): u64 {
  return (<u64>5 << 60) | (NAA_COMPANY_ID << 36) | (lunIdentity(lun) & 0xf_ffff_ffff);
}

function fnvWord(hash: u64, word: u32): u64 {
  let h = hash;
  for (let b: u32 = 0; b < 4; b++) h = (h ^ <u64>((word >> (b * 8)) & 0xff)) * 0x100_0000_01b3;
  return h;
}

function serial(at: usize, lun: u32): void {
  const id = lunIdentity(lun);
  for (let i: u32 = 0; i < SERIAL_BYTES; i++) {
    const nibble = <u32>((id >> (<u64>(SERIAL_BYTES - 1 - i) * 4)) & 0xf);
    store<u8>(at + i, <u8>(nibble < 10 ? 0x30 + nibble : 0x41 + nibble - 10));
  }
}

/**
 * Standard INQUIRY data at `at` (96 bytes). `present` false gives peripheral qualifier 011b, type 1Fh: no logical
 * unit at this LUN.
 */
export function inquiryStandard(at: usize, present: bool): u32 {
  memory.fill(at, 0, INQUIRY_STANDARD_BYTES);
  store<u8>(at, present ? 0x00 : 0x7f); // qualifier 000b, direct access block device
  store<u8>(at + 2, 0x06); // VERSION: SPC-4
  store<u8>(at + 3, 0x10 | 0x02); // HISUP, RESPONSE DATA FORMAT 2
  store<u8>(at + 4, <u8>(INQUIRY_STANDARD_BYTES - 5)); // ADDITIONAL LENGTH: the bytes after byte 4
  // 3PC: EXTENDED COPY (LID1), the token commands and their results (copy.ts, token_copy.ts); on a board of a cluster
  // TPGS 01b: implicit ALUA, the states reported by REPORT TARGET PORT GROUPS and changed by the target alone.
  store<u8>(at + 5, 0x08 | (aluaOn() ? 0x10 : 0x00));
  store<u8>(at + 7, 0x02); // CMDQUE: commands are queued
  ascii(at + 8, VENDOR, 8);
  ascii(at + 16, PRODUCT, 16);
  revision(at + 32);
  // Version descriptors (SPC-4, Version descriptor values): SAM-5, SPC-4, SBC-3, no revision claimed.
  putBe16(at + 58, 0x00a0);
  putBe16(at + 60, 0x0460);
  putBe16(at + 62, 0x04c0);
  return INQUIRY_STANDARD_BYTES;
}

/**
 * The VPD page `code` of `lun` through local target port `port` (1-based) at `at` (room for 512 bytes); answers its
 * length, or 0 for a page not supported (here: 86h and B3h only on a board of a cluster, B3h only for a partitioned
 * volume).
 */
export function vpdPage(code: u32, lun: u32, at: usize, port: u32): u32 {
  memory.fill(at, 0, 512);
  store<u8>(at + 1, <u8>code);
  let bodyBytes: u32 = 0;
  const slot = referralsSlot(lun);
  switch (code) {
    case 0x00: bodyBytes = supportedPages(at + 4, slot != CLUSTER_NONE); break;
    case 0x80: serial(at + 4, lun); bodyBytes = SERIAL_BYTES; break;
    case 0x83: bodyBytes = deviceIdentification(at + 4, lun, port); break;
    case 0x86: if (!aluaOn()) return 0; bodyBytes = extendedInquiryPage(at + 4, slot != CLUSTER_NONE); break;
    case 0xb3: if (slot == CLUSTER_NONE) return 0; bodyBytes = referralsPage(at + 4, slot); break;
    case VPD_THIRD_PARTY_COPY: bodyBytes = thirdPartyCopyPage(at + 4, lun); break;
    case 0xb0: bodyBytes = blockLimits(at + 4, volumeAt(lun).blockSizeBytes, volumeAt(lun).physicalExponent); break;
    case 0xb1: bodyBytes = blockDeviceCharacteristics(at + 4); break;
    case 0xb2: bodyBytes = provisioning(at + 4); break;
    default: return 0;
  }
  putBe16(at + 2, bodyBytes); // PAGE LENGTH
  return 4 + bodyBytes;
}

// SPC-4, Supported VPD Pages: in ascending order; 86h on a board of a cluster, B3h for a partitioned volume.
const SUPPORTED_PAGES: usize = memory.data<u8>([0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb2]);
const SUPPORTED_PAGE_COUNT: u32 = 7;
const CLUSTER_PAGES: usize = memory.data<u8>([0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2, 0xb3]);
function supportedPages(at: usize, referrals: bool): u32 {
  if (!aluaOn()) {
    memory.copy(at, SUPPORTED_PAGES, SUPPORTED_PAGE_COUNT);
    return SUPPORTED_PAGE_COUNT;
  }
  const count: u32 = referrals ? 9 : 8; // B3h is the last
  memory.copy(at, CLUSTER_PAGES, count);
  return count;
}

// SPC-4, Device Identification: a NAA IEEE Registered designator (binary, the logical unit) and a T10 vendor ID
// designator (ASCII: vendor, product, serial); on a board of a cluster also the target port's relative target port
// (type 4h) and target port group (type 5h) designators, association 01b (the target port), PIV 1, protocol iSCSI.
function deviceIdentification(at: usize, lun: u32, port: u32): u32 {
  store<u8>(at, 0x01); // code set 1: binary
  store<u8>(at + 1, 0x03); // association 00b (logical unit), designator type 3h (NAA)
  store<u8>(at + 3, 8);
  putBe64(at + 4, lunNaa(lun));
  const t10 = at + 12;
  store<u8>(t10, 0x02); // code set 2: ASCII
  store<u8>(t10 + 1, 0x01); // association 00b, designator type 1h (T10 vendor ID)
  store<u8>(t10 + 3, <u8>(8 + 16 + SERIAL_BYTES));
  ascii(t10 + 4, VENDOR, 8);
  ascii(t10 + 12, PRODUCT, 16);
  serial(t10 + 28, lun);
  const identityBytes: u32 = 12 + 4 + 8 + 16 + SERIAL_BYTES;
  if (!aluaOn()) return identityBytes;
  const relative = at + identityBytes;
  portDesignator(relative, 0x04, relativeTargetPort(port));
  portDesignator(relative + 8, 0x05, targetPortGroup());
  return identityBytes + 16;
}

// |0 PROTOCOL IDENTIFIER (5h: iSCSI),CODE SET (1h: binary)|1 PIV,-,ASSOCIATION (01b),DESIGNATOR TYPE|2 -|3 LENGTH 4|
// |4-5 -|6-7 the relative target port identifier or target port group|.
function portDesignator(d: usize, type: u32, value: u32): void {
  store<u8>(d, (0x05 << 4) | 0x01);
  store<u8>(d + 1, <u8>(0x80 | (0x01 << 4) | type));
  store<u8>(d + 3, 4);
  putBe16(d + 6, value);
}

// SBC-3, Block Limits (after the header): |0 WSNZ|1 MAXIMUM COMPARE AND WRITE LENGTH|2-3 OPTIMAL TRANSFER LENGTH
// GRANULARITY|4-7 MAXIMUM TRANSFER LENGTH|8-11 OPTIMAL TRANSFER LENGTH|12-15 MAXIMUM PREFETCH LENGTH|16-19 MAXIMUM UNMAP
// LBA COUNT|20-23 MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT|24-27 OPTIMAL UNMAP GRANULARITY|28-31 UGAVALID, ALIGNMENT|
// 32-39 MAXIMUM WRITE SAME LENGTH|40-43 MAXIMUM ATOMIC TRANSFER LENGTH|44-47 ATOMIC ALIGNMENT|48-51 ATOMIC TRANSFER LENGTH
// GRANULARITY|52-55 MAXIMUM ATOMIC TRANSFER LENGTH WITH ATOMIC BOUNDARY|56-59 MAXIMUM ATOMIC BOUNDARY SIZE|
// The granularities are at least a physical block: a write or unmap of part of one costs a read-modify-write.
function blockLimits(at: usize, blockBytes: u32, physicalExponent: u32): u32 {
  const physicalBlocks: u32 = 1 << physicalExponent;
  store<u8>(at, 0x00); // WSNZ 0: WRITE SAME with a zero count writes through the last LBA
  store<u8>(at + 1, <u8>COMPARE_AND_WRITE_BLOCKS_MAX);
  putBe16(at + 2, max(OPTIMAL_GRANULARITY_BYTES / blockBytes, physicalBlocks));
  putBe32(at + 4, limitTransferBytes() / blockBytes);
  putBe32(at + 8, limitTransferBytes() / blockBytes);
  putBe32(at + 16, UNMAP_BYTES_MAX / blockBytes);
  putBe32(at + 20, UNMAP_DESCRIPTORS_MAX);
  putBe32(at + 24, physicalBlocks); // OPTIMAL UNMAP GRANULARITY: a physical block (UGAVALID 0: any alignment)
  putBe64(at + 32, <u64>(WRITE_SAME_BYTES_MAX / blockBytes));
  putBe32(at + 40, limitAtomicBytes() / blockBytes); // MAXIMUM ATOMIC TRANSFER LENGTH
  putBe32(at + 44, ATOMIC_ALIGNMENT_BLOCKS);
  putBe32(at + 48, ATOMIC_GRANULARITY_BLOCKS);
  return 0x3c; // MAXIMUM ATOMIC TRANSFER LENGTH WITH ATOMIC BOUNDARY and MAXIMUM ATOMIC BOUNDARY SIZE 0: no boundaries
}

// SBC-4, Block Device Characteristics (after the header): |0-1 MEDIUM ROTATION RATE|2 PRODUCT TYPE|3 WABEREQ(7-6),
// WACEREQ(5-4),NOMINAL FORM FACTOR(3-0)|4 ZONED,-,FUAB,VBULS|. Non-rotating; WABEREQ and WACEREQ 01b: after a SANITIZE
// BLOCK ERASE or CRYPTOGRAPHIC ERASE, reads complete without error (the blocks are deallocated and read as zeros).
function blockDeviceCharacteristics(at: usize): u32 {
  putBe16(at, 0x0001); // MEDIUM ROTATION RATE 0001h: non-rotating medium
  store<u8>(at + 3, (0x01 << 6) | (0x01 << 4));
  return 0x3c;
}

// SBC-3, Logical Block Provisioning: |0 THRESHOLD EXPONENT|1 LBPU,LBPWS,LBPWS10,-,-,LBPRZ,ANC_SUP,DP|2 PROVISIONING
// TYPE|3 reserved|. UNMAP and WRITE SAME (16)/(10) with UNMAP deallocate; deallocated blocks read as zeros.
function provisioning(at: usize): u32 {
  store<u8>(at + 1, 0x80 | 0x40 | 0x20 | 0x04);
  store<u8>(at + 2, 0x02); // thin provisioned: the disks are sparse
  return 4;
}
