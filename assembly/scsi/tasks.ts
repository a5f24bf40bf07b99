// The ScsiTask table: one record per command or TMF a transport has handed to the SCSI target, carved at boot.
// Records are pool slots (kernel/pool.ts): the free list threads through bytes 0-1, so no field lives there.
// Each record also holds the data area of its command: up to SCSI_TASK_BUFFERS_MAX pool buffers of one class, seen as
// one run of bytes (offset o is in buffer o / slotBytes), and the SGLs over them.
//
// Record, 256 bytes, little-endian:
// |0 free-list link u16|2 state u8|3 direction u8|4 nexus u16|6 transportTask u16|
// |8 lun u32|12 tag u32|16 expectedTransferBytes u32|20 dataInBytes u32|
// |24 status u8|25 senseLength u8|26 residualKind u8|27 flags u8|28 residualBytes u32|
// |32 cdb[32]|64 sense[32]|
// |96 sgl u16|98 ioSgl u16|100 bufferClass u8|101 bufferCount u8|102 bufferWanted u8|103 program u8|
// |104 phase u8|105 tmfFunction u8|106 tmfResponse u8|107 attribute u8|108 generation u32|
// |112 referencedTag u32|116 tmfWaitCount u16|118 tmfOwner u16|
// |120 lba u64|128 blockCount u32|132 cursor u32|136 transferBytes u32|140 dataOutBytes u32|
// |144 serviceLba u64|152 serviceBlocks u32|156 serviceOffset u32|
// |160 buffers u16[32]|
// |224 blockBytes u32|228 options u8|229 serviceFunction u8|230 cdbLength u8|231 parked u8|232 nexusSlot u16|
// |234 serviceLun u16|236 copySegment u16|238 copyEntry u16|240 copySegmentDoneBytes u64|248 copyChunkBytes u32|252 copyToken u16|254 -|
import { BUFFER_CLASS_LARGE, BUFFER_CLASS_PAGE } from "../config";
import { bufferPool, sgls } from "../kernel/buffers";
import { Pool, POOL_NONE } from "../kernel/pool";
import { wakeTask } from "../kernel/ready";
import { SGL_NONE } from "../kernel/sgl";
import { ScsiDirection, ScsiResidual, SCSI_TASK_NONE, TmfFunction } from "./interface";
import { SAM_STATUS_CHECK_CONDITION } from "../protocol/scsi_status";
import { FIELD_NONE, INFORMATION_NONE, senseFixed } from "./sense";

export const SCSI_TASKS_MAX: u32 = 256;
export const SCSI_CDB_BYTES_MAX: u32 = 32;
export const SCSI_SENSE_BYTES_MAX: u32 = 32;
export const SCSI_TASK_BUFFERS_MAX: u32 = 32; // 2 MiB of 64 KiB buffers: VERIFY with BYTCHK at the 1 MiB limit
const RECORD_BYTES: u32 = 256;
const SGL_FIELD_NONE: u16 = 0xffff;
// The record's fields, named as drawn above; read and written only by these names.
const AT_STATE: usize = 2;
const AT_DIRECTION: usize = 3;
const AT_NEXUS: usize = 4;
const AT_TRANSPORT_TASK: usize = 6;
const AT_LUN: usize = 8;
const AT_TAG: usize = 12;
const AT_EXPECTED_TRANSFER_BYTES: usize = 16;
const AT_DATA_IN_BYTES: usize = 20;
const AT_STATUS: usize = 24;
const AT_SENSE_LENGTH: usize = 25;
const AT_RESIDUAL_KIND: usize = 26;
const AT_FLAGS: usize = 27;
const AT_RESIDUAL_BYTES: usize = 28;
const AT_CDB: usize = 32;
const AT_SENSE: usize = 64;
const AT_SGL: usize = 96;
const AT_IO_SGL: usize = 98;
const AT_BUFFER_CLASS: usize = 100;
const AT_BUFFER_COUNT: usize = 101;
const AT_BUFFER_WANTED: usize = 102;
const AT_PROGRAM: usize = 103;
const AT_PHASE: usize = 104;
const AT_TMF_FUNCTION: usize = 105;
const AT_TMF_RESPONSE: usize = 106;
const AT_ATTRIBUTE: usize = 107;
const AT_GENERATION: usize = 108;
const AT_REFERENCED_TAG: usize = 112;
const AT_TMF_WAIT_COUNT: usize = 116;
const AT_TMF_OWNER: usize = 118;
const AT_LBA: usize = 120;
const AT_BLOCK_COUNT: usize = 128;
const AT_CURSOR: usize = 132;
const AT_TRANSFER_BYTES: usize = 136;
const AT_DATA_OUT_BYTES: usize = 140;
const AT_SERVICE_LBA: usize = 144;
const AT_SERVICE_BLOCKS: usize = 152;
const AT_SERVICE_OFFSET: usize = 156;
const AT_BUFFERS: usize = 160;
const AT_BLOCK_BYTES: usize = 224;
const AT_OPTIONS: usize = 228;
const AT_SERVICE_FUNCTION: usize = 229;
const AT_CDB_LENGTH: usize = 230;
const AT_PARKED: usize = 231;
const AT_NEXUS_SLOT: usize = 232;
const AT_SERVICE_LUN: usize = 234;
const AT_COPY_SEGMENT: usize = 236;
const AT_COPY_ENTRY: usize = 238;
const AT_COPY_SEGMENT_DONE_BYTES: usize = 240;
const AT_COPY_CHUNK_BYTES: usize = 248;
const AT_COPY_TOKEN: usize = 252;
const AT_UNUSED_BYTES: usize = 2; // |254-255|
if (AT_COPY_TOKEN + 2 + AT_UNUSED_BYTES != RECORD_BYTES) ERROR("scsi task record: the last field and the unused tail end the record");
if (AT_BUFFERS + SCSI_TASK_BUFFERS_MAX * 2 != AT_BLOCK_BYTES) ERROR("scsi task record: the buffers end where blockBytes starts");
if (AT_CDB + SCSI_CDB_BYTES_MAX != AT_SENSE || AT_SENSE + SCSI_SENSE_BYTES_MAX != AT_SGL) ERROR("scsi task record: the CDB and sense areas fit where drawn");

