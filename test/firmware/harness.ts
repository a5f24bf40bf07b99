// The test build: the real kernel booted with four probe tasks, plus exports that let vitest drive and observe it.
// The board ABI is unchanged (same imports, same abiVersion/boot/irq/run/heapTop); the test* exports are extra.
// Probes: index 0..3 with priorities 3, 1, 2, 5 and 8-deep inboxes; vector PROBE_VECTOR_BASE + v goes to probe v.
// After them come the role's agents (RTA, DDMs; CTA, UMA and XOR on the host) and, on the host, a test client and an
// XOR requester (tools/fuzz/firmware/xor_requester.ts).
import { ABI_VERSION, BUFFER_CLASS_COUNT } from "../../assembly/config";
import { buffersAllFree, bufferPool, buffersReserved, sgls } from "../../assembly/kernel/buffers";
import { BootStatus, healthCheckCount, kernelBoot, kernelStart } from "../../assembly/kernel/boot";
import { heapTop as heapProbe } from "../../assembly/kernel/carve";
import { bootInfoEcamBase } from "../../assembly/board/boot_info";
import { busRead32 } from "../../assembly/board/bus";
import { clockNowNs, randomFill } from "../../assembly/board/wasi";
import { Msg, MsgKind } from "../../assembly/kernel/msg";
import { POOL_NONE } from "../../assembly/kernel/pool";
import {
  irqLatch, irqRoute, irqSpurious, post, schedulerRun, taskAdd, taskAt, timerCancel, timersArmed, timerStart, timerStartParked, timerWakeBy,
} from "../../assembly/kernel/scheduler";
import { SGL_NONE } from "../../assembly/kernel/sgl";
import { agentCta, agentRta, agentsBoot, agentsStart, agentUma } from "../../assembly/agents";
import { volumeAt, volumesCount } from "../../assembly/volumes/volume";
import { frames } from "../../assembly/rta/links";
import { ClientTask } from "./client";
import { ddmProbeBoot } from "./ddm_probe";
export * from "./ddm_probe";
import { scsiProbeBoot } from "./scsi_probe";
export * from "./scsi_probe";
export * from "./iscsi_probe";
export * from "./cluster_probe";
import { xorRequesterBoot } from "../../tools/fuzz/firmware/xor_requester";
export * from "../../tools/fuzz/firmware/xor_requester";
import { RunResult, Task } from "../../assembly/kernel/task";

export const PROBE_COUNT: u32 = 4;
export const PROBE_VECTOR_BASE: u32 = 56; // clear of the vectors the agents allocate from 0
const PROBE_INBOX_DEPTH: u32 = 8;
const PROBE_BUDGET_NS: u64 = 100_000;
const LOG_MAX: u32 = 4096;

// What a probe does with a message of each kind (the test chooses the kind).
export enum ProbeOp {
  Log = MsgKind.User, // log (probe << 16 | a)
  Spin = MsgKind.User + 1, // read the clock until a ns have passed: a task that does not yield
  Forward = MsgKind.User + 2, // post Log{a} to probe b
  Acquire = MsgKind.User + 3, // take a buffer of class a and keep it; wait while the pool is empty; log (probe << 16 | index)
  Panic = MsgKind.User + 4, // fail an assertion
  Cycle = MsgKind.User + 5, // take a buffer of class a, put an SGL over it, send both to probe b (CycleDone)
  CycleDone = MsgKind.User + 6, // check and release what Cycle sent: c = buffer index, d = SGL, a = class
  Random = MsgKind.User + 7, // draw 4 random bytes from the board; log their low 12 bits
  BusRead = MsgKind.User + 8, // read 32 bits of PCI config space at ECAM offset a; log the low 12 bits
}

const LOG_TIMER: u32 = 0xf000; // log tag bits for a Timer message
const LOG_IRQ: u32 = 0xe000; // log tag bits for an Irq message

const log = new StaticArray<u32>(LOG_MAX);
let logCount: u32 = 0;
let cyclesDone: u32 = 0;

function logAppend(value: u32): void {
  if (logCount < LOG_MAX) unchecked(log[logCount] = value);
  logCount += 1;
}

class ProbeTask extends Task {
  pendingClass: u32 = POOL_NONE; // an Acquire waiting for its pool
  readonly out: Msg = new Msg();
  readonly randomBytes: usize = memory.data(4);

  constructor(name: string, priority: u32) { super(name, priority, PROBE_INBOX_DEPTH, PROBE_BUDGET_NS); }

  run(): RunResult {
    if (this.pendingClass != POOL_NONE && !this.acquire(this.pendingClass)) return RunResult.Waiting;
    let handled: u32 = 0;
    while (handled < 4 && this.inbox.pop(this.scratch)) {
      handled += 1;
      if (!this.dispatch(this.scratch)) return RunResult.Waiting;
    }
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }

