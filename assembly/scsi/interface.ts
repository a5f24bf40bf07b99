// The SCSI target's interface to transports (iSCSI today): SCSI never knows its transport, the transport never
// parses a CDB. A transport fills a ScsiTask record (assembly/scsi/tasks.ts) and posts ScsiCommand; the SCSI task
// answers with ScsiDataOut when it needs the initiator's data, and ScsiDone when status (and any Data-In) is ready.
//
// Messages (kernel Msg; `a` is always the ScsiTask index):
//   ScsiCommand  transport → scsi   a new command: the record holds nexus, lun, cdb, expected length, direction, tag
//                                   (lun may carry SCSI_LUN_WRITE_PROTECTED: the unit is read-only through this LUN)
//   ScsiDataOut  scsi → transport   fill the task's SGL (scsiTaskSgl) with the first `b` bytes of the initiator's
//                                   Data-Out (immediate and unsolicited data first, then R2Ts as the transport likes)
//   ScsiDataReady transport → scsi  the SGL holds those bytes; or b = 1: the data cannot come (connection lost, abort)
//   ScsiDone     scsi → transport   status, sense and residual are in the record; for Data-In the SGL holds
//                                   scsiTaskDataInBytes bytes to send. The transport calls scsiTaskRelease when the
//                                   Data-In has left (the NIC's Sent events), never before.
//   ScsiTmf      transport → scsi   a: task index whose record holds the TMF (function in tmfFunction, referenced tag)
//   ScsiTmfDone  scsi → transport   a: task index; tmfResponse holds the iSCSI/SAM response code
// Nexus: the SCSI target's id of an I_T nexus (initiator port × target port), from scsiNexusIdentify; SCSI keys
// reservations, unit attentions, copy results and TMF scopes by it. scsiNexusGone(nexus) when a session ends.

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

// Extensions (assembly/scsi/tasks.ts and target.ts implement them).
//
// Records: scsiTaskAlloc() answers a ScsiTask index or SCSI_TASK_NONE (the transport answers TASK SET FULL). The
// transport sets nexus, lun, tag, direction, expected transfer length, attribute, its own task (transportTask: where
// ScsiDataOut, ScsiDone and ScsiTmfDone go) and the CDB (scsiTaskSetCdb), then posts ScsiCommand{a: index}. For a TMF
// it sets nexus, lun, transportTask and scsiTaskSetTmf(function, referenced tag), then posts ScsiTmf{a: index}. Every
// record the transport got from scsiTaskAlloc goes back through scsiTaskRelease exactly once: after ScsiDone (when its
// Data-In has left), after ScsiTmfDone, or unused (never posted).
//
// The SGL (scsiTaskSgl) covers exactly the bytes to move: ScsiDataOut's `b` bytes, or scsiTaskDataInBytes for Data-In.
// Its buffers belong to the SCSI layer; scsiTaskRelease returns them.
//
// Aborts (TMFs, PREEMPT AND ABORT, a nexus gone, ScsiDataReady with b = 1): an aborted task still gets exactly one
// ScsiDone, with scsiTaskAborted(t) true and status SAM_STATUS_TASK_ABORTED, once nothing of the SCSI layer uses its
// buffers any more. The transport sends no response for it, stops filling its SGL if it was receiving Data-Out, and
// releases it; except when scsiTaskAbortReported(t): another I_T nexus's action aborted it and the Control mode page
// has TAS 1 (SAM-5, Aborting commands), so the transport sends its TASK ABORTED status (no data, no sense) like any
// other. A TMF's ScsiTmfDone comes after the ScsiDone of every task it aborted.
// A ScsiDataReady that arrives for a task already aborted is ignored.
//
// Data-Out: ScsiDataOut's `b` is never more than the expected transfer length and may be less (the CDB asks for
// less, or only the whole blocks of a short one are written): the transport takes that many bytes into the SGL and
// discards the rest of what the initiator sends. A command refused before it asks (CHECK CONDITION, RESERVATION CONFLICT) gets no
// ScsiDataOut at all: its unsolicited data is discarded too. scsiTaskSgl is SGL_NONE whenever there are no bytes.
//
// Nexus: the transport gets its id from scsiNexusIdentify(port name, target port) when a session starts (iSCSI:
// "InitiatorName,i,0xISID"); the same name gets the same id in every session, so persistent reservation
// registrations (kept per nexus id, across scsiNexusGone) find it again and READ FULL STATUS can name it.
// transport.ts has the one-call forms: scsiTaskSubmit, scsiTmfSubmit, scsiTaskDataReady, scsiTaskResidual.
//
// Residuals (SAM-5, RFC 7143 Residual Count): with GOOD status, scsiTaskResidualKind says whether the command moved
// less (Underflow) or wanted to move more (Overflow) than the expected transfer length, by scsiTaskResidualBytes.
// Data-In never exceeds the expected length; Data-Out asked for never exceeds it either. A command refused because
// the expected length falls short of what it needs (CHECK CONDITION, INVALID FIELD IN COMMAND INFORMATION UNIT;
// commands.ts, shortDataOut) keeps its Overflow too, and the transport reports it with the sense; any other status
// has none.

export const SCSI_TASK_NONE: u32 = 0xffff_ffff;
export const SCSI_LUN_NONE: u32 = 0xffff_ffff; // a LUN the transport could not decode: LOGICAL UNIT NOT SUPPORTED
// Or'd into a command's (or TMF's) lun by the transport when its LUN map makes the unit read-only for this initiator
// (the board file's readOnly): the target takes it off at once (write_protect.ts) and refuses writes to the medium.
export const SCSI_LUN_WRITE_PROTECTED: u32 = 0x8000_0000;
export const SCSI_DATA_READY_FAILED: u32 = 1; // ScsiDataReady b: the Data-Out cannot come

export enum ScsiResidual {
  None = 0,
  Underflow = 1, // moved scsiTaskResidualBytes fewer bytes than expected
  Overflow = 2, // the command wanted scsiTaskResidualBytes more than expected; they were not moved
}

// SAM-5 task attributes, as iSCSI's ATTR field codes them. The target runs every task as SIMPLE: ORDERED and HEAD OF
// QUEUE get no ordering of their own, and ACA is not refused (NormACA 0 means no ACA condition ever exists).
export enum ScsiTaskAttribute {
  Untagged = 0,
  Simple = 1,
  Ordered = 2,
  HeadOfQueue = 3,
  Aca = 4,
}
