// The SCSI target task: runs the commands transports hand it (interface.ts) against the CTA's volumes (LUN = volume
// index). A command is admitted (LUN, unit attention, operation code, CDB bits, reservations), decoded
// (commands.ts), then moved through its program's phases: take the data area, ask for Data-Out, send ServiceIo
// requests to the CTA, compare, answer. Every step that needs a resource it cannot have parks the task in a FIFO for
// that resource (buffers of a class, a CTA slot, a message slot at the transport, a COMPARE AND WRITE lock) and the
// task goes on with other messages: returning Waiting would starve the completions that free the resources.
// Task management functions abort tasks; a task with a service in flight finishes aborting when the service answers,
// and the TMF is answered after every task it aborted.
import { FrameFunction, FrameStatus } from "../board/frame";
import { BUFFER_CLASS_PAGE } from "../config";
import { VOLUMES_MAX, volumeAt, volumesCount } from "../volumes/volume";
import { targetLunsInit, targetLunsMsgNicPort, targetLunsMsgTargetCount, targetLunsSet, targetPortPresents } from "./target_luns";
import { sgls } from "../kernel/buffers";
import { Msg, MsgKind } from "../kernel/msg";
import { MsgQueue } from "../kernel/queue";
import { POOL_NONE } from "../kernel/pool";
import { wakeTask } from "../kernel/ready";
import { post, taskAdd, timerStart } from "../kernel/scheduler";
import { SGL_NONE } from "../kernel/sgl";
import { RunResult, Task } from "../kernel/task";
import { TIMER_NONE } from "../kernel/timer";
import {
  cdbBe64, cdbLengthOfOpcode, cdbReservedBits, cdbU8, CDB_OK, commandAccess, commandEntry, commandFind, COMMAND_NONE, getBe16,
  getBe32, getBe64, opcodeHasServiceActions, SA_NONE, Access,
} from "./cdb";
import {
  OP_COMPARE_AND_WRITE, OP_EXTENDED_COPY, OP_INQUIRY, OP_MAINTENANCE_IN, OP_MODE_SELECT_10, OP_MODE_SELECT_6,
  OP_MODE_SENSE_10, OP_MODE_SENSE_6, OP_ORWRITE_16, OP_PERSISTENT_RESERVE_IN, OP_PERSISTENT_RESERVE_OUT,
  OP_PREVENT_ALLOW_MEDIUM_REMOVAL, OP_PRE_FETCH_10, OP_PRE_FETCH_16, OP_READ_10, OP_READ_12, OP_READ_16, OP_READ_6,
  OP_READ_CAPACITY_10, OP_READ_DEFECT_DATA_10, OP_READ_DEFECT_DATA_12, OP_RECEIVE_COPY_RESULTS, OP_RELEASE_6,
  OP_REPORT_LUNS, OP_REQUEST_SENSE, OP_RESERVE_6, OP_SERVICE_ACTION_IN_16, OP_START_STOP_UNIT, OP_SYNCHRONIZE_CACHE_10,
  OP_SYNCHRONIZE_CACHE_16, OP_TEST_UNIT_READY, OP_UNMAP, OP_VERIFY_10, OP_VERIFY_12, OP_VERIFY_16, OP_WRITE_10,
  OP_WRITE_12, OP_WRITE_16, OP_WRITE_6, OP_WRITE_AND_VERIFY_10, OP_WRITE_AND_VERIFY_12, OP_WRITE_AND_VERIFY_16,
  OP_WRITE_ATOMIC_16, OP_WRITE_SAME_10, OP_WRITE_SAME_16, OP_SANITIZE, SA_GET_LBA_STATUS,
} from "../protocol/scsi_opcodes";
import {
  allocationLength, DATA_IN_FAILED, dataInBuild, decodeCompareAndWrite, decodeOrWrite, decodeWriteAtomic, decodeDataIn, decodePrefetch, decodeModeSelect,
  decodePersistentReserveOut, decodeRead, decodeSynchronizeCache, decodeUnmap, decodeVerify, decodeWrite,
  decodeWriteSame, OPT_BYTCHK, OPT_DEALLOCATE, OPT_FUA, OPT_NDOB, OPT_ONE_BLOCK, OPT_REPEAT, OPT_UNMAP, Program,
  roundUp,
} from "./commands";
import {
  ScsiDirection, ScsiResidual, SCSI_DATA_READY_FAILED, SCSI_TASK_NONE, TmfFunction, TmfResponse,
} from "./interface";
import { limitsInit, SERVICES_IN_FLIGHT_MAX, UNMAP_BYTES_MAX, UNMAP_DESCRIPTORS_MAX } from "./limits";
import { modeInit, modeLunReset, modeTaskAbortedStatus, ModeSelectResult, modeSelectApply, modeSelectFieldByte, modeWriteCacheEnabled } from "./mode";
import {
  NEXUS_MAX, NEXUS_NONE, NEXUS_SLOT_NONE, nexusClose, nexusFind, nexusGoneCount, nexusInit, nexusLunCountCheck, nexusMarkGone,
  nexusPowerOnHeard,
  nexusOfSlot, nexusOpen, nexusSlotGone, nexusSlotInUse, UA_COMMANDS_CLEARED, UA_MODE_PARAMETERS_CHANGED, UA_NONE,
  UA_POWER_ON_RESET, UA_SOFT_THRESHOLD, uaSetAll, uaSetNexus, uaTake,
} from "./nexus";
import { THIN_EVENT_SOFT_THRESHOLD } from "../cta/thin";
import { persistentReserveOut } from "./pr_out";
import { prRecordsBoot } from "./pr_record";
import {
  PR_OUT_PREEMPT_AND_ABORT, prPreemptedAt, prPreemptedCount, release6, reservationConflict, reservationsInit,
  reservationsLunReset, reservationsNexusLost, reserve6,
} from "./reservations";
import {
  ASC_INSUFFICIENT_REGISTRATION_RESOURCES, ASC_INTERNAL_TARGET_FAILURE, ASC_INVALID_COMMAND_OPERATION_CODE,
  ASC_INVALID_FIELD_IN_CDB, ASC_INVALID_FIELD_IN_PARAMETER_LIST, ASC_INVALID_RELEASE_OF_PERSISTENT_RESERVATION,
  ASC_LBA_OUT_OF_RANGE, ASC_LOGICAL_UNIT_COMMUNICATION_FAILURE, ASC_LOGICAL_UNIT_NOT_SUPPORTED,
  ASC_LOGICAL_UNIT_NOT_ACCESSIBLE_TARGET_PORT_UNAVAILABLE,
  ASC_MISCOMPARE_DURING_VERIFY, ASC_PARAMETER_LIST_LENGTH_ERROR, ASC_UNRECOVERED_READ_ERROR, ASC_WRITE_ERROR,
  fieldInCdb, fieldInParameters, FIELD_NONE, senseCommandSpecific, ASC_COPY_TARGET_DEVICE_NOT_REACHABLE,
  ASC_INCORRECT_COPY_TARGET_DEVICE_TYPE, ASC_NO_ADDITIONAL_SENSE, ASC_UNEXPECTED_INEXACT_SEGMENT,
  ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT,
} from "./sense";
import {
  SENSE_KEY_ABORTED_COMMAND, SENSE_KEY_COPY_ABORTED, SENSE_KEY_DATA_PROTECT, SENSE_KEY_HARDWARE_ERROR, SENSE_KEY_ILLEGAL_REQUEST,
  SENSE_KEY_MEDIUM_ERROR, SENSE_KEY_MISCOMPARE, SENSE_KEY_NOT_READY, SENSE_KEY_UNIT_ATTENTION,
} from "../protocol/sense_keys";
import {
  SAM_STATUS_BUSY, SAM_STATUS_CHECK_CONDITION, SAM_STATUS_GOOD, SAM_STATUS_RESERVATION_CONFLICT, SAM_STATUS_TASK_ABORTED,
} from "../protocol/scsi_status";
import {
  AREA_EQUAL, scsiTaskAreaAddress, scsiTaskAreaOr, scsiTaskAreaClass, scsiTaskAreaCompare, scsiTaskAreaCompareRepeated, scsiTaskAreaFill,
  scsiTaskAreaReady, scsiTaskAreaSgl, scsiTaskAreaZero, scsiTaskAreaRunBytes, scsiTaskBlockBytes, scsiTaskBlockCount,
  scsiTaskCdbLength, scsiTaskCheck, scsiTaskCursor, scsiTaskDataInBytes, scsiTaskDataOutBytes, scsiTaskDirection,
  scsiTaskExpectedTransferBytes, scsiTaskFlagSet, scsiTaskFlags, scsiTaskGeneration, scsiTaskHeld, scsiTaskIoSgl,
  scsiTaskLba, scsiTaskLun, scsiTaskNexus, scsiTaskNexusSlot, scsiTaskOptions, scsiTaskParked, scsiTaskPhase,
  scsiTaskProgram, scsiTaskReferencedTag, scsiTaskRepeatSgl, scsiTaskServiceBlocks, scsiTaskServiceFunction,
  scsiTaskServiceLba, scsiTaskServiceOffset, scsiTaskSetCursor, scsiTaskSetDataInBytes, scsiTaskSetIoSgl,
  scsiTaskSetBlockCount, scsiTaskSetBlockBytes, scsiTaskSetNexusSlot, scsiTaskSetOptions, scsiTaskSetParked, scsiTaskSetPhase, scsiTaskSetProgram,
  scsiTaskResidualKind, scsiTaskSetResidual, scsiTaskSetTransferBytes,
  scsiTaskSetService, scsiTaskSetSenseLength, scsiTaskSetSgl, scsiTaskSetState, scsiTaskSetStatus,
  scsiTaskSetTmfOwner, scsiTaskSetTmfResponse, scsiTaskSetTmfWaitCount, scsiTaskSgl, scsiTaskState, scsiTaskStatus,
  ScsiTaskState, scsiTaskTag, scsiTaskTmfFunction, scsiTaskTmfOwner, scsiTaskTmfWaitCount, scsiTaskTransferBytes,
  scsiTaskTransportTask, scsiTasksInit, SCSI_TASKS_MAX, TASK_FLAG_ABORTED, TASK_FLAG_DATA_IN, TASK_FLAG_DATA_OUT,
  TASK_FLAG_ABORT_REPORTED, TASK_FLAG_LOCK, scsiTaskCopyChunkBytes, scsiTaskCopyDoneBytes, scsiTaskCopyEntry, scsiTaskCopySegment, scsiTaskSense,
  scsiTaskServiceLun, scsiTaskSetCopyDoneBytes, scsiTaskCopyToken, scsiTaskSetCopyEntry, scsiTaskSetCopySegment, scsiTaskAlloc,
  scsiTaskRelease,
} from "./tasks";
import { TARGET_DESCRIPTOR_AT_DISK_BLOCK_LENGTH } from "./target_descriptor";
import { TaskRing } from "./task_ring";
import { identitiesInit, nexusIdentify, nexusIdentityLossClear, nexusIdentityLossSet, nexusIdentityLostLuns, nexusIdentityRelease, nexusTargetPort } from "./identities";
import {
  COPY_ENTRY_NONE, COPY_LIST_AREA_BYTES, COPY_LIST_BAD, COPY_LUN_NONE, COPY_SEGMENT_AT_DESTINATION_INDEX,
  COPY_SEGMENT_AT_SOURCE_INDEX, COPY_SEGMENT_BYTES_MAX, COPY_SEGMENT_DESCRIPTORS_MAX, copyBegin, copyDiscard, copyEnd,
  copyInit, copyListCheck, copyListId, copyProgress, copyRetains, copySegmentBlocks, copySegmentDc, copySegmentDestinationIndex,
  copySegmentDestinationLba, copySegmentOffset, copySegmentSourceIndex, copySegmentSourceLba, copyTargetBlockBytes,
  copyTargetCount, copyTargetLun, copyTargetOffset,
} from "./copy";
import {
  sanitizeAdmit, sanitizeBegin, sanitizeChunkDone, sanitizeChunkFunction, sanitizeChunkNext, sanitizeDecode,
  sanitizeEnd, sanitizeInit, sanitizeListCheck, sanitizeMediumWritten,
} from "./sanitize";
import { ASC_SANITIZE_COMMAND_FAILED, ASC_WRITE_PROTECTED } from "./sense";
import { writeProtected, writeProtectRefuses, writeProtectTake } from "./write_protect";
import { rodTokenBlockBytes, rodTokenLun, rodTokensInit } from "./rod_token";
import {
  decodeThirdPartyCopyOut, tokenDestinationLba, tokenPopulate, tokenRodBytes, tokenRodOffset, tokenSegmentBytes,
  tokenSourceLba, tokenSourceRunBytes, tokenWriteEnd, tokenWriteStart, TOKEN_ZERO,
} from "./token_copy";