  // False when the task must wait for a buffer.
  private dispatch(msg: Msg): bool {
    const self = this.index << 16;
    switch (<i32>msg.kind) {
      case MsgKind.Timer: logAppend(self | LOG_TIMER | msg.b); break;
      case MsgKind.Irq: logAppend(self | LOG_IRQ | msg.a); break;
      case ProbeOp.Log: logAppend(self | msg.a); break;
      case ProbeOp.Spin: {
        const start = clockNowNs();
        while (clockNowNs() - start < <u64>msg.a) { /* spin */ }
        logAppend(self | 0xd000);
        break;
      }
      case ProbeOp.Forward: assert(post(msg.b, this.out.set(ProbeOp.Log, this.index, msg.a, 0)), "forward: inbox full"); break;
      case ProbeOp.Acquire: return this.acquire(msg.a);
      case ProbeOp.Panic: assert(false, "probe asked to panic"); break;
      case ProbeOp.Cycle: this.cycle(msg); break;
      case ProbeOp.Random: {
        randomFill(this.randomBytes, 4);
        logAppend(self | (load<u32>(this.randomBytes) & 0xfff));
        break;
      }
      case ProbeOp.BusRead: logAppend(self | (busRead32(bootInfoEcamBase(bootInfo) + msg.a) & 0xfff)); break;
      case ProbeOp.CycleDone: this.cycleDone(msg); break;
      default: assert(false, "probe: unexpected message kind");
    }
    return true;
  }

  private acquire(bufferClass: u32): bool {
    const index = bufferPool(bufferClass).acquireOrWait(this.index);
    if (index == POOL_NONE) {
      this.pendingClass = bufferClass;
      return false;
    }
    this.pendingClass = POOL_NONE;
    logAppend((this.index << 16) | index);
    return true;
  }

  private cycle(msg: Msg): void {
    const pool = bufferPool(msg.a);
    const buffer = pool.acquire();
    assert(buffer != POOL_NONE, "cycle: pool empty");
    const sgl = sgls().create();
    assert(sgl != SGL_NONE, "cycle: no SGL block");
    // 1..12 segments over the buffer, so some lists chain a second block.
    const segments: u32 = 1 + (msg.c % 12);
    const address = <u64>pool.address(buffer);
    const segmentBytes = pool.slotBytes / segments;
    for (let i: u32 = 0; i < segments; i++) assert(sgls().append(sgl, address + <u64>(i * segmentBytes), segmentBytes));
    sgls().check(sgl);
    this.out.set(ProbeOp.CycleDone, this.index, msg.a, 0);
    this.out.c = buffer;
    this.out.d = sgl;
    assert(post(msg.b, this.out), "cycle: inbox full");
  }

  private cycleDone(msg: Msg): void {
    const sgl = <u32>msg.d;
    sgls().check(sgl);
    assert(sgls().totalBytes(sgl) <= <u64>bufferPool(msg.a).slotBytes);
    sgls().release(sgl);
    bufferPool(msg.a).release(msg.c);
    cyclesDone += 1;
  }
}

const probes = new StaticArray<ProbeTask | null>(PROBE_COUNT);
const injected = new Msg();
let bootInfo: usize = 0;

export function abiVersion(): u32 { return ABI_VERSION; }

export function boot(info: usize): u32 {
  const status = kernelBoot(info);
  if (status != BootStatus.Ok) return status;
  bootInfo = info;
  const priorities: StaticArray<u32> = [3, 1, 2, 5];
  const names: StaticArray<string> = ["probe0", "probe1", "probe2", "probe3"];
  for (let i: u32 = 0; i < PROBE_COUNT; i++) {
    const probe = new ProbeTask(unchecked(names[i]), unchecked(priorities[i]));
    unchecked(probes[i] = probe);
    taskAdd(probe);
    irqRoute(PROBE_VECTOR_BASE + i, probe.index);
  }
  agentsBoot(info);
  ddmProbeBoot();
  xorRequesterBoot();
  const cta = agentCta();
  if (cta != null) {
    const c = new ClientTask();
    taskAdd(c);
    c.ctaTask = cta.index;
    client = c;
    scsiProbeBoot(cta.index);
  }
  const started = kernelStart(info);
  agentsStart();
  return started;
}

// The test client (host processor only).
let client: ClientTask | null = null;
export function testClientPrepare(bufferClass: u32, count: u32): u32 { return client!.prepare(bufferClass, count); }
export function testClientSubmit(r: u32, fn: u32, lun: u32, lba: u64, blockCount: u32): bool { return client!.submit(r, fn, lun, lba, blockCount); }
export function testClientBufferAddress(r: u32, i: u32): usize { return client!.bufferAddress(r, i); }
export function testClientStatus(r: u32): u32 { return unchecked(client!.status[r]); }
export function testClientBytes(r: u32): u32 { return unchecked(client!.bytes[r]); }
export function testClientRelease(r: u32): void { client!.release(r); }
export function testClientDone(): u32 { return client!.doneCount; }
export function testUmaReady(): bool { const uma = agentUma(); return uma != null && uma.ready; }
export function testVolumeCount(): u32 { return volumesCount(); }
export function testVolumeChunksUsed(v: u32): u32 { return volumeAt(v).chunksUsed; }
export function testVolumeState(v: u32): u32 { return <u32>volumeAt(v).state; }
/** The row a RAID-5 rebuild of volume `v` has rebuilt up to (0 when none runs). */
export function testVolumeRebuildRow(v: u32): u64 { return volumeAt(v).rebuildRow; }
export function testCtaActive(): u32 { return agentCta()!.servicesActive(); }
export function testCtaRetransmits(): u64 { return agentCta()!.retransmitCount; }
export function testRtaTransactions(): u32 { return agentRta().store.usedCount; }
export function testFramesFree(): u32 { return frames().freeCount; }
export function testFramesCapacity(): u32 { return frames().capacity; }

