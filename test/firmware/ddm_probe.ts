// Test probes for the DDMs (test build only; harness.ts re-exports this file and calls ddmProbeBoot at boot).
// A requester task sends BlockIo to a controller's task and logs every BlockIoDone it gets back, so tests can drive
// the virtio-scsi DDM directly (without the RTA) and read its disks, state and counters.
// Buffers and SGLs come from the harness's own exports (testPoolAcquire, testSglCreate, testSglAppend, …).
import { DiskInfo } from "../../assembly/ddm/block";
import { ddmController, ddmControllerCount, ddmControllerKind, ddmControllerTask, ddmDisk, ddmDiskCount, ddmNvmeController } from "../../assembly/ddm/registry";
import { nvmeStatGet } from "../../assembly/ddm/nvme/stats";
import { vscsiStatGet } from "../../assembly/ddm/virtio_scsi/stats";
import { Msg, MsgKind } from "../../assembly/kernel/msg";
import { wakeTask } from "../../assembly/kernel/ready";
import { post, taskAdd } from "../../assembly/kernel/scheduler";
import { RunResult, Task } from "../../assembly/kernel/task";

const DONE_LOG_MAX: u32 = 1024;
const REQUESTER_INBOX_DEPTH: u32 = 256;

const doneStatus = new StaticArray<u32>(DONE_LOG_MAX);
const doneSense = new StaticArray<u32>(DONE_LOG_MAX);
const doneBytes = new StaticArray<u32>(DONE_LOG_MAX);
const doneLba = new StaticArray<u64>(DONE_LOG_MAX);
const doneTag = new StaticArray<u64>(DONE_LOG_MAX);
const doneSource = new StaticArray<u32>(DONE_LOG_MAX);
let doneCount: u32 = 0;

class DdmRequesterTask extends Task {
  readonly out: Msg = new Msg();
  paused: bool = false; // while set, completions stay in the inbox (a requester that does not drain)

  constructor() { super("ddmreq", 3, REQUESTER_INBOX_DEPTH); }

  run(): RunResult {
    if (this.paused) return RunResult.Waiting;
    let handled: u32 = 0;
    while (handled < 32 && this.inbox.pop(this.scratch)) {
      handled += 1;
      assert(<i32>this.scratch.kind == MsgKind.BlockIoDone, "ddm probe: unexpected message kind");
      if (doneCount < DONE_LOG_MAX) {
        unchecked(doneStatus[doneCount] = this.scratch.a);
        unchecked(doneSense[doneCount] = this.scratch.b);
        unchecked(doneBytes[doneCount] = this.scratch.c);
        unchecked(doneLba[doneCount] = this.scratch.d);
        unchecked(doneTag[doneCount] = this.scratch.e);
        unchecked(doneSource[doneCount] = this.scratch.source);
      }
      doneCount += 1;
    }
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }
}

let requester: DdmRequesterTask | null = null;

/** Boot hook for harness.ts: adds the requester task. Call after agentsBoot(info), before kernelStart(info). */
export function ddmProbeBoot(): void {
  const task = new DdmRequesterTask();
  taskAdd(task);
  requester = task;
}

// Controllers and disks.
export function testDdmControllerCount(): u32 { return ddmControllerCount(); }
export function testDdmControllerTask(c: u32): u32 { return ddmControllerTask(c); }
export function testDdmState(c: u32): u32 { return <u32>ddmController(c).state; }
export function testDdmDiscovered(c: u32): bool { return ddmController(c).discovered; }
export function testDdmDiskCount(c: u32): u32 { return ddmDiskCount(c); }
export function testDdmDiskBlocks(c: u32, d: u32): u64 { return ddmDisk(c, d).blockCount; }
export function testDdmDiskBlockBytes(c: u32, d: u32): u32 { return ddmDisk(c, d).blockSizeBytes; }
export function testDdmDiskIndex(c: u32, d: u32): u32 { const info: DiskInfo = ddmDisk(c, d); return info.controller << 16 | info.disk; }
export function testDdmVectorBase(c: u32): u32 { return ddmController(c).vectorBase; }
export function testDdmQueueSize(c: u32): u32 { return ddmController(c).vq.size; }
export function testDdmSegmentsMax(c: u32): u32 { return ddmController(c).segmentsMax; }
export function testDdmTransferBytesMax(c: u32): u32 { return ddmController(c).transferBytesMax; }

