// The PERSISTENT RESERVE OUT parameter list (SPC-4, PERSISTENT RESERVE OUT parameter list): checked here, its
// service action run by reservations.ts, and the result turned into status and sense data.
//
// Basic list, 24 bytes, and with SPEC_I_PT the TransportIDs after it:
//   |0-7 RESERVATION KEY|8-15 SERVICE ACTION RESERVATION KEY|16-19 obsolete|20 SPEC_I_PT(3),ALL_TG_PT(2),-,APTPL(0)|
//   |21-23 -|24-27 TRANSPORTID PARAMETER DATA LENGTH (SPEC_I_PT only)|28- TransportIDs|
// REGISTER AND MOVE:
//   |0-7 RESERVATION KEY|8-15 SERVICE ACTION RESERVATION KEY|16 -|17 UNREG(1),APTPL(0)|18-19 RELATIVE TARGET PORT
//   IDENTIFIER|20-23 TRANSPORTID PARAMETER DATA LENGTH|24- TransportID|
// APTPL (valid for REGISTER, REGISTER AND IGNORE EXISTING KEY and REGISTER AND MOVE, ignored for the others) is the
// unit's choice to keep its state through power loss: with an NVRAM (pr_record.ts) a service action that ends GOOD on
// a unit whose last APTPL is one, or turns it off, is answered only once the unit's record is durable; without one,
// APTPL one is refused (PTPL_C 0). ALL_TG_PT matters only to a new registration.
import { cdbU8, getBe16, getBe32, getBe64 } from "./cdb";
import {
  PR_OUT_REGISTER, PR_OUT_REGISTER_AND_IGNORE, PR_OUT_REGISTER_AND_MOVE, prFieldBit, prFieldByte, prOut,
  prRegisterAndMove, prRegisterSpecified, PrResult,
} from "./reservations";
import {
  ASC_INSUFFICIENT_REGISTRATION_RESOURCES, ASC_INTERNAL_TARGET_FAILURE, ASC_INVALID_FIELD_IN_CDB, ASC_INVALID_FIELD_IN_PARAMETER_LIST,
  ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION, ASC_PARAMETER_LIST_LENGTH_ERROR, BIT_NONE, fieldInCdb, fieldInParameters,
} from "./sense";
import { SENSE_KEY_HARDWARE_ERROR, SENSE_KEY_ILLEGAL_REQUEST } from "../protocol/sense_keys";
import { SAM_STATUS_RESERVATION_CONFLICT } from "../protocol/scsi_status";
import { prRecordSave, prRecordsAvailable } from "./pr_record";
import { prAptpl, prAptplSet, prBackup, prRollback } from "./reservations";
import { scsiTaskAreaAddress, scsiTaskCheck, scsiTaskDataOutBytes, scsiTaskLun, scsiTaskNexus, scsiTaskSetStatus, scsiTaskTransferBytes } from "./tasks";

export const PR_OUT_LIST_BYTES: u32 = 24;
const SPEC_I_PT: u32 = 0x08;
const ALL_TG_PT: u32 = 0x04;
const APTPL: u32 = 0x01;
const MOVE_UNREG: u32 = 0x02;
const SPECIFIED_HEADER_BYTES: u32 = 28; // the basic list and TRANSPORTID PARAMETER DATA LENGTH

/** Runs the PERSISTENT RESERVE OUT task `t` whose parameter list is in its area; true when it ended GOOD. */
export function persistentReserveOut(t: u32): bool {
  const listBytes = scsiTaskTransferBytes(t);
  if (scsiTaskDataOutBytes(t) < listBytes || listBytes < PR_OUT_LIST_BYTES) { // the initiator sent less than it said
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(5));
    return false;
  }
  const list = scsiTaskAreaAddress(t, 0);
  const action = cdbU8(t, 1) & 0x1f;
  const moving = action == PR_OUT_REGISTER_AND_MOVE;
  const registering = moving || action == PR_OUT_REGISTER || action == PR_OUT_REGISTER_AND_IGNORE;
  const aptplAt: u32 = moving ? 17 : 20;
  const aptpl = (<u32>load<u8>(list + aptplAt) & APTPL) != 0;
  // SPC-4: a device server that cannot keep the state through power loss refuses APTPL one where it is valid.
  if (registering && aptpl && !prRecordsAvailable()) return invalidField(t, aptplAt, 0);
  const lun = scsiTaskLun(t);
  const aptplBefore = prAptpl(lun);
  if (prRecordsAvailable()) prBackup(lun); // undone if its record cannot be kept
  if (!(moving ? registerAndMove(t, list, listBytes) : serviceAction(t, list, listBytes, action))) return false;
  if (registering) prAptplSet(lun, aptpl); // the last valid APTPL bit
  return persist(t, lun, aptplBefore);
}

