// The calls a transport makes, each one step: fill a record and post it, say the Data-Out is in, read the residual
// the way iSCSI carries it. Built on the record accessors (tasks.ts) and the messages of interface.ts.
import { Msg, MsgKind } from "../kernel/msg";
import { post } from "../kernel/scheduler";
import { ScsiDirection, ScsiResidual, SCSI_DATA_READY_FAILED, TmfFunction } from "./interface";
import { scsiTargetTask } from "./target";
import { targetLunsMsgE } from "./target_luns";
import {
  scsiTaskResidualBytes, scsiTaskResidualKind, scsiTaskSetAttribute, scsiTaskSetCdb, scsiTaskSetDirection,
  scsiTaskSetExpectedTransferBytes, scsiTaskSetLun, scsiTaskSetNexus, scsiTaskSetTag, scsiTaskSetTmf,
  scsiTaskSetTransportTask, scsiTaskSenseLength,
} from "./tasks";

const message = new Msg();

/**
 * Fills record `t` (from scsiTaskAlloc) with a command and posts ScsiCommand from `transportTask`, which then gets
 * ScsiDataOut (maybe) and exactly one ScsiDone. `attribute` is the transport's task attribute (iSCSI ATTR); every
 * task runs as SIMPLE. The target's inbox holds a message per record, so posting cannot fail.
 */
export function scsiTaskSubmit(t: u32, transportTask: u32, nexus: u32, lun: u32, cdb: usize, cdbBytes: u32,
  expectedBytes: u32, direction: ScsiDirection, tag: u32, attribute: u32): void {
  scsiTaskSetNexus(t, nexus);
  scsiTaskSetLun(t, lun);
  scsiTaskSetTag(t, tag);
  scsiTaskSetDirection(t, direction);
  scsiTaskSetExpectedTransferBytes(t, expectedBytes);
  scsiTaskSetAttribute(t, attribute);
  scsiTaskSetTransportTask(t, transportTask);
  assert(scsiTaskSetCdb(t, cdb, cdbBytes), "scsi: CDB of 1 to 32 bytes");
  assert(post(scsiTargetTask(), message.set(MsgKind.ScsiCommand, transportTask, t, 0)), "scsi: target inbox full");
}

/** Fills record `t` with a TMF (interface.ts TmfFunction) and posts ScsiTmf; exactly one ScsiTmfDone follows. */
export function scsiTmfSubmit(t: u32, transportTask: u32, nexus: u32, lun: u32, fn: u32, referencedTag: u32): void {
  scsiTaskSetNexus(t, nexus);
  scsiTaskSetLun(t, lun);
  scsiTaskSetTransportTask(t, transportTask);
  scsiTaskSetTmf(t, <TmfFunction>fn, referencedTag);
  assert(post(scsiTargetTask(), message.set(MsgKind.ScsiTmf, transportTask, t, 0)), "scsi: target inbox full");
}

/** The Data-Out ScsiDataOut asked for is in the task's SGL; or, with `failed`, it will not come (the task aborts). */
export function scsiTaskDataReady(t: u32, transportTask: u32, failed: bool): void {
  const msg = message.set(MsgKind.ScsiDataReady, transportTask, t, failed ? SCSI_DATA_READY_FAILED : 0);
  assert(post(scsiTargetTask(), msg), "scsi: target inbox full");
}

/**
 * Asks the SCSI target for the nexus id of initiator port `portName` (`portNameBytes` bytes; iSCSI:
 * "InitiatorName,i,0xISID") through relative target port `targetPort` (1-based), for a session that starts. The
 * name must stay put until the answer: ScsiNexusIdentified to `transportTask`, a = `cookie`, b = the id or NEXUS_NONE
 * when the target's table has no room (refuse the session). The same name and port give the same id in every
 * session, so persistent reservation registrations find their initiator port again.
 */
export function scsiNexusIdentifyPost(transportTask: u32, cookie: u32, portName: usize, portNameBytes: u32, targetPort: u32): void {
  const msg = message.set(MsgKind.ScsiNexusIdentify, transportTask, cookie, targetPort);
  msg.c = portNameBytes;
  msg.d = <u64>portName;
  assert(post(scsiTargetTask(), msg), "scsi: target inbox full");
}

/**
 * Target port `targetPort` presents the `count` LUN numbers (u32 each) at `luns`, mapping the volumes (u32 each, as a
 * command's lun: SCSI_LUN_WRITE_PROTECTED when read-only) at `volumes`; both stay put. What REPORT LUNS lists through
 * it, and which units a persistent reservation may be moved to it for. It is reached through NIC port `nicPort`, on
 * a board presenting `targetCount` targets (scsi/target_port.ts). Sent once the transport serves.
 */
export function scsiTargetLunsPost(transportTask: u32, targetPort: u32, luns: usize, volumes: usize, count: u32, nicPort: u32, targetCount: u32): void {
  const msg = message.set(MsgKind.ScsiTargetLuns, transportTask, targetPort, count);
  msg.d = <u64>luns;
  msg.c = <u32>volumes;
  msg.e = targetLunsMsgE(nicPort, targetCount);
  assert(post(scsiTargetTask(), msg), "scsi: target inbox full");
}

/**
 * The session of `nexus` (an id ScsiNexusIdentified gave) ended. The target aborts the nexus's tasks (each still
 * gets its ScsiDone, aborted) and ends its RESERVE(6) reservations; its persistent registrations stay.
 */
export function scsiNexusGonePost(transportTask: u32, nexus: u32): void {
  assert(post(scsiTargetTask(), message.set(MsgKind.ScsiNexusGone, transportTask, nexus, 0)), "scsi: target inbox full");
}

/** The residual as one number: positive for an underflow, negative for an overflow, 0 for none. */
export function scsiTaskResidual(t: u32): i64 {
  const bytes = <i64>scsiTaskResidualBytes(t);
  switch (scsiTaskResidualKind(t)) {
    case ScsiResidual.Underflow: return bytes;
    case ScsiResidual.Overflow: return -bytes;
    default: return 0;
  }
}

/** Bytes of sense data (0 unless status is CHECK CONDITION). */
export function scsiTaskSenseBytes(t: u32): u32 { return scsiTaskSenseLength(t); }

