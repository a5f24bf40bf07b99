// The xor target: a hostile XOR engine (host/devices/xor_engine.ts, its injected lies) drives the firmware's XOR
// task (assembly/xor/xor.ts) while the requester in the fuzzing image (tools/fuzz/firmware/xor_requester.ts) keeps
// requests flowing. The firmware must not panic or hang, must answer every request exactly once (Ok, Fault or Busy),
// must write nothing a request does not name (its other sources and a guard buffer beside it stay as they were),
// must give back every buffer, and while the engine told no lie, an Ok result must be the XOR. Operations, one byte
// of op code each:
//   0 a request: 1-8 sources of 8-512 bytes, zero check, in place, equal sources (a zero result)
//   1 the next descriptor's status is garbage      2 a status written into a descriptor seen before, and its interrupt
//   3 an interrupt storm                           4 the next descriptor never completes, faults, or gets a garbage
//                                                    result; or the cause register gains garbage bits
//   5 step the clock                               6 wait for every answer      7 an interrupt on any vector
import type { Processor } from "../../../host/board/processor.ts";
import type { XorEngine, XorEngineFault } from "../../../host/devices/xor_engine.ts";
import { FindingError, type FuzzBoard } from "../harness.ts";
import { bytes, type FuzzTarget, OPS_PER_INPUT_MAX } from "../target.ts";

const PAGE = 1; // buffer class: 4 KiB
const NONE = 0xffff_ffff;
const ZERO_CHECK = 1;
enum ReqState { Free = 0, Prepared = 1, Sent = 2, Answered = 3 }
const ANSWER_WITHIN_NS = 200_000_000; // the chain timeout (20 ms) times the resubmits, with room
const WAIT_STEP_NS = 100_000;
const QUIESCE_NS = 100_000_000;

interface Pending {
  r: number;
  lengthBytes: number;
  inPlace: boolean;
  sources: Uint8Array[];
  guard: Uint8Array;
  liesAtSubmit: number;
  honestAtSubmit: boolean; // no lie was armed and waiting on the engine when it was sent
}

interface XorState {
  pending: Pending[];
  lies: number; // lies told since the snapshot: an Ok answered across one is not checked for its bytes
}

function engineOf(fuzz: FuzzBoard): XorEngine {
  return fuzz.board.xorEngines[0]!;
}

// Through the bus's DMA port, as a device would: the RAM's write watch hears of it, so the snapshot's restore puts
// the page back (a write straight into the memory would leak into the next input: the pool's free-list links live
// in free buffers).
function put(host: Processor, address: number, bytes: Uint8Array): void {
  const written = host.bus.dmaWrite("fuzzer", BigInt(address), bytes);
  if (!written.ok) throw new Error(`xor target: cannot write a request buffer: ${written.fault}`);
}

function ram(host: Processor): Uint8Array {
  return new Uint8Array(host.memory.buffer, 0, host.ramBytes);
}

function lie(kind: number, input: { u8(): number; u32(): number }): XorEngineFault {
  switch (kind % 4) {
    case 0: return { kind: "never-complete-next" };
    case 1: return { kind: "error-next", code: input.u8() };
    case 2: return { kind: "destination-garbage-next", value: input.u8() };
    default: return { kind: "cause-garbage", value: input.u32() };
  }
}

function submit(fuzz: FuzzBoard, state: XorState, sourceCount: number, lengthBytes: number, flags: number, seed: number): string {
  const host = fuzz.processors[0]!;
  const inPlace = (flags & 2) !== 0;
  const prepared = host.invoke("xorReqPrepare", PAGE, sourceCount + 1, lengthBytes, inPlace ? 1 : 0);
  fuzz.check(); // a panic inside the call stops the processor and answers undefined
  const r = Number(prepared) >>> 0;
  if (r === NONE) return "no buffers: skipped";
  const address = (i: number) => Number(host.invoke("xorReqAddress", r, i)) >>> 0;
  const sources: Uint8Array[] = [];
  for (let s = 0; s < sourceCount; s++) {
    const bytes = Uint8Array.from({ length: lengthBytes }, (_, i) => ((flags & 4) !== 0 && sourceCount % 2 === 0 ? i * 3 + seed : i * 7 + seed * (s + 1) + s) & 0xff);
    put(host, address(s + 1), bytes);
    sources.push(bytes);
  }
  const guard = Uint8Array.from({ length: lengthBytes }, (_, i) => (i ^ 0xa5 ^ seed) & 0xff);
  put(host, address(sourceCount + 1), guard);
  if (Number(host.invoke("xorReqSubmit", r, sourceCount, flags & ZERO_CHECK)) !== 1) {
    host.invoke("xorReqRelease", r);
    return "XOR task inbox full: skipped";
  }
  state.pending.push({ r, lengthBytes, inPlace, sources, guard, liesAtSubmit: state.lies, honestAtSubmit: engineOf(fuzz).armedFaultCount === 0 });
  return `request ${r}: ${sourceCount} sources of ${lengthBytes} bytes${inPlace ? ", in place" : ""}${(flags & ZERO_CHECK) !== 0 ? ", zero check" : ""}`;
}

