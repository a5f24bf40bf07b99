// `wasm-iop simulate --cluster clusters/pair.json` (docs/simulation.md, "A cluster"; docs/volumes.md, "Copies on two
// boards"): board a presents the replica rep, whose copy 1 is board b's disk over the fabric. Under every fault, the
// boards' power cuts and partitions among them (which fail copy 1, or restart a with writes in flight), the shadow
// must hold: no wrong read, every acknowledged write read back once the replica is optimal again, and then both
// boards' copies identical block for block. A disk that drops writes must fail the run, the copy comparison included.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../../host/root.ts";
import { FAULT_KINDS_ALL } from "../../tools/simulate/faults.ts";
import { passed, simulate } from "../../tools/simulate/simulation.ts";

const PAIR = join(ROOT, "clusters/pair.json");

describe("wasm-iop simulate --cluster with a replica across two boards", () => {
  it("seed 1, every fault at one in 10 commands: boards cut off and powered off, nothing lost or wrong, the copies identical", () => {
    const result = simulate({ seed: 1, ops: 2000, faults: [...FAULT_KINDS_ALL], cluster: PAIR, faultEveryOps: 10 });
    expect(result.failures, "replay with: wasm-iop simulate --cluster clusters/pair.json --seed 1 --ops 2000 --faults all --trace seed-1.jsonl --verbose").toEqual([]);
    expect(passed(result)).toBe(true);
    expect(result.faultsByKind["board-off"] + result.faultsByKind.partition).toBeGreaterThan(0);
    expect(result.faultsByKind.member).toBe(0); // the cluster's faults fail the copies
    expect(result.opsFailed).toBeGreaterThan(0);
    expect(result.volumes).toHaveLength(1);
    expect(result.volumes[0]).toMatch(/name=rep type=replica .*state=optimal copies=current,current/);
  }, 300_000);

  it("fails a run whose disks drop acknowledged writes, and says the copies differ", () => {
    // 800 commands: at 2 000 the first 20 failures kept are all wrong reads (with the tunneled completions' timing),
    // and the copies' line, which comes after, is not among them.
    const result = simulate({ seed: 1, ops: 800, faults: ["lie"], cluster: PAIR });
    expect(passed(result)).toBe(false);
    expect(result.failures.some((f) => /replica rep's copies differ at block \d+ \(a:rep-a and b:rep-b\)/.test(f))).toBe(true);
  }, 300_000);
});
