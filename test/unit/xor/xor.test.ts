// The XOR task (assembly/xor/xor.ts) through the test build: the requester (tools/fuzz/firmware/xor_requester.ts)
// takes buffers and an SGL, the test fills the sources through the host's view of RAM, the requester sends
// XorRequest, and the board runs until XorDone comes back; the destination is then compared with the XOR computed
// here. The same requests run on a board with the engine (host/devices/xor_engine.ts, slot 9) and on one without
// (the software fallback). Then faults the engine is armed with, Busy when every slot is taken, and no heap growth or
// buffer left behind.
import { describe, expect, it } from "vitest";
import { XorEngine } from "../../../host/devices/xor_engine.ts";
import { testBoard, type TestBoard } from "../../support/board.ts";

const PAGE = 1; // buffer class: 4 KiB
const LARGE = 2; // 64 KiB
const ZERO_CHECK = 1;
enum Mode { Software = 0, Idle = 1, Running = 2 }
enum Status { Ok = 0, Fault = 1, Busy = 2 }
enum ReqState { Free = 0, Prepared = 1, Sent = 2, Answered = 3 }
// XorStats, in declaration order (xorTaskStat).
enum Stat { Requests, Ok, Fault, Busy, Chains, EngineErrors, EngineResets, Timeouts, Resubmits, InterruptsIgnored, CompletionsUnsubmitted, SoftwareBytes }
const NONE = 0xffff_ffff;

interface Request {
  r: number;
  sources: Uint8Array[];
  guard: Uint8Array;
  lengthBytes: number;
  inPlace: boolean;
}

function board(engine: boolean): { t: TestBoard; engine: XorEngine | undefined } {
  const t = testBoard({ xorEngine: engine });
  t.board.runFor(5_000_000);
  expect(t.stops).toEqual([]);
  expect(t.call("xorTaskMode")).toBe(engine ? Mode.Idle : Mode.Software);
  return { t, engine: t.board.xorEngines[0] };
}

const ram = (t: TestBoard) => new Uint8Array(t.host.memory.buffer);
const stat = (t: TestBoard, which: Stat) => Number(t.call("xorTaskStat", which) as bigint);
let seedNext = 1;
function pattern(lengthBytes: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: lengthBytes }, (_, i) => (i * 13 + seed * 101 + (i >> 9) * 7) & 0xff);
}

/** Takes buffers for `sourceCount` sources and fills them (and the guard) from fresh patterns, or `sources`. */
function prepare(t: TestBoard, sourceCount: number, lengthBytes: number, options: { inPlace?: boolean; bufferClass?: number; sources?: Uint8Array[] } = {}): Request {
  const inPlace = options.inPlace ?? false;
  const r = t.call("xorReqPrepare", options.bufferClass ?? PAGE, sourceCount + 1, lengthBytes, inPlace ? 1 : 0) as number;
  expect(r).not.toBe(NONE);
  const sources = options.sources ?? Array.from({ length: sourceCount }, () => pattern(lengthBytes, seedNext++));
  sources.forEach((bytes, i) => ram(t).set(bytes, t.call("xorReqAddress", r, i + 1) as number));
  const guard = pattern(lengthBytes, seedNext++);
  ram(t).set(guard, t.call("xorReqAddress", r, sourceCount + 1) as number);
  if (!inPlace) ram(t).fill(0xdd, t.call("xorReqAddress", r, 0) as number, (t.call("xorReqAddress", r, 0) as number) + lengthBytes);
  return { r, sources, guard, lengthBytes, inPlace };
}

function submit(t: TestBoard, q: Request, flags = 0): void {
  expect(t.call("xorReqSubmit", q.r, q.sources.length, flags)).toBe(1);
}

function waitAnswered(t: TestBoard, requests: Request[], limitNs = 100_000_000): void {
  for (let ns = 0; ns < limitNs && requests.some((q) => t.call("xorReqState", q.r) !== ReqState.Answered); ns += 100_000) t.board.runFor(100_000);
  for (const q of requests) {
    expect(t.call("xorReqState", q.r)).toBe(ReqState.Answered);
    expect(t.call("xorReqAnswers", q.r)).toBe(1);
  }
  expect(t.stops).toEqual([]);
}

function destination(t: TestBoard, q: Request): number[] {
  const at = t.call("xorReqAddress", q.r, q.inPlace ? 1 : 0) as number;
  return [...ram(t).subarray(at, at + q.lengthBytes)];
}
const xorOf = (arrays: Uint8Array[]): number[] => [...arrays[0]!].map((_, i) => arrays.reduce((acc, a) => acc ^ a[i]!, 0));