// SPC-4, Preserving persistent reservations and registrations: the unit's new state (or APTPL turned off, which
// empties its record) is durable before GOOD. A unit that had and has APTPL zero writes nothing. A record the NVRAM
// did not keep undoes the command: HARDWARE ERROR, and the state is what it was, in RAM as in the NVRAM.
function persist(t: u32, lun: u32, aptplBefore: bool): bool {
  if (!prRecordsAvailable() || (!aptplBefore && !prAptpl(lun))) return true;
  if (prRecordSave(lun)) return true;
  prRollback(lun);
  scsiTaskCheck(t, SENSE_KEY_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE);
  return false;
}

function serviceAction(t: u32, list: usize, listBytes: u32, action: u32): bool {
  const flags = <u32>load<u8>(list + 20);
  const specified = (flags & SPEC_I_PT) != 0;
  // SPC-4: SPEC_I_PT is for REGISTER and REGISTER AND IGNORE EXISTING KEY only, and the latter may not use it.
  if (specified && action != PR_OUT_REGISTER) return invalidField(t, 20, 3);
  if (!specified && listBytes != PR_OUT_LIST_BYTES) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(5));
    return false;
  }
  const lun = scsiTaskLun(t);
  const nexus = scsiTaskNexus(t);
  const key = getBe64(list);
  const saKey = getBe64(list + 8);
  const allTargetPorts = (flags & ALL_TG_PT) != 0;
  if (!specified) return answer(t, prOut(lun, nexus, action, cdbU8(t, 2) >> 4, cdbU8(t, 2) & 0x0f, key, saKey, allTargetPorts));
  if (listBytes < SPECIFIED_HEADER_BYTES) {
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(5));
    return false;
  }
  const idsBytes = getBe32(list + 24);
  if (<u64>idsBytes + SPECIFIED_HEADER_BYTES != <u64>listBytes) return invalidField(t, 24);
  return answer(t, prRegisterSpecified(lun, nexus, key, saKey, allTargetPorts, list + SPECIFIED_HEADER_BYTES, idsBytes, SPECIFIED_HEADER_BYTES));
}

function registerAndMove(t: u32, list: usize, listBytes: u32): bool {
  const flags = <u32>load<u8>(list + 17);
  const idBytes = getBe32(list + 20);
  if (<u64>idBytes + PR_OUT_LIST_BYTES != <u64>listBytes) return invalidField(t, 20);
  return answer(t, prRegisterAndMove(scsiTaskLun(t), scsiTaskNexus(t), getBe64(list), getBe64(list + 8),
    getBe16(list + 18), (flags & MOVE_UNREG) != 0, list + PR_OUT_LIST_BYTES, idBytes, PR_OUT_LIST_BYTES));
}

function invalidField(t: u32, byteIndex: u32, bitIndex: u32 = BIT_NONE): bool {
  scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(byteIndex, bitIndex));
  return false;
}

// A service action's result as status and sense; true when GOOD (a result already answered stays as it is).
function answer(t: u32, result: PrResult): bool {
  switch (result) {
    case PrResult.Good: return true;
    case PrResult.Conflict: scsiTaskSetStatus(t, SAM_STATUS_RESERVATION_CONFLICT); break;
    case PrResult.InvalidType: scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, fieldInCdb(2, 3)); break;
    case PrResult.InvalidScope: scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, fieldInCdb(2, 7)); break;
    case PrResult.InvalidRelease: scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION); break;
    case PrResult.InvalidKey: return invalidField(t, 8);
    case PrResult.NoRoom: scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INSUFFICIENT_REGISTRATION_RESOURCES); break;
    case PrResult.InvalidParameter: return invalidField(t, prFieldByte(), prFieldBit());
    case PrResult.NoReservation: scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, fieldInCdb(1, 4)); break;
    default: assert(false, "scsi: unknown PERSISTENT RESERVE OUT result");
  }
  return false;
}