const SCSI_PRIORITY: u32 = 3;
const SCSI_BATCH_MAX: u32 = 32;
const SCSI_BUDGET_NS: u64 = 1_000_000;
// Every message to this task answers one of its records or services: at most one from the transport per record
// (ScsiCommand, ScsiDataReady or ScsiTmf), one stale ScsiDataReady per aborted record, one ServiceIoDone per
// service in flight, and the retry timer. The CTA asserts its answer fits. Nexus requests besides: a transport keeps
// at most NEXUS_MAX sessions, each with at most one ScsiNexusIdentify and one ScsiNexusGone unanswered.
const SCSI_INBOX_DEPTH: u32 = 2 * SCSI_TASKS_MAX + SERVICES_IN_FLIGHT_MAX + 2 * NEXUS_MAX + 8;
// ScsiNexusIdentified answers a transport's inbox refused, kept in order until it takes them: one per session.
const NEXUS_ANSWERS_MAX: u32 = NEXUS_MAX;
const RETRY_NS: u64 = 1_000_000; // a CTA that answered Busy, a full transport inbox, no SGL block: try again then

// The FIFOs a task parks in (record byte `parked`).
const RING_NONE: u32 = 0;
const RING_PAGE: u32 = 1; // waiting for page buffers
const RING_LARGE: u32 = 2; // waiting for large buffers
const RING_SERVICE: u32 = 3; // waiting to send its ServiceIo
const RING_DELIVER: u32 = 4; // waiting to send ScsiDataOut, ScsiDone or ScsiTmfDone
const RING_LOCK: u32 = 5; // a COMPARE AND WRITE or ORWRITE waiting for its logical unit's lock
const RING_READY: u32 = 6; // ready to go on (a lock came free)
const RING_SANITIZE: u32 = 7; // a sanitize operation's worker waiting for the commands already running on its unit
const RING_COUNT: u32 = 8;

// What abortWhere matches.
enum Scope {
  Tag = 0, // one nexus's task with a tag (ABORT TASK)
  NexusLun = 1, // one nexus's tasks on a logical unit (ABORT TASK SET, PREEMPT AND ABORT)
  Lun = 2, // every task on a logical unit (CLEAR TASK SET, LOGICAL UNIT RESET)
  All = 3, // every task (TARGET WARM RESET, TARGET COLD RESET)
  Slot = 4, // the tasks of a nexus slot (its transport said it is gone)
}

export class ScsiTargetTask extends Task {
  private readonly out: Msg = new Msg();
  private readonly nexusAnswers: MsgQueue = new MsgQueue(NEXUS_ANSWERS_MAX); // destination in `source`
  private readonly nexusAnswer: Msg = new Msg();
  private readonly rings: StaticArray<TaskRing | null> = new StaticArray<TaskRing | null>(RING_COUNT);
  private readonly lockHolder: StaticArray<u32> = new StaticArray<u32>(VOLUMES_MAX); // COMPARE AND WRITE, per LUN
  private servicesInFlight: u32 = 0;
  private serviceRetryDue: bool = false; // a service ended or the retry timer fired: parked services may go
  private retryTimer: u32 = TIMER_NONE;
  private abortFound: u32 = 0; // tasks abortWhere matched
  private abortWaiting: u32 = 0; // of those, tasks whose service is still in flight
  commandsDone: u64 = 0;
  abortedCount: u64 = 0;
  staleDataReadyCount: u64 = 0;

  constructor(readonly ctaTask: u32) {
    super("scsi", SCSI_PRIORITY, SCSI_INBOX_DEPTH, SCSI_BUDGET_NS);
    for (let r: u32 = 1; r < RING_COUNT; r++) unchecked(this.rings[r] = new TaskRing(SCSI_TASKS_MAX));
    for (let lun: u32 = 0; lun < VOLUMES_MAX; lun++) unchecked(this.lockHolder[lun] = SCSI_TASK_NONE);
  }

  run(): RunResult {
    let progress = this.nexusAnswersFlush();
    if (this.sweepNexuses()) progress = true;
    if (this.retryParked()) progress = true;
    let handled: u32 = 0;
    while (handled < SCSI_BATCH_MAX && this.inbox.pop(this.scratch)) {
      handled += 1;
      this.dispatch(this.scratch);
    }
    return handled > 0 || progress ? RunResult.Busy : RunResult.Idle;
  }

  /** Services at the CTA now (for tests and stats). */
  servicesActive(): u32 { return this.servicesInFlight; }

  /** Tasks parked in ring `r` (1..7), for tests. */
  parkedCount(r: u32): u32 { return this.ring(r).count; }

  private dispatch(msg: Msg): void {
    switch (<i32>msg.kind) {
      case MsgKind.ScsiCommand: this.onCommand(msg.a); break;
      case MsgKind.ScsiDataReady: this.onDataReady(msg.a, msg.b); break;
      case MsgKind.ServiceIoDone: this.onServiceDone(msg); break;
      case MsgKind.ScsiTmf: this.onTmf(msg.a); break;
      case MsgKind.ScsiNexusIdentify: this.onNexusIdentify(msg); break;
      case MsgKind.ScsiNexusGone: this.onNexusGone(msg.a); break;
      case MsgKind.ScsiTargetLuns: targetLunsSet(msg.a, msg.b, <usize>msg.d, <usize>msg.c, targetLunsMsgNicPort(msg.e), targetLunsMsgTargetCount(msg.e)); break;
      case MsgKind.Timer: {
        this.retryTimer = TIMER_NONE;
        this.serviceRetryDue = true;
        break;
      }
      default: assert(false, "scsi: unexpected message kind");
    }
  }

  // Nexuses.

  // A transport's session starts: the nexus id of its initiator port (the name stays put until this answer) through
  // its target port, back to the transport with the transport's cookie; NEXUS_NONE when the table is full.
  private onNexusIdentify(msg: Msg): void {
    const nexus = nexusIdentify(<usize>msg.d, msg.c, msg.b);
    const answer = this.out.set(MsgKind.ScsiNexusIdentified, this.index, msg.a, nexus);
    const transport = <u32>msg.source;
    if (this.nexusAnswers.count == 0 && post(transport, answer)) return;
    answer.source = <u16>transport; // held with its destination, behind the answers held before it
    this.nexusAnswers.pushAssumeCapacity(answer);
    this.armRetry();
  }

  // A transport's session ended: its nexus's tasks are aborted (each still gets its ScsiDone, aborted) and its
  // RESERVE(6) reservations end at the next run's sweep; its persistent registrations stay.
  private onNexusGone(nexus: u32): void {
    nexusLose(nexus); // this run handled a message, so another follows and sweeps it
  }

  // The answers a transport's inbox refused, in order; true when one went.
  private nexusAnswersFlush(): bool {
    const count = this.nexusAnswers.count;
    let sent = false;
    for (let i: u32 = 0; i < count; i++) {
      const popped = this.nexusAnswers.pop(this.nexusAnswer);
      assert(popped, "scsi: nexus answers count disagrees with its ring");
      const transport = <u32>this.nexusAnswer.source;
      this.nexusAnswer.source = <u16>this.index;
      if (post(transport, this.nexusAnswer)) { sent = true; continue; }
      this.nexusAnswer.source = <u16>transport;
      this.nexusAnswers.pushAssumeCapacity(this.nexusAnswer);
    }
    if (this.nexusAnswers.count > 0) this.armRetry();
    return sent;
  }

  // Admission.

  private onCommand(t: u32): void {
    assert(scsiTaskHeld(t) && scsiTaskState(t) == ScsiTaskState.Allocated, "scsi: ScsiCommand for a task not allocated");
    scsiTaskSetState(t, ScsiTaskState.Queued);
    writeProtectTake(t);
    const nexus = scsiTaskNexus(t);
    const slot = nexusOpen(nexus, volumesCount(), nexusIdentityLostLuns(nexus));
    if (slot != NEXUS_SLOT_NONE) nexusIdentityLossClear(nexus); // heard by this nexus, or to be
    if (slot == NEXUS_SLOT_NONE) { // more I_T nexuses than the table holds: the initiator may try again
      this.finishStatus(t, SAM_STATUS_BUSY);
      return;
    }
    scsiTaskSetNexusSlot(t, slot);
    nexusLunCountCheck(slot, volumesCount());
    if (!this.admit(t, slot)) {
      this.complete(t);
      return;
    }
    this.start(t, cdbU8(t, 0));
  }