export enum ScsiTaskState {
  Free = 0, // in the pool
  Allocated = 1, // the transport holds it and is filling it in
  Queued = 2, // accepted; parked for buffers, a CTA slot, a lock or a message slot, or between steps
  DataOut = 3, // ScsiDataOut sent: waiting for the transport's ScsiDataReady
  Service = 4, // a ServiceIo at the CTA
  Done = 5, // ScsiDone sent: the transport releases it once its Data-In has left
  Tmf = 6, // a TMF waiting for the tasks it aborted to finish
  TmfDone = 7, // ScsiTmfDone sent: the transport releases it
}

// flags (byte 27)
export const TASK_FLAG_ABORTED: u8 = 1; // aborted: finishes with TASK ABORTED once no service is in flight
export const TASK_FLAG_LOCK: u8 = 2; // holds its logical unit's COMPARE AND WRITE lock
export const TASK_FLAG_DATA_IN: u8 = 4; // the command sends Data-In (else Data-Out or nothing)
export const TASK_FLAG_DATA_OUT: u8 = 8; // the command takes Data-Out
export const TASK_FLAG_WRITE_PROTECTED: u8 = 16; // its unit is read-only through the transport's LUN (write_protect.ts)
// Aborted by another I_T nexus's action with TAS 1 (SPC-4, Control mode page): its TASK ABORTED status is reported.
export const TASK_FLAG_ABORT_REPORTED: u8 = 32;

let records: Pool | null = null;
let targetTaskIndex: u32 = 0xffff_ffff;
let largeHeldCount: u32 = 0; // large buffers the SCSI layer holds, capped so transports keep some
let largeHeldMax: u32 = 0;

/** Carves the table. Boot only. `targetTask` is woken whenever a record gives its buffers back. */
export function scsiTasksInit(targetTask: u32): void {
  records = new Pool("scsitask", SCSI_TASKS_MAX, RECORD_BYTES, 16);
  targetTaskIndex = targetTask;
  largeHeldMax = bufferPool(BUFFER_CLASS_LARGE).capacity * 3 / 4;
}

@inline function rec(t: u32): usize { return records!.address(t); }

/** True when `t` is a record some transport holds (not free). */
export function scsiTaskHeld(t: u32): bool { return t < SCSI_TASKS_MAX && records!.isHeld(t); }

export function scsiTasksFree(): u32 { return records!.freeCount; }

/** A free record, zeroed and Allocated; SCSI_TASK_NONE when all are in use (the transport answers TASK SET FULL). */
export function scsiTaskAlloc(): u32 {
  const t = records!.acquire();
  if (t == POOL_NONE) return SCSI_TASK_NONE;
  const r = rec(t);
  const generation = load<u32>(r, AT_GENERATION) + 1; // survives the release: stale completions are told apart
  memory.fill(r, 0, RECORD_BYTES);
  store<u32>(r, generation, AT_GENERATION);
  store<u8>(r, <u8>ScsiTaskState.Allocated, AT_STATE);
  store<u16>(r, SGL_FIELD_NONE, AT_SGL);
  store<u16>(r, SGL_FIELD_NONE, AT_IO_SGL);
  store<u16>(r, <u16>0xffff, AT_TMF_OWNER); // tmfOwner
  store<u16>(r, <u16>0xffff, AT_NEXUS_SLOT); // nexusSlot
  store<u16>(r, <u16>0xffff, AT_COPY_ENTRY); // copyEntry
  store<u16>(r, <u16>0xffff, AT_COPY_TOKEN); // copyToken
  return t;
}