// Status Ok, the destination the XOR, the sources (but an in-place first) and the guard untouched; then released.
function expectOk(t: TestBoard, q: Request): void {
  expect(t.call("xorReqStatus", q.r)).toBe(Status.Ok);
  expect(destination(t, q)).toEqual(xorOf(q.sources));
  q.sources.forEach((bytes, i) => {
    if (q.inPlace && i === 0) return;
    const at = t.call("xorReqAddress", q.r, i + 1) as number;
    expect([...ram(t).subarray(at, at + q.lengthBytes)]).toEqual([...bytes]);
  });
  const guardAt = t.call("xorReqAddress", q.r, q.sources.length + 1) as number;
  expect([...ram(t).subarray(guardAt, guardAt + q.lengthBytes)]).toEqual([...q.guard]);
}

function releaseAll(t: TestBoard, requests: Request[]): void {
  for (const q of requests) t.call("xorReqRelease", q.r);
  expect(t.call("testBuffersAllFree")).toBe(1);
  expect(t.call("xorTaskHeld")).toBe(0);
}

describe.each([["with the engine", true], ["without it (software fallback)", false]] as const)("XorRequest → XorDone %s", (_name, withEngine) => {
  it("XORs 1 to 8 sources into the destination, in place too, and answers each request exactly once", () => {
    // Proves the result for every source count, a destination equal to source 1, and that neither the other sources
    // nor a guard buffer beside the request change; then every buffer is back and the heap has not moved.
    const { t } = board(withEngine);
    const heapBefore = t.call("heapTop");
    const requests = [1, 2, 3, 5, 8].map((n) => prepare(t, n, 4096));
    requests.push(prepare(t, 4, 2048, { inPlace: true }));
    for (const q of requests) submit(t, q);
    waitAnswered(t, requests);
    for (const q of requests) expectOk(t, q);
    releaseAll(t, requests);
    expect(stat(t, Stat.Ok)).toBe(requests.length);
    if (withEngine) expect(stat(t, Stat.Chains)).toBeLessThan(requests.length); // queued requests go out as one chain
    else expect(stat(t, Stat.SoftwareBytes)).toBe(5 * 4096 + 2048);
    expect(t.call("xorReqStrayAnswers")).toBe(0);
    expect(t.call("heapTop")).toBe(heapBefore);
  });

  it("answers b = 1 when the result was checked and is not all zeros, 0 when it is zeros or not checked", () => {
    const { t } = board(withEngine);
    const same = pattern(512, 99);
    const zero = prepare(t, 2, 512, { sources: [same, same] });
    const nonZero = prepare(t, 2, 512);
    const unchecked = prepare(t, 2, 512);
    submit(t, zero, ZERO_CHECK);
    submit(t, nonZero, ZERO_CHECK);
    submit(t, unchecked, 0);
    waitAnswered(t, [zero, nonZero, unchecked]);
    expect([zero, nonZero, unchecked].map((q) => t.call("xorReqNonZero", q.r))).toEqual([0, 1, 0]);
    for (const q of [zero, nonZero, unchecked]) expectOk(t, q);
    releaseAll(t, [zero, nonZero, unchecked]);
  });

  it("XORs 8 sources of 64 KiB without overrunning the task's budget", () => {
    // Proves the software loop is bounded per run (XOR_SOFTWARE_BYTES_PER_RUN) and the engine path alike: the
    // watchdog counts no overrun of the XOR task.
    const { t } = board(withEngine);
    const q = prepare(t, 8, 65536, { bufferClass: LARGE });
    submit(t, q, ZERO_CHECK);
    waitAnswered(t, [q]);
    expectOk(t, q);
    expect(t.call("xorReqNonZero", q.r)).toBe(1);
    releaseAll(t, [q]);
    expect(t.call("testOverrunCount", t.call("xorTaskIndex"))).toBe(0);
  });

  it("answers Busy beyond XOR_REQUESTS_MAX held requests, and serves them all once slots free up", () => {
    // Proves exhaustion is backpressure: 20 requests posted before the task runs; it holds 16, and those it takes
    // while all 16 are held (up to 4: the software loop may finish one within the same run) are answered Busy at
    // once. Sent again, they complete.
    const { t } = board(withEngine);
    const requests = Array.from({ length: 20 }, () => prepare(t, 2, 512));
    for (const q of requests) submit(t, q);
    waitAnswered(t, requests);
    const busy = requests.filter((q) => t.call("xorReqStatus", q.r) === Status.Busy);
    expect(busy.length).toBeGreaterThan(0);
    expect(busy.length).toBeLessThanOrEqual(4);
    for (const q of requests) if (!busy.includes(q)) expectOk(t, q);
    for (const q of busy) submit(t, q);
    waitAnswered(t, busy);
    for (const q of busy) expectOk(t, q);
    releaseAll(t, requests);
    expect(stat(t, Stat.Busy)).toBe(busy.length);
  });
});