  // SAM-5 order: a missing logical unit, a pending unit attention, then the command itself, then reservations, then
  // write protection (SBC-3: DATA PROTECT, WRITE PROTECTED before any Data-Out). False when the record holds the answer.
  private admit(t: u32, slot: u32): bool {
    const opcode = cdbU8(t, 0);
    const lun = scsiTaskLun(t);
    const present = lun < volumesCount();
    const anyLun = opcode == OP_INQUIRY || opcode == OP_REPORT_LUNS || opcode == OP_REQUEST_SENSE;
    if (!present && !anyLun) {
      scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_UNIT_NOT_SUPPORTED);
      return false;
    }
    if (present && !anyLun) {
      const ua = uaTake(slot, lun);
      if (ua != UA_NONE) {
        scsiTaskCheck(t, SENSE_KEY_UNIT_ATTENTION, ua);
        return false;
      }
    }
    const cdbLength = cdbLengthOfOpcode(opcode);
    const sa = opcodeHasServiceActions(opcode) ? cdbU8(t, 1) & 0x1f : SA_NONE;
    const index = cdbLength == 0 ? COMMAND_NONE : commandFind(opcode, sa);
    if (index != COMMAND_NONE && cdbLength > scsiTaskCdbLength(t)) { // the transport carried a CDB cut short
      scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, fieldInCdb(0));
      return false;
    }
    if (index == COMMAND_NONE) {
      if (sa != SA_NONE) scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, fieldInCdb(1, 4));
      else scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_COMMAND_OPERATION_CODE);
      return false;
    }
    if (!this.cdbFieldsOk(t, index, cdbLength)) return false;
    if (present && !sanitizeAdmit(t, lun, opcode)) return false; // SBC-4: a sanitize operation runs, or failed
    if (present && reservationConflict(lun, scsiTaskNexus(t), commandAccess(commandEntry(index)))) {
      scsiTaskSetStatus(t, SAM_STATUS_RESERVATION_CONFLICT);
      return false;
    }
    if (present && writeProtectRefuses(opcode, sa) && writeProtected(t, lun)) {
      scsiTaskCheck(t, SENSE_KEY_DATA_PROTECT, ASC_WRITE_PROTECTED);
      return false;
    }
    return true;
  }

  // SAM-5, CONTROL byte: NACA 1 is refused (no ACA), LINK 1 too (obsolete); then the reserved bits.
  private cdbFieldsOk(t: u32, index: u32, cdbLength: u32): bool {
    const control = cdbU8(t, cdbLength - 1);
    let field = FIELD_NONE;
    if ((control & 0x04) != 0) field = fieldInCdb(cdbLength - 1, 2);
    else if ((control & 0x01) != 0) field = fieldInCdb(cdbLength - 1, 0);
    else {
      const bad = cdbReservedBits(t, index);
      if (bad != CDB_OK) field = fieldInCdb(bad >> 8, bad & 0xff);
    }
    if (field == FIELD_NONE) return true;
    scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_CDB, field);
    return false;
  }

  // Decodes and starts the command; the decoders leave CHECK CONDITION in the record when they refuse it.
  private start(t: u32, opcode: u32): void {
    let ok = true;
    switch (opcode) {
      case OP_TEST_UNIT_READY: case OP_PREVENT_ALLOW_MEDIUM_REMOVAL: break;
      case OP_REQUEST_SENSE: case OP_INQUIRY: case OP_MODE_SENSE_6: case OP_MODE_SENSE_10: case OP_READ_CAPACITY_10:
      case OP_SERVICE_ACTION_IN_16: case OP_REPORT_LUNS: case OP_MAINTENANCE_IN: case OP_PERSISTENT_RESERVE_IN:
      case OP_READ_DEFECT_DATA_10: case OP_READ_DEFECT_DATA_12: case OP_RECEIVE_COPY_RESULTS:
        decodeDataIn(t);
        break;
      case OP_READ_6: case OP_READ_10: case OP_READ_12: case OP_READ_16: ok = decodeRead(t, opcode); break;
      case OP_WRITE_6: case OP_WRITE_10: case OP_WRITE_12: case OP_WRITE_16: ok = decodeWrite(t, opcode, false); break;
      case OP_WRITE_AND_VERIFY_10: case OP_WRITE_AND_VERIFY_12: case OP_WRITE_AND_VERIFY_16:
        ok = decodeWrite(t, opcode, true);
        break;
      case OP_VERIFY_10: case OP_VERIFY_12: case OP_VERIFY_16: ok = decodeVerify(t, opcode); break;
      case OP_PRE_FETCH_10: case OP_PRE_FETCH_16: ok = decodePrefetch(t, opcode); break;
      case OP_COMPARE_AND_WRITE: ok = decodeCompareAndWrite(t); break;
      case OP_ORWRITE_16: ok = decodeOrWrite(t); break;
      case OP_WRITE_ATOMIC_16: ok = decodeWriteAtomic(t); break;
      case OP_WRITE_SAME_10: case OP_WRITE_SAME_16: ok = decodeWriteSame(t, opcode); break;
      case OP_UNMAP: ok = decodeUnmap(t); break;
      case OP_EXTENDED_COPY: ok = decodeThirdPartyCopyOut(t); break;
      case OP_SANITIZE: ok = sanitizeDecode(t); break;
      case OP_MODE_SELECT_6: case OP_MODE_SELECT_10: ok = decodeModeSelect(t, opcode == OP_MODE_SELECT_10); break;
      case OP_PERSISTENT_RESERVE_OUT: ok = decodePersistentReserveOut(t); break;
      case OP_SYNCHRONIZE_CACHE_10: case OP_SYNCHRONIZE_CACHE_16: ok = decodeSynchronizeCache(t, opcode); break;
      case OP_START_STOP_UNIT: this.startStopUnit(t); break;
      case OP_RESERVE_6: {
        if (!reserve6(scsiTaskLun(t), scsiTaskNexus(t))) scsiTaskSetStatus(t, SAM_STATUS_RESERVATION_CONFLICT);
        break;
      }
      case OP_RELEASE_6: release6(scsiTaskLun(t), scsiTaskNexus(t)); break;
      default: assert(false, "scsi: a command in the table without a decoder");
    }
    if (!ok || scsiTaskProgram(t) == Program.None) this.complete(t);
    else this.advance(t);
  }

  // SBC-3, START STOP UNIT: no motor; a stop without NO_FLUSH writes the cache back first. LOEJ and power
  // conditions change nothing on a fixed medium.
  private startStopUnit(t: u32): void {
    const flags = cdbU8(t, 4);
    const start = (flags & 0x01) != 0;
    const noFlush = (flags & 0x04) != 0;
    if ((flags >> 4) == 0 && !start && !noFlush) scsiTaskSetProgram(t, Program.Flush);
  }

  // Programs: each runs from its phase; external events (ScsiDataReady, a ServiceIoDone) add one to the phase.

  private advance(t: u32): void {
    switch (<i32>scsiTaskProgram(t)) {
      case Program.DataIn: this.advanceDataIn(t); break;
      case Program.Read: this.advanceRead(t); break;
      case Program.Write: this.advanceWrite(t); break;
      case Program.VerifyCompare: this.advanceVerify(t); break;
      case Program.WriteVerify: this.advanceWriteVerify(t); break;
      case Program.CompareWrite: this.advanceCompareWrite(t); break;
      case Program.WriteSame: this.advanceWriteSame(t); break;
      case Program.Unmap: this.advanceUnmap(t); break;
      case Program.ParameterOut: this.advanceParameterOut(t); break;
      case Program.Flush: this.advanceFlush(t); break;
      case Program.OrWrite: this.advanceOrWrite(t); break;
      case Program.ExtendedCopy: case Program.TokenWrite: this.advanceCopy(t); break;
      case Program.Sanitize: this.advanceSanitize(t); break;
      case Program.SanitizeWork: this.advanceSanitizeWork(t); break;
      default: assert(false, "scsi: advance of a task without a program");
    }
  }

  // Phase 0 (the area) and 1 (Data-Out) that most programs share. Answers the phase to go on with, or NONE when the
  // task waits (parked for buffers, or for the transport's Data-Out).
  private prepare(t: u32): u32 {
    let phase = scsiTaskPhase(t);
    if (phase == 0) {
      if (!this.areaReady(t)) return PHASE_WAIT;
      phase = 1;
    }
    if (phase == 1) {
      if ((scsiTaskOptions(t) & OPT_NDOB) != 0) scsiTaskAreaZero(t, 0, scsiTaskBlockBytes(t)); // zeros, no Data-Out
      if ((scsiTaskFlags(t) & TASK_FLAG_DATA_OUT) != 0 && scsiTaskDataOutBytes(t) > 0) {
        scsiTaskSetPhase(t, 1);
        scsiTaskSetState(t, ScsiTaskState.DataOut);
        this.deliver(t);
        return PHASE_WAIT;
      }
      phase = 2;
    }
    return phase;
  }

  private advanceDataIn(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    const opcode = cdbU8(t, 0);
    // SBC-3, GET LBA STATUS: whether the LBA is mapped, and for how long, is the CTA's to say (a thin volume's chunk
    // map); the descriptor is built from its answer (commands.ts). An LBA out of range is refused there.
    if (phase == 2 && opcode == OP_SERVICE_ACTION_IN_16 && (cdbU8(t, 1) & 0x1f) == SA_GET_LBA_STATUS
      && cdbBe64(t, 2) < volumeAt(scsiTaskLun(t)).blockCount) {
      this.issue(t, 3, FrameFunction.LbaStatus, cdbBe64(t, 2), 0, 0);
      return;
    }
    const length = dataInBuild(t, opcode);
    if (length != DATA_IN_FAILED) scsiTaskSetTransferBytes(t, min(length, allocationLength(t, opcode)));
    this.complete(t);
  }

  private advanceRead(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    if (phase == 2) { this.issue(t, 2, FrameFunction.Read, scsiTaskLba(t), scsiTaskBlockCount(t), 0); return; }
    this.complete(t);
  }

  private advanceWrite(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    if (phase == 2 && scsiTaskBlockCount(t) > 0) {
      this.issue(t, 2, this.writeFunction(t), scsiTaskLba(t), scsiTaskBlockCount(t), 0);
      return;
    }
    this.complete(t);
  }

  private writeFunction(t: u32): u32 {
    return (scsiTaskOptions(t) & OPT_FUA) != 0 ? FrameFunction.WriteFua : FrameFunction.Write;
  }

  // The blocks read back land behind the Data-Out, from a block boundary.
  private readBackOffset(t: u32): u32 { return roundUp(scsiTaskDataOutBytes(t), scsiTaskBlockBytes(t)); }

  private advanceVerify(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    const offset = this.readBackOffset(t);
    if (phase == 2) { this.issue(t, 2, FrameFunction.Read, scsiTaskLba(t), scsiTaskBlockCount(t), offset); return; }
    const blockBytes = scsiTaskBlockBytes(t);
    const at = (scsiTaskOptions(t) & OPT_ONE_BLOCK) != 0
      ? scsiTaskAreaCompareRepeated(t, 0, blockBytes, offset, scsiTaskBlockCount(t))
      : scsiTaskAreaCompare(t, 0, offset, scsiTaskBlockCount(t) * blockBytes);
    this.miscompareOr(t, at);
  }

  // SBC-3: MISCOMPARE with the offset of the first byte that differs in the INFORMATION field; else GOOD.
  private miscompareOr(t: u32, at: u32): void {
    if (at != AREA_EQUAL) scsiTaskCheck(t, SENSE_KEY_MISCOMPARE, ASC_MISCOMPARE_DURING_VERIFY, FIELD_NONE, <u64>at);
    this.complete(t);
  }

  private advanceWriteVerify(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    const blocks = scsiTaskBlockCount(t);
    const offset = this.readBackOffset(t);
    if (phase == 2 && blocks > 0) { this.issue(t, 2, FrameFunction.WriteFua, scsiTaskLba(t), blocks, 0); return; }
    if (phase == 3 && (scsiTaskOptions(t) & OPT_BYTCHK) != 0) {
      this.issue(t, 3, FrameFunction.Read, scsiTaskLba(t), blocks, offset);
      return;
    }
    if (phase == 4) { this.miscompareOr(t, scsiTaskAreaCompare(t, 0, offset, blocks * scsiTaskBlockBytes(t))); return; }
    this.complete(t);
  }

  // SBC-3, COMPARE AND WRITE: under the logical unit's lock (against other COMPARE AND WRITEs), read, compare with
  // the verify instance, and write the write instance only if they are equal.
  private advanceCompareWrite(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    const blocks = scsiTaskBlockCount(t);
    const instanceBytes = blocks * scsiTaskBlockBytes(t);
    if (phase == 2) {
      if (!this.lockTake(t)) return;
      this.issue(t, 2, FrameFunction.Read, scsiTaskLba(t), blocks, 2 * instanceBytes);
      return;
    }
    if (phase == 3) {
      const at = scsiTaskAreaCompare(t, 0, 2 * instanceBytes, instanceBytes);
      if (at != AREA_EQUAL) {
        this.unlock(t);
        this.miscompareOr(t, at);
        return;
      }
      this.issue(t, 3, this.writeFunction(t), scsiTaskLba(t), blocks, instanceBytes);
      return;
    }
    this.unlock(t);
    this.complete(t);
  }

  // SBC-3, ORWRITE: under the logical unit's lock (atomic against COMPARE AND WRITE and other ORWRITEs), read the
  // blocks behind the Data-Out, OR them into it, and write it.
  private advanceOrWrite(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    const blocks = scsiTaskBlockCount(t);
    const offset = this.readBackOffset(t);
    if (phase == 2 && blocks > 0) {
      if (!this.lockTake(t)) return;
      this.issue(t, 2, FrameFunction.Read, scsiTaskLba(t), blocks, offset);
      return;
    }
    if (phase == 3) {
      scsiTaskAreaOr(t, 0, offset, blocks * scsiTaskBlockBytes(t));
      this.issue(t, 3, this.writeFunction(t), scsiTaskLba(t), blocks, 0);
      return;
    }
    if ((scsiTaskFlags(t) & TASK_FLAG_LOCK) != 0) this.unlock(t);
    this.complete(t);
  }

  // SBC-3, WRITE SAME: with UNMAP and a block of zeros the range is deallocated (LBPRZ: it reads back as those
  // zeros); otherwise the block is replicated over one buffer and written in chunks whose SGL repeats that buffer.
  private advanceWriteSame(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    if (phase == 2) {
      this.writeSameDecide(t);
      scsiTaskSetCursor(t, 0);
    } else {
      scsiTaskSetCursor(t, scsiTaskCursor(t) + scsiTaskServiceBlocks(t));
    }
    const done = scsiTaskCursor(t);
    const count = scsiTaskBlockCount(t);
    if (done >= count) { this.complete(t); return; }
    const blockBytes = scsiTaskBlockBytes(t);
    const lba = scsiTaskLba(t) + done;
    if ((scsiTaskOptions(t) & OPT_DEALLOCATE) != 0) {
      this.issue(t, 3, FrameFunction.Unmap, lba, min(count - done, UNMAP_BYTES_MAX / blockBytes), 0);
    } else {
      this.issue(t, 3, this.writeFunction(t), lba, min(count - done, WRITE_SAME_CHUNK_BYTES / blockBytes), 0);
    }
  }

  private writeSameDecide(t: u32): void {
    const blockBytes = scsiTaskBlockBytes(t);
    const block = scsiTaskAreaAddress(t, 0);
    let zero = true;
    for (let i: u32 = 0; i < blockBytes && zero; i += 8) zero = load<u64>(block + i) == 0;
    if ((scsiTaskOptions(t) & OPT_UNMAP) != 0 && zero) {
      scsiTaskSetOptions(t, scsiTaskOptions(t) | OPT_DEALLOCATE);
      return;
    }
    const bufferBytes = scsiTaskAreaRunBytes(t, 0);
    for (let at: u32 = blockBytes; at < bufferBytes; at += blockBytes) memory.copy(block + at, block, blockBytes);
    scsiTaskSetOptions(t, scsiTaskOptions(t) | OPT_REPEAT);
  }

  // SBC-3, UNMAP: every descriptor is checked before any block is deallocated; then one service per descriptor.
  private advanceUnmap(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    if (phase == 2) {
      if (!this.unmapListOk(t)) { this.complete(t); return; }
      scsiTaskSetCursor(t, 0);
    }
    const list = scsiTaskAreaAddress(t, 0);
    const count = scsiTaskBlockCount(t);
    for (let i = scsiTaskCursor(t); i < count; i++) {
      const descriptor = list + 8 + <usize>i * 16; // |0-7 LBA|8-11 NUMBER OF LOGICAL BLOCKS|12-15 reserved|
      const blocks = getBe32(descriptor + 8);
      if (blocks == 0) continue; // SBC-3: nothing to deallocate, not an error
      scsiTaskSetCursor(t, i + 1);
      this.issue(t, 3, FrameFunction.Unmap, getBe64(descriptor), blocks, 0);
      return;
    }
    this.complete(t);
  }

  // The UNMAP parameter list: |0-1 UNMAP DATA LENGTH|2-3 UNMAP BLOCK DESCRIPTOR DATA LENGTH|4-7 -|8- descriptors|.
  // Descriptors cut short by either length are ignored.
  private unmapListOk(t: u32): bool {
    const listBytes = scsiTaskDataOutBytes(t);
    assert(listBytes >= 8, "scsi: UNMAP list shorter than its header (decodeUnmap refuses it)");
    const list = scsiTaskAreaAddress(t, 0);
    const count = min(getBe16(list + 2), listBytes - 8) / 16;
    if (count > UNMAP_DESCRIPTORS_MAX) {
      scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(2));
      return false;
    }
    const capacity = volumeAt(scsiTaskLun(t)).blockCount;
    const blocksMax = <u64>(UNMAP_BYTES_MAX / scsiTaskBlockBytes(t));
    let total: u64 = 0;
    for (let i: u32 = 0; i < count; i++) {
      const descriptor = list + 8 + <usize>i * 16;
      const lba = getBe64(descriptor);
      const blocks = <u64>getBe32(descriptor + 8);
      total += blocks;
      if (total > blocksMax) {
        scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(8 + i * 16 + 8));
        return false;
      }
      if (blocks > 0 && (lba >= capacity || blocks > capacity - lba)) {
        scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
        return false;
      }
    }
    scsiTaskSetBlockCount(t, count);
    return true;
  }

  // SPC-4, EXTENDED COPY: the list is checked whole before anything moves; then each segment's target descriptors
  // are resolved and its ranges checked, and its bytes move a chunk at a time: a READ from the source into the area
  // behind the list (issued in phase 3, answered in 4), a WRITE from there to the destination (4, answered in 5).
  // SBC-3, WRITE USING TOKEN (token_copy.ts) runs the same loop: its segments are its destination ranges, its source
  // the token's ranges (or zeros, with no READ, for the block device zero ROD token).
  private advanceCopy(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    const list = scsiTaskAreaAddress(t, 0);
    const token = scsiTaskProgram(t) == Program.TokenWrite;
    if (phase == 2) {
      if (!(token ? tokenWriteStart(t, list) : this.copyStart(t, list))) { this.complete(t); return; }
    } else if (phase == 4) {
      this.copyWrite(t, list, scsiTaskServiceBlocks(t) * scsiTaskBlockBytes(t));
      return;
    } else {
      assert(phase == 5, "scsi: EXTENDED COPY phase");
      const bytes = <u64>scsiTaskServiceBlocks(t) * scsiTaskBlockBytes(t);
      scsiTaskSetCopyDoneBytes(t, scsiTaskCopyDoneBytes(t) + bytes);
      copyProgress(scsiTaskCopyEntry(t), t, scsiTaskCopySegment(t), bytes);
    }
    this.copyNext(t, list);
  }

  private copyStart(t: u32, list: usize): bool {
    const count = copyListCheck(t, list, scsiTaskDataOutBytes(t), scsiTaskTransferBytes(t));
    if (count == COPY_LIST_BAD) return false;
    const entry = copyBegin(t, copyListId(list), copyRetains(list));
    if (entry == COPY_ENTRY_NONE) return false;
    scsiTaskSetCopyEntry(t, entry);
    scsiTaskSetBlockCount(t, count); // segment descriptors
    scsiTaskSetCopySegment(t, 0);
    scsiTaskSetCopyDoneBytes(t, 0);
    return true;
  }

  // The next chunk of the current segment, or the next segment, or the end.
  private copyNext(t: u32, list: usize): void {
    const count = scsiTaskBlockCount(t);
    // Bound: each pass but the last finishes a segment (the last issues a READ or ends the command).
    for (let n: u32 = 0; n <= COPY_SEGMENT_DESCRIPTORS_MAX; n++) {
      const index = scsiTaskCopySegment(t);
      if (index >= count) { this.complete(t); return; }
      const done = scsiTaskCopyDoneBytes(t);
      const token = scsiTaskProgram(t) == Program.TokenWrite;
      if (done == 0 && !token && !this.copySegmentOk(t, list, index)) { this.complete(t); return; }
      const total = token ? tokenSegmentBytes(t, list, index) : this.copySegmentBytes(list, index);
      if (done >= total) {
        scsiTaskSetCopySegment(t, index + 1);
        scsiTaskSetCopyDoneBytes(t, 0);
        copyProgress(scsiTaskCopyEntry(t), t, index + 1, 0);
        continue;
      }
      const chunk = <u32>min(total - done, <u64>scsiTaskCopyChunkBytes(t));
      if (token) { this.tokenChunk(t, list, index, done, chunk); return; }
      const sourceLun = copyTargetLun(list, copySegmentSourceIndex(list, index));
      const sourceBlock = volumeAt(sourceLun).blockSizeBytes;
      scsiTaskSetBlockBytes(t, sourceBlock);
      const lba = copySegmentSourceLba(list, index) + done / sourceBlock;
      this.issue(t, 3, FrameFunction.Read, lba, chunk / sourceBlock, COPY_LIST_AREA_BYTES, sourceLun);
      return;
    }
    assert(false, "scsi: EXTENDED COPY past its last segment");
  }

  // A WRITE USING TOKEN chunk of at most `chunk` bytes: zeros written as they are, else a READ of the token's range
  // holding this part of the ROD (to its end at most). A ROD shorter than the destination ends the copy there.
  private tokenChunk(t: u32, list: usize, index: u32, done: u64, chunk: u32): void {
    const token = scsiTaskCopyToken(t);
    if (token == TOKEN_ZERO) {
      scsiTaskAreaZero(t, COPY_LIST_AREA_BYTES, chunk);
      this.copyWrite(t, list, chunk);
      return;
    }
    const rodAt = tokenRodOffset(t, list, index, done);
    if (rodAt >= tokenRodBytes(token)) { this.complete(t); return; } // SBC-3: the ROD ran out; the count says so
    const bytes = <u32>min(<u64>chunk, tokenSourceRunBytes(token, rodAt));
    const blockBytes = rodTokenBlockBytes(token);
    scsiTaskSetBlockBytes(t, blockBytes);
    this.issue(t, 3, FrameFunction.Read, tokenSourceLba(token, rodAt), bytes / blockBytes, COPY_LIST_AREA_BYTES, rodTokenLun(token));
  }

  private copyWrite(t: u32, list: usize, bytes: u32): void {
    const index = scsiTaskCopySegment(t);
    const done = scsiTaskCopyDoneBytes(t);
    const token = scsiTaskProgram(t) == Program.TokenWrite;
    const lun = token ? scsiTaskLun(t) : copyTargetLun(list, copySegmentDestinationIndex(list, index));
    const blockBytes = volumeAt(lun).blockSizeBytes;
    const lba = token ? tokenDestinationLba(t, list, index, done) : copySegmentDestinationLba(list, index) + done / blockBytes;
    const fn = modeWriteCacheEnabled(lun) ? FrameFunction.Write : FrameFunction.WriteFua;
    scsiTaskSetBlockBytes(t, blockBytes);
    this.issue(t, 4, fn, lba, bytes / blockBytes, COPY_LIST_AREA_BYTES, lun); // answered: phase 5
  }

  // Segment bytes: NUMBER OF BLOCKS of the destination's blocks with DC, else of the source's (both resolved).
  private copySegmentBytes(list: usize, index: u32): u64 {
    const which = copySegmentDc(list, index) ? copySegmentDestinationIndex(list, index) : copySegmentSourceIndex(list, index);
    return <u64>copySegmentBlocks(list, index) * volumeAt(copyTargetLun(list, which)).blockSizeBytes;
  }

  // SPC-4, errors processing a segment: COPY ABORTED, the segment's number in COMMAND-SPECIFIC INFORMATION and a
  // pointer to the field in the parameter list. Target descriptors that name no logical unit of this target, a DISK
  // BLOCK LENGTH that is not the unit's, a segment not of whole blocks on both sides, a range past the end.
  private copySegmentOk(t: u32, list: usize, index: u32): bool {
    const at = copySegmentOffset(list, index);
    const targets = copyTargetCount(list);
    const source = copySegmentSourceIndex(list, index);
    const destination = copySegmentDestinationIndex(list, index);
    if (source >= targets) return this.copyAbort(t, index, ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, at + COPY_SEGMENT_AT_SOURCE_INDEX);
    if (destination >= targets) return this.copyAbort(t, index, ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, at + COPY_SEGMENT_AT_DESTINATION_INDEX);
    const sourceLun = copyTargetLun(list, source);
    const destinationLun = copyTargetLun(list, destination);
    if (sourceLun == COPY_LUN_NONE) return this.copyAbort(t, index, ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, at + COPY_SEGMENT_AT_SOURCE_INDEX);
    if (destinationLun == COPY_LUN_NONE) return this.copyAbort(t, index, ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, at + COPY_SEGMENT_AT_DESTINATION_INDEX);
    const sourceBlock = volumeAt(sourceLun).blockSizeBytes;
    const destinationBlock = volumeAt(destinationLun).blockSizeBytes;
    if (copyTargetBlockBytes(list, source) != sourceBlock) {
      return this.copyAbort(t, index, ASC_INCORRECT_COPY_TARGET_DEVICE_TYPE, copyTargetOffset(source) + TARGET_DESCRIPTOR_AT_DISK_BLOCK_LENGTH);
    }
    if (copyTargetBlockBytes(list, destination) != destinationBlock) {
      return this.copyAbort(t, index, ASC_INCORRECT_COPY_TARGET_DEVICE_TYPE, copyTargetOffset(destination) + TARGET_DESCRIPTOR_AT_DISK_BLOCK_LENGTH);
    }
    const nexus = scsiTaskNexus(t);
    // A copy reads nothing its initiator could not read itself: the source is a unit its target port presents.
    if (!targetPortPresents(nexusTargetPort(nexus), sourceLun)) return this.copyAbort(t, index, ASC_COPY_TARGET_DEVICE_NOT_REACHABLE, at + COPY_SEGMENT_AT_SOURCE_INDEX);
    if (reservationConflict(sourceLun, nexus, Access.Read) || reservationConflict(destinationLun, nexus, Access.Write)) {
      scsiTaskSetStatus(t, SAM_STATUS_RESERVATION_CONFLICT);
      return false;
    }
    if (writeProtected(t, destinationLun)) { // SBC-3: the copy would write a write-protected medium
      scsiTaskCheck(t, SENSE_KEY_DATA_PROTECT, ASC_WRITE_PROTECTED);
      return false;
    }
    const bytes = this.copySegmentBytes(list, index);
    if (bytes % sourceBlock != 0 || bytes % destinationBlock != 0) return this.copyAbort(t, index, ASC_UNEXPECTED_INEXACT_SEGMENT, at + 10);
    if (bytes > <u64>COPY_SEGMENT_BYTES_MAX) return this.copyAbort(t, index, ASC_INVALID_FIELD_IN_PARAMETER_LIST, at + 10);
    if (!copyRangeOk(sourceLun, copySegmentSourceLba(list, index), bytes / sourceBlock)) {
      return this.copyAbort(t, index, ASC_NO_ADDITIONAL_SENSE, at + 12);
    }
    if (!copyRangeOk(destinationLun, copySegmentDestinationLba(list, index), bytes / destinationBlock)) {
      return this.copyAbort(t, index, ASC_NO_ADDITIONAL_SENSE, at + 20);
    }
    return true;
  }

  private copyAbort(t: u32, index: u32, ascAscq: u32, fieldOffset: u32): bool {
    scsiTaskCheck(t, SENSE_KEY_COPY_ABORTED, ascAscq, fieldInParameters(fieldOffset));
    senseCommandSpecific(scsiTaskSense(t), index);
    return false;
  }

  // SBC-4, SANITIZE (sanitize.ts): the parameter list checked, then the operation goes to a worker record of its own
  // (none free: BUSY) and runs on after this command; it is answered now with IMMED, else when the operation ends.
  private advanceSanitize(t: u32): void {
    const phase = this.prepare(t);
    if (phase == PHASE_WAIT) return;
    assert(phase == 2, "scsi: SANITIZE waits for its operation unanswered");
    // Another SANITIZE may have begun while this one's list came in: the gate again, NOT READY then.
    if (!sanitizeAdmit(t, scsiTaskLun(t), OP_SANITIZE) || !sanitizeListCheck(t)) { this.complete(t); return; }
    const w = scsiTaskAlloc();
    if (w == SCSI_TASK_NONE) { this.finishStatus(t, SAM_STATUS_BUSY); return; }
    sanitizeBegin(t, w);
    scsiTaskSetPhase(t, 3); // waiting for the operation (sanitizeEnd finds it here)
    if ((cdbU8(t, 1) & 0x80) != 0) this.complete(t); // IMMED
    this.advance(w);
  }

  // The sanitize operation's worker: one chunk at a time (phase 1: at the CTA; 2: done), then the end.
  // Phase 0, before the first chunk: the commands already running on the unit when the SANITIZE's gate closed end
  // first (SBC-4: the operation affects the medium as those commands left it); the worker waits in RING_SANITIZE,
  // looked at again at each run (their ends come as messages, and each such run is followed by another).
  private advanceSanitizeWork(w: u32): void {
    if (scsiTaskPhase(w) == 0 && !this.unitQuiet(w)) { this.park(w, RING_SANITIZE); return; }
    if (scsiTaskPhase(w) == 2) sanitizeChunkDone(w);
    if (!sanitizeChunkNext(w)) { this.sanitizeFinish(w, true); return; }
    this.issue(w, 1, sanitizeChunkFunction(w), scsiTaskLba(w), scsiTaskBlockCount(w), 0);
  }

  // True when no command but SANITIZEs (which never touch the medium themselves) is under way on worker w's unit:
  // its own, or a copy's service to it.
  private unitQuiet(w: u32): bool {
    const lun = scsiTaskLun(w);
    for (let v: u32 = 0; v < SCSI_TASKS_MAX; v++) {
      if (v == w || !scsiTaskHeld(v)) continue;
      const state = scsiTaskState(v);
      if (state != ScsiTaskState.Queued && state != ScsiTaskState.DataOut && state != ScsiTaskState.Service) continue;
      const program = scsiTaskProgram(v);
      if (program == Program.Sanitize || program == Program.SanitizeWork) continue;
      if (scsiTaskLun(v) == lun || (state == ScsiTaskState.Service && scsiTaskServiceLun(v) == lun)) return false;
    }
    return true;
  }

  // The operation ended: its worker record goes back, and the command waiting for it hears how it went.
  private sanitizeFinish(w: u32, ok: bool): void {
    const waiter = sanitizeEnd(w, ok);
    scsiTaskSetState(w, ScsiTaskState.Done);
    scsiTaskRelease(w);
    if (waiter == SCSI_TASK_NONE) return;
    if (!ok) scsiTaskCheck(waiter, SENSE_KEY_MEDIUM_ERROR, ASC_SANITIZE_COMMAND_FAILED);
    this.complete(waiter);
  }

  private advanceParameterOut(t: u32): void {
    if (this.prepare(t) == PHASE_WAIT) return;
    const opcode = cdbU8(t, 0);
    if (opcode == OP_PERSISTENT_RESERVE_OUT) this.persistentReserveOut(t);
    else if (opcode == OP_EXTENDED_COPY) tokenPopulate(t); // POPULATE TOKEN, the one 83h command of this program
    else this.modeSelect(t);
    this.complete(t);
  }

  private advanceFlush(t: u32): void {
    if (scsiTaskPhase(t) == 0) { this.issue(t, 0, FrameFunction.Flush, 0, 0, 0); return; }
    this.complete(t);
  }

  // SPC-4, MODE SELECT: a change raises MODE PARAMETERS CHANGED for the other nexuses.
  private modeSelect(t: u32): void {
    const lun = scsiTaskLun(t);
    const v = volumeAt(lun);
    const listBytes = scsiTaskDataOutBytes(t);
    const list: usize = listBytes == 0 ? <usize>0 : scsiTaskAreaAddress(t, 0);
    const is10 = cdbU8(t, 0) == OP_MODE_SELECT_10;
    assert(listBytes == scsiTaskTransferBytes(t), "scsi: MODE SELECT list cut short (parameterList refuses it)");
    switch (modeSelectApply(lun, list, listBytes, is10, v.blockCount, v.blockSizeBytes)) {
      case ModeSelectResult.Changed: uaSetAll(lun, UA_MODE_PARAMETERS_CHANGED, scsiTaskNexus(t)); break;
      case ModeSelectResult.Unchanged: break;
      case ModeSelectResult.InvalidField:
        scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_INVALID_FIELD_IN_PARAMETER_LIST, fieldInParameters(modeSelectFieldByte()));
        break;
      case ModeSelectResult.ListLength:
        scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_PARAMETER_LIST_LENGTH_ERROR, fieldInCdb(is10 ? 7 : 4));
        break;
      default: assert(false, "scsi: unknown MODE SELECT result");
    }
  }

  // SPC-4, PERSISTENT RESERVE OUT: the list and service action in pr_out.ts; PREEMPT AND ABORT's aborts here.
  private persistentReserveOut(t: u32): void {
    const good = persistentReserveOut(t);
    const lun = scsiTaskLun(t);
    const nexus = scsiTaskNexus(t);
    if (good && (cdbU8(t, 1) & 0x1f) == PR_OUT_PREEMPT_AND_ABORT) {
      // SPC-4: the preempted nexuses' tasks on this logical unit are aborted (not this one).
      const count = prPreemptedCount();
      for (let i: u32 = 0; i < count; i++) this.abortWhere(Scope.NexusLun, t, SCSI_TASK_NONE, prPreemptedAt(i), lun, 0, nexus);
    }
  }

  // Buffers, services, delivery.

  // The area, taken in arrival order per buffer class: a task waits behind those parked before it.
  private areaReady(t: u32): bool {
    if (scsiTaskAreaReady(t)) return true;
    const r = scsiTaskAreaClass(t) == BUFFER_CLASS_PAGE ? RING_PAGE : RING_LARGE;
    if (scsiTaskParked(t) == RING_NONE && this.ring(r).count > 0) {
      this.park(t, r);
      return false;
    }
    if (scsiTaskAreaFill(t, this.index)) return true;
    if (scsiTaskParked(t) == RING_NONE) this.park(t, r);
    return false;
  }

  /** Sends ServiceIo{fn} for `blocks` at `lba` over the area from `offsetBytes`; the phase moves on when it answers. */
  private issue(t: u32, phase: u32, fn: u32, lba: u64, blocks: u32, offsetBytes: u32, lun: u32 = 0xffff_ffff): void {
    scsiTaskSetPhase(t, phase);
    scsiTaskSetService(t, fn, lba, blocks, offsetBytes, lun);
    if (fn == FrameFunction.Write || fn == FrameFunction.WriteFua) sanitizeMediumWritten(scsiTaskServiceLun(t));
    this.serviceSend(t);
  }

  private serviceSend(t: u32): void {
    if (this.servicesInFlight >= SERVICES_IN_FLIGHT_MAX) { this.park(t, RING_SERVICE); return; }
    const fn = scsiTaskServiceFunction(t);
    const blocks = scsiTaskServiceBlocks(t);
    let sgl = SGL_NONE;
    if (fn == FrameFunction.Read || fn == FrameFunction.Write || fn == FrameFunction.WriteFua) {
      const bytes = blocks * scsiTaskBlockBytes(t);
      sgl = (scsiTaskOptions(t) & OPT_REPEAT) != 0 ? scsiTaskRepeatSgl(t, bytes) : scsiTaskAreaSgl(t, scsiTaskServiceOffset(t), bytes);
      if (sgl == SGL_NONE) { this.sglWait(t, RING_SERVICE); return; }
    }
    this.out.set(MsgKind.ServiceIo, this.index, fn | (scsiTaskServiceLun(t) << 8), blocks);
    this.out.c = sgl;
    this.out.d = scsiTaskServiceLba(t);
    this.out.e = (<u64>scsiTaskGeneration(t) << 32) | <u64>t;
    if (!post(this.ctaTask, this.out)) {
      if (sgl != SGL_NONE) sgls().release(sgl);
      this.park(t, RING_SERVICE);
      this.armRetry();
      return;
    }
    scsiTaskSetIoSgl(t, sgl);
    scsiTaskSetState(t, ScsiTaskState.Service);
    this.servicesInFlight += 1;
  }

  // No SGL block: be woken by the next release of one, and look again on the retry timer too.
  private sglWait(t: u32, r: u32): void {
    const block = sgls().blocks.acquireOrWait(this.index);
    if (block != POOL_NONE) sgls().blocks.release(block);
    this.park(t, r);
    this.armRetry();
  }

  private onServiceDone(msg: Msg): void {
    const t = <u32>(msg.e & 0xffff_ffff);
    assert(scsiTaskHeld(t) && scsiTaskState(t) == ScsiTaskState.Service, "scsi: ServiceIoDone for no service");
    assert(scsiTaskGeneration(t) == <u32>(msg.e >> 32), "scsi: ServiceIoDone for an earlier command");
    this.servicesInFlight -= 1;
    this.serviceRetryDue = true;
    // SBC-3: the write took a thin volume's pool over its soft threshold: every nexus hears of it on that LUN.
    if ((msg.d & THIN_EVENT_SOFT_THRESHOLD) != 0) uaSetAll(scsiTaskServiceLun(t), UA_SOFT_THRESHOLD, NEXUS_NONE);
    // GET LBA STATUS's answer: the run's length and its provisioning status, kept in the service fields.
    if (scsiTaskServiceFunction(t) == FrameFunction.LbaStatus) scsiTaskSetService(t, FrameFunction.LbaStatus, scsiTaskServiceLba(t), msg.c, msg.b);
    const sgl = scsiTaskIoSgl(t);
    if (sgl != SGL_NONE) sgls().release(sgl);
    scsiTaskSetIoSgl(t, SGL_NONE);
    scsiTaskSetState(t, ScsiTaskState.Queued);
    if ((scsiTaskFlags(t) & TASK_FLAG_ABORTED) != 0) { this.finishAborted(t); return; }
    const status = <FrameStatus>msg.a;
    if (status == FrameStatus.Busy) { // the CTA had no room: the same service again, a little later
      this.park(t, RING_SERVICE);
      this.armRetry();
      return;
    }
    if (status != FrameStatus.Ok) { this.serviceFailed(t, status); return; }
    scsiTaskSetPhase(t, scsiTaskPhase(t) + 1);
    this.advance(t);
  }

  // A failed service becomes sense the initiator can act on: medium errors as such, lost or reset devices as a
  // retryable ABORTED COMMAND.
  private serviceFailed(t: u32, status: FrameStatus): void {
    if (scsiTaskProgram(t) == Program.SanitizeWork) { this.sanitizeFinish(t, false); return; } // SBC-4: failure mode
    if ((scsiTaskFlags(t) & TASK_FLAG_LOCK) != 0) this.unlock(t);
    const reading = scsiTaskServiceFunction(t) == FrameFunction.Read;
    switch (status) {
      case FrameStatus.MediumError:
        scsiTaskCheck(t, SENSE_KEY_MEDIUM_ERROR, reading ? ASC_UNRECOVERED_READ_ERROR : ASC_WRITE_ERROR);
        break;
      case FrameStatus.IllegalRequest: scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE); break;
      case FrameStatus.NoDisk: scsiTaskCheck(t, SENSE_KEY_ILLEGAL_REQUEST, ASC_LOGICAL_UNIT_NOT_SUPPORTED); break;
      // A partitioned volume's pages whose owner this board cannot reach (no fabric link): for those LBAs this port is
      // in the ALUA unavailable state (SPC-4 5.16.2.4.5); a multipath initiator tries another board's port.
      case FrameStatus.Unreachable: scsiTaskCheck(t, SENSE_KEY_NOT_READY, ASC_LOGICAL_UNIT_NOT_ACCESSIBLE_TARGET_PORT_UNAVAILABLE); break;
      case FrameStatus.BadFrame: scsiTaskCheck(t, SENSE_KEY_HARDWARE_ERROR, ASC_INTERNAL_TARGET_FAILURE); break;
      // SBC-3, thin provisioning: the pool has no chunk for this write.
      case FrameStatus.SpaceAllocFailed: scsiTaskCheck(t, SENSE_KEY_DATA_PROTECT, ASC_SPACE_ALLOCATION_FAILED_WRITE_PROTECT); break;
      default: scsiTaskCheck(t, SENSE_KEY_ABORTED_COMMAND, ASC_LOGICAL_UNIT_COMMUNICATION_FAILURE); break;
    }
    if (this.copies(t)) { // SPC-4: the copy ends with COPY ABORTED, naming the segment
      store<u8>(scsiTaskSense(t) + 2, <u8>SENSE_KEY_COPY_ABORTED);
      senseCommandSpecific(scsiTaskSense(t), scsiTaskCopySegment(t));
    }
    this.complete(t);
  }

  private onDataReady(t: u32, failed: u32): void {
    // A stale one (the task was aborted after the transport sent it) finds the record in another state: ignored.
    if (!scsiTaskHeld(t) || scsiTaskState(t) != ScsiTaskState.DataOut || scsiTaskParked(t) != RING_NONE) {
      this.staleDataReadyCount += 1;
      return;
    }
    scsiTaskSetState(t, ScsiTaskState.Queued);
    const sgl = scsiTaskSgl(t); // the transport is done with it
    if (sgl != SGL_NONE) sgls().release(sgl);
    scsiTaskSetSgl(t, SGL_NONE);
    if (failed == SCSI_DATA_READY_FAILED) {
      scsiTaskFlagSet(t, TASK_FLAG_ABORTED, true);
      this.finishAborted(t);
      return;
    }
    scsiTaskSetPhase(t, 2);
    this.advance(t);
  }

  // Completion.

  // Status is in the record (GOOD unless a check set it): Data-In and residual follow from it, then ScsiDone. A
  // refusal keeps the residual its decoder recorded (commands.ts shortDataOut: the overflow it refused), else none.
  private complete(t: u32): void {
    assert(scsiTaskParked(t) == RING_NONE, "scsi: completing a parked task");
    assert((scsiTaskFlags(t) & TASK_FLAG_LOCK) == 0, "scsi: completing a task that holds a lock");
    if (scsiTaskStatus(t) == SAM_STATUS_GOOD) this.residual(t);
    else {
      assert(scsiTaskResidualKind(t) == ScsiResidual.None || scsiTaskStatus(t) == SAM_STATUS_CHECK_CONDITION,
        "scsi: a residual beside a status other than GOOD or CHECK CONDITION");
      scsiTaskSetDataInBytes(t, 0);
    }
    scsiTaskSetState(t, ScsiTaskState.Done);
    this.copyFinish(t);
    this.commandsDone += 1;
    this.deliver(t);
  }

  // SAM-5 residuals against the expected length in the command's own direction (a transport that said the other
  // direction, or none, expected nothing this way).
  private residual(t: u32): void {
    const flags = scsiTaskFlags(t);
    const direction = scsiTaskDirection(t);
    let expected = scsiTaskExpectedTransferBytes(t);
    let transfer = scsiTaskTransferBytes(t);
    if ((flags & TASK_FLAG_DATA_IN) != 0) {
      if (direction != ScsiDirection.Read) expected = 0;
      scsiTaskSetDataInBytes(t, min(transfer, expected));
    } else if ((flags & TASK_FLAG_DATA_OUT) != 0) {
      if (direction != ScsiDirection.Write) expected = 0;
    } else {
      transfer = 0;
    }
    if (transfer > expected) scsiTaskSetResidual(t, ScsiResidual.Overflow, transfer - expected);
    else if (expected > transfer) scsiTaskSetResidual(t, ScsiResidual.Underflow, expected - transfer);
    else scsiTaskSetResidual(t, ScsiResidual.None, 0);
  }

  private copies(t: u32): bool {
    const program = scsiTaskProgram(t);
    return program == Program.ExtendedCopy || program == Program.TokenWrite;
  }

  // A copy's results are kept (copy.ts) and a WRITE USING TOKEN's token is no longer in use, however it ended.
  private copyFinish(t: u32): void {
    if (!this.copies(t)) return;
    copyEnd(scsiTaskCopyEntry(t), t);
    if (scsiTaskProgram(t) == Program.TokenWrite && scsiTaskAreaReady(t)) tokenWriteEnd(t, scsiTaskAreaAddress(t, 0));
  }

  private finishStatus(t: u32, status: u32): void {
    scsiTaskSetStatus(t, status);
    this.complete(t);
  }

  // An aborted task: TASK ABORTED, no data, then whatever TMF waits for it hears of it.
  private finishAborted(t: u32): void {
    if ((scsiTaskFlags(t) & TASK_FLAG_LOCK) != 0) this.unlock(t);
    this.unpark(t);
    scsiTaskFlagSet(t, TASK_FLAG_ABORTED, true);
    scsiTaskSetStatus(t, SAM_STATUS_TASK_ABORTED);
    scsiTaskSetSenseLength(t, 0);
    scsiTaskSetDataInBytes(t, 0);
    scsiTaskSetResidual(t, ScsiResidual.None, 0);
    scsiTaskSetState(t, ScsiTaskState.Done);
    this.copyFinish(t);
    this.abortedCount += 1;
    this.deliver(t);
    const owner = scsiTaskTmfOwner(t);
    if (owner == 0xffff || !scsiTaskHeld(owner) || scsiTaskState(owner) != ScsiTaskState.Tmf) return;
    const waiting = scsiTaskTmfWaitCount(owner);
    assert(waiting > 0, "scsi: TMF wait count");
    scsiTaskSetTmfWaitCount(owner, waiting - 1);
    if (waiting == 1) this.tmfFinish(owner);
  }

  // Sends the message the task's state calls for (ScsiDataOut, ScsiDone, ScsiTmfDone) with the SGL the transport
  // needs; parks the task when the SGL or the transport's inbox has no room.
  private deliver(t: u32): void {
    const state = scsiTaskState(t);
    let kind: u32 = MsgKind.ScsiDone;
    let bytes: u32 = 0;
    if (state == ScsiTaskState.DataOut) { kind = MsgKind.ScsiDataOut; bytes = scsiTaskDataOutBytes(t); }
    else if (state == ScsiTaskState.Done) { bytes = scsiTaskDataInBytes(t); }
    else { assert(state == ScsiTaskState.TmfDone, "scsi: nothing to deliver"); kind = MsgKind.ScsiTmfDone; }
    if (bytes > 0 && scsiTaskSgl(t) == SGL_NONE) {
      const sgl = scsiTaskAreaSgl(t, 0, bytes);
      if (sgl == SGL_NONE) { this.sglWait(t, RING_DELIVER); return; }
      scsiTaskSetSgl(t, sgl);
    }
    this.out.set(kind, this.index, t, kind == MsgKind.ScsiDataOut ? bytes : 0);
    if (!post(scsiTaskTransportTask(t), this.out)) {
      this.park(t, RING_DELIVER);
      this.armRetry();
    }
  }

  // Parking.

  private ring(r: u32): TaskRing {
    assert(r > RING_NONE && r < RING_COUNT, "scsi: ring out of range");
    return unchecked(this.rings[r])!;
  }

  private park(t: u32, r: u32): void {
    assert(scsiTaskParked(t) == RING_NONE, "scsi: task parked twice");
    this.ring(r).push(t);
    scsiTaskSetParked(t, r);
  }

  private unpark(t: u32): void {
    const r = scsiTaskParked(t);
    if (r == RING_NONE) return;
    assert(this.ring(r).remove(t), "scsi: parked task not in its ring");
    scsiTaskSetParked(t, RING_NONE);
  }

  private armRetry(): void {
    if (this.retryTimer == TIMER_NONE) this.retryTimer = timerStart(this.index, RETRY_NS, 0, 0);
  }

  // Gives every parked task its chance, each ring in order; true when one moved on.
  private retryParked(): bool {
    let progress = false;
    for (let r: u32 = RING_PAGE; r <= RING_LARGE; r++) {
      const ring = this.ring(r);
      for (let n: u32 = 0; n < SCSI_TASKS_MAX && ring.count > 0; n++) {
        const t = ring.peek();
        if (!scsiTaskAreaFill(t, this.index)) break; // the oldest first: the others wait behind it
        this.unpark(t);
        this.advance(t);
        progress = true;
      }
    }
    if (this.serviceRetryDue) {
      this.serviceRetryDue = false;
      const ring = this.ring(RING_SERVICE);
      const count = ring.count;
      for (let n: u32 = 0; n < count && this.servicesInFlight < SERVICES_IN_FLIGHT_MAX; n++) {
        const t = ring.pop();
        scsiTaskSetParked(t, RING_NONE);
        this.serviceSend(t);
        progress = progress || scsiTaskState(t) == ScsiTaskState.Service;
      }
    }
    progress = this.retryRing(RING_DELIVER) || progress;
    progress = this.retryRing(RING_SANITIZE) || progress;
    return this.retryRing(RING_READY) || progress;
  }

  private retryRing(r: u32): bool {
    const ring = this.ring(r);
    const count = ring.count;
    for (let n: u32 = 0; n < count; n++) {
      const t = ring.pop();
      scsiTaskSetParked(t, RING_NONE);
      if (r == RING_DELIVER) this.deliver(t);
      else this.advance(t);
    }
    return count > 0 && ring.count < count;
  }

  // COMPARE AND WRITE's lock on its logical unit.

  private lockTake(t: u32): bool {
    const lun = scsiTaskLun(t);
    assert(lun < VOLUMES_MAX);
    const holder = unchecked(this.lockHolder[lun]);
    if (holder == t) return true;
    if (holder != SCSI_TASK_NONE) { this.park(t, RING_LOCK); return false; }
    unchecked(this.lockHolder[lun] = t);
    scsiTaskFlagSet(t, TASK_FLAG_LOCK, true);
    return true;
  }

  // Frees the lock; the oldest task waiting for it goes on at the next run.
  private unlock(t: u32): void {
    const lun = scsiTaskLun(t);
    assert(lun < VOLUMES_MAX && unchecked(this.lockHolder[lun]) == t, "scsi: unlock by a task without the lock");
    unchecked(this.lockHolder[lun] = SCSI_TASK_NONE);
    scsiTaskFlagSet(t, TASK_FLAG_LOCK, false);
    const ring = this.ring(RING_LOCK);
    for (let i: u32 = 0; i < ring.count; i++) {
      const waiter = ring.at(i);
      if (scsiTaskLun(waiter) != lun) continue;
      this.unpark(waiter);
      this.park(waiter, RING_READY);
      wakeTask(this.index);
      return;
    }
  }

  // Task management.

  private onTmf(t: u32): void {
    assert(scsiTaskHeld(t) && scsiTaskState(t) == ScsiTaskState.Allocated, "scsi: ScsiTmf for a task not allocated");
    scsiTaskSetState(t, ScsiTaskState.Tmf);
    writeProtectTake(t); // a TMF's LUN comes through the same map: the bare volume scopes it
    const fn = scsiTaskTmfFunction(t);
    const lun = scsiTaskLun(t);
    const nexus = scsiTaskNexus(t);
    const lunScoped = fn == TmfFunction.AbortTask || fn == TmfFunction.AbortTaskSet || fn == TmfFunction.ClearTaskSet
      || fn == TmfFunction.LogicalUnitReset;
    let response: u32 = TmfResponse.Complete;
    this.abortFound = 0;
    this.abortWaiting = 0;
    const targetReset = fn == TmfFunction.TargetWarmReset || fn == TmfFunction.TargetColdReset;
    if (!lunScoped && !targetReset) response = TmfResponse.NotSupported; // CLEAR ACA
    else if (lunScoped && lun >= volumesCount()) response = TmfResponse.LunDoesNotExist;
    else if (fn == TmfFunction.AbortTask) {
      this.abortWhere(Scope.Tag, t, t, nexus, lun, scsiTaskReferencedTag(t), NEXUS_NONE);
      if (this.abortFound == 0) response = TmfResponse.TaskDoesNotExist;
    } else if (fn == TmfFunction.AbortTaskSet) this.abortWhere(Scope.NexusLun, t, t, nexus, lun, 0, NEXUS_NONE);
    else if (fn == TmfFunction.ClearTaskSet) this.abortWhere(Scope.Lun, t, t, nexus, lun, 0, nexus);
    else if (fn == TmfFunction.LogicalUnitReset) {
      this.abortWhere(Scope.Lun, t, t, nexus, lun, 0, nexus, false); // POWER ON, not COMMANDS CLEARED, follows
      this.lunReset(lun);
    } else { // TARGET WARM RESET, TARGET COLD RESET (SAM-5: a hard reset of every logical unit; the transport closes
      // every connection after a COLD RESET's answer, RFC 7143 §11.5.1)
      this.abortWhere(Scope.All, t, t, nexus, 0, 0, nexus, false);
      const count = volumesCount();
      for (let l: u32 = 0; l < count; l++) this.lunReset(l);
    }
    scsiTaskSetTmfResponse(t, response);
    scsiTaskSetTmfWaitCount(t, this.abortWaiting);
    if (this.abortWaiting == 0) this.tmfFinish(t);
  }

  private tmfFinish(t: u32): void {
    scsiTaskSetState(t, ScsiTaskState.TmfDone);
    this.deliver(t);
  }

  // SAM-5, Logical unit reset: its RESERVE(6) reservation ends, mode parameters go back to their defaults, and every
  // nexus hears POWER ON, RESET, OR BUS DEVICE RESET OCCURRED. Persistent reservations stay.
  private lunReset(lun: u32): void {
    reservationsLunReset(lun);
    modeLunReset(lun);
    copyDiscard(NEXUS_NONE, lun);
    uaSetAll(lun, UA_POWER_ON_RESET, NEXUS_NONE);
  }

  /**
   * Aborts the tasks `scope` matches, except `except`. Tasks with a service in flight finish when it answers and,
   * with `owner` (a TMF), count towards its wait. `clearedBy`: the nexus whose action aborts the others' tasks, or
   * NEXUS_NONE. SAM-5, Aborting commands: with TAS 1 (mode.ts) the other nexuses' tasks end with TASK ABORTED status
   * the transport sends; with TAS 0 they end without a response and, when `clearedUa`, their nexus hears COMMANDS
   * CLEARED BY ANOTHER INITIATOR (a reset raises POWER ON instead). Counts into abortFound and abortWaiting.
   */
  private abortWhere(scope: Scope, except: u32, owner: u32, nexusOrSlot: u32, lun: u32, tag: u32, clearedBy: u32,
    clearedUa: bool = true): void {
    for (let v: u32 = 0; v < SCSI_TASKS_MAX; v++) {
      if (v == except || !scsiTaskHeld(v)) continue;
      if (scsiTaskProgram(v) == Program.SanitizeWork) continue; // SBC-4: a sanitize operation survives aborts and resets
      const state = scsiTaskState(v);
      if (state != ScsiTaskState.Queued && state != ScsiTaskState.DataOut && state != ScsiTaskState.Service
        && !(state == ScsiTaskState.Done && scope == Scope.Tag)) continue;
      let match = false;
      switch (scope) {
        case Scope.Tag: match = scsiTaskNexus(v) == nexusOrSlot && scsiTaskTag(v) == tag; break;
        case Scope.NexusLun: match = scsiTaskNexus(v) == nexusOrSlot && scsiTaskLun(v) == lun; break;
        case Scope.Lun: match = scsiTaskLun(v) == lun; break;
        case Scope.All: match = true; break;
        case Scope.Slot: match = scsiTaskNexusSlot(v) == nexusOrSlot; break;
        default: assert(false, "scsi: unknown abort scope");
      }
      if (!match) continue;
      this.abortFound += 1;
      if (state == ScsiTaskState.Done) continue; // completed already: nothing left to abort
      if (clearedBy != NEXUS_NONE && scsiTaskNexus(v) != clearedBy) {
        if (modeTaskAbortedStatus(scsiTaskLun(v))) scsiTaskFlagSet(v, TASK_FLAG_ABORT_REPORTED, true);
        else if (clearedUa) uaSetNexus(scsiTaskNexus(v), scsiTaskLun(v), UA_COMMANDS_CLEARED);
      }
      this.abortOne(v, owner);
    }
  }

  private abortOne(v: u32, owner: u32): void {
    if ((scsiTaskFlags(v) & TASK_FLAG_ABORTED) != 0) return; // already on its way out
    scsiTaskFlagSet(v, TASK_FLAG_ABORTED, true);
    if (scsiTaskState(v) == ScsiTaskState.Service) {
      if (owner == SCSI_TASK_NONE) return;
      scsiTaskSetTmfOwner(v, owner);
      this.abortWaiting += 1;
      return;
    }
    // Queued or DataOut: nothing of ours is in flight; any ScsiDataReady that still comes is ignored.
    this.finishAborted(v);
  }

  // Nexuses their transports said are gone: their tasks are aborted, their RESERVE(6) reservations end.
  private sweepNexuses(): bool {
    if (nexusGoneCount() == 0) return false; // the common case: this scans every slot
    let swept = false;
    for (let s: u32 = 0; s < NEXUS_MAX; s++) {
      if (!nexusSlotInUse(s) || !nexusSlotGone(s)) continue;
      this.abortWhere(Scope.Slot, SCSI_TASK_NONE, SCSI_TASK_NONE, s, 0, 0, NEXUS_NONE);
      reservationsNexusLost(nexusOfSlot(s));
      copyDiscard(nexusOfSlot(s), COPY_LUN_NONE);
      nexusClose(s);
      swept = true;
    }
    return swept;
  }
}

