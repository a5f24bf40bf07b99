// The SCSI target in the test build, driven by a fake transport: the probe task stands where iSCSI will, allocates
// ScsiTask records, submits a CDB with a given nexus, LUN, direction and expected length, answers ScsiDataOut with
// bytes the test staged (or holds it, so a test can abort a task waiting for data), and records ScsiDone and
// ScsiTmfDone. The test reads status, sense, residual and the Data-In (through the task's SGL) and then releases the
// record, as a transport does once its Data-In has left.
import { rodTokensLive } from "../../assembly/scsi/rod_token";
import { BUFFER_CLASS_LARGE } from "../../assembly/config";
import { bufferPool, sgls } from "../../assembly/kernel/buffers";
import { Msg, MsgKind } from "../../assembly/kernel/msg";
import { POOL_NONE } from "../../assembly/kernel/pool";
import { taskAdd } from "../../assembly/kernel/scheduler";
import { SGL_NONE } from "../../assembly/kernel/sgl";
import { RunResult, Task } from "../../assembly/kernel/task";
import { ScsiDirection, SCSI_TASK_NONE } from "../../assembly/scsi/interface";
import { scsiBoot, scsiBooted, scsiNexusGone, scsiNexusIdentify, scsiTarget, scsiTargetTask } from "../../assembly/scsi/target";
import { scsiTaskDataReady, scsiTaskResidual, scsiTaskSenseBytes, scsiTaskSubmit, scsiTmfSubmit } from "../../assembly/scsi/transport";
import {
  scsiLargeBuffersHeld, scsiTaskAborted, scsiTaskAbortReported, scsiTaskAlloc, scsiTaskDataInBytes, scsiTaskRelease, scsiTaskResidualBytes,
  scsiTaskResidualKind, scsiTaskSense, scsiTaskSgl, scsiTaskStatus, scsiTaskTmfResponse, scsiTasksFree, SCSI_TASKS_MAX,
} from "../../assembly/scsi/tasks";

const STAGE_BUFFERS_MAX: u32 = 32; // 2 MiB of staged Data-Out
const ASKED_NONE: u32 = 0xffff_ffff;
const PROBE_FLAG_HOLD: u32 = 1; // keep ScsiDataOut until the test sends the data
const PROBE_FLAG_DONE: u32 = 2; // ScsiDone or ScsiTmfDone arrived
const PROBE_FLAG_STAGED: u32 = 4; // the stage belongs to this task

const cdbStage: usize = memory.data(32);
const stageBuffers = new StaticArray<u32>(STAGE_BUFFERS_MAX);
let stageCount: u32 = 0;
let stageBytes: u32 = 0;
const asked = new StaticArray<u32>(SCSI_TASKS_MAX);
const probeFlags = new StaticArray<u32>(SCSI_TASKS_MAX);
let doneCount: u32 = 0;
let dataOutCount: u32 = 0;

class ScsiProbeTask extends Task {
  readonly out: Msg = new Msg();

  constructor() { super("scsiprobe", 4, SCSI_TASKS_MAX + 16); }