/**
 * Gives a record back with its buffers and SGLs. The transport calls it once per record: after ScsiDone (once the
 * Data-In has left), after ScsiTmfDone, or for a record it never posted.
 */
export function scsiTaskRelease(t: u32): void {
  assert(scsiTaskHeld(t), "scsi: release of a free task");
  const state = scsiTaskState(t);
  assert(state == ScsiTaskState.Allocated || state == ScsiTaskState.Done || state == ScsiTaskState.TmfDone,
    "scsi: release of a task still in progress");
  const released = scsiTaskAreaRelease(t);
  store<u8>(rec(t), <u8>ScsiTaskState.Free, AT_STATE);
  records!.release(t);
  if (released && targetTaskIndex != 0xffff_ffff) wakeTask(targetTaskIndex); // parked commands may find buffers now
}

// The transport's setters, before it posts ScsiCommand or ScsiTmf.
export function scsiTaskSetNexus(t: u32, nexus: u32): void { store<u16>(rec(t), <u16>nexus, AT_NEXUS); }
export function scsiTaskSetLun(t: u32, lun: u32): void { store<u32>(rec(t), lun, AT_LUN); }
export function scsiTaskSetTag(t: u32, tag: u32): void { store<u32>(rec(t), tag, AT_TAG); }
export function scsiTaskSetDirection(t: u32, direction: ScsiDirection): void { store<u8>(rec(t), <u8>direction, AT_DIRECTION); }
export function scsiTaskSetExpectedTransferBytes(t: u32, bytes: u32): void { store<u32>(rec(t), bytes, AT_EXPECTED_TRANSFER_BYTES); }
export function scsiTaskSetAttribute(t: u32, attribute: u32): void { store<u8>(rec(t), <u8>attribute, AT_ATTRIBUTE); }
export function scsiTaskSetTransportTask(t: u32, task: u32): void { store<u16>(rec(t), <u16>task, AT_TRANSPORT_TASK); }

/** Copies the CDB in; false (record unchanged) when it is empty or longer than SCSI_CDB_BYTES_MAX. */
export function scsiTaskSetCdb(t: u32, cdb: usize, lengthBytes: u32): bool {
  if (lengthBytes == 0 || lengthBytes > SCSI_CDB_BYTES_MAX) return false;
  const r = rec(t);
  memory.fill(r + AT_CDB, 0, SCSI_CDB_BYTES_MAX);
  memory.copy(r + AT_CDB, cdb, lengthBytes);
  store<u8>(r, <u8>lengthBytes, AT_CDB_LENGTH);
  return true;
}

/** A TMF (interface.ts TmfFunction) and, for ABORT TASK, the tag of the task to abort. */
export function scsiTaskSetTmf(t: u32, fn: TmfFunction, referencedTag: u32): void {
  store<u8>(rec(t), <u8>fn, AT_TMF_FUNCTION);
  store<u32>(rec(t), referencedTag, AT_REFERENCED_TAG);
}

// The transport's getters, after ScsiDataOut, ScsiDone or ScsiTmfDone.
export function scsiTaskNexus(t: u32): u32 { return load<u16>(rec(t), AT_NEXUS); }
export function scsiTaskLun(t: u32): u32 { return load<u32>(rec(t), AT_LUN); }
export function scsiTaskTag(t: u32): u32 { return load<u32>(rec(t), AT_TAG); }
export function scsiTaskDirection(t: u32): ScsiDirection { return <ScsiDirection>load<u8>(rec(t), AT_DIRECTION); }
export function scsiTaskExpectedTransferBytes(t: u32): u32 { return load<u32>(rec(t), AT_EXPECTED_TRANSFER_BYTES); }
export function scsiTaskAttribute(t: u32): u32 { return load<u8>(rec(t), AT_ATTRIBUTE); }
export function scsiTaskTransportTask(t: u32): u32 { return load<u16>(rec(t), AT_TRANSPORT_TASK); }
export function scsiTaskCdb(t: u32): usize { return rec(t) + AT_CDB; }
export function scsiTaskCdbLength(t: u32): u32 { return load<u8>(rec(t), AT_CDB_LENGTH); }
export function scsiTaskStatus(t: u32): u32 { return load<u8>(rec(t), AT_STATUS); }
/** Fixed-format sense data (SPC-4), scsiTaskSenseLength bytes; meaningful with CHECK CONDITION only. */
export function scsiTaskSense(t: u32): usize { return rec(t) + AT_SENSE; }
export function scsiTaskSenseLength(t: u32): u32 { return load<u8>(rec(t), AT_SENSE_LENGTH); }
export function scsiTaskDataInBytes(t: u32): u32 { return load<u32>(rec(t), AT_DATA_IN_BYTES); }
export function scsiTaskResidualKind(t: u32): ScsiResidual { return <ScsiResidual>load<u8>(rec(t), AT_RESIDUAL_KIND); }
export function scsiTaskResidualBytes(t: u32): u32 { return load<u32>(rec(t), AT_RESIDUAL_BYTES); }
export function scsiTaskAborted(t: u32): bool { return (load<u8>(rec(t), AT_FLAGS) & TASK_FLAG_ABORTED) != 0; }
/** An aborted task whose TASK ABORTED status the transport sends (another nexus aborted it, TAS 1); else none. */
export function scsiTaskAbortReported(t: u32): bool { return (load<u8>(rec(t), AT_FLAGS) & TASK_FLAG_ABORT_REPORTED) != 0; }
/** The SGL over the bytes to move (ScsiDataOut's b, or the Data-In); SGL_NONE when there are none. */
export function scsiTaskSgl(t: u32): u32 { return sglField(load<u16>(rec(t), AT_SGL)); }
export function scsiTaskTmfFunction(t: u32): u32 { return load<u8>(rec(t), AT_TMF_FUNCTION); }
export function scsiTaskTmfResponse(t: u32): u32 { return load<u8>(rec(t), AT_TMF_RESPONSE); }
export function scsiTaskReferencedTag(t: u32): u32 { return load<u32>(rec(t), AT_REFERENCED_TAG); }

