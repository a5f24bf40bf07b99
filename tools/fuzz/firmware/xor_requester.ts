// A requester for the XOR task (assembly/xor/xor.ts), for the test build (test/firmware/harness.ts) and the fuzzing
// build (entry.ts beside this file): it takes buffers, builds the SGL of a request (destination, sources and, apart
// from it, a guard buffer nobody may write), sends XorRequest and records each XorDone. The tests and the xor fuzz
// target fill and check the buffers through the host's view of RAM. Added at boot only on the host processor.
import { agentXor } from "../../../assembly/agents";
import { BUFFER_CLASS_COUNT } from "../../../assembly/config";
import { bufferPool, sgls } from "../../../assembly/kernel/buffers";
import { Msg, MsgKind } from "../../../assembly/kernel/msg";
import { POOL_NONE } from "../../../assembly/kernel/pool";
import { wakeTask } from "../../../assembly/kernel/ready";
import { post, taskAdd } from "../../../assembly/kernel/scheduler";
import { SGL_NONE } from "../../../assembly/kernel/sgl";
import { RunResult, Task } from "../../../assembly/kernel/task";
import { XOR_SOURCES_MAX } from "../../../assembly/xor/descriptor";

export const XOR_REQ_SLOTS: u32 = 32;
const BUFFERS_PER_REQUEST: u32 = XOR_SOURCES_MAX + 2; // destination, sources, guard
const NONE: u32 = 0xffff_ffff;

export enum XorReqState {
  Free = 0, // no buffers
  Prepared = 1, // buffers and SGL taken, not sent
  Sent = 2, // XorRequest posted, no answer yet
  Answered = 3, // XorDone received (the buffers are still held until release)
}

class XorReq {
  state: XorReqState = XorReqState.Free;
  bufferClass: u32 = 0;
  bufferCount: u32 = 0;
  readonly buffers: StaticArray<u32> = new StaticArray<u32>(BUFFERS_PER_REQUEST);
  sgl: u32 = SGL_NONE;
  status: u32 = 0;
  nonZero: u32 = 0;
  answers: u32 = 0; // XorDone messages for this request: exactly one is right
}

class XorRequesterTask extends Task {
  readonly out: Msg = new Msg();
  paused: bool = false; // while set, answers stay in the inbox (a requester that does not drain)
  strayAnswers: u32 = 0; // XorDone for no request of ours

  constructor() { super("xorreq", 3, 128); }

  run(): RunResult {
    if (this.paused) return RunResult.Waiting;
    let handled: u32 = 0;
    while (handled < 32 && this.inbox.pop(this.scratch)) {
      handled += 1;
      assert(<i32>this.scratch.kind == MsgKind.XorDone, "xor requester: unexpected message kind");
      const r = <u32>this.scratch.e;
      if (r >= XOR_REQ_SLOTS || unchecked(requests[r])!.state != XorReqState.Sent || unchecked(requests[r])!.sgl != this.scratch.c) {
        this.strayAnswers += 1;
        continue;
      }
      const req = unchecked(requests[r])!;
      req.state = XorReqState.Answered;
      req.status = this.scratch.a;
      req.nonZero = this.scratch.b;
      req.answers += 1;
    }
    return handled > 0 ? RunResult.Busy : RunResult.Idle;
  }
}

const requests = new StaticArray<XorReq | null>(XOR_REQ_SLOTS);
let requester: XorRequesterTask | null = null;

/** Boot hook: adds the requester on a processor with an XOR task. After agentsBoot, before kernelStart. */
export function xorRequesterBoot(): void {
  if (agentXor() == null) return;
  for (let r: u32 = 0; r < XOR_REQ_SLOTS; r++) unchecked(requests[r] = new XorReq());
  const task = new XorRequesterTask();
  taskAdd(task);
  requester = task;
}

function req(r: u32): XorReq {
  assert(r < XOR_REQ_SLOTS && requester != null, "xor requester: no such request");
  return unchecked(requests[r])!;
}

/**
 * Takes `segmentCount` buffers of `bufferClass` (the destination and the sources) and a guard buffer, and an SGL
 * of `segmentCount` segments of `lengthBytes`; with `inPlace` the destination segment is the first source's buffer.
 * Returns the request's index, or 0xFFFFFFFF when no slot, buffer or SGL block is free (nothing kept).
 */
