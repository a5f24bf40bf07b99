// The XOR task: RAID parity for the host processor. It takes XorRequest messages (a destination and up to
// XOR_SOURCES_MAX sources in one SGL) and answers each with exactly one XorDone: Ok, Fault (the engine reported an
// error, timed out, or never did the work) or Busy (every request slot is taken). With an XOR engine on the bus
// (docs/hardware.md, "xor-engine"; found by walking the PCI enumeration, as the DDMs find their controllers) it
// writes one descriptor per request into a ring carved at boot, links the queued ones into a chain and starts the
// engine; without one it XORs in a firmware loop, XOR_SOFTWARE_BYTES_PER_RUN at a time.
//
// Nothing the engine says is trusted. A descriptor's status word is read once, at the chain's end, and only for
// descriptors this task submitted; a fault, or a chain that left descriptors untouched, resets the engine, and it
// keeps serving the next requests. An interrupt while no chain runs, and a status the engine wrote into a
// descriptor not submitted, are counted and ignored. A chain that does not end within XOR_CHAIN_TIMEOUT_NS is
// reset and its requests answer Fault.
//
// XorRequest{a: sourceCount | flags << 16, c: SGL, e: tag} from task `source`: segment 0 of the SGL is the
// destination, segments 1..sourceCount the sources, all the same length (a multiple of 8, at most
// XOR_REQUEST_BYTES_MAX), 8-aligned bus addresses in this processor's RAM; the destination equals a source or
// overlaps none. Flag XOR_FLAG_ZERO_CHECK asks whether the result is all zeros. A malformed request is the
// requester's bug: asserted. The SGL stays the requester's. XorDone{a: XorStatus, b: 1 when checked and not all
// zeros, c: the SGL, e: the tag}.
import { bootInfoMsiAddress, bootInfoRamBytes } from "../board/boot_info";
import { busRead32, busWrite32 } from "../board/bus";
import { msixEnable, PCI_BARS, PciFunctionInfo, pciFunctionAt, pciFunctionCount } from "../board/pci";
import { clockNowNs } from "../board/wasi";
import { sgls } from "../kernel/buffers";
import { carve } from "../kernel/carve";
import { line } from "../kernel/console";
import { Msg, MsgKind } from "../kernel/msg";
import { MsgQueue } from "../kernel/queue";
import { post, irqRoute, taskAdd, timerStartParked, timerWakeBy } from "../kernel/scheduler";
import { sglSegmentAddress, sglSegmentLengthBytes } from "../kernel/sgl";
import { RunResult, Task } from "../kernel/task";
import { TIMER_NONE } from "../kernel/timer";
import { vectorAllocate, VECTOR_NONE } from "../kernel/vectors";
import {
  XOR_ADDRESS_ALIGN_BYTES, XOR_CONTROL_XOR, XOR_CONTROL_ZERO_CHECK, XOR_DESC_ALIGN_BYTES, XOR_DESC_BYTES,
  XOR_DESC_STATUS_DONE, XOR_DESC_STATUS_ERROR, XOR_DESC_STATUS_ZERO, XOR_SOURCES_MAX, xorDescSetByteCount,
  xorDescSetControl, xorDescSetDestination, xorDescSetNext, xorDescSetSource, xorDescSetSourceCount,
  xorDescSetStatus, xorDescStatus,
} from "./descriptor";
import {
  XOR_BATCH_MAX, XOR_CHAIN_TIMEOUT_NS, XOR_INBOX_DEPTH, XOR_OUTBOX_DEPTH, XOR_PRIORITY, XOR_REQUEST_BYTES_MAX,
  XOR_REQUESTS_MAX, XOR_RESUBMITS_MAX, XOR_SOFTWARE_BYTES_PER_RUN,
} from "./limits";
import {
  XOR_BAR_REGISTERS, XOR_CTRL, XOR_CTRL_RESET, XOR_CTRL_START, XOR_DESC_BASE_HI, XOR_DESC_BASE_LO, XOR_DEVICE_ID,
  XOR_INT_CAUSE, XOR_STATUS, XOR_STATUS_BUSY, XOR_STATUS_ERROR, XOR_VECTOR_COUNT, XOR_VENDOR_ID,
} from "./registers";
import { xorSoftware } from "./software";

