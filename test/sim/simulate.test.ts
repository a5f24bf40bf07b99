// `wasm-iop simulate` on fixed seeds, as CI runs it: the simulation board serves iSCSI on its loopback network to
// four sessions sending a random workload while every fault kind is injected, and no acknowledged write may be
// lost, no read may return data no write could have left, and nothing may hang. The checks themselves are shown to
// fail: a disk that acknowledges writes and stores nothing ("lie") must be caught. Same seed, same trace.
import { describe, expect, it } from "vitest";
import { FAULT_KINDS_ALL } from "../../tools/simulate/faults.ts";
import { passed, simulate, type SimulationResult } from "../../tools/simulate/simulation.ts";

function expectClean(result: SimulationResult): void {
  expect(result.failures, `replay with: wasm-iop simulate --seed ${result.seed} --ops ${result.ops} --trace seed-${result.seed}.jsonl --verbose`).toEqual([]);
  expect(passed(result)).toBe(true);
}

describe("wasm-iop simulate", () => {
  it.each([3, 11])("seed %i: 1500 commands under every fault kind lose no acknowledged write and return no wrong data", (seed) => {
    const result = simulate({ seed, ops: 1500, faults: FAULT_KINDS_ALL, faultEveryOps: 20 });
    expectClean(result);
    expect(result.opsGood + result.opsFailed).toBe(1500);
    expect(result.faultsInjected).toBeGreaterThan(40);
    expect(result.opsFailed).toBeGreaterThan(12); // beyond the first UNIT ATTENTION per session and LUN: faults surfaced
    expect(result.writes).toBeGreaterThan(400);
    expect(result.reads).toBeGreaterThan(400);
  });

  it("survives processor stops: the board resets, in-flight commands fail visibly, acknowledged data stays", () => {
    const result = simulate({ seed: 5, ops: 1200, faults: ["panic"], faultEveryOps: 200 });
    expectClean(result);
    expect(result.resets).toBeGreaterThan(0);
    expect(result.faultsByKind.panic).toBe(result.resets);
    expect(result.failedBy["lost"]).toBeGreaterThan(0);
  });

  it("catches a disk that acknowledges writes and stores nothing", () => {
    const result = simulate({ seed: 7, ops: 600, faults: ["lie"], faultEveryOps: 10 });
    expect(result.faultsByKind.lie).toBeGreaterThan(10);
    expect(result.lostWrites + result.wrongReads).toBeGreaterThan(0);
    expect(passed(result)).toBe(false);
    expect(result.failures[0]).toMatch(/is stale/);
  });

  it("replays a seed exactly: the same trace hash, and another seed gives another", () => {
    const first = simulate({ seed: 21, ops: 300, faults: FAULT_KINDS_ALL, faultEveryOps: 15 });
    const again = simulate({ seed: 21, ops: 300, faults: FAULT_KINDS_ALL, faultEveryOps: 15 });
    const other = simulate({ seed: 22, ops: 300, faults: FAULT_KINDS_ALL, faultEveryOps: 15 });
    expect(first.faultsInjected).toBeGreaterThan(5);
    expect(again).toEqual(first);
    expect(other.traceHash).not.toBe(first.traceHash);
  });
});