// The target's own fields.
export function scsiTaskState(t: u32): ScsiTaskState { return <ScsiTaskState>load<u8>(rec(t), AT_STATE); }
export function scsiTaskSetState(t: u32, state: ScsiTaskState): void { store<u8>(rec(t), <u8>state, AT_STATE); }
export function scsiTaskGeneration(t: u32): u32 { return load<u32>(rec(t), AT_GENERATION); }
export function scsiTaskFlags(t: u32): u8 { return load<u8>(rec(t), AT_FLAGS); }
export function scsiTaskFlagSet(t: u32, flag: u8, on: bool): void {
  const r = rec(t);
  store<u8>(r, on ? load<u8>(r, AT_FLAGS) | flag : load<u8>(r, AT_FLAGS) & ~flag, AT_FLAGS);
}
export function scsiTaskSetStatus(t: u32, status: u32): void { store<u8>(rec(t), <u8>status, AT_STATUS); }
export function scsiTaskSetSenseLength(t: u32, lengthBytes: u32): void {
  assert(lengthBytes <= SCSI_SENSE_BYTES_MAX);
  store<u8>(rec(t), <u8>lengthBytes, AT_SENSE_LENGTH);
}
export function scsiTaskSetDataInBytes(t: u32, bytes: u32): void { store<u32>(rec(t), bytes, AT_DATA_IN_BYTES); }
export function scsiTaskSetResidual(t: u32, kind: ScsiResidual, bytes: u32): void {
  store<u8>(rec(t), <u8>kind, AT_RESIDUAL_KIND);
  store<u32>(rec(t), bytes, AT_RESIDUAL_BYTES);
}
export function scsiTaskSetTmfResponse(t: u32, response: u32): void { store<u8>(rec(t), <u8>response, AT_TMF_RESPONSE); }
export function scsiTaskTmfWaitCount(t: u32): u32 { return load<u16>(rec(t), AT_TMF_WAIT_COUNT); }
export function scsiTaskSetTmfWaitCount(t: u32, count: u32): void { store<u16>(rec(t), <u16>count, AT_TMF_WAIT_COUNT); }
export function scsiTaskTmfOwner(t: u32): u32 { return load<u16>(rec(t), AT_TMF_OWNER); }
export function scsiTaskSetTmfOwner(t: u32, owner: u32): void { store<u16>(rec(t), <u16>owner, AT_TMF_OWNER); }
export function scsiTaskProgram(t: u32): u32 { return load<u8>(rec(t), AT_PROGRAM); }
export function scsiTaskSetProgram(t: u32, program: u32): void { store<u8>(rec(t), <u8>program, AT_PROGRAM); }
export function scsiTaskPhase(t: u32): u32 { return load<u8>(rec(t), AT_PHASE); }
export function scsiTaskSetPhase(t: u32, phase: u32): void { store<u8>(rec(t), <u8>phase, AT_PHASE); }
export function scsiTaskLba(t: u32): u64 { return load<u64>(rec(t), AT_LBA); }
export function scsiTaskSetLba(t: u32, lba: u64): void { store<u64>(rec(t), lba, AT_LBA); }
export function scsiTaskBlockCount(t: u32): u32 { return load<u32>(rec(t), AT_BLOCK_COUNT); }
export function scsiTaskSetBlockCount(t: u32, count: u32): void { store<u32>(rec(t), count, AT_BLOCK_COUNT); }
export function scsiTaskCursor(t: u32): u32 { return load<u32>(rec(t), AT_CURSOR); }
export function scsiTaskSetCursor(t: u32, cursor: u32): void { store<u32>(rec(t), cursor, AT_CURSOR); }
/** Bytes the command itself would move (Data-In after the allocation length cut, or Data-Out the CDB asks for). */
export function scsiTaskTransferBytes(t: u32): u32 { return load<u32>(rec(t), AT_TRANSFER_BYTES); }
export function scsiTaskSetTransferBytes(t: u32, bytes: u32): void { store<u32>(rec(t), bytes, AT_TRANSFER_BYTES); }
/** Data-Out bytes the target asks the transport for: the CDB's, cut to the expected transfer length. */
export function scsiTaskDataOutBytes(t: u32): u32 { return load<u32>(rec(t), AT_DATA_OUT_BYTES); }
export function scsiTaskSetDataOutBytes(t: u32, bytes: u32): void { store<u32>(rec(t), bytes, AT_DATA_OUT_BYTES); }
export function scsiTaskServiceLba(t: u32): u64 { return load<u64>(rec(t), AT_SERVICE_LBA); }
export function scsiTaskServiceBlocks(t: u32): u32 { return load<u32>(rec(t), AT_SERVICE_BLOCKS); }
export function scsiTaskServiceOffset(t: u32): u32 { return load<u32>(rec(t), AT_SERVICE_OFFSET); }
export function scsiTaskServiceFunction(t: u32): u32 { return load<u8>(rec(t), AT_SERVICE_FUNCTION); }
/** The logical unit the service goes to: the command's own, or another one for EXTENDED COPY. */
export function scsiTaskServiceLun(t: u32): u32 { return load<u16>(rec(t), AT_SERVICE_LUN); }
export function scsiTaskSetService(t: u32, fn: u32, lba: u64, blocks: u32, offsetBytes: u32, lun: u32 = 0xffff_ffff): void {
  const r = rec(t);
  store<u16>(r, <u16>(lun == 0xffff_ffff ? scsiTaskLun(t) : lun), AT_SERVICE_LUN);
  store<u8>(r, <u8>fn, AT_SERVICE_FUNCTION);
  store<u64>(r, lba, AT_SERVICE_LBA);
  store<u32>(r, blocks, AT_SERVICE_BLOCKS);
  store<u32>(r, offsetBytes, AT_SERVICE_OFFSET);
}
export function scsiTaskBlockBytes(t: u32): u32 { return load<u32>(rec(t), AT_BLOCK_BYTES); }
export function scsiTaskSetBlockBytes(t: u32, bytes: u32): void { store<u32>(rec(t), bytes, AT_BLOCK_BYTES); }
export function scsiTaskOptions(t: u32): u32 { return load<u8>(rec(t), AT_OPTIONS); }
export function scsiTaskSetOptions(t: u32, options: u32): void { store<u8>(rec(t), <u8>options, AT_OPTIONS); }
export function scsiTaskParked(t: u32): u32 { return load<u8>(rec(t), AT_PARKED); }
export function scsiTaskSetParked(t: u32, ring: u32): void { store<u8>(rec(t), <u8>ring, AT_PARKED); }
export function scsiTaskNexusSlot(t: u32): u32 { return load<u16>(rec(t), AT_NEXUS_SLOT); }
export function scsiTaskSetNexusSlot(t: u32, slot: u32): void { store<u16>(rec(t), <u16>slot, AT_NEXUS_SLOT); }
// EXTENDED COPY: the segment descriptor being processed, the copy results entry (0xFFFF: none), the bytes of the
// segment already copied, and the bytes one chunk (one READ, then one WRITE) moves.
export function scsiTaskCopySegment(t: u32): u32 { return load<u16>(rec(t), AT_COPY_SEGMENT); }
export function scsiTaskSetCopySegment(t: u32, index: u32): void { store<u16>(rec(t), <u16>index, AT_COPY_SEGMENT); }
export function scsiTaskCopyEntry(t: u32): u32 { return load<u16>(rec(t), AT_COPY_ENTRY); }
export function scsiTaskSetCopyEntry(t: u32, entry: u32): void { store<u16>(rec(t), <u16>entry, AT_COPY_ENTRY); }
export function scsiTaskCopyDoneBytes(t: u32): u64 { return load<u64>(rec(t), AT_COPY_SEGMENT_DONE_BYTES); }
export function scsiTaskSetCopyDoneBytes(t: u32, bytes: u64): void { store<u64>(rec(t), bytes, AT_COPY_SEGMENT_DONE_BYTES); }
export function scsiTaskCopyChunkBytes(t: u32): u32 { return load<u32>(rec(t), AT_COPY_CHUNK_BYTES); }
export function scsiTaskSetCopyChunkBytes(t: u32, bytes: u32): void { store<u32>(rec(t), bytes, AT_COPY_CHUNK_BYTES); }
// WRITE USING TOKEN: the ROD token entry it uses (rod_token.ts; 0xFFFF: none, 0xFFFE: the block device zero token).
export function scsiTaskCopyToken(t: u32): u32 { return load<u16>(rec(t), AT_COPY_TOKEN); }
export function scsiTaskSetCopyToken(t: u32, entry: u32): void { store<u16>(rec(t), <u16>entry, AT_COPY_TOKEN); }
export function scsiTaskIoSgl(t: u32): u32 { return sglField(load<u16>(rec(t), AT_IO_SGL)); }
export function scsiTaskSetIoSgl(t: u32, sgl: u32): void { store<u16>(rec(t), <u16>sgl, AT_IO_SGL); }
export function scsiTaskSetSgl(t: u32, sgl: u32): void { store<u16>(rec(t), <u16>sgl, AT_SGL); }