export function irq(vector: u32): void { irqLatch(vector); }
export function run(budgetNs: u64): u64 { return schedulerRun(budgetNs); }
export function heapTop(): usize { return heapProbe(); }

// Messages and the log.
export function testPost(task: u32, kind: u32, a: u32, b: u32, c: u32): bool {
  injected.set(kind, 0xffff, a, b);
  injected.c = c;
  return post(task, injected);
}
export function testLogCount(): u32 { return logCount; }
export function testLogAt(index: u32): u32 { assert(index < min(logCount, LOG_MAX)); return unchecked(log[index]); }
export function testLogClear(): void { logCount = 0; }
export function testCyclesDone(): u32 { return cyclesDone; }

// Tasks.
export function testInboxCount(task: u32): u32 { return taskAt(task).inbox.count; }
export function testInboxCapacity(task: u32): u32 { return taskAt(task).inbox.capacity; }
export function testInboxPushFailed(task: u32): u32 { return taskAt(task).inbox.pushFailedCount; }
export function testDispatchCount(task: u32): u64 { return taskAt(task).dispatchCount; }
export function testOverrunCount(task: u32): u32 { return taskAt(task).overrunCount; }
export function testHealthChecks(): u32 { return healthCheckCount(); }

// Pools.
export function testBufferClassCount(): u32 { return BUFFER_CLASS_COUNT; }
export function testPoolCapacity(bufferClass: u32): u32 { return bufferPool(bufferClass).capacity; }
export function testPoolFree(bufferClass: u32): u32 { return bufferPool(bufferClass).freeCount; }
export function testPoolReserved(bufferClass: u32): u32 { return buffersReserved(bufferClass); }
export function testPoolSlotBytes(bufferClass: u32): u32 { return bufferPool(bufferClass).slotBytes; }
export function testPoolAddress(bufferClass: u32, index: u32): usize { return bufferPool(bufferClass).address(index); }
export function testPoolAcquire(bufferClass: u32): u32 { return bufferPool(bufferClass).acquire(); }
export function testPoolRelease(bufferClass: u32, index: u32): void { bufferPool(bufferClass).release(index); }
export function testPoolCheck(bufferClass: u32): void { bufferPool(bufferClass).check(); }
export function testPoolAcquireFailed(bufferClass: u32): u32 { return bufferPool(bufferClass).acquireFailedCount; }
export function testBuffersAllFree(): bool { return buffersAllFree(); }

// Scatter-gather lists.
export function testSglCreate(): u32 { return sgls().create(); }
export function testSglAppend(sgl: u32, address: u64, lengthBytes: u32): bool { return sgls().append(sgl, address, lengthBytes); }
export function testSglSegmentCount(sgl: u32): u32 { return sgls().segmentCount(sgl); }
export function testSglTotalBytes(sgl: u32): u64 { return sgls().totalBytes(sgl); }
export function testSglBlockCount(sgl: u32): u32 { return sgls().blockCount(sgl); }
export function testSglSegmentAddress(sgl: u32, index: u32): u64 { return load<u64>(sgls().segment(sgl, index), 0); }
export function testSglSegmentLength(sgl: u32, index: u32): u32 { return load<u32>(sgls().segment(sgl, index), 8); }
export function testSglCheck(sgl: u32): void { sgls().check(sgl); }
export function testSglRelease(sgl: u32): void { sgls().release(sgl); }
export function testSglBlocksFree(): u32 { return sgls().blocks.freeCount; }
export function testSglBlocksCapacity(): u32 { return sgls().blocks.capacity; }

// Timers and interrupts.
export function testTimerStart(task: u32, delayNs: u64, periodNs: u64, tag: u32): u32 { return timerStart(task, delayNs, periodNs, tag); }
export function testTimerStartParked(task: u32, tag: u32): u32 { return timerStartParked(task, tag); }
export function testTimerWakeBy(id: u32, atNs: u64): void { timerWakeBy(id, atNs); }
export function testTimerCancel(id: u32): bool { return timerCancel(id); }
export function testTimersArmed(): u32 { return timersArmed(); }
export function testIrqSpurious(): u32 { return irqSpurious(); }
