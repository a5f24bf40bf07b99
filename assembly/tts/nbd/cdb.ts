// How an NBD request becomes SCSI commands for the SCSI target, and how the target's answer becomes an NBD error
// number. The transport builds CDBs from the protocol's numbers (assembly/protocol/); the SCSI target decodes them.
import { SAM_STATUS_BUSY, SAM_STATUS_CHECK_CONDITION, SAM_STATUS_CONDITION_MET, SAM_STATUS_GOOD, SAM_STATUS_RESERVATION_CONFLICT, SAM_STATUS_TASK_SET_FULL } from "../../protocol/scsi_status";
import {
  OP_PRE_FETCH_16, OP_READ_16, OP_SERVICE_ACTION_IN_16, OP_SYNCHRONIZE_CACHE_16, OP_UNMAP, OP_WRITE_16, OP_WRITE_SAME_16, SA_GET_LBA_STATUS,
} from "../../protocol/scsi_opcodes";
import {
  SENSE_KEY_ABORTED_COMMAND, SENSE_KEY_DATA_PROTECT, SENSE_KEY_ILLEGAL_REQUEST, SENSE_KEY_UNIT_ATTENTION,
} from "../../protocol/sense_keys";
import { NBD_EINVAL, NBD_EIO, NBD_ENOSPC, NBD_EPERM } from "./wire";

export const CDB_BYTES: u32 = 16;
export const LBA_STATUS_BYTES: u32 = 24; // GET LBA STATUS parameter data: the header and one descriptor
export const UNMAP_LIST_HEADER_BYTES: u32 = 8;
export const UNMAP_DESCRIPTOR_BYTES: u32 = 16;
const FUA: u32 = 0x08; // byte 1 of READ/WRITE (16)
const WRITE_SAME_UNMAP: u32 = 0x08; // byte 1 of WRITE SAME (16)
const WRITE_SAME_NDOB: u32 = 0x01; // no Data-Out buffer: a block of zeros
const ASC_SPACE_ALLOCATION_FAILED: u32 = 0x2707; // thin pool full (SBC-4, Thin provisioning)

function putBe64(cdb: usize, at: u32, value: u64): void { store<u64>(cdb + at, bswap<u64>(value)); }
function putBe32(cdb: usize, at: u32, value: u32): void { store<u32>(cdb + at, bswap<u32>(value)); }

// The 16-byte CDBs: |0 opcode|1 flags|2-9 LBA|10-13 count (or allocation length)|14 group|15 control|.
function cdb16(cdb: usize, opcode: u32, flags: u32, lba: u64, count: u32): void {
  memory.fill(cdb, 0, CDB_BYTES);
  store<u8>(cdb, <u8>opcode);
  store<u8>(cdb, <u8>flags, 1);
  putBe64(cdb, 2, lba);
  putBe32(cdb, 10, count);
}

export function cdbRead(cdb: usize, lba: u64, blocks: u32): void { cdb16(cdb, OP_READ_16, 0, lba, blocks); }
export function cdbWrite(cdb: usize, lba: u64, blocks: u32, fua: bool): void { cdb16(cdb, OP_WRITE_16, fua ? FUA : 0, lba, blocks); }
/** SYNCHRONIZE CACHE (16) of `blocks` from `lba`; 0 blocks: to the end of the medium. */
export function cdbSync(cdb: usize, lba: u64, blocks: u32): void { cdb16(cdb, OP_SYNCHRONIZE_CACHE_16, 0, lba, blocks); }
export function cdbPrefetch(cdb: usize, lba: u64, blocks: u32): void { cdb16(cdb, OP_PRE_FETCH_16, 0, lba, blocks); }
/** WRITE SAME (16) of zeros (NDOB: no Data-Out), deallocating where it can unless `noHole`. */
export function cdbWriteZeroes(cdb: usize, lba: u64, blocks: u32, noHole: bool): void {
  cdb16(cdb, OP_WRITE_SAME_16, WRITE_SAME_NDOB | (noHole ? 0 : WRITE_SAME_UNMAP), lba, blocks);
}
/** GET LBA STATUS (16) from `lba`: the SERVICE ACTION IN (16) with its service action, allocation length last. */
export function cdbLbaStatus(cdb: usize, lba: u64): void {
  cdb16(cdb, OP_SERVICE_ACTION_IN_16, SA_GET_LBA_STATUS, lba, LBA_STATUS_BYTES);
}