export const XOR_FLAG_ZERO_CHECK: u32 = 1; // XorRequest flags (a >> 16)
const XOR_FLAGS_KNOWN: u32 = XOR_FLAG_ZERO_CHECK;
const ALL_ONES: u32 = 0xffff_ffff; // a register read nothing answered

export enum XorStatus {
  Ok = 0, // the destination holds the XOR of the sources
  Fault = 1, // the engine reported an error, hung, or never did the work: the destination is undefined
  Busy = 2, // every request slot is taken: try again after an earlier request is answered
}

export enum XorMode {
  Software = 0, // no usable engine on the bus: the task XORs in a firmware loop
  Idle = 1, // an engine, no chain running
  Running = 2, // a chain is on the engine: its end, a fault or the timeout ends it
}

enum SlotState {
  Free = 0, // no request; its descriptor's status is 0
  Queued = 1, // accepted, waiting for the engine (or for the software loop)
  Submitted = 2, // its descriptor is in the chain on the engine
}

// One held request and its descriptor.
class XorSlot {
  state: SlotState = SlotState.Free;
  requester: u32 = 0;
  tag: u64 = 0;
  sgl: u32 = 0;
  sourceCount: u32 = 0;
  zeroCheck: bool = false;
  lengthBytes: u32 = 0;
  destination: u64 = 0;
  resubmits: u32 = 0; // times the engine gave it back untouched
  doneBytes: u32 = 0; // software: bytes of the destination written so far
  resultAny: u64 = 0; // software: the OR of the result words so far

  constructor(readonly descriptor: usize, readonly sources: usize) {}
}

/** What the task counts; tests and the stats read them. */
export class XorStats {
  requests: u64 = 0;
  answeredOk: u64 = 0;
  answeredFault: u64 = 0;
  answeredBusy: u64 = 0;
  chains: u64 = 0; // chains started on the engine
  engineErrors: u64 = 0; // chains that ended with STATUS.error
  engineResets: u64 = 0; // resets after boot: errors, untouched descriptors, timeouts
  timeouts: u64 = 0;
  resubmits: u64 = 0; // descriptors the engine left untouched, queued again
  interruptsIgnored: u64 = 0; // interrupts while no chain ran
  completionsUnsubmitted: u64 = 0; // status words the engine wrote into descriptors not submitted
  softwareBytes: u64 = 0; // destination bytes the firmware loop computed
}

export class XorTask extends Task {
  mode: XorMode = XorMode.Software;
  readonly stats: XorStats = new XorStats();
  private registers: u64 = 0; // BAR 0 of the engine
  private readonly slots: StaticArray<XorSlot | null> = new StaticArray<XorSlot | null>(XOR_REQUESTS_MAX);
  private readonly queue: StaticArray<u8> = new StaticArray<u8>(XOR_REQUESTS_MAX); // queued slots, oldest first
  private queueHead: u32 = 0;
  private queueCount: u32 = 0;
  private readonly chain: StaticArray<u8> = new StaticArray<u8>(XOR_REQUESTS_MAX); // submitted slots, in chain order
  private chainCount: u32 = 0;
  private deadlineNs: u64 = 0;
  private timer: u32 = TIMER_NONE;
  private readonly outbox: MsgQueue = new MsgQueue(XOR_OUTBOX_DEPTH);
  private readonly out: Msg = new Msg();
  private readonly retry: Msg = new Msg();

  constructor(private readonly ramBytes: u64) {
    super("xor", XOR_PRIORITY, XOR_INBOX_DEPTH);
    const descriptors = carve(XOR_REQUESTS_MAX * XOR_DESC_BYTES, XOR_DESC_ALIGN_BYTES);
    const sources = carve(XOR_REQUESTS_MAX * XOR_SOURCES_MAX * 8, 8);
    for (let s: u32 = 0; s < XOR_REQUESTS_MAX; s++) {
      unchecked(this.slots[s] = new XorSlot(descriptors + <usize>(s * XOR_DESC_BYTES), sources + <usize>(s * XOR_SOURCES_MAX * 8)));
    }
  }