describe("XOR engine faults, recovered", () => {
  it("an engine error answers Fault, resets the engine, and the next request is served", () => {
    const { t, engine } = board(true);
    engine!.inject({ kind: "error-next", code: 9 });
    const bad = prepare(t, 2, 1024);
    submit(t, bad);
    waitAnswered(t, [bad]);
    expect(t.call("xorReqStatus", bad.r)).toBe(Status.Fault);
    const good = prepare(t, 3, 1024);
    submit(t, good);
    waitAnswered(t, [good]);
    expectOk(t, good);
    expect([stat(t, Stat.EngineErrors), stat(t, Stat.EngineResets)]).toEqual([1, 1]);
    releaseAll(t, [bad, good]);
  });

  it("a fault in a chain's first descriptor faults only its request: the others go out again and complete", () => {
    // Proves the resubmission: three requests posted before the task runs go out as one chain; the first
    // descriptor faults, which stops the chain, so the first answers Fault and the two the engine left untouched go
    // out in the next chain and are Ok.
    const { t, engine } = board(true);
    const requests = [prepare(t, 2, 512), prepare(t, 2, 512), prepare(t, 2, 512)];
    engine!.inject({ kind: "error-next", code: 6 });
    for (const q of requests) submit(t, q);
    waitAnswered(t, requests);
    expect(requests.map((q) => t.call("xorReqStatus", q.r))).toEqual([Status.Fault, Status.Ok, Status.Ok]);
    for (const q of requests.slice(1)) expectOk(t, q);
    expect([stat(t, Stat.Chains), stat(t, Stat.Resubmits), stat(t, Stat.EngineResets)]).toEqual([2, 2, 1]);
    releaseAll(t, requests);
  });

  it("an engine that never finishes: the chain times out, its requests answer Fault, the engine keeps working", () => {
    const { t, engine } = board(true);
    engine!.inject({ kind: "never-complete-next" });
    const hung = prepare(t, 2, 512);
    submit(t, hung);
    waitAnswered(t, [hung]);
    expect(t.call("xorReqStatus", hung.r)).toBe(Status.Fault);
    expect(stat(t, Stat.Timeouts)).toBe(1);
    const next = prepare(t, 2, 512);
    submit(t, next);
    waitAnswered(t, [next]);
    expectOk(t, next);
    releaseAll(t, [hung, next]);
  });

  it("a chain that hangs after earlier chains finished still times out", () => {
    // Proves the timeout follows the chain on the engine: the parked timer, set for the first chain's deadline,
    // fires early for the third (the fuzzer's xor-lost-command-40798020722d.bin) and must be set again, not lost.
    const { t, engine } = board(true);
    const done = [prepare(t, 2, 512), prepare(t, 3, 512)];
    for (const q of done) {
      submit(t, q);
      waitAnswered(t, [q]);
      expectOk(t, q);
    }
    engine!.inject({ kind: "never-complete-next" });
    const hung = prepare(t, 1, 8);
    submit(t, hung);
    waitAnswered(t, [hung]);
    expect(t.call("xorReqStatus", hung.r)).toBe(Status.Fault);
    expect(stat(t, Stat.Timeouts)).toBe(1);
    releaseAll(t, [...done, hung]);
  });

  it("an interrupt storm and a completion for a descriptor not submitted are counted and ignored", () => {
    const { t, engine } = board(true);
    const first = prepare(t, 2, 512);
    submit(t, first);
    waitAnswered(t, [first]);
    engine!.inject({ kind: "interrupt-storm", count: 20 });
    engine!.inject({ kind: "complete-unsubmitted", seen: 0, value: 1 });
    t.board.runFor(1_000_000);
    expect(stat(t, Stat.InterruptsIgnored)).toBeGreaterThan(0);
    expect(stat(t, Stat.CompletionsUnsubmitted)).toBe(1);
    const next = prepare(t, 2, 512);
    submit(t, next);
    waitAnswered(t, [next]);
    expectOk(t, next);
    expect(stat(t, Stat.Ok)).toBe(2);
    releaseAll(t, [first, next]);
  });

  it("an engine that keeps leaving a descriptor untouched: the request answers Fault after XOR_RESUBMITS_MAX", () => {
    const { t, engine } = board(true);
    for (let i = 0; i < 3; i++) engine!.inject({ kind: "status-garbage-next", value: 0 });
    const q = prepare(t, 2, 512);
    submit(t, q);
    waitAnswered(t, [q]);
    expect(t.call("xorReqStatus", q.r)).toBe(Status.Fault);
    expect(stat(t, Stat.Resubmits)).toBe(2);
    releaseAll(t, [q]);
  });
});
