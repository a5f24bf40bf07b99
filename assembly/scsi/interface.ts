// The SCSI target's interface to transports (iSCSI today): SCSI never knows its transport, the transport never
// parses a CDB. A transport fills a ScsiTask record (assembly/scsi/tasks.ts) and posts ScsiCommand; the SCSI task
// answers with ScsiDataOut when it needs the initiator's data, and ScsiDone when status (and any Data-In) is ready.
//
// Messages (kernel Msg; `a` is always the ScsiTask index):
//   ScsiCommand  transport → scsi   a new command: the record holds nexus, lun, cdb, expected length, direction, tag
//   ScsiDataOut  scsi → transport   fill the task's SGL (scsiTaskSgl) with the first `b` bytes of the initiator's
//                                   Data-Out (immediate and unsolicited data first, then R2Ts as the transport likes)
//   ScsiDataReady transport → scsi  the SGL holds those bytes; or b = 1: the data cannot come (connection lost, abort)
//   ScsiDone     scsi → transport   status, sense and residual are in the record; for Data-In the SGL holds
//                                   scsiTaskDataInBytes bytes to send. The transport calls scsiTaskRelease when the
//                                   Data-In has left (the NIC's Sent events), never before.
//   ScsiTmf      transport → scsi   a: task index whose record holds the TMF (function in tmfFunction, referenced tag)
//   ScsiTmfDone  scsi → transport   a: task index; tmfResponse holds the iSCSI/SAM response code
// Nexus: the transport's identifier of an I_T nexus (initiator port × target port), stable for a session; SCSI
// keys reservations, unit attentions and TMF scopes by it. scsiNexusGone(nexus) when a session ends.

export enum ScsiDirection {
  None = 0,
  Read = 1, // Data-In expected
  Write = 2, // Data-Out expected
}

export enum TmfFunction {
  AbortTask = 1,
  AbortTaskSet = 2,
  ClearAca = 3,
  ClearTaskSet = 4,
  LogicalUnitReset = 5,
  TargetWarmReset = 6,
  TargetColdReset = 7,
}

// SAM task-management responses, as iSCSI carries them (RFC 7143, Task Management Function Response).
export enum TmfResponse {
  Complete = 0,
  TaskDoesNotExist = 1,
  LunDoesNotExist = 2,
  TaskStillAllegiant = 3,
  ReassignmentNotSupported = 4,
  NotSupported = 5,
  AuthorizationFailed = 6,
  Rejected = 255,
}

export const SCSI_STATUS_GOOD: u32 = 0x00;
export const SCSI_STATUS_CHECK_CONDITION: u32 = 0x02;
export const SCSI_STATUS_BUSY: u32 = 0x08;
export const SCSI_STATUS_RESERVATION_CONFLICT: u32 = 0x18;
export const SCSI_STATUS_TASK_SET_FULL: u32 = 0x28;