@inline function sglField(value: u16): u32 { return value == SGL_FIELD_NONE ? SGL_NONE : <u32>value; }

// The data area.

/** Asks for `bytes` of area in buffers of `bufferClass` (page or large). No buffer is taken yet. */
export function scsiTaskAreaWant(t: u32, bufferClass: u32, bytes: u32): void {
  assert(bufferClass == BUFFER_CLASS_PAGE || bufferClass == BUFFER_CLASS_LARGE, "scsi: area of page or large buffers");
  const slotBytes = bufferPool(bufferClass).slotBytes;
  const count = (bytes + slotBytes - 1) / slotBytes;
  assert(count <= SCSI_TASK_BUFFERS_MAX, "scsi: area larger than a task holds");
  assert(load<u8>(rec(t), AT_BUFFER_COUNT) == 0, "scsi: area wanted twice");
  store<u8>(rec(t), <u8>bufferClass, AT_BUFFER_CLASS);
  store<u8>(rec(t), <u8>count, AT_BUFFER_WANTED);
}

export function scsiTaskAreaClass(t: u32): u32 { return load<u8>(rec(t), AT_BUFFER_CLASS); }
export function scsiTaskAreaWanted(t: u32): u32 { return load<u8>(rec(t), AT_BUFFER_WANTED); }
export function scsiTaskAreaReady(t: u32): bool { return load<u8>(rec(t), AT_BUFFER_COUNT) == load<u8>(rec(t), AT_BUFFER_WANTED); }