export function xorReqPrepare(bufferClass: u32, segmentCount: u32, lengthBytes: u32, inPlace: bool): u32 {
  assert(bufferClass < BUFFER_CLASS_COUNT && segmentCount >= 2 && segmentCount <= XOR_SOURCES_MAX + 1);
  assert(lengthBytes > 0 && lengthBytes <= bufferPool(bufferClass).slotBytes);
  let r: u32 = 0;
  while (r < XOR_REQ_SLOTS && req(r).state != XorReqState.Free) r += 1;
  if (r == XOR_REQ_SLOTS) return NONE;
  const q = req(r);
  q.bufferClass = bufferClass;
  q.bufferCount = 0;
  for (let i: u32 = 0; i <= segmentCount; i++) {
    const index = bufferPool(bufferClass).acquire();
    if (index == POOL_NONE) { xorReqRelease(r); return NONE; }
    unchecked(q.buffers[i] = index);
    q.bufferCount += 1;
    q.state = XorReqState.Prepared;
  }
  q.sgl = sgls().create();
  if (q.sgl == SGL_NONE) { xorReqRelease(r); return NONE; }
  for (let i: u32 = 0; i < segmentCount; i++) {
    const buffer = inPlace && i == 0 ? 1 : i;
    if (!sgls().append(q.sgl, <u64>xorReqAddress(r, buffer), lengthBytes)) { xorReqRelease(r); return NONE; }
  }
  return r;
}

/** Buffer `i` of request `r`: 0 the destination, 1.. the sources, the last the guard. */
export function xorReqAddress(r: u32, i: u32): usize {
  const q = req(r);
  assert(i < q.bufferCount, "xor requester: no such buffer");
  return bufferPool(q.bufferClass).address(unchecked(q.buffers[i]));
}

/** Sends XorRequest{sourceCount | flags << 16, the SGL, tag = r}; false when the XOR task's inbox is full. */
export function xorReqSubmit(r: u32, sourceCount: u32, flags: u32): bool {
  const q = req(r);
  assert(q.state == XorReqState.Prepared || q.state == XorReqState.Answered, "xor requester: request not ready");
  const task = requester!;
  const msg = task.out.set(MsgKind.XorRequest, task.index, sourceCount | (flags << 16), 0);
  msg.c = q.sgl;
  msg.e = <u64>r;
  if (!post(agentXor()!.index, msg)) return false;
  q.state = XorReqState.Sent;
  q.answers = 0;
  return true;
}

export function xorReqState(r: u32): u32 { return <u32>req(r).state; }
export function xorReqStatus(r: u32): u32 { return req(r).status; }
export function xorReqNonZero(r: u32): u32 { return req(r).nonZero; }
export function xorReqAnswers(r: u32): u32 { return req(r).answers; }
export function xorReqStrayAnswers(): u32 { return requester == null ? 0 : requester!.strayAnswers; }

/** Gives back the request's buffers and SGL; the request must not be waiting for its answer. */
export function xorReqRelease(r: u32): void {
  const q = req(r);
  assert(q.state != XorReqState.Sent, "xor requester: release while the XOR task holds the request");
  for (let i: u32 = 0; i < q.bufferCount; i++) bufferPool(q.bufferClass).release(unchecked(q.buffers[i]));
  q.bufferCount = 0;
  if (q.sgl != SGL_NONE) sgls().release(q.sgl);
  q.sgl = SGL_NONE;
  q.state = XorReqState.Free;
}

/** Stops (true) or resumes the requester draining its inbox. */
export function xorReqPause(paused: bool): void {
  requester!.paused = paused;
  if (!paused) wakeTask(requester!.index);
}

// The XOR task, for the tests: its index, mode, held requests and counters (XorStats, in declaration order).
export function xorTaskIndex(): u32 { return agentXor()!.index; }
export function xorTaskMode(): u32 { return <u32>agentXor()!.mode; }
export function xorTaskHeld(): u32 { return agentXor()!.heldCount(); }
export function xorTaskStat(which: u32): u64 {
  const s = agentXor()!.stats;
  switch (which) {
    case 0: return s.requests;
    case 1: return s.answeredOk;
    case 2: return s.answeredFault;
    case 3: return s.answeredBusy;
    case 4: return s.chains;
    case 5: return s.engineErrors;
    case 6: return s.engineResets;
    case 7: return s.timeouts;
    case 8: return s.resubmits;
    case 9: return s.interruptsIgnored;
    case 10: return s.completionsUnsubmitted;
    case 11: return s.softwareBytes;
    default: return 0xffff_ffff_ffff_ffff;
  }
}
