// The identification descriptor target descriptor (SPC-4, Identification descriptor CSCD descriptor, E4h): how an
// EXTENDED COPY parameter list names a logical unit (copy.ts reads it) and how a ROD token names the unit that made
// it (rod_token.ts writes it as the token's CREATOR LOGICAL UNIT DESCRIPTOR). Read and written only through the
// accessors below; this target names a unit by its NAA designator (VPD page 83h, association logical unit).
// Descriptor, 32 bytes: |0 E4h|1 LU ID TYPE,NUL,PERIPHERAL DEVICE TYPE(4-0)|2-3 RELATIVE INITIATOR PORT|4 CODE SET(3-0)|
// |5 ASSOCIATION(5-4),DESIGNATOR TYPE(3-0)|6 -|7 DESIGNATOR LENGTH|8-27 DESIGNATOR|28 PAD|29-31 DISK BLOCK LENGTH|
import { getBe16, getBe64, putBe16, putBe64 } from "./cdb";

export const TARGET_DESCRIPTOR_BYTES: u32 = 32;
export const TARGET_DESCRIPTOR_IDENTIFICATION: u32 = 0xe4; // its DESCRIPTOR TYPE CODE

const AT_TYPE: usize = 0;
const AT_DEVICE_TYPE: usize = 1;
const AT_CODE_SET: usize = 4;
const AT_DESIGNATOR_TYPE: usize = 5;
const AT_DESIGNATOR_LENGTH: usize = 7;
const AT_DESIGNATOR: usize = 8;
/** The DISK BLOCK LENGTH's offset in the descriptor (a sense field pointer names it). */
export const TARGET_DESCRIPTOR_AT_DISK_BLOCK_LENGTH: u32 = 29;
if (TARGET_DESCRIPTOR_AT_DISK_BLOCK_LENGTH + 3 != TARGET_DESCRIPTOR_BYTES) ERROR("target descriptor: the disk block length ends it");

const CODE_SET_BINARY: u8 = 0x01;
const DESIGNATOR_NAA_OF_UNIT: u8 = 0x03; // ASSOCIATION 00b (logical unit), DESIGNATOR TYPE 3h (NAA)
const NAA_BYTES: u8 = 8;

@inline export function targetDescriptorType(d: usize): u32 { return <u32>load<u8>(d, AT_TYPE); }
/** PERIPHERAL DEVICE TYPE (LU ID TYPE and NUL are ignored, SPC-4). */
@inline export function targetDescriptorDeviceType(d: usize): u32 { return <u32>load<u8>(d, AT_DEVICE_TYPE) & 0x1f; }
@inline export function targetDescriptorDiskBlockLength(d: usize): u32 {
  return (<u32>load<u8>(d, TARGET_DESCRIPTOR_AT_DISK_BLOCK_LENGTH) << 16) | getBe16(d + TARGET_DESCRIPTOR_AT_DISK_BLOCK_LENGTH + 1);
}

/** True when the descriptor names a logical unit by an 8-byte binary NAA designator (then targetDescriptorNaa). */
export function targetDescriptorHasNaa(d: usize): bool {
  return (load<u8>(d, AT_CODE_SET) & 0x0f) == CODE_SET_BINARY && (load<u8>(d, AT_DESIGNATOR_TYPE) & 0x3f) == DESIGNATOR_NAA_OF_UNIT
    && load<u8>(d, AT_DESIGNATOR_LENGTH) == NAA_BYTES;
}
@inline export function targetDescriptorNaa(d: usize): u64 { return getBe64(d + AT_DESIGNATOR); }

/** Writes, over zeroed bytes at `d`, a descriptor naming the unit with designator `naa` and blocks of `blockBytes`. */
export function targetDescriptorWrite(d: usize, naa: u64, blockBytes: u32): void {
  store<u8>(d, <u8>TARGET_DESCRIPTOR_IDENTIFICATION, AT_TYPE);
  store<u8>(d, CODE_SET_BINARY, AT_CODE_SET);
  store<u8>(d, DESIGNATOR_NAA_OF_UNIT, AT_DESIGNATOR_TYPE);
  store<u8>(d, NAA_BYTES, AT_DESIGNATOR_LENGTH);
  putBe64(d + AT_DESIGNATOR, naa);
  store<u8>(d, <u8>(blockBytes >> 16), TARGET_DESCRIPTOR_AT_DISK_BLOCK_LENGTH);
  putBe16(d + TARGET_DESCRIPTOR_AT_DISK_BLOCK_LENGTH + 1, blockBytes & 0xffff);
}