// Counters (VscsiStat order) and what the controller holds right now.
export function testDdmStat(c: u32, which: u32): u64 { return vscsiStatGet(ddmController(c).stats, which); }
export function testDdmInFlight(c: u32): u32 { return ddmController(c).inFlightCount; }
export function testDdmQueued(c: u32): u32 { return ddmController(c).queue.count; }
export function testDdmRequestsFree(c: u32): u32 { return ddmController(c).pool.freeCount; }
export function testDdmDescriptorsFree(c: u32): u32 { return ddmController(c).vq.freeCount; }

// NVMe controllers (assembly/ddm/nvme/controller.ts): kind 1 in testDdmKind.
export function testDdmKind(c: u32): u32 { return <u32>ddmControllerKind(c); }
export function testNvmeState(c: u32): u32 { return <u32>ddmNvmeController(c).state; }
export function testNvmeDiscovered(c: u32): bool { return ddmNvmeController(c).discovered; }
export function testNvmeStat(c: u32, which: u32): u64 { return nvmeStatGet(ddmNvmeController(c).stats, which); }
export function testNvmeInFlight(c: u32): u32 { return ddmNvmeController(c).inFlightCount; }
export function testNvmeQueued(c: u32): u32 { return ddmNvmeController(c).queue.count; }
export function testNvmeRequestsFree(c: u32): u32 { return ddmNvmeController(c).pool.freeCount; }
export function testNvmeTransferBytesMax(c: u32): u32 { return ddmNvmeController(c).transferBytesMax; }
export function testNvmeSglSupported(c: u32): bool { return ddmNvmeController(c).sglSupported; }
export function testNvmeIoQueueSize(c: u32): u32 { return ddmNvmeController(c).io.size; }
export function testNvmeVectorBase(c: u32): u32 { return ddmNvmeController(c).vectorBase; }

/** Sends BlockIo{op | disk << 8, blockCount, sgl, lba, tag} from the requester task; false if the inbox is full. */
export function testDdmSubmit(c: u32, op: u32, disk: u32, lba: u64, blockCount: u32, sgl: u32, tag: u32): bool {
  const task = requester!;
  const msg = task.out.set(MsgKind.BlockIo, task.index, op | (disk << 8), blockCount);
  msg.c = sgl;
  msg.d = lba;
  msg.e = <u64>tag;
  return post(ddmControllerTask(c), msg);
}

/** Stops (true) or resumes the requester draining its inbox. */
export function testDdmRequesterPause(paused: bool): void {
  requester!.paused = paused;
  if (!paused) wakeTask(requester!.index);
}
export function testDdmRequesterTask(): u32 { return requester!.index; }

// The completion log.
export function testDdmDoneCount(): u32 { return doneCount; }
export function testDdmDoneClear(): void { doneCount = 0; }
export function testDdmDoneStatus(i: u32): u32 { assert(i < min(doneCount, DONE_LOG_MAX)); return unchecked(doneStatus[i]); }
export function testDdmDoneSense(i: u32): u32 { assert(i < min(doneCount, DONE_LOG_MAX)); return unchecked(doneSense[i]); }
export function testDdmDoneBytes(i: u32): u32 { assert(i < min(doneCount, DONE_LOG_MAX)); return unchecked(doneBytes[i]); }
export function testDdmDoneLba(i: u32): u64 { assert(i < min(doneCount, DONE_LOG_MAX)); return unchecked(doneLba[i]); }
export function testDdmDoneTag(i: u32): u32 { assert(i < min(doneCount, DONE_LOG_MAX)); return <u32>unchecked(doneTag[i]); }
export function testDdmDoneSource(i: u32): u32 { assert(i < min(doneCount, DONE_LOG_MAX)); return unchecked(doneSource[i]); }