/** UNMAP with a parameter list of `descriptors` block descriptors: |0 0x42|1-5|6 group|7-8 PARAMETER LIST LENGTH|9|. */
export function cdbUnmap(cdb: usize, descriptors: u32): void {
  memory.fill(cdb, 0, CDB_BYTES);
  store<u8>(cdb, <u8>OP_UNMAP);
  store<u16>(cdb + 7, bswap<u16>(<u16>(UNMAP_LIST_HEADER_BYTES + descriptors * UNMAP_DESCRIPTOR_BYTES)));
}

/** Writes UNMAP's parameter list at `at`: `blocks` from `lba` in descriptors of at most `perDescriptor` blocks. */
export function unmapList(at: usize, lba: u64, blocks: u64, perDescriptor: u32, descriptors: u32): void {
  const listBytes = UNMAP_LIST_HEADER_BYTES + descriptors * UNMAP_DESCRIPTOR_BYTES;
  memory.fill(at, 0, listBytes);
  store<u16>(at, bswap<u16>(<u16>(listBytes - 2))); // UNMAP DATA LENGTH: the bytes after it
  store<u16>(at + 2, bswap<u16>(<u16>(descriptors * UNMAP_DESCRIPTOR_BYTES)));
  let left = blocks;
  for (let i: u32 = 0; i < descriptors; i++) { // bounded by the descriptor count
    const d = at + UNMAP_LIST_HEADER_BYTES + <usize>i * UNMAP_DESCRIPTOR_BYTES;
    const take = <u32>min<u64>(left, <u64>perDescriptor);
    store<u64>(d, bswap<u64>(lba + (blocks - left)));
    store<u32>(d + 8, bswap<u32>(take));
    left -= <u64>take;
  }
  assert(left == 0, "nbd: the UNMAP list covers its blocks");
}

// What the SCSI target's answer means for the request.
export enum Outcome {
  Ok = 0, // done
  Retry = 1, // a unit attention or a busy target: the same command again
  Failed = 2, // the error number says why
}

/** The outcome of a finished command from its status and fixed-format sense. */
export function outcomeOf(status: u32, sense: usize, senseBytes: u32): Outcome {
  if (status == SAM_STATUS_GOOD || status == SAM_STATUS_CONDITION_MET) return Outcome.Ok;
  if (status == SAM_STATUS_BUSY || status == SAM_STATUS_TASK_SET_FULL) return Outcome.Retry;
  if (status == SAM_STATUS_CHECK_CONDITION && senseBytes >= 14) {
    const key = <u32>load<u8>(sense, 2) & 0xf;
    // SAM-5: a unit attention is reported instead of running the command; NBD has no such notion, so it runs again.
    if (key == SENSE_KEY_UNIT_ATTENTION || key == SENSE_KEY_ABORTED_COMMAND) return Outcome.Retry;
  }
  return Outcome.Failed;
}

/** The NBD error number for a failed command (proto.md, "Error values"). */
export function errorOf(status: u32, sense: usize, senseBytes: u32): u32 {
  if (status == SAM_STATUS_RESERVATION_CONFLICT) return NBD_EPERM;
  if (status != SAM_STATUS_CHECK_CONDITION || senseBytes < 14) return NBD_EIO;
  const key = <u32>load<u8>(sense, 2) & 0xf;
  const ascAscq = (<u32>load<u8>(sense, 12) << 8) | <u32>load<u8>(sense, 13);
  if (ascAscq == ASC_SPACE_ALLOCATION_FAILED) return NBD_ENOSPC;
  if (key == SENSE_KEY_DATA_PROTECT) return NBD_EPERM;
  if (key == SENSE_KEY_ILLEGAL_REQUEST) return NBD_EINVAL;
  return NBD_EIO;
}

/** True when an ILLEGAL REQUEST says the command is not there for this volume (an advisory TRIM may ignore it). */
export function notSupported(status: u32, sense: usize, senseBytes: u32): bool {
  return status == SAM_STATUS_CHECK_CONDITION && senseBytes >= 14 && (<u32>load<u8>(sense, 2) & 0xf) == SENSE_KEY_ILLEGAL_REQUEST;
}