const PHASE_WAIT: u32 = 0xffff_ffff;

/** True when [lba, lba + blocks) lies on logical unit `lun`. */
function copyRangeOk(lun: u32, lba: u64, blocks: u64): bool {
  const capacity = volumeAt(lun).blockCount;
  return lba <= capacity && blocks <= capacity - lba;
}
const WRITE_SAME_CHUNK_BYTES: u32 = 1 << 20; // one write service of WRITE SAME: 16 segments over the one buffer

let target: ScsiTargetTask | null = null;

/**
 * Boot hook (host processor, after the CTA exists): carves the task table, nexus, reservation and mode state, and
 * adds the SCSI target task. Before kernelStart.
 */
export function scsiBoot(ctaTask: u32): ScsiTargetTask {
  assert(target == null, "scsi: booted twice");
  limitsInit();
  nexusInit();
  targetLunsInit();
  reservationsInit();
  modeInit();
  copyInit();
  rodTokensInit();
  sanitizeInit();
  identitiesInit();
  prRecordsBoot(); // persistent reservations kept through power loss: needs the identities and the volume table
  const task = new ScsiTargetTask(ctaTask);
  taskAdd(task);
  scsiTasksInit(task.index);
  target = task;
  return task;
}

/** True once scsiBoot ran (the test build's probe boots the target only if the agents did not). */
export function scsiBooted(): bool { return target != null; }