  /** Boot: drive the engine whose BAR 0 is at `registers`; its vector is already routed here. */
  attach(registers: u64): void {
    this.registers = registers;
    this.mode = XorMode.Idle;
  }

  /** After the seal: the chain timeout's timer, and the engine reset to its power-on state. */
  start(): void {
    this.timer = timerStartParked(this.index, 0);
    assert(this.timer != TIMER_NONE, "xor: no timer");
    if (this.mode != XorMode.Software) busWrite32(this.registers + XOR_CTRL, XOR_CTRL_RESET);
  }

  run(): RunResult {
    this.outboxFlush();
    let handled: u32 = 0;
    while (handled < XOR_BATCH_MAX && this.inbox.pop(this.scratch)) {
      handled += 1;
      this.dispatch(this.scratch);
    }
    let more = false;
    if (this.mode == XorMode.Software) more = this.softwareStep();
    else if (this.mode == XorMode.Idle) this.chainStart();
    if (this.outbox.count > 0) timerWakeBy(this.timer, clockNowNs() + XOR_CHAIN_TIMEOUT_NS / 16); // retry the refused
    return handled > 0 || more ? RunResult.Busy : RunResult.Idle;
  }

  private dispatch(msg: Msg): void {
    switch (<i32>msg.kind) {
      case MsgKind.XorRequest: this.onRequest(msg); break;
      case MsgKind.Irq: this.onInterrupt(); break;
      case MsgKind.Timer: this.onTimer(); break;
      default: assert(false, "xor: unexpected message kind");
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Requests in.

  private onRequest(msg: Msg): void {
    this.stats.requests += 1;
    const s = this.slotFree();
    if (s == XOR_REQUESTS_MAX) {
      this.send(msg.source, XorStatus.Busy, 0, msg.c, msg.e);
      return;
    }
    const slot = this.slot(s);
    const sourceCount = msg.a & 0xffff;
    const flags = msg.a >> 16;
    assert(sourceCount > 0 && sourceCount <= XOR_SOURCES_MAX, "xor: source count out of range");
    assert((flags & ~XOR_FLAGS_KNOWN) == 0, "xor: unknown request flags");
    slot.requester = msg.source;
    slot.tag = msg.e;
    slot.sgl = msg.c;
    slot.sourceCount = sourceCount;
    slot.zeroCheck = (flags & XOR_FLAG_ZERO_CHECK) != 0;
    slot.resubmits = 0;
    slot.doneBytes = 0;
    slot.resultAny = 0;
    this.slotLoad(slot);
    slot.state = SlotState.Queued;
    this.queuePush(s);
  }

  // Copies the SGL's addresses into the slot and checks the request's shape (the requester's promises: asserted).
  private slotLoad(slot: XorSlot): void {
    const list = sgls();
    list.check(slot.sgl);
    assert(list.segmentCount(slot.sgl) == slot.sourceCount + 1, "xor: SGL is not a destination and its sources");
    const first = list.segment(slot.sgl, 0);
    const lengthBytes = load<u32>(first, 8);
    assert(lengthBytes > 0 && lengthBytes <= XOR_REQUEST_BYTES_MAX, "xor: segment length out of range");
    assert(lengthBytes % XOR_ADDRESS_ALIGN_BYTES == 0, "xor: segment length not in words");
    slot.lengthBytes = lengthBytes;
    slot.destination = this.segmentChecked(first, lengthBytes);
    for (let i: u32 = 0; i < slot.sourceCount; i++) {
      const source = this.segmentChecked(list.segment(slot.sgl, i + 1), lengthBytes);
      const overlaps = source < slot.destination + lengthBytes && slot.destination < source + lengthBytes;
      assert(source == slot.destination || !overlaps, "xor: destination overlaps a source it is not");
      store<u64>(slot.sources + <usize>i * 8, source);
    }
  }

  // A segment's address, checked: its length is the request's, it is 8-aligned and lies in this processor's RAM.
  private segmentChecked(segment: usize, lengthBytes: u32): u64 {
    const address = sglSegmentAddress(segment);
    assert(sglSegmentLengthBytes(segment) == lengthBytes, "xor: segments differ in length");
    assert(address % XOR_ADDRESS_ALIGN_BYTES == 0, "xor: segment not 8-aligned");
    assert(address < this.ramBytes && this.ramBytes - address >= <u64>lengthBytes, "xor: segment outside RAM");
    return address;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // The software fallback.

  // One bounded pass over the oldest queued request; true while requests remain.
  private softwareStep(): bool {
    if (this.queueCount == 0) return false;
    const s = <u32>unchecked(this.queue[this.queueHead]);
    const slot = this.slot(s);
    const lengthBytes = min(XOR_SOFTWARE_BYTES_PER_RUN, slot.lengthBytes - slot.doneBytes);
    slot.resultAny |= xorSoftware(slot.destination, slot.sources, slot.sourceCount, slot.doneBytes, lengthBytes, true);
    slot.doneBytes += lengthBytes;
    this.stats.softwareBytes += lengthBytes;
    if (slot.doneBytes == slot.lengthBytes) {
      this.queuePop();
      this.finish(s, XorStatus.Ok, slot.zeroCheck && slot.resultAny != 0);
    }
    return this.queueCount > 0;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // The engine.

  // Links every queued request's descriptor into one chain and starts it.
  private chainStart(): void {
    if (this.queueCount == 0) return;
    assert(this.chainCount == 0, "xor: a chain is already out");
    let previous: usize = 0;
    while (this.queueCount > 0) {
      const s = this.queuePop();
      const slot = this.slot(s);
      this.descriptorWrite(slot);
      if (previous != 0) xorDescSetNext(previous, <u64>slot.descriptor);
      previous = slot.descriptor;
      slot.state = SlotState.Submitted;
      unchecked(this.chain[this.chainCount] = <u8>s);
      this.chainCount += 1;
    }
    const first = <u64>this.slot(<u32>unchecked(this.chain[0])).descriptor;
    busWrite32(this.registers + XOR_DESC_BASE_LO, <u32>first);
    busWrite32(this.registers + XOR_DESC_BASE_HI, <u32>(first >> 32));
    busWrite32(this.registers + XOR_CTRL, XOR_CTRL_START);
    this.mode = XorMode.Running;
    this.stats.chains += 1;
    this.deadlineNs = clockNowNs() + XOR_CHAIN_TIMEOUT_NS;
    timerWakeBy(this.timer, this.deadlineNs);
  }

  // The whole descriptor, rewritten: whatever the engine or an earlier request left in it counts for nothing.
  private descriptorWrite(slot: XorSlot): void {
    const d = slot.descriptor;
    xorDescSetNext(d, 0);
    xorDescSetDestination(d, slot.destination);
    xorDescSetByteCount(d, slot.lengthBytes);
    xorDescSetControl(d, XOR_CONTROL_XOR | (slot.zeroCheck ? XOR_CONTROL_ZERO_CHECK : 0));
    xorDescSetSourceCount(d, slot.sourceCount);
    xorDescSetStatus(d, 0);
    for (let i: u32 = 0; i < XOR_SOURCES_MAX; i++) {
      xorDescSetSource(d, i, i < slot.sourceCount ? load<u64>(slot.sources + <usize>i * 8) : 0);
    }
  }

  private onInterrupt(): void {
    if (this.mode == XorMode.Software) { // not routed without an engine: a stray message
      this.stats.interruptsIgnored += 1;
      return;
    }
    const cause = busRead32(this.registers + XOR_INT_CAUSE);
    busWrite32(this.registers + XOR_INT_CAUSE, cause); // RW1C: what was seen is handled now
    if (this.mode != XorMode.Running) {
      this.stats.interruptsIgnored += 1;
      this.strayStatusesClear();
      return;
    }
    const status = busRead32(this.registers + XOR_STATUS);
    if (status != ALL_ONES && (status & XOR_STATUS_BUSY) != 0) return; // the chain goes on; its end interrupts
    this.chainEnd(status == ALL_ONES || (status & XOR_STATUS_ERROR) != 0);
  }

  // The chain has stopped: answer each submitted request from its descriptor's status, queue again those the engine
  // left untouched, and reset the engine if it reported an error or left anything undone.
  private chainEnd(engineError: bool): void {
    let untouched: u32 = 0;
    for (let i: u32 = 0; i < this.chainCount; i++) {
      const s = <u32>unchecked(this.chain[i]);
      const slot = this.slot(s);
      const status = xorDescStatus(slot.descriptor);
      if ((status & XOR_DESC_STATUS_ERROR) != 0) this.finish(s, XorStatus.Fault, false);
      else if ((status & XOR_DESC_STATUS_DONE) != 0) this.finish(s, XorStatus.Ok, slot.zeroCheck && (status & XOR_DESC_STATUS_ZERO) == 0);
      else {
        untouched += 1;
        this.resubmit(s);
      }
    }
    this.chainCount = 0;
    this.mode = XorMode.Idle;
    if (engineError) this.stats.engineErrors += 1;
    this.strayStatusesClear();
    if (engineError || untouched > 0) this.engineReset();
  }

  private resubmit(s: u32): void {
    const slot = this.slot(s);
    slot.resubmits += 1;
    if (slot.resubmits > XOR_RESUBMITS_MAX) {
      this.finish(s, XorStatus.Fault, false);
      return;
    }
    this.stats.resubmits += 1;
    xorDescSetStatus(slot.descriptor, 0);
    slot.state = SlotState.Queued;
    this.queuePush(s);
  }

  private onTimer(): void {
    if (this.mode != XorMode.Running) return;
    if (clockNowNs() < this.deadlineNs) {
      // An earlier chain's deadline: the parked timer fired for it and parked again, so set it for this chain's.
      timerWakeBy(this.timer, this.deadlineNs);
      return;
    }
    this.stats.timeouts += 1;
    this.engineReset(); // stops the chain: nothing more lands in its destinations
    for (let i: u32 = 0; i < this.chainCount; i++) this.finish(<u32>unchecked(this.chain[i]), XorStatus.Fault, false);
    this.chainCount = 0;
    this.mode = XorMode.Idle;
    this.strayStatusesClear();
  }

  private engineReset(): void {
    this.stats.engineResets += 1;
    busWrite32(this.registers + XOR_CTRL, XOR_CTRL_RESET);
  }

  // A slot not on the engine keeps status 0; anything else there the engine wrote unasked: counted, wiped.
  private strayStatusesClear(): void {
    for (let s: u32 = 0; s < XOR_REQUESTS_MAX; s++) {
      const slot = this.slot(s);
      if (slot.state == SlotState.Submitted || xorDescStatus(slot.descriptor) == 0) continue;
      this.stats.completionsUnsubmitted += 1;
      xorDescSetStatus(slot.descriptor, 0);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Answers.

  // XorDone for slot `s`, which becomes free.
  private finish(s: u32, status: XorStatus, nonZero: bool): void {
    const slot = this.slot(s);
    assert(slot.state != SlotState.Free, "xor: finishing a free slot");
    xorDescSetStatus(slot.descriptor, 0);
    slot.state = SlotState.Free;
    this.send(slot.requester, status, nonZero ? 1 : 0, slot.sgl, slot.tag);
  }

  // XorDone to `target`; in order behind any answer its inbox refused before.
  private send(target: u32, status: XorStatus, nonZero: u32, sgl: u32, tag: u64): void {
    switch (status) {
      case XorStatus.Ok: this.stats.answeredOk += 1; break;
      case XorStatus.Fault: this.stats.answeredFault += 1; break;
      case XorStatus.Busy: this.stats.answeredBusy += 1; break;
      default: assert(false, "xor: unknown status");
    }
    const msg = this.out.set(MsgKind.XorDone, this.index, status, nonZero);
    msg.c = sgl;
    msg.e = tag;
    if (this.outbox.count == 0 && post(target, msg)) return;
    msg.source = <u16>target; // held in the outbox with its destination
    this.outbox.pushAssumeCapacity(msg); // a requester keeps at most XOR_OUTBOX_DEPTH requests unanswered
  }

  private outboxFlush(): void {
    const count = this.outbox.count;
    for (let i: u32 = 0; i < count; i++) {
      const popped = this.outbox.pop(this.retry);
      assert(popped, "xor: outbox count disagrees with its ring");
      const target = <u32>this.retry.source;
      this.retry.source = <u16>this.index;
      if (post(target, this.retry)) continue;
      this.retry.source = <u16>target;
      this.outbox.pushAssumeCapacity(this.retry);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Slots and the queue.

  private slot(s: u32): XorSlot {
    assert(s < XOR_REQUESTS_MAX, "xor: slot index out of range");
    return unchecked(this.slots[s])!;
  }

  // The lowest free slot, or XOR_REQUESTS_MAX when all are held.
  private slotFree(): u32 {
    for (let s: u32 = 0; s < XOR_REQUESTS_MAX; s++) if (this.slot(s).state == SlotState.Free) return s;
    return XOR_REQUESTS_MAX;
  }

  private queuePush(s: u32): void {
    assert(this.queueCount < XOR_REQUESTS_MAX, "xor: queue holds more than the slots");
    unchecked(this.queue[(this.queueHead + this.queueCount) % XOR_REQUESTS_MAX] = <u8>s);
    this.queueCount += 1;
  }

  private queuePop(): u32 {
    assert(this.queueCount > 0, "xor: queue empty");
    const s = <u32>unchecked(this.queue[this.queueHead]);
    this.queueHead = (this.queueHead + 1) % XOR_REQUESTS_MAX;
    this.queueCount -= 1;
    return s;
  }

  /** Requests held (queued, on the engine, or being computed). */
  heldCount(): u32 {
    let held: u32 = 0;
    for (let s: u32 = 0; s < XOR_REQUESTS_MAX; s++) if (this.slot(s).state != SlotState.Free) held += 1;
    return held;
  }
}

/**
 * Boot, after pciEnumerate and before the kernel seals: the XOR task, driving the first unclaimed XOR engine on the
 * bus (vendor XOR_VENDOR_ID, device XOR_DEVICE_ID), whose MSI-X vector it routes to itself. With none, or one whose
 * BAR 0 or MSI-X is unusable (a console line says why), the task XORs in software.
 */
export function xorBoot(bootInfo: usize): XorTask {
  const task = new XorTask(bootInfoRamBytes(bootInfo));
  taskAdd(task);
  const count = pciFunctionCount();
  for (let i: u32 = 0; i < count; i++) {
    const f = pciFunctionAt(i);
    if (f.claimed || f.vendorId != XOR_VENDOR_ID || f.deviceId != XOR_DEVICE_ID) continue;
    if (xorEngineClaim(f, task, bootInfo)) break;
  }
  return task;
}

// Sets up the engine `f` for `task`: false (left unclaimed, with a console line) when it cannot be used.
function xorEngineClaim(f: PciFunctionInfo, task: XorTask, bootInfo: usize): bool {
  assert(XOR_BAR_REGISTERS < PCI_BARS);
  const registers = unchecked(f.barAddress[XOR_BAR_REGISTERS]);
  if (registers == 0) {
    line().s("xor: engine in slot ").u32(f.device).s(": BAR 0 not placed").err();
    return false;
  }
  const vector = vectorAllocate(XOR_VECTOR_COUNT);
  if (vector == VECTOR_NONE) {
    line().s("xor: engine in slot ").u32(f.device).s(": out of interrupt vectors").err();
    return false;
  }
  if (!msixEnable(f, bootInfoMsiAddress(bootInfo), vector, XOR_VECTOR_COUNT)) {
    line().s("xor: engine in slot ").u32(f.device).s(": MSI-X setup failed").err();
    return false; // its vector stays unused
  }
  f.claimed = true;
  irqRoute(vector, task.index);
  task.attach(registers);
  return true;
}