/**
 * Takes buffers until the area is whole. False when its pool ran dry (or the SCSI layer holds its share of large
 * buffers): the task `waiter` is woken by the next release, and the buffers taken so far stay with the record.
 */
export function scsiTaskAreaFill(t: u32, waiter: u32): bool {
  const r = rec(t);
  const bufferClass = <u32>load<u8>(r, AT_BUFFER_CLASS);
  const pool = bufferPool(bufferClass);
  let count = <u32>load<u8>(r, AT_BUFFER_COUNT);
  const wanted = <u32>load<u8>(r, AT_BUFFER_WANTED);
  for (let i: u32 = count; i < wanted; i++) {
    if (bufferClass == BUFFER_CLASS_LARGE && largeHeldCount >= largeHeldMax) return false; // woken by our releases
    const index = pool.acquireOrWait(waiter);
    if (index == POOL_NONE) return false;
    store<u16>(r + AT_BUFFERS + <usize>count * 2, <u16>index);
    count += 1;
    store<u8>(r, <u8>count, AT_BUFFER_COUNT);
    if (bufferClass == BUFFER_CLASS_LARGE) largeHeldCount += 1;
  }
  return true;
}

/** Releases the area's buffers and both SGLs; true if anything was released. */
function scsiTaskAreaRelease(t: u32): bool {
  const r = rec(t);
  let released = false;
  const sgl = scsiTaskSgl(t);
  if (sgl != SGL_NONE) { sgls().release(sgl); released = true; }
  const ioSgl = scsiTaskIoSgl(t);
  if (ioSgl != SGL_NONE) { sgls().release(ioSgl); released = true; }
  store<u16>(r, SGL_FIELD_NONE, AT_SGL);
  store<u16>(r, SGL_FIELD_NONE, AT_IO_SGL);
  const count = <u32>load<u8>(r, AT_BUFFER_COUNT);
  if (count == 0) return released;
  const bufferClass = <u32>load<u8>(r, AT_BUFFER_CLASS);
  const pool = bufferPool(bufferClass);
  for (let i: u32 = 0; i < count; i++) pool.release(load<u16>(r + AT_BUFFERS + <usize>i * 2));
  if (bufferClass == BUFFER_CLASS_LARGE) {
    assert(largeHeldCount >= count, "scsi: large buffer count");
    largeHeldCount -= count;
  }
  store<u8>(r, 0, AT_BUFFER_COUNT);
  store<u8>(r, 0, AT_BUFFER_WANTED);
  return true;
}