/** The SCSI target's task index: where transports post ScsiCommand, ScsiDataReady and ScsiTmf. */
export function scsiTargetTask(): u32 { return target!.index; }

export function scsiTarget(): ScsiTargetTask { return target!; }

/**
 * For the test build's probe, which drives the target without a transport task: transports send ScsiNexusGone
 * (scsiNexusGonePost in transport.ts) instead, since tasks talk only in messages.
 * The transport ends an I_T nexus (its session is gone). At the target's next run, the nexus's tasks are aborted
 * (each still gets its ScsiDone, aborted) and its RESERVE(6) reservations end; its persistent registrations stay.
 */
export function scsiNexusGone(nexus: u32): void {
  if (nexusLose(nexus)) wakeTask(target!.index);
}

// SAM-5, I_T nexus loss: one session fewer uses the identity; the nexus is marked gone (its tasks are aborted and its
// RESERVE(6) reservations end at the sweep), and its initiator port's next nexus hears I_T NEXUS LOSS OCCURRED
// on the logical units where it had heard POWER ON (elsewhere POWER ON again). False when the nexus was not in the table.
function nexusLose(nexus: u32): bool {
  nexusIdentityRelease(nexus);
  const slot = nexusFind(nexus);
  if (slot == NEXUS_SLOT_NONE) return false;
  nexusIdentityLossSet(nexus, nexusPowerOnHeard(slot));
  return nexusMarkGone(nexus);
}

/**
 * The nexus id for initiator port `portName` (`portNameBytes` bytes; iSCSI: "InitiatorName,i,0xISID") through
 * relative target port `targetPort` (1-based): the same name and port give the same id in every session, so
 * persistent reservation registrations find their initiator port again. The transport calls it when a session
 * starts and scsiNexusGone(id) when it ends; NEXUS_NONE when the table has no room (refuse the session).
 * For the test build's probe: transports send ScsiNexusIdentify (scsiNexusIdentifyPost in transport.ts) instead.
 */
export function scsiNexusIdentify(portName: usize, portNameBytes: u32, targetPort: u32): u32 {
  return nexusIdentify(portName, portNameBytes, targetPort);
}
