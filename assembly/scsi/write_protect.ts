// Write protection (SBC-3, Write protection; SPC-4, Control mode page, SWP): a logical unit refuses every command
// that would change its medium with CHECK CONDITION, DATA PROTECT, WRITE PROTECTED, before it asks for any Data-Out,
// and reads as usual. A unit is write-protected for a command when the transport says so (the board file's LUN map
// marks it read-only: the transport ors SCSI_LUN_WRITE_PROTECTED into the record's LUN, interface.ts), or when an
// initiator set SWP in its Control mode page (mode.ts). MODE SENSE reports either as WP in its header.
import {
  OP_COMPARE_AND_WRITE, OP_ORWRITE_16, OP_UNMAP, OP_WRITE_10, OP_WRITE_12, OP_WRITE_16, OP_WRITE_6, OP_WRITE_AND_VERIFY_10,
  OP_WRITE_AND_VERIFY_12, OP_WRITE_AND_VERIFY_16, OP_WRITE_ATOMIC_16, OP_WRITE_SAME_10, OP_WRITE_SAME_16, OP_EXTENDED_COPY,
} from "../protocol/scsi_opcodes";
import { SCSI_LUN_NONE, SCSI_LUN_WRITE_PROTECTED } from "./interface";
import { modeSoftwareWriteProtect } from "./mode";
import { SA_WRITE_USING_TOKEN } from "./token_copy";
import { scsiTaskFlags, scsiTaskFlagSet, scsiTaskLun, scsiTaskNexus, scsiTaskSetLun, TASK_FLAG_WRITE_PROTECTED } from "./tasks";
import { nexusTargetPort } from "./identities";
import { targetPortWritable } from "./target_luns";

/**
 * Moves the transport's SCSI_LUN_WRITE_PROTECTED out of record `t`'s LUN into its flags, so that everything after
 * sees the bare volume. Called once, when ScsiCommand or ScsiTmf arrives.
 */
export function writeProtectTake(t: u32): void {
  const lun = scsiTaskLun(t);
  if (lun == SCSI_LUN_NONE || (lun & SCSI_LUN_WRITE_PROTECTED) == 0) return;
  scsiTaskSetLun(t, lun & ~SCSI_LUN_WRITE_PROTECTED);
  scsiTaskFlagSet(t, TASK_FLAG_WRITE_PROTECTED, true);
  assert(scsiTaskLun(t) != SCSI_LUN_NONE, "scsi: a write-protected LUN is a LUN");
}

/**
 * Is `lun` write-protected for task `t`: its own unit marked read-only by the transport; another unit (EXTENDED
 * COPY's destination) not presented writable by the target port `t` came through (read-only there, or not there at
 * all: a copy writes nothing its initiator could not write itself); or `lun`'s SWP set?
 */
export function writeProtected(t: u32, lun: u32): bool {
  if (lun == scsiTaskLun(t)) {
    if ((scsiTaskFlags(t) & TASK_FLAG_WRITE_PROTECTED) != 0) return true;
  } else if (!targetPortWritable(nexusTargetPort(scsiTaskNexus(t)), lun)) return true;
  return modeSoftwareWriteProtect(lun);
}

/**
 * Does the command (`opcode`, service action `sa` or SA_NONE) write its own logical unit's medium? SANITIZE is left to
 * sanitize.ts (its checks come first) and EXTENDED COPY to each segment's destination (target.ts, copySegmentOk).
 */
export function writeProtectRefuses(opcode: u32, sa: u32): bool {
  switch (opcode) {
    case OP_WRITE_6: case OP_WRITE_10: case OP_WRITE_12: case OP_WRITE_16:
    case OP_WRITE_AND_VERIFY_10: case OP_WRITE_AND_VERIFY_12: case OP_WRITE_AND_VERIFY_16:
    case OP_WRITE_SAME_10: case OP_WRITE_SAME_16: case OP_UNMAP: case OP_COMPARE_AND_WRITE: case OP_ORWRITE_16:
    case OP_WRITE_ATOMIC_16:
      return true;
    case OP_EXTENDED_COPY: return sa == SA_WRITE_USING_TOKEN; // the destination is this unit
    default: return false;
  }
}