// Checks and releases every answered request: one answer, a known status, nothing written outside the destination,
// and an Ok while the engine told no lie is the XOR.
function harvest(fuzz: FuzzBoard, state: XorState, log: (line: string) => void): void {
  const host = fuzz.processors[0]!;
  const stray = Number(host.invoke("xorReqStrayAnswers"));
  if (stray !== 0) throw new FindingError({ kind: "lost-command", message: `${stray} XorDone for no request outstanding` });
  state.pending = state.pending.filter((p) => {
    if (Number(host.invoke("xorReqState", p.r)) !== ReqState.Answered) return true;
    const answers = Number(host.invoke("xorReqAnswers", p.r));
    const status = Number(host.invoke("xorReqStatus", p.r));
    if (answers !== 1) throw new FindingError({ kind: "lost-command", message: `request ${p.r} answered ${answers} times` });
    if (status > 2) throw new FindingError({ kind: "data-mismatch", message: `request ${p.r} answered with status ${status}` });
    const address = (i: number) => Number(host.invoke("xorReqAddress", p.r, i)) >>> 0;
    const view = ram(host);
    const same = (at: number, expected: Uint8Array) => Buffer.compare(view.subarray(at, at + expected.length), expected) === 0;
    p.sources.forEach((bytes, s) => {
      if (p.inPlace && s === 0) return;
      if (!same(address(s + 1), bytes)) throw new FindingError({ kind: "data-mismatch", message: `request ${p.r}: source ${s + 1} was written` });
    });
    if (!same(address(p.sources.length + 1), p.guard)) throw new FindingError({ kind: "data-mismatch", message: `request ${p.r}: the guard buffer beside it was written` });
    if (status === 0 && p.honestAtSubmit && p.liesAtSubmit === state.lies) {
      const expected = Uint8Array.from({ length: p.lengthBytes }, (_, i) => p.sources.reduce((acc, s) => acc ^ s[i]!, 0));
      if (!same(address(p.inPlace ? 1 : 0), expected)) throw new FindingError({ kind: "data-mismatch", message: `request ${p.r}: Ok, but the destination is not the XOR of its sources` });
    }
    log(`request ${p.r} answered ${["Ok", "Fault", "Busy"][status]}`);
    host.invoke("xorReqRelease", p.r);
    return false;
  });
}

function waitAll(fuzz: FuzzBoard, state: XorState, log: (line: string) => void): void {
  for (let ns = 0; ns < ANSWER_WITHIN_NS && state.pending.length > 0; ns += WAIT_STEP_NS) {
    fuzz.board.runFor(WAIT_STEP_NS);
    fuzz.check();
    harvest(fuzz, state, log);
  }
  if (state.pending.length > 0) {
    throw new FindingError({ kind: "lost-command", message: `${state.pending.length} XorRequest not answered within ${ANSWER_WITHIN_NS / 1e6} ms` });
  }
}

export const xorTarget: FuzzTarget<XorState> = {
  name: "xor",
  summary: "a hostile XOR engine: garbage status words, completions never submitted, storms, hangs, bad results",
  board: { processors: [{ ramMiB: 4, disksMiB: [], xor: true }] },
  prepare(fuzz) {
    fuzz.board.runFor(20_000_000);
    if (Number(fuzz.processors[0]!.invoke("xorTaskMode")) === 0) throw new Error("xor target: the firmware found no XOR engine");
    return { pending: [], lies: 0 };
  },
  run(fuzz, state, input, log) {
    const engine = engineOf(fuzz);
    const host = fuzz.processors[0]!;
    for (let ops = 0; ops < OPS_PER_INPUT_MAX && !input.done; ops++) {
      const op = input.u8() % 8;
      switch (op) {
        case 0: {
          const sourceCount = (input.u8() % 8) + 1;
          const lengthBytes = ((input.u8() % 64) + 1) * 8;
          const flags = input.u8();
          log(submit(fuzz, state, sourceCount, lengthBytes, flags, input.u8()));
          break;
        }
        case 1: {
          const value = input.u32();
          log(`lie: the next status is 0x${value.toString(16)}`);
          state.lies += 1;
          engine.inject({ kind: "status-garbage-next", value });
          break;
        }
        case 2: {
          const seen = input.u8();
          const value = input.u32();
          log(`lie: status 0x${value.toString(16)} into descriptor seen #${seen}`);
          state.lies += 1;
          engine.inject({ kind: "complete-unsubmitted", seen, value });
          break;
        }
        case 3: {
          const count = (input.u8() % 32) + 1;
          log(`interrupt storm of ${count}`);
          engine.inject({ kind: "interrupt-storm", count });
          break;
        }
        case 4: {
          const fault = lie(input.u8(), input);
          log(`lie: ${JSON.stringify(fault)}`);
          state.lies += 1;
          engine.inject(fault);
          break;
        }
        case 5:
          fuzz.board.runFor((input.u8() + 1) * 5_000);
          break;
        case 6:
          waitAll(fuzz, state, log);
          break;
        default: {
          const vector = input.u8() % 64;
          log(`interrupt ${vector}`);
          host.raiseIrq(vector);
          break;
        }
      }
      fuzz.check();
      harvest(fuzz, state, log);
    }
    waitAll(fuzz, state, log);
    fuzz.quiesce(QUIESCE_NS);
  },
  dictionary: [bytes(0, 0, 0, 1), bytes(0, 0, 0, 2), bytes(0, 0, 0, 3), bytes(0, 0, 0, 4), bytes(0, 0, 0x06, 0x04), bytes(0xff, 0xff, 0xff, 0xff), bytes(7), bytes(8)],
  seeds: [
    bytes(0, 2, 63, 1, 9, 6),
    bytes(0, 7, 10, 3, 1, 0, 3, 20, 0, 0, 6),
    bytes(0, 1, 5, 0, 2, 1, 0, 0, 0, 0, 5, 0, 2, 0, 0, 0, 0, 1, 6),
    bytes(4, 0, 0, 2, 4, 0, 5, 4, 1, 9, 0, 3, 4, 0, 0, 6),
    bytes(3, 31, 4, 3, 0, 0, 0, 0xf0, 0, 1, 1, 0, 9, 7, 20, 6),
    bytes(0, 5, 30, 4, 2, 4, 2, 0x55, 0, 5, 30, 0, 2, 6),
  ],
};
