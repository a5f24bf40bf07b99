// From an NVMe completion's Status Field (NVMe 1.4 §4.6.1.2: SC 7:0, SCT 10:8, CRD, M, DNR 14) to what the requester
// is told: a BlockStatus and, for the SCSI layer above, the sense an NVMe-to-SCSI translation would give
// (key << 16 | ASC << 8 | ASCQ).
import { BlockStatus } from "../block";

export const SCT_GENERIC: u32 = 0;
export const SCT_COMMAND_SPECIFIC: u32 = 1;
export const SCT_MEDIA: u32 = 2;
export const SC_SUCCESS: u32 = 0x00;
export const SC_INVALID_OPCODE: u32 = 0x01;
export const SC_INVALID_FIELD: u32 = 0x02;
export const SC_DATA_TRANSFER_ERROR: u32 = 0x04;
export const SC_ABORT_REQUESTED: u32 = 0x07;
export const SC_ABORTED_SQ_DELETION: u32 = 0x08;
export const SC_INVALID_NAMESPACE: u32 = 0x0b;
export const SC_NAMESPACE_NOT_READY: u32 = 0x82;
export const SC_LBA_OUT_OF_RANGE: u32 = 0x80;
export const SC_CAPACITY_EXCEEDED: u32 = 0x81;
export const SC_WRITE_FAULT: u32 = 0x80; // media
export const SC_UNRECOVERED_READ_ERROR: u32 = 0x81; // media

export const SENSE_LBA_OUT_OF_RANGE: u32 = 0x05_21_00;
export const SENSE_INVALID_FIELD_IN_CDB: u32 = 0x05_24_00;
const SENSE_INVALID_OPCODE: u32 = 0x05_20_00;
const SENSE_WRITE_ERROR: u32 = 0x03_0c_00;
const SENSE_UNRECOVERED_READ_ERROR: u32 = 0x03_11_00;

@inline export function statusCode(status: u32): u32 { return status & 0xff; }
@inline export function statusType(status: u32): u32 { return (status >> 8) & 0x7; }

/** The BlockStatus for a completed I/O command. */
export function blockStatusOf(status: u32): BlockStatus {
  const sc = statusCode(status);
  switch (statusType(status)) {
    case SCT_GENERIC: {
      switch (<i32>sc) {
        case SC_SUCCESS: return BlockStatus.Ok;
        case SC_INVALID_OPCODE:
        case SC_INVALID_FIELD:
        case SC_LBA_OUT_OF_RANGE:
        case SC_CAPACITY_EXCEEDED: return BlockStatus.IllegalRequest;
        case SC_ABORT_REQUESTED:
        case SC_ABORTED_SQ_DELETION: return BlockStatus.Aborted;
        case SC_INVALID_NAMESPACE: return BlockStatus.NoDisk;
        case SC_NAMESPACE_NOT_READY: return BlockStatus.Busy;
        default: return BlockStatus.DeviceError; // data transfer error, internal error, PRP or SGL refused
      }
    }
    case SCT_COMMAND_SPECIFIC: return BlockStatus.IllegalRequest; // conflicting attributes, write to a read-only range
    case SCT_MEDIA: return BlockStatus.MediumError;
    default: return BlockStatus.DeviceError; // path related, vendor specific
  }
}

/** The sense a SCSI initiator would see for `status` (0 when it carries none). */
export function senseOf(status: u32): u32 {
  const sc = statusCode(status);
  const sct = statusType(status);
  if (sct == SCT_MEDIA) return sc == SC_UNRECOVERED_READ_ERROR ? SENSE_UNRECOVERED_READ_ERROR : SENSE_WRITE_ERROR;
  if (sct != SCT_GENERIC) return sct == SCT_COMMAND_SPECIFIC ? SENSE_INVALID_FIELD_IN_CDB : 0;
  if (sc == SC_LBA_OUT_OF_RANGE || sc == SC_CAPACITY_EXCEEDED) return SENSE_LBA_OUT_OF_RANGE;
  if (sc == SC_INVALID_FIELD) return SENSE_INVALID_FIELD_IN_CDB;
  if (sc == SC_INVALID_OPCODE) return SENSE_INVALID_OPCODE;
  return 0;
}