/**
 * Moves the area's buffers from record `from` to record `to` (whose area is empty): one owner at a time, nothing
 * copied (SANITIZE hands its parameter list, the pattern, to the record that runs the operation).
 */
export function scsiTaskAreaGive(from: u32, to: u32): void {
  const source = rec(from);
  const target = rec(to);
  assert(load<u8>(target, AT_BUFFER_COUNT) == 0 && load<u8>(target, AT_BUFFER_WANTED) == 0, "scsi: area given to a record that has one");
  assert(load<u8>(source, AT_BUFFER_COUNT) == load<u8>(source, AT_BUFFER_WANTED), "scsi: area given before it is whole");
  memory.copy(target + AT_BUFFER_CLASS, source + AT_BUFFER_CLASS, 3); // bufferClass, bufferCount, bufferWanted
  memory.copy(target + AT_BUFFERS, source + AT_BUFFERS, SCSI_TASK_BUFFERS_MAX * 2);
  store<u8>(source, 0, AT_BUFFER_COUNT);
  store<u8>(source, 0, AT_BUFFER_WANTED);
}

/** The address of byte `offsetBytes` of the area (contiguous up to the end of its buffer). */
export function scsiTaskAreaAddress(t: u32, offsetBytes: u32): usize {
  const r = rec(t);
  const slotBytes = bufferPool(<u32>load<u8>(r, AT_BUFFER_CLASS)).slotBytes;
  const buffer = offsetBytes / slotBytes;
  assert(buffer < <u32>load<u8>(r, AT_BUFFER_COUNT), "scsi: area offset past its buffers");
  return bufferPool(<u32>load<u8>(r, AT_BUFFER_CLASS)).address(load<u16>(r + AT_BUFFERS + <usize>buffer * 2)) + <usize>(offsetBytes % slotBytes);
}

/** Bytes from `offsetBytes` to the end of the buffer holding it. */
export function scsiTaskAreaRunBytes(t: u32, offsetBytes: u32): u32 {
  const slotBytes = bufferPool(<u32>load<u8>(rec(t), AT_BUFFER_CLASS)).slotBytes;
  return slotBytes - offsetBytes % slotBytes;
}

/** Bytes the area holds (whole buffers). */
export function scsiTaskAreaBytes(t: u32): u32 {
  return <u32>load<u8>(rec(t), AT_BUFFER_COUNT) * bufferPool(<u32>load<u8>(rec(t), AT_BUFFER_CLASS)).slotBytes;
}

/** A new SGL over area bytes [offsetBytes, offsetBytes + lengthBytes); SGL_NONE when no SGL block is free. */
export function scsiTaskAreaSgl(t: u32, offsetBytes: u32, lengthBytes: u32): u32 {
  assert(lengthBytes > 0 && offsetBytes + lengthBytes <= scsiTaskAreaBytes(t), "scsi: SGL past the area");
  const sgl = sgls().create();
  if (sgl == SGL_NONE) return SGL_NONE;
  let offset = offsetBytes;
  const end = offsetBytes + lengthBytes;
  // Bound: one segment per buffer of the area.
  for (let i: u32 = 0; i < SCSI_TASK_BUFFERS_MAX && offset < end; i++) {
    const run = min(scsiTaskAreaRunBytes(t, offset), end - offset);
    if (!sgls().append(sgl, <u64>scsiTaskAreaAddress(t, offset), run)) {
      sgls().release(sgl);
      return SGL_NONE;
    }
    offset += run;
  }
  assert(offset == end, "scsi: SGL short of its length");
  sgls().check(sgl);
  return sgl;
}

/** A new SGL of `lengthBytes` that reads the area's first buffer again and again (WRITE SAME); SGL_NONE if none free. */
export function scsiTaskRepeatSgl(t: u32, lengthBytes: u32): u32 {
  const slotBytes = bufferPool(<u32>load<u8>(rec(t), AT_BUFFER_CLASS)).slotBytes;
  assert(lengthBytes > 0 && lengthBytes <= slotBytes * SCSI_TASK_BUFFERS_MAX, "scsi: repeat SGL too long");
  const sgl = sgls().create();
  if (sgl == SGL_NONE) return SGL_NONE;
  const address = <u64>scsiTaskAreaAddress(t, 0);
  let remaining = lengthBytes;
  for (let i: u32 = 0; i < SCSI_TASK_BUFFERS_MAX && remaining > 0; i++) {
    const run = min(slotBytes, remaining);
    if (!sgls().append(sgl, address, run)) {
      sgls().release(sgl);
      return SGL_NONE;
    }
    remaining -= run;
  }
  assert(remaining == 0);
  sgls().check(sgl);
  return sgl;
}

