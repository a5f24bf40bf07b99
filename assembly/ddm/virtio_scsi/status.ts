// From what the device answered to what the requester is told: the virtio-scsi response code, the SAM status
// byte and the sense key (SPC-5 "Sense data"; virtio §5.6.6.1), folded into a BlockStatus.
import { BlockStatus } from "../block";
import {
  SENSE_KEY_ABORTED_COMMAND, SENSE_KEY_DATA_PROTECT, SENSE_KEY_HARDWARE_ERROR, SENSE_KEY_ILLEGAL_REQUEST,
  SENSE_KEY_MEDIUM_ERROR, SENSE_KEY_UNIT_ATTENTION,
} from "../../protocol/sense_keys";
import {
  SAM_STATUS_BUSY, SAM_STATUS_CHECK_CONDITION, SAM_STATUS_CONDITION_MET, SAM_STATUS_GOOD, SAM_STATUS_TASK_ABORTED,
  SAM_STATUS_TASK_SET_FULL,
} from "../../protocol/scsi_status";
import {
  RESPONSE_ABORTED, RESPONSE_BAD_TARGET, RESPONSE_BUSY, RESPONSE_OK, RESPONSE_RESET,
} from "./request";

// What the DDM itself answers in BlockIoDone.b when it refuses a request: sense key << 16 | ASC << 8 | ASCQ.
export const SENSE_LBA_OUT_OF_RANGE: u32 = 0x05_21_00;
export const SENSE_INVALID_FIELD_IN_CDB: u32 = 0x05_24_00;

/**
 * Sense data as key << 16 | ASC << 8 | ASCQ, from fixed format (0x70/0x71: key at 2, ASC 12, ASCQ 13) or
 * descriptor format (0x72/0x73: key at 1, ASC 2, ASCQ 3); 0 when `lengthBytes` is too short to hold them.
 */
export function senseParse(sense: usize, lengthBytes: u32): u32 {
  if (lengthBytes < 1) return 0;
  const code = <u32>load<u8>(sense) & 0x7f;
  if ((code == 0x70 || code == 0x71) && lengthBytes >= 14) {
    return ((<u32>load<u8>(sense, 2) & 0xf) << 16) | (<u32>load<u8>(sense, 12) << 8) | <u32>load<u8>(sense, 13);
  }
  if ((code == 0x72 || code == 0x73) && lengthBytes >= 4) {
    return ((<u32>load<u8>(sense, 1) & 0xf) << 16) | (<u32>load<u8>(sense, 2) << 8) | <u32>load<u8>(sense, 3);
  }
  return 0;
}

@inline export function senseKeyOf(sense: u32): u32 { return (sense >> 16) & 0xf; }

/** The BlockStatus for a completed command: `response` a virtio-scsi code, `status` SAM, `sense` from senseParse. */
export function blockStatusOf(response: u32, status: u32, sense: u32): BlockStatus {
  if (response != RESPONSE_OK) {
    switch (<i32>response) {
      case RESPONSE_BAD_TARGET: return BlockStatus.NoDisk;
      case RESPONSE_BUSY: return BlockStatus.Busy;
      case RESPONSE_ABORTED:
      case RESPONSE_RESET: return BlockStatus.Aborted;
      default: return BlockStatus.DeviceError; // overrun, transport, target, nexus failure, failure
    }
  }
  switch (<i32>status) {
    case SAM_STATUS_GOOD:
    case SAM_STATUS_CONDITION_MET: return BlockStatus.Ok;
    case SAM_STATUS_CHECK_CONDITION: return blockStatusOfSense(sense);
    case SAM_STATUS_BUSY:
    case SAM_STATUS_TASK_SET_FULL: return BlockStatus.Busy;
    case SAM_STATUS_TASK_ABORTED: return BlockStatus.Aborted;
    default: return BlockStatus.DeviceError; // reservation conflict, ACA active, anything unknown
  }
}

function blockStatusOfSense(sense: u32): BlockStatus {
  switch (<i32>senseKeyOf(sense)) {
    case SENSE_KEY_MEDIUM_ERROR:
    case SENSE_KEY_HARDWARE_ERROR: return BlockStatus.MediumError;
    case SENSE_KEY_ILLEGAL_REQUEST:
    case SENSE_KEY_DATA_PROTECT: return BlockStatus.IllegalRequest;
    case SENSE_KEY_UNIT_ATTENTION: return BlockStatus.Busy; // retried by the DDM first; Busy: the requester may retry
    case SENSE_KEY_ABORTED_COMMAND: return BlockStatus.Aborted;
    default: return BlockStatus.DeviceError; // not ready, no sense with CHECK CONDITION, vendor keys
  }
}
