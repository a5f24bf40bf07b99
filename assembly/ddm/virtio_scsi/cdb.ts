// The SCSI commands the DDM sends, built in place in the request header's CDB field (SBC-4, SPC-5), and the data
// they return. Big-endian on the wire, through bswap.
// READ(16) 0x88 / WRITE(16) 0x8A: |0 op|1 flags (FUA 0x08)|2-9 LBA|10-13 transfer length|14 group|15 control|
// SYNCHRONIZE CACHE(16) 0x91:     |0 op|1 flags|2-9 LBA|10-13 number of blocks (0: to the end)|14 group|15 control|
// UNMAP 0x42:                     |0 op|1 anchor|2-5 -|6 group|7-8 parameter list length|9 control|
// REPORT LUNS 0xA0:               |0 op|1 -|2 select report|3-5 -|6-9 allocation length|10 -|11 control|
// READ CAPACITY(16) 0x9E/0x10:    |0 op|1 service action|2-9 LBA|10-13 allocation length|14 PMI|15 control|
import {
  OP_READ_16, OP_REPORT_LUNS, OP_SERVICE_ACTION_IN_16, OP_SYNCHRONIZE_CACHE_16, OP_UNMAP, OP_WRITE_16,
  SA_READ_CAPACITY_16,
} from "../../protocol/scsi_opcodes";

const FLAG_FUA: u8 = 0x08;

export const UNMAP_PARAMETERS_BYTES: u32 = 24; // header 8 + one block descriptor 16
export const READ_CAPACITY_16_BYTES: u32 = 32;
export const REPORT_LUNS_HEADER_BYTES: u32 = 8;
const LUN_ENTRY_BYTES: u32 = 8;

/** READ(16) or WRITE(16) of `blockCount` blocks at `lba`; `fua` forces a write through to the medium. */
export function cdbReadWrite16(cdb: usize, write: bool, fua: bool, lba: u64, blockCount: u32): void {
  store<u8>(cdb, <u8>(write ? OP_WRITE_16 : OP_READ_16));
  store<u8>(cdb, fua ? FLAG_FUA : 0, 1);
  store<u64>(cdb, bswap<u64>(lba), 2);
  store<u32>(cdb, bswap<u32>(blockCount), 10);
}

/** SYNCHRONIZE CACHE(16) of the whole disk: LBA 0, number of blocks 0, IMMED 0 (complete when written). */
export function cdbSynchronizeCache16(cdb: usize): void {
  store<u8>(cdb, <u8>OP_SYNCHRONIZE_CACHE_16);
}

/** UNMAP with one block descriptor, and its parameter list at `parameters` (SBC-4, "UNMAP parameter list"). */
export function cdbUnmap(cdb: usize, parameters: usize, lba: u64, blockCount: u32): void {
  store<u8>(cdb, <u8>OP_UNMAP);
  store<u16>(cdb, bswap<u16>(<u16>UNMAP_PARAMETERS_BYTES), 7);
  // |0 unmap data length (bytes after this field)|2 block descriptor data length|4-7 -|8 LBA|16 blocks|20-23 -|
  memory.fill(parameters, 0, UNMAP_PARAMETERS_BYTES);
  store<u16>(parameters, bswap<u16>(<u16>(UNMAP_PARAMETERS_BYTES - 2)), 0);
  store<u16>(parameters, bswap<u16>(16), 2);
  store<u64>(parameters, bswap<u64>(lba), 8);
  store<u32>(parameters, bswap<u32>(blockCount), 16);
}

/** REPORT LUNS, select report 0 (every logical unit), into a buffer of `allocationBytes`. */
export function cdbReportLuns(cdb: usize, allocationBytes: u32): void {
  store<u8>(cdb, <u8>OP_REPORT_LUNS);
  store<u32>(cdb, bswap<u32>(allocationBytes), 6);
}

/** READ CAPACITY(16): the last LBA and the block length. */
export function cdbReadCapacity16(cdb: usize): void {
  store<u8>(cdb, <u8>OP_SERVICE_ACTION_IN_16);
  store<u8>(cdb, <u8>SA_READ_CAPACITY_16, 1);
  store<u32>(cdb, bswap<u32>(READ_CAPACITY_16_BYTES), 10);
}

/** READ CAPACITY(16) data: |0 last LBA be64|8 logical block length be32|12 -|13 P_I_EXPONENT,LBPPBE|… */
@inline export function capacityLastLba(data: usize): u64 { return bswap<u64>(load<u64>(data, 0)); }
@inline export function capacityBlockBytes(data: usize): u32 { return bswap<u32>(load<u32>(data, 8)); }
/** LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT: a physical block holds 2^n logical blocks. */
@inline export function capacityPhysicalExponent(data: usize): u32 { return load<u8>(data, 13) & 0x0f; }

/** REPORT LUNS data: |0 LUN list length be32|4 -|8 entries of 8 bytes|. Entries present in `receivedBytes`. */
export function reportLunsCount(data: usize, receivedBytes: u32): u32 {
  if (receivedBytes < REPORT_LUNS_HEADER_BYTES) return 0;
  const listed = bswap<u32>(load<u32>(data, 0)) / LUN_ENTRY_BYTES;
  const received = (receivedBytes - REPORT_LUNS_HEADER_BYTES) / LUN_ENTRY_BYTES;
  return min(listed, received);
}

export const LUN_INVALID: u32 = 0xffff_ffff;

/**
 * Entry `index` as a single-level LUN (SAM-5, "Single level LUN structure"): peripheral device addressing (method 0,
 * bus 0) or flat space addressing (method 1); LUN_INVALID for other methods or a multi-level LUN.
 */
export function reportLunsEntry(data: usize, index: u32): u32 {
  const entry = data + REPORT_LUNS_HEADER_BYTES + <usize>index * LUN_ENTRY_BYTES;
  if (load<u16>(entry, 2) != 0 || load<u32>(entry, 4) != 0) return LUN_INVALID; // levels beyond the first
  const byte0 = <u32>load<u8>(entry, 0);
  const byte1 = <u32>load<u8>(entry, 1);
  switch (byte0 >> 6) {
    case 0: return (byte0 & 0x3f) == 0 ? byte1 : LUN_INVALID;
    case 1: return ((byte0 & 0x3f) << 8) | byte1;
    default: return LUN_INVALID;
  }
}