/** Zeroes area bytes [offsetBytes, offsetBytes + lengthBytes). */
export function scsiTaskAreaZero(t: u32, offsetBytes: u32, lengthBytes: u32): void {
  let offset = offsetBytes;
  const end = offsetBytes + lengthBytes;
  for (let i: u32 = 0; i < SCSI_TASK_BUFFERS_MAX && offset < end; i++) {
    const run = min(scsiTaskAreaRunBytes(t, offset), end - offset);
    memory.fill(scsiTaskAreaAddress(t, offset), 0, run);
    offset += run;
  }
}

export const AREA_EQUAL: u32 = 0xffff_ffff;

/**
 * Compares area bytes [a, a + n) with [b, b + n); AREA_EQUAL, or the index (from a and b) of the first byte that
 * differs. Runs stay inside one buffer on each side.
 */
export function scsiTaskAreaCompare(t: u32, a: u32, b: u32, lengthBytes: u32): u32 {
  let done: u32 = 0;
  // Bound: every pass consumes at least one byte, and passes end at a buffer edge of either side.
  for (let pass: u32 = 0; pass < 2 * SCSI_TASK_BUFFERS_MAX + 2 && done < lengthBytes; pass++) {
    const run = min(min(scsiTaskAreaRunBytes(t, a + done), scsiTaskAreaRunBytes(t, b + done)), lengthBytes - done);
    const at = memoryFirstDifference(scsiTaskAreaAddress(t, a + done), scsiTaskAreaAddress(t, b + done), run);
    if (at != AREA_EQUAL) return done + at;
    done += run;
  }
  assert(done == lengthBytes, "scsi: compare did not finish");
  return AREA_EQUAL;
}

/** ORs area bytes [b, b + n) into [a, a + n) (ORWRITE). Runs stay inside one buffer on each side. */
export function scsiTaskAreaOr(t: u32, a: u32, b: u32, lengthBytes: u32): void {
  let done: u32 = 0;
  // Bound: every pass consumes at least one byte, and passes end at a buffer edge of either side.
  for (let pass: u32 = 0; pass < 2 * SCSI_TASK_BUFFERS_MAX + 2 && done < lengthBytes; pass++) {
    const run = min(min(scsiTaskAreaRunBytes(t, a + done), scsiTaskAreaRunBytes(t, b + done)), lengthBytes - done);
    const target = scsiTaskAreaAddress(t, a + done);
    const source = scsiTaskAreaAddress(t, b + done);
    let i: u32 = 0;
    for (; i + 8 <= run; i += 8) store<u64>(target + i, load<u64>(target + i) | load<u64>(source + i));
    for (; i < run; i++) store<u8>(target + i, load<u8>(target + i) | load<u8>(source + i));
    done += run;
  }
  assert(done == lengthBytes, "scsi: OR did not finish");
}

/** Compares `block` (one block at area offset `blockOffset`) with each of `count` blocks from `offset`. */
export function scsiTaskAreaCompareRepeated(t: u32, blockOffset: u32, blockBytes: u32, offset: u32, count: u32): u32 {
  for (let i: u32 = 0; i < count; i++) {
    const at = scsiTaskAreaCompare(t, blockOffset, offset + i * blockBytes, blockBytes);
    if (at != AREA_EQUAL) return i * blockBytes + at;
  }
  return AREA_EQUAL;
}

function memoryFirstDifference(a: usize, b: usize, lengthBytes: u32): u32 {
  let i: u32 = 0;
  // Eight bytes at a time, then the rest one by one.
  while (i + 8 <= lengthBytes && load<u64>(a + i) == load<u64>(b + i)) i += 8;
  for (; i < lengthBytes; i++) if (load<u8>(a + i) != load<u8>(b + i)) return i;
  return AREA_EQUAL;
}

/** Copies `lengthBytes` from `source` into area bytes from `offsetBytes` (the probe and WRITE SAME use it). */
export function scsiTaskAreaCopyIn(t: u32, offsetBytes: u32, source: usize, lengthBytes: u32): void {
  let done: u32 = 0;
  for (let i: u32 = 0; i < SCSI_TASK_BUFFERS_MAX + 1 && done < lengthBytes; i++) {
    const run = min(scsiTaskAreaRunBytes(t, offsetBytes + done), lengthBytes - done);
    memory.copy(scsiTaskAreaAddress(t, offsetBytes + done), source + done, run);
    done += run;
  }
  assert(done == lengthBytes);
}

/** The SCSI layer's large buffers in use, for the stats and tests. */
export function scsiLargeBuffersHeld(): u32 { return largeHeldCount; }

/** Ends the command with CHECK CONDITION and fixed-format sense (sense.ts); the target then completes it. */
export function scsiTaskCheck(t: u32, senseKey: u32, ascAscq: u32, field: u32 = FIELD_NONE,
  information: u64 = INFORMATION_NONE): void {
  scsiTaskSetStatus(t, SAM_STATUS_CHECK_CONDITION);
  scsiTaskSetSenseLength(t, senseFixed(scsiTaskSense(t), senseKey, ascAscq, field, information));
}