  run(): RunResult {
    let handled: u32 = 0;
    while (handled < 32 && this.inbox.pop(this.scratch)) {
      handled += 1;
      const t = this.scratch.a;
      assert(t < SCSI_TASKS_MAX, "scsi probe: task index out of range");
      switch (<i32>this.scratch.kind) {
        case MsgKind.ScsiDataOut: {
          unchecked(asked[t] = this.scratch.b);
          dataOutCount += 1;
          if ((unchecked(probeFlags[t]) & PROBE_FLAG_HOLD) == 0) this.sendData(t, 0);
          break;
        }
        case MsgKind.ScsiDone: case MsgKind.ScsiTmfDone: {
          assert((unchecked(probeFlags[t]) & PROBE_FLAG_DONE) == 0, "scsi probe: a task answered twice");
          unchecked(probeFlags[t] = unchecked(probeFlags[t]) | PROBE_FLAG_DONE);
          doneCount += 1;
          break;
        }
        default: assert(false, "scsi probe: unexpected message kind");
      }
    }
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  /** Copies the stage (if it is this task's) into the task's SGL, zero past it, and posts ScsiDataReady. */
  sendData(t: u32, failed: u32): void {
    const bytes = unchecked(asked[t]);
    assert(bytes != ASKED_NONE, "scsi probe: no Data-Out was asked for");
    const sgl = scsiTaskSgl(t);
    if (failed == 0 && sgl != SGL_NONE) {
      assert(sgls().totalBytes(sgl) == <u64>bytes, "scsi probe: the SGL does not cover the bytes asked for");
      const staged = (unchecked(probeFlags[t]) & PROBE_FLAG_STAGED) != 0;
      let offset: u32 = 0;
      const count = sgls().segmentCount(sgl);
      for (let i: u32 = 0; i < count; i++) {
        const segment = sgls().segment(sgl, i);
        const address = <usize>load<u64>(segment, 0);
        const length = load<u32>(segment, 8);
        for (let b: u32 = 0; b < length; b++) {
          store<u8>(address + b, staged && offset + b < stageBytes ? stageByte(offset + b) : 0);
        }
        offset += length;
      }
      if (staged) stageRelease();
    }
    unchecked(probeFlags[t] = unchecked(probeFlags[t]) & ~PROBE_FLAG_HOLD);
    scsiTaskDataReady(t, this.index, failed != 0);
  }
}

function stageByte(offset: u32): u8 {
  const slotBytes = bufferPool(BUFFER_CLASS_LARGE).slotBytes;
  const buffer = offset / slotBytes;
  assert(buffer < stageCount);
  return load<u8>(bufferPool(BUFFER_CLASS_LARGE).address(unchecked(stageBuffers[buffer])) + (offset % slotBytes));
}

function stageRelease(): void {
  for (let i: u32 = 0; i < stageCount; i++) bufferPool(BUFFER_CLASS_LARGE).release(unchecked(stageBuffers[i]));
  stageCount = 0;
  stageBytes = 0;
  for (let t: u32 = 0; t < SCSI_TASKS_MAX; t++) unchecked(probeFlags[t] = unchecked(probeFlags[t]) & ~PROBE_FLAG_STAGED);
}

let probe: ScsiProbeTask | null = null;

/** Boot hook for harness.ts (host processor, after the CTA exists): the SCSI target and the fake transport. */
export function scsiProbeBoot(ctaTask: u32): void {
  if (!scsiBooted()) scsiBoot(ctaTask);
  const task = new ScsiProbeTask();
  taskAdd(task);
  probe = task;
}

/** Where the test writes the next CDB (32 bytes). */
export function testScsiCdbAddress(): usize { return cdbStage; }

/** Takes large buffers for `bytes` of Data-Out (the next submitted task's); false when the pool is short. */
export function testScsiStage(bytes: u32): bool {
  stageRelease();
  const slotBytes = bufferPool(BUFFER_CLASS_LARGE).slotBytes;
  const count = (bytes + slotBytes - 1) / slotBytes;
  if (count > STAGE_BUFFERS_MAX) return false;
  for (let i: u32 = 0; i < count; i++) {
    const index = bufferPool(BUFFER_CLASS_LARGE).acquire();
    if (index == POOL_NONE) { stageRelease(); return false; }
    unchecked(stageBuffers[i] = index);
    stageCount = i + 1;
  }
  stageBytes = bytes;
  return true;
}

/** The address of staged buffer `i` (64 KiB each). */
export function testScsiStageAddress(i: u32): usize {
  assert(i < stageCount);
  return bufferPool(BUFFER_CLASS_LARGE).address(unchecked(stageBuffers[i]));
}

/**
 * Submits the staged CDB as a new command; answers the task index, or SCSI_TASK_NONE (TASK SET FULL). With `hold`,
 * the probe keeps the ScsiDataOut until testScsiDataOutSend.
 */
export function testScsiSubmit(nexus: u32, lun: u32, direction: u32, expectedBytes: u32, cdbLength: u32, tag: u32, hold: bool): u32 {
  const t = scsiTaskAlloc();
  if (t == SCSI_TASK_NONE) return t;
  unchecked(asked[t] = ASKED_NONE);
  unchecked(probeFlags[t] = (hold ? PROBE_FLAG_HOLD : 0) | (stageCount > 0 ? PROBE_FLAG_STAGED : 0));
  scsiTaskSubmit(t, probe!.index, nexus, lun, cdbStage, cdbLength, expectedBytes, <ScsiDirection>direction, tag, 1);
  return t;
}

/** Sends the held Data-Out of `t` (or, with `failed`, says it cannot come). */
export function testScsiDataOutSend(t: u32, failed: bool): void { probe!.sendData(t, failed ? 1 : 0); }

/** Bytes of Data-Out the target asked for, or 0xFFFF_FFFF if it did not. */
export function testScsiDataOutAsked(t: u32): u32 { assert(t < SCSI_TASKS_MAX); return unchecked(asked[t]); }

export function testScsiDone(t: u32): bool { assert(t < SCSI_TASKS_MAX); return (unchecked(probeFlags[t]) & PROBE_FLAG_DONE) != 0; }
export function testScsiStatus(t: u32): u32 { return scsiTaskStatus(t); }
export function testScsiSenseAddress(t: u32): usize { return scsiTaskSense(t); }
export function testScsiSenseLength(t: u32): u32 { return scsiTaskSenseBytes(t); }
/** The residual as iSCSI carries it: positive underflow, negative overflow. */
export function testScsiResidual(t: u32): i64 { return scsiTaskResidual(t); }
export function testScsiDataInBytes(t: u32): u32 { return scsiTaskDataInBytes(t); }
export function testScsiSgl(t: u32): u32 { return scsiTaskSgl(t); }
export function testScsiResidualKind(t: u32): u32 { return <u32>scsiTaskResidualKind(t); }
export function testScsiResidualBytes(t: u32): u32 { return scsiTaskResidualBytes(t); }
export function testScsiAborted(t: u32): bool { return scsiTaskAborted(t); }
export function testScsiAbortReported(t: u32): bool { return scsiTaskAbortReported(t); }
export function testScsiTmfResponse(t: u32): u32 { return scsiTaskTmfResponse(t); }

/** Releases a record after its ScsiDone or ScsiTmfDone, as a transport does. */
export function testScsiRelease(t: u32): void {
  assert(t < SCSI_TASKS_MAX);
  unchecked(probeFlags[t] = 0);
  unchecked(asked[t] = ASKED_NONE);
  scsiTaskRelease(t);
}

/** Submits a TMF (interface.ts TmfFunction); answers its record, or SCSI_TASK_NONE. */
export function testScsiTmf(nexus: u32, lun: u32, fn: u32, referencedTag: u32): u32 {
  const t = scsiTaskAlloc();
  if (t == SCSI_TASK_NONE) return t;
  unchecked(probeFlags[t] = 0);
  scsiTmfSubmit(t, probe!.index, nexus, lun, fn, referencedTag);
  return t;
}

export function testScsiNexusGone(nexus: u32): void { scsiNexusGone(nexus); }
/** The nexus id of the initiator port named by the first `nameBytes` staged bytes (testScsiStage), at `targetPort`. */
export function testScsiNexusIdentify(nameBytes: u32, targetPort: u32): u32 {
  return scsiNexusIdentify(testScsiStageAddress(0), nameBytes, targetPort);
}
export function testScsiTasksFree(): u32 { return scsiTasksFree(); }
export function testScsiDoneCount(): u32 { return doneCount; }
export function testScsiDataOutCount(): u32 { return dataOutCount; }
export function testScsiServicesActive(): u32 { return scsiTarget().servicesActive(); }
export function testRodTokensLive(): u32 { return rodTokensLive(); }
export function testScsiParked(ring: u32): u32 { return scsiTarget().parkedCount(ring); }
export function testScsiLargeBuffersHeld(): u32 { return scsiLargeBuffersHeld(); }
export function testScsiStaleDataReady(): u64 { return scsiTarget().staleDataReadyCount; }
export function testScsiAbortedCount(): u64 { return scsiTarget().abortedCount; }
export function testScsiTargetTask(): u32 { return scsiTargetTask(); }
